"""Arrays reused from one forward/backward call to the next.

Allocating the large arrays of a step afresh every iteration costs page faults (a new 64 MB
array is zeroed by the kernel page by page) and cache misses; reusing them is much cheaper. But
the engine hands some of these arrays to its callers (``Forward.pre_activation``, the caches a
backward pass reads), and a later call must never overwrite an array somebody still holds.

So a buffer is handed out again only when nothing outside the workspace refers to it any more:
its reference count (which every NumPy view of it raises, through the view's ``base``) is back
to what it was when the workspace made it. A caller that keeps a result therefore keeps it
intact, and the next call simply gets a fresh buffer.

One workspace per thread (``local()``), so two threads never share a buffer.
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from collections.abc import Callable

#: Distinct keys kept per thread; the least recently used are dropped beyond this.
MAX_KEYS = 24
#: Buffers kept per key (a caller holding one result while computing the next needs two).
MAX_PER_KEY = 2


def _reference_counts(owners: tuple) -> list[int]:
    return [sys.getrefcount(owner) for owner in owners]


class _Entry:
    __slots__ = ("value", "owners", "idle")

    def __init__(self, value, owners: tuple) -> None:
        self.value = value
        self.owners = owners
        self.idle: list[int] = []

    def is_free(self) -> bool:
        # Fewer references than when idle can only mean the interpreter borrowed some: free.
        for now, idle in zip(_reference_counts(self.owners), self.idle, strict=True):
            if now > idle:
                return False
        return True


class Workspace:
    """A pool of buffers keyed by what they are for (name, shapes, dtype)."""

    def __init__(self, max_keys: int = MAX_KEYS, max_per_key: int = MAX_PER_KEY) -> None:
        self._entries: OrderedDict[tuple, list[_Entry]] = OrderedDict()
        self._max_keys = max_keys
        self._max_per_key = max_per_key

    def take(self, key: tuple, build: Callable[[], tuple]):
        """A value for ``key`` that nobody outside the workspace holds.

        ``build()`` returns ``(value, owners)``: the value to hand out (an array, or a tuple of
        arrays and views of them) and the arrays that own memory in it. The value is made once
        and handed out again on later calls while nothing outside the workspace refers to it,
        to any of its parts or to any of its owners (every view of an owner refers to it);
        when all kept ones are in use, a new one is built.
        """
        entries = self._entries.get(key)
        if entries is None:
            entries = self._entries[key] = []
            while len(self._entries) > self._max_keys:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(key)
            for entry in entries:
                if entry.is_free():
                    return entry.value
        value, owners = build()
        # Watch the value, its parts and the arrays behind them: a caller may hold any of them.
        parts = tuple(value) if isinstance(value, tuple) else ()
        entry = _Entry(value, (value, *parts, *owners))
        del value, owners, parts
        # Measured by the same function as the later checks, once only the entry refers to
        # its arrays: the entry's own references and views then cancel out.
        entry.idle = _reference_counts(entry.owners)
        entries.append(entry)
        if len(entries) > self._max_per_key:
            entries.pop(0)
        return entry.value

    def clear(self) -> None:
        """Forget every buffer (the memory is freed once no caller holds it)."""
        self._entries.clear()

    def __len__(self) -> int:
        return sum(len(entries) for entries in self._entries.values())


_local = threading.local()


def local() -> Workspace:
    """This thread's workspace."""
    workspace = getattr(_local, "workspace", None)
    if workspace is None:
        workspace = _local.workspace = Workspace()
    return workspace

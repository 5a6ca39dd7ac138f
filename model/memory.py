"""Handing memory that the history has freed back to the system.

A long run keeps stripping records of their maps and dropping others. The C allocator keeps
the freed blocks for reuse, and since they lie between blocks still in use it cannot shrink the
heap: measured on the question's example with the default 256 MiB budget (when the history
still kept records stripped to their conv arrays), the training process held about 390 MiB
resident of which 140 MiB were free blocks, returned by one ``malloc_trim(0)``. On glibc that
call also releases free pages in the middle of the heap, so the history calls it whenever it has
freed a fair amount (``History.TRIM_AFTER_BYTES``), at most once a second (``TRIM_MIN_SECONDS``: the
next steps fault handed-back pages in again). Elsewhere (macOS, Windows, musl) this does
nothing.
"""

from __future__ import annotations

import ctypes
import sys
from functools import cache


@cache
def _malloc_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        trim = ctypes.CDLL(None).malloc_trim  # the process's own C library
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_freed_memory() -> bool:
    """Return the allocator's free pages to the system; whether it could be asked to."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True

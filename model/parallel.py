"""A batch's loss and gradients shared between this process and helper processes.

``network.loss_and_gradients`` with ``threads`` > 1 comes here for batches of small maps:
threads of one process share the interpreter lock, and on NumPy calls of 10-50 µs they spend
more time waiting for it than they gain (``network.PART_MIN_IMAGE_VALUES``). A helper process
has an interpreter of its own. Measured on 2 cores, float32, (16, 64, 64, 8): one thread
2.2 ms an iteration, two threads 2.8-3.7 ms, this process and one helper 1.5 ms.

Each helper gets a contiguous part of the images and the parameters through a block of shared
memory, computes its part's loss and gradients with one BLAS thread, and writes them back into
the block; this process computes the first part meanwhile, keeping off BLAS's threads
(``network.forward``'s ``alongside``), and adds the parts up. Every part divides by the whole
batch's size, so the parts add up to the batch's mean; the sums differ from one process's by
rounding only (the order of the additions), as with threads.

Helpers start on first use (a fraction of a second: a new interpreter loads NumPy) and
stay for the life of this process; one that fails or ends is replaced at the next call.
"""

from __future__ import annotations

import atexit
import functools
import math
import multiprocessing
import multiprocessing.util
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from multiprocessing import connection, resource_tracker, shared_memory
from pathlib import Path

import numpy as np

from model import blas, network

#: A batch goes to helper processes from this many values in its maps (images × filters ×
#: output pixels): below it, passing the work costs more than sharing it gains (measured on
#: 2 cores, float32: (16, 64, 64, 8), 524,288 values, 2.2 → 1.5 ms; (2, 64, 64, 1), 8,192
#: values, 0.16 → 0.27 ms).
MIN_BATCH_VALUES = 2**17
#: Seconds a helper, and this process waiting for one, poll before they block on the pipe: a
#: process blocked on a pipe takes 0.1-0.25 ms to run again here (a virtual machine whose idle
#: cores are handed back to its host), a polling one microseconds. A helper polls this long
#: after each request, so it uses a core only while iterations come one after another.
SPIN_SECONDS = 0.002
#: Seconds a new helper is given to load the engine.
START_SECONDS = 60.0
#: Seconds a helper is given to end when this process exits.
JOIN_SECONDS = 2.0
#: Exceptions a helper's failure is raised again as (others become RuntimeError).
_KNOWN_ERRORS = {e.__name__: e for e in (FloatingPointError, ValueError, MemoryError)}


def worth_sharing(images: int, filters: int, pixels: int, threads: int) -> bool:
    """Whether a batch of ``images`` with maps of ``filters`` × ``pixels`` goes to helpers:
    a batch of small maps (threads share larger ones, ``network.forward``)."""
    return (
        threads > 1
        and images >= 2
        and filters * pixels < network.PART_MIN_IMAGE_VALUES
        and images * filters * pixels >= MIN_BATCH_VALUES
    )


def _layout(shapes: dict, dtype: np.dtype) -> tuple[dict, int]:
    """Byte offsets of the arrays ``shapes`` in a block (each 64-byte aligned), and its size."""
    return _layout_of(tuple(shapes.items()), np.dtype(dtype).itemsize)


@functools.lru_cache(maxsize=64)
def _layout_of(shapes: tuple, itemsize: int) -> tuple[dict, int]:
    offsets, size = {}, 0
    for name, shape in shapes:
        offsets[name] = size
        size += -(-math.prod(shape) * itemsize // 64) * 64
    return offsets, max(size, 64)


def _arrays(block: shared_memory.SharedMemory, shapes: dict, dtype: np.dtype) -> dict:
    offsets, _ = _layout(shapes, dtype)
    return {
        name: np.ndarray(shape, dtype=dtype, buffer=block.buf, offset=offsets[name])
        for name, shape in shapes.items()
    }


def _shapes(images_shape: tuple, params: dict) -> dict:
    """The arrays of a part in its block: inputs, then what the helper writes back (the
    gradients and the part's loss)."""
    shapes = {"images": images_shape, "labels": images_shape[:1]}
    shapes.update((key, params[key].shape) for key in network.PARAM_KEYS)
    shapes.update((f"grad {key}", params[key].shape) for key in network.PARAM_KEYS)
    shapes["loss"] = ()
    return shapes


def _serve_fd(fd: int) -> None:
    """A helper process's entry point: serve the pipe end it inherited as ``fd``."""
    # Ctrl+C in the terminal reaches every process of its group; the caller decides (a headless
    # run finishes its iteration first, which a helper dying with it would fail). The helper
    # ends when the caller closes its pipe.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn = connection.Connection(fd)
    conn.send("ready")
    _serve(conn)


def _serve(conn) -> None:
    """A helper's loop. A request is ``(block name, shapes, dtype, the batch's size, options,
    floating-point error modes)`` for a part of the batch; the reply is ``(warnings, None)`` or
    ``(warnings, (error type, message))``. None ends it."""
    block = None
    try:
        while (request := _receive(conn)) is not None:
            name, shapes, dtype, total, options, errors = request
            if block is None or block.name != name:
                if block is not None:
                    block.close()
                block = shared_memory.SharedMemory(name=name)
                # Attaching registered it with this process's own resource tracker, which
                # would unlink it when this process ends: the caller owns it and unlinks it.
                resource_tracker.unregister(block._name, "shared_memory")  # noqa: SLF001
            raised: list[str] = []
            modes = {k: ("call" if mode == "warn" else mode) for k, mode in errors.items()}
            try:
                arrays = _arrays(block, shapes, np.dtype(dtype))
                with np.errstate(**modes, call=_collector(raised)):
                    _images_part(arrays, total, options)
            except Exception as exc:  # noqa: BLE001 - sent to the caller, raised there
                conn.send((raised, (type(exc).__name__, str(exc))))
            else:
                conn.send((raised, None))
    except (EOFError, OSError, KeyboardInterrupt):
        pass  # the caller is gone
    finally:
        if block is not None:
            block.close()


def _receive(conn):
    """The next message on ``conn``, polled for ``SPIN_SECONDS`` before blocking."""
    deadline = time.perf_counter() + SPIN_SECONDS
    while not conn.poll() and time.perf_counter() < deadline:
        pass
    return conn.recv()


def _collector(raised: list):
    """An ``np.errstate`` call: the kind of each floating-point error into ``raised``."""

    def collect(kind: str, _flag: int) -> None:
        raised.append(kind)

    return collect


def _part(params, images, labels, total: int, options: dict, *, alongside: bool = False):
    """``(loss, gradients)`` of a part of a batch of ``total`` images, both divided by
    ``total``: the parts' add up to the batch's mean loss and its gradients."""
    fwd = network.forward(params, images, labels, alongside=alongside, **options)
    return float(np.add.reduce(fwd.losses) / total), network.backward(fwd, images=total)


def _images_part(arrays: dict, total: int, options: dict) -> None:
    """A helper's part, from its block's arrays into them."""
    params = {key: arrays[key] for key in network.PARAM_KEYS}
    loss, grads = _part(params, arrays["images"], arrays["labels"], total, options)
    for key in network.PARAM_KEYS:
        arrays[f"grad {key}"][...] = grads[key]
    arrays["loss"][...] = loss


class _Helper:
    """One helper process and its block of shared memory."""

    def __init__(self) -> None:
        self.conn, child = multiprocessing.Pipe()
        # A plain interpreter running ``_serve``, not multiprocessing's spawn: that imports
        # the caller's main module again in the child, and a script calling the engine
        # without an ``if __name__ == "__main__"`` guard would start it again there.
        environment = dict(os.environ)
        # One BLAS thread: it has a core of its own (see model.blas).
        environment.update(dict.fromkeys(blas.BLAS_THREAD_VARIABLES, "1"))
        # This engine first on its path: "python -c" puts the working directory first, and a
        # folder there with a "model" of its own would be imported instead (a review).
        engine = str(Path(__file__).resolve().parent.parent)
        code = (
            f"import sys; sys.path.insert(0, {engine!r}); "
            f"from model.parallel import _serve_fd; _serve_fd({child.fileno()})"
        )
        self.process = subprocess.Popen(
            [sys.executable, "-c", code],
            pass_fds=(child.fileno(),),
            env=environment,
            stdin=subprocess.DEVNULL,
        )
        child.close()
        self.block: shared_memory.SharedMemory | None = None

    def wait_ready(self) -> None:
        """Wait until the helper has loaded the engine; raise ``HelperUnavailable`` if it
        cannot (it then ended)."""
        if not self.conn.poll(START_SECONDS):
            self.process.kill()
            raise HelperUnavailable(f"a helper process did not start in {START_SECONDS:g} s")
        try:
            ready = self.conn.recv()
        except (EOFError, OSError):
            ready = None
        if ready != "ready":
            self.process.kill()
            self.process.wait()
            raise HelperUnavailable(
                f"a helper process could not load the engine (exit status "
                f"{self.process.returncode}) with {sys.executable}"
            )

    def arrays(self, shapes: dict, dtype: np.dtype) -> dict:
        """The part's arrays in this helper's block, a larger block made when needed; raise
        ``HelperUnavailable`` when shared memory has no room for it."""
        _, size = _layout(shapes, dtype)
        if self.block is None or self.block.size < size:
            self._drop_block()
            block = shared_memory.SharedMemory(create=True, size=size)
            # Its pages taken now: shared memory is a file system (64 MB in a container), and
            # writing past its room kills the process with SIGBUS (a review). (Linux; macOS has
            # no posix_fallocate, and no such small file system for shared memory.)
            reserve = getattr(os, "posix_fallocate", None)
            try:
                if reserve is not None:
                    reserve(block._fd, 0, size)  # noqa: SLF001
            except OSError as exc:
                block.close()
                block.unlink()
                raise HelperUnavailable(
                    f"no room in shared memory for {size / 2**20:.1f} MiB ({exc.strerror})"
                ) from None
            self.block = block
        return _arrays(self.block, shapes, dtype)

    def send(self, shapes: dict, dtype: np.dtype, total: int, options: dict) -> None:
        self.conn.send((self.block.name, shapes, dtype.str, total, options, np.geterr()))

    def receive(self):
        return _receive(self.conn)

    def close(self, timeout: float = JOIN_SECONDS) -> None:
        try:
            self.conn.send(None)
        except (OSError, ValueError):
            pass
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.conn.close()
        self._drop_block()

    def _drop_block(self) -> None:
        if self.block is not None:
            self.block.close()
            self.block.unlink()
            self.block = None


class HelperUnavailable(RuntimeError):
    """Helper processes cannot be used here: the batch is computed in this process."""


_helpers: list[_Helper] = []
_lock = threading.Lock()
#: Why helpers cannot be used in this process ("" while they can). They hand a pipe to a new
#: interpreter by its file descriptor (``pass_fds``), which Windows does not have: there a
#: batch is computed in this process, as with ``threads=1``.
_unavailable = "" if os.name == "posix" else "helper processes need a POSIX system"


def _take_helpers(count: int) -> list[_Helper]:
    for helper in [h for h in _helpers[:count] if h.process.poll() is not None]:
        _drop_helper(helper)  # ended since the last call (killed?): replaced below
    while len(_helpers) < count:
        helper = _Helper()
        try:
            helper.wait_ready()
        except HelperUnavailable:
            helper.conn.close()
            raise
        _helpers.append(helper)
    return _helpers[:count]


def close_helpers() -> None:
    """End the helper processes and free their blocks (at exit; also for tests)."""
    with _lock:
        while _helpers:
            _helpers.pop().close()


def _forget_helpers() -> None:
    """In a forked child: the helpers are the parent's, not to be ended or freed from here
    (a review: a forked child's exit ended them and unlinked their memory under the
    parent)."""
    global _lock
    _helpers.clear()
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):  # (POSIX)
    os.register_at_fork(after_in_child=_forget_helpers)


atexit.register(close_helpers)
# A process started by multiprocessing ends without running atexit's functions, but with
# multiprocessing's own finalizers: the helpers of such a process are closed by them.
multiprocessing.util.Finalize(None, close_helpers, exitpriority=10)


def _ended(helper: _Helper, error: Exception) -> RuntimeError:
    """The failure of a call whose helper ended during it (it is replaced at the next)."""
    _drop_helper(helper)
    reason = str(error) or "its pipe closed"
    return RuntimeError(f"an engine helper process ended unexpectedly ({reason})")


def _drop_helper(helper: _Helper) -> None:
    _helpers.remove(helper)
    helper.process.kill()
    helper.close(timeout=0.5)


def loss_and_gradients(
    params: dict, images: np.ndarray, labels: np.ndarray, threads: int, options: dict
) -> tuple[float, dict] | None:
    """The mean loss of ``images`` and its gradients, shared between this process and
    ``threads`` − 1 helpers, a contiguous part of the images each: each part's gradients,
    divided by the batch's size, add up to the batch's. None when the helpers are busy with
    another caller's batch (that caller's thread holds them; compute it in-process then).

    ``params`` already in the images' dtype; ``options`` the activation and padding keywords
    of ``network.forward``.
    """
    global _unavailable
    if _unavailable or not _lock.acquire(blocking=False):
        return None
    try:
        return _by_images(params, images, labels, threads, options)
    except HelperUnavailable as exc:
        # Said once; from then on this process computes its batches alone.
        _unavailable = str(exc)
        warnings.warn(f"{exc}: batches are computed in this process from now on", RuntimeWarning, 3)
        return None
    finally:
        _lock.release()


class _Calls:
    """Requests to helpers and their replies: every helper sent a request is waited for,
    even after a failure (none may be left with a reply unread), and the first failure is
    kept to be raised."""

    def __init__(self) -> None:
        self.failure: BaseException | None = None

    def send(self, helper: _Helper, *request) -> bool:
        try:
            helper.send(*request)
        except OSError as exc:
            self.fail(_ended(helper, exc))
            return False
        return True

    def receive(self, helper: _Helper) -> bool:
        """Wait for ``helper``'s reply; whether it succeeded."""
        try:
            raised, error = helper.receive()
        except (EOFError, OSError) as exc:
            self.fail(_ended(helper, exc))
            return False
        for kind in dict.fromkeys(raised):
            warnings.warn(f"{kind} encountered in a helper's part of the batch", RuntimeWarning, 3)
        if error is not None:
            kind, message = error
            self.fail(_KNOWN_ERRORS.get(kind, RuntimeError)(message))
            return False
        return True

    def fail(self, failure: BaseException) -> None:
        self.failure = self.failure or failure

    def check(self) -> None:
        if self.failure is not None:
            raise self.failure


def _by_images(params, images, labels, threads, options):
    n = images.shape[0]
    dtype = images.dtype
    bounds = [n * i // threads for i in range(threads + 1)]
    parts = [(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]
    calls = _Calls()
    pending: list[tuple[_Helper, dict]] = []  # sent a request, reply not read yet
    try:
        for helper, (first, end) in zip(_take_helpers(len(parts) - 1), parts[1:], strict=True):
            shapes = _shapes((end - first, *images.shape[1:]), params)
            arrays = helper.arrays(shapes, dtype)
            arrays["images"][...] = images[first:end]
            arrays["labels"][...] = labels[first:end]
            for key in network.PARAM_KEYS:
                arrays[key][...] = params[key]
            if calls.send(helper, shapes, dtype, n, options):
                pending.append((helper, arrays))
        try:  # this process's part meanwhile
            first, end = parts[0]
            loss, grads = _part(
                params, images[first:end], labels[first:end], n, options, alongside=True
            )
        except Exception as exc:  # noqa: BLE001 - raised by calls.check(), once all answered
            calls.fail(exc)
        while pending:
            helper, arrays = pending[0]
            answered = calls.receive(helper)
            pending.pop(0)
            if answered and calls.failure is None:
                for key in network.PARAM_KEYS:
                    grads[key] = grads[key] + arrays[f"grad {key}"]
                loss += float(arrays["loss"])
    finally:
        # Left with a reply unread (Ctrl+C, or a failure before the replies were read): that
        # reply would be read as the next call's, its gradients one call behind (a review).
        # Such a helper is ended and replaced at the next call.
        for helper in [helper for helper, _ in pending]:
            if helper in _helpers:
                _drop_helper(helper)
    calls.check()
    return loss, grads

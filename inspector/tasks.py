"""One-off background jobs (loading a folder of images) with progress, cancel and errors.

The job function runs in its own ``QThread``; it receives ``progress(done, total)`` and
``cancelled()`` callables. Its result, its failure or its cancellation comes back to the GUI
thread as a signal.

A running thread is held here until it has ended, whatever becomes of its task: a QThread
destroyed while it runs aborts the whole process, and a task goes with its owner (a panel
deleted mid-job: a review). A task that is gone counts as cancelled, so its job stops at its
next check; at exit the threads still held are waited for.
"""

from __future__ import annotations

import atexit
import threading
import traceback
import weakref
from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot
from shiboken6 import isValid

#: Longest wait, at exit, for a thread still running (its job is asked to stop first).
EXIT_WAIT_MS = 10_000


class _TaskRunner(QObject):
    progress = Signal(int, int)
    done = Signal(object)
    failed = Signal(object, str)  # exception, traceback text
    cancelled = Signal()

    def __init__(self, job: Callable, cancelled: Callable[[], bool]) -> None:
        super().__init__()
        self._job = job
        self._cancelled = cancelled

    @Slot()
    def run(self) -> None:
        try:
            self._report(self._job)
        finally:
            # The thread ends itself: an owner blocked in wait() on the GUI thread could
            # never process a request to quit.
            QThread.currentThread().quit()

    def _report(self, job) -> None:
        try:
            result = job(self.progress.emit, self._cancelled)
        except Exception as exc:  # noqa: BLE001 - reported to the user by the owner
            if self._cancelled():
                self.cancelled.emit()
            else:
                self.failed.emit(exc, traceback.format_exc())
            return
        if self._cancelled():
            self.cancelled.emit()
        else:
            self.done.emit(result)


class _Threads(QObject):
    """The running threads (with their runners), each until it has ended."""

    def __init__(self) -> None:
        super().__init__()
        self._held: dict[int, tuple[QThread, QObject, threading.Event]] = {}
        atexit.register(self.wait_all)

    def hold(self, thread: QThread, runner: QObject, cancel: threading.Event) -> None:
        key = id(thread)
        self._held[key] = (thread, runner, cancel)
        # Queued: released on this (GUI) thread, never by the ending thread itself.
        thread.finished.connect(lambda: self._release(key), Qt.ConnectionType.QueuedConnection)

    def _release(self, key: int) -> None:
        held = self._held.pop(key, None)
        if held is not None:
            held[0].wait()

    @property
    def count(self) -> int:
        return len(self._held)

    def wait_all(self) -> None:
        for thread, _runner, cancel in list(self._held.values()):
            cancel.set()
            thread.wait(EXIT_WAIT_MS)
        self._held.clear()


_threads: _Threads | None = None


def running_threads() -> int:
    """Threads of background tasks not yet ended and released (for tests)."""
    return 0 if _threads is None else _threads.count


class BackgroundTask(QObject):
    """Runs ``job(progress, cancelled)`` in a new thread; emits ``done``/``failed``/``cancelled``
    on the GUI thread, then ``ended``. Keep a reference until ``ended``."""

    progress = Signal(int, int)
    done = Signal(object)
    failed = Signal(object, str)
    cancelled = Signal()
    ended = Signal()

    def __init__(self, job: Callable, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._cancel = cancel = threading.Event()
        me = weakref.ref(self)

        def cancelled() -> bool:
            task = me()
            return cancel.is_set() or task is None or not isValid(task)

        self._thread = QThread()
        self._runner = _TaskRunner(job, cancelled)
        self._runner.moveToThread(self._thread)
        self._thread.started.connect(self._runner.run)
        self._runner.progress.connect(self.progress)
        for signal, relay in (
            (self._runner.done, self.done),
            (self._runner.failed, self.failed),
            (self._runner.cancelled, self.cancelled),
        ):
            signal.connect(relay)
            signal.connect(self._finish)

    def start(self) -> None:
        global _threads
        if _threads is None:
            _threads = _Threads()
        _threads.hold(self._thread, self._runner, self._cancel)
        self._thread.start()

    def cancel(self) -> None:
        """Ask the job to stop; it ends with ``cancelled`` once it notices."""
        self._cancel.set()

    def wait(self, msecs: int = 5000) -> bool:
        """Block until the thread has ended (for shutdown and tests)."""
        return self._thread.wait(msecs)

    def _finish(self, *_args) -> None:
        self._thread.wait()
        self.ended.emit()

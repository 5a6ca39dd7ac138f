"""One-off background jobs (loading a folder of images) with progress, cancel and errors.

The job function runs in its own ``QThread``; it receives ``progress(done, total)`` and
``cancelled()`` callables. Its result, its failure or its cancellation comes back to the GUI
thread as a signal.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable

from PySide6.QtCore import QObject, QThread, Signal, Slot


class _TaskRunner(QObject):
    progress = Signal(int, int)
    done = Signal(object)
    failed = Signal(object, str)  # exception, traceback text
    cancelled = Signal()

    def __init__(self, job: Callable, cancel_flag: threading.Event) -> None:
        super().__init__()
        self._job = job
        self._cancel = cancel_flag

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
            result = job(self.progress.emit, self._cancel.is_set)
        except Exception as exc:  # noqa: BLE001 - reported to the user by the owner
            if self._cancel.is_set():
                self.cancelled.emit()
            else:
                self.failed.emit(exc, traceback.format_exc())
            return
        if self._cancel.is_set():
            self.cancelled.emit()
        else:
            self.done.emit(result)


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
        self._cancel = threading.Event()
        self._thread = QThread()
        self._runner = _TaskRunner(job, self._cancel)
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

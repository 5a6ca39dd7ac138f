"""Training off the GUI thread: a worker object living in its own ``QThread``.

The worker steps the session under a lock (so the window can read history or change live
settings between two steps), checks a stop flag between steps so Pause takes effect at once,
paces itself to the requested speed, and publishes only a reference to the newest record: the
window picks it up at most once per frame instead of being sent every step.
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal, Slot

from model.diagnostics import Finding
from model.record import StepRecord
from model.session import TrainingSession


@dataclass(frozen=True)
class RunOutcome:
    """How a run request ended: steps taken, and why it stopped early (if it did)."""

    steps: int
    paused_by: Finding | None = None
    stopped: bool = False


class TrainingWorker(QObject):
    """Steps a ``TrainingSession``; lives in a worker thread, driven by queued ``run`` calls."""

    finished = Signal(object)  # RunOutcome
    failed = Signal(str, str)  # message, traceback text

    def __init__(self, session: TrainingSession, lock: threading.RLock) -> None:
        super().__init__()
        self._session = session
        self._lock = lock
        self._stop = threading.Event()
        self.latest: StepRecord | None = None
        self.iterations_per_second = 0.0  # 0 means as fast as possible

    def stop(self) -> None:
        """Ask a running loop to stop after the step in progress (thread-safe)."""
        self._stop.set()

    def arm(self) -> None:
        """Clear the stop flag; called by the owner *before* queueing ``run``, so that a stop
        requested between queueing and starting is still honoured."""
        self._stop.clear()

    @Slot(int, bool)
    def run(self, max_steps: int, pause_on_findings: bool) -> None:
        """Take up to ``max_steps`` steps; emits ``finished`` (or ``failed``) at the end."""
        steps = 0
        paused_by = None
        deadline = time.perf_counter()
        try:
            while steps < max_steps:
                # The flag is checked under the lock: once the owner holds the lock after
                # setting it, no further step can start on a session it is about to change.
                with self._lock:
                    if self._stop.is_set():
                        break
                    record = self._session.step()
                    self.latest = record
                steps += 1
                if pause_on_findings:
                    paused_by = next((f for f in record.findings if f.pauses), None)
                    if paused_by is not None:
                        break
                deadline = self._pace(deadline)
        except Exception as exc:  # noqa: BLE001 - any failure must reach the user, not kill the thread
            self.failed.emit(f"{type(exc).__name__}: {exc}", traceback.format_exc())
        self.finished.emit(RunOutcome(steps, paused_by, self._stop.is_set()))

    def _pace(self, deadline: float) -> float:
        """Sleep until the next step is due at the requested speed (waking early on stop)."""
        rate = self.iterations_per_second
        if rate <= 0:
            return time.perf_counter()
        deadline += 1.0 / rate
        delay = deadline - time.perf_counter()
        if delay > 0:
            self._stop.wait(delay)
            return deadline
        return time.perf_counter()

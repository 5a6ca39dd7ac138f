"""Trying a fix before it is taken: a short fresh run of the settings a fix would start, and
what became of it, in words for the fix's button.

The question's run has three causes (all-positive weights, raw pixels, a learning rate far too
large) and Diagnostics offers each cause's fix on its own besides the answer's whole fix. A
teacher found that on the question's images each alone still fails: N(0, 0.02) alone dies at
iteration 2, pixels 0..1 alone at iteration 1, the smaller rate alone does not learn. Tried
first, each button says so before it is pressed.

A fix can be tried when it starts the run again (new weights), or changes a setting from
iteration 0 on (going back to it, or before the first update): then what it leads to is the
fresh run of the changed settings, with the same seed and sample order. Fixes that go back to a
later iteration need the run's own past, and are not tried.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from model.blas import single_threaded_blas
from model.config import ConfigError, TrainingConfig
from model.data import Dataset
from model.diagnostics import Fix
from model.formatting import format_number, format_share
from model.sweep import (
    CELL_HISTORY_MB,
    DIVERGENCE_METRICS,
    classify,
    default_learned_accuracy,
    settled,
)
from model.sweep import train as train_fresh

#: Updates a fix is tried for (twice the Outcome map's default: a run that learns the question's
#: images does so within some 10–40).
TRIAL_ITERATIONS = 100
#: Largest work a trial may take, in multiply-adds of the convolution's forward pass over the
#: whole dataset (evaluated at every iteration) times iterations: about 2 s on a 2-core machine
#: (80 Shapes images of 32×32 with 8 filters of 3×3×3, 1.8e9: 0.85 s). The question's images
#: take 5.5e6. A trial that runs longer anyway is stopped by the window.
MAX_TRIAL_WORK = 4e9
#: Longest wait for the trials' process to end when asked to, before it is terminated.
CLOSE_SECONDS = 1.0


@dataclass(frozen=True)
class Trial:
    """What a fresh run of a fix's settings did.

    Attributes
    ----------
    outcome : one of ``model.sweep.OUTCOMES``.
    iterations : updates it was tried for.
    iterations_run : updates taken (fewer when the outcome was settled earlier).
    images : images in the dataset.
    filters : filters of the run.
    accuracy, loss : on the whole dataset at the last iteration run.
    initial_loss : on the whole dataset at iteration 0.
    learned_level : the accuracy that counts as learned on these images.
    learned_at : iteration from which the accuracy stayed at ``learned_level`` or above
        ('learned' only; the initial weights may classify two images right by luck).
    died_at : iteration by which every filter was dead ('dead filter' only).
    diverged_at : first iteration with a NaN or infinity ('diverged' only).
    best_accuracy, best_at : the highest accuracy of the trial and the first iteration with it
        ('stuck' only, when above the last iteration's: a run that got every image right and
        lost one again is not one that never learned).
    """

    outcome: str
    iterations: int
    iterations_run: int
    images: int
    filters: int
    accuracy: float
    loss: float
    initial_loss: float
    learned_level: float = 1.0
    learned_at: int | None = None
    died_at: int | None = None
    diverged_at: int | None = None
    best_accuracy: float | None = None
    best_at: int | None = None

    def describe(self) -> str:
        """One line for the fix's button: 'Tried: …'."""
        if self.outcome == "learned":
            change = (
                f"loss {format_number(self.initial_loss)} → {format_number(self.loss)} in "
                f"{self.iterations_run} iterations"
            )
            end = ""
            # (95% of 12 images is all 12: "at least 95%" read as if one could be wrong)
            if math.ceil(self.learned_level * self.images - 1e-9) >= self.images:
                right = "both images right" if self.images == 2 else f"all {self.images} right"
            else:  # (the level held from then on; the last iteration's share may be higher)
                right = f"at least {format_share(self.learned_level)} of the images right"
                end = f" ({format_share(self.accuracy)} at the end)"
            if self.learned_at == 0:  # (not by learning: the initial weights had it right)
                return f"Tried: {right} from the start{end}, {change}."
            return f"Tried: it learns, {change}, {right} from iteration {self.learned_at}{end}."
        if self.outcome == "dead filter":
            if self.filters == 1:
                return f"Tried: the filter dies at iteration {self.died_at}."
            return f"Tried: every filter is dead by iteration {self.died_at}."
        if self.outcome == "diverged":
            return f"Tried: the run overflows to NaN or infinity at iteration {self.diverged_at}."
        best = ""
        if self.best_accuracy is not None and self.best_accuracy > self.accuracy:
            best = f" ({format_share(self.best_accuracy)} at iteration {self.best_at})"
        return (
            f"Tried for {self.iterations} iterations: not learned, accuracy "
            f"{format_share(self.accuracy)}{best}, loss {format_number(self.initial_loss)} → "
            f"{format_number(self.loss)}."
        )


def trial_config(config: TrainingConfig, fix: Fix, latest_iteration: int) -> TrainingConfig | None:
    """The settings a fresh run would need to show what ``fix`` leads to, for a run at
    ``latest_iteration`` with ``config``; None when it cannot be tried that way (it goes back
    to a later iteration, or applies from the run's next update on) or is refused."""
    fresh = (
        fix.needs_reset or fix.rewind_to == 0 or (fix.rewind_to is None and latest_iteration == 0)
    )
    if not fresh or not fix.changes:
        return None
    try:
        return config.with_changes(**fix.changes, history_budget_mb=CELL_HISTORY_MB)
    except ConfigError:
        return None


def trial_work(dataset: Dataset, config: TrainingConfig, iterations: int = TRIAL_ITERATIONS):
    """The work of a trial (see ``MAX_TRIAL_WORK``): images × output pixels × filters ×
    channels × K² × iterations."""
    images, channels, height, width = dataset.images.shape
    k = config.kernel_size
    if config.padding == "valid":
        height, width = max(height - k + 1, 1), max(width - k + 1, 1)
    return float(images * height * width) * config.num_filters * channels * k * k * iterations


def run_trial(
    dataset: Dataset,
    config: TrainingConfig,
    iterations: int = TRIAL_ITERATIONS,
    should_stop: Callable[[], bool] | None = None,
) -> Trial | None:
    """Train ``config`` afresh for ``iterations`` updates (less once its outcome is settled)
    and say how it ended; None when ``should_stop()`` ended it first."""
    session = train_fresh(dataset, config, iterations, should_stop)
    record = session.latest
    if record.iteration < iterations and not settled(record):
        return None  # (stopped: asking should_stop again could say so of a trial that ended)
    level = default_learned_accuracy(len(dataset))
    outcome = classify(session, level)
    table = session.history.metrics
    steps = table.column("iteration")
    learned_at = died_at = diverged_at = best_accuracy = best_at = None
    if outcome == "stuck":
        # After an update: iteration 0's share is the initial weights' luck, not learning.
        accuracy = table.column("accuracy")[1:]
        best = int(np.nanargmax(accuracy)) if np.isfinite(accuracy).any() else None
        if best is not None and accuracy[best] > record.accuracy:
            best_accuracy, best_at = float(accuracy[best]), int(steps[best + 1])
    elif outcome == "learned":
        missed = np.flatnonzero(table.column("accuracy") < level)
        learned_at = int(steps[missed[-1] + 1]) if missed.size else 0
    elif outcome == "dead filter":
        died_at = max(record.dead_since)
    elif outcome == "diverged":
        finite = np.ones(len(steps), dtype=bool)
        for name in DIVERGENCE_METRICS:
            finite &= np.isfinite(table.column(name))
        diverged_at = int(steps[np.argmin(finite)]) if not finite.all() else record.iteration
    return Trial(
        outcome=outcome,
        iterations=iterations,
        iterations_run=record.iteration,
        images=len(dataset),
        filters=config.num_filters,
        accuracy=record.accuracy,
        loss=record.loss,
        initial_loss=float(table.column("loss")[0]),
        learned_level=level,
        learned_at=learned_at,
        died_at=died_at,
        diverged_at=diverged_at,
        best_accuracy=best_accuracy,
        best_at=best_at,
    )


# ---------------------------------------------------------------------------------------------
# A process for trials
# ---------------------------------------------------------------------------------------------

#: Sent to the trials' process while a trial runs: it stops at its next update.
_STOP = "stop"


def _serve(connection) -> None:
    """The trials' process: try each (dataset, config, seconds) received and send back
    ``("done", (trial, too_slow))`` or ``("error", text)``; end when the window's process has
    (the pipe closes: it alone holds the other end) or sends None."""
    # Ctrl+C reaches the whole process group; the window alone handles it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            request = connection.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        if request == _STOP:
            continue  # (it came after its trial had ended)
        dataset, config, seconds = request
        said: list = []  # what the window sent during the trial (it stops the trial)
        try:
            reply = ("done", _trial_until(connection, dataset, config, seconds, said))
        except Exception as exc:  # noqa: BLE001 - said to the window, which shows no note
            reply = ("error", f"{type(exc).__name__}: {exc}")
        try:
            connection.send(reply)
        except (BrokenPipeError, OSError):
            return
        if None in said:
            return


def _trial_until(connection, dataset: Dataset, config: TrainingConfig, seconds: float, said):
    """``run_trial`` until it ends, ``seconds`` pass (too slow) or the window says anything
    (``_STOP``, or None to end the process), which goes into ``said``."""
    deadline = time.monotonic() + seconds
    timed_out = False

    def stop() -> bool:
        nonlocal timed_out
        if connection.poll():
            said.append(connection.recv())
        timed_out = timed_out or time.monotonic() > deadline
        return bool(said) or timed_out

    trial = run_trial(dataset, config, should_stop=stop)
    return trial, timed_out and not said


class TrialWorker:
    """Tries fixes one at a time in a process of its own, started on the first trial (about
    half a second). In a thread of the window's process, a trial's many short NumPy calls held
    the interpreter lock between them and slowed the window's repaints 2–4× (a review).

    The process reads a pipe whose other end only this process holds, so it ends when this
    one does, however that happens (a review found a pool's idle worker left running for good
    after the window was killed). One trial at a time: ``submit``, then ``poll`` until it gives
    the reply, ``stop`` to end it early."""

    def __init__(self) -> None:
        self._context = multiprocessing.get_context("spawn")  # (never fork a Qt process)
        self._process = None
        self._connection = None
        self._waiting = False

    @property
    def started(self) -> bool:
        return self._process is not None

    def submit(self, dataset: Dataset, config: TrainingConfig, seconds: float) -> None:
        """Start trying ``config`` on ``dataset`` for at most ``seconds`` (a new process if
        there is none, or it ended). Raises ``OSError`` when no process can be started, and
        ``RuntimeError`` while a trial's reply is still to come (one at a time)."""
        if self._waiting:
            raise RuntimeError("a trial is in progress: poll for its reply first")
        if self._process is not None and not self._process.is_alive():
            self.close()
        if self._process is None:
            ours, theirs = self._context.Pipe()
            process = self._context.Process(
                target=_serve, args=(theirs,), name="training-inspector-trials", daemon=True
            )
            with single_threaded_blas():  # one core: the window has the other
                process.start()
            theirs.close()
            self._process, self._connection = process, ours
        self._connection.send((dataset, config, seconds))
        self._waiting = True

    def poll(self) -> tuple[str, object] | None:
        """The reply to the trial submitted, once there is one: ``("done", (trial, too_slow))``
        (trial None when stopped or too slow), ``("error", text)``, or ``("ended", "")`` when
        the process ended before replying (a new one starts with the next ``submit``)."""
        if not self._waiting:
            return None
        try:
            if self._connection.poll():
                self._waiting = False
                return self._connection.recv()
        except (EOFError, OSError):
            pass
        else:
            if self._process.is_alive():
                return None
        self._waiting = False
        self.close()
        return ("ended", "")

    def stop(self) -> None:
        """The trial in progress stops at its next update."""
        if self._waiting:
            with contextlib.suppress(OSError):
                self._connection.send(_STOP)

    def close(self, seconds: float = CLOSE_SECONDS) -> None:
        """End the process: asked to, it does at the trial's next update; one that does not
        within ``seconds`` (stopped, swapping) is terminated (a review: closing the window
        waited as long as a stalled process)."""
        process, connection = self._process, self._connection
        self._process = self._connection = None
        self._waiting = False
        if process is None:
            return
        with contextlib.suppress(OSError):
            connection.send(_STOP)
            connection.send(None)
        process.join(seconds)
        if process.is_alive():
            process.terminate()
            process.join(seconds)
        connection.close()

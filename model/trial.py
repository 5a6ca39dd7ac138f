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

import multiprocessing
import signal
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from model.blas import single_threaded_blas
from model.config import ConfigError, TrainingConfig
from model.data import Dataset
from model.diagnostics import Fix
from model.formatting import format_number, format_share
from model.sweep import CELL_HISTORY_MB, DIVERGENCE_METRICS, classify, default_learned_accuracy
from model.sweep import train as train_fresh

#: Updates a fix is tried for (twice the Outcome map's default: a run that learns the question's
#: images does so within some 10–40).
TRIAL_ITERATIONS = 100
#: Largest work a trial may take, in multiply-adds of the convolution's forward pass over the
#: whole dataset (evaluated at every iteration) times iterations: about 2 s on a 2-core machine
#: (80 Shapes images of 32×32 with 8 filters of 3×3×3, 1.8e9: 0.85 s). The question's images
#: take 5.5e6. A trial that runs longer anyway is stopped by the window.
MAX_TRIAL_WORK = 4e9


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

    def describe(self) -> str:
        """One line for the fix's button: 'Tried: …'."""
        if self.outcome == "learned":
            change = (
                f"loss {format_number(self.initial_loss)} → {format_number(self.loss)} in "
                f"{self.iterations_run} iterations"
            )
            end = ""
            if self.learned_level >= 1.0:
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
        return (
            f"Tried for {self.iterations} iterations: not learned, accuracy "
            f"{format_share(self.accuracy)}, loss {format_number(self.loss)}."
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
    if should_stop is not None and should_stop():
        return None
    level = default_learned_accuracy(len(dataset))
    outcome = classify(session, level)
    table = session.history.metrics
    steps = table.column("iteration")
    learned_at = died_at = diverged_at = None
    if outcome == "learned":
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
    )


# ---------------------------------------------------------------------------------------------
# A process for trials
# ---------------------------------------------------------------------------------------------

_worker_stop = None


def _start_worker(stop) -> None:
    global _worker_stop
    _worker_stop = stop
    # Ctrl+C reaches the whole process group; the window alone handles it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _trial_in_worker(dataset: Dataset, config: TrainingConfig, seconds: float):
    deadline = time.monotonic() + seconds
    timed_out = []

    def stop() -> bool:
        if time.monotonic() > deadline:
            timed_out.append(True)
        return _worker_stop.is_set() or bool(timed_out)

    trial = run_trial(dataset, config, should_stop=stop)
    return trial, bool(timed_out) and not _worker_stop.is_set()


class TrialWorker:
    """Tries fixes one at a time in a process of its own, started on the first trial (about
    half a second) and ended by ``close``. In a thread of the window's process, a trial's many
    short NumPy calls held the interpreter lock between them and slowed the window's repaints
    2–4× (a review)."""

    def __init__(self) -> None:
        self._context = multiprocessing.get_context("spawn")  # (never fork a Qt process)
        self._pool: ProcessPoolExecutor | None = None
        self._stop = None

    def submit(self, dataset: Dataset, config: TrainingConfig, seconds: float) -> Future:
        """Start trying ``config`` on ``dataset`` for at most ``seconds``; the future gives
        ``(trial, too_slow)``: trial None when it was stopped (``stop``) or too slow. Submit
        the next only once this one is done."""
        if self._pool is None:
            self._stop = self._context.Event()
            with single_threaded_blas():  # one core: the window has the other
                self._pool = ProcessPoolExecutor(
                    max_workers=1,
                    mp_context=self._context,
                    initializer=_start_worker,
                    initargs=(self._stop,),
                )
                future = self._pool.submit(_trial_in_worker, dataset, config, seconds)
            return future
        self._stop.clear()
        return self._pool.submit(_trial_in_worker, dataset, config, seconds)

    def stop(self) -> None:
        """The trial in progress stops at its next update."""
        if self._stop is not None:
            self._stop.set()

    @property
    def started(self) -> bool:
        return self._pool is not None

    def close(self) -> None:
        """Stop the trial in progress and end the process (waits for its next update)."""
        if self._pool is not None:
            self._stop.set()
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = self._stop = None

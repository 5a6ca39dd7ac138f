"""Every iteration of a run, within a memory budget.

What is kept, and what goes first when the budget is reached:

1. The metrics table: the scalar metrics of ``model.record.METRIC_NAMES`` plus the loss and
   probability of every image, for every iteration. It gives the curves. It is thinned (every
   other old row dropped) only if it alone outgrows half the budget.
2. Records, newest ones whole: parameters, gradients, the update, optimizer state, per-image
   predictions, findings, and the pre-activation and ReLU maps of every image. When the budget
   is reached, older records lose, in this order:
   a. their pre-activation and ReLU maps (recomputed exactly from the parameters when viewed);
   b. the oldest records between checkpoints (every ``checkpoint_every``-th iteration), whole;
   c. every other checkpoint (the interval doubles), then b again.
3. Every finding of the run as it first appeared (``findings``), for reports: a few a run.

The session rebuilds any dropped iteration exactly by replaying from the checkpoint before it
(``TrainingSession.record``), so nothing is lost, only recomputed. The newest record and
iteration 0 are always kept whole except for maps of iteration 0.

Every kept record is one of two kinds, each counted within a few percent of the memory it
really holds: whole, or whole but for its maps. (Records stripped to their conv arrays were a
third kind, until a long run showed why not: they were mostly small Python objects, which the
interpreter's allocator keeps the high-water mark of, and as the run grew, checkpoints took
their place in the budget while the memory they had held stayed in use, so resident memory grew
under a flat budget: 247 MiB at 30k iterations of the question, 383 MiB at 160k. Nothing read
their conv arrays, and recomputing an iteration replays from a checkpoint either way.)
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import deque

import numpy as np

from model.diagnostics import Finding, FindingLog
from model.memory import release_freed_memory
from model.optim import OptimSettings
from model.record import METRIC_NAMES, StepRecord

#: Python-object overhead of one record beyond its arrays (dataclass, dicts, the metrics' floats,
#: settings), and of one NumPy array beyond its data (object, shape and strides), measured with
#: tracemalloc on the question's example and rounded up (tests/model/test_history_budget.py
#: checks them). With the question's small arrays they are a sixth of a record.
RECORD_OVERHEAD_BYTES = 5000
ARRAY_OVERHEAD_BYTES = 200
#: A finding's objects and each of its fixes (their texts are counted at 2 bytes a character:
#: a '×' or '→' makes Python store the whole string that way).
FINDING_OVERHEAD_BYTES = 900
FIX_OVERHEAD_BYTES = 600
#: Columns that hold a largest |value|; thinning keeps their maxima (see ``MetricsTable.thin``).
PEAK_COLUMNS = (
    "conv_weight_absmax",
    "conv_grad_absmax",
    "conv_update_absmax",
    "pre_activation_absmax",
    "activation_max",
    "max_abs_logit",
)


def _array_nbytes(array) -> int:
    return 0 if array is None else array.nbytes + ARRAY_OVERHEAD_BYTES


def _arrays_nbytes(arrays) -> int:
    return 0 if arrays is None else sum(_array_nbytes(a) for a in arrays.values())


def _findings_nbytes(findings) -> int:
    total = 0
    for finding in findings:
        total += FINDING_OVERHEAD_BYTES + 2 * (len(finding.title) + len(finding.explanation))
        total += sum(FIX_OVERHEAD_BYTES + 2 * len(fix.label) for fix in finding.fixes)
    return total


def record_nbytes(record: StepRecord) -> int:
    """Memory held by ``record`` (an upper estimate: what the budget counts)."""
    total = RECORD_OVERHEAD_BYTES + _findings_nbytes(record.findings)
    for group in (record.params, record.velocity, record.grads, record.update):
        total += _arrays_nbytes(group)
    if not _same_memory(record.activation, record.pre_activation):
        total += _array_nbytes(record.activation)
    for array in (
        record.pre_activation,
        record.logits,
        record.probabilities,
        record.losses,
        record.dead_fraction_per_filter,
    ):
        total += _array_nbytes(array)
    return total


def _same_memory(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    """Whether two maps are one array, or views of one buffer (with the identity activation,
    a record's two maps are views of the engine's one buffer)."""
    if a is None or b is None:
        return False
    return a is b or (a.base is not None and a.base is b.base)


def strip_maps(record: StepRecord) -> StepRecord:
    return dataclasses.replace(record, pre_activation=None, activation=None)


def _grown(array: np.ndarray, rows: int, capacity: int) -> np.ndarray:
    """``array`` with room for ``capacity`` rows, its first ``rows`` copied. Only those are
    written: the room after them is not touched until rows arrive, so the system does not hand
    it out until then (``np.concatenate`` with an empty block wrote all of it, and a table that
    had just doubled held twice the memory its rows need)."""
    grown = np.empty((capacity, *array.shape[1:]), dtype=array.dtype)
    grown[:rows] = array[:rows]
    return grown


class MetricsTable:
    """Column-wise scalar metrics and per-image loss/probability, one row per kept iteration."""

    def __init__(self, num_images: int) -> None:
        self.num_images = num_images
        self._rows = 0
        self._scalars = np.empty((16, len(METRIC_NAMES)))
        self._losses = np.empty((16, num_images))
        self._probabilities = np.empty((16, num_images))

    def __len__(self) -> int:
        return self._rows

    @property
    def nbytes(self) -> int:
        return self._scalars.nbytes + self._losses.nbytes + self._probabilities.nbytes

    @property
    def row_nbytes(self) -> int:
        return 8 * (len(METRIC_NAMES) + 2 * self.num_images)

    def append(self, record: StepRecord) -> None:
        """Add the row of ``record``."""
        self.extend(
            np.array([[record.metrics[name] for name in METRIC_NAMES]]),
            record.losses[np.newaxis],
            record.probabilities[np.newaxis],
        )

    def replace_last(self, record: StepRecord) -> None:
        """Put the row of ``record`` in the place of the last row (the same iteration)."""
        if not self._rows or self._scalars[self._rows - 1, 0] != record.iteration:
            raise ValueError(f"the last row is not of iteration {record.iteration}")
        scalars = [record.metrics[name] for name in METRIC_NAMES]  # (first: may raise)
        last = self._rows - 1
        self._scalars[last] = scalars
        self._losses[last] = record.losses
        self._probabilities[last] = record.probabilities

    def extend(self, scalars: np.ndarray, losses: np.ndarray, probabilities: np.ndarray) -> None:
        """Add rows: scalars (k, len(METRIC_NAMES)), losses and probabilities (k, N)."""
        new = len(scalars)
        if self._rows + new > len(self._scalars):
            capacity = self._rows + max(16, self._rows, new)
            self._scalars = _grown(self._scalars, self._rows, capacity)
            self._losses = _grown(self._losses, self._rows, capacity)
            self._probabilities = _grown(self._probabilities, self._rows, capacity)
        end = self._rows + new
        self._scalars[self._rows : end] = scalars
        self._losses[self._rows : end] = losses
        self._probabilities[self._rows : end] = probabilities
        self._rows = end

    def copy(self) -> MetricsTable:
        """An independent table with the same rows."""
        table = MetricsTable(self.num_images)
        table.extend(*self.rows_after(-math.inf))
        return table

    def rows_after(self, iteration: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Copies of the rows of every iteration after ``iteration``, as ``extend`` takes them."""
        start = int(np.searchsorted(self.iterations, iteration, side="right"))
        end = self._rows
        return (
            self._scalars[start:end].copy(),
            self._losses[start:end].copy(),
            self._probabilities[start:end].copy(),
        )

    def fit(self, max_bytes: int) -> None:
        """Thin the oldest rows until the rows take at most ``max_bytes``."""
        thinned = False
        while self._rows * self.row_nbytes > max_bytes and self._rows > 4:
            self.thin()
            thinned = True
        if thinned:
            self.compact()

    def column(self, name: str) -> np.ndarray:
        """A read-only view of one metric over the kept rows."""
        view = self._scalars[: self._rows, METRIC_NAMES.index(name)]
        view.flags.writeable = False
        return view

    @property
    def iterations(self) -> np.ndarray:
        return self.column("iteration")

    @property
    def image_losses(self) -> np.ndarray:
        """(rows, N) loss of every image after each kept iteration (read-only view)."""
        view = self._losses[: self._rows]
        view.flags.writeable = False
        return view

    @property
    def image_probabilities(self) -> np.ndarray:
        view = self._probabilities[: self._rows]
        view.flags.writeable = False
        return view

    def truncate_after(self, iteration: int) -> None:
        """Forget rows of iterations after ``iteration``."""
        self._rows = int(np.searchsorted(self.iterations, iteration, side="right"))

    def thin(self) -> None:
        """Drop every other row of the older half (row 0 stays), halving its resolution.

        The largest-magnitude columns (``PEAK_COLUMNS``) of a dropped row are folded into the
        row kept after it, so the run's maxima (which fixed colour scales use) survive.
        """
        old_end = self._rows // 2
        keep = np.ones(self._rows, dtype=bool)
        keep[1:old_end:2] = False
        dropped = np.flatnonzero(~keep)
        for column in PEAK_COLUMNS:
            c = METRIC_NAMES.index(column)
            pair = self._scalars[dropped, c], self._scalars[dropped + 1, c]
            self._scalars[dropped + 1, c] = np.fmax(*pair)
        kept = int(keep.sum())
        self._scalars[:kept] = self._scalars[: self._rows][keep]
        self._losses[:kept] = self._losses[: self._rows][keep]
        self._probabilities[:kept] = self._probabilities[: self._rows][keep]
        self._rows = kept

    def compact(self) -> None:
        """Release unused capacity."""
        self._scalars = self._scalars[: max(self._rows, 16)].copy()
        self._losses = self._losses[: max(self._rows, 16)].copy()
        self._probabilities = self._probabilities[: max(self._rows, 16)].copy()


class History:
    """Records of one run keyed by iteration, kept within ``budget_bytes``.

    Parameters
    ----------
    num_images : N, for the per-image columns of the metrics table.
    budget_bytes : memory the records and the table may use together.
    checkpoint_every : initial checkpoint interval (doubles when the budget needs it).
    """

    #: Once shrinking has freed this much, the freed memory is handed back to the system
    #: (``model.memory``): with the default budget about every 500 iterations of the question's
    #: example, a call taking 3–6 ms there.
    TRIM_AFTER_BYTES = 32 * 2**20
    #: ... but not more often than this: with large records (16 images × 16 maps of 64×64) the
    #: history frees 32 MiB every other step, and trimming that often cost a quarter of every
    #: step, as the pages handed back are faulted in again by the next step's arrays (measured:
    #: 26 against 20 ms a step).
    TRIM_MIN_SECONDS = 1.0

    def __init__(self, num_images: int, budget_bytes: int, checkpoint_every: int = 32) -> None:
        self.budget_bytes = budget_bytes
        self.checkpoint_every = checkpoint_every
        self.metrics = MetricsTable(num_images)
        self._records: dict[int, StepRecord] = {}
        self._sizes: dict[int, int] = {}
        self._with_maps: deque[int] = deque()
        # In the order records stopped being the newest (former checkpoints join when the
        # interval doubles); checkpoints are skipped.
        self._droppable: deque[int] = deque()
        self._record_bytes = 0
        self._finding_log = FindingLog()
        self._findings_bytes = 0
        self._last = -1
        self._freed = 0
        self._trimmed_at = -math.inf
        self.settings_log: list[tuple[int, OptimSettings]] = []

    # -- reading ---------------------------------------------------------------------------

    @property
    def last_iteration(self) -> int:
        """Iteration of the newest record (-1 when empty)."""
        return self._last

    def __len__(self) -> int:
        """Number of iterations the run has (kept or not), i.e. last iteration + 1."""
        return self.last_iteration + 1

    def stored(self, iteration: int) -> StepRecord | None:
        """The record as kept (possibly without maps or heavy arrays), or None if dropped."""
        return self._records.get(iteration)

    def latest_restorable(self, iteration: int) -> StepRecord:
        """The newest record at or before ``iteration``: every kept record has the full state
        to step from (at most its maps are gone)."""
        # Records are stored in iteration order, so the first match from the end is the newest.
        for k in reversed(self._records):
            if k <= iteration:
                return self._records[k]
        raise LookupError(f"no record at or before iteration {iteration}")

    @property
    def findings(self) -> tuple[Finding, ...]:
        """Every finding of the run as it first appeared, in that order (most severe first
        within an iteration), whether or not its record is still kept."""
        return self._finding_log.findings

    @property
    def nbytes(self) -> int:
        return self._record_bytes + self.metrics.nbytes + self._findings_bytes

    def settings_at(self, iteration: int) -> OptimSettings:
        """Settings that the update of ``iteration`` used or will use."""
        current = self.settings_log[0][1]
        for start, settings in self.settings_log:
            if start > iteration:
                break
            current = settings
        return current

    # -- writing ---------------------------------------------------------------------------

    def log_settings(self, start_iteration: int, settings: OptimSettings) -> None:
        """Record that updates from ``start_iteration`` on use ``settings``."""
        self.settings_log = [(s, v) for s, v in self.settings_log if s < start_iteration]
        if not self.settings_log or self.settings_log[-1][1] != settings:
            self.settings_log.append((start_iteration, settings))

    def append(self, record: StepRecord) -> None:
        """Add the next iteration's record, then shrink older ones to stay within budget."""
        if record.iteration != len(self):
            raise ValueError(f"expected iteration {len(self)}, got {record.iteration}")
        previous = self.last_iteration
        self._store(record)
        if previous >= 0:
            self._classify(previous)
        self.metrics.append(record)
        self._findings_bytes += _findings_nbytes(self._finding_log.add(record.findings))
        self._enforce_budget()

    def truncate_after(self, iteration: int) -> None:
        """Forget every iteration after ``iteration`` (a branch starts there)."""
        for k in [k for k in self._records if k > iteration]:
            self._record_bytes -= self._sizes.pop(k)
            del self._records[k]
        self._last = max(self._records, default=-1)
        for queue in (self._with_maps, self._droppable):
            kept = [k for k in queue if k < iteration]
            queue.clear()
            queue.extend(kept)
        self.metrics.truncate_after(iteration)
        self._finding_log.truncate_after(iteration)
        self._findings_bytes = _findings_nbytes(self.findings)
        self.settings_log = [(s, v) for s, v in self.settings_log if s <= iteration + 1]

    def replace(self, record: StepRecord) -> None:
        """Store a rebuilt record that the budget allows to keep (used by ``rewind``)."""
        self._store(record)

    def restate(self, record: StepRecord) -> None:
        """Replace the newest record by one whose settings or findings were made again (the
        settings iteration 0 goes on with, a prediction of the next update remade for them);
        its metrics row is replaced too, and the finding log forgets what the newest record
        alone had logged, and logs the new findings."""
        if record.iteration != self.last_iteration:
            raise ValueError(f"expected iteration {self.last_iteration}, got {record.iteration}")
        self._store(record)
        self.metrics.replace_last(record)
        self._finding_log.truncate_after(record.iteration - 1)
        self._finding_log.add(record.findings)
        self._findings_bytes = _findings_nbytes(self.findings)

    # -- budget ----------------------------------------------------------------------------

    def _store(self, record: StepRecord) -> None:
        size = record_nbytes(record)
        self._record_bytes += size - self._sizes.get(record.iteration, 0)
        self._sizes[record.iteration] = size
        self._records[record.iteration] = record
        self._last = max(self._last, record.iteration)

    def _classify(self, iteration: int) -> None:
        """Queue a record that is no longer the newest for later shrinking."""
        record = self._records[iteration]
        if record.has_maps:
            self._with_maps.append(iteration)
        if iteration > 0:
            self._droppable.append(iteration)

    def _is_checkpoint(self, iteration: int) -> bool:
        return iteration % self.checkpoint_every == 0

    def _enforce_budget(self) -> None:
        self.metrics.fit(self.budget_bytes // 2)
        before = self._record_bytes
        while self.nbytes > self.budget_bytes and self._shrink_once():
            pass
        self._freed += before - self._record_bytes
        if self._freed >= self.TRIM_AFTER_BYTES:
            now = time.monotonic()
            if now - self._trimmed_at >= self.TRIM_MIN_SECONDS:
                self._freed = 0
                self._trimmed_at = now
                release_freed_memory()

    def _shrink_once(self) -> bool:
        if self._with_maps:
            k = self._with_maps.popleft()
            if k in self._records:
                self._store(strip_maps(self._records[k]))
            return True
        while self._droppable:
            k = self._droppable.popleft()
            if k in self._records and not self._is_checkpoint(k):
                self._record_bytes -= self._sizes.pop(k)
                del self._records[k]
                return True
        return self._double_checkpoint_interval()

    def _double_checkpoint_interval(self) -> bool:
        """Make every other checkpoint an ordinary record so it can be shrunk."""
        checkpoints = [k for k in self._records if k > 0 and k != self.last_iteration]
        if not checkpoints or self.checkpoint_every > self.last_iteration:
            return False
        self.checkpoint_every *= 2
        self._droppable.extend(k for k in sorted(checkpoints) if not self._is_checkpoint(k))
        return True


def describe_budget(history: History) -> str:
    """One line for the status bar: how much of the budget the history uses."""
    used = history.nbytes / 2**20
    total = history.budget_bytes / 2**20
    return f"history {used:.1f} of {total:.0f} MiB, checkpoint every {history.checkpoint_every}"

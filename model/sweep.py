"""Outcome map: train a grid of learning rates × initialisation scales and say how each ended.

Every cell of the grid is a fresh run from the same dataset, seed and base settings, changed
only in its learning rate, the scale ``s`` of the initial weights of both layers (N(0, s) or,
as in the question, U(0, s)) and optionally the pixel scaling. After ``iterations`` updates a
cell is

- 'diverged' when a NaN or an infinity appeared in the loss or the weights;
- 'dead filter' when every filter is dead (ReLU output 0 for every image and position), so
  the conv layer can never learn again;
- 'learned' when the accuracy on the whole dataset reached ``learned_accuracy`` and the loss
  fell below its starting value (with two images a random start is right a quarter of the
  time; that is luck, not learning);
- 'stuck' otherwise: alive and finite, but not (yet) classifying the images.

A cell stops early once its outcome cannot change: after a non-finite value, or once every
filter is dead and the optimizer carries no velocity that could move it again. Its metrics are
then those of the iteration it stopped at.

``run_sweep`` spreads the cells over processes started with 'spawn' (never 'fork': the
desktop app runs Qt threads, which a forked child would inherit in an undefined state). Each
worker receives the dataset once, when it starts.
"""

from __future__ import annotations

import csv
import io
import math
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from model.blas import single_threaded_blas
from model.config import PIXEL_SCALING_LABELS, PIXEL_SCALINGS, UPDATE_MODE_LABELS, TrainingConfig
from model.data import Dataset
from model.formatting import format_count
from model.init import SCALE_FAMILIES, InitSpec
from model.session import TrainingSession

OUTCOMES = ("learned", "stuck", "dead filter", "diverged")
#: Letter written in each cell of the map, so that it reads without colour too.
OUTCOME_LETTERS = {"learned": "L", "stuck": "S", "dead filter": "D", "diverged": "X"}
INIT_FAMILIES = SCALE_FAMILIES
INIT_FAMILY_LABELS = {"normal": "N(0, s)", "uniform": "U(0, s)"}
DEFAULT_ITERATIONS = 50
#: Datasets of at most this many images must be classified perfectly to count as learned.
SMALL_DATASET = 10
#: History budget of a cell: only its last metrics are used, so its past may thin at once.
CELL_HISTORY_MB = 1
#: How often (seconds) a running sweep checks ``cancel``.
POLL_SECONDS = 0.05
#: Metrics whose non-finite value means the run diverged (min, max and mean of every weight
#: array are NaN or infinite as soon as one weight is).
DIVERGENCE_METRICS = (
    "loss",
    "conv_weight_min",
    "conv_weight_max",
    "conv_bias_mean",
    "classifier_weight_min",
    "classifier_weight_max",
    "classifier_bias",
)

Progress = Callable[[int, int], None]
Cancel = Callable[[], bool]


class SweepCancelled(Exception):
    """Raised by ``run_sweep`` when its ``cancel`` callback returned True."""


def default_learned_accuracy(num_images: int) -> float:
    """1.0 on datasets of at most ``SMALL_DATASET`` images (there one wrong image is a
    failure), else 0.95."""
    return 1.0 if num_images <= SMALL_DATASET else 0.95


def default_family(config: TrainingConfig) -> str:
    """The initialisation family a sweep of ``config`` varies by default: 'uniform' when the
    conv layer starts U(0, s) as in the question, else 'normal'."""
    spec = config.conv_init
    return "uniform" if spec.kind == "uniform" and spec.params["low"] == 0 else "normal"


def log_spaced(start: float, stop: float, count: int) -> tuple[float, ...]:
    """``count`` values from ``start`` to ``stop`` (both included) evenly spaced on a log scale,
    rounded to 12 significant digits so that 0.01 is written 0.01.

    Raises
    ------
    ValueError
        When an end is not a positive finite number or ``count`` is below 1.
    """
    for name, value in (("start", start), ("stop", stop)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number, got {value}")
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    if count == 1:
        return (float(start),)
    return tuple(float(f"{value:.12g}") for value in np.geomspace(start, stop, count))


def _axis(name: str, values: Iterable[float]) -> tuple[float, ...]:
    """``values`` as sorted distinct positive floats (the map's axes are logarithmic)."""
    checked = set()
    for value in values:
        number = float(value)
        if not (math.isfinite(number) and number > 0):
            raise ValueError(f"{name} must be positive numbers, got {value!r}")
        checked.add(number)
    if not checked:
        raise ValueError(f"{name} must hold at least one value")
    return tuple(sorted(checked))


@dataclass(frozen=True)
class SweepCell:
    """The settings of one cell, and its config."""

    pixel_scaling: str
    init_scale: float
    learning_rate: float
    config: TrainingConfig


@dataclass(frozen=True)
class SweepSpec:
    """A grid of runs.

    Attributes
    ----------
    base : every setting not swept (seed, update mode, filters, dtype, ...).
    learning_rates : the learning rates (columns of the map).
    init_scales : scales s of the initial weights of both layers (rows of the map).
    init_family : 'normal' (N(0, s)) or 'uniform' (U(0, s), the question's family).
    pixel_scalings : one map panel each; empty means the base config's only.
    iterations : updates per cell.
    learned_accuracy : accuracy a cell must reach to count as learned; None means 1.0 on
        datasets of at most ``SMALL_DATASET`` images (there one wrong image is a failure) and
        0.95 on larger ones (see ``learned_threshold``).

    The three axes are stored sorted, without repeats. Raises ``ValueError`` for an empty axis,
    a value that is not positive, an unknown family or pixel scaling, or fewer than 1
    iteration, and ``ConfigError`` for a cell setting the config refuses (a learning rate
    above ``model.config.MAX_LEARNING_RATE``).
    """

    base: TrainingConfig
    learning_rates: tuple[float, ...]
    init_scales: tuple[float, ...]
    init_family: str = "normal"
    pixel_scalings: tuple[str, ...] = ()
    iterations: int = DEFAULT_ITERATIONS
    learned_accuracy: float | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "learning_rates", _axis("learning rates", self.learning_rates))
        set_(self, "init_scales", _axis("init scales", self.init_scales))
        if self.init_family not in INIT_FAMILIES:
            raise ValueError(
                f"init family must be one of {', '.join(INIT_FAMILIES)}, got {self.init_family!r}"
            )
        scalings = tuple(dict.fromkeys(self.pixel_scalings or (self.base.pixel_scaling,)))
        unknown = [name for name in scalings if name not in PIXEL_SCALINGS]
        if unknown:
            raise ValueError(
                f"pixel scaling must be one of {', '.join(PIXEL_SCALINGS)}, got {unknown[0]!r}"
            )
        set_(self, "pixel_scalings", scalings)
        if isinstance(self.iterations, bool) or int(self.iterations) != self.iterations:
            raise ValueError(f"iterations must be a whole number, got {self.iterations!r}")
        if self.iterations < 1:
            raise ValueError(f"iterations must be at least 1, got {self.iterations}")
        set_(self, "iterations", int(self.iterations))
        if self.learned_accuracy is not None and not 0 < self.learned_accuracy <= 1:
            raise ValueError(f"learned accuracy must be in (0, 1], got {self.learned_accuracy}")
        self.cells()

    def init_spec(self, scale: float) -> InitSpec:
        """The initialiser of both layers at ``scale``."""
        if self.init_family == "normal":
            return InitSpec("normal", {"mean": 0.0, "std": scale})
        return InitSpec("uniform", {"low": 0.0, "high": scale})

    def _make_cells(self) -> Iterable[SweepCell]:
        for pixel_scaling in self.pixel_scalings:
            for scale in self.init_scales:
                spec = self.init_spec(scale)
                for learning_rate in self.learning_rates:
                    config = self.base.with_changes(
                        pixel_scaling=pixel_scaling,
                        conv_init=spec,
                        classifier_init=spec,
                        initial_weights=None,
                        learning_rate=learning_rate,
                        history_budget_mb=CELL_HISTORY_MB,
                    )
                    yield SweepCell(pixel_scaling, scale, learning_rate, config)

    def cells(self) -> tuple[SweepCell, ...]:
        """Every cell: pixel scalings outermost, then init scales, then learning rates, each
        ascending (the order of ``SweepResult.cells`` and of the CSV)."""
        return tuple(self._make_cells())

    def learned_threshold(self, num_images: int) -> float:
        """The accuracy that counts as learned on a dataset of ``num_images`` images."""
        if self.learned_accuracy is not None:
            return self.learned_accuracy
        return default_learned_accuracy(num_images)

    def scale_of(self, spec: InitSpec) -> float | None:
        """The scale s for which ``init_spec(s) == spec`` (None when ``spec`` is not of this
        sweep's family, e.g. to mark a config's own setting on the map)."""
        key = "std" if self.init_family == "normal" else "high"
        if spec.kind != self.init_family or self.init_spec(spec.params[key]) != spec:
            return None
        return spec.params[key] if spec.params[key] > 0 else None

    def marker(self, config: TrainingConfig) -> tuple[float, float] | None:
        """(learning rate, s) of ``config`` when both its layers start as a cell of this sweep
        would and its pixel scaling is one of the map's; None otherwise (nothing to mark)."""
        if config.initial_weights is not None:
            return None
        scale = self.scale_of(config.conv_init)
        if scale is None or self.scale_of(config.classifier_init) != scale:
            return None
        if config.pixel_scaling not in self.pixel_scalings:
            return None
        return config.learning_rate, scale

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {
            "base": self.base.to_dict(),
            "learning_rates": list(self.learning_rates),
            "init_scales": list(self.init_scales),
            "init_family": self.init_family,
            "pixel_scalings": list(self.pixel_scalings),
            "iterations": self.iterations,
            "learned_accuracy": self.learned_accuracy,
        }


# ---------------------------------------------------------------------------------------------
# One cell
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CellResult:
    """How one cell ended.

    Attributes
    ----------
    pixel_scaling, init_scale, learning_rate : the cell's settings.
    outcome : one of ``OUTCOMES``.
    loss, accuracy, dead_fraction : on the whole dataset at the last iteration run.
    dead_filters : number of filters dead at the last iteration run.
    initial_accuracy : accuracy of the initial weights (with two images, a quarter of all
        initialisations already classify both correctly: a 'learned' cell with a tiny learning
        rate may owe it to them).
    died_at : iteration from which every filter was dead (None unless all are).
    iterations_run : updates taken (fewer than asked when the cell stopped early).
    """

    pixel_scaling: str
    init_scale: float
    learning_rate: float
    outcome: str
    loss: float
    accuracy: float
    dead_fraction: float
    dead_filters: int
    initial_accuracy: float
    died_at: int | None
    iterations_run: int

    def to_dict(self) -> dict:
        return asdict(self)


def _diverged_metrics(values) -> bool:
    return not np.all(np.isfinite(np.asarray(values, dtype=np.float64)))


def classify(source: TrainingSession | Sequence, learned_accuracy: float) -> str:
    """The outcome of a run (see the module docstring), from a session or its records.

    Parameters
    ----------
    source : a ``TrainingSession`` (every row of its metrics table and its newest record are
        looked at) or a non-empty sequence of ``StepRecord`` in iteration order.
    learned_accuracy : accuracy that counts as learned.
    """
    if isinstance(source, TrainingSession):
        final = source.latest
        table = source.history.metrics
        rows_diverged = any(_diverged_metrics(table.column(name)) for name in DIVERGENCE_METRICS)
        initial_loss = float(table.column("loss")[0])
    else:
        final = source[-1]
        rows_diverged = any(
            _diverged_metrics([record.metrics[name] for name in DIVERGENCE_METRICS])
            for record in source
        )
        initial_loss = source[0].loss
    final_arrays = [*final.params.values(), final.losses]
    if rows_diverged or not all(np.all(np.isfinite(array)) for array in final_arrays):
        return "diverged"
    if all(since is not None for since in final.dead_since):
        return "dead filter"
    if final.accuracy >= learned_accuracy and final.loss < initial_loss:
        return "learned"
    return "stuck"


def settled(record) -> bool:
    """Whether nothing after ``record`` can change its run's outcome."""
    if _diverged_metrics([record.metrics[name] for name in DIVERGENCE_METRICS]):
        return True
    all_dead = all(since is not None for since in record.dead_since)
    # A dead filter gets zero gradient, but momentum would still move it by its velocity.
    coasting = record.settings.momentum and np.any(record.velocity["conv.weight"])
    return all_dead and not coasting


def train(
    dataset: Dataset,
    config: TrainingConfig,
    iterations: int,
    should_stop: Callable[[], bool] | None = None,
) -> TrainingSession:
    """A fresh run of ``config`` trained for ``iterations`` updates, or until nothing can change
    its outcome any more (``classify`` it), or until ``should_stop()`` returns True."""
    session = TrainingSession(dataset, config)
    record = session.latest
    while record.iteration < iterations and not settled(record):
        if should_stop is not None and should_stop():
            break
        record = session.step()
    return session


def run_cell(
    dataset: Dataset,
    cell: SweepCell,
    iterations: int,
    learned_accuracy: float,
    should_stop: Callable[[], bool] | None = None,
):
    """Train one cell and classify it (a ``CellResult``); ``should_stop()`` returning True
    ends it early (its result is then of no use)."""
    session = train(dataset, cell.config, iterations, should_stop)
    record = session.latest
    dead = [since for since in record.dead_since if since is not None]
    all_dead = len(dead) == len(record.dead_since)
    return CellResult(
        pixel_scaling=cell.pixel_scaling,
        init_scale=cell.init_scale,
        learning_rate=cell.learning_rate,
        outcome=classify(session, learned_accuracy),
        loss=record.loss,
        accuracy=record.accuracy,
        dead_fraction=record.dead_fraction,
        dead_filters=len(dead),
        initial_accuracy=float(session.history.metrics.column("accuracy")[0]),
        died_at=max(dead) if all_dead else None,
        iterations_run=record.iteration,
    )


# ---------------------------------------------------------------------------------------------
# The grid
# ---------------------------------------------------------------------------------------------

_worker_dataset: Dataset | None = None
_worker_stop = None


def _start_worker(dataset: Dataset, stop) -> None:
    global _worker_dataset, _worker_stop
    _worker_dataset = dataset
    _worker_stop = stop
    # Ctrl+C reaches the whole process group; the parent alone handles it and stops the pool.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_cell_in_worker(cell: SweepCell, iterations: int, learned_accuracy: float) -> CellResult:
    return run_cell(_worker_dataset, cell, iterations, learned_accuracy, _worker_stop.is_set)


def available_workers() -> int:
    """CPU cores this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def run_sweep(
    spec: SweepSpec,
    dataset: Dataset,
    *,
    workers: int | None = None,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
    dataset_name: str = "",
) -> SweepResult:
    """Train and classify every cell of ``spec`` on ``dataset``.

    Parameters
    ----------
    spec : the grid.
    dataset : the images, the same for every cell.
    workers : processes to use; None uses every core, 1 runs in this process.
    progress : called with (cells done, cells in all) after each cell, in the calling thread.
    cancel : polled (in the calling thread) while cells run; True stops the sweep: cells not
        started are dropped, and workers exit after the cell they are on.
    dataset_name : how the dataset is named in the map's title.

    Raises
    ------
    SweepCancelled
        When ``cancel`` returned True.
    """
    cells = spec.cells()
    threshold = spec.learned_threshold(len(dataset))
    workers = min(available_workers() if workers is None else max(1, workers), len(cells))
    started = time.perf_counter()
    results: list[CellResult | None] = [None] * len(cells)

    def finished(index: int, result: CellResult) -> None:
        results[index] = result
        if progress is not None:
            progress(sum(r is not None for r in results), len(cells))

    if workers == 1:
        for index, cell in enumerate(cells):
            if cancel is not None and cancel():
                raise SweepCancelled
            finished(index, run_cell(dataset, cell, spec.iterations, threshold))
    else:
        _run_in_pool(cells, dataset, spec.iterations, threshold, workers, finished, cancel)
    return SweepResult(
        spec=spec,
        cells=tuple(results),
        dataset_name=dataset_name,
        num_images=len(dataset),
        image_size=dataset.size,
        dataset_digest=dataset.digest(),
        learned_accuracy=threshold,
        seconds=time.perf_counter() - started,
        workers=workers,
    )


def _run_in_pool(cells, dataset, iterations, threshold, workers, finished, cancel) -> None:
    context = multiprocessing.get_context("spawn")
    # Set on cancel: a cell can run for minutes, and a worker checks this between steps.
    stop = context.Event()
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=_start_worker,
        initargs=(dataset, stop),
    )
    pending = {}
    try:
        # Workers are started as tasks are submitted, so all of them start in here.
        # Each worker has a core of its own: BLAS threads on top would only compete.
        with single_threaded_blas():
            for index, cell in enumerate(cells):
                pending[pool.submit(_run_cell_in_worker, cell, iterations, threshold)] = index
        while pending:
            if cancel is not None and cancel():
                raise SweepCancelled
            done, _ = wait(pending, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
            for future in done:
                finished(pending.pop(future), future.result())
    finally:
        # On cancel, error or Ctrl+C: cells not started are dropped and the workers end the
        # cell they are on at its next step, so waiting for them is short. Waiting matters: a
        # worker still starting up needs the stop event, which goes away with this function,
        # and a pool left to its manager thread runs every queued cell before the interpreter
        # may exit (the futures are cancelled here for the same reason).
        stop.set()
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


# ---------------------------------------------------------------------------------------------
# The result
# ---------------------------------------------------------------------------------------------

CSV_COLUMNS = (
    "pixel_scaling",
    "init_family",
    "init_scale",
    "learning_rate",
    "outcome",
    "loss",
    "accuracy",
    "dead_fraction",
    "dead_filters",
    "initial_accuracy",
    "died_at",
    "iterations_run",
)


def _csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return str(value)


@dataclass(frozen=True)
class SweepResult:
    """The outcome of every cell of a sweep.

    Attributes
    ----------
    spec : the grid.
    cells : one result per ``spec.cells()``, in that order.
    dataset_name, num_images, image_size, dataset_digest : what the cells trained on.
    learned_accuracy : the threshold that was used.
    seconds : wall time of the sweep; workers : processes used.
    """

    spec: SweepSpec
    cells: tuple[CellResult, ...]
    dataset_name: str
    num_images: int
    image_size: tuple[int, int]
    dataset_digest: str
    learned_accuracy: float
    seconds: float = 0.0
    workers: int = 1

    @property
    def learned_text(self) -> str:
        """The accuracy that counts as learned, as written: '99.9%' stays 99.9%, not 100%."""
        return f"{self.learned_accuracy * 100:.3g}%"

    def learned_condition(self, at_least: str = "≥") -> str:
        """'accuracy ≥ 99.9%', or 'accuracy = 100%' (not '≥ 100%', a learner's review)."""
        if self.learned_accuracy >= 1.0:
            return "accuracy = 100%"
        return f"accuracy {at_least} {self.learned_text}"

    def outcome_grid(self, pixel_scaling: str | None = None) -> np.ndarray:
        """(init scales, learning rates) int array of indices into ``OUTCOMES``; row 0 is the
        smallest scale, column 0 the smallest learning rate. ``pixel_scaling`` defaults to the
        first of the spec."""
        scaling = pixel_scaling or self.spec.pixel_scalings[0]
        if scaling not in self.spec.pixel_scalings:
            raise KeyError(f"the sweep has no pixel scaling {scaling!r}")
        rows = {scale: i for i, scale in enumerate(self.spec.init_scales)}
        columns = {rate: j for j, rate in enumerate(self.spec.learning_rates)}
        grid = np.full((len(rows), len(columns)), -1, dtype=np.int64)
        for cell in self.cells:
            if cell.pixel_scaling == scaling:
                grid[rows[cell.init_scale], columns[cell.learning_rate]] = OUTCOMES.index(
                    cell.outcome
                )
        return grid

    def event_grid(self, pixel_scaling: str | None = None) -> np.ndarray:
        """Like ``outcome_grid``, the iteration each cell's outcome became final: when every
        filter was dead ('dead filter'), when a value overflowed ('diverged'); -1 otherwise."""
        scaling = pixel_scaling or self.spec.pixel_scalings[0]
        grid = np.full((len(self.spec.init_scales), len(self.spec.learning_rates)), -1)
        for cell in self.cells:
            if cell.pixel_scaling != scaling:
                continue
            row = self.spec.init_scales.index(cell.init_scale)
            column = self.spec.learning_rates.index(cell.learning_rate)
            if cell.outcome == "dead filter":
                grid[row, column] = cell.died_at
            elif cell.outcome == "diverged":
                grid[row, column] = cell.iterations_run
        return grid

    def counts(self) -> dict[str, int]:
        """Number of cells of each outcome."""
        return {name: sum(c.outcome == name for c in self.cells) for name in OUTCOMES}

    def to_csv_bytes(self) -> bytes:
        """One row per cell (``CSV_COLUMNS``); floats written exactly, NaN and None empty."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for cell in self.cells:
            values = {**cell.to_dict(), "init_family": self.spec.init_family}
            writer.writerow(_csv_cell(values[name]) for name in CSV_COLUMNS)
        return buffer.getvalue().encode("utf-8")

    def to_dict(self) -> dict:
        """The spec, the dataset and the outcome counts (the cells are in the CSV)."""
        return {
            "spec": self.spec.to_dict(),
            "dataset": {
                "name": self.dataset_name,
                "images": self.num_images,
                "size": list(self.image_size),
                "digest": self.dataset_digest,
            },
            "learned_accuracy": self.learned_accuracy,
            "outcomes": OUTCOMES,
            "counts": self.counts(),
            "seconds": self.seconds,
            "workers": self.workers,
        }

    def render_png(
        self,
        marker: tuple[float, float] | None = None,
        *,
        marker_pixel_scaling: str | None = None,
    ) -> Image.Image:
        """The outcome map as an RGB picture (see ``render_map``)."""
        return render_map(self, marker, marker_pixel_scaling)


# ---------------------------------------------------------------------------------------------
# Drawing the map
# ---------------------------------------------------------------------------------------------

#: Okabe–Ito colours, distinguishable with the common colour-vision deficiencies; every cell
#: also carries its letter.
OUTCOME_COLOURS = {
    "learned": (0, 158, 115),
    "stuck": (240, 228, 66),
    "dead filter": (0, 0, 0),
    "diverged": (213, 94, 0),
}
MISSING_COLOUR = (255, 255, 255)
MARKER_COLOUR = (0, 114, 178)
BACKGROUND = (255, 255, 255)
INK = (20, 20, 20)
MUTED = (100, 100, 100)
GRID_LINE = (255, 255, 255)
MARGIN = 20
PANEL_GAP = 40
MIN_CELL = 46
#: Titles of the vertical axis, longest first: the longest that fits the plot's height is used.
Y_TITLES = ("initial weight scale s (log scale)", "initial scale s (log)", "scale s")
TICK = 4


def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _width(font, text: str) -> int:
    return math.ceil(font.getlength(text))


def _height(font) -> int:
    ascent, descent = font.getmetrics()
    return ascent + descent


def tick_label(value: float) -> str:
    """Short label of an axis value: '0.5', '10', '3.2e-4' (ASCII only, like every text the
    map draws with Pillow's bundled font)."""
    if 1e-2 <= value < 1e3:
        return f"{value:.2g}"
    mantissa, exponent = f"{value:.1e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def _position(value: float, axis: Sequence[float]) -> tuple[float, bool]:
    """Fractional index of ``value`` on a log axis (interpolated between the values, clamped to
    the ends) and whether it lay inside the axis' range."""
    logs = np.log10(axis)
    inside = axis[0] * (1 - 1e-9) <= value <= axis[-1] * (1 + 1e-9)
    if len(axis) == 1:
        return 0.0, inside
    return float(np.interp(math.log10(value), logs, np.arange(len(axis)))), inside


def _cell_ink(colour) -> tuple[int, int, int]:
    red, green, blue = (c / 255 for c in colour)
    return INK if 0.299 * red + 0.587 * green + 0.114 * blue > 0.5 else (255, 255, 255)


def _rotated_text(text: str, font, fill) -> Image.Image:
    """``text`` turned 90° counter-clockwise, on a transparent background."""
    canvas = Image.new("RGBA", (_width(font, text) + 2, _height(font) + 2), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((1, 1), text, fill=fill, font=font)
    return canvas.rotate(90, expand=True)


def _describe_base(result: SweepResult) -> str:
    base = result.spec.base
    family = INIT_FAMILY_LABELS[result.spec.init_family]
    return (
        f"Both layers initialised {family}, seed {base.seed}, "
        f"{UPDATE_MODE_LABELS[base.update_mode]}, {format_count(base.num_filters, 'filter')} "
        f"{base.kernel_size}x{base.kernel_size}, {base.activation}, {base.dtype}, momentum "
        f"{base.momentum:g}; learned = {result.learned_condition('>=')} and loss "
        "below its start"
    )


def _fonts() -> dict[str, ImageFont.FreeTypeFont]:
    sizes = {"title": 18, "subtitle": 13, "panel": 15, "tick": 12, "axis": 13, "cell": 15}
    return {name: _font(size) for name, size in {**sizes, "event": 11, "legend": 13}.items()}


@dataclass(frozen=True)
class _Layout:
    """Sizes and positions of the map, in pixels."""

    cell: int
    rows: int
    columns: int
    plot_left_offset: int
    panel_width: int
    plot_top: int
    tick_height: int

    @property
    def plot_height(self) -> int:
        return self.rows * self.cell

    def panel_left(self, panel: int) -> int:
        return MARGIN + panel * (self.panel_width + PANEL_GAP)


def render_map(
    result: SweepResult,
    marker: tuple[float, float] | None = None,
    marker_pixel_scaling: str | None = None,
) -> Image.Image:
    """The outcome map: one panel per pixel scaling, init scales up, learning rates across.

    Parameters
    ----------
    result : the sweep.
    marker : (learning rate, init scale) to ring, e.g. the current setting; placed on the log
        axes between cells when it is not a grid value, and at the edge (and said so in the
        legend) when it lies outside the grid.
    marker_pixel_scaling : the panel the marker belongs to; None rings it on every panel.
    """
    spec = result.spec
    fonts = _fonts()
    rates = [tick_label(v) for v in spec.learning_rates]
    scales = [tick_label(v) for v in spec.init_scales]
    cell = max(MIN_CELL, max(_width(fonts["tick"], label) for label in rates) + 10)
    # Left of each panel: the rotated y-axis title, then the tick labels.
    plot_left_offset = (
        _height(fonts["axis"]) + 8 + max(_width(fonts["tick"], s) for s in scales) + TICK + 4
    )
    title = (
        f"Outcome after {spec.iterations} iterations per cell"
        + (f" - dataset '{result.dataset_name}'" if result.dataset_name else "")
        + f" ({result.num_images} images, {result.image_size[0]}x{result.image_size[1]})"
    )
    subtitle = _describe_base(result)
    header_height = _height(fonts["title"]) + 6 + _height(fonts["subtitle"]) + 16
    layout = _Layout(
        cell=cell,
        rows=len(spec.init_scales),
        columns=len(spec.learning_rates),
        plot_left_offset=plot_left_offset,
        panel_width=plot_left_offset + len(spec.learning_rates) * cell,
        plot_top=MARGIN + header_height + _height(fonts["panel"]) + 8,
        tick_height=_height(fonts["tick"]),
    )
    below_plot = TICK + 4 + layout.tick_height + 6 + _height(fonts["axis"])
    legend_line = max(_height(fonts["legend"]), 18) + 8
    width = max(
        layout.panel_left(len(spec.pixel_scalings)) - PANEL_GAP + MARGIN,
        2 * MARGIN + _width(fonts["title"], title),
        2 * MARGIN + _width(fonts["subtitle"], subtitle),
        2 * MARGIN + 620,
    )
    legend_top = layout.plot_top + layout.plot_height + below_plot + 18
    height = legend_top + (2 if marker is not None else 1) * legend_line + MARGIN
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    draw.text((MARGIN, MARGIN), title, fill=INK, font=fonts["title"])
    subtitle_top = MARGIN + _height(fonts["title"]) + 6
    draw.text((MARGIN, subtitle_top), subtitle, fill=MUTED, font=fonts["subtitle"])
    marker_outside = False
    for panel, scaling in enumerate(spec.pixel_scalings):
        _draw_panel(image, draw, layout, panel, result, scaling, (rates, scales), fonts)
        if marker is not None and marker_pixel_scaling in (None, scaling):
            marker_outside |= not _draw_marker(draw, layout, panel, spec, marker)
    legend = (fonts["legend"], legend_top, legend_line)
    _draw_legend(draw, result, legend, marker, marker_outside, marker_pixel_scaling)
    return image


def _draw_panel(image, draw, layout: _Layout, panel, result, scaling, labels, fonts) -> None:
    """The map of one pixel scaling: title, cells, ticks and axis titles."""
    rates, scales = labels
    cell = layout.cell
    left = layout.panel_left(panel)
    plot_left, plot_top = left + layout.plot_left_offset, layout.plot_top
    plot_bottom = plot_top + layout.plot_height
    title = f"pixels: {PIXEL_SCALING_LABELS[scaling]}"
    title_top = plot_top - _height(fonts["panel"]) - 8
    draw.text((plot_left, title_top), title, fill=INK, font=fonts["panel"])
    grid, when = result.outcome_grid(scaling), result.event_grid(scaling)
    for row in range(layout.rows):
        top = plot_top + (layout.rows - 1 - row) * cell
        for column in range(layout.columns):
            code = grid[row, column]
            colour = MISSING_COLOUR if code < 0 else OUTCOME_COLOURS[OUTCOMES[code]]
            box = (
                plot_left + column * cell,
                top,
                plot_left + (column + 1) * cell - 1,
                top + cell - 1,
            )
            draw.rectangle(box, fill=colour, outline=GRID_LINE)
            if code >= 0:
                _draw_cell_text(draw, box, colour, OUTCOMES[code], when[row, column], fonts)
        middle = top + cell / 2
        draw.line([(plot_left - TICK, middle), (plot_left - 1, middle)], fill=INK)
        label_at = (plot_left - TICK - 3, middle)
        draw.text(label_at, scales[row], fill=INK, font=fonts["tick"], anchor="rm")
    frame = (plot_left - 1, plot_top - 1, plot_left + layout.columns * cell, plot_bottom)
    draw.rectangle(frame, outline=INK)
    for column in range(layout.columns):
        centre = plot_left + column * cell + cell / 2
        draw.line([(centre, plot_bottom + 1), (centre, plot_bottom + TICK)], fill=INK)
        label_at = (centre, plot_bottom + TICK + 3)
        draw.text(label_at, rates[column], fill=INK, font=fonts["tick"], anchor="ma")
    axis_at = (
        plot_left + layout.columns * cell / 2,
        plot_bottom + TICK + 4 + layout.tick_height + 6,
    )
    draw.text(axis_at, "learning rate (log scale)", fill=INK, font=fonts["axis"], anchor="ma")
    fitting = (t for t in Y_TITLES if _width(fonts["axis"], t) <= layout.plot_height)
    y_title = _rotated_text(next(fitting, Y_TITLES[-1]), fonts["axis"], INK)
    y_top = plot_top + max(0, (layout.plot_height - y_title.height) // 2)
    image.paste(y_title, (left, y_top), y_title)


def _draw_marker(draw, layout: _Layout, panel: int, spec: SweepSpec, marker) -> bool:
    """Ring ``marker`` on ``panel``; returns whether it lies inside the grid's range."""
    x, x_inside = _position(marker[0], spec.learning_rates)
    y, y_inside = _position(marker[1], spec.init_scales)
    plot_left = layout.panel_left(panel) + layout.plot_left_offset
    # Around the nearest cell and outside it, as the window draws it: over the cell, a ring
    # hid its letter and iteration.
    left = plot_left + round(x) * layout.cell
    top = layout.plot_top + (layout.rows - 1 - round(y)) * layout.cell
    _draw_ring(draw, (left, top, left + layout.cell - 1, top + layout.cell - 1))
    return x_inside and y_inside


def _draw_cell_text(draw, box, colour, outcome: str, event: int, fonts) -> None:
    """The outcome's letter, and under it the iteration its event happened when there is one."""
    ink = _cell_ink(colour)
    centre_x, centre_y = (box[0] + box[2] + 1) / 2, (box[1] + box[3] + 1) / 2
    letter = OUTCOME_LETTERS[outcome]
    if event < 0:
        draw.text((centre_x, centre_y), letter, fill=ink, font=fonts["cell"], anchor="mm")
        return
    draw.text((centre_x, centre_y - 1), letter, fill=ink, font=fonts["cell"], anchor="ms")
    draw.text((centre_x, centre_y + 3), f"it {event}", fill=ink, font=fonts["event"], anchor="mt")


def _draw_ring(draw: ImageDraw.ImageDraw, box) -> None:
    """A thick blue frame just outside ``box`` (left, top, right, bottom), with a white edge
    outside it: visible on every outcome colour, and over no part of the box."""
    left, top, right, bottom = box
    for grow, colour, width in ((5, BACKGROUND, 2), (3, MARKER_COLOUR, 3)):
        frame = (left - grow, top - grow, right + grow, bottom + grow)
        draw.rectangle(frame, outline=colour, width=width)


def _draw_legend(draw, result, legend, marker, marker_outside, marker_pixels) -> None:
    """Outcome swatches with their counts, and the marked setting."""
    font, top, line = legend
    counts = result.counts()
    x = MARGIN
    swatch = 18
    for name in OUTCOMES:
        colour = OUTCOME_COLOURS[name]
        draw.rectangle((x, top, x + swatch - 1, top + swatch - 1), fill=colour, outline=INK)
        middle = top + swatch / 2
        letter = OUTCOME_LETTERS[name]
        draw.text((x + swatch / 2, middle), letter, fill=_cell_ink(colour), font=font, anchor="mm")
        text = f"{name} ({counts[name]})"
        draw.text((x + swatch + 6, middle), text, fill=INK, font=font, anchor="lm")
        x += swatch + 6 + _width(font, text) + 22
    note = "it N: iteration the filter died / a value overflowed"
    draw.text((x, top + swatch / 2), note, fill=MUTED, font=font, anchor="lm")
    if marker is None:
        return
    top += line
    _draw_ring(draw, (MARGIN + 5, top + 5, MARGIN + swatch - 6, top + swatch - 6))
    where = "" if marker_pixels is None else f", pixels {marker_pixels}"
    text = (
        f"current setting (nearest cell): learning rate {tick_label(marker[0])}, "
        f"s = {tick_label(marker[1])}"
    )
    text += where
    if marker_outside:
        text += " (outside the map: ringed at its edge)"
    draw.text((MARGIN + swatch + 6, top + swatch / 2), text, fill=INK, font=font, anchor="lm")

"""The headless run: train without a window and write what is needed to study and reproduce it.

Into one output folder go

- ``metrics.csv``: one row per iteration (row 0 is the initial state), columns
  ``model.record.METRIC_NAMES``, every value measured on the whole dataset after that
  iteration's update; floats are written with ``repr`` (full precision, 'nan' and 'inf'
  included); the metrics of an update are empty cells at iteration 0, which has none;
- ``config.json``: config, preset, settings log, dataset (source, digest, size, labels, skipped
  files, pixel statistics), iterations, the command that reproduces the run, package versions;
- filter snapshots (``model.snapshot``) at iteration 0, at the last iteration, every
  ``snapshot_every`` iterations and at each iteration a filter died;
- ``findings.txt`` and ``findings.json``: the findings of the last iteration and every finding
  as it first appeared during the run.

A run may follow a settings log (``model.settings_log``): the learning rate, momentum and
clipping then change before the updates of the logged iterations, as they did in the run that
wrote the log, so that a report's run is repeated update for update.

A sweep (``model.sweep``) writes ``sweep.csv`` (one row per cell), ``sweep.png`` (the outcome
map) and ``sweep.json`` (the grid, the dataset, the outcome counts and the command) instead.

Nothing is overwritten unless asked: existing outputs refuse the run before it starts. The rows
of metrics.csv are streamed to a temporary file while training, so a long run does not hold
them in memory, and the file appears under its name only when the run is complete.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import errno
import io
import math
import os
import platform
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL

from model.config import TrainingConfig
from model.data import Dataset
from model.diagnostics import SEVERITIES, Finding, FindingLog
from model.files import SaveError, existing, text_bytes, write_atomic
from model.formatting import format_count, format_number, format_range, format_share
from model.record import METRIC_NAMES, UPDATE_METRICS, StepRecord
from model.session import TrainingSession
from model.settings_log import SettingsLog, run_with_settings_log, settings_log_data
from model.snapshot import SNAPSHOT_SUFFIXES, default_stem, json_bytes, save_snapshot
from model.sweep import OUTCOMES, SweepResult
from model.weights_file import COPY_NAME, config_with_copy, whole_network_beside

METRICS_NAME = "metrics.csv"
CONFIG_NAME = "config.json"
FINDINGS_TEXT_NAME = "findings.txt"
FINDINGS_JSON_NAME = "findings.json"
OUTPUT_NAMES = (METRICS_NAME, CONFIG_NAME, FINDINGS_TEXT_NAME, FINDINGS_JSON_NAME)
SWEEP_CSV_NAME = "sweep.csv"
SWEEP_PNG_NAME = "sweep.png"
SWEEP_JSON_NAME = "sweep.json"
SWEEP_NAMES = (SWEEP_CSV_NAME, SWEEP_PNG_NAME, SWEEP_JSON_NAME)
#: Any file matching this is a snapshot of some run; one in the folder refuses a new run.
SNAPSHOT_GLOB = f"{default_stem(0).rstrip('0')}*"
_LISTED_FILES = 5
#: Refused files the summary names at most; config.json lists them all.
_LISTED_SKIPPED = 10


@dataclass(frozen=True)
class HeadlessRun:
    """What to run and where to write it.

    Attributes
    ----------
    dataset : the images.
    config : the settings.
    iterations : number of updates (at least 1).
    out_dir : output folder (created if missing).
    preset : name of the preset the config started from (None: it was read from a file).
    source : where the dataset came from: {'example': name}, {'folder': absolute path} or
        {'list': absolute path of an image list}.
    snapshot_every : also snapshot every this many iterations (None: only the fixed ones).
    overwrite : replace existing outputs instead of refusing.
    command : command-line arguments that reproduce the run.
    settings_log : live-setting changes to make before the updates of their iterations.
    threads : threads a large batch is shared out between (``network.forward``).
    """

    dataset: Dataset
    config: TrainingConfig
    iterations: int
    out_dir: Path
    preset: str | None
    source: Mapping[str, str]
    snapshot_every: int | None = None
    overwrite: bool = False
    command: tuple[str, ...] = ()
    settings_log: SettingsLog = ()
    threads: int = 1


@dataclass(frozen=True)
class HeadlessResult:
    """What a headless run did.

    Attributes
    ----------
    final : record of the last iteration.
    files : every file written.
    snapshot_iterations : iterations a filter snapshot was saved at, in order.
    first_findings : every distinct finding of the run as it first appeared, in order.
    interrupted : stopped by Ctrl+C before ``run.iterations``; the files hold the iterations
        trained until then, as a run of that many (its command repeats them).
    """

    final: StepRecord
    files: tuple[Path, ...]
    snapshot_iterations: tuple[int, ...]
    first_findings: tuple[Finding, ...]
    interrupted: bool = False


# ---------------------------------------------------------------------------------------------
# Refusing to overwrite
# ---------------------------------------------------------------------------------------------


def _listing(paths: list[Path]) -> str:
    names = [path.name for path in paths]
    shown = ", ".join(names[:_LISTED_FILES])
    hidden = len(names) - _LISTED_FILES
    return f"{shown} and {hidden} more" if hidden > 0 else shown


def check_output_folder(
    out_dir: str | os.PathLike, overwrite: bool = False, *, sweep: bool = False
) -> None:
    """Refuse an output folder that is not a folder or (without ``overwrite``) already holds
    outputs of a run: any of ``OUTPUT_NAMES`` or any filter snapshot, or with ``sweep`` any of
    ``SWEEP_NAMES``.

    Raises
    ------
    SaveError
        With a message naming the folder or the files found.
    """
    folder = Path(out_dir)
    if not folder.exists():
        return
    if not folder.is_dir():
        raise SaveError(errno.ENOTDIR, f"Not a folder: {folder}")
    if overwrite:
        return
    if sweep:
        found = existing(folder / name for name in SWEEP_NAMES)
    else:
        found = existing(folder / name for name in (*OUTPUT_NAMES, COPY_NAME))
        found += sorted(p for p in folder.glob(SNAPSHOT_GLOB) if p.suffix in SNAPSHOT_SUFFIXES)
    if found:
        raise SaveError(
            errno.EEXIST,
            f"{folder} already holds {_listing(found)}; choose another folder or overwrite "
            "them (--overwrite)",
        )


# ---------------------------------------------------------------------------------------------
# What is written
# ---------------------------------------------------------------------------------------------


def metrics_cells(metrics: Mapping[str, float]) -> list[str]:
    """The metrics.csv cells of one iteration's metrics (keyed by ``METRIC_NAMES``)."""
    return metrics_row_cells([metrics[name] for name in METRIC_NAMES])


#: Columns of metrics.csv that iteration 0 leaves empty (``UPDATE_METRICS``).
_EMPTY_AT_START = tuple(i for i, name in enumerate(METRIC_NAMES) if name in UPDATE_METRICS)
#: Columns written as whole numbers (the image an update used: "3", not "3.0").
_WHOLE = METRIC_NAMES.index("update_image")


def metrics_row_cells(values) -> list[str]:
    """The metrics.csv cells of one iteration's metric values in ``METRIC_NAMES`` order: the
    iteration as an integer, floats with ``repr`` ('nan', 'inf' included: a run that diverged
    shows it), and an empty cell for what iteration 0 does not have (``UPDATE_METRICS``: no
    update yet). An empty cell used to stand for every NaN, so that a loss gone NaN read as a
    loss not measured."""
    iteration = int(values[0])
    cells = [str(iteration), *(repr(float(value)) for value in values[1:])]
    if math.isfinite(values[_WHOLE]):
        cells[_WHOLE] = str(int(values[_WHOLE]))
    if iteration == 0:
        for index in _EMPTY_AT_START:
            cells[index] = ""
    return cells


def metrics_row(record: StepRecord) -> list[str]:
    """The metrics.csv cells of ``record`` (``metrics_cells`` of its metrics)."""
    return metrics_cells(record.metrics)


def metrics_writer(handle):
    """A csv writer in metrics.csv's dialect on the text file ``handle``, header written."""
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(METRIC_NAMES)
    return writer


def _severity_sorted(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: SEVERITIES.index(f.severity))


def findings_text(final_iteration: int, final: Iterable[Finding], first: Iterable[Finding]) -> str:
    """findings.txt: the last iteration's findings, then every finding as it first appeared."""
    sections = (
        (f"Findings at the last iteration ({final_iteration})", _severity_sorted(final)),
        ("Findings as they first appeared during the run", list(first)),
    )
    lines = []
    for heading, findings in sections:
        lines += [heading, "=" * len(heading), ""]
        lines += [f"{finding.to_text()}\n" for finding in findings] or ["none\n"]
    return "\n".join(lines)


def findings_data(final_iteration: int, final: Iterable[Finding], first: Iterable[Finding]) -> dict:
    """findings.json: the same content as ``findings_text``."""
    return {
        "final_iteration": final_iteration,
        "final": [finding.to_dict() for finding in _severity_sorted(final)],
        "first_appeared": [finding.to_dict() for finding in first],
    }


def dataset_description(run: HeadlessRun, session: TrainingSession) -> dict:
    """The dataset part of config.json."""
    dataset = run.dataset
    mean, std = session.pixel_stats
    return {
        "source": dict(run.source),
        "digest": dataset.digest(),
        "size": list(dataset.size),
        "images": len(dataset),
        "class_names": list(dataset.class_names),
        "label_counts": list(dataset.label_counts()),
        "files": list(dataset.paths),
        "skipped": [{"path": path, "reason": reason} for path, reason in dataset.skipped],
        "pixel_mean": mean,
        "pixel_std": std,
    }


def versions() -> dict[str, str]:
    """Versions of Python and of the packages that compute a run."""
    return {"python": platform.python_version(), "numpy": np.__version__, "pillow": PIL.__version__}


def run_description(
    run: HeadlessRun, session: TrainingSession, snapshots: list[Path], config: dict
) -> dict:
    """config.json: everything needed to reproduce the run and to know what it read (``config``
    is the run's, naming the copy of a weights file written beside it: ``config_with_copy``)."""
    return {
        "preset": run.preset,
        "config": config,
        "iterations": run.iterations,
        "snapshot_every": run.snapshot_every,
        "dataset": dataset_description(run, session),
        "settings_log": settings_log_data(run.settings_log),
        "command": list(run.command),
        "versions": versions(),
        "outputs": {
            "metrics": METRICS_NAME,
            "findings": [FINDINGS_TEXT_NAME, FINDINGS_JSON_NAME],
            "snapshots": [path.name for path in snapshots],
        },
    }


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


def _save_error(exc: OSError, what: str) -> SaveError:
    return SaveError(exc.errno, f"{what}: {(exc.strerror or str(exc)).lower()}")


@contextlib.contextmanager
def _metrics_stream(out_dir: Path):
    """(csv writer, file, path) of a hidden temporary file in ``out_dir`` holding the header of
    metrics.csv; the file is removed when the block ends, whether the run completed or not."""
    try:
        fd, name = tempfile.mkstemp(prefix=f".{METRICS_NAME}.", suffix=".tmp", dir=out_dir)
    except OSError as exc:
        raise _save_error(exc, f"Cannot write in {out_dir}") from exc
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
            yield metrics_writer(handle), handle, Path(name)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)


def _copy_of(path: Path):
    def write(handle) -> None:
        with open(path, "rb") as source:
            shutil.copyfileobj(source, handle)

    return write


class _Snapshots:
    """Saves the filter snapshots of a run at the iterations that call for one."""

    def __init__(self, run: HeadlessRun) -> None:
        self._run = run
        self._extra = {
            "preset": run.preset,
            "dataset": {"source": dict(run.source), "digest": run.dataset.digest()},
        }
        self.paths: list[Path] = []
        self.iterations: list[int] = []

    def wanted(self, record: StepRecord) -> bool:
        every = self._run.snapshot_every
        return (
            record.iteration in (0, self._run.iterations)
            or (every is not None and record.iteration % every == 0)
            or record.iteration in record.dead_since
        )

    def save(self, record: StepRecord) -> None:
        self.paths += save_snapshot(
            record,
            self._run.config,
            record.findings,
            self._run.out_dir,
            overwrite=self._run.overwrite,
            extra=self._extra,
            dataset=self._run.dataset,
        )
        self.iterations.append(record.iteration)


def run_headless(run: HeadlessRun, progress=None) -> HeadlessResult:
    """Train ``run.iterations`` updates and write every output into ``run.out_dir``;
    ``progress(record)``, if given, is called with each iteration's record once it is
    recorded (iteration 0 included).

    Raises
    ------
    SaveError
        When the folder holds earlier outputs (before training; unless ``run.overwrite``) or
        a file cannot be written.
    """
    check_output_folder(run.out_dir, run.overwrite)
    try:
        run.out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _save_error(exc, f"Cannot create the folder {run.out_dir}") from exc
    session = TrainingSession(run.dataset, run.config, threads=run.threads)
    snapshots = _Snapshots(run)
    log = FindingLog()
    writing = contextlib.ExitStack()  # from the final writes on, Ctrl+C waits for them
    with writing, _metrics_stream(run.out_dir) as (writer, handle, temporary):
        done = {"logged": -1, "row": -1}  # the last iteration each step of record_step did

        def record_step(record: StepRecord) -> None:
            # Each part once per iteration: Ctrl+C may cut it short, and it is finished then
            # (the snapshot last: one the interrupt cut short cannot be saved again).
            if done["logged"] < record.iteration:
                log.add(record.findings)
                done["logged"] = record.iteration
            if done["row"] < record.iteration:
                writer.writerow(metrics_row(record))
                done["row"] = record.iteration
            if snapshots.wanted(record) and record.iteration not in snapshots.iterations:
                snapshots.save(record)
            if progress is not None:
                progress(record)

        record_step(session.latest)
        interrupted = False
        try:
            run_with_settings_log(session, run.iterations, run.settings_log, on_step=record_step)
        except KeyboardInterrupt:
            # Ctrl+C: what was trained is written, as a run of that many iterations (losing
            # it all, the folder was then refused for the next run without --overwrite). The
            # last iteration is recorded whole, whichever part the interrupt cut short; a
            # snapshot it cut short is left out (some of its files may be there already).
            interrupted = True
            latest = session.latest
            with contextlib.suppress(SaveError):
                record_step(latest)
                if latest.iteration not in snapshots.iterations:
                    snapshots.save(latest)  # (the last iteration's, as a finished run's)
            run = _shortened(run, latest.iteration)
        writing.enter_context(_interrupts_deferred())
        handle.flush()
        metrics = write_atomic(
            run.out_dir / METRICS_NAME, _copy_of(temporary), overwrite=run.overwrite
        )
        final = session.latest
        first = log.findings
        config, weights_copy = config_with_copy(run.config)
        outputs = {
            FINDINGS_TEXT_NAME: text_bytes(findings_text(final.iteration, final.findings, first)),
            FINDINGS_JSON_NAME: json_bytes(findings_data(final.iteration, final.findings, first)),
            CONFIG_NAME: json_bytes(run_description(run, session, snapshots.paths, config)),
        }
        if weights_copy is not None:
            outputs[COPY_NAME] = weights_copy
        elif run.overwrite:
            # An earlier run's copy beside a config that names none would read as this run's.
            with contextlib.suppress(FileNotFoundError):
                (run.out_dir / COPY_NAME).unlink()
        written = [metrics]
        for name, payload in outputs.items():
            written.append(write_atomic(run.out_dir / name, payload, overwrite=run.overwrite))
    return HeadlessResult(
        final=final,
        files=tuple(written + snapshots.paths),
        snapshot_iterations=tuple(snapshots.iterations),
        first_findings=first,
        interrupted=interrupted,
    )


@contextlib.contextmanager
def _interrupts_deferred():
    """Ctrl+C waits until the block's end, then interrupts: the final files are written whole
    (a review: Ctrl+C during them left no config.json, and the folder was then refused for the
    next run without --overwrite; writing metrics.csv of 100,000 iterations takes seconds).
    Only on the main thread, which is where Python handles signals."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) == signal.SIG_IGN  # (started so: nothing to defer)
    ):
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda *_: caught.append(True))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler if previous is None else previous)
    if caught:
        raise KeyboardInterrupt


def _shortened(run: HeadlessRun, iterations: int) -> HeadlessRun:
    """``run`` as a run of ``iterations`` updates, its command too."""
    command = list(run.command)
    if "--iterations" in command:
        command[command.index("--iterations") + 1] = str(iterations)
    elif command:
        command += ["--iterations", str(iterations)]
    return dataclasses.replace(run, iterations=iterations, command=tuple(command))


def skipped_lines(skipped: tuple[tuple[str, str], ...]) -> list[str]:
    """How many files the dataset refused and, for the first ``_LISTED_SKIPPED``, which and why
    (all of them are in config.json); nothing when none was refused."""
    if not skipped:
        return []
    count = len(skipped)
    lines = [f"Skipped {format_count(count, 'file')} that could not be used:"]
    lines += [f"  {path}: {reason}" for path, reason in skipped[:_LISTED_SKIPPED]]
    if count > _LISTED_SKIPPED:
        lines.append(f"  and {count - _LISTED_SKIPPED} more, all listed in {CONFIG_NAME}")
    return lines


def zero_outputs_text(record: StepRecord, activation: str) -> str:
    """``record``'s dead fraction in words: the share of ReLU outputs that are zero (over every
    filter, image and position), and how many filters are dead (every one of their outputs
    zero). Only ReLU is counted (``model.record.dead_fraction_per_filter``): with another
    activation the fraction is always 0, so the text says that instead of a share."""
    filters = len(record.dead_since)
    dead = len(record.dead_filters)
    if activation != "relu":
        return (
            f"Zero outputs and dead filters are counted for ReLU only; this run used {activation}."
        )
    return (
        f"{format_share(record.dead_fraction, 1)} of ReLU outputs are zero; {dead} of "
        f"{format_count(filters, 'filter')} dead (a filter is dead when its output is zero at "
        "every position of every image)."
    )


def summary(run: HeadlessRun, result: HeadlessResult) -> str:
    """A few lines for people: what ran, on what (and which files were refused), how it ended,
    where the files are."""
    final = result.final
    dataset = run.dataset
    source = ", ".join(f"{kind} {value}" for kind, value in run.source.items())
    weights = final.params["conv.weight"]
    snapshot_list = ", ".join(map(str, result.snapshot_iterations))
    origin = "settings from a config file" if run.preset is None else f"preset {run.preset!r}"
    written = list(OUTPUT_NAMES)
    if run.config.initial_weights is not None:
        origin += f", starting from the weights in {run.config.initial_weights.describe()}"
        beside = whole_network_beside(run.config.initial_weights)
        if beside is not None:
            origin += f" (the classifier drawn: {beside} beside it holds the whole network)"
        written.append(f"{COPY_NAME} (a copy of {run.config.initial_weights.name})")
    changes = len(run.settings_log)
    followed = (
        f", following a settings log of {format_count(changes, 'entry', 'entries')}"
        if changes
        else ""
    )
    return "\n".join(
        (
            f"Trained {final.iteration} iterations, {origin}{followed}, on {source} "
            f"({len(dataset)} images of {dataset.size[0]}x{dataset.size[1]}).",
            *skipped_lines(dataset.skipped),
            f"Final loss {format_number(final.loss)}, accuracy {format_share(final.accuracy, 1)}.",
            zero_outputs_text(final, run.config.activation),
            f"Conv weights in {format_range(weights.min(), weights.max())}.",
            f"Wrote {', '.join(written)} and filter snapshots of iterations "
            f"{snapshot_list} to {run.out_dir.resolve()}",
        )
    )


# ---------------------------------------------------------------------------------------------
# A sweep
# ---------------------------------------------------------------------------------------------


def sweep_description(
    result: SweepResult,
    source: Mapping[str, str],
    marker: tuple[float, float] | None,
    command: Iterable[str],
) -> dict:
    """sweep.json: the grid, the dataset, the outcome counts, the marked setting, the command."""
    return {
        **result.to_dict(),
        "source": dict(source),
        "marker": None if marker is None else {"learning_rate": marker[0], "init_scale": marker[1]},
        "outputs": {"cells": SWEEP_CSV_NAME, "map": SWEEP_PNG_NAME},
        "command": list(command),
        "versions": versions(),
    }


def write_sweep(
    result: SweepResult,
    out_dir: Path,
    *,
    source: Mapping[str, str],
    marker: tuple[float, float] | None = None,
    marker_pixel_scaling: str | None = None,
    command: Iterable[str] = (),
    overwrite: bool = False,
) -> list[Path]:
    """Write sweep.csv, sweep.png and sweep.json into ``out_dir`` (created if missing).

    Raises
    ------
    SaveError
        When one of them exists (unless ``overwrite``; nothing is written then) or cannot be
        written.
    """
    check_output_folder(out_dir, overwrite, sweep=True)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _save_error(exc, f"Cannot create the folder {out_dir}") from exc
    picture = io.BytesIO()
    result.render_png(marker, marker_pixel_scaling=marker_pixel_scaling).save(picture, "PNG")
    payloads = {
        SWEEP_CSV_NAME: result.to_csv_bytes(),
        SWEEP_PNG_NAME: picture.getvalue(),
        SWEEP_JSON_NAME: json_bytes(sweep_description(result, source, marker, command)),
    }
    return [
        write_atomic(out_dir / name, payload, overwrite=overwrite)
        for name, payload in payloads.items()
    ]


def sweep_summary(result: SweepResult, out_dir: Path) -> str:
    """A few lines for people: the grid, how its cells ended, where the files are."""
    spec = result.spec
    counts = result.counts()
    shape = (
        f"{len(spec.learning_rates)} learning rates x {len(spec.init_scales)} init scales x "
        f"{format_count(len(spec.pixel_scalings), 'pixel scaling')}"
    )
    return "\n".join(
        (
            f"Swept {format_count(len(result.cells), 'cell')} ({shape}), {spec.iterations} "
            "iterations each, in "
            f"{result.seconds:.1f} s on {format_count(result.workers, 'worker')}.",
            "Outcomes: " + ", ".join(f"{name} {counts[name]}" for name in OUTCOMES) + ".",
            f"Wrote {', '.join(SWEEP_NAMES)} to {out_dir.resolve()}",
        )
    )

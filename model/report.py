"""A shareable report of a run: one folder (or .zip) to attach to a question or an issue, from
which anyone can repeat the run with one command.

The folder holds

- ``index.html``: a readable page (no external assets, relative links only) with what the run
  is, its settings, the findings with their explanations, the filter snapshots and the plots;
- ``config.json``: the settings the run started with (live settings as at iteration 0), seed
  and preset; ``initial_weights.npz``: the weights file the run started from, if any (config.json
  names it); ``settings_log.json``: every later change of learning rate, momentum or clipping
  and the iteration it took effect (``model.settings_log``);
- ``dataset.json`` and ``data/``: the images as PNGs in the dataset folder convention
  (``data/0_<class 0>/0000_<name>.png``, ``data/1_<class 1>/...``), written from the very arrays
  the network saw, so that loading ``data/`` gives the same arrays (same ``Dataset.digest``);
  ``images.csv`` lists them in the order the run saw them (``model.data.load_image_list``),
  which a folder cannot keep when the dataset is not sorted by label;
- ``metrics.csv``: every iteration the history holds, in the headless run's format;
- ``snapshots/``: filter snapshots (``model.snapshot``); ``plots/``: plots passed in;
- ``findings.txt`` and ``findings.json``: as written by a headless run;
- ``REPRODUCE.txt``: the command that repeats the run from the report's own files, and how to
  check that it did.

The report is assembled in a hidden temporary folder beside its destination and moved there
in one rename, so a failed or interrupted save leaves nothing half-written.

Writing takes seconds after a long run (formatting a metrics.csv of 100,000 rows is most of
it); ``RunSnapshot`` takes what a report needs from a session at once, so that the writing can
go on in another thread while the session answers the window and trains.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import html
import io
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
from PIL import Image

from model.config import (
    PIXEL_SCALING_LABELS,
    UPDATE_MODE_LABELS,
    TrainingConfig,
)
from model.data import LIST_COLUMNS, Dataset
from model.diagnostics import Finding, merge_alike, useful_fixes
from model.files import SaveError, readable, text_bytes, write_atomic
from model.formatting import format_count, format_number, format_share
from model.headless import (
    FINDINGS_JSON_NAME,
    FINDINGS_TEXT_NAME,
    METRICS_NAME,
    findings_data,
    findings_text,
    metrics_row_cells,
    metrics_writer,
    versions,
)
from model.history import MetricsTable
from model.presets import PRESETS
from model.record import METRIC_NAMES, StepRecord
from model.session import TrainingSession
from model.settings_log import settings_changes, settings_log_data
from model.snapshot import json_bytes, save_snapshot
from model.weights_file import COPY_NAME, config_with_copy

PROG = "training-inspector"
INDEX_NAME = "index.html"
REPRODUCE_NAME = "REPRODUCE.txt"
CONFIG_NAME = "config.json"
DATASET_NAME = "dataset.json"
SETTINGS_LOG_NAME = "settings_log.json"
DATA_DIR = "data"
IMAGE_LIST_NAME = "images.csv"
SNAPSHOT_DIR = "snapshots"
PLOT_DIR = "plots"
#: What each plot of the window shows, under it on the report's page (a reader saw its file
#: name, and took an outcome map swept with other settings for one of this run).
PLOT_CAPTIONS = {
    "filters-weights": "Filter weights at the shown iteration, one block per input channel.",
    "filters-gradient": "Gradient of the loss for each filter weight, of the shown update.",
    "filters-update": "The shown update of each filter weight: new − old.",
    "maps-pre-activation": "Pre-activation maps (before the activation) at the shown iteration.",
    "maps-relu-output": "Output maps of the activation at the shown iteration.",
    "curve-loss": "Loss (binary cross-entropy) over the iterations, the mean and the images'.",
    "curve-accuracy": "Accuracy on all images over the iterations.",
    "curve-weights": "Smallest, mean and largest filter weight over the iterations.",
    "curve-gradient-norms": (
        "Gradient norms of the conv layer and the classifier, each over its weights and bias "
        "(log scale)."
    ),
    "curve-dead-fraction": "Share of ReLU outputs that are 0 over the iterations.",
    "curve-update-ratio": "Size of each update relative to the weights, ‖Δw‖ / ‖w‖ (log scale).",
    "compare-loss": "Loss of this run (A) and of the second run (B) side by side.",
    "compare-dead-fraction": "Share of ReLU outputs at 0 in runs A and B.",
    "outcome-map": (
        "Outcome map of a sweep made in the window: how runs with the settings on its axes ended. "
        "Its title gives the settings it held fixed, which may not be this run's."
    ),
}
REPRODUCED_DIR = "reproduced"
#: Files whose presence marks a folder as a report, which ``overwrite`` may replace whole.
REPORT_MARKERS = (INDEX_NAME, REPRODUCE_NAME)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Images shown on the page (all are in data/).
SHOWN_IMAGES = 24
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")
#: In an image's own name: letters of any script are kept (a review found every non-Latin name
#: written as 'img'), and the name is cut to MAX_STEM characters (a long one made the path too
#: long to write).
_UNSAFE_STEM = re.compile(r"[^\w. -]+")
MAX_STEM = 60


# ---------------------------------------------------------------------------------------------
# What the run was
# ---------------------------------------------------------------------------------------------


def start_config(session: TrainingSession) -> TrainingConfig:
    """The session's config with the live settings of its first update (the settings log's
    first entry: a rate changed before the first Step is the one the run started with); later
    changes are in its settings log."""
    _, first = session.history.settings_log[0]
    return session.config.with_changes(**settings_changes(first))


def _preset_text(config: TrainingConfig, preset: str | None) -> str:
    """The preset named, and what the run's start ``config`` has otherwise: a window names the
    preset its current settings match, and a run started with another learning rate (or
    changed since) comes to match it."""
    if preset not in PRESETS:
        # (a run started from a preset whose settings changed since: named by its start)
        preset = next((name for name, p in PRESETS.items() if p.config == config), None)
    if preset is None:
        return "(not from a preset)"
    base = PRESETS[preset].config
    changed = [
        f"{field.name.replace('_', ' ')} {_setting_text(getattr(config, field.name))}"
        for field in fields(config)
        if getattr(config, field.name) != getattr(base, field.name)
    ]
    # As the window names it, with the name the command line takes ("seed" alone read as an
    # internal word to a teacher).
    named = f"{PRESETS[preset].title} (--preset {preset})"
    return f"{named}, started with {', '.join(changed)}" if changed else named


def _setting_text(value) -> str:
    if hasattr(value, "describe"):
        return value.describe()
    return format_number(value) if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class _HistorySnapshot:
    metrics: MetricsTable
    findings: tuple[Finding, ...]
    settings_log: list


class RunSnapshot:
    """What a report needs of a session, taken at one moment: the same ``config``,
    ``dataset``, ``iteration``, ``latest``, ``history.metrics/findings/settings_log`` and
    ``record(k)`` for iteration 0 and ``snapshot_iterations`` (the chosen ones, checked, or the
    defaults). It holds copies or immutable objects only, so the session may go on.
    ``write_report`` writes from one (taken from the session it is given, or given one).

    Raises ``ValueError`` when a snapshot iteration is outside 0..iteration.
    """

    def __init__(self, session: TrainingSession, snapshot_iterations=None) -> None:
        history = session.history
        self.config = session.config
        self.dataset = session.dataset
        self.iteration = session.iteration
        self.latest = session.latest
        self.history = _HistorySnapshot(
            history.metrics.copy(), history.findings, list(history.settings_log)
        )
        self.snapshot_iterations = (
            default_snapshot_iterations(session, history.findings)
            if snapshot_iterations is None
            else _checked_iterations(session, snapshot_iterations)
        )
        # Thinned iterations are recomputed here, in the session's own thread.
        self._records = {k: session.record(k) for k in {0, *self.snapshot_iterations}}

    def record(self, iteration: int) -> StepRecord:
        return self._records[iteration]


def _class_folder(label: int, name: str) -> str:
    """'0_cross': the ordering prefix, then the class name made safe as a folder name (the
    loader strips the prefix again; a name starting with '.' would be hidden)."""
    safe = _UNSAFE_NAME.sub("_", name).strip(" .") or f"class{label}"
    return f"{label}_{safe}"


def data_files(dataset: Dataset) -> list[str]:
    """Relative path under the report of each image of ``dataset``, in dataset order."""
    width = max(4, len(str(len(dataset) - 1)))
    folders = [_class_folder(label, name) for label, name in enumerate(dataset.class_names)]
    counters = [0, 0]
    paths = []
    for label, original in zip(dataset.labels, dataset.paths, strict=True):
        # The image's own name after its number: the number keeps the order when the folder
        # is loaded again, the name what a teacher called it ("img_0000" lost it).
        stem = _UNSAFE_STEM.sub("_", os.path.splitext(os.path.basename(original))[0])
        stem = stem[:MAX_STEM].strip(" ._") or "img"
        paths.append(f"{DATA_DIR}/{folders[label]}/{counters[label]:0{width}d}_{stem}.png")
        counters[label] += 1
    return paths


def order_survives_reload(dataset: Dataset) -> bool:
    """Whether loading data/ gives the images in dataset order: the loader puts every label-0
    image before every label-1 image, so only a dataset sorted by label keeps its order."""
    return bool(np.all(np.diff(dataset.labels) >= 0))


def dataset_description(dataset: Dataset, source: Mapping | None) -> dict:
    """dataset.json."""
    return {
        "digest": dataset.digest(),
        "images": len(dataset),
        "size": list(dataset.size),
        "class_names": list(dataset.class_names),
        "label_counts": list(dataset.label_counts()),
        "labels": dataset.labels.tolist(),
        "source": None if source is None else dict(source),
        "files": data_files(dataset),
        # Names only: a report is shared, and the folders above are nobody else's business.
        "original_names": [os.path.basename(path) for path in dataset.paths],
        "order_survives_reload": order_survives_reload(dataset),
        "skipped": [
            {"file": os.path.basename(path), "reason": reason} for path, reason in dataset.skipped
        ],
        "resized": [
            {
                "image": index + 1,
                "file": os.path.basename(dataset.paths[index]),
                "file_size": list(dataset.native_sizes[index]),
            }
            for index in dataset.resized()
        ],
    }


def reproduce_arguments(session: TrainingSession) -> list[str]:
    """The command, run from inside the report folder, that repeats the run into
    ``reproduced/``."""
    height, width = session.dataset.size
    return [
        PROG,
        "--headless",
        "--data",
        IMAGE_LIST_NAME,
        "--config",
        CONFIG_NAME,
        "--settings-log",
        SETTINGS_LOG_NAME,
        "--size",
        f"{height}x{width}",
        "--iterations",
        # A headless run takes at least one update; its first row is iteration 0 all the same.
        str(max(1, session.iteration)),
        "--out",
        REPRODUCED_DIR,
    ]


def default_snapshot_iterations(session: TrainingSession, findings: Iterable[Finding]) -> list:
    """0, every iteration a filter died, and the last."""
    deaths = {f.since for f in findings if f.code == "dead_filter" and f.since is not None}
    deaths |= {since for since in session.latest.dead_since if since is not None}
    return sorted({0, session.iteration, *deaths})


# ---------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem;
       color: #1a1a1a; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.25rem; margin-top: 2rem; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; }
td, th { padding: 0.2rem 0.8rem 0.2rem 0; text-align: left; vertical-align: top; }
th { font-weight: 600; }
.finding { border-left: 4px solid #999; padding: 0.3rem 0.8rem; margin: 0.8rem 0;
           background: #f7f7f7; }
.error { border-color: #b2182b; } .warning { border-color: #e69f00; }
.info { border-color: #0072b2; }
.severity { font-weight: 600; text-transform: uppercase; font-size: 0.8rem; }
figure { margin: 1rem 0; } figcaption { color: #555; font-size: 0.9rem; }
img { max-width: 100%; }
.thumbs img { width: 64px; height: 64px; image-rendering: pixelated; border: 1px solid #ccc; }
.thumbs figure { display: inline-block; margin: 0.3rem; text-align: center; }
pre { background: #f3f3f3; padding: 0.8rem; overflow-x: auto; }
.note { color: #8a4b00; }
"""


def _e(value) -> str:
    return html.escape(str(value))


def _link(path: str, text: str | None = None) -> str:
    return f'<a href="{_e(path)}">{_e(text or path)}</a>'


def _init_text(config: TrainingConfig, layer: str) -> str:
    """How ``layer`` started, naming the report's copy of a weights file (a reader looks for
    the file named)."""
    text = config.init_text(layer)
    if config.initial_weights is not None and text.startswith("from "):
        text += f" (copied as {COPY_NAME})"
    return text


def _settings_table(config: TrainingConfig, preset: str | None) -> list[tuple[str, str]]:
    clip = "off" if config.clip_norm is None else format_number(config.clip_norm)
    return [
        ("preset", _preset_text(config, preset)),
        (
            "network",
            f"conv {format_count(config.num_filters, 'filter')} "
            f"3x{config.kernel_size}x{config.kernel_size}, "
            f"padding {config.padding}, {config.activation}"
            + (f" (slope {config.negative_slope:g})" if config.activation == "leaky_relu" else "")
            + " -> logistic regression",
        ),
        ("conv init", _init_text(config, "conv")),
        ("classifier init", _init_text(config, "classifier")),
        ("pixels", PIXEL_SCALING_LABELS[config.pixel_scaling]),
        (
            "updates",
            UPDATE_MODE_LABELS[config.update_mode] + (", shuffled" if config.shuffle else ""),
        ),
        ("learning rate at the start", format_number(config.learning_rate)),
        ("momentum", f"{config.momentum:g}"),
        ("gradient clipping", clip),
        ("seed", str(config.seed)),
        ("dtype", config.dtype),
    ]


def _finding_html(finding: Finding) -> str:
    fixes = "".join(f"<li>{_e(fix.label)}</li>" for fix in finding.fixes)
    return (
        f'<div class="finding {_e(finding.severity)}">'
        f'<span class="severity">{_e(finding.severity)}</span> '
        f"<strong>iteration {finding.iteration}: {_e(finding.title)}</strong>"
        f"<p>{'<br>'.join(_e(line) for line in finding.explanation.splitlines())}</p>"
        + (f"<p>Suggested fixes:</p><ul>{fixes}</ul>" if fixes else "")
        + "</div>"
    )


def _loading_notes(dataset: Dataset) -> list[str]:
    """What loading the images did besides reading them: files refused, images resized (as the
    window's Data panel says; a learner's report left both out)."""
    notes = []
    if dataset.skipped:
        listed = "; ".join(
            f"{_e(os.path.basename(path))} ({_e(reason)})" for path, reason in dataset.skipped
        )
        notes.append(
            f"<p>Skipped {format_count(len(dataset.skipped), 'file')} that could not be used: "
            f"{listed}.</p>"
        )
    resized = dataset.resized()
    if resized:
        listed = "; ".join(
            f"#{i + 1} {_e(os.path.basename(dataset.paths[i]))} from "
            f"{dataset.native_sizes[i][0]}x{dataset.native_sizes[i][1]}"
            for i in resized
        )
        notes.append(
            f"<p>{format_count(len(resized), 'image')} resized to "
            f"{dataset.size[0]}x{dataset.size[1]} from another size (the aspect ratio is not "
            f"kept): {listed}.</p>"
        )
    return notes


def index_html(
    session: TrainingSession,
    *,
    preset: str | None,
    source: Mapping | None,
    final_findings: Iterable[Finding],
    first_findings: Iterable[Finding],
    snapshots: Mapping[int, str],
    plots: Mapping[str, str],
    files: Iterable[str],
    metric_rows: int,
) -> str:
    """The report's page."""
    dataset = session.dataset
    config = start_config(session)
    final = session.latest
    image_files = data_files(dataset)
    weights = final.params["conv.weight"]
    where = "" if not source else " from " + ", ".join(f"{k} {v}" for k, v in source.items())
    zeros, ones = dataset.label_counts()
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>Training Inspector report</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>Training Inspector report</h1>",
        f"<p>{format_count(final.iteration, 'SGD update')} of a small convolutional network on "
        f"{len(dataset)} images of {dataset.size[0]}x{dataset.size[1]}{_e(where)}: "
        f"{zeros} '{_e(dataset.class_names[0])}' (label 0) and {ones} "
        f"'{_e(dataset.class_names[1])}' (label 1).</p>",
        f"<p>At the last iteration: loss {_e(format_number(final.loss))}, accuracy "
        f"{format_share(final.accuracy, 1)}, {len(final.dead_filters)} of "
        f"{format_count(weights.shape[0], 'filter')} dead, "
        f"filter weights in [{_e(format_number(weights.min()))}, "
        f"{_e(format_number(weights.max()))}].</p>",
        "<h2>Settings</h2><table>",
        *(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in _settings_table(config, preset)),
        "</table>",
    ]
    changes = session.history.settings_log
    if len(changes) > 1:
        parts += [
            "<p>Live settings changed during the run (from the update of the iteration shown):"
            "</p><table><tr><th>iteration</th><th>learning rate</th><th>momentum</th>"
            "<th>clipping</th></tr>",
            *(
                f"<tr><td>{start}</td><td>{_e(format_number(s.learning_rate))}</td>"
                f"<td>{s.momentum:g}</td>"
                f"<td>{'off' if s.clip_norm is None else _e(format_number(s.clip_norm))}</td></tr>"
                for start, s in changes
            ),
            "</table>",
        ]
    parts.append("<h2>Images</h2>")
    parts += _loading_notes(dataset)
    parts.append('<div class="thumbs">')
    for index in range(min(len(dataset), SHOWN_IMAGES)):
        label = int(dataset.labels[index])
        parts.append(
            f'<figure><img src="{_e(image_files[index])}" alt="image {index + 1}">'
            f"<figcaption>#{index + 1} {_e(dataset.class_names[label])}<br>"
            f"{_e(os.path.basename(dataset.paths[index]))}</figcaption></figure>"
        )
    parts.append("</div>")
    if len(dataset) > SHOWN_IMAGES:
        parts.append(f"<p>and {len(dataset) - SHOWN_IMAGES} more in {_link(DATA_DIR + '/')}.</p>")
    parts += _metrics_html(session)
    # Read as the Diagnostics panel shows them: filters dead in one update are one finding,
    # and at the last iteration fixes that would change nothing in the run's settings, or
    # make the same run as one above them, are left out (as they first appeared, they were
    # offered: that is history).
    # Those that first appeared at the last iteration are the ones above: not twice (a
    # teacher's report of one Step repeated every card word for word).
    earlier = [f for f in first_findings if f.iteration != final.iteration]
    for heading, findings, none in (
        (
            f"Findings at the last iteration ({final.iteration})",
            useful_fixes(final_findings, session.config),
            "none",
        ),
        (
            "Findings as they first appeared, before it",
            earlier,
            "none: every finding first appeared at the last iteration",
        ),
    ):
        parts.append(f"<h2>{heading}</h2>")
        parts += [_finding_html(f) for f in merge_alike(findings)] or [f"<p>{none}</p>"]
    parts.append("<h2>Conv filters</h2>")
    for iteration, path in snapshots.items():
        shown = "the initial weights" if iteration == 0 else "weights, and the gradient and "
        shown += "" if iteration == 0 else "update that led to them"
        parts.append(
            f'<figure><img src="{_e(path)}" alt="filters at iteration {iteration}">'
            f"<figcaption>Iteration {iteration}: {shown} "
            f"({_link(path.replace('.png', '.json'), 'numbers')}, "
            f"{_link(path.replace('.png', '.npy'), 'weights as .npy')}, "
            f"{_link(path.replace('.png', '.npz'), 'every array as .npz')})</figcaption></figure>"
        )
    if plots:
        parts.append("<h2>Plots</h2>")
        for name, path in plots.items():
            caption = PLOT_CAPTIONS.get(name, name)
            parts.append(
                f'<figure><img src="{_e(path)}" alt="{_e(name)}">'
                f"<figcaption>{_e(caption)}</figcaption></figure>"
            )
    parts.append("<h2>Reproduce</h2>")
    parts.append(
        "<p>With Training Inspector installed, run this inside the report's folder; it trains "
        f"the same network on the images of {_link(DATA_DIR + '/')}, in the order of "
        f"{_link(IMAGE_LIST_NAME)}, with "
        f"{_link(CONFIG_NAME)}, changes the live settings as {_link(SETTINGS_LOG_NAME)} says, "
        f"and writes {REPRODUCED_DIR}/{METRICS_NAME}, which matches {_link(METRICS_NAME)}:</p>"
    )
    parts.append(f"<pre>{_e(' '.join(reproduce_arguments(session)))}</pre>")
    parts += _reproduce_notes_html(session, metric_rows)
    parts.append("<h2>Files</h2><ul>")
    parts += [f"<li>{_link(name)}</li>" for name in files]
    parts.append("</ul></body></html>")
    return "\n".join(parts) + "\n"


#: (metrics.csv column, heading) of the metrics table on the page.
_PAGE_METRICS = (
    ("loss", "loss"),
    ("accuracy", "accuracy"),
    ("dead_fraction", "zero ReLU outputs"),
    ("conv_weight_min", "filter min"),
    ("conv_weight_max", "filter max"),
    ("conv_update_ratio", "update / weight"),
    ("learning_rate", "learning rate"),
)
#: Rows of that table at most (evenly spread, first and last always); all are in metrics.csv.
PAGE_METRIC_ROWS = 15


#: Columns of that table measured on an update. Iteration 0, the initial state, has none: its
#: metrics hold NaN there (``model.record.compute_metrics``; an empty cell in metrics.csv),
#: which the page shows as ``NO_UPDATE``. Anywhere else a NaN is real (the run diverged) and
#: is shown as NaN.
_UPDATE_METRICS = frozenset({"conv_update_ratio"})
#: The cell of an update metric at iteration 0: the dash ``format_share`` writes for no share.
NO_UPDATE = "–"
_NO_UPDATE_CELL = f'<td title="no update yet: iteration 0 is the initial state">{NO_UPDATE}</td>'


def _page_value(name: str, value: float) -> str:
    """A share as a percentage (as the window writes them), any other value as a number."""
    shares = ("accuracy", "dead_fraction")
    return format_share(value) if name in shares else format_number(value)


def page_metric_rows(iterations: np.ndarray) -> np.ndarray:
    """Rows of a metrics table (its ``iterations``, ascending) the page shows: at most about
    ``PAGE_METRIC_ROWS``, at a round step (1, 2 or 5 × 10ⁿ iterations), and the last one. (Spread
    evenly, 142 rows gave the iterations 0, 10, ..., 70, 81, 91: a learner read a gap.)"""
    last = int(iterations[-1])
    step = 1
    while last / step > PAGE_METRIC_ROWS - 1:
        step = _next_step(step)
    wanted = np.append(np.arange(0, last + 1, step), last)
    # The first row at or after each (a thinned table may lack the iteration itself).
    return np.unique(np.searchsorted(iterations, wanted).clip(max=len(iterations) - 1))


def _next_step(step: int) -> int:
    """The round number after ``step`` in 1, 2, 5, 10, 20, 50, ..."""
    digits = 10 ** (len(str(step)) - 1)
    return {1: 2, 2: 5, 5: 10}[step // digits] * digits


def _metrics_html(session: TrainingSession) -> list[str]:
    table = session.history.metrics
    iterations = table.iterations
    picked = page_metric_rows(np.asarray(iterations))
    header = "".join(f"<th>{_e(title)}</th>" for _, title in _PAGE_METRICS)
    rows = []
    legend = {}
    for row in picked.astype(int):
        iteration = int(iterations[row])
        cells = []
        for name, _ in _PAGE_METRICS:
            if iteration == 0 and name in _UPDATE_METRICS:
                cells.append(_NO_UPDATE_CELL)
                legend[NO_UPDATE] = "no value; iteration 0 is the initial state, before any update."
                continue
            text = _page_value(name, table.column(name)[row])
            if text == "NaN":
                legend["NaN"] = "the value is not a number; the run diverged."
            cells.append(f"<td>{_e(text)}</td>")
        rows.append(f"<tr><td>{iteration}</td>{''.join(cells)}</tr>")
    return [
        "<h2>Metrics</h2>",
        f"<p>Measured on the whole dataset after each update; every iteration is in "
        f"{_link(METRICS_NAME)}.</p>",
        f"<table><tr><th>iteration</th>{header}</tr>",
        *rows,
        "</table>",
        *(f"<p>{_e(mark)}: {_e(meaning)}</p>" for mark, meaning in legend.items()),
    ]


def _reproduce_notes(session: TrainingSession, metric_rows: int) -> list[str]:
    notes = []
    if session.iteration == 0:
        notes.append(
            f"The run had taken no update yet: {METRICS_NAME} holds iteration 0 only, the first "
            "row of the reproduced file (which goes on to iteration 1)."
        )
    if metric_rows < session.iteration + 1:
        notes.append(
            f"The history had thinned its metrics table: {METRICS_NAME} holds {metric_rows} of "
            f"the {session.iteration + 1} iterations; each of its rows appears unchanged in the "
            "reproduced file."
        )
    return notes


def _reproduce_notes_html(session: TrainingSession, metric_rows: int) -> list[str]:
    return [f'<p class="note">{_e(note)}</p>' for note in _reproduce_notes(session, metric_rows)]


def reproduce_text(session: TrainingSession, metric_rows: int) -> str:
    """REPRODUCE.txt."""
    lines = [
        "Reproduce this run",
        "==================",
        "",
        "With Training Inspector installed, run inside this folder:",
        "",
        "    " + " ".join(reproduce_arguments(session)),
        "",
        f"It loads the images of {DATA_DIR}/ in the order {IMAGE_LIST_NAME} lists (the order the "
        f"run saw them), starts from {CONFIG_NAME}, changes the learning "
        f"rate, momentum and clipping at the iterations listed in {SETTINGS_LOG_NAME}, and "
        f"writes {REPRODUCED_DIR}/{METRICS_NAME}. Compare it with {METRICS_NAME}, e.g.",
        "",
        f"    cmp {METRICS_NAME} {REPRODUCED_DIR}/{METRICS_NAME}",
        "",
    ]
    for note in _reproduce_notes(session, metric_rows):
        lines += [note, ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


def _plot_name(name: str, taken: set[str]) -> str:
    stem = _UNSAFE_NAME.sub("_", Path(name).stem if name.lower().endswith(".png") else name)
    stem = stem.strip(" .") or "plot"
    candidate, n = f"{stem}.png", 1
    while candidate in taken:
        n += 1
        candidate = f"{stem}-{n}.png"
    taken.add(candidate)
    return candidate


def _checked_iterations(session: TrainingSession, iterations: Iterable[int]) -> list[int]:
    chosen = set()
    for value in iterations:
        k = int(value)
        if k != value or not 0 <= k <= session.iteration:
            raise ValueError(f"snapshot iteration {value!r} is not in 0..{session.iteration}")
        chosen.add(k)
    return sorted(chosen)


def _write_data(folder: Path, dataset: Dataset) -> None:
    relatives = data_files(dataset)
    for relative, pixels in zip(relatives, dataset.images, strict=True):
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.ascontiguousarray(pixels.transpose(1, 2, 0)), "RGB").save(path, "PNG")
    with open(folder / IMAGE_LIST_NAME, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(LIST_COLUMNS)
        for relative, label in zip(relatives, dataset.labels, strict=True):
            # (a class named after a folder whose name is no UTF-8: U+FFFD for those bytes)
            writer.writerow((relative, int(label), readable(dataset.class_names[label])))


#: metrics.csv is formatted and written this many rows at a time, each block into memory first
#: and then to the file in one write. Formatting all rows first made millions of objects live
#: at once, and the garbage collector's passes over them held Python's interpreter lock for
#: 100-200 ms each; writing row by row through the file released and took the lock at every
#: buffer flush, and a thread waiting for it (in the training process, the one that answers
#: the window) got it only about every 35 ms (CPython forces a hand-over only after 5 ms
#: without one).
METRICS_ROWS_PER_WRITE = 2000


def _write_metrics(path: Path, table: MetricsTable) -> None:
    """metrics.csv of every iteration ``table`` holds, in the headless run's format."""
    columns = [table.column(name) for name in METRIC_NAMES]
    block = io.StringIO()
    writer = metrics_writer(block)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        for start in range(0, len(table), METRICS_ROWS_PER_WRITE):
            values = np.column_stack([c[start : start + METRICS_ROWS_PER_WRITE] for c in columns])
            writer.writerows(metrics_row_cells(row) for row in values.tolist())
            handle.write(block.getvalue())
            block.seek(0)
            block.truncate()
        handle.write(block.getvalue())  # the header of an empty table


def _build(
    folder: Path,
    session: RunSnapshot,
    plot_pngs: Mapping[str, bytes],
    preset: str | None,
    source: Mapping | None,
) -> None:
    """Write every file of the report into the empty ``folder``."""
    config = start_config(session)
    first = session.history.findings
    final = session.latest
    iterations = session.snapshot_iterations
    metric_rows = len(session.history.metrics)
    data, weights_copy = config_with_copy(config)
    files: dict[str, bytes] = {
        CONFIG_NAME: json_bytes(
            {
                "preset": preset,
                "seed": config.seed,
                "config": data,
                "iterations": session.iteration,
                "versions": versions(),
            }
        ),
        DATASET_NAME: json_bytes(dataset_description(session.dataset, source)),
        SETTINGS_LOG_NAME: json_bytes(settings_log_data(session.history.settings_log)),
        FINDINGS_TEXT_NAME: text_bytes(findings_text(final.iteration, final.findings, first)),
        FINDINGS_JSON_NAME: json_bytes(findings_data(final.iteration, final.findings, first)),
        REPRODUCE_NAME: text_bytes(reproduce_text(session, metric_rows)),
    }
    if weights_copy is not None:
        files[COPY_NAME] = weights_copy
    for name, payload in files.items():
        (folder / name).write_bytes(payload)
    _write_metrics(folder / METRICS_NAME, session.history.metrics)
    _write_data(folder, session.dataset)
    (folder / SNAPSHOT_DIR).mkdir()
    snapshots = {}
    extra = {"dataset": {"source": source and dict(source), "digest": session.dataset.digest()}}
    for k in iterations:
        record: StepRecord = session.record(k)
        at_k = config.with_changes(**settings_changes(record.settings))
        written = save_snapshot(
            record,
            at_k,
            record.findings,
            folder / SNAPSHOT_DIR,
            extra=extra,
            dataset=session.dataset,
        )
        snapshots[k] = f"{SNAPSHOT_DIR}/{written[0].name}"
    plots = {}
    if plot_pngs:
        (folder / PLOT_DIR).mkdir()
        taken: set[str] = set()
        for name, payload in plot_pngs.items():
            file_name = _plot_name(name, taken)
            (folder / PLOT_DIR / file_name).write_bytes(payload)
            plots[name] = f"{PLOT_DIR}/{file_name}"
    listed = [INDEX_NAME, *files, METRICS_NAME, IMAGE_LIST_NAME, f"{DATA_DIR}/", f"{SNAPSHOT_DIR}/"]
    page = index_html(
        session,
        preset=preset,
        source=source,
        final_findings=final.findings,
        first_findings=first,
        snapshots=snapshots,
        plots=plots,
        files=sorted(listed, key=listed.index),
        metric_rows=metric_rows,
    )
    (folder / INDEX_NAME).write_bytes(text_bytes(page))


def _is_report(folder: Path) -> bool:
    return all((folder / name).is_file() for name in REPORT_MARKERS)


def _check_plots(plot_pngs: Mapping[str, bytes]) -> None:
    for name, payload in plot_pngs.items():
        if not bytes(payload[:8]) == PNG_SIGNATURE:
            raise ValueError(f"plot {name!r} is not PNG data")


def _zip_of(folder: Path, top: str):
    def write(handle) -> None:
        with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    archive.write(path, f"{top}/{path.relative_to(folder).as_posix()}")

    return write


def _save_error(exc: OSError, what: str) -> SaveError:
    return SaveError(exc.errno, f"{what}: {(exc.strerror or str(exc)).lower()}")


def _check_destination(target: Path, overwrite: bool) -> None:
    if target.exists() and not target.is_dir():
        raise SaveError(errno.ENOTDIR, f"Not a folder: {target}")
    if not target.is_dir() or not any(target.iterdir()):
        return
    if not overwrite:
        raise SaveError(
            errno.EEXIST,
            f"{target} is not empty; choose a new or empty folder, or overwrite the report in it",
        )
    if not _is_report(target):
        raise SaveError(
            errno.EEXIST,
            f"{target} holds files that are not a report; choose a new or empty folder",
        )


def _filled(target: Path) -> SaveError:
    return SaveError(
        errno.EEXIST,
        f"Not saved: {target} is no longer empty (something was saved into it while the report "
        "was being written); choose a new or empty folder",
    )


def _move_into_place(built: Path, target: Path, overwrite: bool) -> None:
    """Rename the finished report folder to ``target``: over an empty folder, or with
    ``overwrite`` over an earlier report (moved aside first and deleted once the new one is in
    place).

    Without ``overwrite`` a folder that is no longer empty (files saved into it while the report
    was built, another report of the same name) is never replaced: the rename itself refuses it,
    so nothing can slip in between a check and the move. With ``overwrite`` only a report is
    replaced: anything else found there at the end is put back and refused."""
    if not overwrite:
        try:
            os.rename(built, target)  # over an empty folder at most (POSIX), in one step
        except OSError as exc:
            if target.is_dir() and any(target.iterdir()):
                raise _filled(target) from None
            if not (isinstance(exc, FileExistsError) and target.is_dir()):
                raise
            target.rmdir()  # systems that rename over no folder at all, even an empty one
            os.rename(built, target)
        return
    aside = None
    if target.is_dir():
        if any(target.iterdir()):
            aside = Path(tempfile.mkdtemp(prefix=f".{target.name[:40]}.old.", dir=target.parent))
            os.replace(target, aside)
            if not _is_report(aside):  # filled with something else while this one was built
                os.replace(aside, target)
                raise _filled(target)
        else:
            target.rmdir()
    try:
        os.rename(built, target)
    except OSError:
        if aside is not None:
            os.replace(aside, target)
        raise
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def new_work_folder(directory: str | os.PathLike) -> Path:
    """A new hidden, empty folder beside the report ``directory`` (and so beside its archive
    too) to build it in: on the same file system, so the finished report is moved into place in
    one step. Raises ``SaveError`` when the folder cannot be made."""
    destination = Path(directory)
    try:
        return Path(tempfile.mkdtemp(prefix=f".{destination.name[:40]}.", dir=destination.parent))
    except OSError as exc:
        raise _save_error(exc, f"Cannot write in {destination.parent}") from exc


def write_report(
    session: TrainingSession | RunSnapshot,
    directory: str | os.PathLike,
    *,
    snapshot_iterations: Iterable[int] | None = None,
    plot_pngs: Mapping[str, bytes] | None = None,
    as_zip: bool = False,
    overwrite: bool = False,
    preset: str | None = None,
    source: Mapping[str, str] | None = None,
    work_folder: str | os.PathLike | None = None,
) -> Path:
    """Write a report of ``session`` (see the module docstring).

    Parameters
    ----------
    session : the run, as it stands (its last iteration ends the report), or a ``RunSnapshot``
        of it (which has its snapshot iterations: then ``snapshot_iterations`` stays None).
    directory : the report folder to create; with ``as_zip`` the archive is this path with
        '.zip' appended (unless it already ends so) and holds one folder of this name.
    snapshot_iterations : iterations to snapshot the filters at; default 0, every iteration a
        filter died and the last.
    plot_pngs : plot name -> PNG bytes, saved in plots/ and shown on the page.
    as_zip : write a .zip archive instead of a folder.
    overwrite : replace an earlier report (a folder holding index.html and REPRODUCE.txt, or
        the archive); a folder holding anything else is never replaced.
    preset : name of the preset the run started from, when known.
    source : where the dataset came from, e.g. {'example': 'question'}, {'folder': path} or
        {'list': path}.
    work_folder : an empty folder from ``new_work_folder`` to build the report in, for a caller
        that must be able to clean up after a writer that was killed; left empty, for the caller
        to remove. By default the report is built in a hidden folder of its own beside
        ``directory``, removed when writing fails.

    Returns
    -------
    The folder or archive written.

    Raises
    ------
    SaveError
        When the destination exists and may not be replaced, or cannot be written.
    ValueError
        When a snapshot iteration is outside 0..iteration or a plot is not PNG data.
    """
    plot_pngs = dict(plot_pngs or {})
    _check_plots(plot_pngs)
    destination = Path(directory)
    if as_zip:
        archive = destination if destination.suffix == ".zip" else Path(f"{destination}.zip")
        if archive.exists() and not overwrite:
            raise SaveError(errno.EEXIST, f"Not saved: {archive} already exists")
    else:
        _check_destination(destination, overwrite)
    if isinstance(session, RunSnapshot):
        if snapshot_iterations is not None:
            raise ValueError("a RunSnapshot's snapshot iterations were chosen when it was taken")
        run = session
    else:
        run = RunSnapshot(session, snapshot_iterations)
    parent = (archive if as_zip else destination).parent
    if work_folder is None:
        built = new_work_folder(directory)
    else:
        built = Path(work_folder) / destination.name
        try:
            built.mkdir()
        except OSError as exc:
            raise _save_error(exc, f"Cannot write in {work_folder}") from exc
    try:
        try:
            _build(built, run, plot_pngs, preset, source)
        except OSError as exc:
            if isinstance(exc, SaveError):
                raise
            raise _save_error(exc, f"Cannot write the report in {parent}") from exc
        if as_zip:
            top = archive.stem
            return write_atomic(
                archive, _zip_of(built, top), overwrite=overwrite, temp_dir=work_folder
            )
        try:
            _move_into_place(built, destination, overwrite)
        except SaveError:
            raise
        except OSError as exc:
            raise _save_error(exc, f"Cannot create {destination}") from exc
        built = None
        return destination
    finally:
        if built is not None:
            with contextlib.suppress(OSError):
                shutil.rmtree(built)

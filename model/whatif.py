"""Learning-rate what-if: what the next update would do at other learning rates.

``what_if`` previews the next update of a session at the current learning rate times each of a
few factors (``TrainingSession.preview``: one step of the model each, nothing committed) and
sums up each outcome in a row: where the filter weights would land, how many ReLU outputs would
still pass gradient, the loss and accuracy after, the update-to-weight ratio and a one-word
verdict. It answers "would a smaller step have saved the filter?" before the step is taken.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from model.diagnostics import LARGE_UPDATE_RATIO
from model.formatting import format_number, format_share
from model.optim import global_norm
from model.record import CONV_KEYS, StepRecord
from model.session import TrainingSession

DEFAULT_FACTORS = (10, 1, 0.1, 0.01, 0.001)
#: Verdicts, from worst to best.
VERDICTS = ("diverges", "kills filter", "too large", "no effect", "too small", "ok")
#: Update-to-weight ratio below which an update is 'too small' to matter.
TOO_SMALL_RATIO = 1e-6


@dataclass(frozen=True)
class WhatIfRow:
    """What the next update would do at one learning rate.

    Attributes
    ----------
    factor : the learning rate relative to the session's current one.
    learning_rate : current learning rate × ``factor``.
    filter_min, filter_max : range of every conv filter weight after the update.
    surviving_fraction : fraction of ReLU outputs (all filters, images and positions) that would
        be positive, i.e. 1 − dead fraction; only these pass gradient back to the filters.
    dead_filters : number of filters that would be dead (zero output everywhere).
    newly_dead : of those, how many are alive now.
    loss, accuracy : on the whole dataset after the update.
    update_ratio : ‖update‖ / ‖weights before‖ of the conv layer.
    classifier_ratio : the same of the classifier.
    non_finite : whether any weight or loss would be NaN or infinite.
    verdict : 'diverges' (non-finite), 'kills filter' (a filter alive now would die), 'too
        large' (either layer's update at least ``LARGE_UPDATE_RATIO`` of its weights, which
        Diagnostics warns of), 'no effect' (the update and what the learning rate multiplies,
        gradient plus momentum, are exactly zero, as when every filter is dead: no learning
        rate moves them), 'too small' (``update_ratio`` below ``TOO_SMALL_RATIO``) or 'ok'.
    """

    factor: float
    learning_rate: float
    filter_min: float
    filter_max: float
    surviving_fraction: float
    dead_filters: int
    newly_dead: int
    loss: float
    accuracy: float
    update_ratio: float
    classifier_ratio: float
    non_finite: bool
    verdict: str

    def to_dict(self) -> dict:
        """Plain values (floats may be NaN or infinite; ``model.snapshot.json_ready`` makes
        them strict JSON)."""
        return asdict(self)


def _non_finite(record: StepRecord) -> bool:
    arrays = [*record.params.values(), record.losses]
    return not all(np.all(np.isfinite(array)) for array in arrays)


def verdict(
    non_finite: bool,
    newly_dead: int,
    update_ratio: float,
    step_norm: float = math.nan,
    classifier_ratio: float = 0.0,
) -> str:
    """The one-word verdict of a previewed update (see ``WhatIfRow``). ``step_norm`` is the norm
    of what the learning rate multiplies in the conv layer (``conv_step_norm``). An update that
    rounds to nothing while that is not zero is 'too small': a larger rate would move the
    filters. 'too large' is where Diagnostics would warn of the update's size."""
    if non_finite:
        return "diverges"
    if newly_dead:
        return "kills filter"
    if max(update_ratio, classifier_ratio) >= LARGE_UPDATE_RATIO:
        return "too large"
    if update_ratio == 0 and step_norm == 0:
        return "no effect"
    if update_ratio < TOO_SMALL_RATIO:
        return "too small"
    return "ok"


def conv_step_norm(record: StepRecord) -> float:
    """‖momentum·v + g‖ over the conv layer's parameters (after clipping): what the learning
    rate multiplies, the gradient itself without momentum. Zero: no learning rate moves the
    filters in this update."""
    if record.velocity is None:
        return record.metrics["conv_grad_norm"]
    return global_norm([record.velocity[key] for key in CONV_KEYS])


def what_if(
    session: TrainingSession, factors: Iterable[float] = DEFAULT_FACTORS
) -> list[WhatIfRow]:
    """Preview the next update at the current learning rate × each of ``factors``.

    The session is not changed: same iteration, history and parameters afterwards.

    Parameters
    ----------
    session : the run; its next update is previewed with its momentum and clipping.
    factors : positive multipliers of the current learning rate, one row each, in this order.

    Raises
    ------
    ValueError
        When a factor is not a positive finite number.
    """
    current = session.settings.learning_rate
    alive_now = {f for f, since in enumerate(session.latest.dead_since) if since is None}
    rows = []
    for factor in factors:
        factor = float(factor)
        if not (math.isfinite(factor) and factor > 0):
            raise ValueError(f"a learning-rate factor must be a positive number, got {factor}")
        record = session.preview(current * factor)
        weights = record.params["conv.weight"]
        non_finite = _non_finite(record)
        newly_dead = len(alive_now & set(record.dead_filters))
        ratio = record.metrics["conv_update_ratio"]
        classifier_ratio = record.metrics["classifier_update_ratio"]
        with np.errstate(invalid="ignore"):
            low, high = float(np.min(weights)), float(np.max(weights))
        rows.append(
            WhatIfRow(
                factor=factor,
                learning_rate=record.settings.learning_rate,
                filter_min=low,
                filter_max=high,
                surviving_fraction=1.0 - record.dead_fraction,
                dead_filters=len(record.dead_filters),
                newly_dead=newly_dead,
                loss=record.loss,
                accuracy=record.accuracy,
                update_ratio=ratio,
                classifier_ratio=classifier_ratio,
                non_finite=non_finite,
                verdict=verdict(
                    non_finite, newly_dead, ratio, conv_step_norm(record), classifier_ratio
                ),
            )
        )
    return rows


_COLUMNS = (
    "factor",
    "learning rate",
    "filter range",
    "ReLU alive",
    "dead filters",
    "loss after",
    "accuracy",
    "update/weight",
    "verdict",
)


def _cells(row: WhatIfRow) -> tuple[str, ...]:
    return (
        f"x{row.factor:g}",
        format_number(row.learning_rate),
        f"{format_number(row.filter_min)} .. {format_number(row.filter_max)}",
        format_share(row.surviving_fraction, 1),
        str(row.dead_filters),
        format_number(row.loss),
        format_share(row.accuracy),
        format_number(row.update_ratio),
        row.verdict,
    )


def format_table(rows: Sequence[WhatIfRow]) -> str:
    """The rows as an aligned plain-text table with a header line."""
    table = [_COLUMNS, *(_cells(row) for row in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(_COLUMNS))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        for line in table
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)

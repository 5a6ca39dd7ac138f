"""The immutable record of one training iteration, and the scalar metrics derived from it.

A ``StepRecord`` holds read-only arrays that nothing else writes to (copies, or for the maps
read-only views of buffers the engine never hands out again while they are held), so whoever
shows it can never change what the session computed. Iteration 0 is the initial state (no
gradient, no update).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np

from model.diagnostics import Finding
from model.formatting import format_count
from model.optim import OptimSettings, global_norm

if TYPE_CHECKING:
    from model.data import Dataset
    from model.network import MapSummary

#: Scalar metrics of every iteration, in the order of the metrics table and metrics.csv.
METRIC_NAMES = (
    "iteration",
    "loss",
    "accuracy",
    "batch_loss",
    "update_image",
    "dead_fraction",
    "conv_weight_min",
    "conv_weight_mean",
    "conv_weight_max",
    "conv_bias_mean",
    "classifier_weight_min",
    "classifier_weight_max",
    "classifier_bias",
    "conv_grad_norm",
    "classifier_grad_norm",
    "grad_norm",
    "conv_update_ratio",
    "classifier_update_ratio",
    "learning_rate",
    "clip_scale",
    "max_abs_logit",
    "conv_weight_absmax",
    "conv_grad_absmax",
    "conv_update_absmax",
    "pre_activation_absmax",
    "activation_max",
)

#: The prediction of an image whose probability is not a number (a network that diverged).
NO_PREDICTION = -1


def predicted_labels(probabilities: np.ndarray) -> np.ndarray:
    """(N,) int64: 1 where the probability of label 1 is at least 0.5, 0 below it, and
    ``NO_PREDICTION`` where it is NaN, which is no answer, right for neither label (read as
    'below 0.5' it made a diverged network look right half of the time)."""
    probabilities = np.asarray(probabilities)
    labels = (probabilities >= 0.5).astype(np.int64)
    labels[np.isnan(probabilities)] = NO_PREDICTION
    return labels


def predicted_label(probability: float) -> int:
    """``predicted_labels`` of one image."""
    return int(predicted_labels(np.array([probability]))[0])


def batch_text(batch, dataset: Dataset | None = None, *, file_names: bool = False) -> str:
    """The images an update was computed on (a record's ``batch``), as the window says them:
    "image 3 (circle)", counted from 1 (with ``file_names``: "image 3 'c.png' (circle)"; with
    no ``dataset``: "image 3"), or "all 12 images"."""
    if len(batch) == 1 and (dataset is None or batch[0] < len(dataset)):
        index = int(batch[0])
        if dataset is None:
            return f"image {index + 1}"
        named = f" '{os.path.basename(dataset.paths[index])}'" if file_names else ""
        return f"image {index + 1}{named} ({dataset.class_names[int(dataset.labels[index])]})"
    if dataset is None or len(batch) == len(dataset):
        return f"all {format_count(len(batch), 'image')}"
    return f"{len(batch)} images"


#: Metrics of an update, which iteration 0 (no update yet) does not have: NaN there means
#: "none" (an empty cell in metrics.csv), while NaN anywhere else is what the run computed.
UPDATE_METRICS = frozenset(
    {
        "batch_loss",
        "update_image",
        "conv_grad_norm",
        "classifier_grad_norm",
        "grad_norm",
        "conv_update_ratio",
        "classifier_update_ratio",
        "conv_grad_absmax",
        "conv_update_absmax",
    }
)

CONV_KEYS = ("conv.weight", "conv.bias")
ARRAY_GROUPS = ("params", "velocity", "grads", "update", "conv_before")
CLASSIFIER_KEYS = ("classifier.weight", "classifier.bias")


def frozen_arrays(arrays: Mapping[str, np.ndarray] | None) -> Mapping[str, np.ndarray] | None:
    """Read-only copies of ``arrays`` behind a read-only mapping (None stays None)."""
    if arrays is None:
        return None
    copies = {}
    for key, value in arrays.items():
        copy = np.array(value, copy=True)
        copy.flags.writeable = False
        copies[key] = copy
    return MappingProxyType(copies)


def frozen_array(array: np.ndarray | None) -> np.ndarray | None:
    """A read-only copy of ``array`` (None stays None)."""
    if array is None:
        return None
    copy = np.array(array, copy=True)
    copy.flags.writeable = False
    return copy


def _nan_if_none(value) -> float:
    return math.nan if value is None else float(value)


def _absmax(array: np.ndarray) -> float:
    return float(np.max(np.abs(array))) if array.size else math.nan


def _ratio(update: Mapping, params_before_norm: float, keys) -> float:
    """‖update‖ / ‖weights before the update‖ over ``keys`` (inf when the weights were all 0)."""
    update_norm = global_norm([update[k] for k in keys])
    if params_before_norm == 0.0:
        return math.inf if update_norm > 0 else 0.0
    return update_norm / params_before_norm


@dataclass(frozen=True)
class StepRecord:
    """One iteration: the update it made and the state it left, measured on the whole dataset.

    Shapes: params/grads/update/velocity as in ``model.network`` (F filters, D = F·H'·W');
    ``logits``, ``probabilities``, ``losses`` (N,) for every image of the dataset;
    ``pre_activation`` and ``activation`` (N, F, H', W') or None when the history dropped them;
    ``dead_fraction_per_filter`` (F,).

    Attributes
    ----------
    iteration : 0 for the initial state, then 1, 2, ...
    params : parameters after this iteration's update.
    velocity : optimizer state after the update (None where the history dropped it).
    grads : gradient of the batch loss at the parameters before the update (None at 0).
    update : exactly params after − params before, as the dtype rounds it (None at 0).
    settings : learning rate, momentum and clipping this update used.
    batch : dataset indices this update was computed on (empty at 0).
    batch_loss : mean loss of ``batch`` before the update (None at 0).
    clip_scale : factor the gradient was scaled by for clipping (1.0 when not clipped).
    dead_since : per filter, the iteration from which it has been dead (ReLU output zero for
        every image and position), or None while it is alive.
    metrics : scalar metrics keyed by ``METRIC_NAMES``.
    findings : diagnostics of this iteration (``model.diagnostics``).
    step_seconds : wall time of the update and the evaluation.
    conv_before : the conv weights and bias before the update (``CONV_KEYS``; None at 0).
        Not params − update: where the update dwarfs the weights (a learning rate of 1e6),
        rounding the difference loses the weights' last digits, and that would show them.
    """

    iteration: int
    params: Mapping[str, np.ndarray]
    velocity: Mapping[str, np.ndarray] | None
    grads: Mapping[str, np.ndarray] | None
    update: Mapping[str, np.ndarray] | None
    settings: OptimSettings
    batch: tuple[int, ...]
    batch_loss: float | None
    clip_scale: float
    logits: np.ndarray
    probabilities: np.ndarray
    losses: np.ndarray
    pre_activation: np.ndarray | None
    activation: np.ndarray | None
    dead_fraction_per_filter: np.ndarray
    dead_since: tuple[int | None, ...]
    metrics: Mapping[str, float]
    findings: tuple[Finding, ...] = ()
    step_seconds: float = 0.0
    conv_before: Mapping[str, np.ndarray] | None = None

    def __reduce__(self):
        # Read-only mappings cannot be pickled (the desktop app sends records from its training
        # process); they travel as plain dicts and are frozen again on arrival.
        state = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for name in ARRAY_GROUPS:
            if state[name] is not None:
                state[name] = dict(state[name])
        state["metrics"] = dict(state["metrics"])
        return (_rebuild_record, (state,))

    @property
    def loss(self) -> float:
        return self.metrics["loss"]

    @property
    def accuracy(self) -> float:
        return self.metrics["accuracy"]

    @property
    def dead_fraction(self) -> float:
        return self.metrics["dead_fraction"]

    @property
    def predictions(self) -> np.ndarray:
        """Predicted label per image (``predicted_labels``): -1 where there is none."""
        return predicted_labels(self.probabilities)

    @property
    def dead_filters(self) -> tuple[int, ...]:
        """Indices of the filters that are dead at this iteration."""
        return tuple(i for i, since in enumerate(self.dead_since) if since is not None)

    @property
    def has_maps(self) -> bool:
        return self.pre_activation is not None

    @property
    def is_complete(self) -> bool:
        """Whether every array is present (the history strips some from old records)."""
        return (
            self.pre_activation is not None
            and self.velocity is not None
            and "classifier.weight" in self.params
            and (self.grads is None or "classifier.weight" in self.grads)
        )


def _read_only(array):
    if isinstance(array, np.ndarray):
        array.flags.writeable = False
    return array


def _rebuild_record(state: dict) -> StepRecord:
    """Unpickle a ``StepRecord``: arrays read-only and mappings frozen again, without copies."""
    for name in ARRAY_GROUPS:
        if state[name] is not None:
            state[name] = MappingProxyType({k: _read_only(v) for k, v in state[name].items()})
    for name in ("logits", "probabilities", "losses", "pre_activation", "activation"):
        _read_only(state[name])
    _read_only(state["dead_fraction_per_filter"])
    state["metrics"] = MappingProxyType(state["metrics"])
    return StepRecord(**state)


def dead_fraction_per_filter(activation_name: str, maps: MapSummary) -> np.ndarray:
    """Fraction of outputs whose gradient is exactly zero, per filter: (F,).

    Only ReLU blocks the gradient (its output is 0 where the pre-activation is <= 0); leaky
    ReLU and identity always pass some gradient, so their fraction is 0.
    """
    if activation_name != "relu":
        return np.zeros(maps.nonpositive.shape[0])
    return maps.nonpositive / maps.outputs_per_filter


def compute_metrics(
    *,
    iteration: int,
    params: Mapping[str, np.ndarray],
    params_before: Mapping[str, np.ndarray] | None,
    grads: Mapping[str, np.ndarray] | None,
    update: Mapping[str, np.ndarray] | None,
    losses: np.ndarray,
    probabilities: np.ndarray,
    logits: np.ndarray,
    labels: np.ndarray,
    maps: MapSummary,
    dead_fraction_per_filter: np.ndarray,
    batch_loss: float | None,
    settings: OptimSettings,
    clip_scale: float,
    batch: tuple[int, ...] = (),
) -> dict[str, float]:
    """The scalar metrics of one iteration (see ``METRIC_NAMES``). ``update_image`` is the
    image the update was computed on, counted from 1 as the window does; 0 for an update on
    every image (full batch); NaN at iteration 0 (no update)."""
    conv_w = params["conv.weight"]
    cls_w = params["classifier.weight"]
    metrics = {
        "iteration": float(iteration),
        "loss": float(np.mean(losses)),
        "accuracy": float(np.mean(predicted_labels(probabilities) == labels)),
        "batch_loss": _nan_if_none(batch_loss),
        "update_image": (
            math.nan if not batch else float(batch[0] + 1) if len(batch) == 1 else 0.0
        ),
        "dead_fraction": float(np.mean(dead_fraction_per_filter)),
        "conv_weight_min": float(conv_w.min()),
        "conv_weight_mean": float(conv_w.mean(dtype=np.float64)),
        "conv_weight_max": float(conv_w.max()),
        "conv_bias_mean": float(params["conv.bias"].mean(dtype=np.float64)),
        "classifier_weight_min": float(cls_w.min()),
        "classifier_weight_max": float(cls_w.max()),
        "classifier_bias": float(params["classifier.bias"]),
        "learning_rate": settings.learning_rate,
        "clip_scale": clip_scale,
        "max_abs_logit": _absmax(logits),
        "conv_weight_absmax": _absmax(conv_w),
        "conv_grad_absmax": math.nan if grads is None else _absmax(grads["conv.weight"]),
        "conv_update_absmax": math.nan if update is None else _absmax(update["conv.weight"]),
        "pre_activation_absmax": maps.pre_absmax,
        "activation_max": maps.activation_max,
    }
    if grads is None:
        for name in (
            "conv_grad_norm",
            "classifier_grad_norm",
            "grad_norm",
            "conv_update_ratio",
            "classifier_update_ratio",
        ):
            metrics[name] = math.nan
    else:
        metrics["conv_grad_norm"] = global_norm([grads[k] for k in CONV_KEYS])
        metrics["classifier_grad_norm"] = global_norm([grads[k] for k in CLASSIFIER_KEYS])
        metrics["grad_norm"] = global_norm(list(grads.values()))
        metrics["conv_update_ratio"] = _ratio(
            update, global_norm([params_before[k] for k in CONV_KEYS]), CONV_KEYS
        )
        metrics["classifier_update_ratio"] = _ratio(
            update, global_norm([params_before[k] for k in CLASSIFIER_KEYS]), CLASSIFIER_KEYS
        )
    return metrics

"""The training configuration: every setting that decides what a run computes.

A ``TrainingConfig`` is immutable; a change makes a new one (``with_changes``). Settings in
``LIVE_FIELDS`` may change between iterations of a running session; every other change needs
new weights or a new data pipeline and takes effect on reset.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field

import numpy as np

from model.files import readable
from model.formatting import format_count, format_filters
from model.init import InitSpec
from model.layers import ACTIVATIONS, MAX_FILTERS, MAX_KERNEL, PADDINGS, output_size
from model.weights_file import StartingWeights, WeightsFileError, check_classifier

PIXEL_SCALINGS = ("raw", "unit", "standardize")
PIXEL_SCALING_LABELS = {
    "raw": "raw 0..255",
    "unit": "0..1 (divide by 255)",
    "standardize": "per-channel standardisation",
}
UPDATE_MODES = ("per_image", "full_batch")
UPDATE_MODE_LABELS = {"per_image": "one image at a time", "full_batch": "full batch"}
DTYPES = ("float64", "float32")

#: Settings a running session takes between two iterations, without a reset.
LIVE_FIELDS = frozenset({"learning_rate", "momentum", "clip_norm"})

MAX_LEARNING_RATE = 1e12
MAX_SEED = 2**63 - 1


class ConfigError(ValueError):
    """A setting that is refused, with the name of the field it belongs to."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


def _finite(name: str, value) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        point = " written with a decimal point" if isinstance(value, str) and "," in value else ""
        raise ConfigError(name, f"must be a number{point}, got {value!r}") from None
    if not math.isfinite(number):
        raise ConfigError(name, f"must be a finite number, got {value!r}")
    return number


def _integer(name: str, value, low: int, high: int) -> int:
    number = None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        try:
            number = int(value.strip())
        except ValueError:
            number = None
    elif isinstance(value, numbers.Integral) and not isinstance(value, bool):
        number = int(value)
    if number is None:
        raise ConfigError(name, f"must be a whole number, got {value!r}")
    if not low <= number <= high:
        raise ConfigError(name, f"must be between {low} and {high}, got {number}")
    return number


def _choice(name: str, value, choices) -> str:
    if value not in choices:
        raise ConfigError(name, f"must be one of {', '.join(choices)}, got {value!r}")
    return value


@dataclass(frozen=True)
class TrainingConfig:
    """Everything needed to reproduce a run (with the dataset and its pixel statistics).

    Attributes
    ----------
    num_filters, kernel_size : F and K of the convolution (filters are C×K×K).
    padding : 'same' (output H×W, needs odd K) or 'valid'.
    activation, negative_slope : 'relu', 'leaky_relu' (with its slope) or 'identity'.
    conv_init, classifier_init : initialisers of the two layers' weights (biases start at 0).
    initial_weights : weights read from a file that replace the drawn ones (``StartingWeights``;
        what the file does not give is drawn as without it), or None.
    pixel_scaling : 'raw' (0..255), 'unit' (0..1) or 'standardize' (per channel, statistics of
        the loaded images).
    update_mode : 'per_image' (one SGD update per image, as in the question) or 'full_batch'.
    shuffle : per-image mode only: a seeded permutation each epoch instead of dataset order.
    learning_rate, momentum, clip_norm : SGD settings; clip_norm None means no clipping.
    seed : seeds the initialisation and the shuffling.
    dtype : 'float64' or 'float32', for every array of the run.
    history_budget_mb : memory the history may use before it thins (see ``model.history``).
    """

    num_filters: int = 1
    kernel_size: int = 3
    padding: str = "same"
    activation: str = "relu"
    negative_slope: float = 0.01
    conv_init: InitSpec = field(default_factory=lambda: InitSpec("normal", {"std": 0.02}))
    classifier_init: InitSpec = field(default_factory=lambda: InitSpec("normal", {"std": 0.02}))
    initial_weights: StartingWeights | None = None
    pixel_scaling: str = "unit"
    update_mode: str = "per_image"
    shuffle: bool = False
    learning_rate: float = 0.01
    momentum: float = 0.0
    clip_norm: float | None = None
    seed: int = 0
    dtype: str = "float64"
    history_budget_mb: int = 256

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "num_filters", _integer("num_filters", self.num_filters, 1, MAX_FILTERS))
        set_(self, "kernel_size", _integer("kernel_size", self.kernel_size, 1, MAX_KERNEL))
        _choice("padding", self.padding, PADDINGS)
        if self.padding == "same" and self.kernel_size % 2 == 0:
            raise ConfigError("kernel_size", "'same' padding needs an odd kernel size")
        _choice("activation", self.activation, ACTIVATIONS)
        slope = _finite("negative_slope", self.negative_slope)
        if not 0 <= slope < 1:
            raise ConfigError("negative_slope", f"must be in [0, 1), got {slope:g}")
        set_(self, "negative_slope", slope)
        for name in ("conv_init", "classifier_init"):
            value = getattr(self, name)
            if isinstance(value, dict):
                try:
                    value = InitSpec.from_dict(value)
                except (KeyError, ValueError, TypeError) as exc:
                    raise ConfigError(name, str(exc)) from None
                set_(self, name, value)
            elif not isinstance(value, InitSpec):
                raise ConfigError(name, f"must be an initialiser, got {value!r}")
        _choice("pixel_scaling", self.pixel_scaling, PIXEL_SCALINGS)
        _choice("update_mode", self.update_mode, UPDATE_MODES)
        set_(self, "shuffle", bool(self.shuffle))
        lr = _finite("learning_rate", self.learning_rate)
        if not 0 < lr <= MAX_LEARNING_RATE:
            raise ConfigError(
                "learning_rate",
                f"must be greater than 0 and at most {MAX_LEARNING_RATE:g}, got {lr:g}",
            )
        set_(self, "learning_rate", lr)
        momentum = _finite("momentum", self.momentum)
        if not 0 <= momentum < 1:
            raise ConfigError("momentum", f"must be in [0, 1), got {momentum:g}")
        set_(self, "momentum", momentum)
        if self.clip_norm is not None:
            clip = _finite("clip_norm", self.clip_norm)
            if clip <= 0:
                raise ConfigError("clip_norm", f"must be greater than 0 (or off), got {clip:g}")
            set_(self, "clip_norm", clip)
        set_(self, "seed", _integer("seed", self.seed, 0, MAX_SEED))
        _choice("dtype", self.dtype, DTYPES)
        set_(
            self,
            "history_budget_mb",
            _integer("history_budget_mb", self.history_budget_mb, 1, 1 << 20),
        )
        self._check_initial_weights()

    def _check_initial_weights(self) -> None:
        weights = self.initial_weights
        if weights is None:
            return
        if not isinstance(weights, StartingWeights):
            raise ConfigError(
                "initial_weights", f"must be weights read from a file, got {weights!r}"
            )
        f, k = self.num_filters, self.kernel_size
        if weights.conv_shape != (f, 3, k, k):
            given_f, _, given_k, _ = weights.conv_shape
            raise ConfigError(
                "initial_weights",
                f"{readable(weights.name)} has {format_filters(given_f, given_k)}; these settings "
                f"have {format_filters(f, k)} (the weights file decides the number and size of "
                "filters)",
            )
        if self.dtype == "float32":
            largest = weights.largest
            if largest > float(np.finfo(np.float32).max):
                raise ConfigError(
                    "initial_weights",
                    f"{readable(weights.name)} has values up to {largest:.3g}, beyond float32's "
                    "range: compute in float64",
                )

    def map_size(self, image_size: tuple[int, int]) -> tuple[int, int]:
        """(H', W') of the maps this config makes of images of ``image_size`` (H, W).

        Raises
        ------
        ValueError
            Saying why, when the kernel does not fit the images; ``WeightsDoNotFit`` when the
            weights file's classifier weights are not one per ReLU output.
        """
        f = self.num_filters
        out_h, out_w = output_size(*image_size, self.kernel_size, self.padding)
        if self.initial_weights is not None:
            where = (
                f"{format_count(f, 'filter')} × {out_h}×{out_w} outputs "
                f"({image_size[0]}×{image_size[1]} images, {self.padding!r} padding)"
            )
            check_classifier(self.initial_weights, f * out_h * out_w, where)
        return out_h, out_w

    def init_text(self, layer: str) -> str:
        """How ``layer`` ('conv' or 'classifier') starts, in short: its initialiser's
        ``describe()``, or the weights file it is read from."""
        weights = self.initial_weights
        if weights is not None and (layer == "conv" or weights.gives_classifier()):
            return f"from {readable(weights.name)}"
        return (self.conv_init if layer == "conv" else self.classifier_init).describe()

    def conv_can_start_negative(self) -> bool:
        """Whether a filter weight can start negative (the file's, when weights are read)."""
        if self.initial_weights is not None:
            return bool(self.initial_weights.arrays["conv.weight"].min() < 0)
        return self.conv_init.can_be_negative()

    def with_weights(self, weights: StartingWeights | None) -> TrainingConfig:
        """A copy that starts from ``weights``, with the number and size of filters they hold
        (the file decides them), or that draws its weights again (None)."""
        if weights is None:
            return self.with_changes(initial_weights=None)
        filters, _, kernel, _ = weights.conv_shape
        if self.padding == "same" and kernel % 2 == 0:
            raise ConfigError(
                "initial_weights",
                f"{readable(weights.name)} has filters of {kernel}×{kernel}, and 'same' padding "
                "needs an odd size: choose 'valid' padding first",
            )
        return self.with_changes(initial_weights=weights, num_filters=filters, kernel_size=kernel)

    def with_changes(self, **changes) -> TrainingConfig:
        """A copy with ``changes`` applied and validated (raises ``ConfigError``)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ConfigError(sorted(unknown)[0], "is not a setting")
        return dataclasses.replace(self, **changes)

    def needs_reset(self, other: TrainingConfig) -> bool:
        """Whether going from ``self`` to ``other`` changes anything outside ``LIVE_FIELDS``."""
        return any(
            getattr(self, f.name) != getattr(other, f.name)
            for f in dataclasses.fields(self)
            if f.name not in LIVE_FIELDS
        )

    def to_dict(self) -> dict:
        """JSON-ready form; ``from_dict`` reads it back."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for name in ("conv_init", "classifier_init", "initial_weights"):
            if data[name] is not None:
                data[name] = data[name].to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict, base: str | None = None) -> TrainingConfig:
        """Build from ``to_dict`` output; unknown keys are refused. A weights file named by a
        relative path is looked for in ``base`` (the folder of the config's file)."""
        if not isinstance(data, dict):
            raise ConfigError("config", f"must be a mapping, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ConfigError(sorted(unknown)[0], "is not a setting")
        weights = data.get("initial_weights")
        if isinstance(weights, dict):
            try:
                data = {**data, "initial_weights": StartingWeights.from_dict(weights, base)}
            except WeightsFileError as exc:
                raise ConfigError("initial_weights", str(exc)) from None
        return cls(**data)

"""Weight initialisers, each drawing from a ``numpy.random.Generator`` passed in.

An initialiser is described by an ``InitSpec`` (a kind and its parameters) so that it can be
stored in a config, shown in the window and written to JSON.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

#: kind -> (parameter names, defaults), in the order the window shows them.
INIT_KINDS: dict[str, dict[str, float]] = {
    "uniform": {"low": 0.0, "high": 1.0},
    "normal": {"mean": 0.0, "std": 0.02},
    "he_normal": {},
    "xavier_uniform": {},
    "constant": {"value": 0.0},
}

#: Initialiser families with one scale parameter s: N(0, s) and U(0, s) (outcome-map sweeps).
SCALE_FAMILIES = ("normal", "uniform")

INIT_LABELS = {
    "uniform": "Uniform(low, high)",
    "normal": "Normal(mean, std)",
    "he_normal": "He / Kaiming normal",
    "xavier_uniform": "Xavier / Glorot uniform",
    "constant": "Constant",
}


@dataclass(frozen=True)
class InitSpec:
    """An initialiser: ``kind`` (a key of ``INIT_KINDS``) and its numeric parameters."""

    kind: str = "normal"
    params: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in INIT_KINDS:
            raise ValueError(f"initialiser must be one of {sorted(INIT_KINDS)}, got {self.kind!r}")
        merged = dict(INIT_KINDS[self.kind])
        unknown = set(self.params) - set(merged)
        if unknown:
            raise ValueError(
                f"{self.kind} takes {sorted(merged) or 'no parameters'}, got {sorted(unknown)}"
            )
        merged.update({k: float(v) for k, v in self.params.items()})
        for name, value in merged.items():
            if not math.isfinite(value):
                raise ValueError(f"{self.kind} {name} must be a finite number, got {value}")
        if self.kind == "uniform" and merged["low"] > merged["high"]:
            raise ValueError(
                f"uniform low ({merged['low']}) must not exceed high ({merged['high']})"
            )
        if self.kind == "normal" and merged["std"] < 0:
            raise ValueError(f"normal std must be >= 0, got {merged['std']}")
        object.__setattr__(self, "params", merged)

    def describe(self) -> str:
        """Short human form, e.g. 'normal(mean=0, std=0.02)'."""
        if not self.params:
            return self.kind
        inner = ", ".join(f"{k}={v:g}" for k, v in self.params.items())
        return f"{self.kind}({inner})"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "params": dict(self.params)}

    @classmethod
    def from_dict(cls, data: dict) -> InitSpec:
        return cls(kind=data["kind"], params=dict(data.get("params", {})))

    def can_be_negative(self) -> bool:
        """Whether this initialiser can produce a negative weight."""
        p = self.params
        if self.kind == "uniform":
            return p["low"] < 0
        if self.kind == "constant":
            return p["value"] < 0
        if self.kind == "normal":
            return p["std"] > 0 or p["mean"] < 0
        return True


def initialize(
    spec: InitSpec,
    shape: tuple[int, ...],
    *,
    fan_in: int,
    fan_out: int,
    rng: np.random.Generator,
    dtype=np.float64,
) -> np.ndarray:
    """Draw an array of ``shape`` from ``spec``.

    Parameters
    ----------
    spec : the initialiser.
    shape : output shape.
    fan_in, fan_out : inputs and outputs of one unit, for He (std √(2/fan_in)) and Xavier
        (limit √(6/(fan_in+fan_out))).
    rng : the only source of randomness.
    dtype : output dtype. Values are drawn in float64 and cast, so float32 and float64 runs with
        the same seed start from the same numbers (up to rounding).
    """
    p = spec.params
    if spec.kind == "uniform":
        values = rng.uniform(p["low"], p["high"], size=shape)
    elif spec.kind == "normal":
        values = rng.normal(p["mean"], p["std"], size=shape)
    elif spec.kind == "he_normal":
        values = rng.normal(0.0, math.sqrt(2.0 / fan_in), size=shape)
    elif spec.kind == "xavier_uniform":
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        values = rng.uniform(-limit, limit, size=shape)
    else:
        values = np.full(shape, p["value"])
    return np.asarray(values, dtype=dtype)

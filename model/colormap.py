"""The colours of the tool, shared by the window and by saved PNGs so both look the same.

- Weights, gradients, updates and pre-activations: a diverging blue–white–red map centred on 0
  over a symmetric range [−limit, +limit] (blue negative, red positive).
- ReLU outputs (never negative): 0 is drawn black (a dead output: the question's "black image"),
  positive values run from pale yellow (just above 0) to dark blue (largest), so a small positive
  output is never confused with a dead one.
"""

from __future__ import annotations

import numpy as np

#: ColorBrewer RdBu, reversed (blue = negative, red = positive), white at the centre.
DIVERGING_STOPS = (
    (0.0, (5, 48, 97)),
    (0.1, (33, 102, 172)),
    (0.2, (67, 147, 195)),
    (0.3, (146, 197, 222)),
    (0.4, (209, 229, 240)),
    (0.5, (247, 247, 247)),
    (0.6, (253, 219, 199)),
    (0.7, (244, 165, 130)),
    (0.8, (214, 96, 77)),
    (0.9, (178, 24, 43)),
    (1.0, (103, 0, 31)),
)

#: ColorBrewer YlGnBu for positive outputs.
POSITIVE_STOPS = (
    (0.0, (255, 255, 204)),
    (0.25, (161, 218, 180)),
    (0.5, (65, 182, 196)),
    (0.75, (44, 127, 184)),
    (1.0, (37, 52, 148)),
)

DEAD_COLOR = (0, 0, 0)
LUT_SIZE = 256


def lookup_table(stops, size: int = LUT_SIZE) -> np.ndarray:
    """(size, 3) uint8 colours interpolated linearly between ``stops`` ((position, rgb), ...)."""
    positions = np.array([p for p, _ in stops])
    colors = np.array([c for _, c in stops], dtype=np.float64)
    x = np.linspace(0.0, 1.0, size)
    table = np.stack([np.interp(x, positions, colors[:, i]) for i in range(3)], axis=1)
    return np.round(table).astype(np.uint8)


DIVERGING_LUT = lookup_table(DIVERGING_STOPS)
POSITIVE_LUT = lookup_table(POSITIVE_STOPS)


def symmetric_limit(*arrays) -> float:
    """The largest finite |value| over ``arrays`` (1.0 when all are 0 or non-finite)."""
    largest = 0.0
    for array in arrays:
        finite = np.asarray(array, dtype=np.float64)
        finite = finite[np.isfinite(finite)]
        if finite.size:
            largest = max(largest, float(np.max(np.abs(finite))))
    return largest if largest > 0 else 1.0


def diverging_rgb(values: np.ndarray, limit: float) -> np.ndarray:
    """Colour ``values`` on [−limit, +limit]; returns values.shape + (3,) uint8.

    Values beyond the range take the end colours; NaN is drawn mid-grey.
    """
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        t = np.clip((values / limit + 1.0) / 2.0, 0.0, 1.0)
    index = np.round(np.nan_to_num(t, nan=0.5) * (LUT_SIZE - 1)).astype(np.intp)
    rgb = DIVERGING_LUT[index]
    rgb[np.isnan(values)] = (128, 128, 128)
    return rgb


def activation_rgb(values: np.ndarray, vmax: float) -> np.ndarray:
    """Colour non-negative ReLU outputs: exactly 0 black, (0, vmax] pale yellow to dark blue."""
    values = np.asarray(values, dtype=np.float64)
    scale = vmax if vmax > 0 else 1.0
    with np.errstate(invalid="ignore"):
        t = np.clip(values / scale, 0.0, 1.0)
    index = np.round(np.nan_to_num(t) * (LUT_SIZE - 1)).astype(np.intp)
    rgb = POSITIVE_LUT[index]
    rgb[values <= 0] = DEAD_COLOR
    rgb[np.isnan(values)] = (128, 128, 128)
    return rgb

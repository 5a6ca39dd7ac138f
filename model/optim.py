"""Stochastic gradient descent with optional momentum and gradient-norm clipping."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OptimSettings:
    """The settings one update used; they may change between iterations."""

    learning_rate: float
    momentum: float = 0.0
    clip_norm: float | None = None


@dataclass(frozen=True)
class SGDResult:
    """What one SGD update did.

    ``params`` and ``velocity`` are the new state; ``update`` is exactly ``new − old`` per
    parameter; ``clip_scale`` is the factor the gradient was multiplied by (1.0 when not
    clipped).
    """

    params: dict
    velocity: dict
    update: dict
    clip_scale: float


#: Sums of squares in these ranges are free of overflow and of underflow that matters.
_SAFE_SQUARES = {np.dtype(np.float32): (1e-30, 1e30), np.dtype(np.float64): (1e-280, 1e280)}


def global_norm(arrays) -> float:
    """L2 norm over every element of every array, without overflow for huge values.

    Fast path: each array's sum of squares by one BLAS dot product in its own dtype (float32
    sums carry a relative error of about 1e-6), added in float64. Only when a sum leaves the
    safe range of its dtype (huge or tiny values, inf or NaN) is everything rescaled by the
    largest magnitude and summed in float64.
    """
    arrays = [np.asarray(a) for a in arrays]
    total = 0.0
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        for a in arrays:
            flat = a.reshape(-1)
            low, high = _SAFE_SQUARES.get(flat.dtype, (None, None))
            if low is None:
                total = math.nan
                break
            squares = float(np.dot(flat, flat))
            if not low < squares < high and squares != 0.0:
                total = math.nan
                break
            total += squares
    if math.isfinite(total) and (total > 0.0 or all(not np.any(a) for a in arrays)):
        return math.sqrt(total)
    largest = max((float(np.max(np.abs(a))) if a.size else 0.0) for a in arrays)
    if largest == 0.0 or not math.isfinite(largest):
        return largest
    total = sum(float(np.sum(np.square(np.asarray(a, dtype=np.float64) / largest))) for a in arrays)
    return largest * math.sqrt(total)


def sgd_step(params: dict, grads: dict, velocity: dict, settings: OptimSettings) -> SGDResult:
    """One update: v ← momentum·v + g; θ ← θ − lr·v (PyTorch's SGD form).

    With ``clip_norm`` set, g is first scaled by clip_norm/‖g‖ when ‖g‖ exceeds it, ‖·‖ being
    the L2 norm over all parameters together. Arrays keep their dtype; the inputs are not
    modified.
    """
    clip_scale = 1.0
    if settings.clip_norm is not None:
        # Only clipping needs the gradient's norm: without it, it is a fifth of an update of
        # the smallest networks (the metrics measure it for every record anyway).
        grad_norm = global_norm(grads.values())
        if grad_norm > settings.clip_norm:
            clip_scale = settings.clip_norm / grad_norm
    new_params, new_velocity, update = {}, {}, {}
    for key, theta in params.items():
        dtype = theta.dtype.type
        g = grads[key] if clip_scale == 1.0 else grads[key] * dtype(clip_scale)
        if settings.momentum:
            v = velocity[key] * dtype(settings.momentum) + g
        else:
            v = g
        new_theta = theta - dtype(settings.learning_rate) * v
        new_params[key] = new_theta
        new_velocity[key] = v
        update[key] = new_theta - theta
    return SGDResult(new_params, new_velocity, update, clip_scale)

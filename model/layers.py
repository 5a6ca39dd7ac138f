"""Forward/backward pairs for the network's layers.

Layout is NCHW throughout. Shape letters: N images, C input channels, H and W input height and
width, F filters, K kernel size, H' and W' output height and width, L = H'·W', D = F·H'·W'
(the flattened feature length).

Every ``*_forward`` returns ``(out, cache)``; the matching ``*_backward`` takes ``(dout, cache)``.
Arithmetic stays in the dtype of the inputs: nothing here upcasts float32 to float64.
"""

from __future__ import annotations

import numpy as np

from model import convolution

PADDINGS = ("same", "valid")
ACTIVATIONS = ("relu", "leaky_relu", "identity")
#: The most filters, and the largest kernel, a run may have (settings and weights files).
MAX_FILTERS = 64
MAX_KERNEL = 15


def padding_amount(kernel_size: int, padding: str) -> int:
    """Zero padding added on each side for ``padding`` ('same' keeps H and W; needs odd K)."""
    if padding == "valid":
        return 0
    if padding == "same":
        if kernel_size % 2 == 0:
            raise ValueError(f"'same' padding needs an odd kernel size, got {kernel_size}")
        return kernel_size // 2
    raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")


def output_size(height: int, width: int, kernel_size: int, padding: str) -> tuple[int, int]:
    """Spatial size (H', W') of the convolution output for stride 1."""
    pad = padding_amount(kernel_size, padding)
    out_h = height + 2 * pad - kernel_size + 1
    out_w = width + 2 * pad - kernel_size + 1
    if out_h < 1 or out_w < 1:
        raise ValueError(
            f"a {kernel_size}x{kernel_size} kernel with {padding!r} padding does not fit "
            f"a {height}x{width} image: use a kernel of at most {min(height, width)}, or "
            "'same' padding"
        )
    return out_h, out_w


# ---------------------------------------------------------------------------------------------
# Convolution
# ---------------------------------------------------------------------------------------------


def conv_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, *, pad: int):
    """Stride-1 cross-correlation (what deep-learning libraries call convolution).

    Parameters
    ----------
    x : (N, C, H, W) input.
    w : (F, C, K, K) filters.
    b : (F,) one bias per filter.
    pad : zero padding on each side.

    Returns
    -------
    out : (N, F, H', W') with H' = H + 2·pad − K + 1.
    cache : what ``conv_backward`` needs.

    Notes
    -----
    GEMMs over column matrices built by strided copies, with the bias folded in (see
    ``model.convolution``). ``out`` may be a buffer that a later call reuses, but only once
    nothing refers to it any more. The cache refers to ``x`` (a large batch's columns are
    rebuilt from it in the backward pass): do not change ``x`` in between.
    """
    return convolution.forward(x, w, b, pad=pad)


def conv_backward(dout: np.ndarray, cache, *, need_dx: bool = True):
    """Gradients of ``conv_forward``.

    Parameters
    ----------
    dout : (N, F, H', W') upstream gradient.
    cache : from ``conv_forward``.
    need_dx : when False, skip the input gradient (the first layer never needs it) and return
        ``None`` in its place.

    Returns
    -------
    dx : (N, C, H, W) or None.
    dw : (F, C, K, K).
    db : (F,).
    """
    x, w, pad = cache.x, cache.w, cache.pad
    n, c, h, width = x.shape
    f, _, k, _ = w.shape
    out_h, out_w = dout.shape[2:]
    dout_mat = dout.reshape(n, f, out_h * out_w)
    dweights = np.zeros(cache.gradient_shape, dtype=cache.weights.dtype)
    for start, stop, cols in convolution.column_chunks(cache):
        dweights += np.add.reduce(cache.weight_partials(dout_mat[start:stop], cols), axis=0)
    dw, db = cache.split_gradient(dweights)
    if not need_dx:
        return None, dw, db
    dcols = np.matmul(w.reshape(f, -1).T, dout_mat).reshape(n, c, k, k, out_h, out_w)
    dxp = np.zeros((n, c, h + 2 * pad, width + 2 * pad), dtype=dout.dtype)
    for ki in range(k):
        for kj in range(k):
            dxp[:, :, ki : ki + out_h, kj : kj + out_w] += dcols[:, :, ki, kj]
    dx = dxp[:, :, pad : pad + h, pad : pad + width] if pad else dxp
    return dx, dw, db


def _conv_forward_naive(x: np.ndarray, w: np.ndarray, b: np.ndarray, *, pad: int) -> np.ndarray:
    """The same convolution as ``conv_forward`` written as plain loops: the reference for tests.

    Shapes as in ``conv_forward``; returns only ``out`` (N, F, H', W').
    """
    n, c, h, width = x.shape
    f, _, k, _ = w.shape
    xp = np.zeros((n, c, h + 2 * pad, width + 2 * pad), dtype=x.dtype)
    xp[:, :, pad : pad + h, pad : pad + width] = x
    out_h = h + 2 * pad - k + 1
    out_w = width + 2 * pad - k + 1
    out = np.zeros((n, f, out_h, out_w), dtype=x.dtype)
    for i in range(n):
        for j in range(f):
            for r in range(out_h):
                for s in range(out_w):
                    total = b[j]
                    for ch in range(c):
                        for u in range(k):
                            for v in range(k):
                                total += xp[i, ch, r + u, s + v] * w[j, ch, u, v]
                    out[i, j, r, s] = total
    return out


# ---------------------------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------------------------


def relu_forward(x: np.ndarray):
    """ReLU, max(x, 0). x: any shape. Returns (out, cache) with out of x's shape."""
    out = np.maximum(x, 0)
    return out, out


def relu_backward(dout: np.ndarray, cache) -> np.ndarray:
    """Gradient of ReLU: ``dout`` where the output was positive, zero elsewhere (at 0 too)."""
    return dout * (cache > 0)


def leaky_relu_forward(x: np.ndarray, negative_slope: float):
    """Leaky ReLU: x where x > 0, negative_slope·x elsewhere. Returns (out, cache)."""
    slope = x.dtype.type(negative_slope)
    positive = x > 0
    out = np.where(positive, x, x * slope)
    return out, (positive, slope)


def leaky_relu_backward(dout: np.ndarray, cache) -> np.ndarray:
    """Gradient of leaky ReLU: 1 where x > 0, negative_slope where x <= 0 (PyTorch's choice)."""
    positive, slope = cache
    return np.where(positive, dout, dout * slope)


def activation_forward(x: np.ndarray, activation: str, negative_slope: float = 0.01):
    """Dispatch to the named activation ('relu', 'leaky_relu' or 'identity')."""
    if activation == "relu":
        out, cache = relu_forward(x)
    elif activation == "leaky_relu":
        out, cache = leaky_relu_forward(x, negative_slope)
    elif activation == "identity":
        out, cache = x, None
    else:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    return out, (activation, cache)


def activation_backward(dout: np.ndarray, cache) -> np.ndarray:
    """Gradient of ``activation_forward``."""
    activation, inner = cache
    if activation == "relu":
        return relu_backward(dout, inner)
    if activation == "leaky_relu":
        return leaky_relu_backward(dout, inner)
    return dout


# ---------------------------------------------------------------------------------------------
# Logistic-regression head
# ---------------------------------------------------------------------------------------------


def linear_forward(x: np.ndarray, w: np.ndarray, b):
    """Affine map to one logit per image.

    Parameters
    ----------
    x : (N, D) features.
    w : (D,) weights.
    b : scalar bias (0-d array or NumPy scalar).

    Returns
    -------
    out : (N,) logits; cache for ``linear_backward``.
    """
    return x @ w + b, (x, w)


def linear_backward(dout: np.ndarray, cache):
    """Gradients of ``linear_forward``: dx (N, D), dw (D,), db (0-d array)."""
    x, w = cache
    dx = np.multiply.outer(dout, w)
    return dx, linear_weight_gradient(dout, x), np.asarray(np.add.reduce(dout))


def linear_weight_gradient(dout: np.ndarray, x: np.ndarray) -> np.ndarray:
    """dout (N,) @ x (N, D) -> (D,)."""
    if dout.shape[0] == 1:
        # BLAS is slow on a matrix-vector product with a single row.
        return x[0] * dout[0]
    return dout @ x


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic function that neither overflows nor loses precision for large |z|.

    exp(min(z, 0)) / (1 + exp(−|z|)): 1/(1 + e^−z) for z >= 0 and e^z/(1 + e^z) below.
    """
    return np.exp(np.minimum(z, 0)) / (1 + np.exp(-np.abs(z)))


def softplus(z: np.ndarray) -> np.ndarray:
    """log(1 + exp(z)) computed as max(z, 0) + log1p(exp(−|z|)): exact for any finite z."""
    return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))


def bce_with_logits_forward(z: np.ndarray, y: np.ndarray):
    """Per-image binary cross-entropy of logits.

    Parameters
    ----------
    z : (N,) logits.
    y : (N,) labels, 0 or 1, in z's dtype.

    Returns
    -------
    losses : (N,) −y·log σ(z) − (1−y)·log(1−σ(z)) = softplus(z) − y·z, finite for any finite z.
    cache : for ``bce_with_logits_backward``.
    """
    losses = softplus(z) - y * z
    return losses, (z, y)


def bce_with_logits_backward(dlosses: np.ndarray, cache) -> np.ndarray:
    """Gradient of the per-image losses with respect to the logits: dlosses·(σ(z) − y)."""
    z, y = cache
    return dlosses * (sigmoid(z) - y)

"""The whole network as chained forward/backward pairs: conv → activation → flatten → logistic.

Parameters travel as a plain dict with the keys of ``PARAM_KEYS``:

- ``"conv.weight"`` (F, C, K, K)
- ``"conv.bias"`` (F,)
- ``"classifier.weight"`` (D,), D = F·H'·W', the feature map flattened in C order over (F, H', W')
- ``"classifier.bias"`` 0-d array

The loss is the mean binary cross-entropy over the N images of the call.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model import layers

PARAM_KEYS = ("conv.weight", "conv.bias", "classifier.weight", "classifier.bias")


@dataclass(frozen=True)
class Forward:
    """Everything one forward pass computed, for display and for the backward pass.

    Shapes: ``pre_activation`` and ``activation`` (N, F, H', W'); ``logits``, ``probabilities``
    and ``losses`` (N,).
    """

    pre_activation: np.ndarray
    activation: np.ndarray
    logits: np.ndarray
    probabilities: np.ndarray
    losses: np.ndarray
    caches: tuple

    @property
    def loss(self) -> float:
        """Mean loss over the images."""
        return float(self.losses.mean())


def _check(params: dict, images: np.ndarray, padding: str) -> None:
    if images.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {images.shape}")
    w = params["conv.weight"]
    if w.ndim != 4 or w.shape[1] != images.shape[1] or w.shape[2] != w.shape[3]:
        raise ValueError(f"conv.weight must be (F, {images.shape[1]}, K, K), got {w.shape}")
    out_h, out_w = layers.output_size(images.shape[2], images.shape[3], w.shape[2], padding)
    expected = w.shape[0] * out_h * out_w
    if params["classifier.weight"].shape != (expected,):
        raise ValueError(
            f"classifier.weight must be ({expected},) for {images.shape[2]}x{images.shape[3]} "
            f"images, got {params['classifier.weight'].shape}"
        )


def forward(
    params: dict,
    images: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    activation: str = "relu",
    negative_slope: float = 0.01,
    padding: str = "same",
) -> Forward:
    """Run the network on ``images`` (N, C, H, W).

    With ``labels`` (N,) the per-image losses are computed too; without them ``losses`` is an
    empty array. All arithmetic is in the dtype of ``images``.
    """
    _check(params, images, padding)
    dtype = images.dtype
    w = params["conv.weight"]
    pad = layers.padding_amount(w.shape[2], padding)
    pre, conv_cache = layers.conv_forward(images, w, params["conv.bias"], pad=pad)
    act, act_cache = layers.activation_forward(pre, activation, negative_slope)
    features = act.reshape(act.shape[0], -1)
    logits, linear_cache = layers.linear_forward(
        features, params["classifier.weight"], params["classifier.bias"]
    )
    probabilities = layers.sigmoid(logits)
    if labels is None:
        losses = np.empty(0, dtype=dtype)
        loss_cache = None
    else:
        y = np.asarray(labels).astype(dtype, copy=False)
        losses, loss_cache = layers.bce_with_logits_forward(logits, y)
    return Forward(
        pre_activation=pre,
        activation=act,
        logits=logits,
        probabilities=probabilities,
        losses=losses,
        caches=(conv_cache, act_cache, linear_cache, loss_cache),
    )


def backward(fwd: Forward) -> dict:
    """Gradients of the mean loss of ``fwd`` with respect to every parameter (same keys/shapes)."""
    conv_cache, act_cache, linear_cache, loss_cache = fwd.caches
    if loss_cache is None:
        raise ValueError("backward needs a forward pass that was given labels")
    n = fwd.logits.shape[0]
    dlosses = np.full(n, 1 / n, dtype=fwd.logits.dtype)
    dlogits = layers.bce_with_logits_backward(dlosses, loss_cache)
    dfeatures, dw_cls, db_cls = layers.linear_backward(dlogits, linear_cache)
    dact = dfeatures.reshape(fwd.activation.shape)
    dpre = layers.activation_backward(dact, act_cache)
    _, dw_conv, db_conv = layers.conv_backward(dpre, conv_cache, need_dx=False)
    return {
        "conv.weight": dw_conv,
        "conv.bias": db_conv,
        "classifier.weight": dw_cls,
        "classifier.bias": db_cls,
    }


def loss_and_gradients(
    params: dict,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    activation: str = "relu",
    negative_slope: float = 0.01,
    padding: str = "same",
) -> tuple[float, dict]:
    """Mean binary cross-entropy of the network on ``images`` and its gradients.

    Parameters
    ----------
    params : dict with the keys of ``PARAM_KEYS`` (see the module docstring for shapes).
    images : (N, C, H, W) float32 or float64; the arithmetic runs in this dtype.
    labels : (N,) of 0 and 1.
    activation : 'relu', 'leaky_relu' or 'identity'.
    negative_slope : slope of leaky ReLU for x <= 0.
    padding : 'same' or 'valid'.

    Returns
    -------
    loss : Python float, the mean loss over the N images.
    grads : dict with the same keys and shapes as ``params``, in the images' dtype.
    """
    images = np.asarray(images)
    if images.dtype not in (np.float32, np.float64):
        raise TypeError(f"images must be float32 or float64, got {images.dtype}")
    typed = {key: np.asarray(params[key], dtype=images.dtype) for key in PARAM_KEYS}
    fwd = forward(
        typed,
        images,
        labels,
        activation=activation,
        negative_slope=negative_slope,
        padding=padding,
    )
    return fwd.loss, backward(fwd)

"""Parity with PyTorch autograd on the same computation (skipped when torch is absent)."""

import numpy as np
import pytest
from conftest import make_params

import model

torch = pytest.importorskip("torch")


def torch_loss_and_gradients(params, images, labels, *, activation, negative_slope, padding):
    dtype = torch.float64 if images.dtype == np.float64 else torch.float32
    tensors = {
        k: torch.tensor(np.asarray(v), dtype=dtype, requires_grad=True) for k, v in params.items()
    }
    x = torch.tensor(images, dtype=dtype)
    pad = tensors["conv.weight"].shape[-1] // 2 if padding == "same" else 0
    pre = torch.nn.functional.conv2d(x, tensors["conv.weight"], tensors["conv.bias"], padding=pad)
    if activation == "relu":
        act = torch.relu(pre)
    elif activation == "leaky_relu":
        act = torch.nn.functional.leaky_relu(pre, negative_slope)
    else:
        act = pre
    logits = act.flatten(1) @ tensors["classifier.weight"] + tensors["classifier.bias"]
    loss = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, torch.tensor(labels, dtype=dtype)
    )
    loss.backward()
    return loss.item(), {k: t.grad.numpy() for k, t in tensors.items()}


def relative_error(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-300))


CASES = [
    ("relu", "same", 1, 3),
    ("relu", "valid", 2, 3),
    ("leaky_relu", "same", 3, 5),
    ("identity", "same", 2, 1),
]


@pytest.mark.parametrize("sharing", ["alone", "threads", "processes"])
@pytest.mark.parametrize("dtype,tolerance", [(np.float64, 1e-9), (np.float32, 1e-4)])
@pytest.mark.parametrize("activation,padding,filters,kernel", CASES)
def test_matches_pytorch(
    rng, request, sharing, dtype, tolerance, activation, padding, filters, kernel
):
    threads = 1 if sharing == "alone" else 2
    if sharing == "threads":
        request.getfixturevalue("share_every_batch")
    elif sharing == "processes":
        request.getfixturevalue("share_between_processes")
    images = rng.uniform(0, 1, size=(4, 3, 9, 8)).astype(dtype)
    labels = np.array([0, 1, 1, 0])
    params = make_params(
        rng, filters=filters, kernel=kernel, height=9, width=8, padding=padding, dtype=dtype
    )
    kwargs = {"activation": activation, "negative_slope": 0.1, "padding": padding}
    loss, grads = model.loss_and_gradients(params, images, labels, threads=threads, **kwargs)
    ref_loss, ref_grads = torch_loss_and_gradients(params, images, labels, **kwargs)
    assert abs(loss - ref_loss) <= tolerance * max(abs(ref_loss), 1e-12)
    for key in model.PARAM_KEYS:
        assert grads[key].dtype == dtype
        assert relative_error(grads[key], ref_grads[key]) <= tolerance, key


@pytest.mark.parametrize("dtype,tolerance", [(np.float64, 1e-9), (np.float32, 1e-4)])
def test_matches_pytorch_at_the_questions_scale(dtype, tolerance):
    # Raw 0..255 pixels, uniform(0, 1) weights: logits ~1e6, sigmoid saturated.
    rng = np.random.default_rng(7)
    images = rng.integers(0, 256, size=(2, 3, 12, 12)).astype(dtype)
    params = {
        "conv.weight": rng.uniform(0, 1, size=(1, 3, 3, 3)).astype(dtype),
        "conv.bias": np.zeros(1, dtype=dtype),
        "classifier.weight": rng.uniform(0, 1, size=144).astype(dtype),
        "classifier.bias": np.asarray(0.0, dtype=dtype),
    }
    labels = np.array([0, 1])
    kwargs = {"activation": "relu", "negative_slope": 0.01, "padding": "same"}
    loss, grads = model.loss_and_gradients(params, images, labels, **kwargs)
    ref_loss, ref_grads = torch_loss_and_gradients(params, images, labels, **kwargs)
    assert loss > 1e4
    assert abs(loss - ref_loss) <= tolerance * abs(ref_loss)
    for key in model.PARAM_KEYS:
        assert np.all(np.isfinite(grads[key]))
        assert relative_error(grads[key], ref_grads[key]) <= tolerance, key

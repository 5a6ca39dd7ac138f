"""The whole network: the reference contract ``model.loss_and_gradients``."""

import threading
import time
import warnings

import numpy as np
import pytest
from conftest import make_params

import model
from model import convolution, layers, network


def numeric_param_gradient(params, images, labels, key, eps=1e-6, **kwargs):
    grad = np.zeros_like(params[key], dtype=np.float64)
    flat = params[key].reshape(-1) if params[key].ndim else None
    for i in range(params[key].size):
        shifted = []
        for sign in (1, -1):
            p = {k: np.array(v, copy=True) for k, v in params.items()}
            if flat is None:
                p[key] = np.asarray(params[key] + sign * eps)
            else:
                p[key].reshape(-1)[i] += sign * eps
            shifted.append(model.loss_and_gradients(p, images, labels, **kwargs)[0])
        grad.reshape(-1)[i] = (shifted[0] - shifted[1]) / (2 * eps)
    return grad


@pytest.mark.parametrize(
    "activation,padding",
    [("relu", "same"), ("relu", "valid"), ("leaky_relu", "same"), ("identity", "valid")],
)
def test_every_gradient_matches_centred_differences(rng, activation, padding):
    images = rng.normal(size=(3, 3, 5, 4))
    labels = np.array([0, 1, 1])
    params = make_params(rng, padding=padding)
    kwargs = {"activation": activation, "padding": padding, "negative_slope": 0.05}
    loss, grads = model.loss_and_gradients(params, images, labels, **kwargs)
    assert isinstance(loss, float)
    for key in model.PARAM_KEYS:
        numeric = numeric_param_gradient(params, images, labels, key, **kwargs)
        error = np.linalg.norm(numeric - grads[key]) / (
            np.linalg.norm(numeric) + np.linalg.norm(grads[key])
        )
        assert error < 1e-8, key
        assert grads[key].shape == np.shape(params[key])


def test_loss_is_mean_binary_cross_entropy(rng):
    images = rng.normal(size=(4, 3, 5, 4))
    labels = np.array([0, 1, 0, 1])
    params = make_params(rng)
    loss, _ = model.loss_and_gradients(params, images, labels)
    fwd = network.forward(params, images, labels)
    p = 1 / (1 + np.exp(-fwd.logits))
    expected = -np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p))
    assert loss == pytest.approx(expected, rel=1e-12)


def test_flatten_order_is_filter_row_column(rng):
    images = rng.normal(size=(1, 3, 4, 4))
    params = make_params(rng, filters=2, height=4, width=4)
    fwd = network.forward(params, images)
    manual = float(fwd.activation[0].reshape(-1) @ params["classifier.weight"])
    manual += float(params["classifier.bias"])
    assert fwd.logits[0] == pytest.approx(manual, rel=1e-12)
    # C order: the second filter's map starts after H'·W' values of the first.
    assert fwd.activation[0, 1, 0, 0] == fwd.activation[0].reshape(-1)[16]


def test_float32_in_float32_out(rng):
    images = rng.normal(size=(2, 3, 5, 4)).astype(np.float32)
    params = make_params(rng)
    loss, grads = model.loss_and_gradients(params, images, np.array([0, 1]))
    assert isinstance(loss, float)
    assert all(g.dtype == np.float32 for g in grads.values())
    loss64, grads64 = model.loss_and_gradients(params, images.astype(np.float64), np.array([0, 1]))
    assert loss == pytest.approx(loss64, rel=1e-5)
    for key in model.PARAM_KEYS:
        np.testing.assert_allclose(grads[key], grads64[key], rtol=1e-4, atol=1e-5)


def test_question_scale_is_finite_and_exact():
    # Raw 0..255 pixels and uniform(0, 1) weights: logits near 1e6 (the question's setup).
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(2, 3, 16, 16)).astype(np.float64)
    params = {
        "conv.weight": rng.uniform(0, 1, size=(1, 3, 3, 3)),
        "conv.bias": np.zeros(1),
        "classifier.weight": rng.uniform(0, 1, size=256),
        "classifier.bias": np.asarray(0.0),
    }
    labels = np.array([0, 1])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, grads = model.loss_and_gradients(params, images, labels)
    fwd = network.forward(params, images, labels)
    assert fwd.logits.min() > 1e5
    # Label 0 predicted with logit z costs exactly z; label 1 costs 0: the mean is z0 / 2.
    assert loss == fwd.logits[0] / 2
    assert all(np.all(np.isfinite(g)) for g in grads.values())
    # dL/dz = (σ(z) − y)/N = (1 − 0)/2 for the cross, 0 for the circle.
    np.testing.assert_array_equal(grads["classifier.weight"], fwd.activation[0].reshape(-1) / 2)


def test_shape_errors_name_the_problem(rng):
    params = make_params(rng, height=5, width=4)
    with pytest.raises(ValueError, match="classifier.weight must be"):
        model.loss_and_gradients(params, rng.normal(size=(1, 3, 6, 6)), np.array([0]))
    with pytest.raises(TypeError, match="float32 or float64"):
        model.loss_and_gradients(params, np.zeros((1, 3, 5, 4), dtype=np.uint8), np.array([0]))


@pytest.fixture(params=["rows", "im2col"])
def layout(request, monkeypatch):
    """Run the test with each layout of the column matrices."""
    monkeypatch.setattr(convolution, "ROWS_MAX_FILTERS", 10**6 if request.param == "rows" else 0)
    monkeypatch.setattr(convolution, "ROWS_MIN_PIXELS", 0)
    return request.param


def chained_gradients(params, images, labels, *, activation, negative_slope, padding):
    """The gradients by chaining the layers' forward/backward pairs one after the other."""
    from model import layers

    pad = layers.padding_amount(params["conv.weight"].shape[2], padding)
    pre, conv_cache = layers.conv_forward(
        images, params["conv.weight"], params["conv.bias"], pad=pad
    )
    act, act_cache = layers.activation_forward(pre, activation, negative_slope)
    features = act.reshape(act.shape[0], -1)
    z, linear_cache = layers.linear_forward(
        features, params["classifier.weight"], params["classifier.bias"]
    )
    y = labels.astype(images.dtype)
    _, loss_cache = layers.bce_with_logits_forward(z, y)
    n = len(z)
    dz = layers.bce_with_logits_backward(np.full(n, 1 / n, dtype=images.dtype), loss_cache)
    dfeatures, dw_cls, db_cls = layers.linear_backward(dz, linear_cache)
    dpre = layers.activation_backward(dfeatures.reshape(act.shape), act_cache)
    _, dw, db = layers.conv_backward(dpre, conv_cache, need_dx=False)
    return {
        "conv.weight": dw,
        "conv.bias": db,
        "classifier.weight": dw_cls,
        "classifier.bias": db_cls,
    }


@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize(
    "activation,padding",
    [("relu", "same"), ("relu", "valid"), ("leaky_relu", "same"), ("identity", "same")],
)
def test_fused_backward_matches_the_chained_pairs(
    rng, monkeypatch, layout, activation, padding, chunked
):
    if chunked:
        monkeypatch.setattr(convolution, "KEEP_COLUMNS_BYTES", 0)
        monkeypatch.setattr(convolution, "BAND_IMAGE_BYTES", 0)
        monkeypatch.setattr(convolution, "CHUNK_BYTES", 1)
    images = rng.normal(size=(5, 3, 6, 5))
    labels = np.array([0, 1, 1, 0, 1])
    params = make_params(rng, filters=3, height=6, width=5, padding=padding)
    kwargs = {"activation": activation, "negative_slope": 0.1, "padding": padding}
    _, grads = model.loss_and_gradients(params, images, labels, **kwargs)
    reference = chained_gradients(params, images, labels, **kwargs)
    for key in model.PARAM_KEYS:
        np.testing.assert_allclose(grads[key], reference[key], rtol=1e-12, atol=1e-14)


def test_chunked_forward_matches_unchunked(rng, monkeypatch, layout):
    images = rng.normal(size=(4, 3, 6, 5))
    params = make_params(rng, filters=2, height=6, width=5)
    whole = network.forward(params, images, np.array([0, 1, 0, 1]))
    monkeypatch.setattr(convolution, "KEEP_COLUMNS_BYTES", 0)
    monkeypatch.setattr(convolution, "BAND_IMAGE_BYTES", 0)
    monkeypatch.setattr(convolution, "CHUNK_BYTES", 1)
    chunked = network.forward(params, images, np.array([0, 1, 0, 1]))
    # The maps come from the same per-image GEMM: bit-identical. The logits are summed by
    # BLAS over another number of rows: equal up to rounding.
    for name in ("pre_activation", "activation"):
        np.testing.assert_array_equal(getattr(chunked, name), getattr(whole, name))
    for name in ("logits", "probabilities", "losses"):
        np.testing.assert_allclose(getattr(chunked, name), getattr(whole, name), rtol=1e-14)


def test_a_kept_forward_is_not_overwritten_by_later_calls(rng):
    images = rng.normal(size=(3, 3, 8, 8)).astype(np.float32)
    labels = np.array([0, 1, 1])
    params = make_params(rng, filters=2, height=8, width=8, dtype=np.float32)
    first = network.forward(params, images, labels)
    snapshot = {
        name: np.array(getattr(first, name))
        for name in ("pre_activation", "activation", "logits", "probabilities", "losses")
    }
    grads = network.backward(first)
    other = {k: v * 3 for k, v in params.items()}
    for _ in range(3):
        later = network.forward(other, images[::-1].copy(), labels)
        network.backward(later)
    for name, values in snapshot.items():
        np.testing.assert_array_equal(getattr(first, name), values)
    again = network.backward(first)
    for key in model.PARAM_KEYS:
        np.testing.assert_array_equal(again[key], grads[key])


def test_float32_stays_float32_everywhere(rng):
    images = rng.normal(size=(3, 3, 6, 6)).astype(np.float32)
    params = make_params(rng, filters=2, height=6, width=6, dtype=np.float32)
    for activation in ("relu", "leaky_relu", "identity"):
        fwd = network.forward(params, images, np.array([0, 1, 1]), activation=activation)
        for name in ("pre_activation", "activation", "logits", "probabilities", "losses"):
            assert getattr(fwd, name).dtype == np.float32, (activation, name)
        grads = network.backward(fwd)
        assert all(g.dtype == np.float32 for g in grads.values()), activation


def whole_map_summary(fwd):
    """What ``Forward.maps`` must hold, computed the obvious way over the whole maps."""
    pre, act = fwd.pre_activation, fwd.activation
    return {
        "pre_min": float(pre.min()),
        "pre_max": float(pre.max()),
        "pre_absmax": float(np.max(np.abs(pre))),
        "activation_max": float(act.max()),
        "nonpositive": (pre <= 0).sum(axis=(0, 2, 3)).tolist(),
        "outputs_per_filter": pre.shape[0] * pre.shape[2] * pre.shape[3],
    }


def summary_of(fwd):
    maps = fwd.maps
    return {
        "pre_min": maps.pre_min,
        "pre_max": maps.pre_max,
        "pre_absmax": maps.pre_absmax,
        "activation_max": maps.activation_max,
        "nonpositive": maps.nonpositive.tolist(),
        "outputs_per_filter": maps.outputs_per_filter,
    }


@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "identity"])
def test_the_maps_summary_equals_the_whole_maps_exactly(
    rng, monkeypatch, chunked, dtype, activation
):
    if chunked:  # one image per chunk: the summary is put together from five
        monkeypatch.setattr(convolution, "KEEP_COLUMNS_BYTES", 0)
        monkeypatch.setattr(convolution, "BAND_IMAGE_BYTES", 0)
        monkeypatch.setattr(convolution, "CHUNK_BYTES", 1)
    # 7×5 maps: 35 outputs, not a whole number of the 8-byte words the count goes by.
    images = rng.normal(size=(5, 3, 7, 5)).astype(dtype)
    images[2] = 0  # with a zero bias its maps are exactly 0: counted as <= 0
    params = make_params(rng, filters=3, height=7, width=5, dtype=dtype)
    params["conv.bias"][1] = 0
    labels = np.array([0, 1, 1, 0, 1])
    fwd = network.forward(params, images, labels, activation=activation, summarise=True)
    assert summary_of(fwd) == whole_map_summary(fwd)
    assert network.forward(params, images, labels, activation=activation).maps is None


def test_the_maps_summary_shows_a_nan_as_nan(rng):
    images = rng.normal(size=(3, 3, 6, 6))
    images[1, 0, 2, 2] = np.nan
    params = make_params(rng, filters=2, height=6, width=6)
    fwd = network.forward(params, images, np.array([0, 1, 1]), summarise=True)
    maps = fwd.maps
    assert np.isnan([maps.pre_min, maps.pre_max, maps.pre_absmax, maps.activation_max]).all()
    # A NaN is not <= 0: counted as passing, as the comparison over the whole maps does.
    assert maps.nonpositive.tolist() == (fwd.pre_activation <= 0).sum(axis=(0, 2, 3)).tolist()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ["relu", "identity"])
def test_the_output_made_again_from_the_pre_activation_is_the_forward_passs_bit_for_bit(
    rng, monkeypatch, dtype, activation
):
    # The window makes a frame's output map again with layers.activation_forward instead of
    # copying it (inspector.training_process.remade_activation): it must be the forward
    # pass's, chunk by chunk as large batches go, with NaN and inf pixels too. (A GEMM never
    # gives -0.0: its sums start from +0.0; the frames' tests cover -0.0 all the same.)
    monkeypatch.setattr(convolution, "CHUNK_BYTES", 1)
    images = rng.normal(size=(4, 3, 9, 7)).astype(dtype)
    images[1, 0, 4, 3] = np.nan
    images[2, 1, 0, 0] = np.inf
    params = make_params(rng, filters=3, height=9, width=7, dtype=dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        fwd = network.forward(params, images, np.array([0, 1, 1, 0]), activation=activation)
    assert np.isnan(fwd.pre_activation).any() and np.isinf(fwd.pre_activation).any()
    remade, _ = layers.activation_forward(fwd.pre_activation, activation)
    assert remade.tobytes() == fwd.activation.tobytes()


@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "activation,padding",
    [("relu", "same"), ("relu", "valid"), ("leaky_relu", "same"), ("identity", "same")],
)
def test_a_batch_shared_between_threads_gives_one_threads_numbers(
    rng, monkeypatch, layout, chunked, threads, dtype, activation, padding
):
    if chunked:  # columns rebuilt in the backward pass; "rows" in bands of rows
        monkeypatch.setattr(convolution, "KEEP_COLUMNS_BYTES", 0)
        monkeypatch.setattr(convolution, "BAND_IMAGE_BYTES", 0)
        monkeypatch.setattr(convolution, "CHUNK_BYTES", 1)
    images = rng.normal(size=(5, 3, 7, 6)).astype(dtype)
    labels = np.array([0, 1, 1, 0, 1])
    params = make_params(rng, filters=3, height=7, width=6, padding=padding, dtype=dtype)
    kwargs = {"activation": activation, "negative_slope": 0.1, "padding": padding}
    alone = network.forward(params, images, labels, summarise=True, **kwargs)
    alone_grads = network.backward(alone)
    monkeypatch.setattr(network, "PART_MIN_IMAGE_VALUES", 1)
    shared = network.forward(params, images, labels, summarise=True, threads=threads, **kwargs)
    assert [part[:2] for part in shared.caches[0]] == network._parts(5, threads, 3, 42)
    assert len(shared.caches[0]) == threads
    for name in ("pre_activation", "activation"):
        np.testing.assert_array_equal(getattr(shared, name), getattr(alone, name))
    assert summary_of(shared) == summary_of(alone)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    for name in ("logits", "probabilities", "losses"):
        np.testing.assert_allclose(getattr(shared, name), getattr(alone, name), rtol=rtol)
    grads = network.backward(shared)
    for key in model.PARAM_KEYS:
        assert grads[key].dtype == dtype
        # Summed in another order: equal up to rounding, relative to the gradient's size (an
        # element that cancels to near zero may differ by more, relatively).
        difference = np.linalg.norm(grads[key] - alone_grads[key])
        assert difference <= rtol * np.linalg.norm(alone_grads[key]), key
    # The same numbers from call to call: the parts are fixed and summed in order.
    again = network.backward(network.forward(params, images, labels, threads=threads, **kwargs))
    for key in model.PARAM_KEYS:
        np.testing.assert_array_equal(again[key], grads[key])


def test_only_batches_of_large_maps_are_shared_out():
    # Measured faster with two threads: (64, 128, 128, 16), (4, 256, 256, 4); slower:
    # (16, 64, 64, 8), (64, 64, 64, 16), (16, 128, 128, 8), (4, 512, 512, 1).
    assert network._parts(64, 2, 16, 128 * 128) == [(0, 32), (32, 64)]
    assert network._parts(4, 2, 4, 256 * 256) == [(0, 2), (2, 4)]
    for filters, pixels in ((8, 64 * 64), (16, 64 * 64), (8, 128 * 128), (1, 512 * 512)):
        assert network._parts(64, 2, filters, pixels) == [(0, 64)], (filters, pixels)
    assert network._parts(1, 2, 16, 512 * 512) == [(0, 1)]
    assert network._parts(64, 1, 16, 128 * 128) == [(0, 64)]
    assert network._parts(7, 3, 16, 128 * 128) == [(0, 2), (2, 4), (4, 7)]


def test_a_failing_part_is_raised_once_every_part_has_finished(rng, monkeypatch):
    images = rng.normal(size=(4, 3, 6, 5))
    params = make_params(rng, filters=2, height=6, width=5)
    monkeypatch.setattr(network, "PART_MIN_IMAGE_VALUES", 1)
    real = convolution.forward
    finished = []

    def failing_on_this_thread(x, *args, **kwargs):
        if threading.current_thread() is threading.main_thread():
            raise MemoryError("this thread's part")
        time.sleep(0.2)  # still writing into the maps when this thread's part fails
        result = real(x, *args, **kwargs)
        finished.append("helper")
        return result

    monkeypatch.setattr(convolution, "forward", failing_on_this_thread)
    with pytest.raises(MemoryError, match="this thread's part"):
        network.forward(params, images, np.array([0, 1, 0, 1]), threads=2)
    assert finished == ["helper"]
    monkeypatch.setattr(convolution, "forward", real)
    fwd = network.forward(params, images, np.array([0, 1, 0, 1]), threads=2)
    assert len(fwd.caches[0]) == 2  # the helpers still work after a failure


def test_helper_threads_keep_the_callers_floating_point_error_state(rng, share_every_batch):
    # A diverging run: the session ignores overflows and invalid values (np.errstate), and a
    # strict warnings filter turns any warning into an error. NumPy keeps the error state per
    # thread, so the helper threads must take the caller's.
    images = rng.normal(size=(4, 3, 6, 5)).astype(np.float32) * np.float32(1e30)
    params = make_params(rng, filters=2, height=6, width=5, dtype=np.float32)
    params["conv.weight"] *= np.float32(1e30)
    with warnings.catch_warnings(), np.errstate(over="ignore", invalid="ignore"):
        warnings.simplefilter("error")
        fwd = network.forward(params, images, np.array([0, 1, 0, 1]), threads=2)
        network.backward(fwd)
    assert len(fwd.caches[0]) == 2 and not np.all(np.isfinite(fwd.pre_activation))
    with np.errstate(over="raise"), pytest.raises(FloatingPointError):
        network.forward(params, images, np.array([0, 1, 0, 1]), threads=2)

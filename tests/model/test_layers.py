"""Every backward against centred differences, and the fast convolution against the loops."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model import convolution, layers, workspace


def numeric_gradient(f, x, dout, eps=1e-6):
    """Centred-difference gradient of sum(f(x) * dout) with respect to x (float64)."""
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + eps
        plus = np.sum(f(x) * dout)
        x[i] = old - eps
        minus = np.sum(f(x) * dout)
        x[i] = old
        grad[i] = (plus - minus) / (2 * eps)
    return grad


def rel_error(a, b):
    """‖a − b‖ / (‖a‖ + ‖b‖): elementwise ratios would blow up round-off on tiny entries."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-300))


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(params=["rows", "im2col"])
def layout(request, monkeypatch):
    """Run the test with each layout of the column matrices (``model.convolution``)."""
    monkeypatch.setattr(convolution, "ROWS_MAX_FILTERS", 10**6 if request.param == "rows" else 0)
    monkeypatch.setattr(convolution, "ROWS_MIN_PIXELS", 0)
    return request.param


@pytest.mark.parametrize("pad", [0, 1, 2])
@pytest.mark.parametrize("kernel", [1, 3, 5])
def test_conv_forward_matches_naive_loops(rng, layout, pad, kernel):
    x = rng.normal(size=(2, 3, 7, 6))
    w = rng.normal(size=(4, 3, kernel, kernel))
    b = rng.normal(size=4)
    fast, _ = layers.conv_forward(x, w, b, pad=pad)
    slow = layers._conv_forward_naive(x, w, b, pad=pad)
    assert fast.shape == slow.shape == (2, 4, 7 + 2 * pad - kernel + 1, 6 + 2 * pad - kernel + 1)
    np.testing.assert_allclose(fast, slow, rtol=1e-12, atol=1e-12)


def test_conv_forward_float32_stays_float32(rng, layout):
    x = rng.normal(size=(2, 3, 5, 5)).astype(np.float32)
    w = rng.normal(size=(2, 3, 3, 3)).astype(np.float32)
    b = np.zeros(2, dtype=np.float32)
    out, _ = layers.conv_forward(x, w, b, pad=1)
    assert out.dtype == np.float32
    np.testing.assert_allclose(
        out, layers._conv_forward_naive(x, w, b, pad=1), rtol=1e-5, atol=1e-5
    )


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 3),
    c=st.integers(1, 3),
    h=st.integers(3, 7),
    w=st.integers(3, 7),
    f=st.integers(1, 3),
    k=st.sampled_from([1, 3]),
    pad=st.integers(0, 1),
    seed=st.integers(0, 2**16),
    rows=st.booleans(),
)
def test_conv_forward_matches_naive_on_random_shapes(n, c, h, w, f, k, pad, seed, rows):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, c, h, w))
    wt = rng.normal(size=(f, c, k, k))
    b = rng.normal(size=f)
    limits = convolution.ROWS_MAX_FILTERS, convolution.ROWS_MIN_PIXELS
    convolution.ROWS_MAX_FILTERS, convolution.ROWS_MIN_PIXELS = (10**6 if rows else 0), 0
    try:
        fast, cache = layers.conv_forward(x, wt, b, pad=pad)
    finally:
        convolution.ROWS_MAX_FILTERS, convolution.ROWS_MIN_PIXELS = limits
    assert cache.layout == ("rows" if rows else "im2col")
    np.testing.assert_allclose(fast, layers._conv_forward_naive(x, wt, b, pad=pad), atol=1e-11)


@pytest.mark.parametrize("pad", [0, 1])
def test_conv_backward_matches_centred_differences(rng, layout, pad):
    x = rng.normal(size=(2, 3, 5, 4))
    w = rng.normal(size=(2, 3, 3, 3))
    b = rng.normal(size=2)
    out, cache = layers.conv_forward(x, w, b, pad=pad)
    dout = rng.normal(size=out.shape)
    dx, dw, db = layers.conv_backward(dout, cache)

    def run(x_, w_, b_):
        return layers.conv_forward(x_, w_, b_, pad=pad)[0]

    assert rel_error(dx, numeric_gradient(lambda v: run(v, w, b), x, dout)) < 1e-8
    assert rel_error(dw, numeric_gradient(lambda v: run(x, v, b), w, dout)) < 1e-8
    assert rel_error(db, numeric_gradient(lambda v: run(x, w, v), b, dout)) < 1e-8


def test_conv_backward_can_skip_input_gradient(rng):
    x = rng.normal(size=(1, 3, 4, 4))
    w = rng.normal(size=(1, 3, 3, 3))
    out, cache = layers.conv_forward(x, w, np.zeros(1), pad=1)
    dx, dw, db = layers.conv_backward(np.ones_like(out), cache, need_dx=False)
    full = layers.conv_backward(np.ones_like(out), cache)
    assert dx is None
    np.testing.assert_array_equal(dw, full[1])
    np.testing.assert_array_equal(db, full[2])


def test_relu_backward_matches_centred_differences(rng):
    # Keep values away from 0, where ReLU has no derivative.
    x = rng.normal(size=(3, 4))
    x[np.abs(x) < 1e-3] = 0.5
    dout = rng.normal(size=x.shape)
    out, cache = layers.relu_forward(x)
    assert np.all(out >= 0)
    dx = layers.relu_backward(dout, cache)
    assert rel_error(dx, numeric_gradient(lambda v: layers.relu_forward(v)[0], x, dout)) < 1e-8


def test_relu_gradient_is_zero_at_and_below_zero():
    x = np.array([-2.0, 0.0, 3.0])
    _, cache = layers.relu_forward(x)
    np.testing.assert_array_equal(layers.relu_backward(np.ones(3), cache), [0.0, 0.0, 1.0])


@pytest.mark.parametrize("slope", [0.01, 0.2, 0.0])
def test_leaky_relu_backward_matches_centred_differences(rng, slope):
    x = rng.normal(size=(3, 4))
    x[np.abs(x) < 1e-3] = 0.5
    dout = rng.normal(size=x.shape)
    _, cache = layers.leaky_relu_forward(x, slope)
    dx = layers.leaky_relu_backward(dout, cache)
    numeric = numeric_gradient(lambda v: layers.leaky_relu_forward(v, slope)[0], x, dout)
    assert rel_error(dx, numeric) < 1e-8


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "identity"])
def test_activation_dispatch_round_trip(rng, activation):
    x = rng.normal(size=(2, 3))
    x[np.abs(x) < 1e-3] = 0.5
    dout = rng.normal(size=x.shape)
    out, cache = layers.activation_forward(x, activation, 0.1)
    dx = layers.activation_backward(dout, cache)
    numeric = numeric_gradient(lambda v: layers.activation_forward(v, activation, 0.1)[0], x, dout)
    assert rel_error(dx, numeric) < 1e-8
    with pytest.raises(ValueError, match="activation must be one of"):
        layers.activation_forward(x, "tanh")


def test_linear_backward_matches_centred_differences(rng):
    x = rng.normal(size=(3, 5))
    w = rng.normal(size=5)
    b = np.asarray(0.3)
    dout = rng.normal(size=3)
    _, cache = layers.linear_forward(x, w, b)
    dx, dw, db = layers.linear_backward(dout, cache)
    assert (
        rel_error(dx, numeric_gradient(lambda v: layers.linear_forward(v, w, b)[0], x, dout)) < 1e-8
    )
    assert (
        rel_error(dw, numeric_gradient(lambda v: layers.linear_forward(x, v, b)[0], w, dout)) < 1e-8
    )
    b_arr = np.array([0.3])
    numeric_db = numeric_gradient(lambda v: layers.linear_forward(x, w, v[0])[0], b_arr, dout)
    assert rel_error(db, numeric_db[0]) < 1e-8


def test_bce_backward_matches_centred_differences(rng):
    z = rng.normal(scale=3, size=6)
    y = np.array([0, 1, 0, 1, 1, 0], dtype=np.float64)
    dout = rng.normal(size=6)
    _, cache = layers.bce_with_logits_forward(z, y)
    dz = layers.bce_with_logits_backward(dout, cache)
    numeric = numeric_gradient(lambda v: layers.bce_with_logits_forward(v, y)[0], z, dout)
    assert rel_error(dz, numeric) < 1e-8


def test_bce_is_exact_for_huge_logits():
    # The question's setup gives logits around 1e6: log(1 + e^z) must be z, not inf.
    z = np.array([1.5e6, -1.5e6, 1.5e6, -800.0, 800.0])
    y = np.array([0.0, 1.0, 1.0, 0.0, 1.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        losses, cache = layers.bce_with_logits_forward(z, y)
        dz = layers.bce_with_logits_backward(np.ones(5), cache)
    np.testing.assert_array_equal(losses, [1.5e6, 1.5e6, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(dz, [1.0, -1.0, 0.0, 0.0, 0.0])


def test_sigmoid_and_softplus_match_reference_formulas():
    z = np.linspace(-30, 30, 61)
    np.testing.assert_allclose(layers.sigmoid(z), 1 / (1 + np.exp(-z)), rtol=1e-14)
    np.testing.assert_allclose(layers.softplus(z), np.logaddexp(0, z), rtol=1e-14)


def test_output_size_and_padding_rules():
    assert layers.output_size(32, 32, 3, "same") == (32, 32)
    assert layers.output_size(32, 30, 3, "valid") == (30, 28)
    with pytest.raises(ValueError, match="odd kernel"):
        layers.padding_amount(4, "same")
    with pytest.raises(ValueError, match="does not fit"):
        layers.output_size(2, 2, 5, "valid")


# ---------------------------------------------------------------------------------------------
# The fast paths: chunks, kept columns, reused buffers, dtypes
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def tiny_chunks(monkeypatch):
    """Force the chunked path (columns rebuilt in backward) on small test shapes."""
    monkeypatch.setattr(convolution, "KEEP_COLUMNS_BYTES", 0)
    monkeypatch.setattr(convolution, "BAND_IMAGE_BYTES", 0)
    monkeypatch.setattr(convolution, "CHUNK_BYTES", 1)


@pytest.mark.parametrize("chunk_bytes", [1, 1600])
@pytest.mark.parametrize("n", [1, 3, 5])
def test_chunked_convolution_matches_unchunked(rng, monkeypatch, layout, n, chunk_bytes):
    x = rng.normal(size=(n, 3, 5, 5))
    w = rng.normal(size=(2, 3, 3, 3))
    b = rng.normal(size=2)
    dout = rng.normal(size=(n, 2, 5, 5))
    out, cache = layers.conv_forward(x, w, b, pad=1)
    assert cache.kept is not None and cache.band == 5
    whole = (out.copy(), *layers.conv_backward(dout, cache))
    monkeypatch.setattr(convolution, "KEEP_COLUMNS_BYTES", 0)
    monkeypatch.setattr(convolution, "BAND_IMAGE_BYTES", 0)
    # 1 byte: one image per chunk, one row per band ("rows" layout). 1600 bytes: bands of two
    # rows (10 rows of 5 float64 columns per padded row, 2 + K - 1 padded rows), the last one
    # shorter.
    monkeypatch.setattr(convolution, "CHUNK_BYTES", chunk_bytes)
    out, cache = layers.conv_forward(x, w, b, pad=1)
    assert cache.kept is None and cache.chunk == 1
    if layout == "rows":
        assert cache.band == (1 if chunk_bytes == 1 else 2)
    chunked = (out, *layers.conv_backward(dout, cache))
    # The products of an image do not depend on the chunking but those of a band: the
    # forward is identical for whole images, equal up to rounding for bands.
    if cache.band == 5:
        np.testing.assert_array_equal(chunked[0], whole[0])
    for a, b_ in zip(chunked, whole, strict=True):
        np.testing.assert_allclose(a, b_, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(chunked[0], layers._conv_forward_naive(x, w, b, pad=1), atol=1e-12)


def test_a_batch_too_large_to_keep_rebuilds_whole_images(rng, monkeypatch, layout):
    """Columns not kept for the backward pass (KEEP_COLUMNS_BYTES) while each image stays
    whole (under BAND_IMAGE_BYTES): rebuilt image by image, the same layer."""
    x = rng.normal(size=(3, 3, 6, 5))
    w = rng.normal(size=(2, 3, 3, 3))
    b = rng.normal(size=2)
    dout = rng.normal(size=(3, 2, 6, 5))
    out, cache = layers.conv_forward(x, w, b, pad=1)
    assert cache.kept is not None
    kept = (out.copy(), *layers.conv_backward(dout, cache))
    monkeypatch.setattr(convolution, "KEEP_COLUMNS_BYTES", 0)
    monkeypatch.setattr(convolution, "CHUNK_BYTES", 1)
    out, cache = layers.conv_forward(x, w, b, pad=1)
    assert cache.kept is None and cache.chunk == 1 and cache.band == 6
    rebuilt = (out, *layers.conv_backward(dout, cache))
    np.testing.assert_array_equal(rebuilt[0], kept[0])
    for a, b_ in zip(rebuilt, kept, strict=True):
        np.testing.assert_allclose(a, b_, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("stacked", [True, False])
@pytest.mark.parametrize("block", [7, 8])
@pytest.mark.parametrize("kept", [True, False])
def test_gemms_in_pixel_blocks_match_whole_gemms(rng, monkeypatch, layout, kept, block, stacked):
    """Long products go to BLAS in blocks of pixels (GEMM_SMALL_PRODUCT), as many equal
    blocks as it takes and the few pixels left over in one more product: 30 pixels in 5
    blocks of 6, or 4 of 7 and 2 left over, must give the same layer up to rounding, the
    blocks in one call (STACK_MIN_BLOCKS) or in one each."""
    monkeypatch.setattr(convolution, "STACK_MIN_BLOCKS", 2 if stacked else 100)
    x = rng.normal(size=(3, 3, 6, 5))
    w = rng.normal(size=(2, 3, 3, 3))
    b = rng.normal(size=2)
    dout = rng.normal(size=(3, 2, 6, 5))
    if not kept:
        # One image per chunk; "rows": bands of two rows, 10 pixels, more than one block.
        monkeypatch.setattr(convolution, "KEEP_COLUMNS_BYTES", 0)
        monkeypatch.setattr(convolution, "BAND_IMAGE_BYTES", 0)
        monkeypatch.setattr(convolution, "CHUNK_BYTES", 1600)
    out, cache = layers.conv_forward(x, w, b, pad=1)
    whole = (out.copy(), *layers.conv_backward(dout, cache))
    monkeypatch.setattr(convolution, "GEMM_SMALL_PRODUCT", 1)
    monkeypatch.setattr(convolution, "GEMM_MIN_BLOCK", block)
    assert convolution._pixel_block(28, 2) == block
    assert convolution._block_count(30, block) == {7: (5, 6), 8: (4, 7)}[block]
    out, cache = layers.conv_forward(x, w, b, pad=1)
    assert (cache.kept is not None) == kept
    blocked = (out, *layers.conv_backward(dout, cache))
    for a, b_ in zip(blocked, whole, strict=True):
        np.testing.assert_allclose(a, b_, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(blocked[0], layers._conv_forward_naive(x, w, b, pad=1), atol=1e-12)


def test_chunked_backward_matches_centred_differences(rng, layout, tiny_chunks):
    x = rng.normal(size=(3, 3, 5, 4))
    w = rng.normal(size=(2, 3, 3, 3))
    b = rng.normal(size=2)
    out, cache = layers.conv_forward(x, w, b, pad=1)
    dout = rng.normal(size=out.shape)
    _, dw, db = layers.conv_backward(dout, cache, need_dx=False)

    def run(w_, b_):
        return layers.conv_forward(x, w_, b_, pad=1)[0].copy()

    assert rel_error(dw, numeric_gradient(lambda v: run(v, b), w, dout)) < 1e-8
    assert rel_error(db, numeric_gradient(lambda v: run(w, v), b, dout)) < 1e-8


def test_held_results_survive_later_calls(rng, layout):
    x = rng.normal(size=(2, 3, 6, 6)).astype(np.float32)
    w = rng.normal(size=(2, 3, 3, 3)).astype(np.float32)
    b = np.zeros(2, dtype=np.float32)
    first, first_cache = layers.conv_forward(x, w, b, pad=1)
    first_copy = first.copy()
    for _ in range(3):
        # Same shapes, other values: these calls must not write into what the caller holds.
        layers.conv_forward(x * 2 + 1, -w, b + 1, pad=1)
    np.testing.assert_array_equal(first, first_copy)
    # The cache of the first call still gives the first call's gradient.
    dout = np.ones_like(first)
    _, dw, _ = layers.conv_backward(dout, first_cache)
    _, fresh_dw, _ = layers.conv_backward(dout, layers.conv_forward(x, w, b, pad=1)[1])
    np.testing.assert_array_equal(dw, fresh_dw)


def test_released_buffers_are_reused(rng):
    x = rng.normal(size=(2, 3, 64, 64))
    w = rng.normal(size=(4, 3, 3, 3))
    b = np.zeros(4)
    out, _ = layers.conv_forward(x, w, b, pad=1)
    address = out.ctypes.data
    del out
    again, _ = layers.conv_forward(x, w, b, pad=1)
    assert again.ctypes.data == address
    held, _ = layers.conv_forward(x, w, b, pad=1)
    assert held.ctypes.data != again.ctypes.data


def test_workspace_hands_out_only_free_buffers():
    pool = workspace.Workspace(max_per_key=2)

    def build():
        array = np.zeros(4)
        return (array, array[1:]), (array,)

    first = pool.take("key", build)
    assert pool.take("key", build)[0] is not first[0]  # first still held
    kept_view = first[1]
    del first
    second = pool.take("key", build)
    assert not np.shares_memory(second[0], kept_view)  # a view keeps its base busy
    del kept_view, second
    assert len(pool) == 2
    pool.take("key", build)
    assert len(pool) == 2  # reused, not grown
    pool.clear()
    assert len(pool) == 0


def test_workspace_is_per_thread():
    import threading

    seen = []
    thread = threading.Thread(target=lambda: seen.append(workspace.local()))
    thread.start()
    thread.join()
    assert seen[0] is not workspace.local()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layers_keep_the_dtype(rng, dtype):
    x = rng.normal(size=(2, 3, 5, 5)).astype(dtype)
    w = rng.normal(size=(2, 3, 3, 3)).astype(dtype)
    b = np.zeros(2, dtype=dtype)
    out, cache = layers.conv_forward(x, w, b, pad=1)
    _, dw, db = layers.conv_backward(np.ones_like(out), cache, need_dx=False)
    act, _ = layers.relu_forward(out)
    z = rng.normal(size=4).astype(dtype)
    y = np.array([0, 1, 1, 0], dtype=dtype)
    losses, loss_cache = layers.bce_with_logits_forward(z, y)
    dz = layers.bce_with_logits_backward(np.full(4, 0.25, dtype=dtype), loss_cache)
    for array in (out, dw, db, act, layers.sigmoid(z), losses, dz):
        assert array.dtype == dtype

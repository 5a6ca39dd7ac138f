"""The fast convolution behind ``layers.conv_forward`` and ``layers.conv_backward``.

Stride-1 cross-correlation as GEMMs over column matrices, NCHW, shape letters as in
``model.layers``: N images, C channels, H×W input, F filters, K kernel size, H'×W' output,
L = H'·W', Hp = H + 2·pad the padded height. Two layouts of the column matrices:

- ``"im2col"`` (many filters): the classic column matrix (C·K·K + 1, L) of an image. Row
  (c, u, v) holds xp[c, i+u, j+v] for every output pixel (i, j), xp being the zero-padded
  input; the last row is ones, so the bias rides along: the layer is one GEMM per image,
  [w | b] (F, C·K·K + 1) @ cols, and so is the weight gradient, dout @ cols.T.
- ``"rows"`` (few filters, larger images): only the horizontal shifts, (C·K + 1, Hp·W'). Row
  (c, v) holds xp[c, r, j+v] for every padded row r. The im2col rows of vertical offset u are
  then this matrix shifted by u·W' columns, a strided view and no copy, so the layer is K
  GEMMs, Σ_u w[:, :, u, :] @ rows[:, u·W' : u·W' + L], and the weight gradient K GEMMs too.
  A third of the copying, and a matrix a third of the size, which stays in cache while the
  memory-bound GEMMs of few filters read it.

Images go in chunks whose column matrices fit well within a core's cache, and a long product
goes to BLAS in blocks of pixels small enough for its small-matrix kernels
(``GEMM_SMALL_PRODUCT``). Column matrices of a
small batch stay in the cache for the backward pass; those of a large one are rebuilt there (a
strided copy from the input costs less than a round trip of the matrices to main memory). An
image too large even for that goes in bands of rows ("rows" layout), to bound the memory.
Scratch arrays come from ``model.workspace`` and are reused from call to call.
"""

from __future__ import annotations

import functools

import numpy as np
from numpy.lib.stride_tricks import as_strided, sliding_window_view

from model import workspace

#: The "rows" layout is used up to this many filters and from this many output pixels on,
#: "im2col" otherwise (measured: with more filters the K partial products cost more than the
#: copying they save; on small images the extra calls cost more than the copying).
ROWS_MAX_FILTERS = 8
ROWS_MIN_PIXELS = 2048
#: Column matrices of a whole batch up to this size stay in the forward cache. (Measured on a
#: 2 MB L2 cache: the app's step with 16 images of 64×64 and 16 filters in float64, whose
#: columns take 14.7 MB, was 10% faster rebuilding them; 7.3 MB in float32 kept or rebuilt
#: made no difference.)
KEEP_COLUMNS_BYTES = 8 * 2**20
#: An image whose "rows" columns are larger than this goes in bands of rows, to bound the memory.
#: (Not lower, for the cache: measured on a 2 MB L2 cache, an iteration on one 256×256 image in
#: bands of 2 MB was faster with one BLAS thread, float32 0.98 → 0.76 ms, but slower with two,
#: 0.65 → 0.81 ms, where OpenBLAS shares the whole image's long products between the cores.)
BAND_IMAGE_BYTES = 16 * 2**20
#: Column matrices per chunk of images (measured best on a 2 MB L2 cache: 512 KB).
CHUNK_BYTES = 2**19
#: Arrays below this size are simply allocated: only large ones cost page faults.
SMALL_BYTES = 64 * 2**10
#: Largest M·N·K of one BLAS call. OpenBLAS multiplies products up to 100³ with its
#: small-matrix kernels, which skip packing the operands; this layer's matrices are so thin
#: (F × C·K·K) that packing is most of the work, so a long matrix goes in blocks of pixels
#: under this size (measured with OpenBLAS 0.3.31 on SkylakeX, float32, F = 16, C·K·K + 1 = 28:
#: 52 GFLOP/s as one call on a 64×64 image, 87 in blocks of 2,048 pixels; a whole iteration
#: of (64, 128, 128, 16) about 10% faster). Elsewhere it only splits a call into a few.
GEMM_SMALL_PRODUCT = 100**3
#: Fewest pixels in a block: below this the calls cost more than the packing they save.
GEMM_MIN_BLOCK = 256
#: From this many blocks on, one matmul call takes them all (a stack of strided views), for
#: threads sharing a batch wait for the interpreter lock between calls: (64, 128, 128, 16),
#: 8 blocks an image, forward and backward with two threads 28 + 37 → 24 + 27 ms. Two
#: blocks are two calls: making the views cost more, 4.0 → 4.2 ms an iteration of (16, 64,
#: 64, 16) in one thread.
STACK_MIN_BLOCKS = 3


def _pixel_block(rows: int, filters: int) -> int:
    """Pixels per BLAS call for a product of (filters × rows) by (rows × pixels)."""
    return max(GEMM_MIN_BLOCK, GEMM_SMALL_PRODUCT // (rows * filters))


def _in_blocks(x: np.ndarray, count: int, size: int, axis: int) -> np.ndarray:
    """A view of ``x`` with its pixel axis (``axis`` -1 or -2) cut into ``count`` blocks of
    ``size`` (its first count·size pixels), the blocks as a stack axis before the two matrix
    axes: one matmul call then multiplies every block. Never a copy (``copy=False`` raises
    instead), so it can be written to. (Not ``as_strided``: its 10 µs a call cost more than
    the calls it saves on 64×64 images.)"""
    whole = count * size
    if axis == -1:
        blocks = np.reshape(x[..., :whole], (*x.shape[:-1], count, size), copy=False)
        return blocks.swapaxes(-3, -2)
    return np.reshape(x[..., :whole, :], (*x.shape[:-2], count, size, x.shape[-1]), copy=False)


def _block_count(pixels: int, step: int) -> tuple[int, int]:
    """``(count, size)``: equal blocks of at most ``step`` pixels that cover all but fewer than
    ``count`` of them."""
    count = -(-pixels // step)
    return count, pixels // count


def _product(a: np.ndarray, b: np.ndarray, out: np.ndarray, step: int) -> None:
    """``out = a @ b`` for (…, F, P) by (…, P, L), in blocks of at most ``step`` of the L
    pixels (see ``GEMM_SMALL_PRODUCT``); from ``STACK_MIN_BLOCKS`` blocks on, all in one call."""
    pixels = b.shape[-1]
    if pixels <= step:
        np.matmul(a, b, out=out)
        return
    count, size = _block_count(pixels, step)
    if count < STACK_MIN_BLOCKS:
        for s in range(0, pixels, size):
            np.matmul(a, b[..., s : s + size], out=out[..., s : s + size])
        return
    whole = count * size
    np.matmul(
        a[..., None, :, :],
        _in_blocks(b, count, size, -1),
        out=_in_blocks(out, count, size, -1),
    )
    if whole < pixels:
        np.matmul(a, b[..., whole:], out=out[..., whole:])


def _contract(a: np.ndarray, b: np.ndarray, out: np.ndarray, step: int) -> np.ndarray:
    """``out = a @ b`` for (…, M, L) by (…, L, P), summed over the L pixels in blocks of at
    most ``step`` (see ``GEMM_SMALL_PRODUCT`` and ``_product``). Returns ``out``."""
    pixels = a.shape[-1]
    if pixels <= step:
        return np.matmul(a, b, out=out)
    count, size = _block_count(pixels, step)
    if count < STACK_MIN_BLOCKS:
        np.matmul(a[..., :size], b[..., :size, :], out=out)
        block = np.empty_like(out)
        for s in range(size, pixels, size):
            np.matmul(a[..., s : s + size], b[..., s : s + size, :], out=block)
            out += block
        return out
    whole = count * size
    blocks = np.matmul(_in_blocks(a, count, size, -1), _in_blocks(b, count, size, -2))
    np.add.reduce(blocks, axis=-3, out=out)
    if whole < pixels:
        out += np.matmul(a[..., whole:], b[..., whole:, :])
    return out


def output_buffer(name: str, shape: tuple, dtype) -> np.ndarray:
    """An uninitialised array for a result, reused once nobody else holds it."""
    dtype = np.dtype(dtype)
    size = dtype.itemsize
    for extent in shape:
        size *= extent
    if size < SMALL_BYTES:
        return np.empty(shape, dtype=dtype)
    key = (name, shape, dtype.str)

    def build():
        array = np.empty(shape, dtype=dtype)
        return array, (array,)

    return workspace.local().take(key, build)


class ConvCache:
    """What the forward pass leaves for the backward pass.

    ``x`` (N, C, H, W) the input, ``w`` (F, C, K, K), ``pad``, ``layout``, ``weights`` the
    filters and bias as GEMM operands, ``chunk`` images per chunk, ``band`` output rows per
    block (less than H' only for an image in bands), ``kept`` what the GEMMs of the whole
    batch read (the column matrices, or for "rows" the K shifted views of them), or None when
    they are rebuilt, ``out_h``, ``out_w``, ``step`` pixels per BLAS call (``GEMM_SMALL_PRODUCT``).
    """

    __slots__ = (
        "x",
        "w",
        "pad",
        "layout",
        "weights",
        "chunk",
        "band",
        "kept",
        "out_h",
        "out_w",
        "step",
    )

    def __init__(self, x, w, pad, layout, weights, chunk, band, kept, out_h, out_w, step) -> None:
        self.x, self.w, self.pad, self.layout, self.weights = x, w, pad, layout, weights
        self.chunk, self.band, self.kept = chunk, band, kept
        self.out_h, self.out_w, self.step = out_h, out_w, step

    @property
    def gradient_shape(self) -> tuple[int, int]:
        """Shape (F, P) of the weight gradient in GEMM form (see ``split_gradient``)."""
        f = self.w.shape[0]
        return (f, self.weights.size // f)

    def weight_partials(self, dout: np.ndarray, cols) -> np.ndarray:
        """(m, F, P) per-image weight gradients of a chunk, in GEMM form.

        ``dout`` (m, F, L), or (1, F, L) broadcast over the chunk; ``cols`` as yielded by
        ``column_chunks``. Summed over images, then ``split_gradient`` gives dw and db.
        """
        if self.layout == "im2col":
            # cols @ dout.T, transposed: BLAS is faster this way round (measured, F = 16).
            if cols.shape[-1] <= self.step:
                return np.matmul(cols, dout.transpose(0, 2, 1)).transpose(0, 2, 1)
            m = max(dout.shape[0], cols.shape[0])
            partials = np.empty((m, cols.shape[1], dout.shape[1]), dtype=self.weights.dtype)
            return _contract(cols, dout.transpose(0, 2, 1), partials, self.step).transpose(0, 2, 1)
        f, _, k, _ = self.w.shape
        # The weight gradient's products are as large as the forward's (P × F instead of
        # F × P): in blocks where the forward's are.
        contract = np.matmul
        if self.band * self.out_w > self.step:
            contract = functools.partial(_contract, step=self.step)
        partials = band_partials = None
        for r0, r1, views in cols:
            m = max(dout.shape[0], views[0].shape[0])
            band_dout = dout[:, :, r0 * self.out_w : r1 * self.out_w]
            if partials is None:
                partials = np.empty((m, f, k, views[0].shape[1]), dtype=self.weights.dtype)
                target = partials
            else:
                # Blocks of rows of the same images: their products add up.
                if band_partials is None:
                    band_partials = np.empty_like(partials)
                target = band_partials
            for u, shifted in enumerate(views):
                contract(band_dout, shifted.transpose(0, 2, 1), target[:, :, u])
            if target is not partials:
                partials += target
        return partials.reshape(partials.shape[0], f, -1)

    def split_gradient(self, dweights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The (F, P) weight gradient in GEMM form as dw (F, C, K, K) and db (F,)."""
        f, c, k, _ = self.w.shape
        if self.layout == "im2col":
            taps = c * k * k
            return dweights[:, :taps].reshape(self.w.shape), dweights[:, taps].copy()
        # GEMM form (F, u, (c, v) + bias) -> (F, c, u, v).
        by_offset = dweights.reshape(f, k, c * k + 1)
        dw = by_offset[:, :, : c * k].reshape(f, k, c, k).transpose(0, 2, 1, 3).copy()
        return dw, by_offset[:, 0, c * k].copy()


def _layout(filters: int, pixels: int) -> str:
    return "rows" if filters <= ROWS_MAX_FILTERS and pixels >= ROWS_MIN_PIXELS else "im2col"


def _weights(w: np.ndarray, b: np.ndarray, layout: str, dtype) -> np.ndarray:
    """The filters and the bias as GEMM operands.

    im2col: (F, C·K·K + 1) = [w | b]. rows: (K, F, C·K + 1), [u] = [w[:, :, u, :] | b or 0]
    (the bias goes with offset 0 only).
    """
    f, c, k, _ = w.shape
    if layout == "im2col":
        weights = np.empty((f, c * k * k + 1), dtype=dtype)
        weights[:, :-1] = w.reshape(f, -1)
        weights[:, -1] = b
        return weights
    weights = np.zeros((k, f, c * k + 1), dtype=dtype)
    weights[:, :, :-1] = w.transpose(2, 0, 1, 3).reshape(k, f, c * k)
    weights[0, :, -1] = b
    return weights


def _plan(layout: str, images: int, chunk: int, band: int, x_shape: tuple, k: int, pad: int, dtype):
    """Scratch for the column matrices of ``images`` images, filled ``chunk`` at a time.

    Reused from call to call while nobody holds it (``model.workspace``). Returns ``(fill,
    cols, shifted)``: ``cols`` the whole buffer; ``fill(x_chunk, at, r0, r1)`` writes the
    columns of x_chunk's images for output rows r0..r1 into ``cols[at : at + m]`` and returns
    what a GEMM reads: the im2col matrices (m, C·K·K + 1, L), or for the "rows" layout the K
    views (m, C·K + 1, (r1 − r0)·W') with the im2col rows of each vertical offset; and
    ``shifted`` those K views over the whole buffer ("rows" layout; None for "im2col").
    """
    _, c, h, width = x_shape
    key = ("conv.plan", layout, images, chunk, band, c, h, width, k, pad, dtype.str)
    if layout == "im2col":
        return workspace.local().take(
            key, lambda: _build_im2col(images, chunk, c, h, width, k, pad, dtype)
        )
    return workspace.local().take(
        key, lambda: _build_rows(images, band, c, h, width, k, pad, dtype)
    )


def _build_im2col(images, chunk, c, h, width, k, pad, dtype):
    padded = np.zeros((chunk, c, h + 2 * pad, width + 2 * pad), dtype=dtype)
    interior = padded[:, :, pad : pad + h, pad : pad + width]
    # (chunk, C, K, K, H', W'): every window, in the order of the rows of a column matrix.
    windows = sliding_window_view(padded, (k, k), axis=(2, 3)).transpose(0, 1, 4, 5, 2, 3)
    out_h, out_w = windows.shape[4:]
    taps = c * k * k
    cols = np.empty((images, taps + 1, out_h * out_w), dtype=dtype)
    cols[:, taps] = 1  # never written again
    target = cols[:, :taps].reshape(images, c, k, k, out_h, out_w)

    def fill(x_chunk, at, r0, r1):
        del r0, r1  # always whole images
        m = x_chunk.shape[0]
        # The border of `padded` is never written, so it stays zero.
        np.copyto(interior[:m], x_chunk)
        np.copyto(target[at : at + m], windows[:m])
        return cols[at : at + m]

    return (fill, cols, None), (padded, cols)


def _build_rows(images, band, c, h, width, k, pad, dtype):
    out_h, out_w = h + 2 * pad - k + 1, width + 2 * pad - k + 1
    rows = band + k - 1  # padded rows that output rows r0..r0 + band read
    # Zeros where the padding is. Columns outside the image are never written; rows outside it
    # are never written either when a block is a whole image, and zeroed when it is a band.
    cols = np.zeros((images, c * k + 1, rows * out_w), dtype=dtype)
    cols[:, c * k] = 1
    by_shift = cols[:, : c * k].reshape(images, c, k, rows, out_w)
    # rows[(c, v), r, j] = x[c, r - pad, j + v - pad] where that is inside the image.
    spans = [(max(0, pad - v), min(out_w, width + pad - v)) for v in range(k)]
    step = cols.strides
    shifted = [
        as_strided(cols[:, :, u * out_w :], shape=(images, c * k + 1, band * out_w), strides=step)
        for u in range(k)
    ]
    banded = band < out_h

    def fill(x_chunk, at, r0, r1):
        m = x_chunk.shape[0]
        block = by_shift[at : at + m]
        lo, hi = max(r0 - pad, 0), min(r1 + k - 1 - pad, h)  # rows of x this block reads
        first_row, end_row = lo + pad - r0, hi + pad - r0
        for v, (first, stop) in enumerate(spans):
            np.copyto(
                block[:, :, v, first_row:end_row, first:stop],
                x_chunk[:, :, lo:hi, first + v - pad : stop + v - pad],
            )
        if banded:
            block[:, :, :, :first_row] = 0
            block[:, :, :, end_row : r1 - r0 + k - 1] = 0
        length = (r1 - r0) * out_w
        return [view[at : at + m, :, :length] for view in shifted]

    return (fill, cols, shifted), (cols,)


def forward(x, w, b, *, pad, out=None, each_chunk=None):
    """The convolution: returns ``(out (N, F, H', W'), ConvCache)``.

    ``out`` (N, F, L), when given, receives the result (otherwise a reusable buffer does);
    ``each_chunk(start, stop)`` is called as soon as ``out[start:stop]`` is computed, while it
    is still in cache.
    """
    n, c, h, width = x.shape
    f, _, k, _ = w.shape
    dtype = x.dtype if x.dtype == w.dtype else np.result_type(x.dtype, w.dtype)
    out_h = h + 2 * pad - k + 1
    out_w = width + 2 * pad - k + 1
    length = out_h * out_w
    layout = _layout(f, length)
    weights = _weights(w, b, layout, dtype)
    if out is None:
        out = output_buffer("conv.out", (n, f, length), dtype)
    band = out_h
    if layout == "im2col":
        column_bytes = (c * k * k + 1) * length * dtype.itemsize
    else:
        row_bytes = (c * k + 1) * out_w * dtype.itemsize
        column_bytes = (h + 2 * pad) * row_bytes
        if column_bytes > BAND_IMAGE_BYTES:
            # A huge image: in bands of rows (see BAND_IMAGE_BYTES), built again in the
            # backward pass.
            band = min(out_h, max(1, CHUNK_BYTES // row_bytes - (k - 1)))
    chunk = max(1, min(n, CHUNK_BYTES // column_bytes))
    keep = band == out_h and n * column_bytes <= KEEP_COLUMNS_BYTES
    fill, cols, shifted = _plan(layout, n if keep else chunk, chunk, band, x.shape, k, pad, dtype)
    if layout == "rows" and k > 1:
        partial = output_buffer("conv.partial", (chunk, f, band * out_w), dtype)
    # Pixels per BLAS call, and the product that keeps to it (decided once: per call it cost
    # the small shapes 2-4%).
    step = _pixel_block(weights.shape[-1], f)
    product = np.matmul
    if (length if layout == "im2col" else band * out_w) > step:
        product = functools.partial(_product, step=step)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        m = stop - start
        at = start if keep else 0
        for r0 in range(0, out_h, band):
            r1 = min(out_h, r0 + band)
            columns = fill(x[start:stop], at, r0, r1)
            target = out[start:stop, :, r0 * out_w : r1 * out_w]
            if layout == "im2col":
                product(weights, columns, target)
                continue
            product(weights[0], columns[0], target)
            for u in range(1, k):
                part = partial[:m, :, : target.shape[2]]
                product(weights[u], columns[u], part)
                target += part
        if each_chunk is not None:
            each_chunk(start, stop)
    kept = None
    if keep:
        kept = cols if layout == "im2col" else shifted
    cache = ConvCache(x, w, pad, layout, weights, chunk, band, kept, out_h, out_w, step)
    return out.reshape(n, f, out_h, out_w), cache


def column_chunks(cache: ConvCache):
    """Yield ``(start, stop, cols)`` for the images chunk by chunk, ``cols`` being what
    ``cache.weight_partials`` takes: kept column matrices or rebuilt ones ("im2col"), or the
    blocks of rows ``(r0, r1, views)`` of the chunk ("rows")."""
    x, k = cache.x, cache.w.shape[2]
    n = x.shape[0]
    chunk, kept = cache.chunk, cache.kept
    if kept is not None and cache.layout == "im2col":
        for start in range(0, n, chunk):
            yield start, min(n, start + chunk), kept[start : start + chunk]
        return
    if kept is not None:
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            yield start, stop, [(0, cache.out_h, [view[start:stop] for view in kept])]
        return
    dtype = cache.weights.dtype
    fill, _, _ = _plan(cache.layout, chunk, chunk, cache.band, x.shape, k, cache.pad, dtype)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        if cache.layout == "im2col":
            yield start, stop, fill(x[start:stop], 0, 0, cache.out_h)
        else:
            yield start, stop, _blocks(cache, fill, x[start:stop])


def _blocks(cache, fill, x_chunk):
    for r0 in range(0, cache.out_h, cache.band):
        r1 = min(cache.out_h, r0 + cache.band)
        yield r0, r1, fill(x_chunk, 0, r0, r1)

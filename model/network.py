"""The whole network as chained forward/backward pairs: conv → activation → flatten → logistic.

Parameters travel as a plain dict with the keys of ``PARAM_KEYS``:

- ``"conv.weight"`` (F, C, K, K)
- ``"conv.bias"`` (F,)
- ``"classifier.weight"`` (D,), D = F·H'·W', the feature map flattened in C order over (F, H', W')
- ``"classifier.bias"`` 0-d array

The loss is the mean binary cross-entropy over the N images of the call.
"""

from __future__ import annotations

import concurrent.futures
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from model import convolution, layers

PARAM_KEYS = ("conv.weight", "conv.bias", "classifier.weight", "classifier.bias")


@dataclass(frozen=True)
class MapSummary:
    """What the metrics and diagnostics need of the maps, taken while the forward pass had each
    chunk of them in cache (a pass over the whole maps afterwards reads them from memory again).

    ``pre_min``, ``pre_max``: smallest and largest pre-activation; ``activation_max``: largest
    activation output (all NaN when a map holds a NaN, as ``np.max`` would give);
    ``nonpositive`` (F,): per filter, the outputs over all N images whose pre-activation is
    <= 0 (where a ReLU passes no gradient); ``outputs_per_filter``: N·H'·W'.
    """

    pre_min: float
    pre_max: float
    activation_max: float
    nonpositive: np.ndarray
    outputs_per_filter: int

    @property
    def pre_absmax(self) -> float:
        """Largest |pre-activation|: max(|x|) = max(|max x|, |min x|), exactly (and +0.0, not
        −0.0, when every map is zero)."""
        return float(np.maximum(abs(self.pre_max), abs(self.pre_min)))


#: A batch is shared out between threads only when each image's maps hold at least this many
#: values (filters × output pixels), and there are this many filters. NumPy releases the
#: interpreter lock inside its loops and BLAS calls only, and the threads wait for it between
#: calls, so only long calls gain. Measured on 2 cores, float32, an iteration with two threads
#: against one, N images of H×W with F filters (N, H, W, F):
#: - faster: (64, 128, 128, 16) 81 → 50 ms, (8, 128, 128, 16) 9.7 → 6.5, (4, 256, 256, 4)
#:   8.3 → 6.7, (2, 512, 512, 2) 13.5 → 10.1;
#: - slower: (16, 64, 64, 8) 2.2 → 2.8 ms, (64, 64, 64, 16) 18.2 → 21.7, (16, 128, 128, 8)
#:   12.5 → 13.8, and with one filter, whose products only stream memory, (4, 512, 512, 1)
#:   16.5 → 17.5.
PART_MIN_IMAGE_VALUES = 2**18
PART_MIN_FILTERS = 2

#: Helper threads, one pool per number of helpers asked for (a pool is never shut down, so
#: a caller never finds the one it took replaced under it).
_helpers: dict[int, ThreadPoolExecutor] = {}
_helpers_lock = threading.Lock()


def _parts(images: int, threads: int, filters: int, pixels: int) -> list[tuple[int, int]]:
    """Contiguous ranges (first, end) of the images, one per thread, or the whole batch when
    its calls are too short to share (see ``PART_MIN_IMAGE_VALUES``)."""
    count = min(threads, images)
    if count <= 1 or filters < PART_MIN_FILTERS or filters * pixels < PART_MIN_IMAGE_VALUES:
        return [(0, images)]
    bounds = [images * i // count for i in range(count + 1)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def _helper_pool(workers: int) -> ThreadPoolExecutor:
    with _helpers_lock:
        pool = _helpers.get(workers)
        if pool is None:
            pool = _helpers[workers] = ThreadPoolExecutor(workers, thread_name_prefix="engine")
        return pool


def _in_parts(work, parts: list[tuple[int, int]]) -> list:
    """``[work(i, first, end) for i, (first, end) in enumerate(parts)]``, the first part on this
    thread and the others on helper threads, under this thread's ``np.errstate`` (NumPy keeps
    it per thread: a diverging run that ignores overflows here must not warn there). Waits for
    every part even when one fails (none may still write into the arrays afterwards), then
    raises the first failure."""
    errors = np.geterr()

    def helped(*args):
        with np.errstate(**errors):
            return work(*args)

    futures = []
    try:
        pool = _helper_pool(len(parts) - 1)
        for i, part in enumerate(parts[1:], 1):
            futures.append(pool.submit(helped, i, *part))
        results = [work(0, *parts[0])]
    finally:
        concurrent.futures.wait(futures)
    return results + [future.result() for future in futures]


class _MapStatistics:
    """Builds a ``MapSummary`` from chunks of images' maps."""

    def __init__(self, filters: int) -> None:
        self._minima: list = []
        self._maxima: list = []
        self._activation_maxima: list = []
        self._nonpositive = np.zeros(filters, dtype=np.int64)
        self._outputs = 0
        self._mask: np.ndarray | None = None

    def add(self, pre: np.ndarray, act: np.ndarray) -> None:
        """Count the maps of a chunk: ``pre`` and ``act`` (m, F·H'·W')."""
        m = pre.shape[0]
        f = self._nonpositive.shape[0]
        length = pre.shape[1] // f
        self._minima.append(pre.min())
        self._maxima.append(pre.max())
        self._activation_maxima.append(act.max())
        # The mask of each map padded with zeros to whole 8-byte words and counted a word at a
        # time: a third of the time of summing it byte by byte.
        if self._mask is None or self._mask.shape[0] < m:
            self._mask = np.zeros((m, f, -(-length // 8) * 8), dtype=np.bool_)
        mask = self._mask[:m]
        np.less_equal(pre.reshape(m, f, length), 0, out=mask[:, :, :length])
        ones = np.bitwise_count(mask.view(np.uint64))
        self._nonpositive += np.add.reduce(ones, axis=(0, 2), dtype=np.int64)
        self._outputs += m * length

    def absorb(self, other: _MapStatistics) -> None:
        """Count the maps ``other`` counted too (another part of the batch)."""
        self._minima += other._minima
        self._maxima += other._maxima
        self._activation_maxima += other._activation_maxima
        self._nonpositive += other._nonpositive
        self._outputs += other._outputs

    def summary(self) -> MapSummary:
        def extreme(values, reduce):
            return float(values[0] if len(values) == 1 else reduce(np.array(values)))

        return MapSummary(
            pre_min=extreme(self._minima, np.min),
            pre_max=extreme(self._maxima, np.max),
            # + 0.0: a zero maximum is +0.0, whichever signed zero the reduction met first.
            activation_max=extreme(self._activation_maxima, np.max) + 0.0,
            nonpositive=self._nonpositive,
            outputs_per_filter=self._outputs,
        )


@dataclass(frozen=True)
class Forward:
    """Everything one forward pass computed, for display and for the backward pass.

    Shapes: ``pre_activation`` and ``activation`` (N, F, H', W'); ``logits``, ``probabilities``
    and ``losses`` (N,); ``maps`` summarises the first two when the pass was asked to
    (``summarise``), else it is None.
    """

    pre_activation: np.ndarray
    activation: np.ndarray
    logits: np.ndarray
    probabilities: np.ndarray
    losses: np.ndarray
    caches: tuple
    maps: MapSummary | None

    @property
    def loss(self) -> float:
        """Mean loss over the images."""
        return float(np.add.reduce(self.losses) / self.losses.shape[0])


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
    summarise: bool = False,
    threads: int = 1,
    alongside: bool = False,
) -> Forward:
    """Run the network on ``images`` (N, C, H, W).

    With ``labels`` (N,) the per-image losses are computed too; without them ``losses`` is an
    empty array. With ``summarise`` the maps are summarised as they are computed
    (``Forward.maps``). All arithmetic is in the dtype of ``images``.

    With ``threads`` > 1 a large batch is shared out between up to that many threads, the
    convolution here and its weight gradients in ``backward`` (see ``PART_MIN_IMAGE_VALUES``). The
    maps and their summary are the same bit for bit; the logits may be summed over other rows,
    and the weight gradients are summed part by part, so these differ from one thread's by
    rounding only (and are the same from call to call).

    With ``alongside`` the pass keeps off BLAS's threads, as the threads sharing a batch do: it
    computes part of a batch while other processes compute the rest (``model.parallel``), and
    BLAS threads spinning after a call would take their cores (``backward`` does the same).

    The arrays of the result may be buffers that a later call reuses, but only once nothing
    refers to them any more (see ``model.workspace``): holding on to a ``Forward`` or to any of
    its arrays keeps them intact.
    """
    _check(params, images, padding)
    if activation not in layers.ACTIVATIONS:
        raise ValueError(f"activation must be one of {layers.ACTIVATIONS}, got {activation!r}")
    w = params["conv.weight"]
    cls_w = params["classifier.weight"]
    n = images.shape[0]
    pad = layers.padding_amount(w.shape[2], padding)
    dtype = images.dtype if images.dtype == w.dtype else np.result_type(images.dtype, w.dtype)
    f = w.shape[0]
    features_shape = (n, cls_w.shape[0])
    maps_shape = (n, f, cls_w.shape[0] // f)
    pre = convolution.output_buffer("network.pre", maps_shape, dtype).reshape(features_shape)
    logits = np.empty(n, dtype=np.result_type(dtype, cls_w.dtype))
    parts = _parts(n, threads, f, maps_shape[2]) if threads > 1 else [(0, n)]
    shared = len(parts) > 1
    quiet = shared or alongside  # no BLAS threads (see ``each_chunk``)
    summaries = [_MapStatistics(f) for _ in parts] if summarise else None
    if activation == "relu":
        act = convolution.output_buffer("network.act", features_shape, dtype)
    elif activation == "identity":
        act = pre
    else:
        act = None  # the activation goes over the whole maps once they are all computed

    def convolve(part: int, first: int, end: int):
        """The convolution of images first..end, with (ReLU or identity) their activation,
        logits and the maps' summary of each chunk while its maps are in cache."""
        summary = None if summaries is None else summaries[part]

        def each_chunk(start, stop):
            if first:
                start, stop = first + start, first + stop
            if act is not pre:
                np.maximum(pre[start:stop], 0, out=act[start:stop])
            if quiet:
                # Threads sharing the batch keep off BLAS's threads: they spin for a while after
                # a call and take the cores from the parts. BLAS runs a float64 matrix-vector
                # product this long on two threads, and the forward pass of (64, 128, 128, 16)
                # then gained nothing from a second thread (91 → 100 ms); this loop instead
                # costs about 20 µs more an image.
                np.einsum("ij,j->i", act[start:stop], cls_w, out=logits[start:stop])
            else:
                np.matmul(act[start:stop], cls_w, out=logits[start:stop])
            if summary is not None:
                summary.add(pre[start:stop], act[start:stop])

        whole = end - first == n
        return convolution.forward(
            images if whole else images[first:end],
            w,
            params["conv.bias"],
            pad=pad,
            out=pre.reshape(maps_shape) if whole else pre.reshape(maps_shape)[first:end],
            each_chunk=None if act is None else each_chunk,
        )[1]

    if shared:
        caches = _in_parts(convolve, parts)
        conv_parts = tuple((*part, cache) for part, cache in zip(parts, caches, strict=True))
    else:  # (the smallest networks take some 80 µs an iteration: no detours)
        conv_parts = ((0, n, convolve(0, 0, n)),)
    first_cache = conv_parts[0][2]
    pre_maps = pre.reshape(n, f, first_cache.out_h, first_cache.out_w)
    statistics = None
    if summaries is not None:
        statistics = summaries[0]
        for other in summaries[1:]:
            statistics.absorb(other)
    if act is None:
        act_maps, act_cache = layers.activation_forward(pre_maps, activation, negative_slope)
        act = act_maps.reshape(features_shape)
        np.matmul(act, cls_w, out=logits)
        if statistics is not None:
            statistics.add(pre, act)
    else:
        act_maps = act.reshape(pre_maps.shape)
        act_cache = (activation, act_maps if activation == "relu" else None)
    logits += params["classifier.bias"]
    probabilities = layers.sigmoid(logits)
    if labels is None:
        losses = np.empty(0, dtype=logits.dtype)
        loss_cache = None
    else:
        y = np.asarray(labels).astype(logits.dtype, copy=False)
        losses, loss_cache = layers.bce_with_logits_forward(logits, y)
    return Forward(
        pre_activation=pre_maps,
        activation=act_maps,
        logits=logits,
        probabilities=probabilities,
        losses=losses,
        caches=(conv_parts, act_cache, (act, cls_w), loss_cache, quiet),
        maps=None if statistics is None else statistics.summary(),
    )


def backward(fwd: Forward, *, images: int | None = None) -> dict:
    """Gradients of the mean loss of ``fwd`` with respect to every parameter (same keys/shapes).

    With ``images`` the loss is the mean over that many images, of which ``fwd`` computed a
    part (a batch shared between processes, ``model.parallel``): the parts' gradients then
    add up to the whole batch's.

    The same chain as the layers' backward pairs (BCE → linear → activation → conv), computed
    chunk by chunk: for image n the gradient reaching the conv output is dz[n]·g[n] with
    g[n] = activation'(pre[n]) ⊙ classifier weight, so the conv weight gradient is
    Σ_n dz[n]·(g[n] @ cols[n].T) and the (N, D) upstream gradient is never materialised.
    """
    conv_parts, act_cache, linear_cache, loss_cache, quiet = fwd.caches
    if loss_cache is None:
        raise ValueError("backward needs a forward pass that was given labels")
    features, cls_w = linear_cache
    z, y = loss_cache
    n = z.shape[0]
    # dL/dz of the mean BCE: (σ(z) − y)/N, σ(z) being the probabilities already computed.
    dlogits = (fwd.probabilities - y) * z.dtype.type(1 / (n if images is None else images))
    shared = len(conv_parts) > 1
    if not shared:
        if quiet and n > 1:
            dw_cls = np.einsum("i,ij->j", dlogits, features)  # (see conv_gradient)
        else:
            dw_cls = layers.linear_weight_gradient(dlogits, features)
    db_cls = np.asarray(np.add.reduce(dlogits))

    activation, inner = act_cache
    conv_cache = conv_parts[0][2]
    f = conv_cache.w.shape[0]
    gate_shape = (f, features.shape[1] // f)
    weight_maps = cls_w.reshape(1, *gate_shape)
    acts = features.reshape(n, *gate_shape)

    def conv_gradient(part, first, end):
        """The conv weight gradient, in GEMM form, of images first..end of the batch; shared
        out between threads, their classifier weight gradient too (see below)."""
        cache = conv_parts[part][2]
        dweights = np.zeros(cache.gradient_shape, dtype=cache.weights.dtype)
        if activation == "relu":
            gate = convolution.output_buffer(
                "network.gate", (cache.chunk, *gate_shape), cls_w.dtype
            )
        for start, stop, cols in convolution.column_chunks(cache):
            m = stop - start
            start, stop = first + start, first + stop
            if activation == "identity":
                g = weight_maps
            elif activation == "relu":
                g = gate[:m]
                np.greater(acts[start:stop], 0, out=g)
                g *= weight_maps
            else:
                positive, slope = inner
                g = np.where(positive[start:stop], 1, slope).reshape(m, *gate_shape) * weight_maps
            partials = cache.weight_partials(g, cols)
            if m == 1:
                dweights += partials[0] * dlogits[start]
            else:
                dweights += np.matmul(dlogits[start:stop], partials.reshape(m, -1)).reshape(
                    dweights.shape
                )
        if not shared:
            return dweights, None
        # Not BLAS's (N,) @ (N, D) product: it runs on two threads, which then spin for a while
        # and take the cores from the threads sharing out the batch (measured: (64, 128, 128,
        # 16) 61 → 81 ms an iteration). This loop, one thread per part, costs about 0.5 ms more.
        return dweights, np.einsum("i,ij->j", dlogits[first:end], features[first:end])

    if shared:
        (dweights, dw_cls), *others = _in_parts(conv_gradient, [p[:2] for p in conv_parts])
        for other, other_cls in others:
            dweights += other
            dw_cls += other_cls
    else:
        dweights, _ = conv_gradient(0, 0, n)
    dw_conv, db_conv = conv_cache.split_gradient(dweights)
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
    threads: int = 1,
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
    threads : share the batch between up to this many threads (see ``forward``) or, when its
        maps are smaller, processes (``model.parallel``). The sums then differ by rounding.

    Returns
    -------
    loss : Python float, the mean loss over the N images.
    grads : dict with the same keys and shapes as ``params``, in the images' dtype.
    """
    images = np.asarray(images)
    if images.dtype not in (np.float32, np.float64):
        raise TypeError(f"images must be float32 or float64, got {images.dtype}")
    dtype = images.dtype
    typed = {}
    for key in PARAM_KEYS:  # (np.asarray of arrays already right takes a microsecond each)
        value = params[key]
        same = type(value) is np.ndarray and value.dtype == dtype
        typed[key] = value if same else np.asarray(value, dtype=dtype)
    # (a batch of one image is never shared: not even the import, 1-2 µs of the 80 µs of the
    # smallest networks' iteration)
    if threads > 1 and images.shape[0] > 1:
        from model import parallel  # (it uses this module)

        _check(typed, images, padding)  # (here, before helpers may be given the batch)
        f = typed["conv.weight"].shape[0]
        pixels = typed["classifier.weight"].size // f
        if parallel.worth_sharing(images.shape[0], f, pixels, threads):
            options = {
                "activation": activation,
                "negative_slope": negative_slope,
                "padding": padding,
            }
            shared = parallel.loss_and_gradients(typed, images, labels, threads, options)
            if shared is not None:
                return shared
    fwd = forward(
        typed,
        images,
        labels,
        activation=activation,
        negative_slope=negative_slope,
        padding=padding,
        threads=threads,
    )
    return fwd.loss, backward(fwd)

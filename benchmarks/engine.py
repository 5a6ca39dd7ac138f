"""Time one training iteration of the engine against PyTorch eager on the same computation.

One iteration is what a training step of the session does with the network: forward on the
batch (conv F×3×3×3 'same' → ReLU → flatten → logistic head → mean BCE), backward, and the SGD
update (``model.optim.sgd_step``). PyTorch runs the same computation in eager mode: autograd
backward, then ``param -= lr·grad`` under ``torch.no_grad()`` and the gradients dropped.

Each side runs in its own worker process (so neither library's threads, allocator or caches
are disturbed by the other's) on identical data, parameters and thread counts: ``--threads``
is PyTorch's intra-op threads, and for this engine both its BLAS threads and the threads or
processes a batch is shared out between (``network.loss_and_gradients(threads=…)``: threads
for large maps, helper processes for smaller ones, ``model.parallel``). After warm-up
the parent alternates between them, block by block, and the table shows medians. Run from a
clone (the checkout's ``model`` is imported, not an installed one)::

    python benchmarks/engine.py [--dtype float32|float64|both] [--threads 2] [--repeats N]
                                [--quick] [--naive] [--shapes N,H,W,F ...] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: (N, H, W, F): images, height, width, filters. C = 3 and K = 3 throughout.
SHAPES = ((1, 32, 32, 1), (2, 64, 64, 1), (16, 64, 64, 8), (64, 128, 128, 16), (1, 256, 256, 1))
CHANNELS = 3
KERNEL = 3
#: Small, and every block starts from the same parameters: training the same batch over and over
#: at a real learning rate saturates the logits within a few steps (the loss reaches 1e-31 on
#: the 256×256 image), after which both sides time arithmetic on denormal numbers.
LEARNING_RATE = 1e-4
#: Shortest wall time of one timed block; small shapes run several iterations per block.
MIN_BLOCK_SECONDS = 0.01


def iteration_flops(n: int, h: int, w: int, f: int) -> float:
    """Multiply-adds ×2 of the conv forward GEMM, the conv weight-gradient GEMM and the head.

    Conv forward and weight gradient: 2·N·F·H·W·(C·K·K + 1) each (the +1 is the bias). Head:
    2·N·D for the logits, 2·N·D for the weight gradient, N·D for the feature gradient.
    """
    taps = CHANNELS * KERNEL * KERNEL + 1
    conv = 2 * (2.0 * n * f * h * w * taps)
    head = 5.0 * n * f * h * w
    return conv + head


def make_problem(shape, dtype, seed=0):
    """Identical images, labels and parameters (He-normal conv, small head) for both sides."""
    n, h, w, f = shape
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 1, size=(n, CHANNELS, h, w)).astype(dtype)
    labels = (np.arange(n) % 2).astype(np.int64)
    fan_in = CHANNELS * KERNEL * KERNEL
    d = f * h * w
    conv_w = rng.normal(size=(f, CHANNELS, KERNEL, KERNEL)) * np.sqrt(2 / fan_in)
    params = {
        "conv.weight": conv_w.astype(dtype),
        "conv.bias": np.full(f, 0.01, dtype=dtype),
        "classifier.weight": (rng.normal(size=d) * np.sqrt(1 / d)).astype(dtype),
        "classifier.bias": np.zeros((), dtype=dtype),
    }
    return images, labels, params


class Ours:
    """The engine's iteration, carrying its parameters from one call to the next."""

    def __init__(self, images, labels, params, threads):
        from model import network
        from model.optim import OptimSettings, sgd_step

        self._gradients, self._sgd = network.loss_and_gradients, sgd_step
        self.images = images
        self.labels = labels.astype(images.dtype)
        self.initial = params
        self.settings = OptimSettings(LEARNING_RATE)
        self.threads = threads
        self.reset()

    def reset(self):
        """Back to the initial parameters."""
        self.params = {k: v.copy() for k, v in self.initial.items()}
        self.velocity = {k: np.zeros_like(v) for k, v in self.initial.items()}

    def __call__(self):
        loss, grads = self._gradients(
            self.params, self.images, self.labels, activation="relu", threads=self.threads
        )
        result = self._sgd(self.params, grads, self.velocity, self.settings)
        self.params, self.velocity = result.params, result.velocity
        return loss


class Torch:
    """The same iteration in PyTorch eager."""

    def __init__(self, images, labels, params, threads):
        del threads  # set for the whole process by limit_threads
        import torch

        self.torch = torch
        tdtype = torch.float32 if images.dtype == np.float32 else torch.float64
        self.images = torch.tensor(images)
        self.labels = torch.tensor(labels, dtype=tdtype)
        keys = ("conv.weight", "conv.bias", "classifier.weight", "classifier.bias")
        self.initial = [torch.tensor(params[k]) for k in keys]
        self.reset()

    def reset(self):
        """Back to the initial parameters."""
        self.params = [p.clone().requires_grad_(True) for p in self.initial]

    def __call__(self):
        torch = self.torch
        fn = torch.nn.functional
        conv_w, conv_b, cls_w, cls_b = self.params
        pre = fn.conv2d(self.images, conv_w, conv_b, padding=KERNEL // 2)
        act = torch.relu(pre)
        logits = act.flatten(1) @ cls_w + cls_b
        loss = fn.binary_cross_entropy_with_logits(logits, self.labels)
        loss.backward()
        with torch.no_grad():
            for p in self.params:
                p -= LEARNING_RATE * p.grad
                p.grad = None
        return loss.item()


def timed(fn, calls: int) -> float:
    """Seconds per call of ``fn`` over ``calls`` back-to-back calls from its initial state."""
    fn.reset()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def limit_threads(side: str, threads: int):
    """Put the side's library on ``threads`` threads; returns a description of its BLAS."""
    if side == "torch":
        import torch

        torch.set_num_threads(threads)
        return f"torch intra-op threads: {torch.get_num_threads()}"
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return "threadpoolctl missing: NumPy's BLAS keeps its thread count (OPENBLAS_NUM_THREADS)"
    threadpool_limits(limits=threads, user_api="blas")
    return blas_description()


def worker(conn, side: str, shape, dtype: str, threads: int, warmup: int) -> None:
    """One side in its own process: build and warm up; on request (0) report the calls a block
    takes, then time blocks of that many calls on request (a request of None ends it)."""
    limit_threads(side, threads)
    images, labels, params = make_problem(shape, np.dtype(dtype))
    fn = (Ours if side == "ours" else Torch)(images, labels, params, threads)
    for _ in range(warmup):
        fn()
    conn.send("warm")
    conn.recv()
    # Measured alone, once both sides are warm, and the fastest of a few: measured while the
    # other side warmed up, one slow call made blocks of 2 calls, and their medians then held
    # every hiccup of the machine.
    once = min(timed(fn, 1) for _ in range(5))
    conn.send(max(1, int(np.ceil(MIN_BLOCK_SECONDS / max(once, 1e-7)))))
    while (calls := conn.recv()) is not None:
        conn.send(timed(fn, calls))


class CpuMeter:
    """Cores used by other processes between ``start()`` and ``others()`` (Linux only).

    Busy time of the whole machine from /proc/stat minus the CPU time of this benchmark's
    processes (``own()``), over the wall time: 0 on a quiet machine, up to the number of cores
    when others use them all.
    """

    def __init__(self, own) -> None:
        self.available = Path("/proc/stat").exists()
        self._ticks = os.sysconf("SC_CLK_TCK") if self.available else 100
        self._own = own
        self.start()

    def _busy_seconds(self) -> float:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return (sum(values) - values[3] - values[4]) / self._ticks  # all but idle and iowait

    def start(self) -> None:
        self._wall = time.monotonic()
        self._own_start = self._own()
        self._busy = self._busy_seconds() if self.available else 0.0

    def others(self) -> float | None:
        if not self.available:
            return None
        wall = max(time.monotonic() - self._wall, 1e-9)
        own = self._own() - self._own_start
        return max(0.0, self._busy_seconds() - self._busy - own) / wall


def _stat_fields(pid) -> list[str]:
    """The fields of /proc/PID/stat after the command name (state, ppid, ...)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _with_children(pids) -> set[int]:
    """``pids`` and their child processes (the engine's helpers, ``model.parallel``)."""
    pids = set(pids)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(_stat_fields(entry.name)[1]) in pids:
                    pids.add(int(entry.name))
            except (OSError, IndexError, ValueError):
                pass
    return pids


def process_cpu_seconds(pids) -> float:
    """User + system CPU seconds of the given processes and their children (from
    /proc/PID/stat), and of this one."""
    total = 0
    for pid in _with_children(pids):
        try:
            fields = _stat_fields(pid)
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / os.sysconf("SC_CLK_TCK") + time.process_time()


def bench_shape(shape, dtype: str, args, warmup: int) -> dict:
    """Median seconds per iteration of both sides, from interleaved blocks.

    A pair of blocks (one per side) during which other processes kept more than
    ``args.max_other_load`` cores busy is measured again, up to ``args.retries`` times the
    number of samples; after that the noisy pairs count too and the row says how many.
    """
    context = multiprocessing.get_context("spawn")
    sides, pipes = {}, {}
    for name in ("ours", "torch"):
        parent, child = context.Pipe()
        process = context.Process(
            target=worker, args=(child, name, shape, dtype, args.threads, warmup), daemon=True
        )
        process.start()
        sides[name], pipes[name] = process, parent
    for pipe in pipes.values():
        pipe.recv()  # warm
    calls = {}
    for name, pipe in pipes.items():
        time.sleep(args.settle)
        pipe.send(0)
        calls[name] = pipe.recv()
    meter = CpuMeter(lambda: process_cpu_seconds(p.pid for p in sides.values()))
    clean = {name: [] for name in sides}
    noisy = {name: [] for name in sides}
    loads = []
    attempts = 0
    try:
        while len(clean["ours"]) < args.repeats and attempts < args.repeats * (1 + args.retries):
            pair = {}
            meter.start()
            # Alternate who goes first. The pause lets the other side's worker threads stop
            # spinning (an OpenBLAS worker busy-waits up to about 0.1 s after a call, OpenMP
            # ones for a while too) so that they do not take a core from this side; an untimed
            # block of the same length brings this side's clock, threads and caches back.
            for name in ("ours", "torch") if attempts % 2 == 0 else ("torch", "ours"):
                time.sleep(args.settle)
                pipes[name].send(calls[name])
                pipes[name].recv()
                pipes[name].send(calls[name])
                pair[name] = pipes[name].recv()
            others = meter.others()
            if others is not None:
                loads.append(others)
            target = clean if others is None or others <= args.max_other_load else noisy
            for name, seconds in pair.items():
                target[name].append(seconds)
            attempts += 1
    finally:
        for name, pipe in pipes.items():
            pipe.send(None)
            sides[name].join(timeout=10)
    used = {name: clean[name] + noisy[name][: args.repeats - len(clean[name])] for name in sides}
    ours_s = statistics.median(used["ours"])
    theirs_s = statistics.median(used["torch"])
    flops = iteration_flops(*shape)
    return {
        "shape": {"N": shape[0], "H": shape[1], "W": shape[2], "F": shape[3]},
        "dtype": dtype,
        "torch_ms": theirs_s * 1e3,
        "ours_ms": ours_s * 1e3,
        "ratio": ours_s / theirs_s,
        "gflops": flops / ours_s / 1e9,
        "torch_gflops": flops / theirs_s / 1e9,
        "ours_min_ms": min(used["ours"]) * 1e3,
        "torch_min_ms": min(used["torch"]) * 1e3,
        "samples": len(used["ours"]),
        "noisy_samples": len(used["ours"]) - len(clean["ours"]),
        "other_load_cores": statistics.mean(loads) if loads else None,
        "calls_per_sample": calls,
    }


def gemm_peak(threads: int, size: int = 2048, repeats: int = 15) -> float:
    """GFLOP/s of a size×size float32 matmul in NumPy (best of ``repeats``)."""
    rng = np.random.default_rng(1)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    out = np.empty_like(a)
    np.matmul(a, b, out=out)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.matmul(a, b, out=out)
        times.append(time.perf_counter() - start)
    best = min(times)
    return 2.0 * size**3 / best / 1e9


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_description() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (pip install threadpoolctl to see the BLAS kernel)"
    parts = []
    for pool in threadpool_info():
        if pool.get("user_api") == "blas":
            parts.append(
                f"{pool.get('internal_api')} {pool.get('version')} "
                f"{pool.get('architecture', '')} ({pool.get('num_threads')} threads)"
            )
    return "; ".join(parts) or "none found"


def naive_forward_ms(shape, dtype) -> float:
    from model import layers

    images, _, params = make_problem(shape, dtype)
    start = time.perf_counter()
    layers._conv_forward_naive(images, params["conv.weight"], params["conv.bias"], pad=1)
    return (time.perf_counter() - start) * 1e3


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dtype", choices=("float32", "float64", "both"), default="float32")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=21, help="samples per side and shape")
    parser.add_argument("--quick", action="store_true", help="5 samples, 2 warm-up iterations")
    parser.add_argument(
        "--settle",
        type=float,
        default=0.2,
        help="seconds of pause before each side's blocks (lets the other side's spinning "
        "worker threads go to sleep)",
    )
    parser.add_argument(
        "--max-other-load",
        type=float,
        default=0.25,
        help="cores other processes may keep busy during a pair of blocks before it is redone",
    )
    parser.add_argument(
        "--retries", type=int, default=4, help="redo noisy pairs up to this many times N"
    )
    parser.add_argument(
        "--naive", action="store_true", help="also time the loop reference on the smallest shape"
    )
    parser.add_argument(
        "--shapes",
        nargs="+",
        metavar="N,H,W,F",
        type=lambda text: tuple(int(v) for v in text.split(",")),
        default=SHAPES,
        help="shapes to time (default: the five of the issue)",
    )
    parser.add_argument("--json", type=Path, help="write the results to this file")
    args = parser.parse_args(argv)

    import torch

    warmup = 5
    if args.quick:
        args.repeats, warmup = 5, 2
    dtypes = ("float32", "float64") if args.dtype == "both" else (args.dtype,)

    blas = limit_threads("ours", args.threads)
    peak = gemm_peak(args.threads)
    machine = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "threads": args.threads,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "blas": blas,
        "gemm_peak_gflops": peak,
        "openblas_env": {
            k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ
        },
    }
    print(f"machine: {machine['cpu']}, {machine['cores']} cores, {args.threads} threads")
    print(f"numpy {machine['numpy']}, torch {machine['torch']}, Python {machine['python']}")
    print(f"BLAS: {machine['blas']}")
    if machine["openblas_env"]:
        print(f"note: {machine['openblas_env']} is set and may select a slower BLAS kernel")
    print(f"float32 GEMM peak (2048x2048 matmul, NumPy): {peak:.0f} GFLOP/s")

    results = []
    for dtype in dtypes:
        print()
        header = f"{'dtype':8} {'N,H,W,F':>16} {'torch ms':>10} {'ours ms':>10} {'ratio':>7}"
        header += f" {'GFLOP/s':>8} {'torch GFLOP/s':>14} {'noisy':>6}"
        print(header)
        for shape in args.shapes:
            row = bench_shape(shape, dtype, args, warmup)
            results.append(row)
            print(
                f"{dtype:8} {','.join(map(str, shape)):>16} {row['torch_ms']:10.3f} "
                f"{row['ours_ms']:10.3f} {row['ratio']:7.2f} {row['gflops']:8.1f} "
                f"{row['torch_gflops']:14.1f} {row['noisy_samples']:>3}/{row['samples']:<2}",
                flush=True,
            )
    print(
        f"\nnoisy: samples taken while other processes kept more than {args.max_other_load} "
        "cores busy (used only when quiet ones ran out)"
    )
    if args.naive:
        ms = naive_forward_ms(SHAPES[0], np.float64)
        print(
            f"loop reference _conv_forward_naive on {SHAPES[0]} float64: {ms:.1f} ms (forward only)"
        )
        machine["naive_forward_ms"] = ms
    loads = [row["other_load_cores"] for row in results if row["other_load_cores"] is not None]
    if loads:
        machine["other_load_cores"] = statistics.mean(loads)
        print(
            f"other processes kept {machine['other_load_cores']:.2f} of "
            f"{machine['cores']} cores busy on average while the blocks ran"
        )
    if args.json is not None:
        args.json.write_text(json.dumps({"machine": machine, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

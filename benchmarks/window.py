"""Window benchmark: frame time, frames per second and training throughput with the views live,
against the same training headless, plus how long a Step (F10) takes to be drawn.

Usage::

    python benchmarks/window.py [--seconds 5] [--case question|large|both] [--json PATH]

Runs offscreen (QT_QPA_PLATFORM=offscreen unless set). Cases: 'question' is the question's two
32x32 images with one filter (the seed preset's network, 0..1 inputs so it keeps training), and
'large' is 16 random 64x64 images with 8 filters, full batch. For each it prints

- headless throughput: iterations per second of TrainingSession.step with no window;
- live throughput: iterations per second while the main window shows every published record;
- frames per second actually painted, and the median / 95th percentile time of one full
  repaint of all views (drawing the record and painting the window, measured with grab());
- Step latency: from the F10 key press to the record of the new iteration being painted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

WARM_UP_SECONDS = 3.0

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from model.config import TrainingConfig  # noqa: E402
from model.data import Dataset, load_example  # noqa: E402
from model.init import InitSpec  # noqa: E402
from model.session import TrainingSession  # noqa: E402


def case_question():
    config = TrainingConfig(pixel_scaling="unit", learning_rate=0.01, seed=4)
    return "question (2 x 32x32, F=1, per image)", load_example("question"), config


def case_large():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(16, 3, 64, 64), dtype=np.uint8)
    labels = np.array([0, 1] * 8)
    dataset = Dataset(images, labels, ("a", "b"), tuple(f"random-{i}" for i in range(16)))
    config = TrainingConfig(
        num_filters=8,
        conv_init=InitSpec("he_normal"),
        classifier_init=InitSpec("normal", {"std": 0.01}),
        update_mode="full_batch",
        learning_rate=1e-3,
        seed=1,
    )
    return "large (16 x 64x64, F=8, full batch)", dataset, config


def headless_rate(dataset, config, seconds: float) -> float:
    session = TrainingSession(dataset, config)
    # Warm up past the point where the history has filled its budget and starts thinning:
    # until then every step allocates fresh memory and runs slower than it will later.
    warm_until = time.perf_counter() + WARM_UP_SECONDS
    while time.perf_counter() < warm_until:
        session.step()
    start = time.perf_counter()
    steps = 0
    while time.perf_counter() - start < seconds:
        session.step()
        steps += 1
    return steps / (time.perf_counter() - start)


def live_run(app, dataset, config, seconds: float) -> dict:

    from inspector.controller import SessionController
    from inspector.main_window import MainWindow

    controller = SessionController(dataset, config)
    window = MainWindow(controller)
    window.resize(1280, 800)
    window.show()
    app.processEvents()
    paints = []
    original = window.controller.record_shown

    def on_shown(_record):
        paints.append(time.perf_counter())

    original.connect(on_shown)
    controller.set_speed(0)
    for _ in range(3):
        app.processEvents()
    controller.run()
    warm_until = time.perf_counter() + WARM_UP_SECONDS
    while time.perf_counter() < warm_until:
        app.processEvents()
    start_iteration = controller.latest_iteration
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        app.processEvents()
    elapsed = time.perf_counter() - start
    steps = controller.latest_iteration - start_iteration
    controller.pause()

    frame_times = []
    for _ in range(30):
        t0 = time.perf_counter()
        controller.record_shown.emit(controller.shown)
        window.grab()
        frame_times.append((time.perf_counter() - t0) * 1000)

    latencies = []
    for _ in range(10):
        target = controller.latest_iteration + 1
        t0 = time.perf_counter()
        window.actions["step"].trigger()
        while controller.shown.iteration != target or controller.is_running:
            app.processEvents()
        window.grab()
        latencies.append((time.perf_counter() - t0) * 1000)
    window.close()
    return {
        "live_rate": steps / elapsed,
        "fps": len([t for t in paints if t >= start]) / elapsed,
        "frame_ms_median": statistics.median(frame_times),
        "frame_ms_p95": sorted(frame_times)[int(0.95 * len(frame_times)) - 1],
        "step_latency_ms_median": statistics.median(latencies),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--case", choices=("question", "large", "both"), default="both")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    from PySide6.QtCore import QCoreApplication
    from PySide6.QtWidgets import QApplication

    QCoreApplication.setOrganizationName("TrainingInspectorBenchmark")
    app = QApplication.instance() or QApplication([])
    cases = {
        "question": [case_question],
        "large": [case_large],
        "both": [case_question, case_large],
    }
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, numpy {np.__version__}"
    )
    results = []
    for make in cases[args.case]:
        name, dataset, config = make()
        headless = headless_rate(dataset, config, args.seconds)
        live = live_run(app, dataset, config, args.seconds)
        row = {"case": name, "headless_rate": headless, **live}
        row["live_over_headless"] = live["live_rate"] / headless
        results.append(row)
        print(
            f"{name}: headless {headless:,.0f} it/s, live {live['live_rate']:,.0f} it/s "
            f"({row['live_over_headless']:.0%}), {live['fps']:.0f} fps painted, full repaint "
            f"{live['frame_ms_median']:.1f} ms (p95 {live['frame_ms_p95']:.1f}), "
            f"step drawn in {live['step_latency_ms_median']:.1f} ms"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Window benchmark: frame time, frames per second and training throughput with the views live,
against the same training headless, plus how long a Step (F10) takes to be drawn; and a soak
run that watches memory and Qt objects over a long live run.

Usage::

    python benchmarks/window.py [--seconds 5] [--case question|large|large8|all] [--json PATH]
    python benchmarks/window.py --soak 100000

Runs offscreen (QT_QPA_PLATFORM=offscreen unless set), at 1280x800. Cases: 'question' is the
question's two 32x32 images with one filter (0..1 inputs so it keeps training), 'large' is
16 random 64x64 images with 16 filters, full batch (the issue's repaint target), and 'large8'
the same with 8 filters (its throughput target, shape 16, 64, 64, 8). For each it prints

- headless throughput: iterations per second of TrainingSession.step in this process, no window
  (after a warm-up that fills the history's budget, as a long run would);
- live throughput: iterations per second of the app's training process while the window shows
  what it publishes, as fast as possible;
- frames per second drawn while running (a frame is a new iteration shown, so never more than
  the live throughput, and 60 a second on average at most), and how busy the window's thread
  was meanwhile (its CPU time over the run's, and per frame: receiving, drawing and painting);
- one repaint of all views, paused (as when stepping by hand), median and 95th percentile over
  40 iterations shown in order after the run: the views draw the next iteration's record
  ("drawing"; the Diagnostics panel too, which while running redraws 4 times a second) and then
  everything that changed is painted as Qt paints it ("painting": the plots' scenes paint their
  images, axes and curves after the views' own code); and the whole window painted once more
  (grab());
- Step latency: from the Step action to the window painted with the new iteration, as Qt
  paints it: every region the Step changed (the views, and the toolbar, labels and status bar
  that follow the run's start and end), each Step pressed on a window idle for 0.2 s, by when
  the training process has computed the step ahead; and again with the step computed on
  demand (pressed right after the learning rate is set, which voids the one computed ahead).

--soak N trains the question's example for N iterations with the window live and prints, every
tenth of the way, the memory (resident set) of the window's process and of the training
process, the history's own count of its bytes, and the number of Qt objects and graphics items.
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
#: Pause before each timed Step press.
STEP_SETTLE_SECONDS = 0.2
#: Iterations drawn one after another for the repaint figure.
REPAINT_FRAMES = 40

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


def case_large(num_filters: int = 16):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(16, 3, 64, 64), dtype=np.uint8)
    labels = np.array([0, 1] * 8)
    dataset = Dataset(images, labels, ("a", "b"), tuple(f"random-{i}" for i in range(16)))
    config = TrainingConfig(
        num_filters=num_filters,
        conv_init=InitSpec("he_normal"),
        classifier_init=InitSpec("normal", {"std": 0.01}),
        update_mode="full_batch",
        learning_rate=1e-3,
        seed=1,
    )
    return f"large (16 x 64x64, F={num_filters}, full batch)", dataset, config


def case_large8():
    return case_large(8)


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


def process_events_for(app, seconds: float) -> float:
    """Run the window's event loop for ``seconds``, as the app runs it (waiting for events
    when there are none, not spinning); returns the time it really ran."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    QTimer.singleShot(round(seconds * 1000), loop.quit)
    start = time.perf_counter()
    loop.exec()
    return time.perf_counter() - start


def live_run(app, dataset, config, seconds: float) -> dict:

    from inspector.controller import SessionController
    from inspector.main_window import MainWindow

    controller = SessionController(dataset, config)
    window = MainWindow(controller)
    window.resize(1280, 800)
    show(app, window)
    shown_at, cpu_at = [], []

    def on_shown(_record):  # connected after the views: each has drawn the record by now
        shown_at.append(time.perf_counter())
        cpu_at.append(time.thread_time())

    controller.record_shown.connect(on_shown)
    controller.set_speed(0)
    for _ in range(3):
        app.processEvents()
    controller.run()
    process_events_for(app, WARM_UP_SECONDS)
    start_iteration = controller.latest_iteration
    first_frame = len(shown_at)
    start = time.perf_counter()
    busy_start = time.thread_time()
    elapsed = process_events_for(app, seconds)
    busy = time.thread_time() - busy_start
    steps = controller.latest_iteration - start_iteration
    controller.pause()
    # Only frames of the timed run (the repaint and Step phases below emit records too).
    timed = [k for k in range(first_frame, len(shown_at)) if shown_at[k] <= start + elapsed]
    frames = len(timed)
    # The window's thread's CPU time from one frame drawn to the next: painting the one,
    # receiving and drawing the other, all it did in between.
    frame_cpu = [(cpu_at[k] - cpu_at[k - 1]) * 1000 for k in timed[1:]]
    process_events_for(app, STEP_SETTLE_SECONDS)

    # One full repaint of all views, paused (as when stepping by hand): the next iteration's
    # record shown as the controller shows it and drawn by every view, the Diagnostics panel
    # included (while running it redraws 4 times a second, not every frame), then everything
    # that changed painted as Qt paints it. The plots' contents are painted by their scenes
    # after the views' own code, so repainting the views' widgets alone would leave them out.
    # Iterations in order.
    last = controller.latest_iteration
    records = [controller.record(k) for k in range(max(last - REPAINT_FRAMES, 0), last + 1)]
    controller._show(records[0])  # noqa: SLF001 - what a Step or a pick ends with
    paint_pending(app)
    draw_times, paint_times, frame_times, window_times = [], [], [], []
    for record in records[1:]:
        t0 = time.perf_counter()
        controller._show(record)  # noqa: SLF001
        t1 = time.perf_counter()
        paint_pending(app)
        t2 = time.perf_counter()
        draw_times.append((t1 - t0) * 1000)
        paint_times.append((t2 - t1) * 1000)
        frame_times.append((t2 - t0) * 1000)
        window.grab()
        window_times.append((time.perf_counter() - t2) * 1000)

    # Step (F10): from the key press to the new iteration painted, each press on a window that
    # has finished drawing the previous one (a person presses a few times a second at most;
    # pressed at once, the last press's leftover repaints would count against this one).
    # The training process has computed the step ahead by then; pressed right after a change
    # of settings (the same learning rate set again), it computes it when asked.
    latencies = [step_latency(app, window, controller) for _ in range(10)]
    on_demand = [step_latency(app, window, controller, settings_first=True) for _ in range(10)]
    window.close()
    return {
        "live_rate": steps / elapsed,
        "fps": frames / elapsed,
        "frame_ms_median": median(frame_times),
        "frame_ms_p95": percentile(frame_times, 95),
        "frame_draw_ms_median": median(draw_times),
        "frame_paint_ms_median": median(paint_times),
        # The window's thread while running: receiving, drawing and painting every frame.
        "gui_busy_share": busy / elapsed,
        "gui_frame_ms_median": median(frame_cpu),
        "gui_frame_ms_p95": percentile(frame_cpu, 95),
        "window_ms_median": median(window_times),
        "step_latency_ms_median": median(latencies),
        "step_on_demand_ms_median": median(on_demand),
    }


def step_latency(app, window, controller, *, settings_first: bool = False) -> float:
    """Milliseconds from the Step action to the new iteration painted, on a window idle for
    ``STEP_SETTLE_SECONDS``; with ``settings_first``, the training process is given the same
    learning rate again just before, which voids the step it computed ahead."""
    process_events_for(app, STEP_SETTLE_SECONDS)
    if settings_first:
        # Straight to the training process: the window's own echo of a change (the setup
        # panel, the what-if panel's new previews) would be timed along with the Step.
        controller._client.call(  # noqa: SLF001
            "update_settings", {"learning_rate": controller.config.learning_rate}
        )
    target = controller.latest_iteration + 1
    t0 = time.perf_counter()
    window.actions["step"].trigger()
    while controller.shown.iteration != target or controller.is_running:
        app.processEvents()
    paint_pending(app)
    return (time.perf_counter() - t0) * 1000


def show(app, window) -> None:
    """Show ``window`` and let it settle as the app's event loop would. ``processEvents`` does
    not delete objects that asked to be (``deleteLater``), and arranging the docks leaves a tab
    bar of two docks behind that way: without this it stays on screen over the Filters panel
    and repaints with every frame, which the app's event loop never shows."""
    from PySide6.QtCore import QCoreApplication, QEvent

    window.show()
    app.processEvents()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


def paint_pending(app) -> None:
    """Paint now what Qt would paint next: the regions of the window that changed (widgets
    ask for a repaint with an update request, which Qt delivers as a posted event)."""
    from PySide6.QtCore import QCoreApplication, QEvent

    for _ in range(2):  # a paint may ask for another (pyqtgraph's deferred layouts)
        QCoreApplication.sendPostedEvents(None, QEvent.Type.UpdateRequest)
        app.processEvents()


def median(values):
    """The median, or None for no values (a run too short to give any)."""
    return statistics.median(values) if values else None


def percentile(values, q):
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def ms(value) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def rss_mib(pid: int) -> float:
    """Resident memory of process ``pid`` in MiB (Linux /proc)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def soak(app, iterations: int) -> list[dict]:
    import pyqtgraph as pg
    from PySide6.QtCore import QObject

    from inspector.controller import SessionController
    from inspector.main_window import MainWindow

    name, dataset, config = case_question()
    controller = SessionController(dataset, config)
    window = MainWindow(controller)
    window.resize(1280, 800)
    show(app, window)
    child = controller._client._process.pid  # noqa: SLF001 - the benchmark reads its memory
    controller.set_speed(0)
    controller.run()
    rows = []
    checkpoint = 0
    start = time.perf_counter()
    while controller.latest_iteration < iterations:
        app.processEvents()
        if controller.latest_iteration >= checkpoint:
            views = window.findChildren(pg.GraphicsView)
            rows.append(
                {
                    "iteration": controller.latest_iteration,
                    "seconds": time.perf_counter() - start,
                    "window_rss_mib": rss_mib(os.getpid()),
                    "training_rss_mib": rss_mib(child),
                    "history": controller.describe_history(),
                    "qt_objects": len(window.findChildren(QObject)),
                    "graphics_items": sum(len(v.scene().items()) for v in views if v.scene()),
                }
            )
            print(
                "{iteration:>8,} it {seconds:7.1f} s  window {window_rss_mib:6.1f} MiB  "
                "training {training_rss_mib:6.1f} MiB  Qt objects {qt_objects}  graphics items "
                "{graphics_items}  {history}".format(**rows[-1]),
                flush=True,
            )
            checkpoint += iterations // 10
    controller.pause()
    window.close()
    return rows


def _quiet_offscreen_warnings() -> None:
    """Drop the offscreen platform's notes that it cannot do window-manager things (every
    window and dock prints one); every other Qt message still goes to stderr."""
    from PySide6.QtCore import qInstallMessageHandler

    def handler(_kind, _context, message: str) -> None:
        if not message.startswith("This plugin does not support"):
            print(message, file=sys.stderr)

    qInstallMessageHandler(handler)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--case", choices=("question", "large", "large8", "all"), default="all")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--soak", type=int, metavar="N", help="live run of N iterations")
    args = parser.parse_args(argv)

    from PySide6.QtCore import QCoreApplication
    from PySide6.QtWidgets import QApplication

    QCoreApplication.setOrganizationName("TrainingInspectorBenchmark")
    _quiet_offscreen_warnings()
    app = QApplication.instance() or QApplication([])
    cases = {
        "question": [case_question],
        "large": [case_large],
        "large8": [case_large8],
        "all": [case_question, case_large, case_large8],
    }
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, numpy {np.__version__}"
    )
    if args.soak:
        results = soak(app, args.soak)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
        return 0
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
            f"({row['live_over_headless']:.0%}), {live['fps']:.0f} fps drawn, the window's "
            f"thread busy {live['gui_busy_share']:.0%} ({ms(live['gui_frame_ms_median'])} ms "
            f"a frame, p95 {ms(live['gui_frame_ms_p95'])});\n"
            f"  paused, repaint of all views {ms(live['frame_ms_median'])} ms (p95 "
            f"{ms(live['frame_ms_p95'])}; drawing {ms(live['frame_draw_ms_median'])}, painting "
            f"{ms(live['frame_paint_ms_median'])}), of the whole window "
            f"{ms(live['window_ms_median'])} ms; step drawn in "
            f"{ms(live['step_latency_ms_median'])} ms (computed on demand "
            f"{ms(live['step_on_demand_ms_median'])} ms)"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

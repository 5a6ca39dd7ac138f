"""Start-up benchmark: time from launching ``python -m inspector`` to the first painted window.

Usage::

    python benchmarks/startup.py [--runs 7] [--platform offscreen]

Each run starts a fresh interpreter that runs the app's real entry point (``inspector.cli``)
with one addition: the first paint event of the main window prints the time since the parent
launched the process, whether PyTorch was imported, and quits. Prints every run and the median.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import os, sys, time
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication
import inspector.main_window as main_window

started = float(os.environ["STARTUP_T0"])


class FirstPaint(QObject):
    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Paint:
            elapsed = time.time() - started
            print(f"{elapsed:.4f} torch={'torch' in sys.modules}", flush=True)
            QTimer.singleShot(0, QApplication.quit)
            obj.removeEventFilter(self)
        return False


original_init = main_window.MainWindow.__init__


def init(self, *args, **kwargs):
    original_init(self, *args, **kwargs)
    self._first_paint = FirstPaint(self)
    self.installEventFilter(self._first_paint)


main_window.MainWindow.__init__ = init
from inspector.cli import main

sys.exit(main([]))
"""


def one_run(platform: str) -> tuple[float, bool]:
    env = dict(os.environ, QT_QPA_PLATFORM=platform, XDG_CONFIG_HOME=tempfile.mkdtemp())
    env["STARTUP_T0"] = repr(time.time())
    result = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    line = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    if not line:
        raise RuntimeError(f"no paint reported: {result.stderr.strip()[-500:]}")
    seconds, torch = line.split()
    return float(seconds), torch == "torch=True"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--platform", default="offscreen")
    args = parser.parse_args(argv)
    one_run(args.platform)  # warm the file-system cache
    times = []
    for i in range(args.runs):
        seconds, torch = one_run(args.platform)
        times.append(seconds)
        print(
            f"run {i + 1}: first window painted after {seconds * 1000:.0f} ms; "
            f"torch imported: {torch}"
        )
    print(
        f"median {statistics.median(times) * 1000:.0f} ms over {args.runs} runs "
        f"({args.platform}, Python {sys.version.split()[0]}, {os.cpu_count()} cores)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

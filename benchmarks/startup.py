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
import importlib.abc, importlib.util, os, sys, time

started = float(os.environ["STARTUP_T0"])


def watch_first_paint(module):
    from PySide6.QtCore import QEvent, QObject, QTimer
    from PySide6.QtWidgets import QApplication

    class FirstPaint(QObject):
        def eventFilter(self, obj, event):
            if event.type() == QEvent.Type.Paint:
                elapsed = time.time() - started
                print(f"{elapsed:.4f} torch={'torch' in sys.modules}", flush=True)
                QTimer.singleShot(0, QApplication.quit)
                obj.removeEventFilter(self)
            return False

    original_init = module.MainWindow.__init__

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self._first_paint = FirstPaint(self)
        self.installEventFilter(self._first_paint)

    module.MainWindow.__init__ = init


class Hook(importlib.abc.MetaPathFinder):
    # Patches inspector.main_window when the app itself imports it: importing it here first
    # would load Qt before the app starts its training process, which the app does not do.

    def find_spec(self, name, path, target=None):
        if name != "inspector.main_window":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)
            watch_first_paint(module)

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, Hook())
from inspector.cli import main

sys.exit(main([]))
"""


def one_run(platform: str) -> tuple[float, bool]:
    env = dict(os.environ, QT_QPA_PLATFORM=platform, XDG_CONFIG_HOME=tempfile.mkdtemp())
    # An installed app starts from compiled bytecode (pip compiles it; an editable install
    # writes it on its first run): let the warm-up run write it even where the environment
    # says not to (PYTHONDONTWRITEBYTECODE, set on some CI machines).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
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
    one_run(args.platform)  # warm the file-system cache, write the bytecode cache
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

"""model/ must run without Qt: importing all of it loads no Qt or pyqtgraph module."""

import pkgutil
import subprocess
import sys
from pathlib import Path

import model

QT_PREFIXES = ("PySide6", "shiboken6", "pyqtgraph", "PyQt5", "PyQt6")


def test_model_imports_no_qt():
    modules = sorted(m.name for m in pkgutil.iter_modules(model.__path__, "model."))
    assert "model.session" in modules and "model.layers" in modules
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"loaded = [m for m in sys.modules if m.startswith({QT_PREFIXES!r})]\n"
        "print(','.join(loaded))\n"
    )
    root = Path(model.__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=root, check=True
    )
    assert result.stdout.strip() == "", f"model/ imported Qt modules: {result.stdout}"


def test_model_sources_never_mention_qt():
    root = Path(model.__file__).resolve().parent
    for path in root.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        for prefix in QT_PREFIXES:
            assert f"import {prefix}" not in text and f"from {prefix}" not in text, path

"""Saving plots as PNG and SVG files for a report.

Every plot is rendered to memory first (PNG through pyqtgraph's ``ImageExporter``, at least
``MIN_PNG_WIDTH`` pixels wide, SVG through ``SVGExporter``), then each file is written with
``model.files.write_atomic``: it appears complete or not at all. Existing files are refused
before anything is written (unless ``overwrite``), and when a write fails the files this save
already created are removed again, so a failed save leaves the folder as it was.

Importing this module also makes pyqtgraph 0.14's SVG export cope with closed paths (see
``_install_svg_closed_path_fix``); the plots' right-click "Export..." uses the same code.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import importlib
import os
import re
import xml.dom.minidom
from collections.abc import Mapping
from pathlib import Path

from pyqtgraph.exporters import ImageExporter, SVGExporter
from PySide6.QtCore import QBuffer, QByteArray, QIODevice

from model.files import SaveError, existing, write_atomic

#: PNGs are rendered at least this wide so they stay crisp in a printed report.
MIN_PNG_WIDTH = 1200
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_CLOSE_PATH = ("Z", "z")


def _svg_fix_needed(correct_coordinates) -> bool:
    """Whether pyqtgraph's SVG coordinate pass fails on a closed path ("... Z")."""
    document = xml.dom.minidom.parseString(
        '<g><g transform="matrix(1,0,0,1,0,0)"><path d="M0,0 L1,0 L1,1 Z"/></g></g>'
    )
    try:
        correct_coordinates(document.documentElement, [], None, {})
    except ValueError:
        return True
    return False


def _install_svg_closed_path_fix() -> None:
    """Let pyqtgraph's SVG export (ours and the plots' right-click "Export...") handle closed
    paths.

    Recent Qt writes closed sub-paths as ``d="M.. L.. Z"``; pyqtgraph 0.14.0 parses every
    token of ``d`` as "x,y" and fails on "Z", so every plot's SVG export raises ValueError
    (pyqtgraph issue #3495, fixed upstream by pull request #3458 after 0.14.0). The wrapper
    takes the close commands out, lets pyqtgraph map the coordinates (one output token per
    input token) and puts them back. It is installed only where the bug is present.
    """
    module = importlib.import_module("pyqtgraph.exporters.SVGExporter")
    original = module.correctCoordinates
    if getattr(original, "_closes_paths", False) or not _svg_fix_needed(original):
        return

    @functools.wraps(original)
    def correct_coordinates(node, defs, item, options):
        closes = []
        for path in node.getElementsByTagName("path"):
            tokens = path.getAttribute("d").split()
            where = [i for i, token in enumerate(tokens) if token in _CLOSE_PATH]
            if where:
                kept = [token for token in tokens if token not in _CLOSE_PATH]
                path.setAttribute("d", " ".join(kept))
                if kept:
                    closes.append((path, [(i, tokens[i]) for i in where]))
        original(node, defs, item, options)
        for path, where in closes:
            tokens = path.getAttribute("d").split()
            for index, token in where:
                tokens.insert(index, token)
            path.setAttribute("d", " ".join(tokens))

    correct_coordinates._closes_paths = True
    module.correctCoordinates = correct_coordinates


_install_svg_closed_path_fix()


def plot_targets(names, directory: str | os.PathLike) -> list[Path]:
    """The files ``save_plots`` writes for plots ``names`` in ``directory``."""
    directory = Path(directory)
    return [directory / f"{name}{suffix}" for name in names for suffix in (".png", ".svg")]


def _collect(views_or_items) -> dict[str, object]:
    """Name -> graphics item, from a mapping of items or views, or an iterable of views
    (anything with ``plot_items()``)."""
    if isinstance(views_or_items, Mapping):
        sources = list(views_or_items.items())
    else:
        sources = [(None, view) for view in views_or_items]
    items: dict[str, object] = {}
    for name, source in sources:
        if hasattr(source, "plot_items"):
            items.update(source.plot_items())
        else:
            items[name] = source
    for name in items:
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"plot name {name!r} is not usable as a file name")
    return items


def render_png(item, width: int = MIN_PNG_WIDTH) -> bytes:
    """``item`` (a PlotItem or GraphicsLayout shown in a view) as PNG bytes, at least
    ``width`` pixels wide."""
    exporter = ImageExporter(item)
    params = exporter.parameters()
    params["width"] = max(int(width), int(params["width"]))
    image = exporter.export(toBytes=True)
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buffer, "PNG"):
        raise SaveError(errno.EIO, "Could not encode the plot as PNG")
    buffer.close()
    return bytes(data.data())


def render_svg(item) -> bytes:
    """``item`` as an SVG document (UTF-8 bytes)."""
    return SVGExporter(item).export(toBytes=True)


def save_plots(
    views_or_items, directory: str | os.PathLike, *, overwrite: bool = False
) -> list[Path]:
    """Save every plot as ``<name>.png`` and ``<name>.svg`` in ``directory``.

    Parameters
    ----------
    views_or_items : dict name -> GraphicsItem (a view's ``plot_items()``), or views with
        ``plot_items()`` (in a dict or any iterable).
    directory : an existing folder.
    overwrite : replace existing files; when False, any existing target refuses the whole
        save before a file is written.

    Returns
    -------
    The written paths, PNG then SVG for each plot.

    Raises
    ------
    model.files.SaveError : targets exist, the folder is missing or not writable, the disk is
        full, ...; nothing of this save is left behind.
    """
    items = _collect(views_or_items)
    directory = Path(directory)
    targets = plot_targets(items, directory)
    try:
        clashes = [] if overwrite else existing(targets)
        is_dir = directory.is_dir()
        is_there = directory.exists()
    except OSError as exc:  # e.g. a path too long to look up
        raise SaveError(
            exc.errno, f"Could not save the plots in {directory}: {exc.strerror}"
        ) from exc
    if clashes:
        listed = ", ".join(p.name for p in clashes)
        raise SaveError(
            errno.EEXIST,
            f"Not saved: {len(clashes)} file(s) already exist in {directory}: {listed}",
        )
    if not is_dir:
        reason = "is not a folder" if is_there else "does not exist"
        raise SaveError(errno.ENOTDIR, f"Could not save the plots: {directory} {reason}")

    rendered: list[tuple[Path, bytes]] = []
    for name, item in items.items():
        try:
            rendered.append((directory / f"{name}.png", render_png(item)))
            rendered.append((directory / f"{name}.svg", render_svg(item)))
        except SaveError:
            raise
        except Exception as exc:  # pyqtgraph raises plain Exception, e.g. for a 0-size plot
            raise SaveError(errno.EIO, f"Could not draw the plot {name}: {exc}") from exc

    written: list[Path] = []
    created: list[Path] = []
    try:
        for path, data in rendered:
            was_there = path.exists()
            write_atomic(path, data, overwrite=overwrite)
            written.append(path)
            if not was_there:
                created.append(path)
    except SaveError:
        for path in created:
            with contextlib.suppress(OSError):
                path.unlink()
        raise
    return written

"""Saving plots as PNG and SVG files for a report.

Every plot is rendered to memory first (PNG through pyqtgraph's ``ImageExporter``, at least
``MIN_PNG_WIDTH`` pixels wide, SVG through ``SVGExporter``), then each file is written with
``model.files.write_atomic``: it appears complete or not at all. Existing files are refused
before anything is written (unless ``overwrite``), and when a write fails the files this save
already created are removed again, so a failed save leaves the folder as it was.

Each plot is drawn as a figure of its own, not as the window happens to show it: for the time
of the export (``export_layout``) it is laid out at a good size in its scene, then everything
is put back before the window can paint. A plot in a dock tab that is not in front, never laid
out, or squeezed into a short dock thus comes out as clear as one in a large dock, with the
same data, ranges and labelled colour scales.

Importing this module also makes pyqtgraph 0.14's SVG export cope with closed paths (see
``_install_svg_closed_path_fix``); the plots' right-click "Export..." uses the same code.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import errno
import functools
import importlib
import os
import re
import xml.dom.minidom
from collections.abc import Mapping, Sequence
from pathlib import Path

import pyqtgraph as pg
from pyqtgraph.exporters import ImageExporter, SVGExporter
from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QRectF, QSizeF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QPainter
from PySide6.QtWidgets import QGraphicsGridLayout, QGraphicsWidget

from model.files import SaveError, existing, write_atomic
from model.formatting import format_count

#: PNGs are rendered at least this wide so they stay crisp in a printed report.
MIN_PNG_WIDTH = 1200
#: A plot whose size is free (a curve plot) is laid out this large for export, in screen
#: pixels, and then drawn ``MIN_PNG_WIDTH`` wide: text comes out about twice its screen size,
#: as in a figure, whatever size (or hidden tab) the plot has in the window.
EXPORT_SIZE = QSizeF(640.0, 400.0)
#: A plot of fixed-size content (heatmaps, maps) grows evenly until the figure is this wide,
#: or this high, whichever comes first (it never shrinks).
EXPORT_MIN_WIDTH = 600.0
EXPORT_MAX_HEIGHT = 960.0
CAPTION_INK = "#555555"
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


# -- laying a plot out for export -----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ExportGeometry:
    """How a plot is laid out while it is exported (screen pixels of the plot's own layout;
    the PNG is this drawn ``MIN_PNG_WIDTH`` wide or wider).

    size : the whole figure (title, axes, colour bar, caption).
    data_rect : the main plot's data area (its ViewBox), in the figure's coordinates.
    """

    size: QSizeF
    data_rect: QRectF

    @property
    def data_fraction(self) -> float:
        """Share of the figure's area that is data area."""
        area = self.size.width() * self.size.height()
        rect = self.data_rect
        return rect.width() * rect.height() / area if area > 0 else 0.0


_LAID_OUT: dict[int, ExportGeometry] = {}


def _plots(item) -> list[pg.PlotItem]:
    """The PlotItems of ``item``'s layout (``item`` itself when it is one); colour bars are
    PlotItems too."""
    found, stack = [], [item]
    while stack:
        node = stack.pop()
        if isinstance(node, pg.PlotItem):
            found.append(node)
        else:
            stack.extend(c for c in node.childItems() if isinstance(c, QGraphicsWidget))
    return found


def _widgets(item) -> list[QGraphicsWidget]:
    """``item`` and every QGraphicsWidget below it, parents before children."""
    found, stack = [], [item]
    while stack:
        node = stack.pop(0)
        found.append(node)
        stack.extend(c for c in node.childItems() if isinstance(c, QGraphicsWidget))
    return found


def _limits(widget: QGraphicsWidget) -> tuple[float, float, float, float]:
    return (
        widget.minimumWidth(),
        widget.maximumWidth(),
        widget.minimumHeight(),
        widget.maximumHeight(),
    )


def _set_limits(widget: QGraphicsWidget, limits) -> None:
    min_w, max_w, min_h, max_h = limits
    # widening first and narrowing last, so min <= max holds at every step
    widget.setMaximumWidth(max(max_w, widget.maximumWidth()))
    widget.setMinimumWidth(min_w)
    widget.setMaximumWidth(max_w)
    widget.setMaximumHeight(max(max_h, widget.maximumHeight()))
    widget.setMinimumHeight(min_h)
    widget.setMaximumHeight(max_h)


def _activate(item: QGraphicsWidget) -> None:
    """Lay ``item`` and everything in it out now (not at the next turn of the event loop)."""
    for widget in _widgets(item):
        layout = QGraphicsWidget.layout(widget)
        if layout is not None:
            layout.activate()


def _detach(item) -> tuple | None:
    """Take ``item`` out of the grid it is laid out in (the grid would put it back into its
    cell while it is drawn); returns how to put it back."""
    grid = item.parentLayoutItem()
    if not isinstance(grid, QGraphicsGridLayout):
        return None
    cells = [
        (row, column)
        for row in range(grid.rowCount())
        for column in range(grid.columnCount())
        if grid.itemAt(row, column) is item
    ]
    if not cells:
        return None
    rows = [row for row, _ in cells]
    columns = [column for _, column in cells]
    alignment = grid.alignment(item)
    grid.removeItem(item)
    spans = (max(rows) - min(rows) + 1, max(columns) - min(columns) + 1)
    return grid, (min(rows), min(columns), *spans), alignment


def _reattach(item, detached) -> None:
    grid, (row, column, row_span, column_span), alignment = detached
    grid.addItem(item, row, column, row_span, column_span, alignment)


def _hide_others(item) -> list[tuple[object, float]]:
    """Make every item of the scene that is neither ``item``, inside it nor one of its
    parents transparent (the PNG exporter draws whatever lies in the figure's rectangle);
    returns what to give back."""
    hidden = []
    node = item
    while node is not None:
        parent = node.parentItem()
        siblings = parent.childItems() if parent is not None else node.scene().items()
        for other in siblings:
            if other is not node and other.parentItem() is parent and other.opacity() > 0:
                hidden.append((other, other.opacity()))
                other.setOpacity(0.0)
        node = parent
    return hidden


def _view_state(scene) -> list[tuple[pg.ViewBox, bool, list, list]]:
    return [
        (
            view,
            view.linksBlocked,
            [list(r) for r in view.viewRange()],
            list(view.autoRangeEnabled()),
        )
        for view in scene.items()
        if isinstance(view, pg.ViewBox)
    ]


def _blank_cut(view: pg.ViewBox) -> QRectF:
    """The part of ``view``'s range worth exporting: where the range reaches further past
    the content (e.g. empty rows under two maps) than on the opposite side, the excess is
    left out. Never cuts content, and a zoomed-in view keeps its whole range."""
    shown = view.viewRect()
    bounds = view.childrenBounds()
    if bounds[0] is None or bounds[1] is None:
        return shown
    (left, right), (top, bottom) = bounds
    cut = QRectF(shown)
    margins = {
        "left": left - shown.left(),
        "right": shown.right() - right,
        "top": top - shown.top(),
        "bottom": shown.bottom() - bottom,
    }
    for side, opposite, size in (
        ("left", "right", shown.width()),
        ("right", "left", shown.width()),
        ("top", "bottom", shown.height()),
        ("bottom", "top", shown.height()),
    ):
        excess = margins[side] - max(margins[opposite], 0.0)
        if excess > 0.02 * size:
            if side == "left":
                cut.setLeft(cut.left() + excess)
            elif side == "right":
                cut.setRight(cut.right() - excess)
            elif side == "top":
                cut.setTop(cut.top() + excess)
            else:
                cut.setBottom(cut.bottom() - excess)
    return cut


@dataclasses.dataclass
class _Plan:
    size: QSizeF  # the figure
    limits: list  # (widget, (min w, max w, min h, max h)) while exported
    view_rect: QRectF | None = None  # the main plot's range while exported


def _plan(item, main: pg.PlotItem, data: list[pg.PlotItem], bars: list[pg.PlotItem]) -> _Plan:
    """The figure size, the size limits of plots and bars and the main plot's range for
    export."""
    item_limits = _limits(item)
    free = (
        isinstance(item, pg.PlotItem)
        and not main.vb.state["aspectLocked"]
        and item_limits[0] != item_limits[1]
        and item_limits[2] != item_limits[3]
    )
    if free:  # a curve plot: the layout gives it any size, so give it a good one
        return _Plan(QSizeF(EXPORT_SIZE), [])
    # Fixed-size content (a heatmap of so many pixels per cell): the data area grows by one
    # factor, so that what it shows stays exactly as it is, only larger; titles, axes,
    # colour bar widths and captions keep their size. Blank the view shows past its content
    # (space the dock has to spare) is left out first.
    view = main.vb
    view_w, view_h = view.width(), view.height()
    preferred = item.effectiveSizeHint(Qt.SizeHint.PreferredSize)
    minimum = item.effectiveSizeHint(Qt.SizeHint.MinimumSize)
    main_limits = _limits(main)
    # In a fixed direction, room the layout would only fill with blank (a stretch beside a
    # strip) is left out; in a free one the figure keeps the proportions the layout gives.
    width = item.size().width()
    if main_limits[0] == main_limits[1]:
        width = max(min(width, preferred.width()), minimum.width())
    height = item.size().height()
    if main_limits[2] == main_limits[3]:
        height = max(min(height, preferred.height()), minimum.height())
    if view_w < 1 or view_h < 1:
        return _Plan(QSizeF(width, height), [])
    shown = view.viewRect()
    cut = _blank_cut(view) if view.state["aspectLocked"] else shown
    cut_w = view_w * cut.width() / shown.width()
    cut_h = view_h * cut.height() / shown.height()
    scale = max(
        1.0,
        min(
            (EXPORT_MIN_WIDTH - width + view_w) / cut_w,
            (EXPORT_MAX_HEIGHT - height + view_h) / cut_h,
        ),
    )
    extra_w, extra_h = scale * cut_w - view_w, scale * cut_h - view_h
    limits = []
    for plot in data:
        min_w, max_w, min_h, max_h = _limits(plot)
        if plot is main:
            plot_w, plot_h = extra_w, extra_h
        else:
            plot_w, plot_h = (scale - 1) * plot.vb.width(), (scale - 1) * plot.vb.height()
        if min_w == max_w:
            min_w = max_w = min_w + plot_w
        if min_h == max_h:
            min_h = max_h = min_h + plot_h
        limits.append((plot, (min_w, max_w, min_h, max_h)))
    for bar in bars:  # a colour bar as high as its heatmap stays so
        min_w, max_w, min_h, max_h = _limits(bar)
        if min_h == max_h:
            limits.append((bar, (min_w, max_w, min_h + extra_h, max_h + extra_h)))
    return _Plan(QSizeF(width + extra_w, height + extra_h), limits, cut if cut != shown else None)


@contextlib.contextmanager
def export_layout(item):
    """Lay ``item`` out at its export size for the time of the ``with`` block; yields its
    ``ExportGeometry`` (None for an item without a plot).

    A plot is exported from its layout, not from the window: a curve plot gets
    ``EXPORT_SIZE``; a heatmap or map panel of fixed-size cells grows evenly (the data it
    shows unchanged, its colour bar as high as the heatmap, blank past the content left out)
    until the figure is ``EXPORT_MIN_WIDTH`` wide or ``EXPORT_MAX_HEIGHT`` high. So a plot in
    a tab that is not in front (never laid out), in a short dock or a narrow one comes out
    the same clear figure. Everything happens within the scene, synchronously, and is put
    back exactly before the block ends: sizes, limits, view ranges, linked views; the window
    never shows any of it. An item may offer ``prepare_export(width) -> restore`` to lay out
    its own titles for that width.
    """
    key = id(item)
    scene = item.scene() if isinstance(item, QGraphicsWidget) else None
    plots = _plots(item) if scene is not None and key not in _LAID_OUT else []
    data = [p for p in plots if not isinstance(p, pg.ColorBarItem)]
    if not data:
        yield _LAID_OUT.get(key)
        return
    bars = [p for p in plots if isinstance(p, pg.ColorBarItem)]
    main = max(data, key=lambda p: p.vb.width() * p.vb.height())
    # Bring every view up to date first (a hidden tab's views have never been painted), then
    # hold linked views still: the export shows the ranges the window shows.
    scene.prepareForPaint()
    views = _view_state(scene)
    for view, *_ in views:
        view.blockLink(True)
    roots = [i for i in scene.items() if i.parentItem() is None and isinstance(i, QGraphicsWidget)]
    geometries = [(w, w.geometry()) for root in roots for w in _widgets(root)]
    restore_titles = detached = None
    limits_before: list[tuple[QGraphicsWidget, tuple]] = []
    hidden: list[tuple[object, float]] = []
    try:
        prepare = getattr(item, "prepare_export", None)
        if callable(prepare):
            restore_titles = prepare(EXPORT_SIZE.width())
        plan = _plan(item, main, data, bars)
        for widget, new in plan.limits:
            limits_before.append((widget, _limits(widget)))
            _set_limits(widget, new)
        if plan.view_rect is not None:
            main.vb.setRange(rect=plan.view_rect, padding=0, disableAutoRange=False)
        detached = _detach(item)
        item.setGeometry(QRectF(item.pos(), plan.size))
        _activate(item)
        hidden = _hide_others(item)
        scene.prepareForPaint()
        geometry = ExportGeometry(
            QSizeF(item.size()), main.vb.mapRectToItem(item, main.vb.boundingRect())
        )
        _LAID_OUT[key] = geometry
        yield geometry
    finally:
        _LAID_OUT.pop(key, None)
        for other, opacity in reversed(hidden):
            other.setOpacity(opacity)
        for widget, before in reversed(limits_before):
            _set_limits(widget, before)
        if restore_titles is not None:
            restore_titles()
        if detached is not None:
            _reattach(item, detached)
        # Every widget of the scene where it was (parents first, so that a layout moving
        # children is then overruled); the grid relays them out the same way later.
        for widget, rect in geometries:
            if widget.geometry() != rect:
                widget.setGeometry(rect)
        for view, _, ranges, auto in views:
            if list(view.autoRangeEnabled()) != auto:
                view.enableAutoRange(x=auto[0], y=auto[1])
            if [list(r) for r in view.viewRange()] != ranges:
                view.setRange(xRange=ranges[0], yRange=ranges[1], padding=0, disableAutoRange=False)
        for view, blocked, *_ in views:
            view.blockLink(blocked)


def _caption_font(width: int) -> QFont:
    font = QFont()
    font.setPixelSize(max(12, width // 60))
    return font


def caption_height(width: int, caption: Sequence[str]) -> int:
    """Height of the band ``with_caption`` adds under an image ``width`` pixels wide."""
    if not caption:
        return 0
    font = _caption_font(width)
    return QFontMetrics(font).lineSpacing() * len(caption) + font.pixelSize()


def with_caption(image: QImage, caption: Sequence[str]) -> QImage:
    """``image`` with the lines of ``caption`` written in a band under it (wider when a line
    is wider than the image)."""
    if not caption:
        return image
    font = _caption_font(image.width())
    metrics = QFontMetrics(font)
    margin, line = font.pixelSize(), metrics.lineSpacing()
    width = max(image.width(), max(metrics.horizontalAdvance(t) for t in caption) + 2 * margin)
    captioned = QImage(
        width, image.height() + caption_height(image.width(), caption), QImage.Format.Format_ARGB32
    )
    captioned.fill(QColor("white"))
    painter = QPainter(captioned)
    try:
        painter.drawImage(0, 0, image)
        painter.setFont(font)
        painter.setPen(QColor(CAPTION_INK))
        for row, text in enumerate(caption):
            box = QRectF(margin, image.height() + margin // 2 + row * line, width, line)
            painter.drawText(box, Qt.AlignmentFlag.AlignLeft, text)
    finally:
        painter.end()
    return captioned


def render_png(item, width: int = MIN_PNG_WIDTH, caption: Sequence[str] = ()) -> bytes:
    """``item`` (a PlotItem or GraphicsLayout shown in a view) as PNG bytes, laid out at its
    export size (``export_layout``) and drawn at least ``width`` pixels wide, with the lines of
    ``caption`` under it (which run and iteration it shows: a saved plot stands alone)."""
    with export_layout(item):
        exporter = ImageExporter(item)
        params = exporter.parameters()
        params["width"] = max(int(width), int(params["width"]))
        image = exporter.export(toBytes=True)
    image = with_caption(image, caption)
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buffer, "PNG"):
        raise SaveError(errno.EIO, "Could not encode the plot as PNG")
    buffer.close()
    return bytes(data.data())


def render_pngs(items: dict, progress=None, caption=None) -> dict[str, bytes]:
    """``render_png`` of every item (name -> item), ``progress(done, total)`` after each,
    with the lines ``caption(name)`` gives under it (when given)."""
    pngs = {}
    for done, (name, item) in enumerate(items.items(), 1):
        pngs[name] = render_png(item, caption=() if caption is None else caption(name))
        if progress is not None:
            progress(done, len(items))
    return pngs


def render_svg(item) -> bytes:
    """``item`` as an SVG document (UTF-8 bytes), laid out at its export size, its heatmaps'
    pictures enlarged (``_crisp_pictures``)."""
    with export_layout(item):
        svg = SVGExporter(item).export(toBytes=True)
    return _crisp_pictures(bytes(svg))


#: Embedded pictures are enlarged, pixel by pixel, to about this many pixels on their longer
#: side (at most SVG_PICTURE_SCALE times).
SVG_PICTURE_SIDE = 512
SVG_PICTURE_SCALE = 16
_SVG_PICTURE = re.compile(rb'(<image\b[^>]*?xlink:href="data:image/png;base64,)([A-Za-z0-9+/=]+)"')


def _crisp_pictures(svg: bytes) -> bytes:
    """``svg`` with every embedded PNG enlarged by a whole factor, each pixel a block of
    pixels, at the same size on the page. A heatmap is embedded at one pixel a cell (the 3×3
    weights of three channels: 38×12 pixels) and asks for crisp edges, but renderers that do
    not heed that (Qt's, office programs') blend neighbouring cells and the white gaps between
    the channels into each other (a teacher's report); enlarged, there is nothing to blend."""

    def enlarge(match: re.Match) -> bytes:
        image = QImage.fromData(base64.b64decode(match.group(2)), "PNG")
        side = max(image.width(), image.height())
        if image.isNull() or side == 0:
            return match.group(0)
        factor = min(SVG_PICTURE_SCALE, SVG_PICTURE_SIDE // side)
        if factor < 2:
            return match.group(0)
        large = image.scaled(
            image.width() * factor,
            image.height() * factor,
            Qt.AspectRatioMode.IgnoreAspectRatio,
            Qt.TransformationMode.FastTransformation,  # (nearest: each pixel a block)
        )
        data = QByteArray()
        buffer = QBuffer(data)
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        if not large.save(buffer, "PNG"):
            return match.group(0)
        buffer.close()
        return match.group(1) + base64.b64encode(bytes(data.data())) + b'"'

    return _SVG_PICTURE.sub(enlarge, svg)


def save_plots(
    views_or_items,
    directory: str | os.PathLike,
    *,
    overwrite: bool = False,
    progress=None,
    caption=None,
) -> list[Path]:
    """Save every plot as ``<name>.png`` and ``<name>.svg`` in ``directory``; ``progress(done,
    total)``, if given, is called after each file of a plot is drawn (a window paints
    meanwhile), ``done`` counting plots.

    Parameters
    ----------
    views_or_items : dict name -> GraphicsItem (a view's ``plot_items()``), or views with
        ``plot_items()`` (in a dict or any iterable).
    directory : an existing folder.
    overwrite : replace existing files; when False, any existing target refuses the whole
        save before a file is written.
    caption : ``caption(name)`` gives the lines written under the PNG of plot ``name`` (an
        SVG is left to be edited).

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
            f"Not saved: {format_count(len(clashes), 'file')} already "
            f"{'exists' if len(clashes) == 1 else 'exist'} in {directory}: {listed}",
        )
    if not is_dir:
        reason = "is not a folder" if is_there else "does not exist"
        raise SaveError(errno.ENOTDIR, f"Could not save the plots: {directory} {reason}")

    rendered: list[tuple[Path, bytes]] = []
    for done, (name, item) in enumerate(items.items(), 1):
        # Each file in a layout of its own: the window may paint in between (``progress``),
        # and must not find the plot laid out for export then.
        png = functools.partial(render_png, caption=() if caption is None else caption(name))
        for suffix, render in ((".png", png), (".svg", render_svg)):
            try:
                rendered.append((directory / f"{name}{suffix}", render(item)))
            except SaveError:
                raise
            except Exception as exc:  # pyqtgraph raises plain Exception, e.g. a 0-size plot
                raise SaveError(errno.EIO, f"Could not draw the plot {name}: {exc}") from exc
            if progress is not None:
                progress(done, len(items))

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

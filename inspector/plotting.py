"""Shared pyqtgraph pieces of the views: colour maps, mosaics, colour bars, plots, cell labels.

Colours come from ``model.colormap`` so the window and the saved PNGs agree: a diverging
blue–white–red map centred on 0 for weights, gradients, updates and pre-activations, and for
ReLU outputs black where the output is exactly 0 (dead) and pale yellow to dark blue above 0.

Axis order: every ImageItem made here is created with ``axisOrder='row-major'`` (``image[row,
column]``, row 0 drawn at the top of a plot with an inverted y axis). The global
``pg.setConfigOptions(imageAxisOrder=...)`` is deliberately left alone, so importing this module
changes nothing for any other view.

Two ways of colouring a mosaic:

- small float mosaics (filters) are handed to pyqtgraph as values with NaN gaps, a LUT and
  explicit levels, so ``ImageItem.image`` holds the numbers themselves;
- large mosaics (feature maps: up to a million pixels at 60 frames a second) are quantised here
  into uint8 colour codes (``encode_diverging`` / ``encode_activation``) and drawn through a
  256-entry colour table, which pyqtgraph shows as an indexed QImage without any conversion.
  Code ``GAP_CODE`` is transparent (the gaps between tiles), ``NAN_CODE`` is grey.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPen
from PySide6.QtWidgets import QApplication, QWidget

from model.colormap import DEAD_COLOR, DIVERGING_LUT, POSITIVE_LUT

CHANNEL_NAMES = ("R", "G", "B")

#: Plot colours, the same as the curves view's.
BACKGROUND = "#ffffff"
FOREGROUND = "#262626"
MUTED = "#6b6b6b"
#: Outline of every tile, so a tile of near-zero (white) values still shows its extent.
TILE_FRAME = "#8a8a8a"

#: Relative luminance above which a cell gets black text (as in ``model.snapshot``).
LIGHT_CELL = 0.5

# -- colour codes of quantised mosaics ------------------------------------------------------------

GAP_CODE = 0
NAN_CODE = 1
NAN_RGB = (128, 128, 128)
#: Diverging codes: 2 (−limit) .. 128 (0) .. 254 (+limit).
DIVERGING_CENTRE_CODE = 128
DIVERGING_HALF_STEPS = 126
#: Output codes: 2 for an output that is exactly 0 (or below), 3 .. 255 for (0, vmax].
DEAD_CODE = 2
POSITIVE_STEPS = 253


def _resampled(lut: np.ndarray, size: int) -> np.ndarray:
    """``size`` colours of ``lut`` at evenly spaced fractions 0..1, picked as
    ``model.colormap`` picks them (index round(t·255)), so a code shows exactly the colour a
    saved PNG gives the value at its centre."""
    index = np.round(np.linspace(0.0, 1.0, size) * (len(lut) - 1)).astype(np.intp)
    return lut[index]


def _code_table(body: np.ndarray, first: int) -> np.ndarray:
    table = np.zeros((256, 4), dtype=np.uint8)
    table[NAN_CODE, :3] = NAN_RGB
    table[NAN_CODE, 3] = 255
    table[first : first + len(body), :3] = body
    table[first : first + len(body), 3] = 255
    table[first + len(body) :, :3] = body[-1]
    table[first + len(body) :, 3] = 255
    return table


#: RGBA colour table of ``encode_diverging`` codes.
DIVERGING_CODE_LUT = _code_table(_resampled(DIVERGING_LUT, 2 * DIVERGING_HALF_STEPS + 1), 2)
#: RGBA colour table of ``encode_activation`` codes.
ACTIVATION_CODE_LUT = _code_table(
    np.vstack([np.array([DEAD_COLOR], dtype=np.uint8), _resampled(POSITIVE_LUT, POSITIVE_STEPS)]),
    DEAD_CODE,
)


def encode_diverging(
    values: np.ndarray,
    limit: float,
    out: np.ndarray,
    scratch: np.ndarray | None = None,
    *,
    check_nan: bool = True,
) -> np.ndarray:
    """Quantise ``values`` on [−limit, +limit] into ``out`` (uint8 codes, same shape).

    0 becomes ``DIVERGING_CENTRE_CODE``; values beyond the limit take the end codes; NaN
    becomes ``NAN_CODE`` (pass ``check_nan=False`` when the values are known to be finite, to
    save a pass). ``scratch`` is an optional float64 array of the same shape.
    """
    scratch = np.multiply(values, DIVERGING_HALF_STEPS / limit, out=scratch)
    np.clip(scratch, -DIVERGING_HALF_STEPS, DIVERGING_HALF_STEPS, out=scratch)
    return _cast_codes(scratch, DIVERGING_CENTRE_CODE + 0.5, out, check_nan)


def encode_activation(
    values: np.ndarray,
    vmax: float,
    out: np.ndarray,
    scratch: np.ndarray | None = None,
    *,
    check_nan: bool = True,
) -> np.ndarray:
    """Quantise ReLU outputs into ``out``: exactly 0 (or below) → ``DEAD_CODE``; any value in
    (0, vmax] → 3 .. 255 (rounded up, so a tiny positive output is never drawn as dead);
    beyond vmax → 255; NaN → ``NAN_CODE``.
    """
    scale = POSITIVE_STEPS / vmax if vmax > 0 else 1.0
    scratch = np.multiply(values, scale, out=scratch)
    np.ceil(scratch, out=scratch)
    np.clip(scratch, 0, POSITIVE_STEPS, out=scratch)
    return _cast_codes(scratch, DEAD_CODE, out, check_nan)


def _cast_codes(scratch: np.ndarray, offset: float, out: np.ndarray, check_nan: bool):
    """``out`` = uint8(scratch + offset), NaN → ``NAN_CODE``, in one pass when finite."""
    nan = np.isnan(scratch) if check_nan else None
    if nan is not None and nan.any():
        scratch[nan] = NAN_CODE - offset
    np.add(scratch, offset, out=out, casting="unsafe")
    return out


# -- colour maps and text ink --------------------------------------------------------------------


def _colormap(lut: np.ndarray) -> pg.ColorMap:
    return pg.ColorMap(np.linspace(0.0, 1.0, len(lut)), lut)


#: Diverging map (blue negative, white 0, red positive) for colour bars and float images.
DIVERGING_COLORMAP = _colormap(DIVERGING_LUT)
#: Positive outputs (pale yellow just above 0, dark blue at the maximum).
POSITIVE_COLORMAP = _colormap(POSITIVE_LUT)
#: The ReLU output colour bar: a black block for 0 (dead), then the positive map.
DEAD_BLOCK = 0.08
ACTIVATION_BAR_COLORMAP = pg.ColorMap(
    np.concatenate([[0.0, DEAD_BLOCK], np.linspace(DEAD_BLOCK + 1e-6, 1.0, 64)]),
    np.vstack([[DEAD_COLOR, DEAD_COLOR], _resampled(POSITIVE_LUT, 64)]),
)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Relative luminance (0..1) of uint8 colours (..., 3)."""
    rgb = np.asarray(rgb, dtype=np.float64) / 255.0
    return rgb @ np.array([0.299, 0.587, 0.114])


_DIVERGING_LIGHT = luminance(DIVERGING_LUT) > LIGHT_CELL
_NAN_LIGHT = bool(luminance(np.array(NAN_RGB)) > LIGHT_CELL)


def light_cells(values: np.ndarray, limit: float) -> np.ndarray:
    """Whether each value's diverging colour on [−limit, +limit] is light (wants black text)."""
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        t = np.clip((values / limit + 1.0) / 2.0, 0.0, 1.0)
    index = np.round(np.nan_to_num(t, nan=0.5) * (len(DIVERGING_LUT) - 1)).astype(np.intp)
    light = _DIVERGING_LIGHT[index]
    light[np.isnan(values)] = _NAN_LIGHT
    return light


# -- mosaics -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MosaicLayout:
    """Where the tiles of a rows × cols grid of (h, w) maps lie in one mosaic image.

    Each source cell becomes ``scale`` × ``scale`` pixels; tiles are ``gap`` pixels apart and a
    gap also follows the last row and column. The mosaic's ImageItem is given the rectangle
    ``data_rect()``, so one source cell is one unit of the plot's coordinates: tile (r, c)
    starts at x = c·pitch_x/scale, y = r·pitch_y/scale.
    """

    rows: int
    cols: int
    tile_height: int
    tile_width: int
    gap: int = 1
    scale: int = 1

    @property
    def pitch_y(self) -> int:
        """Pixels from the top of one tile row to the next."""
        return self.tile_height * self.scale + self.gap

    @property
    def pitch_x(self) -> int:
        return self.tile_width * self.scale + self.gap

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) of the mosaic in pixels."""
        return self.rows * self.pitch_y, self.cols * self.pitch_x

    def allocate(self, dtype, fill, channels: int | None = None) -> np.ndarray:
        shape = self.shape if channels is None else (*self.shape, channels)
        return np.full(shape, fill, dtype=dtype)

    def fill(self, mosaic: np.ndarray, tiles: np.ndarray) -> None:
        """Write ``tiles`` (rows, cols, h, w[, channels]) into ``mosaic`` (from ``allocate``)."""
        h, w, s = self.tile_height, self.tile_width, self.scale
        extra = mosaic.shape[2:]
        grid = mosaic.reshape(self.rows, self.pitch_y, self.cols, self.pitch_x, *extra)
        source = np.swapaxes(tiles, 1, 2)  # rows, h, cols, w
        if s == 1:
            grid[:, :h, :, :w] = source
            return
        sy, sx = mosaic.strides[:2]
        blocks = np.lib.stride_tricks.as_strided(
            mosaic,
            shape=(self.rows, h, s, self.cols, w, s, *extra),
            strides=(self.pitch_y * sy, s * sy, sy, self.pitch_x * sx, s * sx, sx)
            + mosaic.strides[2:],
            writeable=True,
        )
        blocks[...] = source[:, :, None, :, :, None]

    def data_rect(self) -> QRectF:
        height, width = self.shape
        return QRectF(0.0, 0.0, width / self.scale, height / self.scale)

    def tile_origin(self, row: int, col: int) -> tuple[float, float]:
        """(x, y) of the top-left corner of tile (row, col) in plot units."""
        return col * self.pitch_x / self.scale, row * self.pitch_y / self.scale

    def tile_centre(self, row: int, col: int) -> tuple[float, float]:
        x, y = self.tile_origin(row, col)
        return x + self.tile_width / 2, y + self.tile_height / 2

    def tile_rects(self) -> list[tuple[float, float, float, float]]:
        """(x, y, width, height) of every tile in plot units, row by row."""
        return [
            (*self.tile_origin(row, col), float(self.tile_width), float(self.tile_height))
            for row in range(self.rows)
            for col in range(self.cols)
        ]

    def cell_centre(self, row: int, col: int, i: int, j: int) -> tuple[float, float]:
        """(x, y) in plot units of the centre of cell [i, j] of tile (row, col)."""
        x, y = self.tile_origin(row, col)
        return x + j + 0.5, y + i + 0.5

    def cell_pixel(self, row: int, col: int, i: int, j: int) -> tuple[int, int]:
        """(y, x) index into the mosaic array of a pixel inside cell [i, j] of tile (row, col)."""
        return (
            row * self.pitch_y + i * self.scale + self.scale // 2,
            col * self.pitch_x + j * self.scale + self.scale // 2,
        )

    def locate(self, x: float, y: float) -> tuple[int, int, int, int] | None:
        """(row, col, i, j) of the cell under plot point (x, y), or None over a gap/outside."""
        if not (math.isfinite(x) and math.isfinite(y)) or x < 0 or y < 0:
            return None
        px, py = x * self.scale, y * self.scale
        col, inner_x = divmod(px, self.pitch_x)
        row, inner_y = divmod(py, self.pitch_y)
        if row >= self.rows or col >= self.cols:
            return None
        i, j = int(inner_y // self.scale), int(inner_x // self.scale)
        if i >= self.tile_height or j >= self.tile_width:
            return None
        return int(row), int(col), i, j


def tile_scale(kernel_size: int) -> int:
    """Pixels per cell for K×K filter tiles, so that 1-pixel gaps stay thin next to cells."""
    return max(1, 12 // kernel_size)


# -- plots, bars, labels -------------------------------------------------------------------------


class GuardedViewBox(pg.ViewBox):
    """A ViewBox that zooms with the wheel only while Ctrl is held.

    Scrolling a panel past a plot then never zooms it by surprise; drag still pans.
    """

    def wheelEvent(self, ev, axis=None):  # noqa: N802 (Qt override)
        if ev.modifiers() & Qt.KeyboardModifier.ControlModifier:
            super().wheelEvent(ev, axis)
        else:
            ev.ignore()


def foreground() -> QColor:
    return QColor(FOREGROUND)


def muted() -> QColor:
    return QColor(MUTED)


def style_graphics_widget(widget: pg.GraphicsLayoutWidget) -> None:
    """White plot background and dark ink, as the curves use."""
    widget.setBackground(BACKGROUND)
    widget.ci.setContentsMargins(2, 2, 2, 2)


def font(pixel_size: int, bold: bool = False) -> QFont:
    result = QFont(QApplication.font())
    result.setPixelSize(pixel_size)
    result.setBold(bold)
    return result


def image_plot(image_item: pg.ImageItem | None = None) -> pg.PlotItem:
    """A plot for mosaics: aspect locked, y down, no menus or auto-range button."""
    view = GuardedViewBox(lockAspect=True, invertY=True, enableMenu=False)
    plot = pg.PlotItem(viewBox=view)
    plot.hideButtons()
    plot.setMenuEnabled(False)
    ink = foreground()
    for name in ("left", "bottom", "top", "right"):
        axis = plot.getAxis(name)
        axis.setPen(pg.mkPen(muted()))
        axis.setTextPen(pg.mkPen(ink))
        axis.setStyle(tickLength=0, tickFont=font(11))
    if image_item is not None:
        plot.addItem(image_item)
    return plot


def new_image_item(lut: np.ndarray | None) -> pg.ImageItem:
    """A row-major ImageItem with ``lut`` (None for RGB(A) images)."""
    item = pg.ImageItem(axisOrder="row-major")
    if lut is not None:
        item.setLookupTable(lut)
    item.setAutoDownsample(False)
    return item


def colour_bar(colormap: pg.ColorMap, *, horizontal: bool = False) -> pg.ColorBarItem:
    """A non-interactive colour bar (levels are set by the view, never by dragging)."""
    bar = pg.ColorBarItem(
        values=(-1.0, 1.0),
        colorMap=colormap,
        interactive=False,
        width=14,
        orientation="horizontal" if horizontal else "vertical",
        colorMapMenu=False,
    )
    bar.axis.enableAutoSIPrefix(False)
    bar.axis.setStyle(tickFont=font(11), hideOverlappingLabels=False, tickLength=4)
    bar.axis.setTextPen(pg.mkPen(foreground()))
    for name in ("left", "right", "top", "bottom"):
        bar.getAxis(name).setPen(pg.mkPen(muted()))
    if not horizontal:
        bar.axis.setWidth(66)
    return bar


def set_bar_range(bar: pg.ColorBarItem, low: float, high: float, ticks) -> bool:
    """Show [low, high] on ``bar`` with exactly the labelled ``ticks`` ((value, text), ...).

    A vertical bar's axis widens to fit the longest label (it never narrows again, so that a
    running view does not jitter). Returns whether it widened.
    """
    ticks = list(ticks)
    bar.setLevels((low, high))
    bar.axis.setTicks([ticks])
    if not bar.horizontal:
        metrics = QFontMetricsF(bar.axis.style["tickFont"])
        needed = max((metrics.horizontalAdvance(text) for _, text in ticks), default=0) + 12
        if needed > bar.axis.width():
            bar.axis.setWidth(int(math.ceil(needed)))
            return True
    return False


class ShrinkingLabel(pg.LabelItem):
    """A LabelItem that does not force its layout column to the width of its text: the plots
    decide the widths, and a text too long for its place is clipped at the label's edges."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.setFlag(self.GraphicsItemFlag.ItemClipsChildrenToShape)

    def updateMin(self) -> None:  # noqa: N802 (pyqtgraph override)
        super().updateMin()
        self.setMinimumWidth(0)
        height = self._sizeHint[Qt.SizeHint.MinimumSize][1]
        self._sizeHint[Qt.SizeHint.MinimumSize] = (0, height)
        self._sizeHint[Qt.SizeHint.PreferredSize] = (0, height)


def label_item(text: str = "", *, size: int = 12, bold: bool = False) -> ShrinkingLabel:
    return ShrinkingLabel(text, size=f"{size}px", bold=bold, color=foreground())


SMALLEST_CELL_FONT = 9
LARGEST_CELL_FONT = 14
_REFERENCE_FONT = 20


def split_exponent(text: str) -> str:
    """'-6.51e+04' -> '-6.51\ne+04' (two short lines); text without an exponent unchanged."""
    mantissa, exponent, power = text.partition("e")
    return f"{mantissa}\n{exponent}{power}" if exponent else text


def fit_cell_texts(texts: Sequence[str], cell_pixels: float) -> tuple[int, bool] | None:
    """(pixel font size, split) at which every text fits a square cell of ``cell_pixels``.

    The largest size in ``SMALLEST_CELL_FONT``..``LARGEST_CELL_FONT``, on one line or split
    before the exponent (``split_exponent``), one line when both give the same size; None when
    neither fits.
    """
    if cell_pixels <= 0 or not texts:
        return None
    metrics = QFontMetricsF(font(_REFERENCE_FONT))
    line_ratio = metrics.height() / _REFERENCE_FONT
    one_line = max(metrics.horizontalAdvance(text) for text in texts) / _REFERENCE_FONT
    split = (
        max(
            metrics.horizontalAdvance(part)
            for text in texts
            for part in split_exponent(text).split()
        )
        / _REFERENCE_FONT
    )
    best = None
    for lines, width in ((1, one_line), (2, split)):
        size = min(
            LARGEST_CELL_FONT,
            math.floor((cell_pixels - 4) / max(width, 1e-9)),
            math.floor((cell_pixels - 2) / (lines * line_ratio)),
        )
        if size >= SMALLEST_CELL_FONT and (best is None or size > best[0]):
            best = (size, lines == 2)
    return best


def pixels_per_unit(view: pg.ViewBox) -> float:
    """Screen pixels per plot unit along x (0 before the view has a size)."""
    size = view.viewPixelSize()
    return 0.0 if not size[0] or not math.isfinite(size[0]) else 1.0 / size[0]


def frame_pairs(rects: Sequence[tuple[float, float, float, float]]) -> tuple[np.ndarray, ...]:
    """x, y arrays (connect='pairs') outlining (x, y, width, height) rectangles."""
    xs, ys = [], []
    for x, y, w, h in rects:
        corners = [(x, y), (x + w, y), (x + w, y + h), (x, y + h)]
        for a, b in zip(corners, corners[1:] + corners[:1], strict=True):
            xs += [a[0], b[0]]
            ys += [a[1], b[1]]
    return np.array(xs, dtype=np.float64), np.array(ys, dtype=np.float64)


def grid_lines(layout: MosaicLayout) -> tuple[np.ndarray, np.ndarray]:
    """x, y arrays (connect='pairs') of the cell borders inside every tile of ``layout``."""
    xs, ys = [], []
    for row in range(layout.rows):
        for col in range(layout.cols):
            x0, y0 = layout.tile_origin(row, col)
            for k in range(1, layout.tile_width):
                xs += [x0 + k, x0 + k]
                ys += [y0, y0 + layout.tile_height]
            for k in range(1, layout.tile_height):
                xs += [x0, x0 + layout.tile_width]
                ys += [y0 + k, y0 + k]
    return np.array(xs, dtype=np.float64), np.array(ys, dtype=np.float64)


class LabelLayer(pg.GraphicsObject):
    """Many short labels drawn by one item, at a fixed screen size whatever the zoom.

    Each label sits in the top-left corner of a box (x, y, width, height in plot units) on a
    translucent dark plate. All boxes use the long texts when every one fits its box on screen
    with room to spare (the label must not hide most of what it labels), else the short texts,
    else none (the hover read-out still tells). One item instead of hundreds of TextItems keeps
    a repaint of a page of 16 images × 16 filters within a frame.
    """

    #: A label may cover at most this share of its box's width, and the box must be at least
    #: this many text lines high.
    MAX_WIDTH_SHARE = 0.7
    MIN_LINES = 3

    def __init__(self, pixel_size: int = 11) -> None:
        super().__init__()
        self._boxes: list[tuple[float, float, float, float]] = []
        self._long: list[str] = []
        self._short: list[str] = []
        self._font = font(pixel_size)
        self._metrics = QFontMetricsF(self._font)
        self._bounds = QRectF()

    def set_boxes(self, boxes: Sequence[tuple[float, float, float, float]]) -> None:
        self.prepareGeometryChange()
        self._boxes = list(boxes)
        self._long = [""] * len(self._boxes)
        self._short = [""] * len(self._boxes)
        if self._boxes:
            left = min(b[0] for b in self._boxes)
            top = min(b[1] for b in self._boxes)
            right = max(b[0] + b[2] for b in self._boxes)
            bottom = max(b[1] + b[3] for b in self._boxes)
            self._bounds = QRectF(left, top, right - left, bottom - top)
        else:
            self._bounds = QRectF()
        self.update()

    def set_texts(self, long: Sequence[str], short: Sequence[str]) -> None:
        """Texts per box; repaints only when something changed."""
        long, short = list(long), list(short)
        if long != self._long or short != self._short:
            self._long, self._short = long, short
            self.update()

    def texts(self) -> list[str]:
        return list(self._long)

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt override)
        return self._bounds

    def paint(self, painter, *args) -> None:
        if not self._boxes:
            return
        transform = painter.transform()
        x, y, w, h = self._boxes[0]
        corner = transform.map(QPointF(x, y))
        far = transform.map(QPointF(x + w, y + h))
        box_w, box_h = abs(far.x() - corner.x()), abs(far.y() - corner.y())
        height = self._metrics.height()
        if box_h < self.MIN_LINES * height:
            return
        texts = None
        for candidate in (self._long, self._short):
            widest = max(self._metrics.horizontalAdvance(text) for text in candidate) + 4
            if widest <= self.MAX_WIDTH_SHARE * box_w:
                texts = candidate
                break
        if texts is None:
            return
        painter.save()
        painter.resetTransform()
        painter.setFont(self._font)
        painter.setPen(QPen(QColor(255, 255, 255)))
        plate = QColor(0, 0, 0, 170)
        for (x, y, _w, _h), text in zip(self._boxes, texts, strict=True):
            if not text:
                continue
            corner = transform.map(QPointF(x, y))
            rect = QRectF(
                corner.x() + 1, corner.y() + 1, self._metrics.horizontalAdvance(text) + 4, height
            )
            painter.fillRect(rect, plate)
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
        painter.restore()


def widget_point(widget: QWidget, plot: pg.PlotItem, x: float, y: float, target: QWidget):
    """Position in ``target``'s coordinates of plot point (x, y) shown in graphics ``widget``."""
    scene_point = plot.vb.mapViewToScene(QPointF(x, y))
    view_point = widget.mapFromScene(scene_point)
    return widget.mapTo(target, view_point)

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
from PySide6.QtCore import QObject, QPoint, QPointF, QRect, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QImage, QPen
from PySide6.QtWidgets import QApplication, QScrollArea, QSizePolicy, QWidget

from model.colormap import DEAD_COLOR, DIVERGING_LUT, POSITIVE_LUT
from model.formatting import format_cell, format_number

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

    def fill(
        self, mosaic: np.ndarray, tiles: np.ndarray, rows: tuple[int, int] | None = None
    ) -> None:
        """Write ``tiles`` (rows, cols, h, w[, channels]) into ``mosaic`` (from ``allocate``);
        with ``rows`` = (first, end), only those tile rows (of ``tiles`` and the mosaic)."""
        h, w, s = self.tile_height, self.tile_width, self.scale
        extra = mosaic.shape[2:]
        grid = mosaic.reshape(self.rows, self.pitch_y, self.cols, self.pitch_x, *extra)
        source = np.swapaxes(tiles, 1, 2)  # rows, h, cols, w
        if rows is not None:
            first, end = rows
            grid, source = grid[first:end], source[first:end]
            mosaic = mosaic[first * self.pitch_y : end * self.pitch_y]
        if s == 1:
            grid[:, :h, :, :w] = source
            return
        sy, sx = mosaic.strides[:2]
        blocks = np.lib.stride_tricks.as_strided(
            mosaic,
            shape=(len(source), h, s, self.cols, w, s, *extra),
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
    """Pixels per cell for K×K filter tiles, so that 1-pixel gaps stay thin next to cells
    (at least 2, so that a gap is never as wide as a cell)."""
    return max(2, 12 // kernel_size)


# -- plots, bars, labels -------------------------------------------------------------------------


class GuardedViewBox(pg.ViewBox):
    """A ViewBox that zooms with the wheel only while Ctrl is held.

    Scrolling a panel past a plot then never zooms it by surprise; drag still pans. A plain
    wheel turn goes to ``plain_wheel(delta)`` when one is set (the maps scroll their rows with
    it) and is otherwise left to the widgets around the plot.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.plain_wheel = None
        paints_nothing_without_border(self)

    def setBorder(self, *args, **kwargs) -> None:  # noqa: N802 (pyqtgraph override)
        super().setBorder(*args, **kwargs)
        paints_nothing_without_border(self)

    def wheelEvent(self, ev, axis=None):  # noqa: N802 (Qt override)
        if ev.modifiers() & Qt.KeyboardModifier.ControlModifier:
            super().wheelEvent(ev, axis)
        elif self.plain_wheel is not None and self.plain_wheel(ev.delta()):
            ev.accept()
        else:
            ev.ignore()


def paints_nothing_without_border(view: pg.ViewBox) -> None:
    """Tell Qt that ``view`` draws nothing itself while it has no border (its contents and
    background are items of their own), so that a repaint does not call its ``paint``: for
    each view of each plot in every frame, a Python call that drew its outline with no pen."""
    border = view.border
    none = border is None or border.style() == Qt.PenStyle.NoPen
    view.setFlag(view.GraphicsItemFlag.ItemHasNoContents, none)


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


class GivenTicksAxis(pg.AxisItem):
    """An axis whose ticks the view gives (one level of (value, text)), drawn as
    ``pg.AxisItem`` draws them, computed in fewer steps.

    Colour bars' scales and the texts beside mosaics change with nearly every iteration
    shown, and pyqtgraph's general code for an axis's ticks took 0.25-0.5 ms an axis each time
    (a colour bar's scale; a column of three-line row labels). For what these axes have (one
    level of given ticks, no grid) this computes the same tick marks and text boxes (tested
    against pyqtgraph's, on every side, with views the right way up and upside down); any
    other use (computed ticks, several levels, a grid) goes to pyqtgraph's code.
    """

    def generateDrawSpecs(self, p):  # noqa: N802 (pyqtgraph override)
        style = self.style
        levels = self._tickLevels
        if (
            self.grid is not False
            or levels is None
            or len(levels) != 1
            or style["tickAlpha"] is not None
            or tuple(style["stopAxisAtTick"]) != (False, False)
            or not style["showValues"]
            or style["maxTextLevel"] < 0
        ):
            return super().generateDrawSpecs(p)
        if style["tickFont"] is not None:
            p.setFont(style["tickFont"])
        bounds = self.mapRectFromParent(self.geometry())
        # Ticks and texts go away from the view: left and up (-1), or right and down (+1).
        # The axis line runs a pixel that way from the edge next to the view, a pixel beyond
        # each end.
        vertical = self.orientation in ("left", "right")
        direction = -1 if self.orientation in ("left", "top") else 1
        if vertical:
            edge = bounds.right() if direction < 0 else bounds.left()
            start = QPointF(edge + direction, bounds.top() - 1.0)
            stop = QPointF(edge + direction, bounds.bottom() + 1.0)
        else:
            edge = bounds.bottom() if direction < 0 else bounds.top()
            start = QPointF(bounds.left() - 1.0, edge + direction)
            stop = QPointF(bounds.right() + 1.0, edge + direction)
        ends = self.mapToDevice(start), self.mapToDevice(stop)
        if None in ends or ends[0] == ends[1]:
            return None  # (not shown anywhere: pyqtgraph draws nothing either)
        low, high = self.range
        if high == low:
            scale, offset = 1.0, 0.0
        elif vertical:
            scale = -bounds.height() / (high - low)
            offset = low * scale - bounds.height()
        else:
            scale = bounds.width() / (high - low)
            offset = low * scale
        least, most = sorted((low * scale - offset, high * scale - offset))
        pen = self.tickPen()
        if pen.brush().style() == Qt.BrushStyle.SolidPattern:
            pen = QPen(pen)
            color = QColor(pen.color())
            color.setAlpha(255)
            pen.setColor(color)
        length = style["tickLength"]
        tip = edge + length * direction
        gap = max(0, length) + style["tickTextOffset"][0 if vertical else 1]
        # Texts are aligned to the side facing the view.
        align = Qt.AlignmentFlag
        if vertical:
            across = align.AlignRight if direction < 0 else align.AlignLeft
            flags = across | align.AlignVCenter | Qt.TextFlag.TextDontClip
        else:
            across = align.AlignBottom if direction < 0 else align.AlignTop
            flags = across | align.AlignHCenter | Qt.TextFlag.TextDontClip
        room = self.boundingRect()
        box = QRectF(0, 0, 100, 100)
        tick_specs, text_specs = [], []
        deepest = 0.0  # (the texts' extent across the axis)
        for value, text in levels[0]:
            x = value * scale - offset
            if x < least or x > most:
                continue
            if vertical:
                tick_specs.append((pen, QPointF(edge, x), QPointF(tip, x)))
            else:
                tick_specs.append((pen, QPointF(x, edge), QPointF(x, tip)))
            size = p.boundingRect(box, Qt.AlignmentFlag.AlignCenter, text)
            width, height = size.width(), size.height() * 0.8
            deepest = max(deepest, width if vertical else height)
            if vertical:
                near = edge - gap - width if direction < 0 else edge + gap
                rect = QRectF(near, x - height / 2, width, height)
            else:
                near = edge - gap - height if direction < 0 else edge + gap
                rect = QRectF(x - width / 2, near, width, height)
            if room & rect == rect:
                text_specs.append((rect, flags, text))
        self._updateMaxTextSize(deepest)
        return (self.pen(), start, stop), tick_specs, text_specs


class TextAxis(GivenTicksAxis):
    """An axis that only writes its tick texts: no axis line, no tick marks (a column or row
    of labels beside a mosaic, e.g. one per image).

    Its texts rarely change while the mosaic beside it changes every frame, and each frame's
    repaint takes them in: they are painted from a pixmap Qt keeps (redrawn whenever the axis
    changes: new ticks, range or size), not by pyqtgraph in Python each time."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.setCacheMode(self.CacheMode.DeviceCoordinateCache)

    def drawPicture(self, p, axisSpec, tickSpecs, textSpecs):  # noqa: N802 (pyqtgraph override)
        p.setRenderHint(p.RenderHint.TextAntialiasing, True)
        if self.style["tickFont"] is not None:
            p.setFont(self.style["tickFont"])
        p.setPen(self.textPen())
        p.setClipRect(self.boundingRect().toAlignedRect())
        for rect, flags, text in textSpecs:
            p.drawText(rect, int(flags), text)


def image_plot(image_item: pg.ImageItem | None = None, text_axes=()) -> pg.PlotItem:
    """A plot for mosaics: aspect locked, y down, no menus or auto-range button; the axes
    named in ``text_axes`` ('left', 'right', ...) are ``TextAxis``."""
    view = GuardedViewBox(lockAspect=True, invertY=True, enableMenu=False)
    axes = {name: TextAxis(name) for name in text_axes}
    plot = pg.PlotItem(viewBox=view, axisItems=axes)
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


class TableImage(pg.ImageItem):
    """An ImageItem for one-channel images shown through a table of 256 colours: the same
    picture as ``pg.ImageItem``, made faster for what the views give it.

    pyqtgraph converts its colour table to Qt's form, 256 colours one by one in Python, every
    time the image changes (0.1 ms an image, five images a frame), and takes a general path
    for levels and NaNs. This one keeps the converted table until the table changes. Codes
    (uint8, levels None or (0, 255), which show code k in colour k) are shown as they are;
    floats are scaled into codes by pyqtgraph's own ``rescaleData``, as pyqtgraph does, and
    NaNs (the heatmaps' gaps) are left transparent, as pyqtgraph leaves them. Anything else
    (other tables or levels) goes to pyqtgraph's code. Tested against it.
    """

    _table_of: bytes = b""
    _table = np.zeros(0, np.uint32)

    def _colour_table(self, lut: np.ndarray) -> np.ndarray:
        """``lut`` as Qt's colours (0xAARRGGBB), converted once per table (kept by its bytes:
        a table edited in place is converted again)."""
        key = lut.tobytes() + bytes(lut.shape[1:])
        if key != self._table_of:
            rows = lut.astype(np.uint32)
            alpha = rows[:, 3] if rows.shape[1] == 4 else np.uint32(255)
            self._table = (alpha << 24) | (rows[:, 0] << 16) | (rows[:, 1] << 8) | rows[:, 2]
            self._table_of = key
        return self._table

    def _codes(self) -> tuple[np.ndarray, np.ndarray | None] | None:
        """The image as codes into ``self.lut`` and where it is NaN (None: nowhere), or None
        when pyqtgraph's path must draw it."""
        image, lut, levels = self.image, self.lut, self.levels
        if (
            image is None
            or image.ndim != 2
            or image.size == 0
            or not isinstance(lut, np.ndarray)
            or lut.dtype != np.uint8
            or lut.ndim != 2
            or lut.shape[0] != 256
            or lut.shape[1] not in (3, 4)
            or self.autoDownsample
            or self.axisOrder != "row-major"
        ):
            return None
        if image.dtype == np.uint8:
            if levels is None or (np.ndim(levels) == 1 and tuple(levels) == (0, 255)):
                return image, None
            return None
        if image.dtype.kind != "f" or levels is None or np.ndim(levels) != 1:
            return None
        low, high = levels
        span = high - low
        gaps = np.isnan(image)
        if gaps.any():
            # (Any value: they are not shown. In the image's type, which rescaleData's
            # arithmetic follows: float32 is scaled in float32, as pyqtgraph scales it.)
            image = np.where(gaps, image.dtype.type(low), image)
        else:
            gaps = None
        codes = pg.functions.rescaleData(
            image, 256 / (span if span != 0 else 1), low, dtype=np.uint8, clip=(0, 255)
        )
        return codes, gaps

    def render(self) -> None:
        found = self._codes()
        if found is None:
            super().render()
            return
        codes, gaps = found
        table = self._colour_table(self.lut)
        if gaps is None:
            codes = np.ascontiguousarray(codes)
            qimage = pg.functions.ndarray_to_qimage(codes, QImage.Format.Format_Indexed8)
            qimage.setColorTable(table.tolist())
        else:
            colours = table[codes]
            colours[gaps] &= np.uint32(0x00FFFFFF)  # transparent
            qimage = pg.functions.ndarray_to_qimage(colours, QImage.Format.Format_ARGB32)
        self._processingBuffer = None
        self._displayBuffer = None
        self.qimage = qimage
        self._renderRequired = False
        self._unrenderable = False


def new_image_item(lut: np.ndarray | None) -> pg.ImageItem:
    """A row-major ImageItem with ``lut`` (None for RGB(A) images): a ``TableImage`` when
    there is a table."""
    item = pg.ImageItem(axisOrder="row-major") if lut is None else TableImage(axisOrder="row-major")
    if lut is not None:
        item.setLookupTable(lut)
    item.setAutoDownsample(False)
    return item


def colour_bar(colormap: pg.ColorMap, *, width: int = 14) -> pg.ColorBarItem:
    """A vertical, non-interactive colour bar (levels are set by the view, never by dragging)
    with its scale on the right."""
    bar = pg.ColorBarItem(
        values=(-1.0, 1.0),
        colorMap=colormap,
        interactive=False,
        width=width,
        orientation="vertical",
        colorMapMenu=False,
    )
    # The scale: the same look, drawn faster (``GivenTicksAxis``).
    scale = GivenTicksAxis("right")
    bar.setAxisItems({"right": scale})
    bar.axis = scale
    scale.setStyle(showValues=True)
    scale.unlinkFromView()
    scale.setRange(*bar.values)
    paints_nothing_without_border(bar.getViewBox())  # (never given one)
    bar.axis.enableAutoSIPrefix(False)
    bar.axis.setStyle(tickFont=font(11), hideOverlappingLabels=False, tickLength=4)
    bar.axis.setTextPen(pg.mkPen(foreground()))
    for name in ("left", "right", "top", "bottom"):
        # (Not cached as TextAxis is: a cached frame lost its left line in saved PNGs and,
        # at some window sizes, on screen.)
        bar.getAxis(name).setPen(pg.mkPen(muted()))
    bar.axis.setWidth(40)
    for name in ("top", "bottom"):
        bar.getAxis(name).setHeight(6)
    return bar


def axis_width(axis: pg.AxisItem) -> float:
    """The width an axis was given (its geometry may not have caught up yet)."""
    return axis.fixedWidth if axis.fixedWidth is not None else axis.width()


def bar_width(bar: pg.ColorBarItem) -> float:
    """Pixels a vertical colour bar takes in its layout: the bar, its frame and its labels."""
    return bar.layout.columnMinimumWidth(1) + axis_width(bar.axis) + 2


def set_bar_range(bar: pg.ColorBarItem, low: float, high: float, ticks) -> bool:
    """Show [low, high] on ``bar`` with exactly the labelled ``ticks`` ((value, text), ...).

    The bar's axis widens to fit the longest label (it never narrows again, so that a
    running view does not jitter). Returns whether it widened.
    """
    ticks = list(ticks)
    span = high - low
    # Where the labels sit along the bar (to a millionth, far below a pixel) and what they say.
    layout = tuple((round((value - low) / span, 6), text) for value, text in ticks) if span else ()
    unchanged = bool(layout) and layout == getattr(bar, "_tick_layout", None)
    picture = bar.axis.picture
    bar.setLevels((low, high))
    bar.axis.setTicks([ticks])
    if unchanged and picture is not None:
        # The same labels in the same places: the axis would draw the same picture again.
        # Regenerating it cost 0.4 ms a bar, five bars a frame while training runs, and
        # during a run the labels stay the same in about half the frames.
        bar.axis.picture = picture
    bar._tick_layout = layout
    metrics = QFontMetricsF(bar.axis.style["tickFont"])
    needed = max((metrics.horizontalAdvance(text) for _, text in ticks), default=0) + 9
    if needed > axis_width(bar.axis):
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


class CaptionItem(pg.GraphicsWidget):
    """Lines of text in a layout cell, top-left aligned, each in its own size, weight and ink.

    Unlike a LabelItem (rich text with a document margin, centred) it takes exactly the room
    its lines need, so a caption beside a heatmap costs no more height than its text. Its
    natural width grows to its widest line and never shrinks again, so a running view does
    not jitter; given a fixed width (``set_fixed_width``), longer lines are elided with '…'.
    When the cell is lower than the lines, optional lines are left out first, then the last
    ones: no line is ever drawn cut in half.
    """

    def __init__(self, pixel_size: int = 11) -> None:
        super().__init__()
        self._lines: list[tuple[str, int, bool, str, bool]] = []
        self._pixel_size = pixel_size
        self._width = 0.0
        self._fixed_width: float | None = None
        self._fonts: dict[tuple[int, bool], tuple[QFont, QFontMetricsF]] = {}
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Preferred)

    def line(
        self,
        text: str,
        *,
        bold: bool = False,
        size: int | None = None,
        ink=None,
        optional: bool = False,
    ):
        """One line (text, pixel size, bold, colour, optional), for ``set_lines``."""
        return (text, size or self._pixel_size, bold, ink or FOREGROUND, optional)

    def _font(self, size: int, bold: bool) -> tuple[QFont, QFontMetricsF]:
        key = (size, bold)
        if key not in self._fonts:
            line_font = font(size, bold)
            self._fonts[key] = (line_font, QFontMetricsF(line_font))
        return self._fonts[key]

    def set_lines(self, lines) -> None:
        """Show ``lines`` (from ``line``); lays out and repaints only on a change."""
        lines = list(lines)
        if lines == self._lines:
            return
        self._lines = lines
        widest, height = 0.0, 0.0
        for text, size, bold, *_ in lines:
            metrics = self._font(size, bold)[1]
            if text:
                widest = max(widest, metrics.horizontalAdvance(text))
            height += metrics.height()
        changed = False
        if widest + 4 > self._width:
            self._width = math.ceil(widest + 4)
            changed = self._fixed_width is None
        # Room for every line is asked for, but only the first is insisted on: in a lower
        # cell the caption leaves lines out rather than push its row higher.
        first = self._font(lines[0][1], lines[0][2])[1].height() if lines else 0.0
        if abs(self.preferredHeight() - height) > 0.5 or self.minimumHeight() != first:
            self.setMinimumHeight(first)
            self.setPreferredHeight(height)
        if changed:
            self._apply_width()
        self.update()

    def set_fixed_width(self, width: float | None) -> None:
        """Fix the width (lines longer than it are elided), or None to follow the text."""
        self._fixed_width = None if width is None else float(width)
        self._apply_width()

    def natural_width(self) -> float:
        """The width the widest line shown so far needs."""
        return self._width

    def _apply_width(self) -> None:
        width = self._fixed_width if self._fixed_width is not None else self._width
        self.setMinimumWidth(width)
        self.setMaximumWidth(width)
        self.updateGeometry()

    def texts(self) -> list[str]:
        return [line[0] for line in self._lines]

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt override)
        return QRectF(0.0, 0.0, self.size().width(), self.size().height())

    def _fitting_lines(self):
        room = self.size().height() + 0.5
        lines = list(self._lines)

        def height(candidates) -> float:
            return sum(self._font(line[1], line[2])[1].height() for line in candidates)

        while height(lines) > room and any(line[4] for line in lines):
            last_optional = max(i for i, line in enumerate(lines) if line[4])
            del lines[last_optional]
        while lines and height(lines) > room:
            lines.pop()
        return lines

    def paint(self, painter, *args) -> None:
        width = self.size().width()
        y = 0.0
        for text, size, bold, ink, _ in self._fitting_lines():
            line_font, metrics = self._font(size, bold)
            if text:
                shown = metrics.elidedText(text, Qt.TextElideMode.ElideRight, width)
                painter.setFont(line_font)
                painter.setPen(QPen(QColor(ink)))
                painter.drawText(QPointF(0.0, y + metrics.ascent()), shown)
            y += metrics.height()


def label_item(text: str = "", *, size: int = 12, bold: bool = False) -> ShrinkingLabel:
    return ShrinkingLabel(text, size=f"{size}px", bold=bold, color=foreground())


SMALLEST_CELL_FONT = 9
LARGEST_CELL_FONT = 14
#: Cell values are written at least this large when a more exact format is chosen over a
#: shorter one (below it, the shorter format at a larger size reads better).
COMFORTABLE_CELL_FONT = 11
_REFERENCE_FONT = 20


def cell_formats(values: np.ndarray) -> tuple[list[str], list[str]]:
    """The values as cell texts, most exact format first: ``format_number`` (4 significant
    digits, '-65,092.3') and ``format_cell`` ('-65,092')."""
    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    return [format_number(v) for v in flat], [format_cell(v) for v in flat]


def split_exponent(text: str) -> str:
    """'-6.51e+04' -> '-6.51\ne+04' (two short lines); text without an exponent unchanged."""
    mantissa, exponent, power = text.partition("e")
    return f"{mantissa}\n{exponent}{power}" if exponent else text


@dataclass(frozen=True)
class CellFit:
    """How a group of cell texts is written: pixel font size, which format (index into the
    formats given to ``fit_cell_texts``) and whether split before the exponent."""

    size: int
    format: int
    split: bool


def cell_font(pixel_size: int) -> QFont:
    """The font of heatmap cell values: semi-condensed where the font family has such a face
    (DejaVu Sans does), so that a table of numbers fits narrower cells."""
    result = font(pixel_size)
    result.setStretch(QFont.Stretch.SemiCondensed)
    return result


class _CellTextWidths:
    """Widths of texts in ``cell_font`` at the reference size, remembered while that font stays
    the same. The Filters panel fits the same cell texts several times after a Step (each
    heatmap alone, then at the size the three share), and each width is a call into Qt
    (measured on the question's example: 9.2 -> 7.4 ms each time the panel rewrites its cells)."""

    MAX_TEXTS = 4096

    def __init__(self) -> None:
        self._font: QFont | None = None
        self._metrics: QFontMetricsF | None = None
        self._widths: dict[str, float] = {}

    def metrics(self) -> QFontMetricsF:
        """The reference font's metrics (new ones, and no remembered widths, when the font
        differs from the last one in any way)."""
        font = cell_font(_REFERENCE_FONT)
        if self._font is None or font != self._font:
            self._font, self._metrics = font, QFontMetricsF(font)
            self._widths.clear()
        return self._metrics

    def widest(self, texts) -> float:
        """The largest width of ``texts`` in pixels at the reference size (after ``metrics``)."""
        widths = self._widths
        largest = 0.0
        for text in texts:
            width = widths.get(text)
            if width is None:
                if len(widths) >= self.MAX_TEXTS:
                    widths.clear()
                width = widths[text] = self._metrics.horizontalAdvance(text)
            largest = max(largest, width)
        return largest


_CELL_TEXT_WIDTHS = _CellTextWidths()


class CellTexts(pg.GraphicsObject):
    """The values written in a heatmap's cells, all drawn by one item: each centred on its
    cell (lines centred too), in one font at a fixed screen size whatever the zoom, black on
    light cells and white on dark ones (``light_cells``).

    A ``pg.TextItem`` per cell laid each new text out in a document of its own (some 25 µs) and
    was positioned and painted as an item of its own: with the question's one filter (81 cells
    in three heatmaps) that was 2–3 ms of each iteration shown. ``set_texts`` only keeps the
    strings; ``paint`` writes them.
    """

    def __init__(self) -> None:
        super().__init__()
        self._centres: list[QPointF] = []
        self._texts: list[str] = []
        self._light: list[bool] = []
        self._font = cell_font(LARGEST_CELL_FONT)
        self._bounds = QRectF()

    def __len__(self) -> int:
        return len(self._centres)

    def set_cells(self, centres: Sequence[tuple[float, float]], bounds: QRectF) -> None:
        """The cells' centres in plot units (their texts blank until ``set_texts``), and the
        rectangle the cells lie in."""
        self.prepareGeometryChange()
        self._centres = [QPointF(x, y) for x, y in centres]
        self._texts = [""] * len(self._centres)
        self._light = [False] * len(self._centres)
        self._bounds = QRectF(bounds)
        self.update()

    def set_font(self, font: QFont) -> None:
        if font != self._font:
            self._font = QFont(font)
            self.update()

    def set_texts(self, texts: Sequence[str], light: Sequence[bool]) -> None:
        """One text per cell ('\n' between lines), and whether its cell is light (black
        text); repaints only when something changed."""
        texts, light = list(texts), [bool(value) for value in light]
        if len(texts) != len(self._centres) or len(light) != len(self._centres):
            raise ValueError(f"{len(texts)} texts for {len(self._centres)} cells")
        if texts != self._texts or light != self._light:
            self._texts, self._light = texts, light
            self.update()

    def texts(self) -> list[str]:
        return list(self._texts)

    def inks(self) -> list[str]:
        """Each text's colour, '#000000' (on a light cell) or '#ffffff'."""
        return ["#000000" if light else "#ffffff" for light in self._light]

    def font(self) -> QFont:
        return QFont(self._font)

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt override)
        return self._bounds

    def paint(self, painter, *args) -> None:
        if not any(self._texts):
            return
        # Written in scene units (a screen pixel in the window): the zoom does not scale the
        # texts, but an export's painter, which draws the scene larger, does.
        to_scene = self.sceneTransform()
        from_scene = to_scene.inverted()[0] * painter.transform()
        painter.save()
        painter.setTransform(from_scene)
        painter.setFont(self._font)
        pens = {True: QPen(QColor(0, 0, 0)), False: QPen(QColor(255, 255, 255))}
        ink = None
        room = 1000.0  # (a box around the centre larger than any cell text)
        centred = Qt.AlignmentFlag.AlignCenter
        for centre, text, light in zip(self._centres, self._texts, self._light, strict=True):
            if not text:
                continue
            if light is not ink:
                painter.setPen(pens[light])
                ink = light
            point = to_scene.map(centre)
            painter.drawText(
                QRectF(point.x() - room / 2, point.y() - room / 2, room, room), centred, text
            )
        painter.restore()


def fit_cell_texts(
    formats: Sequence[Sequence[str]],
    cell_width: float,
    cell_height: float | None = None,
    largest: int = LARGEST_CELL_FONT,
) -> CellFit | None:
    """The best way every text of one format fits a cell of ``cell_width`` × ``cell_height``
    screen pixels (square when no height is given) in ``cell_font``, at most ``largest``
    pixels high, or None when none fits.

    Preference: one line at ``COMFORTABLE_CELL_FONT`` or more (largest size first, the more
    exact format first at each size); then one line at a smaller size; then split before the
    exponent ('-6.51' over 'e+04', the shortest format).
    """
    cell_height = cell_width if cell_height is None else cell_height
    formats = [list(texts) for texts in formats if len(texts)]
    if cell_width <= 0 or cell_height <= 0 or not formats:
        return None
    measure = _CELL_TEXT_WIDTHS
    line = measure.metrics().height() / _REFERENCE_FONT

    def widest(texts) -> float:
        return measure.widest(texts) / _REFERENCE_FONT

    one_line = [widest(texts) for texts in formats]
    parts = [part for text in formats[-1] for part in split_exponent(text).split("\n")]
    split_width = widest(parts)
    has_exponent = any("e" in text for text in formats[-1])

    def fits(size: int, width: float, lines: int) -> bool:
        return size * width + 4 <= cell_width and size * line * lines + 2 <= cell_height

    sizes = range(min(largest, LARGEST_CELL_FONT), SMALLEST_CELL_FONT - 1, -1)
    for size in sizes:
        if size < COMFORTABLE_CELL_FONT:
            break
        for index, width in enumerate(one_line):
            if fits(size, width, 1):
                return CellFit(size, index, False)
    for size in sizes:
        if size >= COMFORTABLE_CELL_FONT:
            continue
        for index, width in enumerate(one_line):
            if fits(size, width, 1):
                return CellFit(size, index, False)
    if has_exponent:
        for size in sizes:
            if fits(size, split_width, 2):
                return CellFit(size, len(formats) - 1, True)
    return None


def pixels_per_unit(view: pg.ViewBox, axis: int = 0) -> float:
    """Screen pixels per plot unit along x (``axis`` 0) or y (1); 0 before the view has a
    size."""
    size = view.viewPixelSize()[axis]
    return 0.0 if not size or not math.isfinite(size) else 1.0 / size


def frame_pairs(rects: Sequence[tuple[float, float, float, float]]) -> tuple[np.ndarray, ...]:
    """x, y arrays (connect='pairs') outlining (x, y, width, height) rectangles."""
    xs, ys = [], []
    for x, y, w, h in rects:
        corners = [(x, y), (x + w, y), (x + w, y + h), (x, y + h)]
        for a, b in zip(corners, corners[1:] + corners[:1], strict=True):
            xs += [a[0], b[0]]
            ys += [a[1], b[1]]
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


def shown_part(view: pg.GraphicsView, scroll: QScrollArea) -> QRect:
    """The part of ``view``'s viewport (in its coordinates) that ``scroll``, the scroll area
    around ``view``, shows."""
    viewport, area = view.viewport(), scroll.viewport()
    return QRect(viewport.mapFrom(area, QPoint(0, 0)), area.size()) & viewport.rect()


def widget_point(widget: QWidget, plot: pg.PlotItem, x: float, y: float, target: QWidget):
    """Position in ``target``'s coordinates of plot point (x, y) shown in graphics ``widget``."""
    scene_point = plot.vb.mapViewToScene(QPointF(x, y))
    view_point = widget.mapFromScene(scene_point)
    return widget.mapTo(target, view_point)


class ScaleLink(QObject):
    """Colour scales shared by the same view of two runs, so colours compare at a glance.

    Each member reports the limits it would use on its own (group name -> ± limit); every
    member then draws with the largest of them. When the shared limits change, ``changed``
    asks the other members to redraw.
    """

    changed = Signal(object)  # the member whose report changed them

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._reports: dict[int, dict[str, float]] = {}

    def shared(self, member: object, own: dict[str, float]) -> dict[str, float]:
        """Record ``member``'s own limits; return the limits every member should draw with."""
        before = self.limits()
        self._reports[id(member)] = dict(own)
        after = self.limits()
        if after != before:
            self.changed.emit(member)
        return {name: after.get(name, value) for name, value in own.items()}

    def leave(self, member: object) -> None:
        self._reports.pop(id(member), None)

    def limits(self) -> dict[str, float]:
        combined: dict[str, float] = {}
        for report in self._reports.values():
            for name, value in report.items():
                combined[name] = max(combined.get(name, 0.0), value)
        return combined

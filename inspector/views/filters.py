"""The conv filters of the shown iteration: weights, the gradient and the update that made them.

The three groups (weights / gradient / update) are stacked, one strip each: on the left the
group's name and colour scale, then its heatmap, then a slim colour bar. A heatmap is one mosaic
of every filter's K×K kernel per input channel. Each filter is a block of its three channel
tiles, side by side (R G B: "across") or one above the other ("down"), the blocks in one row;
``_arrange`` picks whichever gives the larger cells in the space the view has, and while there
are few enough cells it lets them be wider than tall, like the cells of a table, so that the
value in every cell can be written (the question's one 3×3×3 filter at 1280×800). The diverging
colour map is centred on 0 with explicit, labelled limits (never auto-levels), and the text
under the heatmaps spells out the update rule with this iteration's numbers, so that "why did
the filter move so far" can be read off the screen.

Mosaic layout (``mosaic_layout()``, a ``FilterLayout``): weight [f, c, i, j] lies in cell
[i, j] of tile (f, c); ``layout.cell_pixel(f, c, i, j)`` indexes the group's
``ImageItem.image`` (float values, NaN in the gaps) and ``layout.cell_centre(f, c, i, j)`` is
the cell's centre in plot coordinates (one cell = one unit).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, QRect, QRectF, Qt, QTimer, Slot
from PySide6.QtGui import QFontMetrics, QFontMetricsF
from PySide6.QtWidgets import (
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from inspector import maximise, plotting
from inspector.layout_guard import LayoutGuard
from inspector.views.scaled import SCALE_WORDS, ScaledRecordView
from inspector.views.widgets import ElidedLabel, SelectableLabel
from model.colormap import DIVERGING_LUT
from model.files import readable
from model.formatting import format_number, format_product, format_range
from model.record import StepRecord, batch_text

#: (group, StepRecord attribute, plot name, title, subtitle).
GROUPS = (
    ("weights", "params", "filters-weights", "weights", ""),
    ("gradient", "grads", "filters-gradient", "gradient", "of the loss"),
    ("update", "update", "filters-update", "update", "new − old"),
)
GROUP_NAMES = tuple(name for name, *_ in GROUPS)
#: Metric column giving a group's largest |value| at every iteration ("Whole run" scale).
RUN_METRICS = {
    "weights": "conv_weight_absmax",
    "gradient": "conv_grad_absmax",
    "update": "conv_update_absmax",
}
SCALE_TIPS = (
    "Each heatmap is scaled to its own largest |value| in the shown iteration",
    "Each heatmap is scaled to the largest |value| it has had in this run so far, so "
    "iterations can be compared by colour",
    "One fixed ± limit for all three heatmaps; values beyond it are drawn in the end colours",
)
#: Cells per group up to which every cell gets its value written (4 filters of 3×3×3): 3 × 108
#: texts drawn stay within a frame.
TEXT_CELL_BUDGET = 108
#: While a run shows records, their cell texts follow every record at set speeds up to this
#: many a second; faster, they are hidden until the run stops (numbers that change 60 times a
#: second cannot be read, and each text costs about 50 µs a frame). They used to be rewritten
#: every 0.1 s: at 20 a second that was every other record, with one image per update always
#: the same image's, so the gradient cells read 0 (the circle's saturated σ) under colours of
#: 100,000 all run long.
TEXT_MAX_RATE = 25
#: ... and "as fast as possible", from the pace of the records (an average over the last few):
#: hidden when they come less than ``TEXT_HIDE_GAP_S`` apart, shown again from
#: ``TEXT_SHOW_GAP_S`` (two limits, so that the texts do not blink at a pace in between).
TEXT_HIDE_GAP_S = 0.04
TEXT_SHOW_GAP_S = 0.06
#: A cell that carries its value may be up to this many times wider than tall.
MAX_CELL_RATIO = 3.0
#: The text a table-like layout must hold to be chosen over square cells.
CELL_TEMPLATE = ("-0.0451",)
#: How much smaller cells may be in columns of filters ("down") than in a row of R G B
#: triples ("across") and still be chosen, for several filters.
DOWN_PREFERENCE = 1.2
#: Cell borders are drawn from this many screen pixels per cell.
GRID_MIN_PIXELS = 8
#: Pixel sizes of the strips' parts (the sizes are set, so the layout can be computed).
AXIS_HEIGHT = 17
LEFT_AXIS_WIDTH = 16
BAR_WIDTH = 10
STRIP_MARGIN = 2
STRIP_SPACING = 4
STRIPS_SPACING = 3
TEXT_SPACING = 4
#: Share of the mosaic's size left free around it when fitted.
PADDING = 0.005
NO_UPDATE_MESSAGE = "No update yet (iteration 0): press Step (F10)"
#: ... shorter, for narrow mosaics (eight filters and more, or a side-by-side column); the
#: strip's caption says "no update yet" beside it anyway. Where not even the last fits, the
#: message is hidden rather than cut ("F10" alone, once the last, read as a stray word to a
#: teacher).
NO_UPDATE_SHORTER = ("No update yet: press Step (F10)", "Press Step (F10)", "Step (F10)")
HOVER_HINT = "hover a cell for its values · Ctrl+wheel zooms · drag pans · Fit resets"
READOUT_HINT = HOVER_HINT[0].upper() + HOVER_HINT[1:]


#: ... where the cells are too small for their values (a small window, large text).
def small_cells_hint() -> str:
    return f"{maximise.shortcut_text()} with the mouse here maximises this panel · {HOVER_HINT}"


@dataclass(frozen=True)
class FilterLayout:
    """Where every weight lies in a group's mosaic.

    Filter f is a block of its ``channels`` tiles of K×K cells: side by side when ``across``
    (R G B in a row), else one above the other; the blocks stand in one row. One cell is
    ``scale`` × ``scale`` image pixels; tiles of a block are ``gap`` pixels apart, blocks
    ``block_gap`` pixels. The ImageItem is given ``data_rect()``, so one cell is one unit of the
    plot's coordinates.
    """

    filters: int
    channels: int
    kernel: int
    across: bool
    scale: int = 4
    gap: int = 1
    block_gap: int = 3

    @property
    def tile(self) -> int:
        """Pixels of a tile's side."""
        return self.kernel * self.scale

    @property
    def block_size(self) -> tuple[int, int]:
        """(height, width) of one filter's block in pixels."""
        long = self.channels * self.tile + (self.channels - 1) * self.gap
        return (self.tile, long) if self.across else (long, self.tile)

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) of the mosaic in pixels."""
        height, width = self.block_size
        return height, self.filters * width + (self.filters - 1) * self.block_gap

    @property
    def units(self) -> tuple[float, float]:
        """(width, height) of the mosaic in plot units (cells)."""
        height, width = self.shape
        return width / self.scale, height / self.scale

    def allocate(self) -> np.ndarray:
        return np.full(self.shape, np.nan)

    def tile_pixel(self, f: int, c: int) -> tuple[int, int]:
        """(y, x) of the top-left pixel of tile (f, c)."""
        x = f * (self.block_size[1] + self.block_gap)
        step = c * (self.tile + self.gap)
        return (0, x + step) if self.across else (step, x)

    def tile_origin(self, f: int, c: int) -> tuple[float, float]:
        """(x, y) of the top-left corner of tile (f, c) in plot units."""
        y, x = self.tile_pixel(f, c)
        return x / self.scale, y / self.scale

    def tile_centre(self, f: int, c: int) -> tuple[float, float]:
        x, y = self.tile_origin(f, c)
        return x + self.kernel / 2, y + self.kernel / 2

    def block_centre(self, f: int) -> tuple[float, float]:
        """(x, y) of the centre of filter f's block."""
        height, width = self.block_size
        x = f * (width + self.block_gap)
        return (x + width / 2) / self.scale, height / 2 / self.scale

    def cell_centre(self, f: int, c: int, i: int, j: int) -> tuple[float, float]:
        x, y = self.tile_origin(f, c)
        return x + j + 0.5, y + i + 0.5

    def cell_pixel(self, f: int, c: int, i: int, j: int) -> tuple[int, int]:
        """(y, x) index into the mosaic array of a pixel inside cell [i, j] of tile (f, c)."""
        y, x = self.tile_pixel(f, c)
        half = self.scale // 2
        return y + i * self.scale + half, x + j * self.scale + half

    def tile_rects(self) -> list[tuple[float, float, float, float]]:
        """(x, y, width, height) of every tile in plot units, filter by filter."""
        return [
            (*self.tile_origin(f, c), float(self.kernel), float(self.kernel))
            for f in range(self.filters)
            for c in range(self.channels)
        ]

    def grid_lines(self) -> tuple[np.ndarray, np.ndarray]:
        """x, y arrays (connect='pairs') of the cell borders inside every tile."""
        xs, ys = [], []
        k = self.kernel
        for x0, y0, _, _ in self.tile_rects():
            for step in range(1, k):
                xs += [x0 + step, x0 + step, x0, x0 + k]
                ys += [y0, y0 + k, y0 + step, y0 + step]
        return np.array(xs, dtype=np.float64), np.array(ys, dtype=np.float64)

    def data_rect(self) -> QRectF:
        width, height = self.units
        return QRectF(0.0, 0.0, width, height)

    @cached_property
    def _index(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mosaic (y, x) of every cell pixel and the flat weight index drawn there."""
        s, k = self.scale, self.kernel
        f, c, i, j, dy, dx = np.indices((self.filters, self.channels, k, k, s, s)).reshape(6, -1)
        origins = np.array(
            [[self.tile_pixel(ff, cc) for cc in range(self.channels)] for ff in range(self.filters)]
        )
        y = origins[f, c, 0] + i * s + dy
        x = origins[f, c, 1] + j * s + dx
        source = ((f * self.channels + c) * k + i) * k + j
        return y, x, source

    def fill(self, mosaic: np.ndarray, values: np.ndarray) -> None:
        """Write ``values`` (F, C, K, K) into ``mosaic`` (from ``allocate``)."""
        y, x, source = self._index
        mosaic[y, x] = np.asarray(values, dtype=np.float64).reshape(-1)[source]

    def locate(self, x: float, y: float) -> tuple[int, int, int, int] | None:
        """(f, c, i, j) of the cell under plot point (x, y), or None over a gap/outside."""
        if not (math.isfinite(x) and math.isfinite(y)) or x < 0 or y < 0:
            return None
        px, py = x * self.scale, y * self.scale
        height, width = self.block_size
        f, inner_x = divmod(px, width + self.block_gap)
        if f >= self.filters or inner_x >= width or py >= height:
            return None
        along = inner_x if self.across else py
        c, inner = divmod(along, self.tile + self.gap)
        if inner >= self.tile:
            return None
        tile_x = inner if self.across else inner_x
        tile_y = py if self.across else inner
        return int(f), int(c), int(tile_y // self.scale), int(tile_x // self.scale)


@dataclass
class _Group:
    """The items of one strip; inner items are rebuilt on session reset."""

    name: str
    widget: pg.GraphicsLayoutWidget
    caption: plotting.CaptionItem
    plot: pg.PlotItem
    image: pg.ImageItem
    bar: pg.ColorBarItem
    frame: pg.PlotCurveItem
    grid: pg.PlotCurveItem
    message: pg.TextItem
    title: str
    subtitle: str
    scale_text: str = ""
    buffer: np.ndarray | None = None
    cells: plotting.CellTexts = field(default_factory=plotting.CellTexts)
    has_texts: bool = False  # (few enough cells to write their values: TEXT_CELL_BUDGET)
    formats: tuple = ()
    light: np.ndarray | None = None
    fit: plotting.CellFit | None = None
    values: np.ndarray | None = None
    limit: float = 1.0
    ticks: tuple = ()


@dataclass(frozen=True)
class _Geometry:
    """Screen size of one cell and the plot width that shows the mosaic at that size."""

    cell_width: float
    cell_height: float
    plot_width: float
    plot_height: float
    with_text: bool


class FiltersView(ScaledRecordView, QWidget):
    """Heatmaps of every filter's weights, gradient and update per input channel.

    Parameters
    ----------
    controller : inspector.controller.SessionController
        Observed only: its ``session_reset`` and ``record_shown`` signals redraw this view.
    """

    def __init__(self, controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("filtersView")
        self._controller = controller
        self._record: StepRecord | None = None
        self._shape: tuple[int, ...] | None = None
        self._layout: FilterLayout | None = None
        self._geometry: _Geometry | None = None
        self._limits = {name: 1.0 for name in GROUP_NAMES}
        self._scale_link: plotting.ScaleLink | None = None
        self._stale = False
        # The cell under the mouse (filter, channel, row, column), its read-out shown for
        # every record drawn while it stays there.
        self._hovered: tuple[int, int, int, int] | None = None
        self._zoomed = False
        self._channel_ticks: list = []  # the letters beside "down" tiles (_tick_spacing)
        self._spacing: tuple | None = None  # ((layout, geometry), every): _tick_spacing
        self._hint = READOUT_HINT
        self._texts_suspended = False  # hidden while a fast run shows records (TEXT_MAX_RATE)
        self._timed_record: StepRecord | None = None  # the last new record drawn, and when
        self._timed_at = -math.inf
        self._record_gap = math.inf  # average time between new records
        self._arrange_timer = QTimer(self)
        self._arrange_timer.setSingleShot(True)
        self._arrange_timer.timeout.connect(self._arrange)

        self._build_controls()
        self._groups = {
            name: self._build_group(name, title, subtitle) for name, _, _, title, subtitle in GROUPS
        }
        self._build_layout()

        controller.session_reset.connect(self._on_session_reset)
        controller.record_shown.connect(self.show_record)
        controller.running_changed.connect(self._on_running_changed)
        self._rebuild(controller.shown)
        self.show_record(controller.shown)

    # -- public ------------------------------------------------------------------------------

    def plot_items(self) -> dict[str, pg.GraphicsLayout]:
        """Each group's strip (name and scale, heatmap, colour bar), for export; a hidden view
        first draws the record it skipped, so that what is saved is the shown iteration."""
        self._catch_up()
        return {plot_name: self._groups[name].widget.ci for name, _, plot_name, _, _ in GROUPS}

    def current_limits(self) -> dict[str, float]:
        """The ± colour limit each group is drawn with now ('weights', 'gradient', 'update')."""
        return dict(self._limits)

    def mosaic_layout(self) -> FilterLayout | None:
        """Where each weight lies in every group's mosaic (see the module docstring)."""
        return self._layout

    def image_item(self, name: str) -> pg.ImageItem:
        return self._groups[name].image

    def plot(self, name: str) -> pg.PlotItem:
        return self._groups[name].plot

    def cell_texts(self, name: str) -> plotting.CellTexts:
        """The item writing a group's cell values, in weight order [f, c, i, j] (no cells when the
        filters have too many cells to write in)."""
        return self._groups[name].cells

    def scale_labels(self) -> dict[str, str]:
        """The colour scale written under each group's name, e.g. '±65,201.4\\nper iteration'."""
        return {name: group.scale_text for name, group in self._groups.items()}

    def message_visible(self, name: str) -> bool:
        """Whether group ``name`` shows the 'no update yet' message instead of values."""
        return self._groups[name].message.isVisible()

    def _draw_record(self, record: StepRecord) -> None:
        """Draw ``record``: heatmaps, colour bars, scale labels, cell values and the equation."""
        self._stale = False
        if record.params["conv.weight"].shape != self._shape:
            self._rebuild(record)
        values = self._group_values(record)
        limits = self._chosen_limits(record, values)
        if self._scale_link is not None:
            limits = self._scale_link.shared(self, limits)
        # An all-zero group still needs a scale to draw its (white) cells.
        self._limits = {name: value if value > 0 else 1.0 for name, value in limits.items()}
        for name, group in self._groups.items():
            self._draw_group(group, values[name], self._limits[name])
        self._sync_widths()
        self._update_filter_ticks(record)
        self._time_record()
        fast = self._controller.is_running and self._too_fast()
        # The equation can be selected (to copy its numbers) unless a run replaces it too
        # fast to select.
        self._equation.set_selectable(not fast)
        self._update_equation(record)
        self._request_texts(fast)
        self._show_readout()

    @Slot()
    def reset_zoom(self) -> None:
        """Show all tiles of every group again (and keep them fitted as the panel resizes)."""
        self._zoomed = False
        self._fit_views()

    # -- construction ------------------------------------------------------------------------

    def _build_controls(self) -> None:
        # Elided: at 1024 pixels "Iteration 1 · 1 filter of 3×3×3" ran under the scale box.
        heading = ElidedLabel(self)
        heading.setObjectName("filtersHeading")
        heading.setTextFormat(Qt.TextFormat.PlainText)
        self._build_scale_controls(
            heading,
            "filter",
            SCALE_TIPS,
            mode_tip="How the colour scale of the heatmaps is chosen; the limit in use is "
            "written under each heatmap's name and on its colour bar",
            custom_tip="Custom colour limit: values beyond ± this are drawn in the end colours "
            "and counted under the heatmap's name",
            custom_prefix="± ",
        )

        self._fit = QToolButton(self)
        self._fit.setObjectName("filtersResetZoom")
        self._fit.setText("Fit")
        self._fit.setToolTip("Show every filter again after zooming (Ctrl+wheel) or panning")
        self._fit.clicked.connect(self.reset_zoom)

        self._equation = SelectableLabel(self)
        self._equation.setObjectName("filtersEquation")
        self._equation.setTextFormat(Qt.TextFormat.PlainText)
        self._equation.setWordWrap(True)
        self._equation.setToolTip("The update of the shown iteration, with its numbers")

        # Elided ('…', the whole line in its tooltip) rather than cut off in a narrow panel.
        self._readout = ElidedLabel(self)
        self._readout.setText(READOUT_HINT)
        self._readout.setObjectName("filtersReadout")
        self._readout.setTextFormat(Qt.TextFormat.PlainText)
        self._readout.setStyleSheet(f"color: {plotting.MUTED};")
        self._readout.setMinimumWidth(10)

    def _build_group(self, name: str, title: str, subtitle: str) -> _Group:
        widget = pg.GraphicsLayoutWidget(self)
        widget.setObjectName(f"filters{name.capitalize()}Plot")
        widget.setMinimumSize(160, 48)
        widget.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        plotting.style_graphics_widget(widget)
        root = widget.ci
        root.setContentsMargins(STRIP_MARGIN, STRIP_MARGIN, STRIP_MARGIN, STRIP_MARGIN)
        root.layout.setHorizontalSpacing(STRIP_SPACING)
        root.layout.setVerticalSpacing(0)

        caption = plotting.CaptionItem(11)
        image = plotting.new_image_item(DIVERGING_LUT)
        plot = plotting.image_plot(image, text_axes=("top", "bottom", "left"))
        plot.layout.setContentsMargins(0, 0, 0, 0)
        plot.vb.disableAutoRange()
        plot.hideAxis("left")
        plot.hideAxis("bottom")
        plot.showAxis("top")
        for side in ("top", "bottom"):
            plot.getAxis(side).setHeight(AXIS_HEIGHT)
        plot.getAxis("left").setWidth(LEFT_AXIS_WIDTH)
        for side in ("top", "left"):
            plot.getAxis(side).setStyle(tickFont=plotting.font(12, bold=True))
        frame = pg.PlotCurveItem(connect="pairs", pen=pg.mkPen(plotting.TILE_FRAME, width=1))
        frame.setZValue(6)
        grid = pg.PlotCurveItem(connect="pairs", pen=pg.mkPen(plotting.TILE_FRAME, width=1))
        grid.setZValue(5)
        plot.addItem(grid)
        plot.addItem(frame)
        message = pg.TextItem(NO_UPDATE_MESSAGE, color=plotting.FOREGROUND, anchor=(0.5, 0.5))
        message.setFont(plotting.font(12))
        message.fill = pg.mkBrush(255, 255, 255, 235)
        message.border = pg.mkPen(plotting.MUTED)
        message.setZValue(20)
        message.setVisible(False)
        plot.addItem(message)
        plot.vb.sigResized.connect(lambda _box, name=name: self._fit_message(name))
        bar = plotting.colour_bar(plotting.DIVERGING_COLORMAP, width=BAR_WIDTH)
        root.addItem(caption, row=0, col=0)
        root.addItem(plot, row=0, col=1)
        root.addItem(bar, row=0, col=2)
        root.addLayout(row=0, col=3)
        for col in range(3):
            root.layout.setColumnStretchFactor(col, 0)
        root.layout.setColumnStretchFactor(3, 1)
        group = _Group(
            name, widget, caption, plot, image, bar, frame, grid, message, title, subtitle
        )
        group.cells.setZValue(10)
        group.cells.setVisible(False)
        plot.addItem(group.cells)
        plot.vb.sigResized.connect(lambda _vb, g=group: self._on_view_resized(g))
        plot.vb.sigRangeChangedManually.connect(self._on_zoomed)
        plot.vb.sigRangeChanged.connect(lambda *_args: self._fit_texts())
        widget.scene().sigMouseMoved.connect(lambda pos, g=group: self._on_hover(g, pos))
        widget.viewport().installEventFilter(self)
        return group

    def _build_layout(self) -> None:
        controls = self._scale_controls_row()
        controls.addWidget(self._fit)

        self._plots = QWidget(self)
        self._plots.setObjectName("filtersPlots")
        strips = QVBoxLayout(self._plots)
        strips.setContentsMargins(0, 0, 0, 0)
        strips.setSpacing(STRIPS_SPACING)
        for group in self._groups.values():
            strips.addWidget(group.widget, 1)
        # The texts follow the strips directly; room the strips do not need stays below.
        strips.addSpacing(TEXT_SPACING)
        strips.addWidget(self._readout)
        strips.addSpacing(TEXT_SPACING)
        self._equation_guard = LayoutGuard(self._equation, self._plots)
        strips.addWidget(self._equation_guard)
        strips.addStretch(0)
        self._plots.installEventFilter(self)
        self._text_height = 0
        self._equation_lines: tuple[int, ...] = ()
        # The equation's height only grows while the width stays, so that the strips above
        # do not jump when an iteration's numbers wrap onto one more line.
        self._equation_floor = (0, 0)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(4)
        layout.addLayout(controls)
        layout.addWidget(self._plots, 1)

    def _on_session_reset(self, record: StepRecord) -> None:
        self._rebuild(record)
        self.show_record(record)

    def _rebuild(self, record: StepRecord) -> None:
        """Create the items that depend on F and K (cell texts), then lay the mosaics out."""
        weights = record.params["conv.weight"]
        filters, channels, kernel, _ = weights.shape
        # A run of the same shape (Reset, a new seed) keeps the cell texts: making and adding
        # 27 of them per heatmap was most of a Reset's 70 ms, and Reset held down queued up.
        same_shape = weights.shape == self._shape
        self._record = record
        self._shape = weights.shape
        self._layout = None
        self._geometry = None
        with_text = filters * channels * kernel * kernel <= TEXT_CELL_BUDGET
        for group in self._groups.values():
            group.formats = ()
            group.fit = None
            group.ticks = ()
            if same_shape:
                continue  # (the record shown next writes or hides every text)
            # Cells to write in, or none: placed when the layout is (_apply_layout).
            group.cells.setVisible(False)
            group.cells.set_cells([], QRectF())
            group.has_texts = with_text
        self._arrange()

    # -- arrangement -------------------------------------------------------------------------

    def _arrange(self) -> None:
        """Pick the layout of the blocks (across / down) and the cells' screen size that show
        the filters largest in the space the strips have: table-like cells wide enough for the
        values while there are few enough cells to write, square cells otherwise."""
        if self._shape is None:
            return
        width, height = self._plots.width(), self._plots.height()
        if not self._plots.isVisible() or width < 60 or height < 60:
            width, height = 620, 300  # not laid out yet: the size the window gives first
        filters, channels, kernel, _ = self._shape
        self._text_height = self._texts_height(width)
        self._equation_lines = self._equation_shape(self._equation.text())
        strip = (height - self._text_height - 2 * STRIPS_SPACING) / 3
        with_text = self._groups["weights"].has_texts
        best_key, best = None, None
        for across in (True, False):
            scale = plotting.tile_scale(kernel)
            layout = FilterLayout(
                filters, channels, kernel, across, scale=scale, block_gap=max(2, 3 * scale // 4)
            )
            for table in (True, False) if with_text else (False,):
                geometry = self._geometry_for(layout, width, strip, table)
                fit = None
                if table:
                    fit = plotting.fit_cell_texts(
                        [CELL_TEMPLATE], geometry.cell_width, geometry.cell_height
                    )
                    if fit is None:
                        continue
                cell = min(geometry.cell_width, geometry.cell_height)
                if filters > 1 and not across:
                    # Columns of filters with R, G, B once beside them read more easily than
                    # a row of R G B triples: preferred unless the triples are clearly larger.
                    cell *= DOWN_PREFERENCE
                key = (fit is not None, fit.size if fit else 0, round(cell, 1), across)
                if best_key is None or key > best_key:
                    best_key, best = key, (layout, geometry)
        layout, geometry = best
        if layout != self._layout:
            self._apply_layout(layout)
        if geometry != self._geometry:
            self._geometry = geometry
            ratio = geometry.cell_width / geometry.cell_height
            for group in self._groups.values():
                # The plot and its bar as high as the mosaic needs, so that labels stay next
                # to the tiles; a strip is no higher than they are (spare room goes below).
                group.plot.setFixedWidth(geometry.plot_width)
                group.plot.setFixedHeight(geometry.plot_height)
                group.bar.setFixedHeight(geometry.plot_height)
                group.widget.setMaximumHeight(int(geometry.plot_height) + 2 * STRIP_MARGIN + 2)
                group.plot.vb.setAspectLocked(True, ratio=ratio)
            if not self._zoomed:
                self._fit_views()
        if self._record is not None:
            self._update_filter_ticks(self._record)

    def _fit_message(self, name: str) -> None:
        """Show the longest no-update message that fits its mosaic while the group has no
        values; hide it where none fits (the view box would cut it)."""
        group = getattr(self, "_groups", {}).get(name)  # not yet while the groups are built
        if group is None:
            return
        message = group.message
        if group.values is not None:
            message.setVisible(False)
            return
        metrics = QFontMetrics(message.textItem.font())
        box = group.plot.vb
        room = box.width() - 16  # the message's border and padding
        texts = (NO_UPDATE_MESSAGE, *NO_UPDATE_SHORTER)
        text = next((t for t in texts if metrics.horizontalAdvance(t) <= room), None)
        padding = 2 * message.textItem.document().documentMargin() + 1  # and the border
        if metrics.height() + padding > box.height():
            text = None
        if text is not None and message.textItem.toPlainText() != text:
            message.setText(text)
        message.setVisible(text is not None)

    def _equation_shape(self, text: str) -> tuple[int, ...]:
        """Screen lines each of the equation's lines takes, roughly (a change signal)."""
        metrics = self._equation.fontMetrics()
        width = max(self._plots.width(), 60)
        return tuple(1 + int(metrics.horizontalAdvance(line) // width) for line in text.split("\n"))

    def _texts_height(self, width: int) -> int:
        """Height of the read-out and equation lines under the strips at ``width``: the
        tallest the equation has been at this width (it then keeps that room)."""
        width = max(width, 60)
        wrapped = self._equation.fontMetrics().boundingRect(
            QRect(0, 0, width, 100_000), Qt.TextFlag.TextWordWrap, self._equation.text()
        )
        margins = self._equation.contentsMargins()
        equation = wrapped.height() + margins.top() + margins.bottom()
        floor_width, floor = self._equation_floor
        if floor_width == width:
            equation = max(equation, floor)
        self._equation_floor = (width, equation)
        self._equation.setMinimumHeight(equation)
        self._equation_guard.sync()
        return self._readout.sizeHint().height() + equation + 2 * TEXT_SPACING + STRIPS_SPACING

    def _geometry_for(
        self, layout: FilterLayout, width: float, strip: float, table: bool
    ) -> _Geometry:
        units_w, units_h = layout.units
        axes_h = AXIS_HEIGHT * (2 if layout.across and layout.filters > 1 else 1)
        axes_w = 0 if layout.across else LEFT_AXIS_WIDTH
        group = self._groups["weights"]
        fixed = (
            group.caption.natural_width()
            + plotting.bar_width(group.bar)
            + axes_w
            + 2 * STRIP_MARGIN
            + 3 * STRIP_SPACING
            + 4
        )
        free_w = max(width - fixed, 10.0)
        free_h = max(strip - axes_h - 2 * STRIP_MARGIN - 2, 10.0)
        unit_w = free_w / (units_w * (1 + 2 * PADDING))
        unit_h = free_h / (units_h * (1 + 2 * PADDING))
        if table:
            cell_h = min(unit_h, unit_w)
            cell_w = min(unit_w, MAX_CELL_RATIO * cell_h)
        else:
            cell_w = cell_h = min(unit_w, unit_h)
        plot_width = math.ceil(axes_w + units_w * (1 + 2 * PADDING) * cell_w) + 1
        plot_height = math.ceil(axes_h + units_h * (1 + 2 * PADDING) * cell_h) + 1
        return _Geometry(cell_w, cell_h, plot_width, plot_height, table)

    def _apply_layout(self, layout: FilterLayout) -> None:
        """Buffers, tile frames, cell grids, text positions and axes for ``layout``."""
        self._layout = layout
        frame_x, frame_y = plotting.frame_pairs(layout.tile_rects())
        grid_x, grid_y = layout.grid_lines()
        centre = layout.data_rect().center()
        shape = (layout.filters, layout.channels, layout.kernel, layout.kernel)
        names = plotting.CHANNEL_NAMES
        if layout.across:
            channel_ticks = [
                (layout.tile_centre(f, c)[0], names[c])
                for f in range(layout.filters)
                for c in range(layout.channels)
            ]
        else:
            channel_ticks = [
                (layout.tile_centre(0, c)[1], names[c]) for c in range(layout.channels)
            ]
        for group in self._groups.values():
            group.buffer = layout.allocate()
            group.image.setImage(group.buffer, levels=(-1.0, 1.0))
            group.image.setRect(layout.data_rect())
            group.frame.setData(frame_x, frame_y)
            group.grid.setData(grid_x, grid_y)
            group.message.setPos(QPointF(centre.x(), centre.y()))
            if group.has_texts:
                centres = [layout.cell_centre(*index) for index in np.ndindex(shape)]
                group.cells.set_cells(centres, layout.data_rect())
                group.cells.setVisible(False)
                group.fit = None  # (blank cells: written again)
            plot = group.plot
            plot.showAxis("left", not layout.across)
            plot.showAxis("bottom", layout.across and layout.filters > 1)
            channel_axis = plot.getAxis("top" if layout.across else "left")
            channel_axis.setTicks([channel_ticks])
            group.ticks = ()
        self._channel_ticks = channel_ticks
        self._spacing = None  # (the letters are back: _tick_spacing looks again)
        if self._record is not None:
            values = self._group_values(self._record)
            for name, group in self._groups.items():
                self._draw_group(group, values[name], self._limits[name])
        self._fit_texts(force=True)  # (the cells are new: their texts and the hint)
        self._update_hint()

    def _fit_views(self) -> None:
        if self._layout is None:
            return
        for group in self._groups.values():
            group.plot.vb.setRange(rect=self._layout.data_rect(), padding=PADDING)

    def _sync_widths(self) -> None:
        """Give the three strips' captions and colour bars one width, so that their heatmaps
        line up; lay out again when that width grew."""
        groups = self._groups.values()
        caption = max(group.caption.natural_width() for group in groups)
        axis = max(plotting.axis_width(group.bar.axis) for group in groups)
        changed = False
        for group in groups:
            if group.caption.minimumWidth() != caption:
                group.caption.set_fixed_width(caption)
                changed = True
            if plotting.axis_width(group.bar.axis) != axis:
                group.bar.axis.setWidth(int(axis))
                changed = True
        if changed:
            self._geometry = None
            self._arrange_timer.start(0)

    # -- drawing -----------------------------------------------------------------------------

    @staticmethod
    def _group_values(record: StepRecord) -> dict[str, np.ndarray | None]:
        values = {}
        for name, attribute, *_ in GROUPS:
            arrays = getattr(record, attribute)
            values[name] = None if arrays is None else np.asarray(arrays["conv.weight"])
        return values

    def _chosen_limits(self, record: StepRecord, values) -> dict[str, float]:
        mode = self._scale_mode.currentText()
        if mode == "Custom":
            return {name: float(self._custom.value()) for name in GROUP_NAMES}
        limits = {}
        columns = (
            self._controller.metric_columns(list(RUN_METRICS.values()))
            if mode == "Whole run"
            else {}
        )
        for name in GROUP_NAMES:
            current = values[name]
            largest = 0.0 if current is None else _finite_absmax(current)
            if mode == "Whole run":
                largest = max(largest, _finite_absmax(columns[RUN_METRICS[name]]))
            limits[name] = largest
        return limits

    def _draw_group(self, group: _Group, values: np.ndarray | None, limit: float) -> None:
        group.values = values
        group.limit = limit
        if values is None:
            group.buffer.fill(np.nan)
        else:
            self._layout.fill(group.buffer, values)
        group.image.setImage(group.buffer, levels=(-limit, limit))
        self._fit_message(group.name)
        group.frame.setVisible(values is not None)
        # Transparent rather than hidden: a hidden bar's axis loses its width for good.
        group.bar.setOpacity(1.0 if values is not None else 0.0)
        self._show_grid(group)
        plotting.set_bar_range(
            group.bar,
            -limit,
            limit,
            [(-limit, format_number(-limit)), (0.0, "0"), (limit, format_number(limit))],
        )
        text = self._scale_text(values, limit)
        if text != group.scale_text:
            group.scale_text = text
            caption = group.caption
            lines = [caption.line(group.title, bold=True, size=13)]
            if group.subtitle:
                lines.append(caption.line(group.subtitle, ink=plotting.MUTED, optional=True))
            scale_lines = text.split("\n")
            lines.append(caption.line(scale_lines[0]))
            lines += [caption.line(line, ink=plotting.MUTED) for line in scale_lines[1:]]
            caption.set_lines(lines)

    def _show_grid(self, group: _Group) -> None:
        """Cell borders while cells are large enough on screen for them not to crowd."""
        cell = min(
            plotting.pixels_per_unit(group.plot.vb), plotting.pixels_per_unit(group.plot.vb, 1)
        )
        visible = group.values is not None and cell >= GRID_MIN_PIXELS
        if group.grid.isVisible() != visible:
            group.grid.setVisible(visible)

    def _scale_text(self, values: np.ndarray | None, limit: float) -> str:
        """The lines under a group's name: its ± limit (or why there is none) and the mode."""
        if values is None:
            return "no update yet"
        mode = self._scale_mode.currentText()
        finite = np.isfinite(values)
        nonfinite = int(values.size - np.count_nonzero(finite))
        if not np.any(values[finite]):
            first = "all values are 0" if nonfinite == 0 else "no finite value ≠ 0"
            lines = [first, f"scale ±{format_number(limit)}"]
        else:
            word = SCALE_WORDS[mode] + (", shared" if self._scale_link is not None else "")
            # ("colour": the range of the colours, not of the weights; all-positive weights
            # in 0..1 read "±0.98" as zero-centred)
            lines = [f"colour ±{format_number(limit)}", word]
        if mode == "Custom":
            with np.errstate(invalid="ignore"):
                beyond = int(np.count_nonzero(np.abs(values[finite]) > limit))
            if beyond:
                lines.append(f"{beyond} clipped")
        if nonfinite:
            lines.append(f"{nonfinite} not finite")
        return "\n".join(lines)

    def _update_filter_ticks(self, record: StepRecord) -> None:
        """Filter numbers (dead ones marked) over or under their blocks."""
        layout, geometry = self._layout, self._geometry
        if layout is None:
            return
        filters = layout.filters
        block_pixels = (
            layout.block_size[1] / layout.scale * (geometry.cell_width if geometry else 1)
        )
        side = "bottom" if layout.across else "top"
        labels = []
        for f in range(filters):
            dead = f < len(record.dead_since) and record.dead_since[f] is not None
            if block_pixels >= 110:
                labels.append(f"filter {f}" + (" (dead)" if dead else ""))
            elif block_pixels >= 60:
                labels.append(f"filter {f}" + (" ✝" if dead else ""))
            else:
                labels.append(f"{f}" + ("✝" if dead else ""))
        every = self._tick_spacing(layout, geometry, block_pixels, side)
        ticks = tuple((layout.block_centre(f)[0], labels[f]) for f in range(0, filters, every))
        for group in self._groups.values():
            if group.ticks != ticks:
                group.ticks = ticks
                group.plot.getAxis(side).setTicks([list(ticks)])

    def _tick_spacing(
        self, layout: FilterLayout, geometry: _Geometry | None, block_pixels: float, side: str
    ) -> int:
        """Every how many blocks a filter number stands: blocks narrower than their numbers (64
        filters in a narrow panel) are numbered every 2nd, 5th, 10th, ... block, so that the
        numbers never run into each other. Also drops the channel letters beside "down" tiles
        lower than a letter. Worked out again only when the layout or the cells' size changed
        (the ticks are updated with every record drawn)."""
        key = (layout, geometry)
        if self._spacing is not None and self._spacing[0] == key:
            return self._spacing[1]
        metrics = QFontMetricsF(self._groups["weights"].plot.getAxis(side).style["tickFont"])
        # (measured without the dead marks: those may touch a neighbour, as they always did,
        # rather than leave the dead filters unnumbered)
        widths = [
            metrics.horizontalAdvance(f"filter {f}" if block_pixels >= 60 else str(f))
            for f in range(layout.filters)
        ]
        # (the distance between the centres of two blocks: a block and the gap after it)
        pitch = block_pixels * (1 + layout.block_gap / layout.block_size[1])

        def apart(k: int) -> bool:  # every k-th label clear of the next one shown
            shown = widths[::k]
            pairs = zip(shown, shown[1:], strict=False)
            return all((a + b) / 2 + 3 <= k * pitch for a, b in pairs)

        every = next((k for k in (1, 2, 5, 10, 20, 50, 100) if apart(k)), layout.filters)
        if not layout.across and geometry is not None:
            # Tiles lower than a letter (many filters in a small panel): no letters, rather
            # than R, G and B written over each other (the hover read-out names the channel).
            letters = QFontMetricsF(self._groups["weights"].plot.getAxis("left").style["tickFont"])
            names = plotting.CHANNEL_NAMES
            if layout.kernel * geometry.cell_height < letters.height():
                channel_ticks = []
            else:
                channel_ticks = [(layout.tile_centre(0, c)[1], names[c]) for c in range(3)]
            if channel_ticks != self._channel_ticks:
                self._channel_ticks = channel_ticks
                for group in self._groups.values():
                    group.plot.getAxis("left").setTicks([channel_ticks])
        self._spacing = (key, every)
        return every

    def _update_equation(self, record: StepRecord) -> None:
        weights = np.asarray(record.params["conv.weight"])
        bias = np.asarray(record.params["conv.bias"])
        filters, _, kernel, _ = weights.shape
        heading = (
            f"Iteration {record.iteration} · {filters} filter{'s' if filters != 1 else ''} "
            f"of 3×{kernel}×{kernel}"
        )
        self._heading.setText(heading)
        if record.update is None:
            weights_file = self._controller.config.initial_weights
            start = (
                ""
                if weights_file is None
                else f", its weights read from {readable(weights_file.name)}"
            )
            lines = [
                f"Iteration 0 is the starting point{start}: no gradient and no update yet. "
                "Press Step (F10) to make the first update.",
                f"Weights {_range(weights)} · conv bias {_values(bias)}",
            ]
        else:
            update = np.asarray(record.update["conv.weight"])
            gradient = np.asarray(record.grads["conv.weight"])
            weights_before, bias_before = (
                _before(record, "conv.weight"),
                _before(record, "conv.bias"),
            )
            images = batch_text(record.batch, self._controller.dataset)
            lines = [
                f"Iteration {record.iteration}, computed on {images}{self._dead_text(record)}:",
                self._rule_text(record, gradient, update),
                f"Weights {_range(weights_before)} → {_range(weights)} · conv bias "
                f"{_values(bias_before)} → {_values(bias)}",
            ]
        text = "\n".join(lines)
        if self._equation.text() != text:
            self._equation.setText(text)
            # Measuring the wrapped label is slow; its lines' widths say when it may change.
            shape = self._equation_shape(text)
            if shape != self._equation_lines:
                self._equation_lines = shape
                if self._texts_height(self._plots.width()) > self._text_height:
                    self._arrange()

    @staticmethod
    def _dead_text(record: StepRecord) -> str:
        dead = record.dead_filters
        if len(dead) == 1:
            return f" · filter {dead[0]} dead since iteration {record.dead_since[dead[0]]}"
        if dead:
            return f" · {len(dead)} filters dead (✝)"
        return ""

    @staticmethod
    def _rule_text(record: StepRecord, gradient: np.ndarray, update: np.ndarray) -> str:
        settings = record.settings
        lr = format_number(settings.learning_rate)
        clipped = record.clip_scale != 1.0
        velocity = None if record.velocity is None else record.velocity.get("conv.weight")
        if settings.momentum and velocity is not None:
            text = (
                f"update = -lr × velocity = {format_product(f'-{lr}', velocity, update)}, "
                f"velocity = {format_number(settings.momentum)} × previous velocity + "
                f"{'clipped ' if clipped else ''}gradient {_range(gradient)}"
            )
        elif clipped:
            factors = f"-{lr} × {format_number(record.clip_scale)}"
            text = f"update = -lr × clip × gradient = {format_product(factors, gradient, update)}"
        else:
            text = f"update = -lr × gradient = {format_product(f'-{lr}', gradient, update)}"
        if clipped:
            text += (
                f" (gradient norm above {format_number(settings.clip_norm)}: scaled by "
                f"{format_number(record.clip_scale)})"
            )
        return text

    # -- cell values -------------------------------------------------------------------------

    def _time_record(self) -> None:
        """Average the time between the records drawn (``_too_fast``)."""
        record = self._record
        if record is not self._timed_record:  # (not the same one drawn again: a scale change)
            now = time.monotonic()
            gap = now - self._timed_at
            self._timed_record, self._timed_at = record, now
            average = self._record_gap
            self._record_gap = gap if not math.isfinite(average) else 0.7 * average + 0.3 * gap

    def _request_texts(self, fast: bool) -> None:
        """Rewrite the cells for the record just drawn, or hide them while the run shows
        records too fast to read (``fast``: ``TEXT_MAX_RATE``): a cell never shows another
        record's number than its colour."""
        if not any(group.has_texts for group in self._groups.values()):
            return
        if fast:
            if not self._texts_suspended:
                self._texts_suspended = True
                for group in self._groups.values():
                    self._write_cells(group, None, force=True)  # (no fit: hidden)
                self._update_hint()
            return
        self._update_texts()

    def _too_fast(self) -> bool:
        rate = self._controller.iterations_per_second
        if rate > 0:
            return rate > TEXT_MAX_RATE
        limit = TEXT_SHOW_GAP_S if self._texts_suspended else TEXT_HIDE_GAP_S
        return self._record_gap < limit

    def _on_running_changed(self, running: bool) -> None:
        """When training stops, write the cells of the last record now and let the equation be
        selected again; when it starts, its records' pace is its own (not averaged with the
        pause before)."""
        if running:
            self._timed_at, self._record_gap = -math.inf, math.inf
            return
        self._equation.set_selectable(True)
        if self._texts_suspended:
            self._update_texts()

    def _update_texts(self) -> None:
        self._texts_suspended = False
        for group in self._groups.values():
            if not group.has_texts:
                continue
            if group.values is None:
                group.formats = ()
            else:
                group.formats = plotting.cell_formats(group.values)
                group.light = plotting.light_cells(group.values.reshape(-1), group.limit)
        self._fit_texts(force=True)
        self._update_hint()

    def _fit_texts(self, force: bool = False) -> None:
        """Write the cell values in the most exact format and the largest font (9..14 px)
        their cells hold on screen (``plotting.fit_cell_texts``), hidden when nothing fits
        (the hover read-out still gives every value). While no heatmap is zoomed, the three
        share the smallest of their sizes, so that the table reads as one."""
        if self._texts_suspended:
            return  # (hidden while the run is fast: see _request_texts)
        fits = {}
        for name, group in self._groups.items():
            self._show_grid(group)
            if group.has_texts and group.formats:
                fits[name] = plotting.fit_cell_texts(group.formats, *self._cell_pixels(group))
        sizes = [fit.size for fit in fits.values() if fit is not None]
        if sizes and not self._zoomed:
            common = min(sizes)
            fits = {
                name: plotting.fit_cell_texts(
                    self._groups[name].formats, *self._cell_pixels(self._groups[name]), common
                )
                if fit is not None
                else None
                for name, fit in fits.items()
            }
        changed = False
        for name, group in self._groups.items():
            if group.has_texts:
                changed |= self._write_cells(group, fits.get(name), force)
        if changed:
            self._update_hint()

    @staticmethod
    def _cell_pixels(group: _Group) -> tuple[float, float]:
        view = group.plot.vb
        return plotting.pixels_per_unit(view), plotting.pixels_per_unit(view, 1)

    def _write_cells(self, group: _Group, fit: plotting.CellFit | None, force: bool) -> bool:
        """Show ``fit`` in the group's cells; returns whether the fit changed."""
        if fit == group.fit and not force:
            return False
        changed_fit = fit != group.fit
        group.fit = fit
        if fit is None:
            if group.cells.isVisible():
                group.cells.setVisible(False)
            return changed_fit
        if changed_fit:
            group.cells.set_font(plotting.cell_font(fit.size))
        strings = group.formats[fit.format]
        if fit.split:
            strings = [plotting.split_exponent(text) for text in strings]
        group.cells.set_texts(strings, group.light)
        if not group.cells.isVisible():
            group.cells.setVisible(True)
        return changed_fit

    def _update_hint(self) -> None:
        """The read-out line's hint, when no cell is hovered."""
        hidden = any(
            group.has_texts and group.formats and group.fit is None
            for group in self._groups.values()
        )
        too_many = any(
            not group.has_texts and group.values is not None for group in self._groups.values()
        )
        hint = READOUT_HINT
        if self._texts_suspended:
            hint = "Values hidden while the run is this fast: pause, or " + HOVER_HINT
        elif hidden:
            hint = "Cells too small for values: " + small_cells_hint()
        elif too_many:
            hint = "Too many cells for values: " + HOVER_HINT
        self._hint = hint
        self._show_readout()

    # -- interaction -------------------------------------------------------------------------

    def _on_zoomed(self, *_args) -> None:
        self._zoomed = True

    def _on_view_resized(self, group: _Group) -> None:
        if not self._zoomed and self._layout is not None:
            group.plot.vb.setRange(rect=self._layout.data_rect(), padding=PADDING)
        self._fit_texts()

    def _on_hover(self, group: _Group, scene_pos) -> None:
        cell = None
        if self._layout is not None and group.plot.vb.sceneBoundingRect().contains(scene_pos):
            point = group.plot.vb.mapSceneToView(scene_pos)
            cell = self._layout.locate(point.x(), point.y())
        self._hovered = cell
        self._show_readout()

    def _show_readout(self) -> None:
        """The hovered cell's values in the shown record (a Step while the mouse rests on a
        cell shows the new ones), else the hint."""
        cell = self._hovered
        shape = None if self._record is None else self._record.params["conv.weight"].shape
        if cell is not None and (
            shape is None or any(c >= n for c, n in zip(cell, shape, strict=True))
        ):
            cell = self._hovered = None
        text = self._hint if cell is None else self._cell_readout(*cell)
        if self._readout.text() != text:
            self._readout.setText(text)

    def _cell_readout(self, f: int, channel: int, i: int, j: int) -> str:
        record = self._record
        where = f"filter {f}, channel {plotting.CHANNEL_NAMES[channel]}, row {i}, col {j}"
        weight = float(record.params["conv.weight"][f, channel, i, j])
        if record.update is None:
            return f"{where}: weight {format_number(weight)} (no update yet)"
        update = float(record.update["conv.weight"][f, channel, i, j])
        gradient = float(record.grads["conv.weight"][f, channel, i, j])
        before = float(_before(record, "conv.weight")[f, channel, i, j])
        # (the gradient before the update, as in the equation: at 1280 pixels the end of the
        # line is cut, and it was the gradient, the number a learner hovers for)
        return (
            f"{where}: weight {format_number(before)} → {format_number(weight)}, "
            f"gradient {format_number(gradient)}, update {format_number(update)}"
        )

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt override)
        if watched is self._plots and event.type() in (QEvent.Type.Resize, QEvent.Type.Show):
            self._arrange()
        elif event.type() == QEvent.Type.Leave and self._hovered is not None:
            self._hovered = None  # the mouse left a group's plot: no cell is hovered
            self._show_readout()
        return super().eventFilter(watched, event)


def _before(record: StepRecord, key: str) -> np.ndarray:
    """The conv ``key`` array before the record's update, as kept (see
    ``StepRecord.conv_before``)."""
    return np.asarray(record.conv_before[key])


def _finite_absmax(values) -> float:
    """Largest finite |value| (0 when there is none)."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    return float(np.max(np.abs(finite))) if finite.size else 0.0


def _range(values) -> str:
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if not finite.size:
        return "[no finite value]"
    return format_range(finite.min(), finite.max())


def _values(values) -> str:
    """A few values listed, more as their range."""
    values = np.asarray(values).reshape(-1)
    if values.size <= 4:
        return "[" + ", ".join(format_number(v) for v in values) + "]"
    return _range(values)

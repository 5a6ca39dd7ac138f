"""The conv layer's output for every image: pre-activation maps and ReLU outputs.

Rows are images (a page of at most ``PAGE_SIZE``), columns are filters. Three panels share the
rows: the input thumbnails (with the true label, the prediction and the loss), the
pre-activation maps (conv output + bias, diverging colours centred on 0) and the activation
maps, where an output that is exactly 0 (a dead ReLU output: no gradient flows back through it)
is black and positive outputs run from pale yellow to dark blue. Every colour bar is labelled
with its numeric range, and the share of zero outputs is written per (image, filter) pair and
per filter; when every output is 0 a one-line banner says so.

Maps are drawn pixel for pixel (nearest neighbour) at the largest size the panel allows, but
never smaller than ``MIN_MAP_PIXELS``: when the page's rows do not fit the panel's height they
scroll (scroll bar, or the mouse wheel over the maps) under titles and colour bars that stay
in place; when the maps do not fit across at that size, or not even one row fits the height,
the whole panel scrolls (as the Curves panel does) rather than squash maps and labels.

Hovering a map pixel (or an image pixel) reads its values out over the footer. The read-out
always describes the pixel under the mouse in the shown record: it is read again when a new
record is drawn or the maps move under a mouse that stands still, and it gives way to the
summary when the mouse leaves the maps.

A saved map plot (``plot_items``) is a figure of its own: its title names what it shows and the
iteration (and which images, unless all), and each row is labelled with its image and its
share of zero (or negative) outputs (``export_texts``).

For leaky ReLU and identity activations the output maps use the diverging colours as well, and
the fractions written are of negative outputs.

The two map mosaics hold uint8 colour codes (``inspector.plotting.encode_diverging`` /
``encode_activation``): map [n, f] of the page lies in tile (row n, column f) of
``mosaic_layout()``. Only the rows in view are coded when a record is drawn; the others hold
the gap's code until they come into view, and a saved figure codes every row first.
"""

from __future__ import annotations

import math
import weakref

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QRectF, Qt, QTimer, Slot
from PySide6.QtGui import QCursor, QFontMetricsF
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QScrollBar,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from inspector import plotting
from inspector.layout_guard import LayoutGuard
from inspector.views.scaled import SCALE_WORDS, ScaledRecordView
from inspector.views.widgets import ElidedLabel, SelectableLabel, scroll_area
from model.formatting import format_number, format_share
from model.record import NO_PREDICTION, StepRecord, predicted_label

PAGE_SIZE = 16
SCALE_TIPS = (
    "Scaled to the largest value over all images in the shown iteration",
    "Scaled to the largest value in this run so far, so iterations compare by colour",
    "A fixed limit: pre-activations ± it, outputs 0 … it; values beyond take the end colours",
)
OUTPUT_NAMES = {"relu": "ReLU output", "leaky_relu": "leaky ReLU output", "identity": "output"}
RUN_METRICS = {"pre": "pre_activation_absmax", "output": "activation_max"}
TITLE_HEIGHT = 18
TOP_AXIS_HEIGHT = 18
BAR_WIDTH = 10
#: Maps are not drawn smaller than this (screen pixels, so that they and their row labels stay
#: readable); rows that do not fit the height scroll, maps that do not fit across make the
#: panel scroll. Maps of fewer pixels than this are enlarged to it.
MIN_MAP_PIXELS = 32
#: Nor larger than this: beyond it a map shows nothing more.
MAX_MAP_PIXELS = 160
#: Share of the mosaics' width left free at their sides.
PADDING = 0.01
#: Row height in pixels from which row labels have 3, 2 or 1 line(s).
ROW_LINE_PIXELS = {3: 52, 2: 34, 1: 0}
WRONG_PEN = "#d7191c"
BANNER_STYLES = {
    "dead": "background: #b2182b; color: white; padding: 2px 8px; border-radius: 3px;",
    "warning": "background: #fdd49e; color: #3a2600; padding: 2px 8px; border-radius: 3px;",
}
#: How often (ms) the read-out checks that the mouse is still over the maps while it shows.
POINTER_CHECK_MS = 200
READOUT_HINT = "Hover a map or an image for its values · Ctrl+wheel zooms · drag pans · Fit resets"
FOOTER_HINT = "Hover a map for its values"


class MapsView(ScaledRecordView, QWidget):
    """Input images, pre-activation maps and activation (ReLU output) maps of the shown record.

    Parameters
    ----------
    controller : inspector.controller.SessionController
        Observed only; ``session_reset`` rebuilds the items, ``record_shown`` redraws them.
    """

    def __init__(self, controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("mapsView")
        self._controller = controller
        self._record: StepRecord | None = None
        self._shape: tuple | None = None
        self._activation = controller.config.activation
        self._layout: plotting.MosaicLayout | None = None
        self._thumb_layout: plotting.MosaicLayout | None = None
        self._page = 0
        self._page_count = 1
        self._stale = False
        self._zoomed = False
        self._hovering = False
        self._pointing = False  # the mouse over the maps
        self._sizing = False  # within _size_panels
        self._limits = {"pre": 1.0, "output": 1.0}
        self._scale_link: plotting.ScaleLink | None = None
        self._row_ticks: tuple = ()
        self._filter_ticks: tuple = ()
        self._side_ticks: tuple = ()
        self._row_lines = 1
        self._pair_fractions = np.zeros((0, 0))
        self._pair_texts: list[str] = []
        self._scale_texts = {"pre": "", "output": ""}
        self._step = 0
        self._max_step = 1
        self._shown_layout: plotting.MosaicLayout | None = None
        # How the drawn record's rows are colour-coded (record, limits, NaN check, ReLU, rows
        # on the page), and which rows of the mosaics hold its codes / any codes.
        self._coding: tuple | None = None
        self._coded_rows = np.zeros(0, dtype=bool)
        self._filled_rows = np.zeros(0, dtype=bool)
        self._scale = 1.0
        self._top = 0.0

        self._build_controls()
        self._build_graphics()
        self._build_layout()

        controller.session_reset.connect(self._on_session_reset)
        controller.record_shown.connect(self.show_record)
        self._rebuild(controller.shown)
        self.show_record(controller.shown)

    # -- public ------------------------------------------------------------------------------

    def plot_items(self) -> dict[str, pg.GraphicsLayout]:
        """The two map panels, each with its title, colour bar and scale label; a hidden view
        first draws the record it skipped, so that what is saved is the shown iteration."""
        self._catch_up()
        return {"maps-pre-activation": self._pre_panel, "maps-relu-output": self._out_panel}

    def mosaic_layout(self) -> plotting.MosaicLayout | None:
        """Where map [n, f] of the page lies in both map mosaics (tile (n, f)), in plot
        coordinates (one unit = one map pixel)."""
        return self._layout

    def shown_layout(self) -> plotting.MosaicLayout | None:
        """The layout of the ImageItems' arrays: ``mosaic_layout()`` when every map pixel is
        drawn, else with every ``pixel_step()``-th pixel of each map."""
        return self._shown_layout

    def pixel_step(self) -> int:
        """1 while every map pixel is drawn; 2 or 4 while maps are smaller on screen than
        their pixels (then every 2nd or 4th pixel is drawn)."""
        return self._step

    def image_items(self) -> dict[str, pg.ImageItem]:
        return {"inputs": self._thumb_image, "pre": self._pre_image, "output": self._out_image}

    def plots(self) -> dict[str, pg.PlotItem]:
        return {"inputs": self._thumb_plot, "pre": self._pre_plot, "output": self._out_plot}

    def page_range(self) -> tuple[int, int]:
        """(first, end) dataset indices of the images on the shown page."""
        total = len(self._controller.dataset)
        first = self._page * PAGE_SIZE
        return first, min(first + PAGE_SIZE, total)

    def scale_labels(self) -> dict[str, str]:
        """The text under each colour bar (line breaks as newlines)."""
        return dict(self._scale_texts)

    def pair_labels(self) -> list[str]:
        """The zero (or negative) share written beside or on each output map of the page, row
        by row."""
        return list(self._pair_texts)

    def current_limits(self) -> dict[str, float]:
        """Pre-activation ± limit and output maximum the maps are drawn with."""
        return dict(self._limits)

    def map_pixels(self) -> float:
        """Screen pixels per map pixel at the fitted size."""
        return self._scale

    def visible_rows(self) -> tuple[float, float]:
        """(first, end) rows of the page in view, in rows (fractions at the edges)."""
        if self._layout is None:
            return 0.0, 0.0
        (y0, y1) = self._thumb_plot.vb.viewRange()[1]
        pitch = self._layout.pitch_y
        return max(y0, 0.0) / pitch, min(y1, self._layout.data_rect().height()) / pitch

    def _draw_record(self, record: StepRecord) -> None:
        """Draw the page of ``record``: maps, colour bars, fractions, predictions, banner."""
        self._stale = False
        if self._record_shape(record) != self._shape:
            self._rebuild(record)
        self._draw(record)
        self._refresh_readout()  # the values under a mouse that stood still are new too

    # -- construction ------------------------------------------------------------------------

    def _build_controls(self) -> None:
        heading = ElidedLabel(self)
        heading.setObjectName("mapsHeading")
        self._build_scale_controls(
            heading,
            "maps",
            SCALE_TIPS,
            mode_tip="How the colour scales of the maps are chosen; the range in use is "
            "written on each colour bar",
            custom_tip="Custom limit: pre-activations ± this, outputs 0 … this",
        )

        self._previous = QToolButton(self)
        self._previous.setObjectName("mapsPagePrevious")
        self._previous.setArrowType(Qt.ArrowType.LeftArrow)
        self._previous.setToolTip("Previous page of images")
        self._previous.clicked.connect(lambda: self.set_page(self._page - 1))
        self._page_box = QComboBox(self)
        self._page_box.setObjectName("mapsPage")
        self._page_box.setToolTip(f"Maps are shown for {PAGE_SIZE} images at a time")
        self._page_box.currentIndexChanged.connect(self.set_page)
        self._next = QToolButton(self)
        self._next.setObjectName("mapsPageNext")
        self._next.setArrowType(Qt.ArrowType.RightArrow)
        self._next.setToolTip("Next page of images")
        self._next.clicked.connect(lambda: self.set_page(self._page + 1))

        self._fit = QToolButton(self)
        self._fit.setObjectName("mapsResetZoom")
        self._fit.setText("Fit")
        self._fit.setToolTip(
            "Show the maps at their fitted size again after zooming (Ctrl+wheel) or panning"
        )
        self._fit.clicked.connect(self.reset_zoom)

        self._banner = ElidedLabel(self)
        self._banner.setObjectName("mapsDeadBanner")
        self._banner.setVisible(False)

        self._summary = SelectableLabel(self)
        self._summary.setObjectName("mapsSummary")
        self._summary.setWordWrap(True)
        self._summary.setTextFormat(Qt.TextFormat.PlainText)
        self._summary.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

        self._hint = QLabel(FOOTER_HINT, self)
        self._hint.setObjectName("mapsHint")
        self._hint.setStyleSheet(f"color: {plotting.MUTED};")
        self._hint.setToolTip(READOUT_HINT)

        self._readout = ElidedLabel(self)
        self._readout.setObjectName("mapsReadout")
        self._readout.setTextFormat(Qt.TextFormat.PlainText)
        self._readout.setText(READOUT_HINT)

        # While the mouse is over the maps, the read-out also checks every so often that it
        # still is: a leave that never arrives must not leave old values on show.
        self._pointer_check = QTimer(self)
        self._pointer_check.setInterval(POINTER_CHECK_MS)
        self._pointer_check.timeout.connect(self._refresh_readout)

        self._rows_bar = QScrollBar(Qt.Orientation.Vertical, self)
        self._rows_bar.setObjectName("mapsRowsScroll")
        self._rows_bar.setToolTip("Scroll the rows of images (or turn the wheel over the maps)")
        self._rows_bar.setVisible(False)
        self._rows_bar.valueChanged.connect(self._on_scrolled)

    def _build_graphics(self) -> None:
        self._graphics = pg.GraphicsLayoutWidget(self)
        self._graphics.setObjectName("mapsPlots")
        plotting.style_graphics_widget(self._graphics)
        root = self._graphics.ci
        root.layout.setHorizontalSpacing(6)

        self._thumb_image = plotting.new_image_item(None)
        self._thumb_plot = plotting.image_plot(self._thumb_image, text_axes=("left", "top"))
        self._pre_image = plotting.new_image_item(plotting.DIVERGING_CODE_LUT)
        # (The maps' left axes are shown only in saved figures: there they name each row.)
        self._pre_plot = plotting.image_plot(self._pre_image, text_axes=("left", "top"))
        self._out_image = plotting.new_image_item(plotting.ACTIVATION_CODE_LUT)
        self._out_plot = plotting.image_plot(self._out_image, text_axes=("left", "right", "top"))
        for plot in (self._thumb_plot, self._pre_plot, self._out_plot):
            plot.layout.setContentsMargins(0, 0, 0, 0)
            plot.vb.disableAutoRange()
            plot.hideAxis("bottom")
            plot.hideAxis("left")
            plot.getAxis("left").setStyle(autoExpandTextSpace=False)
            top = plot.getAxis("top")
            top.setHeight(TOP_AXIS_HEIGHT)
            top.setStyle(tickFont=plotting.font(11))
            plot.vb.sigRangeChangedManually.connect(self._on_zoomed)
        self._thumb_plot.showAxis("left")
        self._thumb_plot.getAxis("top").setTicks([[]])
        side = self._out_plot.getAxis("right")
        side.setStyle(tickFont=plotting.font(11), autoExpandTextSpace=False, tickLength=0)
        self._pre_plot.vb.setYLink(self._thumb_plot.vb)
        self._out_plot.vb.setYLink(self._thumb_plot.vb)
        self._thumb_plot.vb.sigResized.connect(self._on_view_resized)
        self._thumb_plot.vb.sigYRangeChanged.connect(self._on_rows_moved)
        self._pre_plot.vb.sigRangeChanged.connect(self._on_range_changed)
        for plot in (self._thumb_plot, self._out_plot):
            plot.vb.sigYRangeChanged.connect(self._code_rows_in_view)

        self._wrong_frames = pg.PlotCurveItem(connect="pairs", pen=pg.mkPen(WRONG_PEN, width=3))
        self._wrong_frames.setZValue(10)
        self._thumb_plot.addItem(self._wrong_frames)
        self._pre_frames = pg.PlotCurveItem(connect="pairs", pen=pg.mkPen(plotting.TILE_FRAME))
        self._out_frames = pg.PlotCurveItem(connect="pairs", pen=pg.mkPen(plotting.TILE_FRAME))
        for plot, frames in (
            (self._pre_plot, self._pre_frames),
            (self._out_plot, self._out_frames),
        ):
            frames.setZValue(5)
            plot.addItem(frames)
        self._pair_layer = plotting.LabelLayer()
        self._pair_layer.setZValue(15)
        self._out_plot.addItem(self._pair_layer)

        self._pre_bar = plotting.colour_bar(plotting.DIVERGING_COLORMAP, width=BAR_WIDTH)
        self._out_bar = plotting.colour_bar(plotting.ACTIVATION_BAR_COLORMAP, width=BAR_WIDTH)
        self._out_bar_diverging = False
        self._pre_scale = plotting.CaptionItem(11)
        self._out_scale = plotting.CaptionItem(11)

        self._thumb_title = plotting.label_item("input", size=13, bold=True)
        self._pre_title = plotting.label_item("pre-activation", size=13, bold=True)
        self._out_title = plotting.label_item("ReLU output", size=13, bold=True)

        self._thumb_panel = root.addLayout(row=0, col=0)
        self._pre_panel = root.addLayout(row=0, col=1)
        self._out_panel = root.addLayout(row=0, col=2)
        # Space the panels do not need (their widths follow their content) goes to the right.
        self._spacer = root.addLayout(row=0, col=3)
        root.layout.setColumnStretchFactor(3, 1)
        for col in range(3):
            root.layout.setColumnStretchFactor(col, 0)
        self._thumb_panel.addItem(self._thumb_title, row=0, col=0)
        self._thumb_panel.addItem(self._thumb_plot, row=1, col=0, rowspan=2)
        for panel, title, plot, bar, scale in (
            (self._pre_panel, self._pre_title, self._pre_plot, self._pre_bar, self._pre_scale),
            (self._out_panel, self._out_title, self._out_plot, self._out_bar, self._out_scale),
        ):
            panel.addItem(title, row=0, col=0, colspan=2)
            panel.addItem(plot, row=1, col=0, rowspan=2)
            panel.addItem(bar, row=1, col=1)
            panel.addItem(scale, row=2, col=1)
            panel.layout.setRowStretchFactor(1, 1)
            panel.layout.setRowStretchFactor(2, 0)
        for item in (self._thumb_title, self._pre_title, self._out_title):
            item.setFixedHeight(TITLE_HEIGHT)
        # "Save plots" lays each map panel out as a figure of its own (inspector.export); the
        # panel does not keep the view alive for it.
        method = weakref.WeakMethod(self._prepare_export)
        for name, panel in (("pre", self._pre_panel), ("output", self._out_panel)):
            panel.prepare_export = lambda width, name=name: (view := method()) and view(name)
        for panel in (self._thumb_panel, self._pre_panel, self._out_panel):
            panel.setSpacing(2)
            panel.setContentsMargins(2, 2, 2, 2)
        # A plot that moves or changes size moves other map pixels under a mouse that stands
        # still: the read-out follows (as it follows their ranges).
        for panel, plot in (
            (self._thumb_panel, self._thumb_plot),
            (self._pre_panel, self._pre_plot),
            (self._out_panel, self._out_plot),
        ):
            for item in (panel, plot, plot.vb):
                item.geometryChanged.connect(self._refresh_readout)

        scene = self._graphics.scene()
        scene.sigMouseMoved.connect(self._on_hover)

        # Maps are never drawn smaller than MIN_MAP_PIXELS: where they do not fit at that size
        # the panel scrolls (as the Curves panel does) rather than squash them.
        self._scroll = scroll_area(self._graphics, "mapsScroll", parent=self)
        for bar in (self._scroll.horizontalScrollBar(), self._scroll.verticalScrollBar()):
            bar.valueChanged.connect(self._refresh_readout)

    def _build_layout(self) -> None:
        controls = self._scale_controls_row()
        controls.addSpacing(6)
        controls.addWidget(self._previous)
        controls.addWidget(self._page_box)
        controls.addWidget(self._next)
        controls.addWidget(self._fit)

        graphics = QHBoxLayout()
        graphics.setContentsMargins(0, 0, 0, 0)
        graphics.setSpacing(0)
        graphics.addWidget(self._scroll, 1)
        graphics.addWidget(self._rows_bar)

        # The footer: a banner when filters are dead, and the summary (redundant beside the
        # banner when every output is 0). While a map is hovered, its values cover them: the
        # read-out lies over the footer (outside any layout), so the footer keeps its height.
        self._summary_row = QWidget(self)
        summary_row = QHBoxLayout(self._summary_row)
        summary_row.setContentsMargins(0, 0, 0, 0)
        summary_row.addWidget(LayoutGuard(self._summary, self._summary_row), 1)
        summary_row.addWidget(self._hint, 0, Qt.AlignmentFlag.AlignTop)
        self._footer = QWidget(self)
        self._footer.setObjectName("mapsFooter")
        summary_column = QVBoxLayout(self._footer)
        summary_column.setContentsMargins(0, 0, 0, 0)
        summary_column.setSpacing(3)
        summary_column.addWidget(self._banner)
        summary_column.addWidget(self._summary_row)
        self._readout.setParent(self._footer)
        self._readout.setAutoFillBackground(True)
        self._readout.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self._readout.hide()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(4)
        layout.addLayout(controls)
        layout.addLayout(graphics, 1)
        layout.addWidget(self._footer)
        for watched in (self._graphics, self._graphics.viewport(), self._scroll, self._footer):
            watched.installEventFilter(self)

    # -- session shape -----------------------------------------------------------------------

    def _record_shape(self, record: StepRecord) -> tuple:
        weights = record.params["conv.weight"]
        maps = record.pre_activation
        map_size = None if maps is None else maps.shape[2:]
        return (len(self._controller.dataset), weights.shape[0], map_size)

    def _on_session_reset(self, record: StepRecord) -> None:
        self._activation = self._controller.config.activation
        self._rebuild(record)
        self.show_record(record)

    def _rebuild(self, record: StepRecord) -> None:
        """Create buffers and place items for the dataset size, F and the map size."""
        self._record = record
        self._shape = self._record_shape(record)
        self._activation = self._controller.config.activation
        dataset = self._controller.dataset
        total = len(dataset)
        filters = record.params["conv.weight"].shape[0]
        height, width = (
            record.pre_activation.shape[2:] if record.pre_activation is not None else dataset.size
        )
        rows = min(PAGE_SIZE, total)
        gap = max(1, round(max(height, width) / 16))
        if height == width and height >= 32:
            gap += -(height + gap) % 4  # a pitch divisible by 4 allows drawing every 2nd/4th pixel
        layout = plotting.MosaicLayout(rows, filters, height, width, gap=gap)
        self._layout = layout
        self._max_step = max(
            (
                step
                for step in (1, 2, 4)
                if layout.pitch_y % step == 0 and layout.pitch_x % step == 0
            )
            if height == width and height >= 32 and gap >= 4
            else (1,)
        )
        self._step = 0
        self._set_step(1)
        frames = plotting.frame_pairs(layout.tile_rects())
        self._pre_frames.setData(*frames)
        self._out_frames.setData(*frames)
        self._pair_layer.set_boxes(layout.tile_rects())

        image_h, image_w = dataset.size
        thumb_gap = gap if image_h == height else max(1, round(gap * image_h / height))
        self._thumb_layout = plotting.MosaicLayout(rows, 1, image_h, image_w, gap=thumb_gap)
        self._thumb_scale = layout.pitch_y / self._thumb_layout.pitch_y
        self._thumbs = self._thumb_layout.allocate(np.uint8, 0, channels=4)

        self._page_count = max(1, math.ceil(total / PAGE_SIZE))
        self._page = min(self._page, self._page_count - 1)
        self._page_box.blockSignals(True)
        self._page_box.clear()
        for page in range(self._page_count):
            first, end = page * PAGE_SIZE, min((page + 1) * PAGE_SIZE, total)
            self._page_box.addItem(f"images {first + 1}–{end} of {total}")
        self._page_box.setCurrentIndex(self._page)
        self._page_box.blockSignals(False)
        paged = self._page_count > 1
        for widget in (self._previous, self._page_box, self._next):
            widget.setVisible(paged)
        self._row_ticks = ()
        self._filter_ticks = ()
        self._side_ticks = ()
        self._pair_fractions = np.zeros((0, 0))
        self._top = 0.0
        self._configure_axes(filters)
        self._configure_output_bar()
        self._draw_thumbnails()
        self._size_panels()
        self.reset_zoom()

    def _set_step(self, step: int) -> None:
        """Draw every ``step``-th map pixel (1, 2 or 4): when a map pixel is smaller than a
        screen pixel, encoding and painting the skipped ones costs time and shows nothing
        more (the screen shows one of them per pixel either way)."""
        step = min(step, self._max_step)
        if step == self._step:
            return
        self._step = step
        full = self._layout
        height, width = -(-full.tile_height // step), -(-full.tile_width // step)
        shown = plotting.MosaicLayout(
            full.rows,
            full.cols,
            height,
            width,
            gap=full.pitch_y // step - height,
        )
        self._shown_layout = shown
        shape = (full.rows, full.cols, height, width)
        self._codes = {
            "pre": np.full(shape, plotting.GAP_CODE, dtype=np.uint8),
            "output": np.full(shape, plotting.GAP_CODE, dtype=np.uint8),
        }
        self._scratch = np.empty(shape, dtype=np.float64)
        self._mosaics = {
            "pre": shown.allocate(np.uint8, plotting.GAP_CODE),
            "output": shown.allocate(np.uint8, plotting.GAP_CODE),
        }
        self._coding = None  # (drawn again by the caller)
        self._coded_rows = np.zeros(full.rows, dtype=bool)
        self._filled_rows = np.zeros(full.rows, dtype=bool)
        for image, name in ((self._pre_image, "pre"), (self._out_image, "output")):
            image.setImage(self._mosaics[name], levels=(0, 255), autoLevels=False)
            image.setRect(full.data_rect())

    def _configure_output_bar(self) -> None:
        diverging = self._activation != "relu"
        if diverging == self._out_bar_diverging:
            return
        self._out_bar_diverging = diverging
        self._out_bar.setColorMap(
            plotting.DIVERGING_COLORMAP if diverging else plotting.ACTIVATION_BAR_COLORMAP
        )
        self._out_image.setLookupTable(
            plotting.DIVERGING_CODE_LUT if diverging else plotting.ACTIVATION_CODE_LUT
        )
        self._out_title.setText(self._panel_name("output"))

    # -- paging ------------------------------------------------------------------------------

    @Slot(int)
    def set_page(self, page: int) -> None:
        """Show page ``page`` (0-based) of the images."""
        page = max(0, min(int(page), self._page_count - 1))
        if self._page_box.currentIndex() != page:
            self._page_box.setCurrentIndex(page)  # re-enters through currentIndexChanged
            return
        if page == self._page and self._record is not None and not self._stale:
            self._update_page_buttons()
            return
        self._page = page
        self._row_ticks = ()
        self._draw_thumbnails()
        if self._record is not None:
            self.show_record(self._record)

    def _update_page_buttons(self) -> None:
        self._previous.setEnabled(self._page > 0)
        self._next.setEnabled(self._page < self._page_count - 1)

    def _draw_thumbnails(self) -> None:
        first, end = self.page_range()
        count = end - first
        images = self._controller.dataset.images[first:end]  # (n, 3, H, W)
        tiles = np.zeros((self._thumb_layout.rows, 1, *self._thumb_layout_shape(), 4), np.uint8)
        tiles[:count, 0, :, :, :3] = np.transpose(images, (0, 2, 3, 1))
        tiles[:count, 0, :, :, 3] = 255
        self._thumbs[...] = 0
        self._thumb_layout.fill(self._thumbs, tiles)
        self._thumb_image.setImage(self._thumbs, levels=None, autoLevels=False)
        height, width = self._thumbs.shape[:2]
        scale = self._thumb_scale
        self._thumb_image.setRect(0.0, 0.0, width * scale, height * scale)
        self._update_page_buttons()

    def _thumb_layout_shape(self) -> tuple[int, int]:
        return self._thumb_layout.tile_height, self._thumb_layout.tile_width

    # -- drawing -----------------------------------------------------------------------------

    def _draw(self, record: StepRecord) -> None:
        first, end = self.page_range()
        count = end - first
        self._heading.setText(self._heading_text(record))
        if record.pre_activation is None:
            self._show_missing_maps()
            return
        pre = record.pre_activation[first:end]
        output = record.activation[first:end]
        step = self._step
        relu = self._activation == "relu"
        limits = self._chosen_limits(record)
        if self._scale_link is not None:
            limits = self._scale_link.shared(self, limits)
        # All-zero maps still need a scale to draw with.
        limits = {name: value if value > 0 else 1.0 for name, value in limits.items()}
        self._limits = limits

        # The metrics hold max |value| over all maps: finite means no NaN anywhere.
        check = not math.isfinite(record.metrics.get("pre_activation_absmax", math.nan))
        self._coding = (record, limits, check, relu, count)
        self._coded_rows[:] = False
        in_view = self._rows_in_view(count)
        self._code_rows(*in_view)
        # Rows out of view hold no codes (another record's would be wrong if ever painted).
        for stale in _runs(self._filled_rows & ~self._coded_rows):
            self._blank_rows(*stale)
        self._set_mosaics()
        drawn = self._codes["output"]  # (a change of pixel step in _draw_bars replaces it)

        self._draw_bars(record, pre, output, limits, relu)
        if step == 1 or self._layout.cols == 1:
            fractions = self._pair_share(output, relu, drawn if step == 1 else None, in_view)
            if not math.isfinite(record.metrics.get("activation_max", 0.0)):
                # A map of NaN only (a diverged run) has no share of zeros or negatives: it
                # reads "NaN", not "0% zero".
                fractions[np.isnan(output).all(axis=(2, 3))] = np.nan
        else:
            # Maps this small on screen get no labels (LabelLayer); hover computes its own.
            fractions = np.full((count, self._layout.cols), np.nan)
        if not np.array_equal(fractions, self._pair_fractions, equal_nan=True):
            self._pair_fractions = fractions
            self._draw_pair_labels(fractions, count, relu)
        self._draw_filter_headers(record, relu)
        self._draw_rows(record, first, end)
        self._draw_banner_and_summary(record, relu)

    def _rows_in_view(self, count: int) -> tuple[int, int]:
        """(first, end) rows of the page's ``count`` that the maps' views show, in part or
        whole; every row while the plots are not laid out (their range says nothing yet)."""
        if not self._graphics.isVisible() or self._thumb_plot.vb.height() <= 1:
            return 0, count
        # (The three plots' rows move together; a saved figure moves one plot's first.)
        ranges = [plot.vb.viewRange()[1] for plot in self.plots().values()]
        pitch = self._layout.pitch_y
        top = min(low for low, _ in ranges) / pitch
        bottom = max(high for _, high in ranges) / pitch
        return max(0, math.floor(top)), min(count, math.ceil(bottom))

    def _code_rows(self, first: int, end: int) -> None:
        """Colour-code rows ``first``..``end`` of the drawn record's page into the mosaics.

        Only the rows in view are coded when a record is drawn, and the others when they come
        into view (``_code_rows_in_view``) or are saved (``_prepare_export``): with 16 filters
        of 64×64 maps that is two million values a frame, some 3 ms, and at 1280×800 only 3 of
        the 16 rows are in view."""
        record, limits, check, relu, count = self._coding
        end = min(end, count)
        if first >= end:
            return
        page = self.page_range()[0]
        step = self._step
        rows = slice(page + first, page + end)
        pre = record.pre_activation[rows, :, ::step, ::step]
        output = record.activation[rows, :, ::step, ::step]
        codes, scratch = self._codes, self._scratch[first:end]
        encode_output = plotting.encode_activation if relu else plotting.encode_diverging
        plotting.encode_diverging(
            pre, limits["pre"], codes["pre"][first:end], scratch, check_nan=check
        )
        encode_output(
            output, limits["output"], codes["output"][first:end], scratch, check_nan=check
        )
        for name in ("pre", "output"):
            self._shown_layout.fill(self._mosaics[name], codes[name], rows=(first, end))
        self._coded_rows[first:end] = True
        self._filled_rows[first:end] = True

    def _blank_rows(self, first: int, end: int) -> None:
        for name in ("pre", "output"):
            self._codes[name][first:end] = plotting.GAP_CODE
            self._shown_layout.fill(self._mosaics[name], self._codes[name], rows=(first, end))
        self._filled_rows[first:end] = False

    def _set_mosaics(self) -> None:
        self._pre_image.setImage(self._mosaics["pre"], levels=(0, 255), autoLevels=False)
        self._out_image.setImage(self._mosaics["output"], levels=(0, 255), autoLevels=False)

    def _code_missing_rows(self, first: int, end: int) -> None:
        """Colour-code the rows from ``first`` to ``end`` that do not hold the drawn record's
        codes yet, and show them."""
        if self._coding is None or self._stale:
            return
        missing = list(_runs(~self._coded_rows[first : min(end, self._coding[-1])]))
        for start, stop in missing:
            self._code_rows(first + start, first + stop)
        if missing:
            self._set_mosaics()

    def _code_rows_in_view(self, *_args) -> None:
        """Rows that came into view (scrolled, zoomed, resized) get their codes."""
        if self._coding is not None:
            self._code_missing_rows(*self._rows_in_view(self._coding[-1]))

    def _show_missing_maps(self) -> None:
        self._coding = None
        self._coded_rows[:] = False
        self._filled_rows[:] = False
        for name in ("pre", "output"):
            self._mosaics[name][...] = plotting.GAP_CODE
        self._set_mosaics()
        self._banner.setVisible(False)
        self._summary.setText("The maps of this iteration are not available.")

    def _heading_text(self, record: StepRecord) -> str:
        total = len(self._controller.dataset)
        filters = record.params["conv.weight"].shape[0]
        return (
            f"Iteration {record.iteration} · {total} image{'s' if total != 1 else ''} × "
            f"{filters} filter{'s' if filters != 1 else ''}"
        )

    def _chosen_limits(self, record: StepRecord) -> dict[str, float]:
        mode = self._scale_mode.currentText()
        if mode == "Custom":
            value = float(self._custom.value())
            return {"pre": value, "output": value}
        metrics = record.metrics
        pre = _finite_or(metrics.get("pre_activation_absmax"), record.pre_activation, True)
        if self._activation == "relu":
            output = _finite_or(metrics.get("activation_max"), record.activation, False)
        else:
            output = _finite_or(None, record.activation, True)
        current = {"pre": pre, "output": output}
        if mode == "Whole run":
            columns = self._controller.metric_columns(list(RUN_METRICS.values()))
            for name, metric in RUN_METRICS.items():
                column = columns[metric]
                finite = column[np.isfinite(column)]
                if finite.size:
                    current[name] = max(current[name], float(np.max(np.abs(finite))))
        return current

    def _draw_bars(self, record, pre, output, limits, relu) -> None:
        """Colour bar ranges, and under each bar how its scale was chosen."""
        mode = self._scale_mode.currentText()
        total = len(self._controller.dataset)
        scope = [f"all {total} images"] if self._page_count > 1 and mode != "Custom" else []
        if self._scale_link is not None:
            scope.append("shared by both runs")
        pre_limit = limits["pre"]
        widened = plotting.set_bar_range(
            self._pre_bar, -pre_limit, pre_limit, _symmetric_ticks(pre_limit)
        )
        pre_lines = [SCALE_WORDS[mode], *scope]
        out_limit = limits["output"]
        if relu:
            block = out_limit * plotting.DEAD_BLOCK / (1 - plotting.DEAD_BLOCK)
            widened |= plotting.set_bar_range(
                self._out_bar,
                -block,
                out_limit,
                [(-block / 2, "0 (off)"), (out_limit, format_number(out_limit))],
            )
            all_zero = record.metrics.get("activation_max") == 0
            if all_zero and mode != "Custom":
                out_lines = ["every output", "is 0 (dead)"]
            else:
                out_lines = [SCALE_WORDS[mode], *scope]
        else:
            widened |= plotting.set_bar_range(
                self._out_bar, -out_limit, out_limit, _symmetric_ticks(out_limit)
            )
            out_lines = [SCALE_WORDS[mode], *scope]
        if mode == "Custom":
            pre_lines += _clipped_note(pre, pre_limit, symmetric=True)
            out_lines += _clipped_note(output, out_limit, symmetric=not relu)
        if not math.isfinite(record.metrics.get("pre_activation_absmax", math.nan)):
            pre_lines.append("NaN: grey")
            out_lines.append("NaN: grey")
        for name, caption, lines in (
            ("pre", self._pre_scale, pre_lines),
            ("output", self._out_scale, out_lines),
        ):
            text = "\n".join(lines)
            if text != self._scale_texts[name]:
                self._scale_texts[name] = text
                width = caption.natural_width()
                caption.set_lines([caption.line(line, ink=plotting.MUTED) for line in lines])
                # Only a wider or narrower caption moves the maps: with a custom scale its
                # "N clipped" changes every frame while training, and laid the panel out again
                # each time.
                widened |= caption.natural_width() != width
        if widened:
            self._size_panels()

    def _draw_pair_labels(self, fractions: np.ndarray, count: int, relu: bool) -> None:
        """Each map's zero (or negative) share: beside the output map while there is one
        filter, else in the map's corner (while the map is large enough to carry it)."""
        word = "zero" if relu else "negative"
        self._pair_texts = [
            f"{format_share(v)} {word}" if math.isfinite(v) else "NaN"
            for v in fractions.reshape(-1)
        ]
        filters = self._layout.cols
        blank = [""] * (self._layout.rows - count) * filters
        if filters == 1:
            ticks = tuple(
                (self._layout.tile_centre(row, 0)[1], text)
                for row, text in enumerate(self._pair_texts)
            )
            if ticks != self._side_ticks:
                self._side_ticks = ticks
                self._out_plot.getAxis("right").setTicks([list(ticks)])
            self._pair_layer.set_texts(blank + [""] * count, blank + [""] * count)
            return
        short = [format_share(v) for v in fractions.reshape(-1)]
        self._pair_layer.set_texts(self._pair_texts + blank, short + blank)

    def _panel_name(self, name: str) -> str:
        """The title of map panel ``name`` ('pre' or 'output')."""
        if name == "pre":
            return "pre-activation"
        return OUTPUT_NAMES.get(self._activation, "output")

    def _share_word(self) -> str:
        """What the shares written per map count: zero (ReLU) or negative outputs."""
        return "zero" if self._activation == "relu" else "negative"

    def _configure_axes(self, filters: int) -> None:
        """Filter headers over the maps when there are several filters; with one, its zero
        share beside each output map instead."""
        several = filters > 1
        for plot in (self._thumb_plot, self._pre_plot, self._out_plot):
            plot.showAxis("top", several)
        metrics = QFontMetricsF(self._pre_plot.getAxis("top").style["tickFont"])
        self._header_widths = tuple(
            metrics.horizontalAdvance(text)
            for text in (f"filter {filters - 1}", f"100% {self._share_word()}", "99%")
        )
        self._out_plot.showAxis("right", not several)
        if not several:
            metrics = QFontMetricsF(self._out_plot.getAxis("right").style["tickFont"])
            self._out_plot.getAxis("right").setWidth(
                int(metrics.horizontalAdvance(f"100% {self._share_word()}")) + 10
            )

    @staticmethod
    def _pair_share(
        output: np.ndarray,
        relu: bool,
        codes: np.ndarray | None = None,
        coded: tuple[int, int] = (0, 0),
    ):
        """(n, F) share of outputs that are 0 (ReLU) or negative (other activations). ReLU
        outputs of the rows ``coded`` (first, end) are counted on their ReLU ``codes`` when
        those hold every pixel (cheaper than the floats)."""
        per_map = output.shape[2] * output.shape[3]
        if not relu:
            return np.count_nonzero(output < 0, axis=(2, 3)) / per_map
        first, end = coded if codes is not None else (0, 0)
        counts = np.empty(output.shape[:2], dtype=np.intp)
        if first < end:
            coded_rows = codes[first:end]
            counts[first:end] = np.count_nonzero(coded_rows == plotting.DEAD_CODE, axis=(2, 3))
        counts[:first] = np.count_nonzero(output[:first] <= 0, axis=(2, 3))
        counts[end:] = np.count_nonzero(output[end:] <= 0, axis=(2, 3))
        return counts / per_map

    def _filter_shares(self, record: StepRecord, relu: bool) -> np.ndarray:
        """Per filter, the share of its outputs that are 0 (ReLU) or negative; NaN for a
        filter whose every output is NaN."""
        if relu:
            shares = np.array(record.dead_fraction_per_filter, dtype=np.float64)
        else:
            pre = record.pre_activation
            shares = np.count_nonzero(record.activation < 0, axis=(0, 2, 3)) / (
                pre.shape[0] * pre.shape[2] * pre.shape[3]
            )
        if record.activation is not None and not math.isfinite(
            record.metrics.get("activation_max", 0.0)
        ):
            shares[np.isnan(record.activation).all(axis=(0, 2, 3))] = np.nan
        return shares

    def _draw_filter_headers(self, record: StepRecord, relu: bool) -> None:
        """Over each column of maps its filter, and over the outputs the filter's zero share,
        in words while the column is wide enough for the widest such text."""
        shares = self._filter_shares(record, relu)
        self._shares = shares
        filters = self._layout.cols
        if filters == 1:
            return  # one filter: no header; its share is in the summary
        room = self._layout.pitch_x * self._scale - 4
        named, worded, percent = self._header_widths
        word = self._share_word()
        pre_ticks, out_ticks = [], []
        for f in range(filters):
            x = self._layout.tile_centre(0, f)[0]
            pre_ticks.append((x, f"filter {f}" if named <= room else str(f)))
            share = format_share(shares[f])
            if worded <= room:
                share = f"{share} {word}"
            elif percent > room:
                share = str(f)
            out_ticks.append((x, share))
        ticks = (tuple(pre_ticks), tuple(out_ticks))
        if ticks != self._filter_ticks:
            self._filter_ticks = ticks
            self._pre_plot.getAxis("top").setTicks([list(ticks[0])])
            self._out_plot.getAxis("top").setTicks([list(ticks[1])])

    def _draw_rows(self, record: StepRecord, first: int, end: int) -> None:
        """Row labels (number, true label, prediction, loss) and frames of wrong predictions."""
        dataset = self._controller.dataset
        names = dataset.class_names
        lines = self._row_lines
        ticks, wrong = [], []
        for row, index in enumerate(range(first, end)):
            label = int(dataset.labels[index])
            probability = float(record.probabilities[index])
            predicted = predicted_label(probability)
            confidence = probability if predicted else 1.0 - probability
            mark = "✓" if predicted == label else "✗"
            # (No class for a probability that is not a number: "→ NaN ✗".)
            guess = (
                "NaN"
                if predicted == NO_PREDICTION
                else f"{names[predicted]} {format_share(confidence)}"
            )
            parts = [
                f"#{index + 1} {names[label]}",
                f"→ {guess} {mark}",
                f"loss {format_number(float(record.losses[index]))}",
            ]
            if lines == 1:
                text = f"#{index + 1} {names[label]} {'✓' if predicted == label else '✗'}"
            else:
                text = "\n".join(parts[:lines])
            ticks.append((self._layout.tile_centre(row, 0)[1], text))
            if predicted != label:
                x, y = 0.0, row * self._layout.pitch_y
                wrong.append((x, y, self._thumb_width(), float(self._layout.tile_height)))
        ticks = tuple(ticks)
        if ticks != self._row_ticks:
            self._row_ticks = ticks
            self._thumb_plot.getAxis("left").setTicks([list(ticks)])
        self._wrong_frames.setData(*plotting.frame_pairs(wrong))

    def _row_text_width(self, lines: int) -> float:
        """Width of the row labels with ``lines`` lines, from the widest text they can have
        (fixed for a dataset, so a running view never changes its layout)."""
        dataset = self._controller.dataset
        longest = max(dataset.class_names, key=len)
        number = f"#{len(dataset)}"
        templates = [f"{number} {longest} ✗"]
        if lines > 1:
            templates = [f"{number} {longest}", f"→ {longest} 100% ✗"]
        if lines > 2:
            templates.append("loss 8,888,888.8")
        metrics = QFontMetricsF(self._thumb_plot.getAxis("left").style["tickFont"])
        return max(metrics.horizontalAdvance(text) for text in templates) + 14

    def _thumb_width(self) -> float:
        return self._thumb_layout.tile_width * self._thumb_scale

    def _draw_banner_and_summary(self, record: StepRecord, relu: bool) -> None:
        shares = self._shares
        filters = len(shares)
        total = len(self._controller.dataset)
        # ("dead" is for a filter whose every output is 0: one zero output is only off.)
        word = "0 (off: no gradient passes back)" if relu else "negative"
        parts = []
        for f, share in enumerate(shares):
            text = f"filter {f} {format_share(share) if math.isfinite(share) else 'NaN'}"
            since = record.dead_since[f] if f < len(record.dead_since) else None
            if relu and since is not None:
                text += f" (dead since iteration {since})"
            parts.append(text)
        summary = f"Outputs that are {word}, over all {total} images: " + " · ".join(parts)
        if self._summary.text() != summary:
            self._summary.setText(summary)
            self._fit_hint()
        all_dead = relu and record.metrics.get("activation_max") == 0
        if all_dead:
            subject = "the filter is dead" if filters == 1 else "every filter is dead"
            since = [s for s in record.dead_since if s is not None]
            when = f" (since iteration {min(since)})" if since and filters == 1 else ""
            self._set_banner(
                "dead",
                f"All ReLU outputs are 0: {subject}{when} — see Diagnostics.",
                "The maps are black because no image gives any filter a positive response, "
                f"so no gradient flows back into the filters.\n\n{summary}",
            )
        elif relu and record.dead_filters:
            dead = record.dead_filters
            which = ", ".join(str(f) for f in dead)
            noun = "Filter" if len(dead) == 1 else "Filters"
            verb = "is" if len(dead) == 1 else "are"
            self._set_banner(
                "warning",
                f"{noun} {which} {verb} dead: ReLU output 0 for every image and position — "
                "see Diagnostics.",
                "A dead filter passes no gradient back, so no later update can revive it.",
            )
        elif self._banner.isVisibleTo(self):
            self._banner.setVisible(False)
        if self._summary_row.isVisibleTo(self) == all_dead:
            self._summary_row.setVisible(not all_dead)

    def _set_banner(self, kind: str, text: str, tip: str) -> None:
        self._banner.setStyleSheet(BANNER_STYLES[kind])
        self._banner.setText(text)
        self._banner.set_tip(tip)
        if not self._banner.isVisibleTo(self):
            self._banner.setVisible(True)

    # -- export ------------------------------------------------------------------------------

    def export_texts(
        self, name: str, y_range: tuple[float, float] | None = None
    ) -> tuple[str, list[tuple[float, str]]]:
        """What a saved figure of map panel ``name`` ('pre' or 'output') says besides its
        colour bar: the title (what the maps show, the iteration, and which images unless
        they are all there) and, for each row in view (``y_range``, by default what the
        window shows), its label at that height in plot coordinates (the image as the window
        names it and its share of zero, or negative, outputs; lines joined by newlines)."""
        record = self._record
        first, end = self.page_range()
        dataset = self._controller.dataset
        total = len(dataset)
        title = self._panel_name(name)
        if record is None or self._layout is None:
            return title, []
        title = f"{title} · iteration {record.iteration}"
        # The rows within y0..y1 are labelled (for a saved figure, every row of the page); a
        # row partly within is labelled at the middle of that part.
        layout = self._layout
        y0, y1 = y_range if y_range is not None else self._thumb_plot.vb.viewRange()[1]
        rows = []
        for row in range(end - first):
            top = max(row * layout.pitch_y, y0)
            bottom = min(row * layout.pitch_y + layout.tile_height, y1)
            if bottom > top:
                rows.append((row, (top + bottom) / 2))
        if rows and (first + rows[0][0], first + rows[-1][0] + 1) != (0, total):
            title += f" · images {first + rows[0][0] + 1}–{first + rows[-1][0] + 1} of {total}"
        filters = record.params["conv.weight"].shape[0]
        word = self._share_word()
        shares = None
        if record.pre_activation is None:
            title += " (maps not available)"
        else:
            output = np.asarray(record.activation[first:end])
            relu = self._activation == "relu"
            shares = self._pair_share(output, relu).mean(axis=1)  # (maps alike in size)
        labels = []
        for row, y in rows:
            index = first + row
            label = int(dataset.labels[index])
            lines = [f"#{index + 1} {dataset.class_names[label]} (label {label})"]
            # With one filter, the output figure has each map's share beside it already.
            if shares is not None and (name == "pre" or filters > 1):
                text = f"{format_share(shares[row])} {word}"
                if name == "pre":
                    text = f"{self._panel_name('output')} {text}"
                lines.append(f"{text}, all filters" if filters > 1 else text)
            labels.append((y, "\n".join(lines)))
        return title, labels

    def _prepare_export(self, name: str):
        """Lay map panel ``name`` out as a figure of its own: the title says what it shows and
        the iteration, and a column left of the maps names each row's image and its share of
        zero outputs (``export_texts``). Returns the function that puts the panel back as it
        was (``inspector.export``)."""
        plot = self._pre_plot if name == "pre" else self._out_plot
        title = self._pre_title if name == "pre" else self._out_title
        axis = plot.getAxis("left")
        self._code_missing_rows(0, len(self._coded_rows))  # a figure holds every row
        before = {
            "title": title.text,
            "plot": (plot.minimumWidth(), plot.maximumWidth()),
            "height": (plot.minimumHeight(), plot.maximumHeight()),
            "axis": (axis.fixedWidth, axis.minimumWidth(), axis.maximumWidth()),
        }
        text, rows = self.export_texts(name, self._show_whole_page(plot))
        title.setText(text)
        # A figure at least as wide as its title (it is clipped at the panel's edges).
        bold = QFontMetricsF(plotting.font(13, bold=True))
        title.setMinimumWidth(bold.horizontalAdvance(text) + 16)
        metrics = QFontMetricsF(axis.style["tickFont"])
        widths = [metrics.horizontalAdvance(line) for _, row in rows for line in row.split("\n")]
        width = math.ceil(max(widths)) + 14 if widths else 0
        axis.setTicks([list(rows)])
        plot.showAxis("left", bool(rows))
        axis.setWidth(width)
        # The maps keep their size: the plot widens by the labels' column.
        plot.setMinimumWidth(before["plot"][0] + width)
        plot.setMaximumWidth(before["plot"][1] + width)

        def restore() -> None:
            plot.hideAxis("left")
            axis.setTicks(None)
            fixed, least, most = before["axis"]
            axis.fixedWidth = fixed
            axis.setMinimumWidth(least)
            axis.setMaximumWidth(most)
            least, most = before["plot"]
            plot.setMinimumWidth(least)
            plot.setMaximumWidth(most)
            least, most = before["height"]
            plot.setMinimumHeight(least)
            plot.setMaximumHeight(most)
            title.setText(before["title"])

        return restore

    def _show_whole_page(self, plot: pg.PlotItem) -> tuple[float, float] | None:
        """For a saved figure: every row of the page in ``plot`` at the size the window shows
        them (the plot made as high as that takes), not only the rows in view, the last one
        cut (a teacher's figure of 24 images held "images 1–5", #5 cut in half). Returns the
        rows' range in plot coordinates (None: the view is left as it is)."""
        layout, scale = self._layout, self._scale
        if layout is None or scale <= 0 or plot.vb.height() <= 1:
            return None
        lead = layout.gap / 2
        low, high = -lead, layout.data_rect().height() + lead
        (x0, x1), (y0, y1) = plot.vb.viewRange()
        if y0 <= low + 0.5 and y1 >= high - 0.5:
            return None  # every row in view already
        grow = (high - low) * scale - plot.vb.height()
        if grow > 0:
            height = plot.height() + grow
            plot.setMinimumHeight(height)
            plot.setMaximumHeight(height)
        plot.vb.setRange(QRectF(x0, low, x1 - x0, high - low), padding=0)
        return low, high

    # -- interaction -------------------------------------------------------------------------

    @Slot()
    def reset_zoom(self) -> None:
        """Show the maps at their fitted size again, from the page's first row."""
        self._zoomed = False
        self._top = 0.0
        self._fit_views()

    def _fit_views(self) -> None:
        """Show one map pixel as ``map_pixels()`` screen pixels, rows from ``_top`` on."""
        if self._layout is None:
            return
        scale = self._scale
        view_h = self._thumb_plot.vb.height()
        if view_h <= 1 or scale <= 0:
            return
        rect = self._layout.data_rect()
        visible = view_h / scale
        lead = self._layout.gap / 2
        self._top = min(max(self._top, 0.0), max(rect.height() - visible, 0.0))
        top = self._top - lead
        for plot, content in (
            (self._thumb_plot, self._thumb_width()),
            (self._pre_plot, rect.width()),
            (self._out_plot, rect.width()),
        ):
            width = plot.vb.width() / scale
            left = -(width - content) / 2
            plot.vb.setRange(QRectF(left, top, width, visible), padding=0)
        self._update_rows_bar()

    def _update_rows_bar(self) -> None:
        """The scroll bar's range and position for the rows in view."""
        if self._layout is None or not self._rows_bar.isVisibleTo(self):
            return
        scale = self._scale
        content = self._layout.data_rect().height() * scale
        view = self._thumb_plot.vb.height()
        self._rows_bar.blockSignals(True)
        self._rows_bar.setRange(0, max(0, math.ceil(content - view)))
        self._rows_bar.setPageStep(max(1, int(view)))
        self._rows_bar.setSingleStep(max(1, int(self._layout.pitch_y * scale)))
        self._rows_bar.setValue(round(self._top * scale))
        self._rows_bar.blockSignals(False)

    def _on_scrolled(self, value: int) -> None:
        if self._layout is None or self._scale <= 0:
            return
        (y0, y1) = self._thumb_plot.vb.viewRange()[1]
        lead = self._layout.gap / 2
        self._top = value / self._scale
        top = self._top - lead
        self._thumb_plot.vb.setYRange(top, top + (y1 - y0), padding=0)

    def _on_rows_moved(self, *_args) -> None:
        """Panning or zooming moved the rows: the scroll bar follows."""
        if self._layout is None or not self._rows_bar.isVisibleTo(self):
            return
        y0 = self._thumb_plot.vb.viewRange()[1][0]
        value = round((y0 + self._layout.gap / 2) * self._scale)
        if value != self._rows_bar.value():
            self._rows_bar.blockSignals(True)
            self._rows_bar.setValue(value)
            self._rows_bar.blockSignals(False)
            self._top = y0 + self._layout.gap / 2

    def _on_plain_wheel(self, event) -> None:
        """A wheel turn without Ctrl over the maps scrolls their rows while they scroll and
        are not at their end, else the panel: down when it scrolls down, else across (a
        turn that pyqtgraph would take for a zoom, or leave unused)."""
        delta = event.angleDelta()
        vertical = abs(delta.y()) >= abs(delta.x())
        if vertical and delta.y() and self._rows_bar.isVisibleTo(self):
            before = self._rows_bar.value()
            rows = -delta.y() / 120
            self._rows_bar.setValue(round((self._top + rows * self._layout.pitch_y) * self._scale))
            if self._rows_bar.value() != before:
                return
        down = self._scroll.verticalScrollBar()
        if vertical and down.maximum() == down.minimum():
            QApplication.sendEvent(self._scroll.horizontalScrollBar(), event)
        else:
            QApplication.sendEvent(self._scroll.viewport(), event)

    def _on_zoomed(self, *_args) -> None:
        self._zoomed = True

    def _on_view_resized(self, *_args) -> None:
        if not self._zoomed:
            self._fit_views()

    def _on_range_changed(self, *_args) -> None:
        self._update_step(plotting.pixels_per_unit(self._pre_plot.vb))
        self._code_rows_in_view()
        self._refresh_readout()  # other pixels under the mouse now

    def _update_step(self, pixels_per_unit: float) -> None:
        """Pick the pixel step for the maps' size on screen; redraw when it changes."""
        if self._layout is None or pixels_per_unit <= 0:
            return
        wanted = 4 if pixels_per_unit <= 0.25 else 2 if pixels_per_unit <= 0.5 else 1
        if not self._graphics.isVisible():
            wanted = 1  # not laid out yet: its size says nothing
        previous = self._step
        self._set_step(wanted)
        if self._step != previous and self._record is not None and not self._stale:
            self._draw(self._record)

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt override)
        kind = event.type()
        if watched is self._graphics and kind in (QEvent.Type.Resize, QEvent.Type.Show):
            self._size_panels()
        elif watched is self._scroll and kind == QEvent.Type.Resize:
            self._size_panels()
        elif watched is self._graphics.viewport() and kind == QEvent.Type.Leave:
            self._end_hover()
        elif (
            watched is self._graphics.viewport()
            and kind == QEvent.Type.Wheel
            and not event.modifiers() & Qt.KeyboardModifier.ControlModifier
        ):
            self._on_plain_wheel(event)
            return True
        elif watched is self._footer and kind == QEvent.Type.Resize:
            self._readout.setGeometry(self._footer.rect())
        return super().eventFilter(watched, event)

    def hideEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().hideEvent(event)
        self._end_hover()  # (a tab in front of the panel: the mouse is not over the maps)

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        self._fit_hint()

    def _size_panels(self) -> None:
        """Size the three plots so that one map pixel is as large in every panel: the largest
        size at which the page fits, but never below ``MIN_MAP_PIXELS`` nor above
        ``MAX_MAP_PIXELS``. Rows that do not fit the height scroll under the titles; maps
        that do not fit across at their smallest, or a panel too low for one row of them,
        make the panel scroll instead of shrinking them.

        Not again from within: the minimum size it sets resizes the plots at once, and the
        scroll bars that then come or go made it call itself until Python's recursion limit
        (seen at 1024×700). The sizes it sets already allow for those scroll bars."""
        if self._layout is None or self._sizing:
            return
        self._sizing = True
        try:
            self._size_panels_now()
        finally:
            self._sizing = False

    def _size_panels_now(self) -> None:
        rect = self._layout.data_rect()
        filters = self._layout.cols
        tile = self._layout.tile_height
        area = self._scroll
        width, height = area.width(), area.height()
        if self._rows_bar.isVisibleTo(self):
            width += self._rows_bar.width()
        if not area.isVisible():
            width, height = 620, 140  # not laid out yet: the size the window gives first
        bars = sum(
            max(plotting.bar_width(bar), caption.natural_width()) + 2
            for bar, caption in ((self._pre_bar, self._pre_scale), (self._out_bar, self._out_scale))
        )
        side = self._out_plot.getAxis("right").width() if filters == 1 else 0
        top_axis = TOP_AXIS_HEIGHT if filters > 1 else 0
        titles_h = TITLE_HEIGHT + top_axis + 12
        units_w = (self._thumb_width() + 2 * rect.width()) * (1 + 2 * PADDING)
        units_h = rect.height()
        low, high = MIN_MAP_PIXELS / tile, MAX_MAP_PIXELS / tile
        scroll_w = self._rows_bar.sizeHint().width()
        # Lower than the titles and one row of maps at their smallest: the whole panel
        # scrolls down, rows and titles together, its scroll bar taking room across. (Fixed
        # for a page, so the scroll bar never comes and goes with the scale.)
        too_low = height < titles_h + self._layout.pitch_y * low
        if too_low:
            width -= area.verticalScrollBar().sizeHint().width()
        free_h = height - titles_h
        for lines in (3, 2, 1):
            left = self._row_text_width(lines)
            free_w = width - left - bars - side - 44
            scale = min(free_w / units_w, max(free_h / units_h, low), high)
            scroll = units_h * scale > free_h + 0.5
            if scroll:
                scale = min((free_w - scroll_w) / units_w, max(free_h / units_h, low), high)
            # Too narrow for the maps at their smallest: they keep that size and the panel
            # scrolls across (its scroll bar taking room from the rows).
            across = scale < low
            if across:
                scale = low
            room_h = free_h - (area.horizontalScrollBar().sizeHint().height() if across else 0)
            scroll = units_h * scale > room_h + 0.5 and not too_low
            if scale * tile >= ROW_LINE_PIXELS[lines]:
                break
        # A whole number of screen pixels per map pixel draws every map pixel alike: crisp.
        whole = math.floor(scale)
        if whole >= max(1.0, low) and whole >= 0.8 * scale:
            scale = float(whole)
        self._scale = scale
        if self._rows_bar.isVisibleTo(self) != scroll:
            self._rows_bar.setVisible(scroll)
        axis = self._thumb_plot.getAxis("left")
        if axis.width() != int(left):
            axis.setWidth(int(left))
        if lines != self._row_lines:
            self._row_lines = lines
            self._row_ticks = ()
            if self._record is not None and self._record.pre_activation is not None:
                self._draw_rows(self._record, *self.page_range())
        maps_w = rect.width() * (1 + 2 * PADDING) * scale
        self._thumb_plot.setFixedWidth(left + self._thumb_width() * (1 + 2 * PADDING) * scale)
        self._pre_plot.setFixedWidth(maps_w)
        self._out_plot.setFixedWidth(maps_w + side)
        least_w = math.ceil(left + bars + side + 44 + units_w * scale) if across else 0
        least_h = math.ceil(titles_h + units_h * scale) if too_low else 0
        if (self._graphics.minimumWidth(), self._graphics.minimumHeight()) != (least_w, least_h):
            self._graphics.setMinimumSize(least_w, least_h)
        self._update_step(scale)
        if not self._zoomed:
            QTimer.singleShot(0, self._fit_views)

    def _draw_when_shown(self) -> None:
        # After the show: the panels are sized by then, which the maps' layout depends on.
        QTimer.singleShot(0, lambda: self.show_record(self._record))

    def _fit_hint(self) -> None:
        """The footer's hint only while the summary leaves room for it on its line."""
        metrics = self._summary.fontMetrics()
        needed = metrics.horizontalAdvance(self._summary.text())
        room = self.width() - 12 - self._hint.sizeHint().width() - 12
        fits = needed <= room
        if self._hint.isVisibleTo(self) != fits:
            self._hint.setVisible(fits)

    def _on_hover(self, scene_pos) -> None:
        if not self._pointing:
            self._pointing = True
            self._pointer_check.start()
        self._show_readout(self._readout_text(scene_pos))

    def _readout_text(self, scene_pos) -> str | None:
        record = self._record
        if record is None or self._layout is None or self._stale:
            return None
        return self._hover_text(scene_pos, record)

    def _refresh_readout(self, *_args) -> None:
        """Read out the point under the mouse again after what lies there may have changed
        while the mouse stood still (a new record drawn, rows or the panel scrolled, maps
        moved): the shown record's values of the pixel now under the mouse, or the summary
        when there is none or the mouse is no longer over the maps."""
        if not self._pointing:
            return
        where = self._graphics.viewport().mapFromGlobal(QCursor.pos())
        shown = plotting.shown_part(self._graphics, self._scroll)
        if not self.isVisible() or not shown.contains(where):
            self._end_hover()
            return
        self._show_readout(self._readout_text(self._graphics.mapToScene(where)))

    def _end_hover(self) -> None:
        """The mouse left the maps: the footer shows the summary again."""
        self._pointing = False
        self._pointer_check.stop()
        self._show_readout(None)

    def _show_readout(self, text: str | None) -> None:
        """The footer: the values under the mouse, or (``None``) the summary."""
        if text is not None and self._readout.text() != text:
            self._readout.setText(text)
        self._hovering = text is not None
        if self._readout.isVisibleTo(self) != self._hovering:
            self._readout.setVisible(self._hovering)
            if self._hovering:
                self._readout.setGeometry(self._footer.rect())
                self._readout.raise_()

    def _hover_text(self, scene_pos, record: StepRecord) -> str | None:
        first, end = self.page_range()
        dataset = self._controller.dataset
        if self._thumb_plot.vb.sceneBoundingRect().contains(scene_pos):
            point = self._thumb_plot.vb.mapSceneToView(scene_pos)
            scale = self._thumb_scale
            cell = self._thumb_layout.locate(point.x() / scale, point.y() / scale)
            if cell is None or first + cell[0] >= end:
                return None
            index = first + cell[0]
            rgb = dataset.images[index, :, cell[2], cell[3]]
            return (
                f"image {index + 1} ({dataset.class_names[int(dataset.labels[index])]}), "
                f"pixel x={cell[3]}, y={cell[2]}: RGB {tuple(int(v) for v in rgb)}"
            )
        for plot in (self._pre_plot, self._out_plot):
            if not plot.vb.sceneBoundingRect().contains(scene_pos):
                continue
            point = plot.vb.mapSceneToView(scene_pos)
            cell = self._layout.locate(point.x(), point.y())
            if cell is None or first + cell[0] >= end or record.pre_activation is None:
                return None
            row, f, i, j = cell
            index = first + row
            pre = float(record.pre_activation[index, f, i, j])
            out = float(record.activation[index, f, i, j])
            state = " (off: no gradient)" if self._activation == "relu" and out <= 0 else ""
            outputs = np.asarray(record.activation[index, f])
            relu = self._activation == "relu"
            share = float(np.mean(outputs <= 0 if relu else outputs < 0))
            word = "zero" if relu else "negative"
            return (
                f"image {index + 1}, filter {f}, x={j}, y={i}: pre-activation "
                f"{format_number(pre)} → output {format_number(out)}{state} · this map "
                f"{format_share(share)} {word}"
            )
        return None


def _runs(rows: np.ndarray):
    """(first, end) of each run of True in the boolean array ``rows``."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], rows.astype(np.int8), [0]))))
    return ((int(first), int(end)) for first, end in edges.reshape(-1, 2))


def _symmetric_ticks(limit: float) -> list[tuple[float, str]]:
    return [(-limit, format_number(-limit)), (0.0, "0"), (limit, format_number(limit))]


def _finite_or(value, array, symmetric: bool) -> float:
    """``value`` when finite, else the largest finite |value| (or value) of ``array``."""
    if value is not None and math.isfinite(value):
        return float(value)
    if array is None:
        return 1.0
    values = np.asarray(array, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if not finite.size:
        return 1.0
    return float(np.max(np.abs(finite)) if symmetric else np.max(finite))


def _clipped_note(values: np.ndarray, limit: float, *, symmetric: bool) -> list[str]:
    """Lines saying how many values on the page lie beyond a custom limit (none: no lines)."""
    with np.errstate(invalid="ignore"):
        beyond = np.abs(values) > limit if symmetric else values > limit
    count = int(np.count_nonzero(beyond))
    return [f"{count} clipped", "on this page"] if count else []

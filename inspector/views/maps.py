"""The conv layer's output for every image: pre-activation maps and ReLU outputs.

Rows are images (a page of at most ``PAGE_SIZE``), columns are filters. Three panels share the
rows: the input thumbnails (with the true label, the prediction and the loss), the
pre-activation maps (conv output + bias, diverging colours centred on 0) and the activation
maps, where an output that is exactly 0 (a dead ReLU output: no gradient flows back through it)
is black and positive outputs run from pale yellow to dark blue. Every colour bar is labelled
with its numeric range, and the share of zero outputs is written per (image, filter) pair and
per filter; when every output is 0 a banner says so.

For leaky ReLU and identity activations the output maps use the diverging colours as well, and
the fractions written are of negative outputs.

The two map mosaics hold uint8 colour codes (``inspector.plotting.encode_diverging`` /
``encode_activation``): map [n, f] of the page lies in tile (row n, column f) of
``mosaic_layout()``.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt, QTimer, Slot
from PySide6.QtGui import QFontMetricsF
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from inspector import plotting
from model.formatting import format_number
from model.record import StepRecord

PAGE_SIZE = 16
SCALE_MODES = ("Per iteration", "Whole run", "Custom")
SCALE_WORDS = {"Per iteration": "per iteration", "Whole run": "whole run", "Custom": "custom"}
SCALE_TIPS = (
    "Scaled to the largest value over all images in the shown iteration",
    "Scaled to the largest value in this run so far, so iterations compare by colour",
    "A fixed limit: pre-activations ± it, outputs 0 … it; values beyond take the end colours",
)
RUN_METRICS = {"pre": "pre_activation_absmax", "output": "activation_max"}
TITLE_HEIGHT = 22
SCALE_HEIGHT = 36
TOP_AXIS_HEIGHT = 22
#: Row height in pixels from which row labels have 3, 2 or 1 line(s).
ROW_LINE_PIXELS = {3: 52, 2: 34, 1: 0}
WRONG_PEN = "#d7191c"
BANNER_STYLES = {
    "dead": "background: #b2182b; color: white; padding: 5px 8px; border-radius: 3px;",
    "warning": "background: #fdd49e; color: #3a2600; padding: 5px 8px; border-radius: 3px;",
}
READOUT_HINT = "Hover a map or an image for its values · Ctrl+wheel zooms · drag pans · Fit resets"


class MapsView(QWidget):
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
        self._limits = {"pre": 1.0, "output": 1.0}
        self._row_ticks: tuple = ()
        self._filter_ticks: tuple = ()
        self._row_lines = 1
        self._pair_fractions = np.zeros((0, 0))
        self._step = 0
        self._max_step = 1
        self._shown_layout: plotting.MosaicLayout | None = None

        self._build_controls()
        self._build_graphics()
        self._build_layout()

        controller.session_reset.connect(self._on_session_reset)
        controller.record_shown.connect(self.show_record)
        self._rebuild(controller.shown)
        self.show_record(controller.shown)

    # -- public ------------------------------------------------------------------------------

    def plot_items(self) -> dict[str, pg.GraphicsLayout]:
        """The two map panels, each with its title, colour bar and scale label."""
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
        return {
            "pre": self._pre_scale.text.replace("<br>", "\n"),
            "output": self._out_scale.text.replace("<br>", "\n"),
        }

    def pair_labels(self) -> list[str]:
        """The zero (or negative) share written on each output map of the page, row by row."""
        return self._pair_layer.texts()

    def current_limits(self) -> dict[str, float]:
        """Pre-activation ± limit and output maximum the maps are drawn with."""
        return dict(self._limits)

    @Slot(object)
    def show_record(self, record: StepRecord) -> None:
        """Draw the page of ``record``: maps, colour bars, fractions, predictions, banner."""
        self._record = record
        if self.window().isVisible() and not self.isVisible():
            self._stale = True  # in a hidden tab: draw when shown
            return
        self._stale = False
        if self._record_shape(record) != self._shape:
            self._rebuild(record)
        self._draw(record)

    # -- construction ------------------------------------------------------------------------

    def _build_controls(self) -> None:
        self._heading = QLabel(self)
        self._heading.setObjectName("mapsHeading")
        bold = self._heading.font()
        bold.setBold(True)
        self._heading.setFont(bold)
        self._heading.setMinimumWidth(40)
        self._heading.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

        self._scale_mode = QComboBox(self)
        self._scale_mode.setObjectName("mapsScaleMode")
        for index, (mode, tip) in enumerate(zip(SCALE_MODES, SCALE_TIPS, strict=True)):
            self._scale_mode.addItem(mode)
            self._scale_mode.setItemData(index, tip, Qt.ItemDataRole.ToolTipRole)
        self._scale_mode.setToolTip(
            "How the colour scales of the maps are chosen; the range in use is written under "
            "each colour bar"
        )
        self._scale_mode.currentIndexChanged.connect(self._on_scale_changed)

        self._custom = QDoubleSpinBox(self)
        self._custom.setObjectName("mapsScaleCustom")
        self._custom.setDecimals(6)
        self._custom.setRange(1e-6, 1e12)
        self._custom.setValue(1.0)
        self._custom.setMaximumWidth(130)
        self._custom.setStepType(QDoubleSpinBox.StepType.AdaptiveDecimalStepType)
        self._custom.setKeyboardTracking(False)
        self._custom.setToolTip("Custom limit: pre-activations ± this, outputs 0 … this")
        self._custom.setVisible(False)
        self._custom.valueChanged.connect(self._on_scale_changed)

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
        self._fit.setToolTip("Show the whole page again after zooming (Ctrl+wheel) or panning")
        self._fit.clicked.connect(self.reset_zoom)

        self._banner = QLabel(self)
        self._banner.setObjectName("mapsDeadBanner")
        self._banner.setWordWrap(True)
        self._banner.setVisible(False)

        self._summary = QLabel(self)
        self._summary.setObjectName("mapsSummary")
        self._summary.setWordWrap(True)
        self._summary.setTextFormat(Qt.TextFormat.PlainText)
        self._summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self._readout = QLabel(READOUT_HINT, self)
        self._readout.setObjectName("mapsReadout")
        self._readout.setTextFormat(Qt.TextFormat.PlainText)
        self._readout.setStyleSheet(f"color: {plotting.MUTED};")
        self._readout.setMinimumWidth(10)

    def _build_graphics(self) -> None:
        self._graphics = pg.GraphicsLayoutWidget(self)
        self._graphics.setObjectName("mapsPlots")
        plotting.style_graphics_widget(self._graphics)
        root = self._graphics.ci

        self._thumb_image = plotting.new_image_item(None)
        self._thumb_plot = plotting.image_plot(self._thumb_image)
        self._pre_image = plotting.new_image_item(plotting.DIVERGING_CODE_LUT)
        self._pre_plot = plotting.image_plot(self._pre_image)
        self._out_image = plotting.new_image_item(plotting.ACTIVATION_CODE_LUT)
        self._out_plot = plotting.image_plot(self._out_image)
        for plot in (self._thumb_plot, self._pre_plot, self._out_plot):
            plot.vb.disableAutoRange()
            plot.hideAxis("bottom")
            plot.hideAxis("left")
            plot.showAxis("top")
            top = plot.getAxis("top")
            top.setHeight(TOP_AXIS_HEIGHT)
            plot.vb.sigRangeChangedManually.connect(self._on_zoomed)
        self._thumb_plot.showAxis("left")
        self._thumb_plot.getAxis("left").setStyle(autoExpandTextSpace=False)
        self._thumb_plot.getAxis("top").setTicks([[]])
        self._pre_plot.vb.setYLink(self._thumb_plot.vb)
        self._out_plot.vb.setYLink(self._thumb_plot.vb)
        self._thumb_plot.vb.sigResized.connect(self._on_view_resized)
        self._pre_plot.vb.sigRangeChanged.connect(self._on_range_changed)

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

        self._pre_bar = plotting.colour_bar(plotting.DIVERGING_COLORMAP)
        self._out_bar = plotting.colour_bar(plotting.ACTIVATION_BAR_COLORMAP)
        self._out_bar_diverging = False
        self._pre_scale = plotting.label_item("", size=12)
        self._out_scale = plotting.label_item("", size=12)

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
        self._thumb_panel.addItem(self._thumb_plot, row=1, col=0)
        self._thumb_spacer = plotting.label_item("", size=12)
        self._thumb_panel.addItem(self._thumb_spacer, row=2, col=0)
        for panel, title, plot, bar, scale in (
            (self._pre_panel, self._pre_title, self._pre_plot, self._pre_bar, self._pre_scale),
            (self._out_panel, self._out_title, self._out_plot, self._out_bar, self._out_scale),
        ):
            panel.addItem(title, row=0, col=0, colspan=2)
            panel.addItem(plot, row=1, col=0)
            panel.addItem(bar, row=1, col=1)
            panel.addItem(scale, row=2, col=0, colspan=2)
        for item in (self._thumb_title, self._pre_title, self._out_title):
            item.setFixedHeight(TITLE_HEIGHT)
        for item in (self._thumb_spacer, self._pre_scale, self._out_scale):
            item.setFixedHeight(SCALE_HEIGHT)
        for panel in (self._thumb_panel, self._pre_panel, self._out_panel):
            panel.setSpacing(2)
            panel.setContentsMargins(2, 2, 2, 2)

        scene = self._graphics.scene()
        scene.sigMouseMoved.connect(self._on_hover)
        self._graphics.installEventFilter(self)

    def _build_layout(self) -> None:
        controls = QHBoxLayout()
        controls.setContentsMargins(0, 0, 0, 0)
        controls.addWidget(self._heading, 1)
        caption = QLabel("Colour scale:", self)
        caption.setBuddy(self._scale_mode)
        controls.addWidget(caption)
        controls.addWidget(self._scale_mode)
        controls.addWidget(self._custom)
        controls.addSpacing(6)
        controls.addWidget(self._previous)
        controls.addWidget(self._page_box)
        controls.addWidget(self._next)
        controls.addWidget(self._fit)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(4)
        layout.addLayout(controls)
        layout.addWidget(self._banner)
        layout.addWidget(self._graphics, 1)
        layout.addWidget(self._readout)
        layout.addWidget(self._summary)

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
        self._pair_fractions = np.zeros((0, 0))
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
        names = {"relu": "ReLU output", "leaky_relu": "leaky ReLU output", "identity": "output"}
        self._out_title.setText(names.get(self._activation, "output"))

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
        shown_pre, shown_output = pre[:, :, ::step, ::step], output[:, :, ::step, ::step]
        relu = self._activation == "relu"
        limits = self._chosen_limits(record)
        self._limits = limits

        codes = self._codes
        scratch = self._scratch[:count]
        # The metrics hold max |value| over all maps: finite means no NaN anywhere.
        check = not math.isfinite(record.metrics.get("pre_activation_absmax", math.nan))
        encode_output = plotting.encode_activation if relu else plotting.encode_diverging
        plotting.encode_diverging(
            shown_pre, limits["pre"], codes["pre"][:count], scratch, check_nan=check
        )
        encode_output(
            shown_output, limits["output"], codes["output"][:count], scratch, check_nan=check
        )
        for name in ("pre", "output"):
            codes[name][count:] = plotting.GAP_CODE
            self._shown_layout.fill(self._mosaics[name], codes[name])
        self._pre_image.setImage(self._mosaics["pre"], levels=(0, 255), autoLevels=False)
        self._out_image.setImage(self._mosaics["output"], levels=(0, 255), autoLevels=False)

        self._draw_bars(record, pre, output, limits, relu)
        if step == 1:
            fractions = self._pair_share(codes["output"][:count], output, relu)
        else:
            # Maps this small on screen get no labels (LabelLayer); hover computes its own.
            fractions = np.full((count, self._layout.cols), np.nan)
        if not np.array_equal(fractions, self._pair_fractions, equal_nan=True):
            self._pair_fractions = fractions
            word = "zero" if relu else "negative"
            long = [f"{_percent(v)} {word}" for v in fractions.reshape(-1)]
            short = [_percent(v) for v in fractions.reshape(-1)]
            blank = [""] * (self._layout.rows - count) * self._layout.cols
            self._pair_layer.set_texts(long + blank, short + blank)
        self._draw_filter_headers(record, relu)
        self._draw_rows(record, first, end)
        self._draw_banner_and_summary(record, relu)

    def _show_missing_maps(self) -> None:
        for name in ("pre", "output"):
            self._mosaics[name][...] = plotting.GAP_CODE
        self._pre_image.setImage(self._mosaics["pre"], levels=(0, 255), autoLevels=False)
        self._out_image.setImage(self._mosaics["output"], levels=(0, 255), autoLevels=False)
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
        return {name: value if value > 0 else 1.0 for name, value in current.items()}

    def _draw_bars(self, record, pre, output, limits, relu) -> None:
        mode = self._scale_mode.currentText()
        word = SCALE_WORDS[mode]
        total = len(self._controller.dataset)
        scope = f", all {total} images" if self._page_count > 1 and mode != "Custom" else ""
        pre_limit = limits["pre"]
        widened = plotting.set_bar_range(
            self._pre_bar, -pre_limit, pre_limit, _symmetric_ticks(pre_limit)
        )
        pre_text = f"±{format_number(pre_limit)}<br>({word}{scope}"
        out_limit = limits["output"]
        if relu:
            block = out_limit * plotting.DEAD_BLOCK / (1 - plotting.DEAD_BLOCK)
            widened |= plotting.set_bar_range(
                self._out_bar,
                -block,
                out_limit,
                [(-block / 2, "0 dead"), (out_limit, format_number(out_limit))],
            )
            all_zero = record.metrics.get("activation_max") == 0
            if all_zero and mode != "Custom":
                out_text = "every output is 0<br>(dead, black"
            else:
                out_text = f"0 (dead, black) … {format_number(out_limit)}<br>({word}{scope}"
        else:
            widened |= plotting.set_bar_range(
                self._out_bar, -out_limit, out_limit, _symmetric_ticks(out_limit)
            )
            out_text = f"±{format_number(out_limit)}<br>({word}{scope}"
        if mode == "Custom":
            pre_text += _clipped_note(pre, pre_limit, symmetric=True)
            out_text += _clipped_note(output, out_limit, symmetric=not relu)
        if not math.isfinite(record.metrics.get("pre_activation_absmax", math.nan)):
            pre_text += "; some values not finite (NaN grey)"
            out_text += "; some values not finite (NaN grey)"
        pre_text += ")"
        out_text += ")"
        if widened:
            self._size_panels()
        if self._pre_scale.text != pre_text:
            self._pre_scale.setText(pre_text)
        if self._out_scale.text != out_text:
            self._out_scale.setText(out_text)

    @staticmethod
    def _pair_share(codes: np.ndarray, output: np.ndarray, relu: bool) -> np.ndarray:
        """(n, F) share of outputs that are 0 (ReLU) or negative (other activations)."""
        per_map = output.shape[2] * output.shape[3]
        if relu:
            return np.count_nonzero(codes == plotting.DEAD_CODE, axis=(2, 3)) / per_map
        return np.count_nonzero(output < 0, axis=(2, 3)) / per_map

    def _filter_shares(self, record: StepRecord, relu: bool) -> np.ndarray:
        if relu:
            return np.asarray(record.dead_fraction_per_filter, dtype=np.float64)
        pre = record.pre_activation
        return np.count_nonzero(record.activation < 0, axis=(0, 2, 3)) / (
            pre.shape[0] * pre.shape[2] * pre.shape[3]
        )

    def _draw_filter_headers(self, record: StepRecord, relu: bool) -> None:
        shares = self._filter_shares(record, relu)
        self._shares = shares
        filters = self._layout.cols
        pre_ticks, out_ticks = [], []
        for f in range(filters):
            x = self._layout.tile_centre(0, f)[0]
            name = f"filter {f}" if filters <= 4 else str(f)
            pre_ticks.append((x, name))
            word = "zero" if relu else "negative"
            out_ticks.append((x, f"{_percent(shares[f])} {word}" if filters <= 4 else name))
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
            predicted = int(probability >= 0.5)
            confidence = probability if predicted else 1.0 - probability
            mark = "✓" if predicted == label else "✗ wrong"
            parts = [
                f"#{index + 1} {names[label]}",
                f"→ {names[predicted]} {_percent(confidence)} {mark}",
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
            templates = [f"{number} {longest}", f"→ {longest} 100% ✗ wrong"]
        if lines > 2:
            templates.append("loss 8,888,888.8")
        metrics = QFontMetricsF(self._thumb_plot.getAxis("left").style["tickFont"])
        return max(metrics.horizontalAdvance(text) for text in templates) + 14

    def _thumb_width(self) -> float:
        return self._thumb_layout.tile_width * self._thumb_scale

    def _draw_banner_and_summary(self, record: StepRecord, relu: bool) -> None:
        shares = self._shares
        filters = len(shares)
        if relu and record.metrics.get("activation_max") == 0:
            subject = "the filter is dead" if filters == 1 else "every filter is dead"
            self._set_banner(
                "dead",
                f"All ReLU outputs are 0: {subject} — see Diagnostics. The maps are black "
                "because no image gives any filter a positive response, so no gradient flows "
                "back into the filters.",
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
            )
        else:
            self._banner.setVisible(False)
        total = len(self._controller.dataset)
        word = "zero (dead)" if relu else "negative"
        parts = []
        for f, share in enumerate(shares):
            text = f"filter {f} {_percent(share)}"
            since = record.dead_since[f] if f < len(record.dead_since) else None
            if relu and since is not None:
                text += f" (dead since iteration {since})"
            parts.append(text)
        summary = f"Outputs that are {word}, over all {total} images: " + " · ".join(parts)
        if self._summary.text() != summary:
            self._summary.setText(summary)

    def _set_banner(self, kind: str, text: str) -> None:
        self._banner.setStyleSheet(BANNER_STYLES[kind])
        self._banner.setText(text)
        self._banner.setVisible(True)

    # -- interaction -------------------------------------------------------------------------

    @Slot()
    def reset_zoom(self) -> None:
        """Fit the page's rows in the panels again."""
        self._zoomed = False
        self._fit_views()

    def _fit_views(self) -> None:
        if self._layout is None:
            return
        rect = self._layout.data_rect()
        self._pre_plot.vb.setRange(rect=rect, padding=0.02)
        self._out_plot.vb.setRange(rect=rect, padding=0.02)
        height = rect.height()
        self._thumb_plot.vb.setRange(
            xRange=(0, self._thumb_width()), yRange=(0, height), padding=0.02
        )

    def _on_zoomed(self, *_args) -> None:
        self._zoomed = True

    def _on_view_resized(self, *_args) -> None:
        if not self._zoomed:
            self._fit_views()

    def _on_range_changed(self, *_args) -> None:
        self._update_step(plotting.pixels_per_unit(self._pre_plot.vb))

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

    def _on_scale_changed(self, *_args) -> None:
        self._custom.setVisible(self._scale_mode.currentText() == "Custom")
        if self._record is not None:
            self.show_record(self._record)

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt override)
        if watched is self._graphics and event.type() == QEvent.Type.Resize:
            self._size_panels()
        return super().eventFilter(watched, event)

    def _size_panels(self) -> None:
        """Give the three plots widths in proportion to what they show, so that one map pixel
        is as large in every panel and rows line up at the largest size that fits."""
        if self._layout is None:
            return
        rect = self._layout.data_rect()
        margin = 1.04
        units_w = (self._thumb_width() + 2 * rect.width()) * margin
        units_h = rect.height() * margin
        bars = sum(bar.axis.width() + 30 for bar in (self._pre_bar, self._out_bar))
        free_h = self._graphics.height() - TITLE_HEIGHT - SCALE_HEIGHT - TOP_AXIS_HEIGHT - 24
        for lines in (3, 2, 1):
            left = self._row_text_width(lines)
            free_w = self._graphics.width() - left - bars - 40
            scale = max(min(free_w / units_w, free_h / units_h), 0.05)
            if scale * self._layout.tile_height >= ROW_LINE_PIXELS[lines]:
                break
        axis = self._thumb_plot.getAxis("left")
        if axis.width() != int(left):
            axis.setWidth(int(left))
        if lines != self._row_lines:
            self._row_lines = lines
            self._row_ticks = ()
            if self._record is not None and self._record.pre_activation is not None:
                self._draw_rows(self._record, *self.page_range())
        self._thumb_plot.setFixedWidth(left + self._thumb_width() * margin * scale)
        self._pre_plot.setFixedWidth(rect.width() * margin * scale)
        self._out_plot.setFixedWidth(rect.width() * margin * scale)
        self._update_step(scale)
        if not self._zoomed:
            QTimer.singleShot(0, self._fit_views)

    def showEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().showEvent(event)
        if self._stale and self._record is not None:
            QTimer.singleShot(0, lambda: self.show_record(self._record))

    def _on_hover(self, scene_pos) -> None:
        text = None
        record = self._record
        if record is not None and self._layout is not None:
            text = self._hover_text(scene_pos, record)
        text = READOUT_HINT if text is None else text
        if self._readout.text() != text:
            self._readout.setText(text)

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
            state = " (dead)" if self._activation == "relu" and out <= 0 else ""
            outputs = np.asarray(record.activation[index, f])
            relu = self._activation == "relu"
            share = float(np.mean(outputs <= 0 if relu else outputs < 0))
            word = "zero" if relu else "negative"
            return (
                f"image {index + 1}, filter {f}, x={j}, y={i}: pre-activation "
                f"{format_number(pre)} → output {format_number(out)}{state} · this map "
                f"{_percent(share)} {word}"
            )
        return None


def _symmetric_ticks(limit: float) -> list[tuple[float, str]]:
    return [(-limit, format_number(-limit)), (0.0, "0"), (limit, format_number(limit))]


def _percent(share: float) -> str:
    """'100%', '12%', '<1%' (never a misleading 0% or 100%)."""
    if not math.isfinite(share):
        return "–"
    if share == 0 or share == 1:
        return f"{share:.0%}"
    if share < 0.01:
        return "<1%"
    if share > 0.99:
        return ">99%"
    return f"{share:.0%}"


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


def _clipped_note(values: np.ndarray, limit: float, *, symmetric: bool) -> str:
    with np.errstate(invalid="ignore"):
        beyond = np.abs(values) > limit if symmetric else values > limit
    count = int(np.count_nonzero(beyond))
    if not count:
        return ""
    bound = f"±{format_number(limit)}" if symmetric else format_number(limit)
    return f"; {count} on this page clipped beyond {bound}"

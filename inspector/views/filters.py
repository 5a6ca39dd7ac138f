"""The conv filters of the shown iteration: weights, the gradient and the update that made them.

Each group (weights / gradient / update) is one mosaic heatmap: one tile row per input channel
(R, G, B), one tile column per filter, each tile the K×K kernel of that filter and channel. The
diverging colour map is centred on 0 with explicit, labelled limits (never auto-levels), the
value is written in every cell while there are few enough cells to read, and the text under the
heatmaps spells out the update rule with this iteration's numbers, so that "why did the filter
move so far" can be read off the screen.

Mosaic layout (``mosaic_layout()``, a ``plotting.MosaicLayout``): weight [f, c, i, j] lies in
tile (row c, column f), cell [i, j]; ``layout.cell_pixel(c, f, i, j)`` indexes the group's
``ImageItem.image`` (float values, NaN in the gaps) and ``layout.cell_centre(c, f, i, j)`` is the
cell's centre in plot coordinates.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, Qt, QTimer, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from inspector import plotting
from model.colormap import DIVERGING_LUT
from model.formatting import format_compact, format_number, format_range
from model.record import StepRecord

#: (group, StepRecord attribute, plot name, title above the heatmap).
GROUPS = (
    ("weights", "params", "filters-weights", "weights"),
    ("gradient", "grads", "filters-gradient", "gradient"),
    ("update", "update", "filters-update", "update (new − old)"),
)
GROUP_NAMES = tuple(name for name, *_ in GROUPS)
#: Metric column giving a group's largest |value| at every iteration ("Whole run" scale).
RUN_METRICS = {
    "weights": "conv_weight_absmax",
    "gradient": "conv_grad_absmax",
    "update": "conv_update_absmax",
}
SCALE_MODES = ("Per iteration", "Whole run", "Custom")
SCALE_WORDS = {"Per iteration": "per iteration", "Whole run": "whole run", "Custom": "custom"}
SCALE_TIPS = (
    "Each heatmap is scaled to its own largest |value| in the shown iteration",
    "Each heatmap is scaled to the largest |value| it has had in this run so far, so "
    "iterations can be compared by colour",
    "One fixed ± limit for all three heatmaps; values beyond it are drawn in the end colours",
)
#: Cells per group up to which every cell gets a TextItem (4 filters of 3×3×3). Each TextItem
#: costs about 25 µs to update and 25 µs to paint, so 3 × 108 of them stay within a frame.
TEXT_CELL_BUDGET = 108
#: While training runs, cell texts are rewritten at most this often (images every frame).
TEXT_INTERVAL_S = 0.1
#: Pixels a group needs beside / above its heatmap (axes, colour bar, title, scale label).
GROUP_EXTRA_WIDTH = 130
GROUP_EXTRA_HEIGHT = 80
ARRANGEMENTS = ("row", "column")
#: The widest texts ``format_compact`` writes without and with an exponent.
WIDEST_TEXTS = {False: ("-0.00888", "-888"), True: ("-8.88e-88",)}
NO_UPDATE_MESSAGE = "No update yet\n(iteration 0)"
HOVER_HINT = "hover a cell for its values · Ctrl+wheel zooms · drag pans · Fit resets"
READOUT_HINT = HOVER_HINT[0].upper() + HOVER_HINT[1:]


@dataclass
class _Group:
    """The items of one heatmap group; rebuilt (inner items only) on session reset."""

    name: str
    widget: pg.GraphicsLayoutWidget
    plot: pg.PlotItem
    image: pg.ImageItem
    bar: pg.ColorBarItem
    scale_label: pg.LabelItem
    frame: pg.PlotCurveItem
    message: pg.TextItem
    buffer: np.ndarray | None = None
    texts: list[pg.TextItem] = field(default_factory=list)
    text_cache: list[tuple[str, bool]] = field(default_factory=list)
    strings: list[str] = field(default_factory=list)
    light: np.ndarray | None = None
    fit: tuple[int, bool] | None = None
    values: np.ndarray | None = None
    limit: float = 1.0
    filter_ticks: tuple = ()


class FiltersView(QWidget):
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
        self._layout: plotting.MosaicLayout | None = None
        self._arrangement: str | None = None
        self._limits = {name: 1.0 for name in GROUP_NAMES}
        self._stale = False
        self._hovering = False
        self._zoomed = False
        self._hint = READOUT_HINT
        self._last_text_time = -math.inf
        self._text_timer = QTimer(self)
        self._text_timer.setSingleShot(True)
        self._text_timer.timeout.connect(self._update_texts)

        self._build_controls()
        self._groups = {name: self._build_group(name, title) for name, _, _, title in GROUPS}
        self._build_layout()

        controller.session_reset.connect(self._on_session_reset)
        controller.record_shown.connect(self.show_record)
        controller.running_changed.connect(self._on_running_changed)
        self._rebuild(controller.shown)
        self.show_record(controller.shown)

    # -- public ------------------------------------------------------------------------------

    def plot_items(self) -> dict[str, pg.GraphicsLayout]:
        """Each group's heatmap with its title, colour bar and scale label, for export."""
        return {plot_name: self._groups[name].widget.ci for name, _, plot_name, _ in GROUPS}

    def current_limits(self) -> dict[str, float]:
        """The ± colour limit each group is drawn with now ('weights', 'gradient', 'update')."""
        return dict(self._limits)

    def mosaic_layout(self) -> plotting.MosaicLayout | None:
        """Where each weight lies in every group's mosaic (see the module docstring)."""
        return self._layout

    def image_item(self, name: str) -> pg.ImageItem:
        return self._groups[name].image

    def plot(self, name: str) -> pg.PlotItem:
        return self._groups[name].plot

    def cell_text_items(self, name: str) -> list[pg.TextItem]:
        """The TextItems of a group's cells in weight order [f, c, i, j] (empty when the
        filters have too many cells to write in)."""
        return list(self._groups[name].texts)

    def scale_labels(self) -> dict[str, str]:
        """The text under each colour bar, e.g. '±65,201.4\n(per iteration)'."""
        return {
            name: group.scale_label.text.replace("<br>", "\n")
            for name, group in self._groups.items()
        }

    def message_visible(self, name: str) -> bool:
        """Whether group ``name`` shows the 'no update yet' message instead of values."""
        return self._groups[name].message.isVisible()

    @Slot(object)
    def show_record(self, record: StepRecord) -> None:
        """Draw ``record``: heatmaps, colour bars, scale labels, cell values and the equation."""
        self._record = record
        if self.window().isVisible() and not self.isVisible():
            self._stale = True  # in a hidden tab: draw when shown
            return
        self._stale = False
        if record.params["conv.weight"].shape != self._shape:
            self._rebuild(record)
        values = self._group_values(record)
        self._limits = self._chosen_limits(record, values)
        for name, group in self._groups.items():
            self._draw_group(group, values[name], self._limits[name])
        self._update_filter_ticks(record)
        self._update_equation(record)
        self._request_texts()

    # -- construction ------------------------------------------------------------------------

    def _build_controls(self) -> None:
        self._heading = QLabel(self)
        self._heading.setObjectName("filtersHeading")
        self._heading.setTextFormat(Qt.TextFormat.PlainText)
        heading_font = self._heading.font()
        heading_font.setBold(True)
        self._heading.setFont(heading_font)
        self._heading.setMinimumWidth(40)
        self._heading.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

        self._scale_mode = QComboBox(self)
        self._scale_mode.setObjectName("filterScaleMode")
        for index, (mode, tip) in enumerate(zip(SCALE_MODES, SCALE_TIPS, strict=True)):
            self._scale_mode.addItem(mode)
            self._scale_mode.setItemData(index, tip, Qt.ItemDataRole.ToolTipRole)
        self._scale_mode.setToolTip(
            "How the colour scale of the heatmaps is chosen; the limit in use is written "
            "under each colour bar"
        )
        self._scale_mode.currentIndexChanged.connect(self._on_scale_changed)

        self._custom = QDoubleSpinBox(self)
        self._custom.setObjectName("filterScaleCustom")
        self._custom.setPrefix("± ")
        self._custom.setDecimals(6)
        self._custom.setRange(1e-6, 1e12)
        self._custom.setValue(1.0)
        self._custom.setMaximumWidth(130)
        self._custom.setStepType(QDoubleSpinBox.StepType.AdaptiveDecimalStepType)
        self._custom.setKeyboardTracking(False)
        self._custom.setToolTip(
            "Custom colour limit: values beyond ± this are drawn in the end colours and "
            "counted under the colour bar"
        )
        self._custom.setVisible(False)
        self._custom.valueChanged.connect(self._on_scale_changed)

        self._fit = QToolButton(self)
        self._fit.setObjectName("filtersResetZoom")
        self._fit.setText("Fit")
        self._fit.setToolTip("Show every filter again after zooming (Ctrl+wheel) or panning")
        self._fit.clicked.connect(self.reset_zoom)

        self._equation = QLabel(self)
        self._equation.setObjectName("filtersEquation")
        self._equation.setTextFormat(Qt.TextFormat.PlainText)
        self._equation.setWordWrap(True)
        self._equation.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._equation.setToolTip("The update of the shown iteration, with its numbers")

        self._readout = QLabel(READOUT_HINT, self)
        self._readout.setObjectName("filtersReadout")
        self._readout.setTextFormat(Qt.TextFormat.PlainText)
        self._readout.setStyleSheet(f"color: {plotting.MUTED};")
        self._readout.setMinimumWidth(10)

    def _build_group(self, name: str, title: str) -> _Group:
        widget = pg.GraphicsLayoutWidget(self)
        widget.setObjectName(f"filters{name.capitalize()}Plot")
        widget.setMinimumSize(120, 90)
        widget.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        plotting.style_graphics_widget(widget)
        title_item = plotting.label_item(title, size=13, bold=True)
        image = plotting.new_image_item(DIVERGING_LUT)
        plot = plotting.image_plot(image)
        plot.vb.disableAutoRange()
        plot.showAxis("left")
        plot.showAxis("bottom")
        frame = pg.PlotCurveItem(connect="pairs", pen=pg.mkPen(plotting.TILE_FRAME, width=1))
        frame.setZValue(5)
        plot.addItem(frame)
        message = pg.TextItem(NO_UPDATE_MESSAGE, color=plotting.FOREGROUND, anchor=(0.5, 0.5))
        message.setFont(plotting.font(12))
        message.fill = pg.mkBrush(255, 255, 255, 230)
        message.border = pg.mkPen(plotting.MUTED)
        message.setZValue(20)
        message.setVisible(False)
        plot.addItem(message)
        bar = plotting.colour_bar(plotting.DIVERGING_COLORMAP)
        scale_label = plotting.label_item("", size=12)
        widget.ci.addItem(title_item, row=0, col=0, colspan=2)
        widget.ci.addItem(plot, row=1, col=0)
        widget.ci.addItem(bar, row=1, col=1)
        widget.ci.addItem(scale_label, row=2, col=0, colspan=2)
        group = _Group(name, widget, plot, image, bar, scale_label, frame, message)
        plot.vb.sigResized.connect(lambda _vb, g=group: self._on_view_resized(g))
        plot.vb.sigRangeChangedManually.connect(self._on_zoomed)
        plot.vb.sigRangeChanged.connect(lambda *_args, g=group: self._fit_text(g))
        widget.scene().sigMouseMoved.connect(lambda pos, g=group: self._on_hover(g, pos))
        return group

    def _build_layout(self) -> None:
        controls = QHBoxLayout()
        controls.setContentsMargins(0, 0, 0, 0)
        controls.addWidget(self._heading, 1)
        scale_caption = QLabel("Colour scale:", self)
        scale_caption.setBuddy(self._scale_mode)
        controls.addWidget(scale_caption)
        controls.addWidget(self._scale_mode)
        controls.addWidget(self._custom)
        controls.addWidget(self._fit)

        self._plots = QWidget(self)
        self._grid = QGridLayout(self._plots)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setSpacing(4)
        self._plots.installEventFilter(self)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(4)
        layout.addLayout(controls)
        layout.addWidget(self._plots, 1)
        layout.addWidget(self._readout)
        layout.addWidget(self._equation)

    def _on_session_reset(self, record: StepRecord) -> None:
        self._rebuild(record)
        self.show_record(record)

    def _rebuild(self, record: StepRecord) -> None:
        """Create the items that depend on F and K: mosaic buffers, frames, cell texts."""
        weights = record.params["conv.weight"]
        filters, channels, kernel, _ = weights.shape
        self._shape = weights.shape
        layout = plotting.MosaicLayout(
            rows=channels,
            cols=filters,
            tile_height=kernel,
            tile_width=kernel,
            gap=1,
            scale=plotting.tile_scale(kernel),
        )
        self._layout = layout
        frame_x, frame_y = plotting.frame_pairs(layout.tile_rects())
        grid_x, grid_y = plotting.grid_lines(layout)
        with_text = filters * channels * kernel * kernel <= TEXT_CELL_BUDGET
        centre_x, centre_y = layout.data_rect().center().x(), layout.data_rect().center().y()
        for group in self._groups.values():
            group.buffer = layout.allocate(np.float64, np.nan)
            group.image.setImage(group.buffer, levels=(-1.0, 1.0))
            group.image.setRect(layout.data_rect())
            group.frame.setData(
                np.concatenate([frame_x, grid_x]), np.concatenate([frame_y, grid_y])
            )
            group.message.setPos(QPointF(centre_x, centre_y))
            for item in group.texts:
                group.plot.removeItem(item)
            group.texts = []
            group.text_cache = []
            group.strings = []
            group.fit = None
            group.filter_ticks = ()
            if with_text:
                for f, c, i, j in np.ndindex(filters, channels, kernel, kernel):
                    item = pg.TextItem("", color="w", anchor=(0.5, 0.5))
                    item.setZValue(10)
                    item.setPos(*layout.cell_centre(c, f, i, j))
                    item.setVisible(False)
                    group.plot.addItem(item)
                    group.texts.append(item)
                group.text_cache = [("", False)] * len(group.texts)
            left = group.plot.getAxis("left")
            names = plotting.CHANNEL_NAMES
            left.setTicks([[(layout.tile_centre(c, 0)[1], names[c]) for c in range(channels)]])
            left.setStyle(tickFont=plotting.font(12, bold=True))
        self._arrange(force=True)
        self.reset_zoom()

    # -- drawing -----------------------------------------------------------------------------

    @staticmethod
    def _group_values(record: StepRecord) -> dict[str, np.ndarray | None]:
        values = {}
        for name, attribute, _, _ in GROUPS:
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
            limits[name] = largest if largest > 0 else 1.0
        return limits

    def _draw_group(self, group: _Group, values: np.ndarray | None, limit: float) -> None:
        group.values = values
        group.limit = limit
        layout = self._layout
        if values is None:
            group.buffer.fill(np.nan)
        else:
            layout.fill(group.buffer, np.swapaxes(values, 0, 1))
        group.image.setImage(group.buffer, levels=(-limit, limit))
        group.message.setVisible(values is None)
        group.frame.setVisible(values is not None)
        group.bar.setVisible(values is not None)
        plotting.set_bar_range(
            group.bar,
            -limit,
            limit,
            [(-limit, format_number(-limit)), (0.0, "0"), (limit, format_number(limit))],
        )
        text = self._scale_text(values, limit)
        if group.scale_label.text != text:
            group.scale_label.setText(text)

    def _scale_text(self, values: np.ndarray | None, limit: float) -> str:
        if values is None:
            return "no update yet"
        mode = self._scale_mode.currentText()
        finite = np.isfinite(values)
        nonfinite = int(values.size - np.count_nonzero(finite))
        if not np.any(values[finite]):
            text = "all values are 0" if nonfinite == 0 else "no finite non-zero value"
            return text + f"<br>(scale ±{format_number(limit)}, {SCALE_WORDS[mode]})"
        text = f"±{format_number(limit)}<br>({SCALE_WORDS[mode]}"
        if mode == "Custom":
            with np.errstate(invalid="ignore"):
                beyond = int(np.count_nonzero(np.abs(values[finite]) > limit))
            if beyond:
                text += f"; {beyond} clipped beyond ±{format_number(limit)}"
        if nonfinite:
            text += f"; {nonfinite} not finite"
        return text + ")"

    def _update_filter_ticks(self, record: StepRecord) -> None:
        filters = self._shape[0]
        ticks = []
        for f in range(filters):
            dead = f < len(record.dead_since) and record.dead_since[f] is not None
            label = f"filter {f}" if filters <= 4 else str(f)
            if dead:
                label += " (dead)" if filters <= 4 else "✝"
            ticks.append((self._layout.tile_centre(0, f)[0], label))
        ticks = tuple(ticks)
        for group in self._groups.values():
            if group.filter_ticks != ticks:
                group.filter_ticks = ticks
                group.plot.getAxis("bottom").setTicks([list(ticks)])

    def _update_equation(self, record: StepRecord) -> None:
        weights = np.asarray(record.params["conv.weight"])
        bias = np.asarray(record.params["conv.bias"])
        filters, _, kernel, _ = weights.shape
        heading = f"Iteration {record.iteration} · {filters} × 3×{kernel}×{kernel}"
        self._heading.setText(heading)
        if record.update is None:
            lines = [
                "Iteration 0 is the starting point: no gradient and no update yet. Press Step "
                "(F10) to make the first update.",
                f"Weights {_range(weights)} · conv bias {_values(bias)}",
            ]
        else:
            update = np.asarray(record.update["conv.weight"])
            gradient = np.asarray(record.grads["conv.weight"])
            bias_update = np.asarray(record.update["conv.bias"])
            with np.errstate(invalid="ignore", over="ignore"):  # inf − inf in a diverged run
                weights_before, bias_before = weights - update, bias - bias_update
            lines = [
                f"Iteration {record.iteration}, computed on {self._batch_text(record)}"
                f"{self._dead_text(record)}:",
                self._rule_text(record, gradient, update),
                f"Weights {_range(weights_before)} → {_range(weights)} · conv bias "
                f"{_values(bias_before)} → {_values(bias)}",
            ]
        text = "\n".join(lines)
        if self._equation.text() != text:
            self._equation.setText(text)

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
                f"update = −lr × velocity = −{lr} × {_range(velocity)} = {_range(update)}, "
                f"velocity = {format_number(settings.momentum)} × previous velocity + "
                f"{'clipped ' if clipped else ''}gradient {_range(gradient)}"
            )
        elif clipped:
            text = (
                f"update = −lr × clip × gradient = −{lr} × {format_number(record.clip_scale)} "
                f"× {_range(gradient)} = {_range(update)}"
            )
        else:
            text = f"update = −lr × gradient = −{lr} × {_range(gradient)} = {_range(update)}"
        if clipped:
            text += (
                f" (gradient norm above {format_number(settings.clip_norm)}: scaled by "
                f"{format_number(record.clip_scale)})"
            )
        return text

    def _batch_text(self, record: StepRecord) -> str:
        dataset = self._controller.dataset
        batch = record.batch
        if len(batch) == 1 and batch[0] < len(dataset):
            index = batch[0]
            name = dataset.class_names[int(dataset.labels[index])]
            return f"image {index + 1} ({name})"
        if len(batch) == len(dataset):
            return f"all {len(batch)} images"
        return f"{len(batch)} images"

    # -- cell values -------------------------------------------------------------------------

    def _request_texts(self) -> None:
        """Rewrite the cells now, or at most every ``TEXT_INTERVAL_S`` while training runs."""
        if not any(group.texts for group in self._groups.values()):
            return
        wait = TEXT_INTERVAL_S - (time.monotonic() - self._last_text_time)
        if self._controller.is_running and wait > 0:
            if not self._text_timer.isActive():
                self._text_timer.start(int(wait * 1000) + 1)
            return
        self._text_timer.stop()
        self._update_texts()

    def _on_running_changed(self, running: bool) -> None:
        """When training stops, write the cells of the last record now, not a moment later."""
        if not running and self._text_timer.isActive():
            self._text_timer.stop()
            self._update_texts()

    def _update_texts(self) -> None:
        self._last_text_time = time.monotonic()
        for group in self._groups.values():
            if not group.texts:
                continue
            if group.values is None:
                group.strings = []
            else:
                group.strings = [format_compact(v) for v in group.values.reshape(-1)]
                group.light = plotting.light_cells(group.values.reshape(-1), group.limit)
            self._fit_text(group, force=True)
        self._update_hint()

    def _fit_text(self, group: _Group, force: bool = False) -> None:
        """Write the cell values at the largest font (9..14 px) their cells hold on screen:
        on one line, else split before the exponent ('-6.51' over 'e+04'); hidden when even
        that does not fit (the hover read-out still gives every value).

        The size is chosen for the widest text of the values' kind (with or without an
        exponent), not for the shown values, so it stays put while values change.
        """
        if not group.texts:
            return
        fit = None
        if group.strings:
            exponent = any("e" in text for text in group.strings)
            templates = WIDEST_TEXTS[exponent]
            fit = plotting.fit_cell_texts(templates, plotting.pixels_per_unit(group.plot.vb))
        if fit == group.fit and not force:
            return
        changed_fit = fit != group.fit
        group.fit = fit
        if fit is None:
            for item in group.texts:
                if item.isVisible():
                    item.setVisible(False)
            if changed_fit:
                self._update_hint()
            return
        size, wrapped = fit
        if changed_fit:
            cell_font = plotting.font(size)
            for item in group.texts:
                item.setFont(cell_font)
        for index, (item, text) in enumerate(zip(group.texts, group.strings, strict=True)):
            entry = (plotting.split_exponent(text) if wrapped else text, bool(group.light[index]))
            if group.text_cache[index] != entry:
                if group.text_cache[index][0] != entry[0]:
                    item.setText(entry[0])
                if group.text_cache[index][1] != entry[1]:
                    item.setColor("k" if entry[1] else "w")
                group.text_cache[index] = entry
            if not item.isVisible():
                item.setVisible(True)
        if changed_fit:
            self._update_hint()

    def _update_hint(self) -> None:
        """The read-out line's hint, when no cell is hovered."""
        hidden = any(
            group.texts and group.strings and group.fit is None for group in self._groups.values()
        )
        too_many = any(
            not group.texts and group.values is not None for group in self._groups.values()
        )
        hint = READOUT_HINT
        if hidden:
            hint = "Cells too small for values: " + HOVER_HINT
        elif too_many:
            hint = "Too many cells for values: " + HOVER_HINT
        self._hint = hint
        if not self._hovering:
            self._readout.setText(hint)

    # -- interaction -------------------------------------------------------------------------

    @Slot()
    def reset_zoom(self) -> None:
        """Show all tiles of every group again (and keep them fitted as the panel resizes)."""
        self._zoomed = False
        if self._layout is None:
            return
        for group in self._groups.values():
            group.plot.vb.setRange(rect=self._layout.data_rect(), padding=0.04)

    def _on_zoomed(self, *_args) -> None:
        self._zoomed = True

    def _on_view_resized(self, group: _Group) -> None:
        if not self._zoomed and self._layout is not None:
            group.plot.vb.setRange(rect=self._layout.data_rect(), padding=0.04)
        self._fit_text(group)

    def _on_scale_changed(self, *_args) -> None:
        self._custom.setVisible(self._scale_mode.currentText() == "Custom")
        self._last_text_time = -math.inf
        if self._record is not None:
            self.show_record(self._record)

    def _on_hover(self, group: _Group, scene_pos) -> None:
        text = None
        if self._layout is not None and group.plot.vb.sceneBoundingRect().contains(scene_pos):
            point = group.plot.vb.mapSceneToView(scene_pos)
            cell = self._layout.locate(point.x(), point.y())
            if cell is not None:
                text = self._cell_readout(*cell)
        self._hovering = text is not None
        text = self._hint if text is None else text
        if self._readout.text() != text:
            self._readout.setText(text)

    def _cell_readout(self, channel: int, f: int, i: int, j: int) -> str:
        record = self._record
        where = f"filter {f}, channel {plotting.CHANNEL_NAMES[channel]}, row {i}, column {j}"
        weight = float(record.params["conv.weight"][f, channel, i, j])
        if record.update is None:
            return f"{where}: weight {format_number(weight)} (no update yet)"
        update = float(record.update["conv.weight"][f, channel, i, j])
        gradient = float(record.grads["conv.weight"][f, channel, i, j])
        return (
            f"{where}: weight {format_number(weight - update)} → {format_number(weight)}, "
            f"update {format_number(update)}, gradient {format_number(gradient)}"
        )

    # -- layout of the three groups ----------------------------------------------------------

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt override)
        if watched is self._plots and event.type() == QEvent.Type.Resize:
            self._arrange()
        return super().eventFilter(watched, event)

    def showEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().showEvent(event)
        if self._stale and self._record is not None:
            self.show_record(self._record)

    def _arrange(self, force: bool = False) -> None:
        """Put the three groups side by side or one above the other, whichever gives the
        larger cells in the space the view has."""
        if self._layout is None:
            return
        width = max(self._plots.width(), 1)
        height = max(self._plots.height(), 1)
        best = max(ARRANGEMENTS, key=lambda a: self._cell_pixels(a, width, height))
        if best == self._arrangement and not force:
            return
        self._arrangement = best
        for index, name in enumerate(GROUP_NAMES):
            widget = self._groups[name].widget
            self._grid.removeWidget(widget)
            row, col = (0, index) if best == "row" else (index, 0)
            self._grid.addWidget(widget, row, col)
        for index in range(3):
            self._grid.setColumnStretch(index, 1 if best == "row" else 0)
            self._grid.setRowStretch(index, 1 if best == "column" else 0)
        if best == "row":
            self._grid.setRowStretch(0, 1)
        else:
            self._grid.setColumnStretch(0, 1)
        QTimer.singleShot(0, self.reset_zoom)

    def _cell_pixels(self, arrangement: str, width: int, height: int) -> float:
        """Screen pixels per cell the groups would get in ``arrangement``."""
        rect = self._layout.data_rect()
        extra_w, extra_h = self._group_extra()
        if arrangement == "row":
            free_w, free_h = width / 3 - extra_w, height - extra_h
        else:
            free_w, free_h = width - extra_w, height / 3 - extra_h
        return min(free_w / (rect.width() * 1.08), free_h / (rect.height() * 1.08))

    def _group_extra(self) -> tuple[float, float]:
        """Width and height a group needs besides its heatmap: measured once it is laid out."""
        group = self._groups["weights"]
        view = group.plot.vb.size()
        if view.width() > 10 and view.height() > 10:
            return (
                group.widget.width() - view.width(),
                group.widget.height() - view.height(),
            )
        return GROUP_EXTRA_WIDTH, GROUP_EXTRA_HEIGHT


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

"""The Curves panel: loss, accuracy, filter weights, gradient norms, ReLU outputs at 0 and the
update-to-weight ratio over the iterations of the run.

Every plot shares the iteration axis, marks the iteration the other views show, and on hover
reads out the exact values at the nearest iteration. Numbers are never hidden by the scale: a
loss spanning many decades switches to a log axis, and on the log axes an exact zero (a dead
filter's gradient and update) is drawn as a marker on a "= 0" line at the bottom instead of
silently vanishing.
"""

from __future__ import annotations

import csv
import io
import math
import os
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QRectF, Qt, QTimer, Slot
from PySide6.QtGui import QFont, QFontMetricsF
from PySide6.QtWidgets import (
    QCheckBox,
    QGraphicsItem,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from inspector import plotting
from inspector.views.widgets import scroll_area, scroll_with_plain_wheel
from model.files import write_atomic
from model.formatting import format_number, format_share
from model.headless import metrics_row_cells
from model.record import METRIC_NAMES, StepRecord

#: While training, curves are redrawn at most this often (history_changed may come 60 times/s).
REDRAW_INTERVAL_MS = 100
#: With more images than this, the loss plot draws the highest and lowest image loss instead of
#: one line per image.
MAX_IMAGE_LINES = 16
#: Hover readouts list per-image values up to this many images, then the lowest and highest.
MAX_READOUT_IMAGES = 4
#: Points get a dot while the run has at most this many rows (single points stay visible).
SYMBOL_ROWS = 25
#: The loss axis turns logarithmic when the loss spans more than this many decades.
LOG_DECADES = 3.0
#: ‖Δw‖/‖w‖ of roughly this size is the usual rule of thumb for a healthy learning rate.
HEALTHY_UPDATE_RATIO = 1e-3
#: Before this many iterations the x axis shows 0..MIN_X_SPAN rather than a zoom onto a point.
MIN_X_SPAN = 10
#: Pixels between the mouse pointer and the hover readout.
READOUT_OFFSET = 14
#: Pen widths: Qt strokes lines wider than one pixel several times slower, so only the mean
#: loss (the curve to follow) is thick.
LINE_WIDTH = 1.0
MEAN_LOSS_WIDTH = 2.5
#: Three columns of plots when the panel is this many times wider than high, else two.
WIDE_ASPECT = 1.4
#: Smallest room for one plot with its title and legend. A smaller panel scrolls rather than
#: squash the plots into strips (at 1280×800 the Curves tab is about 630×230 pixels: two rows
#: of plots 20 pixels high, the third column cut off).
MIN_PLOT_WIDTH = 260
MIN_PLOT_HEIGHT = 160
AXIS_WIDTH = 52
TITLE_LINE_HEIGHT = 15
#: Room right of a saved plot, so that the last value of the iteration axis is not cut.
EXPORT_RIGHT_MARGIN = 14

BACKGROUND = "#ffffff"
FOREGROUND = "#262626"
MUTED = "#6b6b6b"
MARKER = "#d6008f"
CROSSHAIR = "#7a7a7a"
MEAN_LOSS = "#1f3b73"
CLASS_COLORS = ("#e66101", "#5e3c99")
HIGHEST_IMAGE = "#8c2d04"
LOWEST_IMAGE = "#969696"
ACCURACY = "#1a9850"
WEIGHT_MIN = "#2166ac"
WEIGHT_MEAN = "#404040"
WEIGHT_MAX = "#b2182b"
CONV = "#d95f02"
CLASSIFIER = "#1b9e77"
DEAD = "#000000"
REFERENCE = "#555555"
DEATH = "#b2182b"
#: Iterations at which filters died get a line on every plot, up to this many (the first).
MAX_DEATH_LINES = 8
#: Plots whose death lines say what they mark (the others only draw the line).
DEATH_LABELLED = ("curve-loss", "curve-dead-fraction")

#: In this order in the grid: the share of outputs at 0 beside the loss, on the first row, for
#: it is what the question is about (a learner's review: fifth of six, it was below the fold
#: at 1280×800, and the loss's fall at a filter's death read as learning without it).
PLOT_NAMES = (
    "curve-loss",
    "curve-dead-fraction",
    "curve-accuracy",
    "curve-weights",
    "curve-gradient-norms",
    "curve-update-ratio",
)
_COLUMNS = (
    "iteration",
    "loss",
    "accuracy",
    "dead_fraction",
    "conv_weight_min",
    "conv_weight_mean",
    "conv_weight_max",
    "conv_grad_norm",
    "classifier_grad_norm",
    "conv_update_ratio",
    "classifier_update_ratio",
)
_TITLES = {
    "curve-loss": "Loss (cross-entropy)",
    "curve-accuracy": "Accuracy (all images)",
    "curve-weights": "Conv filter weights",
    "curve-gradient-norms": "Gradient norm ‖g‖ (log)",
    "curve-dead-fraction": "ReLU outputs at 0 (off)",
    "curve-update-ratio": "Update size ‖Δw‖ / ‖w‖ (log)",
}
_TOOLTIPS = {
    "curve-loss": (
        "Mean binary cross-entropy over every image after each update (thick), and the loss "
        "of each image (thin). The axis turns logarithmic when the loss spans more than "
        f"{LOG_DECADES:g} decades; use the check box above to choose. A log axis cannot show "
        "0: an image's loss of exactly 0 (its sigmoid saturated on the right side) leaves a gap "
        "in its line."
    ),
    "curve-accuracy": "Fraction of all images classified correctly after each update.",
    "curve-weights": (
        "Smallest, mean and largest weight of the convolution filters after each update. "
        "A jump to tens of thousands means one update threw the filters far away."
    ),
    "curve-gradient-norms": (
        "Euclidean norm of the gradient of the batch loss for the conv layer and for the "
        "classifier, each over its weights and its bias together, before clipping. A log "
        "axis cannot show 0: an exact zero, as from a dead filter that passes no gradient, is "
        "drawn as a ▼ on the dashed '= 0' line at the bottom."
    ),
    "curve-dead-fraction": (
        "Fraction of ReLU outputs that are exactly 0 (off: no gradient flows through them), "
        "averaged over filters. A filter is dead when all of its outputs are 0 for every image; "
        "1 here means every filter is, and the network's output no longer depends on the image."
    ),
    "curve-update-ratio": (
        "Size of each update relative to the weights it changed, ‖Δw‖ / ‖w‖, per layer (its "
        "weights and bias together; w before the update). Around 10⁻³ is "
        "a common rule of thumb; far above it the learning rate is too high, far below it too "
        "low. Exact zeros (no update) are drawn as ▼ on the dashed '= 0' line."
    ),
}


@dataclass
class _Series:
    """One metric drawn as a line. On log plots the line has gaps where the value is not
    positive; ``points`` shows its positive values as dots (so a lone value between gaps stays
    visible) and ``zeros`` its exact zeros as markers on the floor line."""

    column: str
    label: str
    color: str
    curve: pg.PlotDataItem
    points: pg.PlotDataItem | None = None
    zeros: pg.PlotDataItem | None = None


@dataclass
class _Panel:
    name: str
    plot: pg.PlotItem
    series: list[_Series]
    marker: pg.InfiniteLine
    crosshair: pg.InfiniteLine
    log_y: bool = False
    zero_note: str = ""
    floor_line: pg.InfiniteLine | None = None
    legend: list[tuple[str, str]] = field(default_factory=list)  # (html, plain text)
    title_html: tuple[str, int] = ("", 0)
    floor: float = 1e-3
    anchor: RangeAnchor | None = None
    deaths: list[pg.InfiniteLine] = field(default_factory=list)


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _power_label(log_value: float) -> str:
    """Tick text for 10**log_value: '0.01', '2', '500', or '10⁵', '2·10⁻⁶' beyond 1e±3."""
    exponent = math.floor(log_value + 1e-9)
    mantissa = round(10.0 ** (log_value - exponent))
    if mantissa == 10:
        exponent, mantissa = exponent + 1, 1
    if -3 <= exponent <= 3:
        return f"{mantissa * 10.0**exponent:g}"
    power = f"10{str(exponent).translate(_SUPERSCRIPT)}"
    return power if mantissa == 1 else f"{mantissa}·{power}"


def _large_tick(value: float) -> str:
    """A tick label of at least 10,000 that fits the axis: -60,000, 1.5M, 2G, 3e+12."""
    size = abs(value)
    if size < 1e6:
        return f"{value:,.0f}"
    for limit, divisor, suffix in ((1e9, 1e6, "M"), (1e12, 1e9, "G")):
        if size < limit:
            return f"{value / divisor:.4g}{suffix}"
    return f"{value:.3g}"


class _LogAxis(pg.AxisItem):
    """An axis whose log mode labels only as many decades as fit (plus 2 and 5 within a
    decade when there is room or less than two decades show), so log plots keep readable
    labels at any size."""

    def logTickValues(self, minVal, maxVal, size, stdTicks):  # noqa: N802, N803 (pyqtgraph API)
        if not (math.isfinite(minVal) and math.isfinite(maxVal)) or maxVal <= minVal:
            return []
        low, high = math.floor(minVal), math.ceil(maxVal)
        fit = max(2, int(size // 24))
        decades = [e for e in range(low, high + 1) if minVal <= e <= maxVal]
        step = max(1, math.ceil(len(decades) / fit))
        levels = [(float(step), [float(e) for e in decades if e % step == 0])]
        if step > 1:
            return levels
        within = [(e + math.log10(k), k in (2, 5)) for e in range(low, high) for k in range(2, 10)]
        within = [(v, labeled) for v, labeled in within if minVal <= v <= maxVal]
        if len(decades) < 2 or fit >= 3 * (len(decades) + 1):
            levels.append((0.5, [v for v, labeled in within if labeled]))
            within = [(v, labeled) for v, labeled in within if not labeled]
        levels.append((None, [v for v, _ in within]))
        return levels

    def tickStrings(self, values, scale, spacing):  # noqa: N802 (pyqtgraph API)
        strings = super().tickStrings(values, scale, spacing)
        if self.logMode:
            return strings
        # thousands separators, so -60000 reads as the -60,000 of the findings; millions and
        # more as 1.5M, 2G: "1,000,000" is wider than the axis, which then hid every label but 0
        return [
            _large_tick(value * scale)
            if abs(value * scale) >= 1e4 and spacing * scale >= 1
            else text
            for value, text in zip(values, strings, strict=True)
        ]

    def logTickStrings(self, values, scale, spacing):  # noqa: N802 (pyqtgraph API)
        if spacing is None:
            return [""] * len(values)
        return [_power_label(v) for v in values]


def _cache(item: pg.PlotDataItem) -> None:
    """Keep the drawn curve as a pixmap: moving the shown-iteration marker 60 times a second
    then repaints strips of cached pixels instead of re-stroking every path."""
    item.curve.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
    item.scatter.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)


def _pen(color: str, width: float = 1.5, style=Qt.PenStyle.SolidLine, alpha: int = 255):
    qcolor = pg.mkColor(color)
    qcolor.setAlpha(alpha)
    pen = pg.mkPen(qcolor, width=width)
    pen.setStyle(style)
    return pen


def _swatch(color: str, glyph: str = "━━") -> str:
    return f'<span style="color:{color}; font-weight:bold">{glyph}</span>'


def _entry(color: str, glyph: str, text: str) -> tuple[str, str]:
    """A legend entry as (html, plain text for measuring)."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return f"{_swatch(color, glyph)} {escaped}", f"{glyph} {text}"


def _shorten(text: str, limit: int = 18) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _positive_min(*arrays: np.ndarray) -> float | None:
    values = [a[np.isfinite(a) & (a > 0)] for a in arrays]
    values = [v for v in values if v.size]
    return min(float(v.min()) for v in values) if values else None


def _spans_decades(values: np.ndarray, decades: float) -> bool:
    positive = values[np.isfinite(values) & (values > 0)]
    if positive.size < 2:
        return False
    return math.log10(float(positive.max()) / float(positive.min())) > decades


def _lone(mask: np.ndarray) -> np.ndarray:
    """Entries of ``mask`` whose neighbours are both False (a line cannot show them)."""
    before = np.concatenate([[False], mask[:-1]])
    after = np.concatenate([mask[1:], [False]])
    return mask & ~before & ~after


_NICE_STEPS = (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 1.5, 2, 3, 4, 5, 6, 8 × 10^k that is at least ``value`` (> 0)."""
    exponent = math.floor(math.log10(value))
    for step in _NICE_STEPS:
        if step * 10.0**exponent >= value:
            return step * 10.0**exponent
    return 10.0 ** (exponent + 1)


def iteration_bounds(last: float) -> tuple[float, float]:
    """The iteration axis' auto-range: 0..MIN_X_SPAN early on, then a round number above the
    ``last`` iteration, so the axis only changes now and then while training."""
    return 0.0, max(float(MIN_X_SPAN), _nice_ceiling(last * 1.03 + 1))


def _linear_bounds(low: float, high: float) -> tuple[float, float]:
    """[low, high] widened a little and rounded outward to a 1-2-5 step of about a tenth of
    the span (not across zero when the data stays on one side), so the axis only changes
    when the data leaves it."""
    span = high - low
    if span <= 0:
        span = abs(high) or 1.0
    padded_low, padded_high = low - 0.03 * span, high + 0.03 * span
    step = 10.0 ** math.floor(math.log10(span / 10))
    for factor in (1, 2, 5, 10):
        if factor * step >= span / 10:
            step *= factor
            break
    bounds_low = math.floor(padded_low / step) * step
    bounds_high = math.ceil(padded_high / step) * step
    if low >= 0:
        bounds_low = max(bounds_low, 0.0)
    if high <= 0:
        bounds_high = min(bounds_high, 0.0)
    return bounds_low, bounds_high


def _log_bounds(low: float, high: float) -> tuple[float, float]:
    """log10 bounds of positive [low, high], rounded outward to half decades."""
    return (
        math.floor(2 * math.log10(low) - 0.1) / 2,
        math.ceil(2 * math.log10(high) + 0.1) / 2,
    )


class RangeAnchor(pg.GraphicsObject):
    """Invisible item whose bounds the view's auto-range includes.

    Auto-range would otherwise follow the data exactly, so every redraw while training would
    change both axes and make pyqtgraph regenerate all twelve axis pictures. The anchor holds
    rounded bounds that contain all data; the view range then changes only now and then, and
    the user's zoom, pan and "auto-range" button keep working as usual.
    """

    def __init__(self) -> None:
        super().__init__()
        self._bounds: tuple = (None, None)
        self.setFlag(self.GraphicsItemFlag.ItemHasNoContents)

    def set_bounds(self, x, y) -> None:
        if (x, y) != self._bounds:
            self._bounds = (x, y)
            self.informViewBoundsChanged()

    def dataBounds(self, axis, frac=1.0, orthoRange=None):  # noqa: N802, N803 (pyqtgraph API)
        return self._bounds[axis]

    def boundingRect(self):  # noqa: N802 (Qt override)
        return QRectF()

    def paint(self, *args) -> None:
        pass


def _rows(columns: int) -> int:
    """Rows of plots in a grid of ``columns`` columns."""
    return math.ceil(len(PLOT_NAMES) / columns)


class _PlotsFilter(QObject):
    """On the plots' widget and its viewport: calls ``on_resize`` when the widget has its new
    size (the titles are laid out for it), hides the hover readouts when the mouse leaves the
    plots, and gives a plain wheel turn to ``scroll`` (a plot zooms with Ctrl+wheel only, as in
    the other panels; pyqtgraph would zoom with any wheel turn, and an unused one does not reach
    the scroll area around the plots by itself)."""

    def __init__(self, graphics, on_resize, on_leave, scroll: QScrollArea, parent) -> None:
        super().__init__(parent)
        self._graphics = graphics
        self._on_resize = on_resize
        self._on_leave = on_leave
        self._scroll = scroll
        graphics.installEventFilter(self)
        graphics.viewport().installEventFilter(self)

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt override)
        kind = event.type()
        if watched is self._graphics:
            if kind == QEvent.Type.Resize:
                self._on_resize()
        elif kind == QEvent.Type.Leave:
            self._on_leave()
        elif scroll_with_plain_wheel(self._scroll, event):
            self._on_leave()  # the plots move under the pointer: its readout is of another point
            return True
        return False


class CurvesView(QWidget):
    """Metric curves over the iterations of the run (six linked plots).

    Parameters
    ----------
    controller : ``inspector.controller.SessionController``.
    parent : optional parent widget.
    """

    def __init__(self, controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("curvesView")
        self._controller = controller
        self._columns: dict[str, np.ndarray] | None = None
        self._loss_log_choice: bool | None = None  # None: decided by the data
        self._symbols = True
        self._grid_columns = 0
        self._values_on_every_row = False
        self._last_redraw = -math.inf
        self._deaths: tuple = ()  # ((iteration, filters), ...) drawn as lines
        self._image_curves: list[pg.PlotDataItem] = []
        self._image_band: list[pg.PlotDataItem] = []

        self._loss_log = QCheckBox("Log-scale loss")
        self._loss_log.setObjectName("curvesLossLog")
        self._loss_log.setToolTip(
            "Show the loss on a logarithmic axis. On by default when the loss spans more than "
            f"{LOG_DECADES:g} decades (the question's first loss is in the hundreds of "
            "thousands, later ones below 1)."
        )
        self._loss_log.toggled.connect(self._on_loss_log_toggled)
        hint = QLabel("Hover: exact values · Ctrl+wheel zooms · right-click: export, scale")
        hint.setToolTip(
            "Hover over a plot to read the exact values at the nearest iteration. Ctrl+wheel "
            "zooms a plot, dragging pans it. Right-click a plot to export it (PNG, SVG, CSV) or "
            "change its axes; the small “A” button in its corner restores the automatic range "
            "after zooming."
        )
        hint.setObjectName("curvesHint")
        hint.setStyleSheet(f"color: {MUTED};")
        # Wraps rather than widening the panel: at 1024 pixels its one line took the room of
        # the Diagnostics dock beside it.
        hint.setWordWrap(True)
        hint.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        top = QHBoxLayout()
        top.setContentsMargins(6, 2, 6, 0)
        top.addWidget(self._loss_log)
        top.addWidget(hint, 1)  # all the room there is: one line unless the panel is narrow

        self._graphics = pg.GraphicsLayoutWidget()
        self._graphics.setObjectName("curvesGraphics")
        self._graphics.setBackground(BACKGROUND)
        self._graphics.ci.setContentsMargins(2, 2, 2, 2)
        self._graphics.ci.layout.setSpacing(4)

        self._scroll = scroll_area(self._graphics, "curvesScroll")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(top)
        layout.addWidget(self._scroll, 1)
        self._top = top

        self._panels: dict[str, _Panel] = {}
        self._build_panels()
        # One readout for all plots, on top of the scene rather than inside a plot, so it is
        # never clipped by a small plot and never ends up in an exported picture.
        self._hovered: str | None = None
        self._readout = pg.TextItem(
            color=FOREGROUND, fill=pg.mkBrush(255, 255, 255, 240), border=pg.mkPen("#9a9a9a")
        )
        self._readout.setZValue(1000)
        self._readout.hide()
        self._graphics.scene().addItem(self._readout)
        self._arrange(2)
        self._plots_filter = _PlotsFilter(
            self._graphics, self._layout_titles, self._hide_hover, self._scroll, self
        )

        self._mouse_proxy = pg.SignalProxy(
            self._graphics.scene().sigMouseMoved, rateLimit=60, slot=self._on_mouse_moved
        )
        self._redraw_timer = QTimer(self)
        self._redraw_timer.setSingleShot(True)
        self._redraw_timer.timeout.connect(self.redraw)

        controller.session_reset.connect(self._on_session_reset)
        controller.history_changed.connect(self._on_history_changed)
        controller.record_shown.connect(self.show_record)
        controller.running_changed.connect(self._on_running_changed)

        self._rebuild_images()
        self.redraw()
        self.show_record(controller.shown)

    # -- public ------------------------------------------------------------------------------

    def plot_items(self) -> dict[str, pg.PlotItem]:
        """Each plot by name, in the grid's order, for "Save plots"."""
        return {name: self._panels[name].plot for name in PLOT_NAMES}

    def hover_text(self, name: str) -> str:
        """The hover readout of plot ``name`` as plain text ('' when hidden)."""
        if self._hovered != name or not self._readout.isVisible():
            return ""
        return self._readout.textItem.toPlainText()

    @property
    def loss_log_scale(self) -> bool:
        return self._panels["curve-loss"].log_y

    @Slot(object)
    def show_record(self, record: StepRecord) -> None:
        """Move the marker of every plot to the iteration the views show."""
        for panel in self._panels.values():
            panel.marker.setValue(record.iteration)

    @Slot()
    def redraw(self) -> None:
        """Fetch the metrics table from the controller and update every curve."""
        self._redraw_timer.stop()
        self._last_redraw = time.monotonic()
        columns = self._controller.metric_columns((*_COLUMNS, "image_losses"))
        self._columns = columns
        x = columns["iteration"]
        symbols = len(x) <= SYMBOL_ROWS
        if symbols != self._symbols:
            self._symbols = symbols
            self._apply_symbols()

        self._draw_loss(x, columns)
        for name in ("curve-accuracy", "curve-weights", "curve-dead-fraction"):
            for series in self._panels[name].series:
                series.curve.setData(x, columns[series.column])
        self._draw_log_panel(self._panels["curve-gradient-norms"], x, columns)
        self._draw_log_panel(self._panels["curve-update-ratio"], x, columns)
        self._draw_deaths()
        self._update_ranges(x, columns)

    def death_lines(self, name: str) -> list[tuple[float, str]]:
        """(iteration, label) of the lines plot ``name`` draws where filters died."""
        return [
            (line.value(), line.label.toPlainText() if hasattr(line, "label") else "")
            for line in self._panels[name].deaths
        ]

    def _draw_deaths(self) -> None:
        """A line on every plot at each iteration where filters died: there the loss of the
        question falls a millionfold, which reads as learning unless marked."""
        died: dict[int, list[int]] = {}
        for f, since in enumerate(self._controller.latest.dead_since):
            if since is not None and since > 0:  # (dead from the start: no update to mark)
                died.setdefault(since, []).append(f)
        deaths = tuple(sorted(died.items()))[:MAX_DEATH_LINES]
        if deaths == self._deaths:
            return
        self._deaths = deaths
        for panel in self._panels.values():
            for line in panel.deaths:
                panel.plot.removeItem(line)
            panel.deaths = []
            for iteration, filters in deaths:
                label = None
                if panel.name in DEATH_LABELLED:
                    label = (
                        f"filter {filters[0]} died"
                        if len(filters) == 1
                        else f"{len(filters)} filters died"
                    )
                line = pg.InfiniteLine(
                    pos=iteration,
                    angle=90,
                    movable=False,
                    pen=_pen(DEATH, 1, Qt.PenStyle.DashLine),
                    label=label,
                    labelOpts={
                        "position": 0.92,
                        "color": DEATH,
                        "anchors": [(0, 0.5), (0, 0.5)],
                        # (on the zero-outputs plot it sits on the filled area: readable)
                        "fill": pg.mkBrush(255, 255, 255, 210),
                    },
                )
                line.setZValue(15)
                panel.plot.addItem(line, ignoreBounds=True)
                panel.deaths.append(line)

    def export_csv(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write every metric of every kept iteration as CSV.

        Columns: ``model.record.METRIC_NAMES`` in order, then ``loss_image_<k>`` for each
        image, numbered from 1 in dataset order as the window numbers them (#1, #2, …). Cells
        as in metrics.csv (``model.headless.metrics_row_cells``): 'nan' for a value gone NaN,
        empty for the metrics of an update at iteration 0. Raises
        ``model.files.SaveError`` if ``path`` exists (unless ``overwrite``) or cannot be written.
        """
        columns = self._controller.metric_columns((*METRIC_NAMES, "image_losses"))
        image_losses = columns["image_losses"]
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        images = range(1, image_losses.shape[1] + 1)
        writer.writerow([*METRIC_NAMES, *(f"loss_image_{k}" for k in images)])
        for row in range(len(columns["iteration"])):
            cells = metrics_row_cells([columns[name][row] for name in METRIC_NAMES])
            cells.extend(repr(float(v)) for v in image_losses[row])
            writer.writerow(cells)
        return write_atomic(path, buffer.getvalue().encode("utf-8"), overwrite=overwrite)

    # -- building ----------------------------------------------------------------------------

    def _new_plot(self, name: str) -> pg.PlotItem:
        plot = pg.PlotItem(axisItems={"left": _LogAxis("left")})
        plot.setObjectName(name)
        plot.showGrid(x=True, y=True, alpha=0.18)
        plot.setClipToView(True)
        plot.setDownsampling(auto=True, mode="peak")
        for side in ("left", "bottom"):
            axis = plot.getAxis(side)
            axis.setPen(pg.mkPen(MUTED))
            axis.setTextPen(pg.mkPen(FOREGROUND))
        plot.getAxis("left").setWidth(AXIS_WIDTH)
        for side in ("left", "bottom"):
            plot.getAxis(side).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        plot.getAxis("left").setStyle(hideOverlappingLabels=10)
        plot.getAxis("bottom").setLabel("iteration")
        plot.titleLabel.setToolTip(_TOOLTIPS[name])
        # "Save plots" lays each plot out as a figure of its own (inspector.export); the plot
        # does not keep the view alive for it
        method = weakref.WeakMethod(self._prepare_export)
        plot.prepare_export = lambda width: (view := method()) and view(name, width)
        return plot

    def _new_panel(self, name: str, series_specs, *, log_y=False, zero_note="") -> _Panel:
        plot = self._new_plot(name)
        if log_y:
            plot.setLogMode(y=True)
        series = []
        for column, label, color, width in series_specs:
            curve = pg.PlotDataItem(
                pen=_pen(color, width), connect="finite", antialias=True, name=label
            )
            plot.addItem(curve)
            _cache(curve)
            points = zeros = None
            if log_y:
                points = pg.PlotDataItem(
                    pen=None, symbol="o", symbolSize=6, symbolBrush=color, symbolPen=None
                )
                zeros = pg.PlotDataItem(
                    pen=None,
                    symbol="t",
                    symbolSize=11,
                    symbolBrush=pg.mkBrush(color),
                    symbolPen=pg.mkPen(FOREGROUND, width=0.8),
                    name=f"{label}: {zero_note}",
                )
                plot.addItem(points)
                plot.addItem(zeros)
                _cache(points)
                _cache(zeros)
            series.append(_Series(column, label, color, curve, points, zeros))
        marker = pg.InfiniteLine(angle=90, movable=False, pen=_pen(MARKER, LINE_WIDTH))
        marker.setZValue(20)
        plot.addItem(marker, ignoreBounds=True)
        crosshair = pg.InfiniteLine(
            angle=90, movable=False, pen=_pen(CROSSHAIR, 1, Qt.PenStyle.DotLine)
        )
        crosshair.setZValue(21)
        crosshair.hide()
        plot.addItem(crosshair, ignoreBounds=True)
        floor_line = None
        if log_y:
            floor_line = pg.InfiniteLine(
                angle=0,
                movable=False,
                pen=_pen(MUTED, 1, Qt.PenStyle.DashLine),
                label="= 0",
                labelOpts={"position": 0.99, "color": MUTED, "anchors": [(1, 1), (1, 1)]},
            )
            floor_line.hide()
            plot.addItem(floor_line)
        panel = _Panel(name, plot, series, marker, crosshair, log_y, zero_note, floor_line)
        panel.anchor = RangeAnchor()
        plot.addItem(panel.anchor)
        self._panels[name] = panel
        return panel

    def _build_panels(self) -> None:
        loss = self._new_panel("curve-loss", [("loss", "mean", MEAN_LOSS, MEAN_LOSS_WIDTH)])
        loss.series[0].curve.setZValue(10)

        accuracy = self._new_panel(
            "curve-accuracy", [("accuracy", "accuracy", ACCURACY, LINE_WIDTH)]
        )
        accuracy.legend = [_entry(ACCURACY, "━━", "fraction of images right")]

        weights = self._new_panel(
            "curve-weights",
            [
                ("conv_weight_max", "max", WEIGHT_MAX, LINE_WIDTH),
                ("conv_weight_mean", "mean", WEIGHT_MEAN, LINE_WIDTH),
                ("conv_weight_min", "min", WEIGHT_MIN, LINE_WIDTH),
            ],
        )
        zero = pg.InfiniteLine(angle=0, pos=0, movable=False, pen=_pen(MUTED, 1, alpha=140))
        weights.plot.addItem(zero, ignoreBounds=True)
        weights.legend = [
            _entry(WEIGHT_MAX, "━━", "max"),
            _entry(WEIGHT_MEAN, "━━", "mean"),
            _entry(WEIGHT_MIN, "━━", "min"),
        ]

        gradients = self._new_panel(
            "curve-gradient-norms",
            [
                ("conv_grad_norm", "conv filter", CONV, LINE_WIDTH),
                ("classifier_grad_norm", "classifier", CLASSIFIER, LINE_WIDTH),
            ],
            log_y=True,
            zero_note="0 (no gradient)",
        )
        gradients.legend = [
            _entry(CONV, "━━", "conv filter"),
            _entry(CLASSIFIER, "━━", "classifier"),
            _entry(MUTED, "▼", "0 (no gradient)"),
        ]

        dead = self._new_panel("curve-dead-fraction", [("dead_fraction", "dead", DEAD, LINE_WIDTH)])
        dead.series[0].curve.setFillLevel(0)
        dead.series[0].curve.setBrush(pg.mkBrush(0, 0, 0, 45))
        dead.legend = [_entry(DEAD, "━━", "fraction of ReLU outputs exactly 0")]

        for fraction in (accuracy, dead):
            fraction.plot.setYRange(0, 1, padding=0.08)
            fraction.plot.enableAutoRange(y=False)
            fraction.plot.getAxis("left").setTicks(
                [[(0, "0"), (0.5, "0.5"), (1, "1")], [(0.25, ""), (0.75, "")]]
            )

        ratio = self._new_panel(
            "curve-update-ratio",
            [
                ("conv_update_ratio", "conv filter", CONV, LINE_WIDTH),
                ("classifier_update_ratio", "classifier", CLASSIFIER, LINE_WIDTH),
            ],
            log_y=True,
            zero_note="0 (no update)",
        )
        reference = pg.InfiniteLine(
            angle=0,
            pos=math.log10(HEALTHY_UPDATE_RATIO),
            movable=False,
            pen=_pen(REFERENCE, 1.3, Qt.PenStyle.DashLine),
            label="10⁻³",
            labelOpts={
                "position": 0.02,
                "color": REFERENCE,
                "anchors": [(0, 1), (0, 1)],
                "fill": pg.mkBrush(255, 255, 255, 200),
            },
        )
        ratio.plot.addItem(reference)
        ratio.legend = [
            _entry(CONV, "━━", "conv filter"),
            _entry(CLASSIFIER, "━━", "classifier"),
            _entry(REFERENCE, "╌╌", "10⁻³ healthy"),
            _entry(MUTED, "▼", "0 (no update)"),
        ]

        first = self._panels[PLOT_NAMES[0]].plot
        for name in PLOT_NAMES[1:]:
            self._panels[name].plot.setXLink(first)
        self._auto_range()

    def _rebuild_images(self) -> None:
        """Per-image loss lines (or a min–max band) for the current dataset."""
        panel = self._panels["curve-loss"]
        for item in (*self._image_curves, *self._image_band):
            panel.plot.removeItem(item)
        self._image_curves = []
        self._image_band = []
        dataset = self._controller.dataset
        labels = np.asarray(dataset.labels)
        count = len(labels)
        panel.legend = [_entry(MEAN_LOSS, "━━", "mean")]
        if count <= MAX_IMAGE_LINES:
            for i, label in enumerate(labels):
                curve = pg.PlotDataItem(
                    pen=_pen(CLASS_COLORS[label], LINE_WIDTH, alpha=190),
                    connect="finite",
                    antialias=True,
                    name=Path(dataset.paths[i]).name,
                )
                panel.plot.addItem(curve)
                _cache(curve)
                self._image_curves.append(curve)
            for label in (0, 1):
                members = np.flatnonzero(labels == label)
                if members.size == 1:
                    text = _shorten(Path(dataset.paths[members[0]]).name)
                elif members.size > 1:
                    text = f"each {_shorten(dataset.class_names[label], 14)} ({members.size})"
                else:
                    continue
                panel.legend.append(_entry(CLASS_COLORS[label], "──", text))
        else:
            high = pg.PlotDataItem(
                pen=_pen(HIGHEST_IMAGE, LINE_WIDTH),
                connect="finite",
                name="highest image",
            )
            low = pg.PlotDataItem(
                pen=_pen(LOWEST_IMAGE, LINE_WIDTH),
                connect="finite",
                name="lowest image",
            )
            for item in (high, low):
                panel.plot.addItem(item)
                _cache(item)
            self._image_band = [low, high]
            panel.legend.append(_entry(HIGHEST_IMAGE, "──", f"highest of {count} images"))
            panel.legend.append(_entry(LOWEST_IMAGE, "──", "lowest"))
        self._layout_titles()
        self._apply_symbols()

    # -- layout ------------------------------------------------------------------------------

    def _arrange(self, columns: int, values_on_every_row: bool = False) -> None:
        """Place the plots in a grid of ``columns`` columns (2 or 3); the iteration axis's label
        on the last row, and its values there too, or on every row when the panel scrolls (a
        row scrolled into view alone still says which iterations it shows)."""
        if (columns, values_on_every_row) == (self._grid_columns, self._values_on_every_row):
            return
        grid = self._graphics.ci.layout
        moved = columns != self._grid_columns
        if moved and self._grid_columns:
            for panel in self._panels.values():
                grid.removeItem(panel.plot)
        self._grid_columns = columns
        self._values_on_every_row = values_on_every_row
        rows = _rows(columns)
        for index, name in enumerate(PLOT_NAMES):
            row, column = divmod(index, columns)
            plot = self._panels[name].plot
            if moved:
                grid.addItem(plot, row, column)
            bottom = plot.getAxis("bottom")
            bottom.showLabel(row == rows - 1)
            bottom.setStyle(showValues=values_on_every_row or row == rows - 1)
        for row in range(3):
            grid.setRowStretchFactor(row, 1 if row < rows else 0)
        for column in range(3):
            grid.setColumnStretchFactor(column, 1 if column < columns else 0)
        self._layout_titles()

    def _layout_titles(self) -> None:
        """Bold title and legend on one line when they fit the width a plot gets, else the
        legend wrapped below it; every title gets the same height so the plots line up."""
        width = self._graphics.width() / max(self._grid_columns, 1) - AXIS_WIDTH - 16
        layouts = {panel.name: self._title_lines(panel, width) for panel in self._panels.values()}
        height = TITLE_LINE_HEIGHT * max(len(lines) for lines in layouts.values()) + 4
        for panel in self._panels.values():
            self._set_title(panel, layouts[panel.name], height)

    def _title_lines(self, panel: _Panel, width: float) -> list[list[str]]:
        """The title and legend entries (html) of ``panel`` in lines of at most ``width``."""
        legend_font = QFont(self.font())
        legend_font.setPointSizeF(8)
        legend_metrics = QFontMetricsF(legend_font)
        title_font = QFont(self.font())
        title_font.setPointSizeF(9)
        title_font.setBold(True)
        title_metrics = QFontMetricsF(title_font)
        gap = legend_metrics.horizontalAdvance("    ")
        title = _TITLES[panel.name]
        if panel.name == "curve-loss" and panel.log_y:
            # Said in the title, as the other log plots do: a saved figure has no check box
            # beside it (a teacher's report read as a linear loss).
            title += " (log)"
        sizes = [legend_metrics.horizontalAdvance(plain) for _, plain in panel.legend]
        inline = title_metrics.horizontalAdvance(title) + gap * len(sizes) + sum(sizes)
        if inline <= width:
            return [[f"<b>{title}</b>", *(html for html, _ in panel.legend)]]
        lines: list[list[str]] = [[f"<b>{title}</b>"]]
        used = math.inf
        for (html, _), needed in zip(panel.legend, sizes, strict=True):
            if len(lines) > 1 and used + gap + needed <= width:
                lines[-1].append(html)
                used += gap + needed
            else:
                lines.append([html])
                used = needed
        return lines

    @staticmethod
    def _set_title(panel: _Panel, lines: list[list[str]], height: int) -> None:
        html = "<br>".join(" &nbsp; ".join(line) for line in lines)
        if (html, height) == panel.title_html:
            return
        panel.title_html = (html, height)
        panel.plot.setTitle(html, color=FOREGROUND, size="8pt")
        panel.plot.titleLabel.setMaximumHeight(height)
        panel.plot.layout.setRowFixedHeight(0, height)

    def _prepare_export(self, name: str, width: float):
        """Lay plot ``name`` out as a figure of its own, ``width`` pixels wide: its title and
        legend for that width, the iteration axis with its values and label (in the window
        only the bottom row has them), a margin on the right for the last tick value.
        Returns the function that puts it back as it was (``inspector.export``)."""
        panel = self._panels[name]
        before = panel.title_html
        lines = self._title_lines(panel, width - AXIS_WIDTH - 16)
        self._set_title(panel, lines, TITLE_LINE_HEIGHT * len(lines) + 4)
        bottom = panel.plot.getAxis("bottom")
        label_shown = bottom.label.isVisible()
        values_shown = bottom.style["showValues"]
        bottom.showLabel(True)
        bottom.setStyle(showValues=True)
        margins = panel.plot.layout.getContentsMargins()
        panel.plot.layout.setContentsMargins(
            margins[0], margins[1], max(margins[2], EXPORT_RIGHT_MARGIN), margins[3]
        )

        def restore() -> None:
            panel.plot.layout.setContentsMargins(*margins)
            bottom.setStyle(showValues=values_shown)
            bottom.showLabel(label_shown)
            html, height = before
            panel.title_html = ("", 0)
            if html:
                self._set_title(panel, [[html]], height)

        return restore

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        """Three columns of plots when they fit side by side and the panel is wide, else two;
        the plots never smaller than MIN_PLOT_WIDTH × MIN_PLOT_HEIGHT (the panel scrolls). The
        titles are laid out once the plots' widget has its size (``_PlotsFilter``)."""
        super().resizeEvent(event)
        width = event.size().width()
        height = event.size().height() - self._top.sizeHint().height() - self.layout().spacing()
        bar = self._scroll.verticalScrollBar().sizeHint().width()

        def fits(columns: int) -> bool:
            scrolls = _rows(columns) * MIN_PLOT_HEIGHT > height  # a scroll bar takes its width
            return columns * MIN_PLOT_WIDTH <= width - (bar if scrolls else 0)

        columns = 3 if fits(3) and width > WIDE_ASPECT * height else 2
        rows = _rows(columns)
        self._arrange(columns, values_on_every_row=rows * MIN_PLOT_HEIGHT > height)
        self._graphics.setMinimumSize(columns * MIN_PLOT_WIDTH, rows * MIN_PLOT_HEIGHT)

    # -- drawing -----------------------------------------------------------------------------

    def _apply_symbols(self) -> None:
        """Dots on the lines of linear plots while the run is short."""
        for name in ("curve-loss", "curve-accuracy", "curve-weights", "curve-dead-fraction"):
            for series in self._panels[name].series:
                if self._symbols:
                    series.curve.setSymbol("o")
                    series.curve.setSymbolSize(5)
                    series.curve.setSymbolBrush(pg.mkBrush(series.color))
                    series.curve.setSymbolPen(None)
                else:
                    series.curve.setSymbol(None)

    def _draw_loss(self, x: np.ndarray, columns: dict[str, np.ndarray]) -> None:
        panel = self._panels["curve-loss"]
        loss = columns["loss"]
        image_losses = columns["image_losses"]
        panel.series[0].curve.setData(x, loss)
        if self._image_curves:
            for i, curve in enumerate(self._image_curves):
                curve.setData(x, image_losses[:, i])
        elif self._image_band and image_losses.shape[1]:
            low, high = self._image_band
            low.setData(x, image_losses.min(axis=1))
            high.setData(x, image_losses.max(axis=1))
        wanted = self._loss_log_choice
        if wanted is None:
            wanted = _spans_decades(loss, LOG_DECADES)
        self._set_loss_log(wanted)

    def _set_loss_log(self, state: bool) -> None:
        panel = self._panels["curve-loss"]
        if self._loss_log.isChecked() != state:
            self._loss_log.blockSignals(True)
            self._loss_log.setChecked(state)
            self._loss_log.blockSignals(False)
        if panel.log_y != state:
            panel.log_y = state
            panel.plot.setLogMode(y=state)
            panel.plot.enableAutoRange(y=True)
            self._layout_titles()

    def _draw_log_panel(self, panel: _Panel, x: np.ndarray, columns) -> None:
        """Positive values on the log axis; exact zeros as markers on a line below them."""
        values = [columns[s.column] for s in panel.series]
        smallest = _positive_min(*values)
        # Half a decade below the smallest drawn decade: between two labelled grid lines, so
        # that a zero is not read as the 1e-5 (say) of the line it would sit on.
        floor = 10.0 ** (math.floor(math.log10(smallest)) - 0.5) if smallest else 10.0**-3.5
        any_zero = False
        for series, y in zip(panel.series, values, strict=True):
            finite = np.isfinite(y)
            positive = finite & (y > 0)
            zero = finite & (y == 0)
            if positive.any():
                series.curve.setData(x, np.where(positive, y, np.nan))
            else:
                series.curve.setData([], [])
            dots = positive if self._symbols else _lone(positive)
            series.points.setData(x[dots], y[dots])
            series.zeros.setData(x[zero], np.full(int(zero.sum()), floor))
            any_zero = any_zero or bool(zero.any())
        panel.floor = floor
        panel.floor_line.setPos(math.log10(floor))
        panel.floor_line.setVisible(any_zero)

    def _update_ranges(self, x: np.ndarray, columns: dict[str, np.ndarray]) -> None:
        """Rounded auto-range bounds for every plot (see ``RangeAnchor``)."""
        x_bounds = iteration_bounds(float(x[-1]) if len(x) else 0.0)
        for panel in self._panels.values():
            y_bounds = None
            if panel.name not in ("curve-accuracy", "curve-dead-fraction"):
                if panel.name == "curve-loss":
                    values = [columns["loss"], columns["image_losses"]]
                else:
                    values = [columns[s.column] for s in panel.series]
                usable = [v[np.isfinite(v) & (v > 0 if panel.log_y else True)] for v in values]
                usable = [v for v in usable if v.size]
                if usable:
                    low = min(float(v.min()) for v in usable)
                    high = max(float(v.max()) for v in usable)
                    if panel.log_y:
                        if panel.floor_line is not None and panel.floor_line.isVisible():
                            low = min(low, panel.floor)
                        y_bounds = _log_bounds(low, high)
                    else:
                        y_bounds = _linear_bounds(low, high)
            panel.anchor.set_bounds(x_bounds, y_bounds)

    # -- hover -------------------------------------------------------------------------------

    def _on_mouse_moved(self, event) -> None:
        """Crosshair at the nearest iteration in every plot, exact values next to the cursor."""
        position = event[0]
        columns = self._columns
        hovered = None
        for panel in self._panels.values():
            if panel.plot.vb.sceneBoundingRect().contains(position):
                hovered = panel
                break
        if hovered is None or columns is None or not len(columns["iteration"]):
            self._hide_hover()
            return
        point = hovered.plot.vb.mapSceneToView(position)
        x = columns["iteration"]
        row = int(np.clip(np.searchsorted(x, point.x()), 0, len(x) - 1))
        if row > 0 and abs(x[row - 1] - point.x()) <= abs(x[row] - point.x()):
            row -= 1
        for panel in self._panels.values():
            panel.crosshair.setValue(float(x[row]))
            panel.crosshair.show()
        self._hovered = hovered.name
        readout = self._readout
        readout.setHtml(self._readout_html(hovered, row))
        size = readout.boundingRect()
        # What the scroll area shows of the plots, not the whole of them.
        shown = plotting.shown_part(self._graphics, self._scroll)
        visible = self._graphics.mapToScene(shown).boundingRect()
        left = position.x() + READOUT_OFFSET
        if left + size.width() > visible.right():
            left = position.x() - READOUT_OFFSET - size.width()
        top = position.y() + READOUT_OFFSET
        if top + size.height() > visible.bottom():
            top = position.y() - READOUT_OFFSET - size.height()
        readout.setPos(max(left, visible.left()), max(top, visible.top()))
        readout.show()

    def _hide_hover(self) -> None:
        self._hovered = None
        self._readout.hide()
        for panel in self._panels.values():
            panel.crosshair.hide()

    def _readout_html(self, panel: _Panel, row: int) -> str:
        columns = self._columns
        lines = [f"<b>iteration {int(columns['iteration'][row])}</b>"]

        def line(color: str, label: str, text: str) -> None:
            lines.append(f"{_swatch(color, '■')} {label}: {text}")

        if panel.name == "curve-loss":
            line(MEAN_LOSS, "mean", format_number(columns["loss"][row]))
            lines.extend(self._image_loss_lines(columns["image_losses"][row]))
        elif panel.name == "curve-accuracy":
            accuracy = float(columns["accuracy"][row])
            count = len(self._controller.dataset.labels)
            correct = round(accuracy * count)
            line(ACCURACY, "accuracy", f"{format_number(accuracy)} ({correct} of {count} right)")
        elif panel.name == "curve-dead-fraction":
            dead = float(columns["dead_fraction"][row])
            line(
                DEAD,
                "outputs at 0",
                f"{format_number(dead)} ({format_share(dead, 1)} of outputs are 0)",
            )
        else:
            for series in panel.series:
                value = float(columns[series.column][row])
                if panel.zero_note and value == 0:
                    text = panel.zero_note
                elif math.isnan(value):
                    text = "— (no update at iteration 0)"
                else:
                    text = format_number(value)
                line(series.color, series.label, text)
        return "<br>".join(lines)

    def _image_loss_lines(self, losses: np.ndarray) -> list[str]:
        dataset = self._controller.dataset
        labels = np.asarray(dataset.labels)
        names = [Path(p).name for p in dataset.paths]
        if len(losses) <= MAX_READOUT_IMAGES:
            indices = range(len(losses))
            return [
                f"{_swatch(CLASS_COLORS[labels[i]], '■')} {names[i]}: {format_number(losses[i])}"
                for i in indices
            ]
        low, high = int(np.argmin(losses)), int(np.argmax(losses))
        return [
            f"{_swatch(CLASS_COLORS[labels[high]], '■')} highest ({names[high]}): "
            f"{format_number(losses[high])}",
            f"{_swatch(CLASS_COLORS[labels[low]], '■')} lowest ({names[low]}): "
            f"{format_number(losses[low])}",
        ]

    # -- controller signals --------------------------------------------------------------------

    @Slot(bool)
    def _on_loss_log_toggled(self, checked: bool) -> None:
        self._loss_log_choice = checked
        self._set_loss_log(checked)

    @Slot(int)
    def _on_history_changed(self, _last_iteration: int) -> None:
        """Redraw now when idle; while training, at most every ``REDRAW_INTERVAL_MS``."""
        if not self._controller.is_running:
            self.redraw()
            return
        if self._redraw_timer.isActive():
            return
        elapsed_ms = (time.monotonic() - self._last_redraw) * 1000
        if elapsed_ms >= REDRAW_INTERVAL_MS:
            self.redraw()
        else:
            self._redraw_timer.start(int(REDRAW_INTERVAL_MS - elapsed_ms) + 1)

    @Slot(bool)
    def _on_running_changed(self, running: bool) -> None:
        """A paused run shows its final state at once rather than after the redraw delay."""
        if not running and self._redraw_timer.isActive():
            self.redraw()

    @Slot(object)
    def _on_session_reset(self, record: StepRecord) -> None:
        self._loss_log_choice = None
        self._hide_hover()
        self._rebuild_images()
        self.redraw()
        self._auto_range()
        self.show_record(record)

    def _auto_range(self) -> None:
        """Every plot follows its data again. The iteration axis is shared (``setXLink``) and
        ranged by the first plot only: a linked plot whose range changes turns auto-range off
        in the others, so with all six on, each turned the others off in turn and none was
        left following the run (a learner's curves stayed on iterations 0-10 after a fix)."""
        for panel in self._panels.values():
            panel.plot.enableAutoRange(
                x=panel.name == PLOT_NAMES[0],
                y=panel.name not in ("curve-accuracy", "curve-dead-fraction"),
            )

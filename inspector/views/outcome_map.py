"""The Outcome map panel: train a grid of learning rates × initial weight scales and see, cell by
cell, whether a fresh run learned, got stuck, lost every filter or diverged.

The grid is ``model.sweep``'s: every cell is a new run from the current settings, changed only
in its learning rate, the scale s of both layers' initial weights (N(0, s) or U(0, s)) and the
pixel scaling. The cells run in worker processes (``run_sweep``) from a background thread, with
a progress bar and Cancel; the window stays responsive. The map is drawn natively so that it
fits the panel, shows each cell's numbers on hover and lets a click pick a cell: "New run with
these settings" then starts a run with exactly that cell's settings. "Save map…" writes the
designed PNG (``SweepResult.render_png``), the cells as CSV and a JSON description with the
command that repeats the sweep headless.
"""

from __future__ import annotations

import dataclasses
import io
import math
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import (
    QCoreApplication,
    QEventLoop,
    QPointF,
    QRectF,
    QSettings,
    QSize,
    Qt,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtGui import QColor, QFont, QPainter, QPen
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from inspector import dialogs
from inspector.errors import show_error
from inspector.tasks import BackgroundTask
from inspector.views.widgets import ElidedLabel, scroll_area
from model import files
from model.config import PIXEL_SCALING_LABELS, PIXEL_SCALINGS, UPDATE_MODE_LABELS, ConfigError
from model.formatting import format_count, format_number, format_share
from model.sweep import (
    DEFAULT_ITERATIONS,
    INIT_FAMILIES,
    INIT_FAMILY_LABELS,
    MARKER_COLOUR,
    OUTCOME_COLOURS,
    OUTCOME_LETTERS,
    OUTCOMES,
    CellResult,
    SweepCancelled,
    SweepResult,
    SweepSpec,
    default_family,
    log_spaced,
    run_sweep,
    tick_label,
)

#: Default grid (the headless sweep's): learning rates 1e-4..10 in 11, scales 1e-3..1 in 7.
DEFAULT_LR = (1e-4, 10.0, 11)
DEFAULT_SCALE = (1e-3, 1.0, 7)
MAX_AXIS_VALUES = 40
MAX_ITERATIONS = 100_000
#: Cell size on screen, in pixels: the map fits the panel within these bounds and scrolls below.
MIN_CELL = 18  # (22 cut the second map of the default grid off at 1280×800: a teacher)
MAX_CELL = 72
PANEL_GAP = 28
LEGEND_GAP = 24
#: Where the legend may go: (beside the map?, outcome swatches a line).
LEGEND_PLACES = ((False, 1), (True, 1), (True, 2))
#: Cells at least this large show, under the letter, the iteration their event happened.
EVENT_CELL = 40
#: Longest wait for a cancelled sweep when the window closes (a cell in progress finishes first
#: when the sweep runs in this process).
SHUTDOWN_SECONDS = 30
#: Narrower than this, the sweep settings fold away when a map arrives (the arrow brings them back).
FOLD_WIDTH = 900
#: Below this panel height the line under the map's title is left out (it is on its tooltip).
SUBTITLE_MIN_HEIGHT = 420
TICK = 4
SELECTED_COLOUR = QColor(204, 121, 167)  # Okabe–Ito reddish purple: unlike any outcome colour
MUTED = "#5f5f5f"
ERROR_STYLE = "QLineEdit[error='true'] { border: 2px solid #c62828; background: #fff5f5; }"
PIXEL_SHORT_LABELS = {"raw": "raw", "unit": "0..1", "standardize": "standardised"}
FAMILY_DESCRIPTIONS = {
    "normal": "N(0, s): normal, mean 0, std s",
    "uniform": "U(0, s): uniform on 0..s",
}
PLACEHOLDER = (
    "No sweep yet. Choose the grid on the left and press Run sweep: each cell trains a new "
    "network from the current settings with its own learning rate and initial weight scale s, "
    "and is coloured by how it ended (learned, stuck, every filter dead, diverged). The "
    "current setting is ringed."
)
#: Settings a sweep changes per cell (plus the history budget it keeps small); every cell
#: draws its weights, so a weights file of the current run is not one of its settings.
SWEPT_FIELDS = ("learning_rate", "conv_init", "classifier_init", "initial_weights", "pixel_scaling")


def _qcolor(rgb) -> QColor:
    return QColor(*rgb)


def _ink(rgb) -> QColor:
    red, green, blue = (c / 255 for c in rgb)
    return (
        QColor(20, 20, 20) if 0.299 * red + 0.587 * green + 0.114 * blue > 0.5 else QColor("white")
    )


def _join_lines(parts: list[str], metrics, room: float) -> list[str]:
    """``parts`` joined by spaces into as few lines as fit ``room`` pixels of ``metrics``' font
    (a part wider than that stands on a line of its own)."""
    lines = parts[:1]
    for part in parts[1:]:
        joined = f"{lines[-1]} {part}"
        if metrics.horizontalAdvance(joined) <= room:
            lines[-1] = joined
        else:
            lines.append(part)
    return lines


def cell_config(result: SweepResult, cell: CellResult, current):
    """The settings of ``cell`` as a run of its own: the sweep's base with the cell's learning
    rate, initial weights and pixels (and the current history budget)."""
    spec = result.spec
    init = spec.init_spec(cell.init_scale)
    return spec.base.with_changes(
        learning_rate=cell.learning_rate,
        conv_init=init,
        classifier_init=init,
        initial_weights=None,
        pixel_scaling=cell.pixel_scaling,
        history_budget_mb=current.history_budget_mb,
    )


def _family(result: SweepResult, cell: CellResult) -> str:
    letter = "N" if result.spec.init_family == "normal" else "U"
    return f"{letter}(0, {cell.init_scale:.3g})"


def describe_cell(result: SweepResult, cell: CellResult) -> str:
    """Plain sentences on how a cell ended."""
    # ``accuracy`` is on the whole dataset at the cell's last iteration; 'learned' needs it to
    # reach ``learned_accuracy`` and the loss to end below its start (``model.sweep.classify``).
    accuracy = format_share(cell.accuracy)
    needed = result.learned_text
    where = (
        f"Learning rate {format_number(cell.learning_rate)}, weights {_family(result, cell)}, "
        f"pixels {PIXEL_SCALING_LABELS[cell.pixel_scaling]}: "
    )
    if cell.outcome == "dead filter":
        what = f"every filter dead from iteration {cell.died_at}"
    elif cell.outcome == "diverged":
        what = (
            "diverged, a weight or the loss became NaN or infinite by iteration "
            f"{cell.iterations_run}"
        )
    elif cell.outcome == "learned":
        what = (
            f"learned: final accuracy {accuracy} (learned needs ≥ {needed} and a loss below "
            "its start)"
        )
    elif cell.accuracy < result.learned_accuracy:
        what = f"stuck: alive, but final accuracy {accuracy} (learned needs ≥ {needed})"
    else:
        what = (
            f"stuck: final accuracy {accuracy} (learned needs ≥ {needed}), but the loss did "
            "not fall below its start"
        )
    filters = result.spec.base.num_filters
    stopped = (
        " The run stopped there: nothing could change any more."
        if cell.iterations_run < result.spec.iterations
        else ""
    )
    return (
        f"{where}{what}. After {format_count(cell.iterations_run, 'iteration')}: loss "
        f"{format_number(cell.loss)}, {format_share(cell.dead_fraction)} of ReLU outputs zero, "
        f"{cell.dead_filters} of {format_count(filters, 'filter')} dead; the initial weights "
        "had accuracy "
        f"{format_share(cell.initial_accuracy)}.{stopped}"
    )


def summarise_cell(result: SweepResult, cell: CellResult) -> str:
    """How a cell ended and its settings, in one short line."""
    outcome = cell.outcome
    if outcome in ("learned", "stuck"):
        outcome += f", accuracy {format_share(cell.accuracy)}"
    elif outcome == "dead filter":
        outcome = f"every filter dead from iteration {cell.died_at}"
    pixels = (
        f" · pixels {PIXEL_SHORT_LABELS[cell.pixel_scaling]}"
        if len(result.spec.pixel_scalings) > 1
        else ""
    )
    return (
        f"{outcome} · learning rate {tick_label(cell.learning_rate)} · {_family(result, cell)}"
        f"{pixels}"
    )


# ---------------------------------------------------------------------------------------------
# The map
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Geometry:
    cell: float
    rows: int
    columns: int
    left: float  # from a panel's left edge to its plot
    top: float
    panel_width: float
    legend: QPointF  # top-left of the legend
    legend_side: bool  # the legend stands right of the map (else below it)
    legend_per_row: int  # outcome swatches a line, beside the map
    events: bool  # cells show the iteration of their event, and the legend says so

    def plot_left(self, panel: int) -> float:
        return panel * (self.panel_width + PANEL_GAP) + self.left

    def plot_rect(self, panel: int) -> QRectF:
        return QRectF(
            self.plot_left(panel), self.top, self.columns * self.cell, self.rows * self.cell
        )


class OutcomeMapCanvas(QWidget):
    """The outcome map of a ``SweepResult``: one panel per pixel scaling, initial scale up,
    learning rate across, each cell coloured and lettered by its outcome (the colours and
    letters of ``model.sweep``), the current setting ringed.

    Signals
    -------
    cell_clicked(CellResult) : a cell was clicked (it is now the selected one).
    hints_changed() : the size the map needs changed (a scroll area around it sizes itself).
    """

    cell_clicked = Signal(object)
    hints_changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("outcomeMapCanvas")
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._result: SweepResult | None = None
        self._marker: tuple[float, float] | None = None
        self._marker_scaling: str | None = None
        self._selected: CellResult | None = None
        self._cells: dict[tuple[str, float, float], CellResult] = {}
        self._has_events = False
        self._placeholder = ""
        self._last_minimum = QSize()

    # -- data --------------------------------------------------------------------------------

    @property
    def result(self) -> SweepResult | None:
        return self._result

    @property
    def selected(self) -> CellResult | None:
        return self._selected

    def set_placeholder(self, text: str) -> None:
        self._placeholder = text
        self.update()

    def set_result(self, result: SweepResult | None) -> None:
        self._result = result
        self._selected = None
        self._cells = (
            {}
            if result is None
            else {(c.pixel_scaling, c.init_scale, c.learning_rate): c for c in result.cells}
        )
        self._has_events = result is not None and any(
            bool(np.any(result.event_grid(scaling) >= 0)) for scaling in result.spec.pixel_scalings
        )
        self._hints_changed()
        self.update()

    def set_marker(self, marker: tuple[float, float] | None, pixel_scaling: str | None) -> None:
        """Ring (learning rate, s) on the panel of ``pixel_scaling`` (None: no ring): the cell
        nearest to it on the log axes is outlined."""
        self._marker, self._marker_scaling = marker, pixel_scaling
        self._hints_changed()
        self.update()

    def select(self, cell: CellResult | None) -> None:
        self._selected = cell
        self.update()

    # -- geometry ----------------------------------------------------------------------------

    def _fonts(self, cell: float) -> tuple[QFont, QFont]:
        letter = QFont(self.font())
        letter.setBold(True)
        letter.setPixelSize(int(max(10, min(18, cell * 0.36))))
        small = QFont(self.font())
        small.setPixelSize(int(max(8, min(12, cell * 0.24))))
        return letter, small

    def _frame(self) -> tuple[float, float, float]:
        """(left margin of a panel, top, bottom) in pixels."""
        fm = self.fontMetrics()
        spec = self._result.spec
        labels = [tick_label(v) for v in spec.init_scales]
        left = fm.height() + 8 + max(fm.horizontalAdvance(t) for t in labels) + TICK + 6
        # Room under the panel's title for the ring around a top-row cell.
        top = 4 + fm.height() + 7
        bottom = TICK + 3 + fm.height() + 2 + fm.height() + 2
        return left, top, bottom

    def _legend_entries(self, note: bool) -> list[tuple[str, str, str]]:
        """(kind, outcome, text) of each legend entry; kind 'swatch', 'note' (with ``note``)
        or 'ring'. ``text`` may break into lines where it has line breaks."""
        counts = self._result.counts()
        entries = [("swatch", name, f"{name} ({counts[name]})") for name in OUTCOMES]
        if note:
            entries.append(("note", "", "it N: the iteration\nit happened"))
        if self._marker is None:
            text = "current setting: not on\nthis map (other initialiser\nor pixels)"
        else:
            spec = self._result.spec
            axes = (spec.learning_rates, spec.init_scales)
            inside = all(
                axis[0] * (1 - 1e-9) <= value <= axis[-1] * (1 + 1e-9)
                for value, axis in zip(self._marker, axes, strict=True)
            )
            on_grid = all(
                any(math.isclose(value, v, rel_tol=1e-9) for v in axis)
                for value, axis in zip(self._marker, axes, strict=True)
            )
            if not inside:
                heading = "current setting, outside\nthe map (nearest cell):"
            elif not on_grid:
                heading = "current setting\n(nearest cell):"
            else:
                heading = "current setting:"
            text = (
                f"{heading}\nlearning rate {tick_label(self._marker[0])},\n"
                f"s = {tick_label(self._marker[1])}"
            )
        entries.append(("ring", "", text))
        return entries

    def _legend_layout(
        self, width: float, side: bool, per_row: int = 1, note: bool = False
    ) -> tuple[list[tuple[float, float, tuple]], float, float]:
        """Where each legend entry goes, relative to the legend's corner, and the legend's
        width and height: beside the map (``side``), ``per_row`` outcome swatches a line in
        aligned columns, the other entries on lines of their own no wider than the swatches
        (unless a word is); or below it, in lines that wrap like words in a canvas ``width``
        wide."""
        fm = self.fontMetrics()
        swatch = fm.height() + 2
        line = swatch + 6
        entries = self._legend_entries(note)
        swatches = [
            swatch + 5 + fm.horizontalAdvance(text) + 16
            for kind, _name, text in entries
            if kind == "swatch"
        ]
        columns = [max(swatches[j::per_row]) for j in range(per_row)]
        room = sum(columns) - swatch - 21 if side else width - swatch - 32
        texts, widths = [], []
        for kind, _name, text in entries:
            lines = _join_lines(text.split("\n"), fm, room)
            texts.append(lines)
            text_width = max(fm.horizontalAdvance(t) for t in lines)
            widths.append((0 if kind == "note" else swatch + 5) + text_width + 16)
        x, y, placed, widest, height = 0.0, 0.0, [], 0.0, 0.0
        for index, ((kind, name, _text), lines, entry_width) in enumerate(
            zip(entries, texts, widths, strict=True)
        ):
            if side and kind == "swatch":
                column = index % per_row
                x, y = sum(columns[:column]), (y if column else height)
            elif side or (x > 0 and (kind == "ring" or x + entry_width > width - 12)):
                x, y = 0.0, height
            placed.append((x, y, (kind, name, lines)))
            x += entry_width
            widest = max(widest, x)
            height = max(height, y + line + (len(lines) - 1) * fm.height())
        return placed, widest, height + 4

    def _map_size(self, cell: float) -> tuple[float, float]:
        """Width and height of the panels (without the legend) at ``cell`` pixels a cell."""
        spec = self._result.spec
        left, top, bottom = self._frame()
        panels = len(spec.pixel_scalings)
        width = 8 + panels * (left + len(spec.learning_rates) * cell) + (panels - 1) * PANEL_GAP
        return width, top + len(spec.init_scales) * cell + bottom

    def _cell_for(self, width: float, height: float) -> float:
        """The largest cell (within MIN_CELL..MAX_CELL) whose map fits ``width`` × ``height``."""
        spec = self._result.spec
        left, top, bottom = self._frame()
        panels = len(spec.pixel_scalings)
        by_width = (width - 8 - panels * left - (panels - 1) * PANEL_GAP) / (
            panels * len(spec.learning_rates)
        )
        by_height = (height - top - bottom) / len(spec.init_scales)
        return math.floor(max(MIN_CELL, min(MAX_CELL, by_width, by_height)))

    def _arrangement(self, width: float, height: float) -> tuple[float, bool, int, bool]:
        """(cell size, legend beside the map?, swatches a line, iterations shown?): the
        arrangement that fits the canvas, with iterations in the cells when they can be large
        enough for them, else with the larger cells; the one overflowing least when none fits.
        """
        top = self._frame()[1]
        options = []
        for note in (True, False) if self._has_events else (False,):
            for side, per_row in LEGEND_PLACES:
                _p, legend_width, legend_height = self._legend_layout(width, side, per_row, note)
                if side:
                    cell = self._cell_for(width - legend_width - LEGEND_GAP, height)
                    map_width, map_height = self._map_size(cell)
                    needed = (
                        map_width + LEGEND_GAP + legend_width,
                        max(map_height, top + legend_height),
                    )
                else:
                    cell = self._cell_for(width, height - legend_height)
                    map_width, map_height = self._map_size(cell)
                    needed = (map_width, map_height + legend_height)
                if note and cell < EVENT_CELL:
                    continue
                overflow = max(0.0, needed[0] - width) + max(0.0, needed[1] - height)
                options.append((-overflow, note, cell, not side, -per_row, side, per_row))
        _overflow, note, cell, _below, _rows, side, per_row = max(options)
        return cell, side, per_row, note

    def _geometry(self) -> _Geometry:
        spec = self._result.spec
        left, top, _bottom = self._frame()
        cell, side, per_row, note = self._arrangement(self.width(), self.height())
        map_width, map_height = self._map_size(cell)
        corner = QPointF(map_width + LEGEND_GAP, top) if side else QPointF(6, map_height)
        return _Geometry(
            cell=cell,
            rows=len(spec.init_scales),
            columns=len(spec.learning_rates),
            left=left + 4,
            top=top,
            panel_width=left + len(spec.learning_rates) * cell,
            legend=corner,
            legend_side=side,
            legend_per_row=per_row,
            events=note,
        )

    def map_rect(self) -> QRectF:
        """The map's panels with their titles, ticks and axis titles (not the legend), in widget
        coordinates."""
        if self._result is None:
            return QRectF()
        width, height = self._map_size(self._geometry().cell)
        return QRectF(0, 0, width, height)

    def _needed(self, cell: float, note: bool) -> QSize:
        """The canvas size for ``cell``: the legend beside the map when the canvas is wide
        enough for that (in the arrangement needing the least height), else below it."""
        map_width, map_height = self._map_size(cell)
        top = self._frame()[1]
        beside = []
        for per_row in (1, 2):
            _p, side_width, side_height = self._legend_layout(self.width(), True, per_row, note)
            if map_width + LEGEND_GAP + side_width <= self.width():
                beside.append(
                    QSize(
                        int(math.ceil(map_width + LEGEND_GAP + side_width)),
                        int(math.ceil(max(map_height, top + side_height))),
                    )
                )
        if beside:
            return min(beside, key=QSize.height)
        _p, _w, below_height = self._legend_layout(max(map_width, self.width()), False, 1, note)
        return QSize(int(math.ceil(map_width)), int(math.ceil(map_height + below_height)))

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override
        if self._result is None:
            return QSize(240, 120)
        return self._needed(MIN_CELL, False)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        if self._result is None:
            return QSize(480, 300)
        return self._needed(44, self._has_events)

    def _hints_changed(self) -> None:
        self.updateGeometry()
        self.hints_changed.emit()

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        if self._result is not None:
            needed = self.minimumSizeHint()
            if needed != self._last_minimum:
                self._last_minimum = needed
                self._hints_changed()

    def _index(self, axis, value: float) -> float:
        """Fractional index of ``value`` on a log axis, clamped to its ends."""
        if len(axis) == 1:
            return 0.0
        return float(np.interp(math.log10(value), np.log10(axis), np.arange(len(axis))))

    def cell_rect(self, cell: CellResult) -> QRectF:
        """Where ``cell`` is drawn, in widget coordinates."""
        geometry = self._geometry()
        spec = self._result.spec
        panel = spec.pixel_scalings.index(cell.pixel_scaling)
        row = spec.init_scales.index(cell.init_scale)
        column = spec.learning_rates.index(cell.learning_rate)
        plot = geometry.plot_rect(panel)
        return QRectF(
            plot.left() + column * geometry.cell,
            plot.top() + (geometry.rows - 1 - row) * geometry.cell,
            geometry.cell,
            geometry.cell,
        )

    def cell_at(self, position: QPointF) -> CellResult | None:
        """The cell under ``position`` (widget coordinates), if any."""
        if self._result is None:
            return None
        geometry = self._geometry()
        spec = self._result.spec
        for panel, scaling in enumerate(spec.pixel_scalings):
            plot = geometry.plot_rect(panel)
            if not plot.contains(position):
                continue
            column = int((position.x() - plot.left()) // geometry.cell)
            row = geometry.rows - 1 - int((position.y() - plot.top()) // geometry.cell)
            if 0 <= column < geometry.columns and 0 <= row < geometry.rows:
                key = (scaling, spec.init_scales[row], spec.learning_rates[column])
                return self._cells.get(key)
        return None

    # -- events ------------------------------------------------------------------------------

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt override
        cell = self.cell_at(event.position())
        if cell is not None and event.button() == Qt.MouseButton.LeftButton:
            self.select(cell)
            self.cell_clicked.emit(cell)
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 - Qt override
        cell = self.cell_at(event.position())
        if cell is None:
            QToolTip.hideText()
            self.setCursor(Qt.CursorShape.ArrowCursor)
        else:
            self.setCursor(Qt.CursorShape.PointingHandCursor)
            text = describe_cell(self._result, cell) + "\nClick to pick this cell."
            QToolTip.showText(event.globalPosition().toPoint(), text, self)
        super().mouseMoveEvent(event)

    # -- painting ----------------------------------------------------------------------------

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), QColor("white"))
        if self._result is None:
            painter.setPen(QColor(MUTED))
            painter.drawText(
                self.rect().adjusted(16, 16, -16, -16),
                Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                self._placeholder,
            )
            return
        geometry = self._geometry()
        for panel, scaling in enumerate(self._result.spec.pixel_scalings):
            self._paint_panel(painter, geometry, panel, scaling)
        self._paint_legend(painter, geometry)
        painter.end()

    def _paint_panel(self, painter: QPainter, g: _Geometry, panel: int, scaling: str) -> None:
        result, spec = self._result, self._result.spec
        fm = self.fontMetrics()
        plot = g.plot_rect(panel)
        ink = QColor(20, 20, 20)
        painter.setPen(ink)
        title_font = QFont(self.font())
        title_font.setBold(True)
        painter.setFont(title_font)
        painter.drawText(
            QRectF(plot.left(), 2, plot.width() + 200, fm.height() + 4),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            f"pixels: {PIXEL_SCALING_LABELS[scaling]}",
        )
        letter_font, small_font = self._fonts(g.cell)
        grid, events = result.outcome_grid(scaling), result.event_grid(scaling)
        for row in range(g.rows):
            top = plot.top() + (g.rows - 1 - row) * g.cell
            for column in range(g.columns):
                box = QRectF(plot.left() + column * g.cell, top, g.cell, g.cell)
                code = int(grid[row, column])
                colour = (255, 255, 255) if code < 0 else OUTCOME_COLOURS[OUTCOMES[code]]
                painter.fillRect(box, _qcolor(colour))
                painter.setPen(QPen(QColor("white"), 1))
                painter.drawRect(box)
                if code < 0:
                    continue
                painter.setPen(_ink(colour))
                event = int(events[row, column])
                show_event = event >= 0 and g.events
                letter_box = box.adjusted(0, 0, 0, -g.cell * 0.3 if show_event else 0)
                painter.setFont(letter_font)
                painter.drawText(
                    letter_box, Qt.AlignmentFlag.AlignCenter, OUTCOME_LETTERS[OUTCOMES[code]]
                )
                if show_event:
                    painter.setFont(small_font)
                    painter.drawText(
                        box.adjusted(0, g.cell * 0.45, 0, 0),
                        Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop,
                        f"it {event}",
                    )
        painter.setFont(self.font())
        painter.setPen(ink)
        painter.drawRect(plot.adjusted(-0.5, -0.5, 0.5, 0.5))
        for row, scale in enumerate(spec.init_scales):
            middle = plot.top() + (g.rows - 1 - row + 0.5) * g.cell
            painter.drawLine(QPointF(plot.left() - TICK, middle), QPointF(plot.left(), middle))
            painter.drawText(
                QRectF(plot.left() - TICK - 3 - 200, middle - fm.height(), 200, 2 * fm.height()),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                tick_label(scale),
            )
        labels = [tick_label(rate) for rate in spec.learning_rates]
        # Every n-th label when the cells are narrower than the labels (the last one always).
        every = max(1, math.ceil((max(fm.horizontalAdvance(t) for t in labels) + 8) / g.cell))
        for column, rate in enumerate(spec.learning_rates):
            centre = plot.left() + (column + 0.5) * g.cell
            painter.drawLine(QPointF(centre, plot.bottom()), QPointF(centre, plot.bottom() + TICK))
            if (g.columns - 1 - column) % every:
                continue
            painter.drawText(
                QRectF(centre - g.cell, plot.bottom() + TICK + 2, 2 * g.cell, fm.height()),
                Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop,
                tick_label(rate),
            )
        axis_top = plot.bottom() + TICK + 3 + fm.height() + 1
        painter.drawText(
            QRectF(plot.left() - 40, axis_top, plot.width() + 80, fm.height() + 4),
            Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop,
            "learning rate (log scale)",
        )
        y_title = next(
            (
                t
                for t in ("initial weight scale s (log scale)", "initial scale s", "scale s")
                if fm.horizontalAdvance(t) <= plot.height()
            ),
            "s",
        )
        painter.save()
        painter.translate(panel * (g.panel_width + PANEL_GAP) + 4 + fm.ascent(), plot.center().y())
        painter.rotate(-90)
        painter.drawText(
            QRectF(-plot.height() / 2, -fm.ascent(), plot.height(), fm.height()),
            Qt.AlignmentFlag.AlignCenter,
            y_title,
        )
        painter.restore()
        if self._selected is not None and self._selected.pixel_scaling == scaling:
            painter.setPen(QPen(SELECTED_COLOUR, 4))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(self.cell_rect(self._selected).adjusted(2, 2, -2, -2))
        if self._marker is not None and self._marker_scaling in (None, scaling):
            # Around the nearest cell, outside it, so the cell's letter and iteration stay
            # readable; the legend gives the setting's exact values.
            column = round(self._index(spec.learning_rates, self._marker[0]))
            row = round(self._index(spec.init_scales, self._marker[1]))
            box = QRectF(
                plot.left() + column * g.cell,
                plot.top() + (g.rows - 1 - row) * g.cell,
                g.cell,
                g.cell,
            )
            self._paint_ring(painter, box)

    def _paint_legend(self, painter: QPainter, g: _Geometry) -> None:
        fm = self.fontMetrics()
        swatch = fm.height() + 2
        bold = QFont(self.font())
        bold.setBold(True)
        placed, _width, _height = self._legend_layout(
            self.width(), g.legend_side, g.legend_per_row, g.events
        )
        for dx, dy, (kind, name, lines) in placed:
            x, top = g.legend.x() + dx, g.legend.y() + dy
            text_left = x + swatch + 5
            if kind == "swatch":
                colour = OUTCOME_COLOURS[name]
                box = QRectF(x, top, swatch, swatch)
                painter.fillRect(box, _qcolor(colour))
                painter.setPen(QColor(20, 20, 20))
                painter.drawRect(box)
                painter.setFont(bold)
                painter.setPen(_ink(colour))
                painter.drawText(box, Qt.AlignmentFlag.AlignCenter, OUTCOME_LETTERS[name])
            elif kind == "ring":
                self._paint_ring(painter, QRectF(x + 4, top + 4, swatch - 8, swatch - 8))
            else:
                text_left = x
            painter.setFont(self.font())
            painter.setPen(QColor(MUTED) if kind == "note" else QColor(20, 20, 20))
            for number, text in enumerate(lines):
                painter.drawText(
                    QRectF(
                        text_left,
                        top + number * fm.height(),
                        fm.horizontalAdvance(text) + 8,
                        swatch,
                    ),
                    Qt.AlignmentFlag.AlignVCenter,
                    text,
                )

    def _paint_ring(self, painter: QPainter, box: QRectF) -> None:
        """A thick blue ring with a white edge just outside ``box``: it leaves everything
        inside the box as it was (a picked cell's own outline too)."""
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setPen(QPen(QColor("white"), 5))
        painter.drawRoundedRect(box.adjusted(-3, -3, 3, 3), 4, 4)
        painter.setPen(QPen(_qcolor(MARKER_COLOUR), 3))
        painter.drawRoundedRect(box.adjusted(-2, -2, 2, 2), 3, 3)


# ---------------------------------------------------------------------------------------------
# The panel
# ---------------------------------------------------------------------------------------------


class _MapScroll(QScrollArea):
    """The map's scroll area: sideways only, and never shorter than the whole map, so that a
    short panel scrolls as a whole rather than cut the map's axes off."""

    def __init__(self, canvas: OutcomeMapCanvas) -> None:
        super().__init__()
        self.setWidget(canvas)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        canvas.hints_changed.connect(self.updateGeometry)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override
        needed = self.widget().minimumSizeHint()
        height = needed.height()
        if needed.width() > self.width():
            height += self.horizontalScrollBar().sizeHint().height()
        return QSize(super().minimumSizeHint().width(), height)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        # No taller than the minimum: a scroll area sizes the panel to its preferred height for
        # the width, which would scroll a short panel that the map fits at smaller cells. The
        # map takes any room left over by stretching.
        return QSize(self.widget().sizeHint().width(), self.minimumSizeHint().height())


def _number_edit(name: str, value: float, tip: str) -> QLineEdit:
    edit = QLineEdit(f"{value:g}")
    edit.setObjectName(name)
    edit.setToolTip(tip)
    edit.setFixedWidth(edit.fontMetrics().horizontalAdvance("0.000001") + 14)
    return edit


def _count_spin(name: str, value: int, what: str) -> QSpinBox:
    spin = QSpinBox()
    spin.setObjectName(name)
    spin.setRange(1, MAX_AXIS_VALUES)
    spin.setValue(value)
    spin.setFixedWidth(spin.fontMetrics().horizontalAdvance("0.000001") + 14)
    spin.setToolTip(f"How many {what}, evenly spaced on a log scale from 'from' to 'to'")
    return spin


def _mark_error(edit: QLineEdit, on: bool) -> None:
    if edit.property("error") != on:
        edit.setProperty("error", on)
        edit.style().unpolish(edit)
        edit.style().polish(edit)


class OutcomeMapView(QWidget):
    """Sweep controls on the left, the map on the right, the picked cell below it in a line
    that opens to the whole story (above that line, titles and map scroll together when the
    panel is too short for them).

    Parameters
    ----------
    controller : the window's ``SessionController`` (read for the settings and the images; a
        picked cell's settings are requested from it).
    workers : processes for the sweep; None uses every core (tests pass 1).

    Signals
    -------
    sweep_finished(object) : the ``SweepResult`` now shown.
    sweep_ended(str) : a sweep ended ('done', 'cancelled' or 'failed') and the controls are
        ready for the next.
    """

    sweep_finished = Signal(object)
    sweep_ended = Signal(str)

    def __init__(self, controller, parent: QWidget | None = None, *, workers: int | None = None):
        super().__init__(parent)
        self.setObjectName("outcomeMapView")
        self.setStyleSheet(ERROR_STYLE)
        self._controller = controller
        self.workers = workers
        self._task: BackgroundTask | None = None
        self._result: SweepResult | None = None
        self._result_source: dict[str, str] = {}
        # The data the map was swept on (a new Dataset object whenever the data change).
        self._result_dataset = None
        self._pending_dataset = None
        self._result_preset: str | None = None
        self._closed = False
        self._ending = "failed"

        config = controller.config
        self.lr_from = _number_edit("sweepLrFrom", DEFAULT_LR[0], "Smallest learning rate")
        self.lr_to = _number_edit("sweepLrTo", DEFAULT_LR[1], "Largest learning rate")
        self.lr_count = _count_spin("sweepLrCount", DEFAULT_LR[2], "learning rates")
        self.scale_from = _number_edit("sweepScaleFrom", DEFAULT_SCALE[0], "Smallest scale s")
        self.scale_to = _number_edit("sweepScaleTo", DEFAULT_SCALE[1], "Largest scale s")
        self.scale_count = _count_spin("sweepScaleCount", DEFAULT_SCALE[2], "scales")
        self.family = QComboBox()
        self.family.setObjectName("sweepFamily")
        for name in INIT_FAMILIES:
            self.family.addItem(INIT_FAMILY_LABELS[name], name)
            self.family.setItemData(
                self.family.count() - 1, FAMILY_DESCRIPTIONS[name], Qt.ItemDataRole.ToolTipRole
            )
        self.family.setCurrentIndex(INIT_FAMILIES.index(default_family(config)))
        self.family.setToolTip(
            "How both layers' initial weights are drawn in every cell, s being the cell's "
            "scale: N(0, s) normal with mean 0 and standard deviation s; U(0, s) uniform "
            "between 0 and s (the question's setup is U(0, 1))"
        )
        self.pixel_boxes: dict[str, QCheckBox] = {}
        for name in PIXEL_SCALINGS:
            box = QCheckBox(PIXEL_SHORT_LABELS[name])
            box.setObjectName(f"sweepPixels_{name}")
            box.setChecked(name == config.pixel_scaling)
            box.setToolTip(f"Pixels {PIXEL_SCALING_LABELS[name]}: one map per ticked scaling")
            self.pixel_boxes[name] = box
        self.iterations = QSpinBox()
        self.iterations.setObjectName("sweepIterations")
        self.iterations.setRange(1, MAX_ITERATIONS)
        self.iterations.setValue(DEFAULT_ITERATIONS)
        self.iterations.setToolTip("Updates each cell trains for")
        self.iterations.setFixedWidth(self.lr_count.width())

        self.run_button = QPushButton("Run sweep")
        self.run_button.setObjectName("sweepRun")
        self.run_button.setToolTip(
            "Train one fresh run per cell from the current settings, each with its own "
            "learning rate and initial weight scale s, on every core"
        )
        self.run_button.clicked.connect(self.run_sweep)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("sweepCancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.progress.setObjectName("sweepProgress")
        self.progress.setTextVisible(True)
        self.progress.setFormat("%v / %m cells")
        self.size_label = QLabel()
        self.size_label.setObjectName("sweepSize")
        self.size_label.setWordWrap(True)
        self.size_label.setStyleSheet(f"color: {MUTED};")
        self.status = QLabel()
        self.status.setObjectName("sweepStatus")
        self.status.setWordWrap(True)
        self.save_button = QPushButton("Save map…")
        self.save_button.setObjectName("sweepSave")
        self.save_button.setToolTip("Save the map as PNG, the cells as CSV and the sweep as JSON")
        self.save_button.setEnabled(False)
        self.save_button.clicked.connect(self.save)

        grid = QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(6)
        grid.setVerticalSpacing(4)
        for column, text in enumerate(("learning rate", "init scale s"), start=1):
            heading = QLabel(text)
            heading.setStyleSheet("font-weight: bold;")
            grid.addWidget(heading, 0, column)
        for row, (text, lr_widget, scale_widget) in enumerate(
            (
                ("from", self.lr_from, self.scale_from),
                ("to", self.lr_to, self.scale_to),
                ("values", self.lr_count, self.scale_count),
            ),
            start=1,
        ):
            grid.addWidget(QLabel(text), row, 0)
            grid.addWidget(lr_widget, row, 1)
            grid.addWidget(scale_widget, row, 2)
        grid.addWidget(QLabel("weights"), 4, 0)
        grid.addWidget(self.family, 4, 1, 1, 2)
        grid.addWidget(QLabel("pixels"), 5, 0, Qt.AlignmentFlag.AlignTop)
        pixels = QGridLayout()
        pixels.setHorizontalSpacing(8)
        pixels.setVerticalSpacing(2)
        boxes = list(self.pixel_boxes.values())
        pixels.addWidget(boxes[0], 0, 0)
        pixels.addWidget(boxes[1], 0, 1)
        pixels.addWidget(boxes[2], 1, 0, 1, 2)
        grid.addLayout(pixels, 5, 1, 1, 2)
        grid.addWidget(QLabel("iterations"), 6, 0)
        grid.addWidget(self.iterations, 6, 1)
        grid.setColumnStretch(3, 1)

        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.save_button)
        buttons.addStretch(1)

        controls = QWidget()
        controls.setObjectName("sweepControls")
        side = QVBoxLayout(controls)
        side.setContentsMargins(6, 6, 6, 6)
        side.setSpacing(6)
        side.addLayout(grid)
        side.addWidget(self.size_label)
        side.addLayout(buttons)
        side.addWidget(self.status)
        side.addStretch(1)
        self.controls = scroll_area(controls, "sweepControlsScroll", across=False)
        self.controls.setFixedWidth(controls.sizeHint().width() + 14)

        self.toggle_controls = QToolButton()
        self.toggle_controls.setObjectName("sweepToggleControls")
        self.toggle_controls.setCheckable(True)
        self.toggle_controls.setChecked(True)
        self.toggle_controls.setAutoRaise(True)
        self.toggle_controls.toggled.connect(self._show_controls)
        self._show_controls(True)
        self.title = QLabel()
        self.title.setObjectName("outcomeMapTitle")
        self.title.setWordWrap(True)
        self.title.setStyleSheet("font-weight: bold;")
        self.subtitle = QLabel()
        self.subtitle.setObjectName("outcomeMapSubtitle")
        self.subtitle.setWordWrap(True)
        self.subtitle.setStyleSheet(f"color: {MUTED};")
        self.stale_note = QLabel()
        self.stale_note.setObjectName("outcomeStale")
        self.stale_note.setWordWrap(True)
        self.stale_note.setStyleSheet("color: #8a4b00;")
        self.stale_note.setVisible(False)
        self.canvas = OutcomeMapCanvas()
        self.canvas.set_placeholder(PLACEHOLDER)
        self.canvas.cell_clicked.connect(self._on_cell_clicked)
        self.scroll = _MapScroll(self.canvas)
        self.scroll.setObjectName("outcomeMapScroll")
        # The picked cell: one line and its button, the full sentences only when asked for, so
        # that picking a cell takes little room from the map.
        self.details_toggle = QToolButton()
        self.details_toggle.setObjectName("outcomeDetailsToggle")
        self.details_toggle.setCheckable(True)
        self.details_toggle.setAutoRaise(True)
        self.details_toggle.toggled.connect(self._show_details)
        self.pick_summary = ElidedLabel()
        self.pick_summary.setObjectName("outcomePickSummary")
        self.cell_label = QLabel()
        self.cell_label.setObjectName("outcomeCell")
        self.cell_label.setWordWrap(True)
        self.cell_label.setStyleSheet(f"color: {MUTED};")
        self.try_button = QPushButton("New run with these settings")
        self.try_button.setObjectName("outcomeTry")
        self.try_button.setToolTip(
            "Start a new run (iteration 0) with the picked cell's learning rate, initial "
            "weights and pixels, and the sweep's other settings"
        )
        self.try_button.clicked.connect(self.try_selected)
        self.picked = QWidget()
        self.picked.setObjectName("outcomePicked")
        picked = QVBoxLayout(self.picked)
        picked.setContentsMargins(0, 0, 0, 0)
        picked.setSpacing(2)
        strip = QHBoxLayout()
        strip.setSpacing(4)
        strip.addWidget(self.details_toggle)
        strip.addWidget(self.pick_summary, 1)
        strip.addWidget(self.try_button)
        picked.addLayout(strip)
        picked.addWidget(self.cell_label)
        self.picked.setVisible(False)
        self._show_details(False)

        heading = QHBoxLayout()
        heading.setSpacing(4)
        heading.addWidget(self.toggle_controls, 0, Qt.AlignmentFlag.AlignTop)
        titles = QVBoxLayout()
        titles.setSpacing(1)
        titles.addWidget(self.title)
        titles.addWidget(self.subtitle)
        titles.addWidget(self.stale_note)
        heading.addLayout(titles, 1)
        panel = QWidget()
        panel.setObjectName("outcomeMapPanel")
        right = QVBoxLayout(panel)
        right.setContentsMargins(4, 4, 4, 4)
        right.setSpacing(4)
        right.addLayout(heading)
        # While a sweep runs: its progress and Cancel, above the map, in sight even when the
        # settings are folded away.
        self.running_row = QWidget()
        self.running_row.setObjectName("sweepRunning")
        running = QHBoxLayout(self.running_row)
        running.setContentsMargins(0, 0, 0, 0)
        running.addWidget(self.progress, 1)
        running.addWidget(self.cancel_button)
        self.running_row.setVisible(False)
        right.addWidget(self.running_row)
        right.addWidget(self.scroll, 1)
        # The map never gets smaller than it needs to be whole: a panel too short for it
        # scrolls, titles and map together; the picked cell's line stays in sight below.
        self.panel_scroll = scroll_area(panel, "outcomeMapPanelScroll", across=False)
        column = QVBoxLayout()
        column.setContentsMargins(0, 0, 4, 4)
        column.setSpacing(4)
        column.addWidget(self.panel_scroll, 1)
        column.addWidget(self.picked)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.controls)
        layout.addLayout(column, 1)

        for edit in (self.lr_from, self.lr_to, self.scale_from, self.scale_to):
            edit.textChanged.connect(self._update_size)
        for spin in (self.lr_count, self.scale_count, self.iterations):
            spin.valueChanged.connect(self._update_size)
        for box in self.pixel_boxes.values():
            box.toggled.connect(self._update_size)
        controller.config_changed.connect(self._update_marker)
        controller.session_reset.connect(self._on_session_reset)
        controller.dataset_changed.connect(self._on_dataset_changed)
        self._update_size()
        self._update_titles()

    def _on_session_reset(self, _record) -> None:
        self._update_marker()

    def _on_dataset_changed(self, _dataset) -> None:
        self._update_titles()
        self._update_size()  # ("… updates on 2 images" was left after loading 80)

    def _show_controls(self, shown: bool) -> None:
        self.controls.setVisible(shown)
        self.toggle_controls.setArrowType(
            Qt.ArrowType.LeftArrow if shown else Qt.ArrowType.RightArrow
        )
        self.toggle_controls.setToolTip(
            "Hide the sweep settings (more room for the map)"
            if shown
            else "Show the sweep settings"
        )

    def _show_details(self, shown: bool) -> None:
        self.cell_label.setVisible(shown)
        self.details_toggle.setArrowType(
            Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow
        )
        self.details_toggle.setToolTip(
            "Hide the details" if shown else "Show how this cell's run ended, in full"
        )
        QTimer.singleShot(0, self, self._keep_map_in_view)

    @Slot()
    def _keep_map_in_view(self) -> None:
        """Scroll a panel that is too short for titles and map together so that the whole map
        is in view (the titles scroll off first)."""
        if self._result is None:
            return
        panel = self.panel_scroll.widget()
        area = self.canvas.map_rect().toAlignedRect()
        top = self.canvas.mapTo(panel, area.topLeft()).y()
        bottom = self.canvas.mapTo(panel, area.bottomLeft()).y()
        bar = self.panel_scroll.verticalScrollBar()
        shown = self.panel_scroll.viewport().height()
        bar.setValue(min(max(bar.value(), bottom - shown + 1), top))

    # -- public ------------------------------------------------------------------------------

    @property
    def result(self) -> SweepResult | None:
        """The sweep on the map (None before the first)."""
        return self._result

    @property
    def is_running(self) -> bool:
        return self._task is not None

    def plot_items(self) -> dict:
        """No pyqtgraph items: the map is saved through ``map_png`` / "Save map…"."""
        return {}

    def maps_current_data(self) -> bool:
        """Whether there is a map, swept on the images the window has now (a report leaves
        out a map of other images: it rang the new run's setting on the old images' cells)."""
        return self._result is not None and self._result_dataset is self._controller.dataset

    def map_png(self) -> bytes | None:
        """The designed map of the current result as PNG bytes, the current setting ringed."""
        if self._result is None:
            return None
        marker, scaling = self._marker()
        buffer = io.BytesIO()
        self._result.render_png(marker, marker_pixel_scaling=scaling).save(buffer, "PNG")
        return buffer.getvalue()

    def spec(self) -> SweepSpec:
        """The grid the controls describe, from the current settings.

        Raises
        ------
        ValueError, ConfigError
            With a message for people; the offending field is framed in red.
        """
        for edit in (self.lr_from, self.lr_to, self.scale_from, self.scale_to):
            _mark_error(edit, False)
        rates = log_spaced(
            self._value(self.lr_from, "learning rate 'from'"),
            self._value(self.lr_to, "learning rate 'to'"),
            self.lr_count.value(),
        )
        scales = log_spaced(
            self._value(self.scale_from, "scale 'from'"),
            self._value(self.scale_to, "scale 'to'"),
            self.scale_count.value(),
        )
        pixels = tuple(name for name, box in self.pixel_boxes.items() if box.isChecked())
        if not pixels:
            raise ValueError("Tick at least one pixel scaling.")
        return SweepSpec(
            base=self._controller.config,
            learning_rates=rates,
            init_scales=scales,
            init_family=self.family.currentData(),
            pixel_scalings=pixels,
            iterations=self.iterations.value(),
        )

    @Slot()
    def run_sweep(self) -> None:
        """Start a sweep of the grid on the controls (nothing happens while one runs)."""
        if self._task is not None:
            return
        try:
            spec = self.spec()
        except (ValueError, ConfigError) as exc:
            self._set_status(f"Not started: {exc}", error=True)
            return
        c = self._controller
        dataset = c.dataset
        source = c.dataset_source
        name = source.split(":", 1)[1] if source.startswith("example:") else Path(source).name
        workers = self.workers
        total = len(spec.cells())

        def job(progress, cancelled):
            return run_sweep(
                spec,
                dataset,
                workers=workers,
                progress=progress,
                cancel=cancelled,
                dataset_name=name,
            )

        task = BackgroundTask(job, self)
        self._task = task
        self._pending_source = self._source(source)
        self._pending_preset = c.preset_name
        self._pending_dataset = dataset
        task.progress.connect(self._on_progress)
        task.done.connect(self._on_done)
        task.failed.connect(self._on_failed)
        task.cancelled.connect(self._on_cancelled)
        task.ended.connect(self._on_ended)
        self.progress.setRange(0, total)
        self.progress.setValue(0)
        self.running_row.setVisible(True)
        if self._result is None:
            self.canvas.set_placeholder(
                f"Training {format_count(total, 'fresh run')}… the map appears when they are done."
            )
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self._set_status(
            f"Training {format_count(total, 'cell')} × {spec.iterations} iterations"
            + (
                " on every core…"
                if workers is None
                else f" in {format_count(workers, 'process', 'processes')}…"
            )
        )
        task.start()

    @Slot()
    def cancel(self) -> None:
        """Stop the running sweep; the map keeps the previous result."""
        if self._task is not None:
            self._task.cancel()
            self.cancel_button.setEnabled(False)
            self._set_status("Cancelling…")

    @Slot()
    def try_selected(self) -> None:
        """Start a new run with the picked cell's settings."""
        cell = self.canvas.selected
        if cell is None or self._result is None:
            return
        c = self._controller
        try:
            config = cell_config(self._result, cell, c.config)
        except ConfigError as exc:
            show_error(self, "Settings not applied", str(exc))
            return
        c.request_config(config)
        c.reset()
        c.status_message.emit(
            f"New run: learning rate {format_number(cell.learning_rate)}, initial scale "
            f"s = {cell.init_scale:g}, pixels {PIXEL_SCALING_LABELS[cell.pixel_scaling]}"
        )

    @Slot()
    def save(self) -> list[Path]:
        """Ask for a file name and write <name>.png, <name>.csv and <name>.json; existing
        files are replaced only after the user agrees."""
        if self._result is None:
            return []
        suggested = self._last_folder() / "outcome-map.png"
        chosen = self._ask_save_path("Save outcome map", suggested, "PNG image (*.png)")
        if not chosen:
            return []
        suffixes = (".png", ".csv", ".json")
        stem, folder = files.stem_of(chosen, suffixes), Path(chosen).parent
        targets = [folder / f"{stem}{suffix}" for suffix in suffixes]
        try:
            clashes = files.existing(targets)
            if clashes and not self._confirm_replace(clashes):
                self._set_status("Not saved: the existing files were kept.")
                return []
            payloads = self._payloads(folder)
            written = [
                files.write_atomic(path, payload, overwrite=bool(clashes))
                for path, payload in zip(targets, payloads, strict=True)
            ]
        except files.SaveError as exc:
            show_error(self, "Outcome map not saved", str(exc))
            return []
        QSettings().setValue("save/last_folder", str(folder))
        self._set_status(f"Saved {', '.join(p.name for p in written)} in {folder}")
        return written

    def shutdown(self) -> None:
        """Cancel a running sweep and wait for its thread (window closing)."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            # BackgroundTask's thread only quits once its result reaches this (GUI) thread, so
            # deliver events while waiting rather than block in QThread.wait.
            deadline = time.monotonic() + SHUTDOWN_SECONDS
            while self._task is not None and time.monotonic() < deadline:
                QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)

    # -- dialogs (replaced in tests) ---------------------------------------------------------

    def _ask_save_path(self, title: str, suggested: Path, filter_text: str) -> str:
        return dialogs.ask_save_path(self, title, suggested, filter_text)

    def _confirm_replace(self, paths: list[Path]) -> bool:
        return dialogs.confirm_replace(self, paths)

    # -- internals ---------------------------------------------------------------------------

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        # In a short panel the map needs every row; the settings line is on the title's tooltip.
        self.subtitle.setVisible(self.height() >= SUBTITLE_MIN_HEIGHT)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.shutdown()
        super().closeEvent(event)

    @staticmethod
    def _source(source: str) -> dict[str, str]:
        if source.startswith("example:"):
            return {"example": source.split(":", 1)[1]}
        return {"folder": source} if source != "files" else {"files": "added one by one"}

    @staticmethod
    def _last_folder() -> Path:
        stored = QSettings().value("save/last_folder", "")
        folder = Path(stored) if stored else Path.home()
        return folder if folder.is_dir() else Path.home()

    def _value(self, edit: QLineEdit, what: str) -> float:
        text = edit.text().strip()
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value > 0):
            _mark_error(edit, True)
            raise ValueError(f"{what} must be a positive number, got {text!r}.")
        return value

    def _marker(self) -> tuple[tuple[float, float] | None, str | None]:
        if self._result is None:
            return None, None
        spec = self._result.spec
        config = self._controller.config
        marker = spec.marker(config)
        several = len(spec.pixel_scalings) > 1
        return marker, config.pixel_scaling if marker and several else None

    def _payloads(self, folder: Path) -> list[bytes]:
        from inspector.cli import sweep_command
        from model.headless import sweep_description
        from model.snapshot import json_bytes

        marker, _scaling = self._marker()
        command = sweep_command(
            self._result.spec,
            self._result_preset,
            self._result_source,
            self._controller.dataset,
            folder,
        )
        description = sweep_description(self._result, self._result_source, marker, command)
        return [self.map_png(), self._result.to_csv_bytes(), json_bytes(description)]

    def _set_status(self, text: str, *, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("color: #b71c1c;" if error else "")

    @Slot()
    def _update_size(self) -> None:
        try:
            spec = self.spec()
        except (ValueError, ConfigError) as exc:
            self.size_label.setText(str(exc))
            return
        cells = len(spec.cells())
        images = len(self._controller.dataset)
        size = f"{format_count(cells, 'cell')} × {spec.iterations} iterations"
        on = format_count(images, "image")
        if spec.base.update_mode == "per_image":
            # (a learner's 12 images had 4 epochs a cell: a slower learner read as 'stuck')
            self.size_label.setText(
                f"{size} on {on}: {spec.iterations / images:.3g} epochs a cell."
            )
            self.size_label.setToolTip(
                f"{cells * spec.iterations:,} updates of one image. A cell whose run learns more "
                "slowly than this ends 'stuck'; more iterations map it."
            )
        else:
            self.size_label.setText(f"{size} = {cells * spec.iterations:,} updates on {on}.")
            self.size_label.setToolTip("")

    @Slot()
    def _update_marker(self, *_args) -> None:
        marker, scaling = self._marker()
        self.canvas.set_marker(marker, scaling)
        self._update_titles()

    def _update_titles(self) -> None:
        result = self._result
        if result is None:
            self.stale_note.setVisible(False)
            self.title.setText("Outcome map")
            self.subtitle.setText(
                "Which learning rates and initial weight scales train this network, and which "
                "kill its filters or blow up?"
            )
            return
        spec = result.spec
        base = spec.base
        name = f" on '{result.dataset_name}'" if result.dataset_name else ""
        self.title.setText(
            f"How {format_count(len(result.cells), 'fresh run')} ended after {spec.iterations} "
            f"iterations{name} ({format_count(result.num_images, 'image')}), "
            f"{INIT_FAMILY_LABELS[spec.init_family]} weights"
        )
        subtitle = (
            f"Both layers initialised {INIT_FAMILY_LABELS[spec.init_family]}; seed {base.seed}, "
            f"{UPDATE_MODE_LABELS[base.update_mode]}, {format_count(base.num_filters, 'filter')} "
            f"{base.kernel_size}×{base.kernel_size}, {base.activation}, momentum "
            f"{base.momentum:g}, images {result.image_size[0]}×{result.image_size[1]}. "
            f"Learned = {result.learned_condition()} and a lower loss than at "
            "the start. Hover a cell for its numbers; click it to pick it."
        )
        self.subtitle.setText(subtitle)
        self.title.setToolTip(subtitle)
        config = self._controller.config
        changed = [
            f.name
            for f in dataclasses.fields(base)
            if f.name not in (*SWEPT_FIELDS, "history_budget_mb")
            and getattr(base, f.name) != getattr(config, f.name)
        ]
        notes = []
        if (
            self._result_dataset is not None
            and self._result_dataset is not self._controller.dataset
        ):
            now = self._controller.dataset
            notes.append(
                f"The data changed since this sweep (now {len(now)} images of "
                f"{now.size[0]}×{now.size[1]}): the map shows how runs on the earlier data ended; "
                "run it again to map these images."
            )
        if config.initial_weights is not None:
            notes.append(
                "The current run starts from the weights in "
                f"{files.readable(config.initial_weights.name)}, which no cell does (each "
                "draws its weights): no cell is ringed."
            )
        if changed:
            notes.append(
                "Settings changed since this sweep ("
                + ", ".join(name.replace("_", " ") for name in changed)
                + "): the map shows the settings it ran with; run it again to map the new ones."
            )
        self.stale_note.setText(" ".join(notes))
        self.stale_note.setVisible(bool(notes))

    @Slot(int, int)
    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)

    @Slot(object)
    def _on_done(self, result: SweepResult) -> None:
        self._result = result
        self._result_source = self._pending_source
        self._result_dataset = self._pending_dataset
        self._result_preset = self._pending_preset
        self.canvas.set_result(result)
        self._update_marker()
        if self.width() < FOLD_WIDTH:
            self.toggle_controls.setChecked(False)  # a narrow panel: give the map the room
        self.save_button.setEnabled(True)
        self.canvas.select(None)
        self.picked.setVisible(False)
        counts = result.counts()
        self._set_status(
            f"Swept {format_count(len(result.cells), 'cell')} in {result.seconds:.1f} s on "
            f"{format_count(result.workers, 'process', 'processes')}: "
            + ", ".join(f"{counts[name]} {name}" for name in OUTCOMES)
            + "."
        )
        self.sweep_finished.emit(result)
        self._ending = "done"

    @Slot()
    def _on_cancelled(self) -> None:
        kept = " The previous map is kept." if self._result is not None else ""
        self._set_status(f"Sweep cancelled.{kept}")
        if not self._closed:
            self._controller.status_message.emit(f"Outcome map: sweep cancelled.{kept}")
        self._ending = "cancelled"

    @Slot(object, str)
    def _on_failed(self, exc: Exception, details: str) -> None:
        if isinstance(exc, SweepCancelled):
            self._on_cancelled()
            return
        self._set_status("The sweep failed; see the message.", error=True)
        if not self._closed:
            show_error(self, "Sweep failed", f"{type(exc).__name__}: {exc}", details)
        self._ending = "failed"

    @Slot()
    def _on_ended(self) -> None:
        self.canvas.set_placeholder(PLACEHOLDER)
        task, self._task = self._task, None
        if task is not None:
            task.deleteLater()
        self.running_row.setVisible(False)
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.sweep_ended.emit(self._ending)

    @Slot(object)
    def _on_cell_clicked(self, cell: CellResult) -> None:
        self.pick_summary.setText(f"Picked: {summarise_cell(self._result, cell)}")
        self.cell_label.setText(describe_cell(self._result, cell))
        self.picked.setVisible(True)
        QTimer.singleShot(0, self, self._keep_map_in_view)

"""The What-if panel: what the next update would do at other learning rates, before it is taken.

Each row previews the next update at the current learning rate times a factor (×10 … ×0.001,
``SessionController.what_if``): where the filter weights would land, how many ReLU outputs
would still pass gradient, the loss and accuracy after it and a verdict. Nothing changes until
the user presses "Use" on a row (or double-clicks it); that row's learning rate then applies
from the next update and the table is computed again around it.

The previews run in a background thread, one request at a time: signals that arrive while one
is computing are merged into a single follow-up. While training runs, the last table stays on
screen, greyed, with the iteration it was computed for; it is recomputed once training pauses.
A hidden panel computes nothing until it is shown.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QEventLoop, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from inspector.tasks import BackgroundTask
from model.config import ConfigError
from model.diagnostics import LARGE_UPDATE_RATIO
from model.formatting import format_number, format_share
from model.session import batch_indices
from model.sweep import OUTCOME_COLOURS
from model.whatif import DEFAULT_FACTORS, TOO_SMALL_RATIO, WhatIfRow

#: Columns: key -> (header, tooltip). The action and the verdict come first, so that they stay
#: in sight in a narrow panel; the numbers behind the verdict follow.
COLUMNS = {
    "use": ("", "Take this row's learning rate from the next update on."),
    "rate": (
        "learning rate\n(× current)",
        "The learning rate this row previews: the current one × the factor in brackets.",
    ),
    "verdict": (
        "verdict",
        "kills filter: a filter alive now would be dead after this update · diverges: a weight "
        "or the loss would become NaN or infinite · too large: an update of at least "
        f"{LARGE_UPDATE_RATIO:g} of the weights' size, in either layer, which Diagnostics "
        "warns of · no effect: the filters' gradient (and "
        "momentum) is exactly zero, as when every filter is dead, so no learning rate moves "
        "them · "
        "too small: the update would barely change the weights (update / weight below "
        f"{TOO_SMALL_RATIO:g}) · ok: none of these.",
    ),
    "range": (
        "filter weights\nafter",
        "Smallest and largest conv filter weight after this update.",
    ),
    "alive": (
        "ReLU\noutputs > 0",
        "Share of all ReLU outputs (every filter, image and position) that would be positive. "
        "Only these pass gradient back to the filters; at 0% nothing can learn any more.",
    ),
    "dead": (
        "dead\nfilters",
        "Filters whose ReLU output would be 0 for every image and position: they get no "
        "gradient and stop learning. '(+n)': n of them are alive now and this update kills them.",
    ),
    "loss": ("loss\nafter", "Cross-entropy loss over the whole dataset after this update."),
    "accuracy": ("accuracy\nafter", "Share of all images classified correctly after this update."),
    "ratio": (
        "update /\nweight",
        "‖update‖ / ‖weights‖ of the conv layer. Healthy training changes weights by about "
        "0.001 of their size per update; near or above 1 the update replaces the weights.",
    ),
}
COLUMN = {key: index for index, key in enumerate(COLUMNS)}
#: A step that cannot move the filters: grey, neither a failure of its own nor progress.
NO_EFFECT_COLOUR = (150, 150, 150)
#: An update Diagnostics warns of: the amber of its warnings, short of a failure.
TOO_LARGE_COLOUR = (230, 159, 0)
#: Verdict colours, shared with the outcome map where the meaning is the same.
VERDICT_COLOURS = {
    "kills filter": OUTCOME_COLOURS["dead filter"],
    "diverges": OUTCOME_COLOURS["diverged"],
    "too large": TOO_LARGE_COLOUR,
    "no effect": NO_EFFECT_COLOUR,
    "too small": OUTCOME_COLOURS["stuck"],
    "ok": OUTCOME_COLOURS["learned"],
}
#: Longest wait for a preview in progress when the window closes.
SHUTDOWN_SECONDS = 30
CURRENT_ROW_COLOUR = QColor("#e3eefa")
MUTED = "#5f5f5f"


def _ink(rgb) -> QColor:
    red, green, blue = (c / 255 for c in rgb)
    light = 0.299 * red + 0.587 * green + 0.114 * blue > 0.5
    return QColor("#141414") if light else QColor("white")


def factor_text(factor: float) -> str:
    """'×10', '×1', '×0.001'."""
    return f"×{factor:g}"


def image_phrase(dataset, indices) -> str:
    """How the images of an update are named in the header: "image 'cross' (#1)", or
    "all 16 images"."""
    if len(indices) == len(dataset) and len(dataset) > 1:
        return f"all {len(dataset)} images"
    if len(indices) != 1:
        return f"{len(indices)} images"
    index = int(indices[0])
    label = dataset.class_names[int(dataset.labels[index])]
    stem = Path(dataset.paths[index]).stem if index < len(dataset.paths) else ""
    if not stem:
        return f"image #{index + 1} ({label})"
    if label.lower() in stem.lower():
        return f"image '{stem}' (#{index + 1})"
    return f"image '{stem}' (#{index + 1}, {label})"


def summary_text(rows: list[WhatIfRow]) -> str:
    """One plain sentence on what the table says as a whole."""
    if not rows:
        return ""
    verdicts = {row.verdict for row in rows}
    smallest = min(rows, key=lambda row: row.learning_rate)
    if all(row.update_ratio == 0 for row in rows) and all(row.dead_filters for row in rows):
        return (
            "No learning rate changes the filters: every filter is already dead, so their "
            "gradient is exactly zero. Rewind to before they died or reset with other settings "
            "(see Diagnostics)."
        )
    if verdicts <= {"kills filter", "diverges"}:
        # (Not "a smaller rate is not the fix": a far smaller one may be; the table cannot
        # tell. With 0..1 pixels and small weights the rate is the whole problem.)
        return (
            f"Even the smallest step tried (learning rate {format_number(smallest.learning_rate)}) "
            "would break the network: the rate must come down further (Diagnostics suggests by "
            "how much). If that takes a rate far below the usual 0.001–0.1, the inputs or the "
            "initial weights are out of scale too: Diagnostics says which."
        )
    if all(row.update_ratio == 0 and row.classifier_ratio == 0 for row in rows):
        return (
            "No learning rate changes the weights at this update: its gradient is exactly zero. "
            "The images it is computed on are classified with a saturated sigmoid (σ exactly 0 "
            "or 1: loss and gradient vanish) or give the filters no positive output; the next "
            "update, on other images, may differ."
        )
    safe = [row for row in rows if row.verdict == "ok"]
    if not safe:
        return "None of these steps is both safe and large enough to make progress."
    largest = max(safe, key=lambda row: row.learning_rate)
    return (
        f"Largest learning rate tried with verdict ok: {format_number(largest.learning_rate)} "
        f"({factor_text(largest.factor)}). 'ok' means no filter dies, nothing overflows and the "
        "step is neither too large nor negligible; compare 'loss after' to see which step "
        "helps most."
    )


class WhatIfView(QWidget):
    """The learning-rate what-if table for the next update.

    Signals
    -------
    table_updated(iteration) : a freshly computed table is shown (the iteration it starts
        from); tests and the window wait on it.
    """

    table_updated = Signal(int)

    def __init__(self, controller, parent: QWidget | None = None, *, factors=DEFAULT_FACTORS):
        super().__init__(parent)
        self.setObjectName("whatIfView")
        self._controller = controller
        self._factors = tuple(float(f) for f in factors)
        self._rows: list[WhatIfRow] = []
        self._rows_key = None
        self._rows_iteration: int | None = None
        self._generation = 0
        self._task: BackgroundTask | None = None
        self._dirty = True
        self._closed = False

        self.header = QLabel()
        self.header.setObjectName("whatIfHeader")
        self.header.setWordWrap(True)
        self.header.setStyleSheet("font-weight: bold;")
        self.note = QLabel()
        self.note.setObjectName("whatIfNote")
        self.note.setWordWrap(True)
        self.note.setStyleSheet(f"color: {MUTED};")

        self.table = QTableWidget(len(self._factors), len(COLUMNS))
        self.table.setObjectName("whatIfTable")
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.table.verticalHeader().setVisible(False)
        self.table.setWordWrap(False)
        self.table.setAlternatingRowColors(False)
        self.table.setSizeAdjustPolicy(QAbstractItemView.SizeAdjustPolicy.AdjustToContents)
        self.table.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Maximum)
        for column, (title, tip) in enumerate(COLUMNS.values()):
            item = QTableWidgetItem(title)
            item.setToolTip(tip)
            self.table.setHorizontalHeaderItem(column, item)
        rows = self.table.verticalHeader()
        rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        rows.setDefaultSectionSize(self.fontMetrics().height() + 7)
        self.table.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.table.setStyleSheet("QTableWidget::item { padding: 0px 4px; }")
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(False)
        header.setHighlightSections(False)
        self.table.cellDoubleClicked.connect(lambda row, _column: self.use_row(row))

        self.use_buttons: list[QPushButton] = []
        for row in range(len(self._factors)):
            for key, column in COLUMN.items():
                if key == "use":
                    continue
                item = QTableWidgetItem("")
                side = (
                    Qt.AlignmentFlag.AlignLeft if key == "verdict" else Qt.AlignmentFlag.AlignRight
                )
                item.setTextAlignment(side | Qt.AlignmentFlag.AlignVCenter)
                item.setToolTip(COLUMNS[key][1])
                self.table.setItem(row, column, item)
            button = QPushButton("Use")
            button.setObjectName(f"whatIfUse{row}")
            button.setAutoDefault(False)
            button.setStyleSheet("QPushButton { padding: 0px 10px; margin: 1px 3px; }")
            button.clicked.connect(lambda _checked=False, r=row: self.use_row(r))
            self.table.setCellWidget(row, COLUMN["use"], button)
            self.use_buttons.append(button)
        probe = QPushButton("In use")
        probe.setStyleSheet(self.use_buttons[0].styleSheet())
        header.setSectionResizeMode(COLUMN["use"], QHeaderView.ResizeMode.Fixed)
        self.table.setColumnWidth(COLUMN["use"], probe.sizeHint().width() + 8)

        self.summary = QLabel()
        self.summary.setObjectName("whatIfSummary")
        self.summary.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(6)
        layout.addWidget(self.header)
        layout.addWidget(self.note)
        table_row = QHBoxLayout()
        table_row.addWidget(self.table)
        table_row.addStretch(1)
        layout.addLayout(table_row)
        layout.addWidget(self.summary)
        layout.addStretch(1)

        # Several signals arrive together (a step ends: record, history, running); one
        # zero-delay timer turns them into one request.
        self._request_timer = QTimer(self)
        self._request_timer.setSingleShot(True)
        self._request_timer.setInterval(0)
        self._request_timer.timeout.connect(self._request)

        controller.session_reset.connect(self._on_session_reset)
        controller.record_shown.connect(self.show_record)
        controller.history_changed.connect(lambda _last: self._schedule())
        controller.running_changed.connect(lambda _running: self._schedule())
        controller.config_changed.connect(lambda _config: self._schedule())
        controller.dataset_changed.connect(lambda _dataset: self._on_session_reset(None))
        controller.loading_changed.connect(lambda _loading: self._schedule())
        self._clear_rows()
        self.show_record(controller.shown)

    # -- public ------------------------------------------------------------------------------

    @property
    def rows(self) -> list[WhatIfRow]:
        """The rows on screen (empty before the first table)."""
        return list(self._rows)

    @property
    def is_computing(self) -> bool:
        return self._task is not None

    @property
    def is_current(self) -> bool:
        """Whether the table on screen belongs to the session as it is now."""
        return bool(self._rows) and self._rows_key == self._key()

    @Slot(object)
    def show_record(self, record) -> None:
        """Update the texts for the shown iteration, and ask for a table if one is due."""
        self._update_texts()
        self._schedule()

    @Slot(int)
    def use_row(self, row: int) -> None:
        """Take row ``row``'s learning rate from the next update (the table recomputes)."""
        if not (0 <= row < len(self._rows)) or not self.is_current:
            return
        chosen = self._rows[row]
        if chosen.learning_rate == self._controller.config.learning_rate:
            return
        try:  # (×10 of a rate near the limit is beyond it: said, as the Setup field says it)
            self._controller.config.with_changes(learning_rate=chosen.learning_rate)
        except ConfigError as exc:
            self._controller.status_message.emit(f"Not used: {exc}")
            return
        self._controller.update_live(learning_rate=chosen.learning_rate)
        self._controller.status_message.emit(
            f"Learning rate {format_number(chosen.learning_rate)} from the next update "
            f"(was {format_number(chosen.learning_rate / chosen.factor)})"
        )

    def shutdown(self) -> None:
        """Stop computing (window closing); waits for a preview in progress to finish."""
        self._closed = True
        self._request_timer.stop()
        if self._task is not None:
            self._task.cancel()
            # BackgroundTask's thread only quits once its result reaches this (GUI) thread, so
            # deliver events while waiting rather than block in QThread.wait.
            deadline = time.monotonic() + SHUTDOWN_SECONDS
            while self._task is not None and time.monotonic() < deadline:
                QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)

    # -- Qt events ---------------------------------------------------------------------------

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if self._dirty:
            self._schedule()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.shutdown()
        super().closeEvent(event)

    # -- computing ---------------------------------------------------------------------------

    def _key(self):
        c = self._controller
        return (self._generation, c.latest_iteration, c.config)

    def _on_session_reset(self, _record) -> None:
        self._generation += 1
        self._schedule()

    def _schedule(self) -> None:
        self._dirty = True
        self._update_texts()
        if not self._closed:
            self._request_timer.start()

    @Slot()
    def _request(self) -> None:
        c = self._controller
        if self._closed or not self.isVisible():
            return  # showEvent asks again
        if c.is_running or c.is_loading:
            self._update_texts()
            return
        if self._task is not None:
            return  # merged: the running task's end asks again while dirty
        if self.is_current:
            self._dirty = False
            self._update_texts()
            return
        self._dirty = False
        key = self._key()
        factors = self._factors
        task = BackgroundTask(lambda _progress, _cancelled: (key, c.what_if(factors)), self)
        self._task = task
        task.done.connect(self._on_done)
        task.failed.connect(self._on_failed)
        task.ended.connect(self._on_ended)
        self._update_texts()
        task.start()

    @Slot(object)
    def _on_done(self, result) -> None:
        key, rows = result
        self._rows = list(rows)
        self._rows_key = key
        self._rows_iteration = key[1]
        self._fill_table()
        if key != self._key():
            self._dirty = True
        self._update_texts()
        self.table_updated.emit(key[1])

    @Slot(object, str)
    def _on_failed(self, exc: Exception, details: str) -> None:
        if self._closed:
            return
        self._controller.error_occurred.emit(
            "What-if not computed", f"{type(exc).__name__}: {exc}", details
        )

    @Slot()
    def _on_ended(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.deleteLater()
        if self._dirty and not self._closed:
            self._request_timer.start()
        else:
            self._update_texts()

    # -- drawing -----------------------------------------------------------------------------

    def _clear_rows(self) -> None:
        for row, factor in enumerate(self._factors):
            for key, column in COLUMN.items():
                if key != "use":
                    self.table.item(row, column).setText("")
            self.table.item(row, COLUMN["rate"]).setText(f"({factor_text(factor)})")
            self.use_buttons[row].setEnabled(False)

    def _fill_table(self) -> None:
        bold = QFont(self.table.font())
        bold.setBold(True)
        plain = QFont(self.table.font())
        for row, data in enumerate(self._rows):
            is_current = data.factor == 1.0
            cells = {
                "rate": f"{format_number(data.learning_rate)} ({factor_text(data.factor)})",
                "verdict": data.verdict,
                "range": f"{format_number(data.filter_min)} … {format_number(data.filter_max)}",
                "alive": format_share(data.surviving_fraction, 1),
                "dead": str(data.dead_filters)
                + (f" (+{data.newly_dead})" if data.newly_dead else ""),
                "loss": format_number(data.loss),
                "accuracy": format_share(data.accuracy),
                "ratio": format_number(data.update_ratio),
            }
            if data.non_finite:
                # Shares of NaN maps and predictions from NaN logits are not numbers of the
                # network ("100% of outputs > 0, accuracy 50%" beside NaN weights).
                cells.update(alive="–", dead="–", accuracy="–")
            for key, text in cells.items():
                item = self.table.item(row, COLUMN[key])
                item.setText(text)
                item.setFont(bold if is_current else plain)
                item.setBackground(QBrush(CURRENT_ROW_COLOUR) if is_current else QBrush())
                item.setForeground(QBrush())
            self.table.item(row, COLUMN["verdict"]).setFont(bold)  # coloured by _update_texts
            button = self.use_buttons[row]
            button.setText("In use" if is_current else "Use")
            button.setToolTip(
                "This is the current learning rate."
                if is_current
                else f"Train with learning rate {format_number(data.learning_rate)} from the "
                "next update on."
            )
        self.summary.setText(summary_text(self._rows))
        # A row picked by a click held another rate before: its highlight would now mark the
        # ×10 "too large" row after "Use" (a newcomer pass).
        self.table.clearSelection()

    def _update_texts(self) -> None:
        c = self._controller
        latest = c.latest_iteration
        config = c.config
        indices = batch_indices(config, latest + 1, len(c.dataset))
        self.header.setText(
            f"What would the next update (iteration {latest + 1}, on "
            f"{image_phrase(c.dataset, indices)}) do at other learning rates? Nothing is "
            "changed until you pick one."
        )
        notes = []
        current = self.is_current
        if c.is_running:
            notes.append(
                "Training is running: pause to compute the table again."
                + (
                    f" Greyed: the next update from iteration {self._rows_iteration}, now out "
                    "of date."
                    if self._rows
                    else ""
                )
            )
        elif c.is_starting:
            notes.append(f"{c.starting_text[0]}: the table is computed once that is done.")
        elif c.is_loading:
            notes.append("Loading images: the table is computed once they are in.")
        elif self._task is not None:
            notes.append(f"Computing the next update at {len(self._factors)} learning rates…")
        elif self._rows and not current:
            notes.append(f"Out of date: computed from iteration {self._rows_iteration}.")
        shown = c.shown.iteration
        if shown != latest:
            notes.append(
                f"You are looking at iteration {shown}; the what-if is always about the next "
                f"update from the latest iteration ({latest})."
            )
        notes.append(
            f"Current learning rate {format_number(config.learning_rate)} (shaded row). Use, "
            "or double-click a row, to take its rate."
        )
        self.note.setText(" ".join(notes))
        self.table.setEnabled(current)
        self.summary.setEnabled(current)
        for row, data in enumerate(self._rows):
            rgb = VERDICT_COLOURS[data.verdict]
            item = self.table.item(row, COLUMN["verdict"])
            if current:
                item.setBackground(QBrush(QColor(*rgb)))
                item.setForeground(QBrush(_ink(rgb)))
            else:  # faded like the rest of an out-of-date table
                faded = [round(0.35 * part + 0.65 * 240) for part in rgb]
                item.setBackground(QBrush(QColor(*faded)))
                item.setForeground(QBrush(QColor(MUTED)))
        for row, button in enumerate(self.use_buttons):
            is_current_rate = row < len(self._rows) and self._rows[row].factor == 1.0
            button.setEnabled(current and row < len(self._rows) and not is_current_rate)

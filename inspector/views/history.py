"""The History bar: a slider over every iteration of the run, to look back at any of them and,
when paused, to continue training from there.

Dragging asks the controller for the picked iteration at most every ``SHOW_INTERVAL_MS`` (an
old iteration may be rebuilt by replaying a few dozen updates), always ending on the iteration
the handle was released at. A picked iteration the history thinned is recomputed in the
training process; the bar says so while it takes a noticeable time, and the panels keep the
previous iteration until it arrives.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Slot
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSlider,
    QToolButton,
    QWidget,
)

from inspector import dialogs
from inspector.layout_guard import LayoutGuard
from model.formatting import format_number
from model.record import StepRecord

#: While the handle is dragged, a new iteration is requested at most this often.
SHOW_INTERVAL_MS = 40
MUTED = "#6b6b6b"


class HistoryView(QWidget):
    """A slider over iterations 0..latest with step, "Latest" and "Continue from here" buttons.

    Attributes
    ----------
    confirm : callable(iteration, dropped) -> bool
        Asked before "Continue from here" drops ``dropped`` later iterations; the default
        shows a question box. Tests replace it.
    """

    def __init__(self, controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("historyView")
        self._controller = controller
        self._syncing = False  # True while the view itself moves the slider
        self._pending: int | None = None
        self.confirm = self._ask_to_continue

        self._back = QToolButton()
        self._back.setObjectName("historyBack")
        self._back.setText("◀")
        self._back.setToolTip("Show the previous iteration")
        self._back.clicked.connect(self.step_back)

        self._slider = QSlider(Qt.Orientation.Horizontal)
        self._slider.setObjectName("historySlider")
        self._slider.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._slider.setSingleStep(1)
        self._slider.setPageStep(10)
        self._slider.setMinimumWidth(120)
        self._slider.setToolTip(
            "Drag to see any earlier iteration in every panel (←/→ one step, Home/End first "
            "and newest). Training goes on in the background; “Latest” follows it again."
        )
        self._slider.valueChanged.connect(self._on_slider_moved)

        self._forward = QToolButton()
        self._forward.setObjectName("historyForward")
        self._forward.setText("▶")
        self._forward.setToolTip("Show the next iteration")
        self._forward.clicked.connect(self.step_forward)

        self._position = QLabel()
        self._position.setObjectName("historyPosition")
        self._position.setToolTip("The iteration every panel shows, and the newest one")
        self._metrics = QLabel()
        self._metrics.setObjectName("historyMetrics")
        self._metrics.setStyleSheet(f"color: {MUTED};")
        font = QFontMetrics(self.font())
        self._position.setMinimumWidth(font.horizontalAdvance("Iteration 0000 of 0000"))
        self._metrics.setMinimumWidth(font.horizontalAdvance("loss 0.0000 · accuracy 0/0"))
        self._metrics.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)

        self._latest = QPushButton("Latest")
        self._latest.setObjectName("historyLatest")
        self._latest.setToolTip("Show the newest iteration again and follow training")
        self._latest.clicked.connect(controller.follow_latest)

        self._continue = QPushButton("Continue from here")
        self._continue.setObjectName("historyContinue")
        self._continue.clicked.connect(self._on_continue)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 2, 6, 2)
        layout.setSpacing(6)
        layout.addWidget(self._back)
        layout.addWidget(self._slider, 1)
        layout.addWidget(self._forward)
        layout.addSpacing(6)
        layout.addWidget(LayoutGuard(self._position, self))
        layout.addWidget(LayoutGuard(self._metrics, self))
        layout.addWidget(self._latest)
        layout.addWidget(self._continue)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)

        self._drag_timer = QTimer(self)
        self._drag_timer.setSingleShot(True)
        self._drag_timer.setInterval(SHOW_INTERVAL_MS)
        self._drag_timer.timeout.connect(self._on_drag_timer)

        controller.session_reset.connect(self._on_session_reset)
        controller.history_changed.connect(self._on_history_changed)
        controller.record_shown.connect(self.show_record)
        controller.running_changed.connect(self._update_buttons)
        controller.loading_changed.connect(self._update_buttons)
        controller.recomputing.connect(self._on_recomputing)

        self._on_history_changed(controller.latest_iteration)
        self.show_record(controller.shown)

    # -- drawing -------------------------------------------------------------------------------

    @Slot(object)
    def show_record(self, record: StepRecord) -> None:
        """Put the handle on ``record``'s iteration (unless the user is dragging it) and show
        its loss and accuracy."""
        if self._controller.following_latest and not self._slider.isSliderDown():
            # "Latest" (End) came after the last step back: a step back still waiting for the
            # drag timer is older than it, and must not take the view back when it fires.
            self._pending = None
        if self._pending is None and not self._slider.isSliderDown():
            self._set_slider(value=record.iteration)
        self._show_metrics(record)
        self._update_labels()

    def _show_metrics(self, record: StepRecord) -> None:
        count = len(record.losses)
        correct = round(record.accuracy * count)
        self._metrics.setText(f"loss {format_number(record.loss)} · accuracy {correct}/{count}")
        self._metrics.setToolTip("Mean loss and accuracy over all images at this iteration")

    @Slot(int)
    def _on_recomputing(self, iteration: int) -> None:
        """Say that the picked iteration is being recomputed (-1: it is over)."""
        if iteration < 0:
            self._show_metrics(self._controller.shown)
            return
        self._metrics.setText(f"recomputing {iteration}…")
        self._metrics.setToolTip(
            f"The history kept only a checkpoint before iteration {iteration} to stay within "
            "its memory budget: the training process is replaying the updates from there. "
            "The panels show it when it is ready."
        )

    def _set_slider(self, *, maximum: int | None = None, value: int | None = None) -> None:
        self._syncing = True
        try:
            if maximum is not None:
                self._slider.setMaximum(maximum)
            if value is not None:
                self._slider.setValue(value)
        finally:
            self._syncing = False

    def _update_labels(self) -> None:
        shown = self._controller.shown.iteration
        latest = self._controller.latest_iteration
        self._position.setText(f"Iteration {shown} of {latest}")
        self._update_buttons()

    @Slot()
    def _update_buttons(self, *_args) -> None:
        controller = self._controller
        shown = controller.shown.iteration
        latest = controller.latest_iteration
        value = self._slider.value()
        self._back.setEnabled(value > 0)
        self._forward.setEnabled(value < latest)
        self._latest.setEnabled(not controller.following_latest)
        past = shown < latest
        waiting = controller.waiting_for_record
        can_continue = past and not (controller.is_running or controller.is_loading or waiting)
        self._continue.setEnabled(can_continue)
        if can_continue:
            dropped = latest - shown
            self._continue.setToolTip(
                f"Continue training from iteration {shown}: the {dropped} later "
                f"iteration{'s' if dropped != 1 else ''} are dropped from the history"
            )
        elif controller.is_running:
            self._continue.setToolTip("Pause training to continue from an earlier iteration")
        elif waiting:
            self._continue.setToolTip(
                f"Wait until iteration {controller.picked_iteration} is shown to continue from it"
            )
        else:
            self._continue.setToolTip(
                "Pick an earlier iteration on the slider to continue training from it"
            )

    # -- user actions --------------------------------------------------------------------------

    @Slot(int)
    def _on_slider_moved(self, value: int) -> None:
        if self._syncing:
            return
        self._pending = value
        if not self._drag_timer.isActive():
            self._show_pending()

    def _on_drag_timer(self) -> None:
        if self._pending is not None:
            self._show_pending()

    def _show_pending(self) -> None:
        """Ask the controller for the picked iteration, then wait a moment before the next."""
        iteration, self._pending = self._pending, None
        controller = self._controller
        if iteration >= controller.latest_iteration:
            controller.follow_latest()
        else:
            controller.show_iteration(iteration)
        self._drag_timer.start()
        self._update_buttons()

    @Slot()
    def step_back(self) -> None:
        """Show the iteration before the one on the slider (◀, Alt+Left in the window)."""
        self._slider.setValue(self._slider.value() - 1)

    @Slot()
    def step_forward(self) -> None:
        """Show the iteration after the one on the slider (▶); at the newest one, follow
        training again."""
        self._slider.setValue(self._slider.value() + 1)

    @Slot()
    def _on_continue(self) -> None:
        controller = self._controller
        shown = controller.shown.iteration
        dropped = controller.latest_iteration - shown
        if controller.is_running or dropped <= 0:
            return
        if not self.confirm(shown, dropped):
            return
        controller.continue_from_shown()

    def _ask_to_continue(self, iteration: int, dropped: int) -> bool:
        return dialogs.ask_to_drop_later(
            self,
            iteration,
            dropped,
            "Continue from here?",
            f"Continue training from iteration {iteration}?",
            "Training then goes on from this state with the current settings.",
        )

    # -- controller signals --------------------------------------------------------------------

    @Slot(int)
    def _on_history_changed(self, last_iteration: int) -> None:
        """The run grew or was cut: new range; the handle follows the newest iteration unless
        the user picked an earlier one."""
        follow = self._controller.following_latest and self._pending is None
        dragging = self._slider.isSliderDown()
        self._set_slider(
            maximum=last_iteration,
            value=last_iteration if follow and not dragging else None,
        )
        self._update_labels()

    @Slot(object)
    def _on_session_reset(self, record: StepRecord) -> None:
        self._pending = None
        self._drag_timer.stop()
        self._set_slider(maximum=record.iteration, value=record.iteration)
        self.show_record(record)

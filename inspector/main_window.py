"""The main window: docks around the views, the Train menu and toolbar, the status bar, saving.

Layout, the last folder and the last configuration are kept in QSettings (UI state only; the
training settings themselves live in the session's config).
"""

from __future__ import annotations

import contextlib
import html
import importlib
import importlib.metadata
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import (
    QByteArray,
    QEvent,
    QEventLoop,
    QPoint,
    QRect,
    QSettings,
    Qt,
    QTimer,
    Slot,
)
from PySide6.QtGui import QCloseEvent, QCursor, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QDialog,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QStyle,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from inspector import dialogs, export, guide, maximise
from inspector.actions import ActionSpec, create_actions
from inspector.controller import SessionController
from inspector.errors import SHOWN_AT, log_path, show_error
from inspector.layout_guard import LayoutGuard
from inspector.maximise import PanelMaximiser
from inspector.report_action import ReportSaver
from inspector.views.data import DataView
from inspector.views.diagnostics import DiagnosticsView
from inspector.views.filters import FiltersView
from inspector.views.history import HistoryView
from inspector.views.maps import MapsView
from inspector.views.setup import SetupView

if TYPE_CHECKING:
    from inspector.views.curves import CurvesView
    from inspector.views.outcome_map import OutcomeMapView
    from inspector.views.whatif import WhatIfView
from model import files, snapshot
from model.formatting import format_count, format_number, format_share
from model.record import StepRecord

STATE_VERSION = 1
SPEEDS = (
    ("1 / s", 1.0),
    ("5 / s", 5.0),
    ("20 / s", 20.0),
    ("100 / s", 100.0),
    ("As fast as possible", 0.0),
)
DEFAULT_SPEED_INDEX = 2
#: A new run started in the background shows its "Starting the new run" note after this long.
STARTING_NOTE_DELAY_MS = 200
#: An error dialog shown this long before the busy note (or after it) is one it covers.
NOTE_ERROR_SECONDS = 1.0
#: Before plots are drawn for saving, the longest wait for the views to settle (a picked
#: iteration recomputed, a compared run catching up).
SETTLE_SECONDS = 5.0


#: Panels built when first in view: key -> (module, class). Their modules are imported then
#: too, which is part of what keeps start-up short.
LAZY_VIEWS = {
    "curves": ("inspector.views.curves", "CurvesView"),
    "whatif": ("inspector.views.whatif", "WhatIfView"),
    "outcome": ("inspector.views.outcome_map", "OutcomeMapView"),
    "compare": ("inspector.views.compare", "CompareView"),
}


def _view_class(module: str, name: str):
    return getattr(importlib.import_module(module), name)


class LazyView(QWidget):
    """A dock's content built the first time its dock is in view (or it is asked for), so
    panels behind other tabs cost nothing at start-up. (Not on showEvent: Qt briefly shows
    every tab's content while it first lays the window out.)"""

    def __init__(self, factory, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._factory = factory
        self._view: QWidget | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)

    @property
    def created(self) -> bool:
        return self._view is not None

    def view(self) -> QWidget:
        if self._view is None:
            self._view = self._factory()
            self.layout().addWidget(self._view)
        return self._view

    @Slot(bool)
    def build_when_visible(self, visible: bool) -> None:
        if visible:
            self.view()


#: Milliseconds after showing a floating panel when its window frame is looked at again.
FRAME_SETTLE_MS = 150


def _version() -> str:
    """The installed package's version ("" when run from a source tree not installed)."""
    try:
        return importlib.metadata.version("training-inspector")
    except importlib.metadata.PackageNotFoundError:
        return ""


class MainWindow(QMainWindow):
    """Training Inspector's window around one ``SessionController``."""

    def __init__(self, controller: SessionController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.setObjectName("mainWindow")
        self.setWindowTitle("Training Inspector")
        self.setDockNestingEnabled(True)
        self.setDockOptions(
            QMainWindow.DockOption.AnimatedDocks
            | QMainWindow.DockOption.AllowNestedDocks
            | QMainWindow.DockOption.AllowTabbedDocks
        )

        self.filters_view = FiltersView(controller)
        self.maps_view = MapsView(controller)
        self.diagnostics_view = DiagnosticsView(controller)
        self.data_view = DataView(controller)
        self.setup_view = SetupView(controller)
        self.history_view = HistoryView(controller)
        # Panels behind other tabs, or hidden, are built when first shown (start-up time).
        self._lazy = {key: LazyView(lambda key=key: self._build_view(key)) for key in LAZY_VIEWS}
        self.report_saver = ReportSaver(self)
        self._guide: guide.GuideDialog | None = None

        self.actions = create_actions(self, self._action_specs())
        self._maximise_tip = self.actions["maximise"].statusTip()
        self._build_docks()
        self.maximiser = PanelMaximiser(
            self, self.docks, STATE_VERSION, fallback=self.restore_default_layout
        )
        self.maximiser.changed.connect(self._on_maximised)
        self._build_menus()
        self._build_toolbar()
        self._build_status_bar()
        self._default_state: QByteArray | None = None
        self._column_timer = QTimer(self)
        self._column_timer.setSingleShot(True)
        self._column_timer.setInterval(0)
        self._column_timer.timeout.connect(self._size_columns)
        self._saved_state = self._restore_settings()

        controller.running_changed.connect(self._on_running_changed)
        controller.record_shown.connect(self._update_status)
        controller.history_changed.connect(self._update_latest)
        controller.error_occurred.connect(self._show_error)
        controller.status_message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        controller.paused_by_finding.connect(self._on_paused_by_finding)
        controller.loading_changed.connect(self._on_loading_changed)
        controller.run_starting.connect(self._on_run_starting)
        self._starting: _StartingDialog | None = None
        self._note_since = 0.0  # when the busy note was asked for
        controller.dataset_changed.connect(lambda _d: self._update_title())
        self._update_title()
        self._update_status(controller.shown)
        self._hold_run_button()
        self._on_running_changed(False)

    # -- construction ------------------------------------------------------------------------

    def _build_view(self, key: str) -> QWidget:
        """The panel ``key`` of ``LAZY_VIEWS``, built when first in view."""
        view = _view_class(*LAZY_VIEWS[key])(self.controller)
        if key == "compare":
            # "Close second run" puts the panel away too (floating over the panels, and
            # without a frame to close it by where no window manager draws one).
            view.closed.connect(lambda: self.docks["compare"].hide())
        return view

    def created_view(self, key: str) -> QWidget | None:
        """The panel ``key`` ('curves', 'whatif', 'outcome', 'compare') if it was built."""
        lazy = self._lazy[key]
        return lazy.view() if lazy.created else None

    @property
    def curves_view(self) -> CurvesView:
        return self._lazy["curves"].view()

    @property
    def what_if_view(self) -> WhatIfView:
        return self._lazy["whatif"].view()

    @property
    def outcome_map_view(self) -> OutcomeMapView:
        return self._lazy["outcome"].view()

    def _action_specs(self) -> list[ActionSpec]:
        c = self.controller
        sp = QStyle.StandardPixmap
        return [
            ActionSpec(
                "step",
                "&Step",
                c.step,
                "F10",
                "Take one training iteration",
                sp.SP_MediaSeekForward,
            ),
            ActionSpec(
                "step_epoch",
                "Step &epoch",
                c.step_epoch,
                "Shift+F10",
                "Iterate to the end of the current epoch (every image once)",
                sp.SP_MediaSkipForward,
            ),
            ActionSpec(
                "run",
                "&Run",
                c.toggle_run,
                "F5",
                "Train continuously; press again to pause",
                sp.SP_MediaPlay,
            ),
            ActionSpec(
                "reset",
                "R&eset",
                c.reset,
                "Ctrl+R",
                "Start again from iteration 0 with the same seed (applies pending settings)",
                sp.SP_BrowserReload,
            ),
            ActionSpec(
                "reseed", "Re&seed", c.reseed, "Ctrl+Shift+R", "Start again with a new random seed"
            ),
            ActionSpec(
                "open_folder",
                "&Open image folder…",
                self.data_view.open_folder,
                QKeySequence.StandardKey.Open,
                "Load a folder with one sub-folder per label",
                sp.SP_DirOpenIcon,
            ),
            ActionSpec("add_images", "&Add images…", self.data_view.add_images, "Ctrl+Shift+O"),
            ActionSpec(
                "example_question",
                "The question's two images",
                lambda: self.data_view.load_example("question"),
            ),
            ActionSpec(
                "example_shapes",
                "Shapes (80 images)",
                lambda: self.data_view.load_example("shapes"),
            ),
            ActionSpec(
                "save_snapshot",
                "Save filter &snapshot…",
                self.save_snapshot,
                QKeySequence.StandardKey.Save,
                "Save the shown filters as PNG, raw values (.npy) and JSON, and every array of "
                "the iteration (.npz)",
                sp.SP_DialogSaveButton,
            ),
            ActionSpec(
                "save_plots",
                "Save &plots…",
                self.save_plots,
                "Ctrl+Shift+S",
                "Save every plot as PNG and SVG and the curves as CSV",
            ),
            ActionSpec(
                "save_report",
                "Save &report…",
                self.report_saver.save,
                "Ctrl+Shift+E",
                "Save a report to share: a folder with a readable page, the settings, images, "
                "metrics, findings, filter snapshots, the plots and the command that repeats "
                "the run",
            ),
            ActionSpec(
                "save_report_zip",
                "Save report as &zip…",
                self.report_saver.save_zip,
                None,
                "Save the report as one .zip archive, ready to attach to a question or an issue",
            ),
            ActionSpec("quit", "&Quit", self.close, QKeySequence.StandardKey.Quit),
            ActionSpec(
                "history_back", "Previous iteration", self.history_view.step_back, "Alt+Left"
            ),
            ActionSpec(
                "history_forward", "Next iteration", self.history_view.step_forward, "Alt+Right"
            ),
            ActionSpec("history_latest", "Latest iteration", c.follow_latest, "End"),
            ActionSpec(
                "compare",
                "&Compare side by side…",
                self.show_comparison,
                "Ctrl+K",
                "Run a second recipe next to this one on the same images, seed and sample order",
            ),
            ActionSpec(
                "maximise",
                "&Maximise panel",
                self.toggle_maximised,
                maximise.SHORTCUT,
                "Show the panel under the mouse alone in the window (the Filters panel when "
                "the mouse is elsewhere), for a projector or a small screen; again to show "
                "every panel",
            ),
            ActionSpec("restore_layout", "Restore default layout", self.restore_default_layout),
            ActionSpec(
                "guide",
                "&User guide",
                self.show_guide,
                None,
                "The README: what each panel shows, the presets, your own images, the question",
            ),
            ActionSpec("shortcuts", "&Keyboard shortcuts", self._show_shortcuts, "F1"),
            ActionSpec("about", "&About Training Inspector", self._about),
        ]

    def _dock(self, key: str, title: str, widget: QWidget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"{key}Dock")
        # The panel paints its own background, so Qt never repaints the dock beneath a label or
        # plot that changed (the dock paints its whole frame and title bar each time: a tenth
        # of the window's repaint after a Step with 16 filters, measured).
        widget.setAutoFillBackground(True)
        dock.setWidget(widget)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetClosable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
        )
        self.addDockWidget(area, dock)
        return dock

    def _build_docks(self) -> None:
        area = Qt.DockWidgetArea
        self.docks = {
            "data": self._dock("data", "Data", self.data_view, area.LeftDockWidgetArea),
            "setup": self._dock("setup", "Setup", self.setup_view, area.LeftDockWidgetArea),
            "filters": self._dock(
                "filters", "Filters", self.filters_view, area.RightDockWidgetArea
            ),
            "maps": self._dock("maps", "ReLU outputs", self.maps_view, area.RightDockWidgetArea),
            "curves": self._dock(
                "curves", "Curves", self._lazy["curves"], area.RightDockWidgetArea
            ),
            "diagnostics": self._dock(
                "diagnostics", "Diagnostics", self.diagnostics_view, area.RightDockWidgetArea
            ),
            "history": self._dock(
                "history", "History", self.history_view, area.BottomDockWidgetArea
            ),
        }
        d = self.docks
        self.tabifyDockWidget(d["setup"], d["data"])
        self.splitDockWidget(d["filters"], d["diagnostics"], Qt.Orientation.Horizontal)
        self.splitDockWidget(d["filters"], d["maps"], Qt.Orientation.Vertical)
        self.tabifyDockWidget(d["maps"], d["curves"])
        # Each new dock joins the tabs at once: stacked for a moment, the column's minimum
        # height would outgrow a 700-pixel window and stay the window's minimum until shown.
        for key, title, view in (
            ("whatif", "What if", self._lazy["whatif"]),
            ("outcome", "Outcome map", self._lazy["outcome"]),
        ):
            d[key] = self._dock(key, title, view, area.RightDockWidgetArea)
            self.tabifyDockWidget(d["curves"], d[key])
        d["maps"].raise_()
        d["setup"].raise_()
        # Two runs side by side need room: a window of its own until the user docks it.
        d["compare"] = self._dock(
            "compare", "Side by side", self._lazy["compare"], area.RightDockWidgetArea
        )
        d["compare"].setFloating(True)
        d["compare"].hide()
        for key, lazy in self._lazy.items():
            d[key].visibilityChanged.connect(lazy.build_when_visible)

    def _size_docks(self) -> None:
        """Default dock sizes; Qt only honours them once the window has its real size."""
        self._size_columns()
        d = self.docks
        height = max(self.height() - 150, 500)
        self.resizeDocks(
            [d["filters"], d["maps"]],
            [round(height * 0.56), round(height * 0.44)],
            Qt.Orientation.Vertical,
        )

    def _size_columns(self) -> None:
        """Side columns a modest share of the width, the filters and maps column the rest.

        Qt would give a wider window's extra width to the left column (Setup), so this runs
        again whenever the window is resized, as long as the docks are where the default layout
        puts them (a layout the user rearranged is left alone).
        """
        d = self.docks
        area = Qt.DockWidgetArea
        if self.maximiser.key is not None:
            return  # (the layout to go back to keeps its columns)
        placed = (
            self.dockWidgetArea(d["setup"]) == area.LeftDockWidgetArea
            and self.dockWidgetArea(d["filters"]) == area.RightDockWidgetArea
            and self.dockWidgetArea(d["diagnostics"]) == area.RightDockWidgetArea
            and not any(d[k].isFloating() for k in ("setup", "filters", "diagnostics"))
        )
        if not placed:
            return
        width = self.width()
        left = min(max(round(width * 0.2), 290), 400)
        right = min(max(round(width * 0.22), 330), 440)
        self.resizeDocks(
            [d["setup"], d["filters"], d["diagnostics"]],
            [left, max(width - left - right, 400), right],
            Qt.Orientation.Horizontal,
        )

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        if self._default_state is not None and event.size().width() != event.oldSize().width():
            self._column_timer.start()
        QTimer.singleShot(0, self, self._follow_window)  # (once the window is laid out)

    def _build_menus(self) -> None:
        a = self.actions
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        for key in ("open_folder", "add_images"):
            file_menu.addAction(a[key])
        examples = file_menu.addMenu("Examples")
        examples.addAction(a["example_question"])
        examples.addAction(a["example_shapes"])
        file_menu.addSeparator()
        file_menu.addAction(a["save_snapshot"])
        file_menu.addAction(a["save_plots"])
        file_menu.addAction(a["save_report"])
        file_menu.addAction(a["save_report_zip"])
        file_menu.addSeparator()
        file_menu.addAction(a["quit"])

        train = bar.addMenu("&Train")
        for key in ("step", "step_epoch", "run"):
            train.addAction(a[key])
        train.addSeparator()
        train.addAction(a["reset"])
        train.addAction(a["reseed"])
        train.addSeparator()
        for key in ("history_back", "history_forward", "history_latest"):
            train.addAction(a[key])
        train.addSeparator()
        train.addAction(a["compare"])

        view = bar.addMenu("&View")
        for dock in self.docks.values():
            view.addAction(dock.toggleViewAction())
        view.addSeparator()
        view.addAction(a["maximise"])
        view.addAction(a["restore_layout"])

        help_menu = bar.addMenu("&Help")
        help_menu.addAction(a["guide"])
        help_menu.addAction(a["shortcuts"])
        help_menu.addSeparator()
        help_menu.addAction(a["about"])

    def _build_toolbar(self) -> None:
        toolbar = self._toolbar = self.addToolBar("Training")
        toolbar.setObjectName("trainingToolbar")
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for key in ("step", "step_epoch", "run"):
            toolbar.addAction(self.actions[key])
        toolbar.addWidget(QLabel("  Speed: "))
        self.speed_combo = QComboBox()
        self.speed_combo.setObjectName("speedCombo")
        self.speed_combo.setToolTip("Iterations per second while running")
        for text, value in SPEEDS:
            self.speed_combo.addItem(text, value)
        self.speed_combo.currentIndexChanged.connect(
            lambda index: self.controller.set_speed(self.speed_combo.itemData(index))
        )
        self.speed_combo.setCurrentIndex(DEFAULT_SPEED_INDEX)
        self.controller.set_speed(SPEEDS[DEFAULT_SPEED_INDEX][1])
        toolbar.addWidget(self.speed_combo)
        toolbar.addSeparator()
        toolbar.addAction(self.actions["reset"])
        toolbar.addAction(self.actions["reseed"])
        toolbar.addSeparator()
        toolbar.addAction(self.actions["save_snapshot"])
        toolbar.addAction(self.actions["save_plots"])
        toolbar.iconSizeChanged.connect(lambda _size: self._hold_run_button())
        toolbar.toolButtonStyleChanged.connect(lambda _style: self._hold_run_button())

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.status_iteration = QLabel()
        self.status_iteration.setObjectName("statusIteration")
        self.status_loss = QLabel()
        self.status_loss.setObjectName("statusLoss")
        self.status_time = QLabel()
        self.status_time.setObjectName("statusTime")
        # Room for the slowest steps from the start: grown a digit at a time, its last letter
        # was cut off ("Step 15.2 m") in a full status bar.
        self.status_time.setMinimumWidth(
            self.status_time.fontMetrics().horizontalAdvance("Step 8888.8 ms") + 4
        )
        self.status_memory = QLabel()
        self.status_memory.setObjectName("statusMemory")
        for label in (
            self.status_iteration,
            self.status_loss,
            self.status_time,
            self.status_memory,
        ):
            bar.addPermanentWidget(LayoutGuard(label))

    # -- settings ----------------------------------------------------------------------------

    def _restore_settings(self) -> QByteArray | None:
        """Restore the last geometry; return the last dock layout (applied once shown)."""
        settings = QSettings()
        geometry = settings.value("window/geometry")
        state = settings.value("window/state")
        # (A geometry Qt cannot read, say a settings file edited by hand, is as none: it would
        # leave the window at Qt's small default size, then saved as the user's.)
        if not (
            isinstance(geometry, QByteArray)
            and not geometry.isEmpty()
            and self.restoreGeometry(geometry)
        ):
            self._first_launch_geometry()
        return state if isinstance(state, QByteArray) and not state.isEmpty() else None

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if self._default_state is None:
            # Dock sizes only take once the window has its real size: lay out the default
            # now, keep it for "Restore default layout", then put back the user's last layout.
            self._size_docks()
            self._default_state = self.saveState(STATE_VERSION)
            if self._saved_state is not None:
                self.restoreState(self._saved_state, STATE_VERSION)

    def _first_launch_geometry(self) -> None:
        """At least 1280x800 (or the whole screen if smaller), 85% of a larger screen,
        centred."""
        if self.screen() is None:
            self.resize(1280, 800)
            return
        screen = self.screen().availableGeometry()
        width = min(max(1280, round(screen.width() * 0.85)), screen.width())
        height = min(max(800, round(screen.height() * 0.85)), screen.height())
        self.setGeometry(
            screen.x() + (screen.width() - width) // 2,
            screen.y() + (screen.height() - height) // 2,
            width,
            height,
        )

    def _save_settings(self) -> None:
        settings = QSettings()
        settings.setValue("window/geometry", self.saveGeometry())
        settings.setValue("window/state", self.maximiser.saved_state())
        settings.setValue("setup/last_config", json.dumps(self.controller.config.to_dict()))

    @Slot()
    def restore_default_layout(self) -> None:
        self.maximiser.forget()
        for dock in self.docks.values():
            dock.setFloating(False)
            dock.show()
        if self._default_state is not None:
            self.restoreState(self._default_state, STATE_VERSION)
        self._size_docks()

    # -- one panel maximised -----------------------------------------------------------------

    @Slot()
    def toggle_maximised(self) -> None:
        """Ctrl+M: the panel under the mouse alone in the window, or every panel again."""
        if self.maximiser.key is not None:
            self.show_every_panel()
        else:
            self.maximise_panel(self.maximiser.target(QCursor.pos()))

    def maximise_panel(self, key: str) -> None:
        self.maximiser.maximise(key)

    @Slot()
    def show_every_panel(self) -> None:
        if self.maximiser.restore():
            self._column_timer.start()

    def _on_maximised(self, key: str) -> None:
        action = self.actions["maximise"]
        if key:
            title = self.docks[key].windowTitle()
            action.setText("Show every &panel")
            action.setStatusTip("Put every panel back where it was")
            keys = maximise.shortcut_text()
            self.statusBar().showMessage(f"{title} maximised: {keys} shows every panel", 10000)
        else:
            action.setText("&Maximise panel")
            action.setStatusTip(self._maximise_tip)
            self.statusBar().clearMessage()

    def createPopupMenu(self) -> QMenu:  # noqa: N802 - Qt override
        """The menu of a right-click on a panel's title bar or tab, or the toolbar: which
        panels to show, led by maximising the panel clicked (or showing every panel)."""
        menu = super().createPopupMenu() or QMenu(self)
        first = menu.actions()[0] if menu.actions() else None
        key = self.maximiser.panel_at(QCursor.pos())
        if self.maximiser.key is not None:
            menu.insertAction(first, self.actions["maximise"])
        elif self.maximiser.can_maximise(key):
            title = self.docks[key].windowTitle()
            action = menu.addAction(f"Maximise {title}")
            action.setObjectName("popupMaximise")
            action.triggered.connect(lambda: self.maximise_panel(key))
            menu.insertAction(first, action)
        else:
            return menu
        if first is not None:
            menu.insertSeparator(first)
        return menu

    # -- status ------------------------------------------------------------------------------

    def _data_name(self) -> str:
        source = self.controller.dataset_source
        return source.split(":", 1)[1] + " example" if source.startswith("example:") else source

    def plot_caption(self, name: str) -> tuple[str, ...]:
        """What the saved plot ``name`` says under it, so that it stands alone in a post: the
        data, the iteration shown and the settings."""
        record, dataset = self.controller.shown, self.controller.dataset
        shown = f"iteration {record.iteration}"
        if name.startswith("curve-"):
            shown = f"{shown} (the solid magenta line)"
        return (
            f"Training Inspector · {self._data_name()} ({format_count(len(dataset), 'image')}) "
            f"· {shown} · learning rate {format_number(record.settings.learning_rate)}",
            *snapshot.settings_lines(self.controller.config),
        )

    def _update_title(self) -> None:
        name = self._data_name()
        # Document first, then the application: Qt appends the application's display name to
        # a title that does not end with it, which made "Training Inspector — … — Training
        # Inspector" in the title bar.
        self.setWindowTitle(f"{name} — Training Inspector")

    @Slot(object)
    def _update_status(self, record: StepRecord) -> None:
        self._update_latest()
        self.status_loss.setText(
            f"Loss {format_number(record.loss)} · accuracy {format_share(record.accuracy)}"
        )
        self.status_time.setText(f"Step {record.step_seconds * 1000:.1f} ms")

    @Slot()
    def _update_latest(self, *_args) -> None:
        """The shown iteration and how far the run is: also while an older one is viewed and
        the run goes on (it said "latest 3" of a run at 1,530)."""
        shown = self.controller.shown.iteration
        latest = self.controller.latest_iteration
        where = "" if shown == latest else f" (viewing; latest {latest})"
        text = f"Iteration {shown}{where}"
        if self.status_iteration.text() != text:
            self.status_iteration.setText(text)
        memory = self.controller.describe_history()
        if self.status_memory.text() != memory:
            self.status_memory.setText(memory)

    def _hold_run_button(self) -> None:
        """Make the Run button's two faces (Run, Pause) once, and keep the button at least as
        large as the larger, so that the buttons after it stay put when the faces swap, at
        the start and end of every run and Step. (Looking the icons up in the style at each
        swap was a twentieth of the window's work after a Step with 16 filters, measured.)"""
        style = self.style()
        self._run_faces = {
            running: (
                "Pause" if running else "Run",
                style.standardIcon(
                    QStyle.StandardPixmap.SP_MediaPause
                    if running
                    else QStyle.StandardPixmap.SP_MediaPlay
                ),
                f"{'Pause training' if running else 'Train continuously'} (F5)",
            )
            for running in (True, False)
        }
        button = self._toolbar.widgetForAction(self.actions["run"])
        hints = []
        for running in (True, False):
            self._show_run_face(running)
            hints.append(button.sizeHint())
        button.setMinimumSize(hints[0].expandedTo(hints[1]))
        self._show_run_face(self.controller.is_running)

    def changeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().changeEvent(event)
        # Another style or font: new faces, and the size that holds them.
        if event.type() in (QEvent.Type.StyleChange, QEvent.Type.FontChange):
            if hasattr(self, "_run_faces"):
                self._hold_run_button()

    def _show_run_face(self, running: bool) -> None:
        text, icon, tip = self._run_faces[running]
        run = self.actions["run"]
        run.setText(text)
        run.setIcon(icon)
        run.setToolTip(tip)

    @Slot(bool)
    def _on_running_changed(self, running: bool) -> None:
        self._show_run_face(running)
        for key in ("step", "step_epoch"):
            self.actions[key].setEnabled(not running)

    @Slot(bool)
    def _on_loading_changed(self, loading: bool) -> None:
        for key in ("step", "step_epoch", "run", "reset", "reseed"):
            self.actions[key].setEnabled(not loading)
        if not loading:
            self._on_running_changed(self.controller.is_running)

    @Slot(bool)
    def _on_run_starting(self, starting: bool) -> None:
        """A large new run is being made in the background: the window keeps painting, and a
        busy note holds its controls meanwhile (they would act on the run being replaced)."""
        if starting and self._starting is None:
            self._note_since = time.monotonic()
            self._starting = _StartingDialog(*self.controller.starting_text, self)
            # Most starts are over sooner (a tenth of a second for 16 images with 16 filters):
            # no note flashes up for those.
            QTimer.singleShot(STARTING_NOTE_DELAY_MS, self._starting, self._show_starting)
        elif not starting:
            self._drop_starting_note()

    def _show_starting(self) -> None:
        if self._starting is not None and self.controller.is_starting:
            self._starting.show()
            # An error that led to this (a restart's "Training stopped") stays readable on top.
            self._raise_errors(activate=False)

    def _drop_starting_note(self) -> None:
        if self._starting is not None:
            self._starting.hide()
            self._starting.deleteLater()
            self._starting = None
            # The note held the window: the error dialogs it covered can be answered now.
            self._raise_errors(activate=True)

    def _raise_errors(self, *, activate: bool) -> None:
        """Bring the error dialogs still open that came with the busy note (a restart's
        "Training stopped" comes just before it) in front, the newest on top; older ones the
        user left open stay where they are."""
        since = self._note_since - NOTE_ERROR_SECONDS
        for box in self.findChildren(QMessageBox, "errorDialog"):
            if box.isVisible() and (box.property(SHOWN_AT) or 0.0) >= since:
                box.raise_()
                if activate:
                    box.activateWindow()

    @Slot(object)
    def _on_paused_by_finding(self, finding) -> None:
        # (With a panel maximised too: Diagnostics then joins it, as the reason the run
        # stopped; Ctrl+M still brings back the layout from before.)
        self.docks["diagnostics"].show()
        self.docks["diagnostics"].raise_()

    @Slot(str, str, str)
    def _show_error(self, title: str, message: str, details: str) -> None:
        show_error(self, title, message, details)

    def shortcut_rows(self) -> list[tuple[str, str]]:
        """(action, keys) of every action with a shortcut, in the order of the menus."""
        rows = []
        for action in self.actions.values():
            keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
            if keys:
                rows.append((action.text().replace("&", "").rstrip("…"), keys))
        return rows

    def _show_shortcuts(self) -> None:
        rows = "".join(
            f"<tr><td>{html.escape(name)}</td><td>&nbsp;&nbsp;<b>{html.escape(keys)}</b></td></tr>"
            for name, keys in self.shortcut_rows()
        )
        box = QMessageBox(
            QMessageBox.Icon.NoIcon,
            "Keyboard shortcuts",
            f"<table>{rows}</table><p>In a plot: hover for values, Ctrl+wheel zooms, drag "
            "pans, right-click to export; the wheel scrolls a panel.</p>",
            QMessageBox.StandardButton.Close,
            self,
        )
        box.setObjectName("shortcutsDialog")
        box.setModal(False)
        box.show()

    @Slot()
    def show_guide(self) -> guide.GuideDialog:
        """Help → User guide: the README in a window of its own (one, raised if open)."""
        if self._guide is None:
            self._guide = guide.GuideDialog(*guide.readme_source(), parent=self)
        self._guide.show()
        self._guide.raise_()
        self._guide.activateWindow()
        return self._guide

    def _about(self) -> None:
        QMessageBox.about(
            self,
            "About Training Inspector",
            f"<b>Training Inspector {html.escape(_version())}</b><p>Watch a small "
            "convolutional network learn, or fail to learn, one weight update at a time: filter "
            "weights, gradients, updates and ReLU outputs, with plain explanations of what went "
            "wrong.</p><p>Keyboard shortcuts: Help → Keyboard shortcuts (F1). Errors are logged "
            f"to {html.escape(str(log_path()))}.</p>",
        )

    # -- saving ------------------------------------------------------------------------------

    def _ask_save_path(self, title: str, suggested: Path, filter_text: str) -> str:
        return dialogs.ask_save_path(self, title, suggested, filter_text)

    def _ask_directory(self, title: str, start: Path) -> str:
        return QFileDialog.getExistingDirectory(self, title, str(start))

    def _confirm_replace(self, paths: list[Path]) -> bool:
        return dialogs.confirm_replace(self, paths)

    def _last_save_folder(self) -> Path:
        """Where saving starts: the folder last saved to, else beside the data folder shown
        (not in it: a folder of label folders with a report in it would no longer load), else
        home (for the bundled examples, inside the installed package)."""
        stored = QSettings().value("save/last_folder", "")
        if stored and Path(stored).is_dir():
            return Path(stored)
        data = self.controller.dataset_path
        if data is not None and not self.controller.dataset_source.startswith("example:"):
            if data.parent.is_dir() and os.access(data.parent, os.W_OK):
                return data.parent
        return Path.home()

    @Slot()
    def save_snapshot(self) -> list[Path]:
        """Save the shown iteration's filters: PNG, raw .npy and JSON with config and findings,
        and every array of the iteration (.npz)."""
        record = self.controller.complete(self.controller.shown)
        suggested = self._last_save_folder() / f"filters-iter{record.iteration:06d}.png"
        chosen = self._ask_save_path("Save filter snapshot", suggested, "PNG image (*.png)")
        if not chosen:
            return []
        stem = files.stem_of(chosen, snapshot.SNAPSHOT_SUFFIXES)
        directory = Path(chosen).parent
        try:
            clashes = files.existing(directory / f"{stem}{s}" for s in snapshot.SNAPSHOT_SUFFIXES)
            overwrite = bool(clashes)
            if clashes and not self._confirm_replace(clashes):
                return []
            written = snapshot.save_snapshot(
                record,
                self.controller.config,
                record.findings,
                directory,
                stem,
                overwrite=overwrite,
                limits=self.filters_view.current_limits(),
                dataset=self.controller.dataset,
                extra={
                    "dataset": {
                        "source": self.controller.dataset_source,
                        "digest": self.controller.dataset.digest(),
                        "images": len(self.controller.dataset),
                    }
                },
            )
        except files.SaveError as exc:
            self._show_error("Snapshot not saved", str(exc), "")
            return []
        QSettings().setValue("save/last_folder", str(directory))
        self.statusBar().showMessage(
            f"Saved {', '.join(p.name for p in written)} in {directory}", 8000
        )
        return written

    def plot_items(self) -> dict:
        """Every exportable plot of every view, by name."""
        items = {}
        views = [self.filters_view, self.maps_view, self.curves_view, self.created_view("compare")]
        for view in views:
            if view is not None:
                items.update(view.plot_items())
        return items

    @Slot()
    def show_comparison(self) -> None:
        """Show the side-by-side panel; floating, it opens over the window's panels, between
        the toolbar and the History bar, so that Step, Run, Reset and the history slider that
        move both runs stay in reach."""
        dock = self.docks["compare"]
        if dock.isFloating() and not dock.isVisible():
            self._place_comparison(dock)
        dock.show()
        dock.raise_()

    def _place_comparison(self, dock: QDockWidget) -> None:
        """Lay the floating side-by-side panel over the panel area (``show_comparison``)."""
        room = self._panels_rect()
        dock.setGeometry(room)
        dock.show()
        self._frame_inside(dock, room)
        self._comparison_placed = dock.geometry()

        def settle() -> None:
            # A window manager on X11 adds its frame a little later: look again then.
            self._frame_inside(dock, room)
            self._comparison_placed = dock.geometry()

        QTimer.singleShot(FRAME_SETTLE_MS, dock, settle)

    def _follow_window(self) -> None:
        """The window resized: a floating side-by-side panel where it was placed follows the
        panel area (a learner's review: opened at 1920 pixels, it stayed 1920 wide over a
        window made 1280, hiding run B, the History bar and the status bar). One the user has
        moved or resized stays where they put it."""
        dock = self.docks["compare"]
        if (
            dock.isVisible()
            and dock.isFloating()
            and dock.geometry() == getattr(self, "_comparison_placed", None)
        ):
            self._place_comparison(dock)

    @staticmethod
    def _frame_inside(dock: QDockWidget, room: QRect) -> None:
        """Where the platform draws a frame around a floating panel, fit the frame in ``room``
        (once the panel is placed: the user may move it from then on)."""
        frame, inner = dock.frameGeometry(), dock.geometry()
        if frame != inner and frame.topLeft() != room.topLeft():
            dock.setGeometry(
                room.adjusted(
                    inner.left() - frame.left(),
                    inner.top() - frame.top(),
                    inner.right() - frame.right(),
                    inner.bottom() - frame.bottom(),
                )
            )

    def _panels_rect(self) -> QRect:
        """The window's panel area on screen: below the menu bar and the toolbars at the top,
        above the docks at the bottom (History) and the status bar."""
        top = self.menuBar().geometry().bottom() + 1 if self.menuBar().isVisible() else 0
        for toolbar in self.findChildren(QToolBar):
            if toolbar.isVisible() and self.toolBarArea(toolbar) == Qt.ToolBarArea.TopToolBarArea:
                top = max(top, toolbar.geometry().bottom() + 1)
        bottom = (
            self.statusBar().geometry().top() if self.statusBar().isVisible() else self.height()
        )
        for dock in self.docks.values():
            if (
                dock.isVisible()
                and not dock.isFloating()
                and self.dockWidgetArea(dock) == Qt.DockWidgetArea.BottomDockWidgetArea
            ):
                bottom = min(bottom, dock.geometry().top())
        origin = self.mapToGlobal(QPoint(0, top))
        room = QRect(origin.x(), origin.y(), self.width(), max(bottom - top, 200))
        screen = self.screen()
        return room.intersected(screen.availableGeometry()) if screen is not None else room

    def settle_for_drawing(self, what: str) -> bool:
        """Before plots are drawn for saving (they must all show one iteration): pause the
        runs, then wait (a few seconds at most, the window painting) for what is on its way
        to the views: a picked iteration being fetched, a new run or images, a compared run
        catching up. False, said in the status bar, if they are still changing."""
        controllers = [self.controller]
        compare = self.created_view("compare")
        if compare is not None and compare.follower is not None:
            controllers.append(compare.follower)

        def changing() -> bool:
            return any(c.is_running or c.is_loading or c.waiting_for_record for c in controllers)

        self.controller.pause()  # (a compared run then catches up with it, and stops)
        deadline = time.monotonic() + SETTLE_SECONDS
        while changing() and time.monotonic() < deadline:
            QApplication.processEvents(QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents, 50)
            time.sleep(0.01)  # (processEvents returns at once when nothing is pending)
        if changing():
            self.statusBar().showMessage(
                f"{what}: the window is still changing (a run, or an iteration on its way); "
                "try again in a moment",
                8000,
            )
            return False
        return True

    @contextlib.contextmanager
    def drawing_plots(self):
        """For the time plots are drawn for saving (about a second for all of them), once the
        views have settled (``settle_for_drawing``): a busy cursor, and a ``progress(done,
        total)`` that says how far it is and lets the window paint between plots. What the
        user presses waits until the plots are drawn; nothing else then changes the views (a
        new iteration, run or pick comes from the user or a run)."""
        bar = self.statusBar()

        def progress(done: int, total: int) -> None:
            bar.showMessage(f"Drawing plots: {done} of {total}…")
            QApplication.processEvents(QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents)

        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            yield progress
        finally:
            QApplication.restoreOverrideCursor()
            bar.clearMessage()

    @Slot()
    def save_plots(self) -> list[Path]:
        """Save every plot (PNG and SVG) and the curves (CSV) into a new folder."""
        chosen = self._ask_directory("Save plots into folder", self._last_save_folder())
        if not chosen:
            return []
        parent = Path(chosen)
        if not self.settle_for_drawing("Plots not saved"):
            return []
        iteration = self.controller.shown.iteration
        made: Path | None = None
        written: list[Path] = []
        try:
            folder = parent / files.free_stem(parent, f"plots-iter{iteration:06d}", [""])
            made = files.make_folder(folder)
            with self.drawing_plots() as progress:
                written = export.save_plots(
                    self.plot_items(), folder, progress=progress, caption=self.plot_caption
                )
            written.append(self.curves_view.export_csv(folder / "curves.csv"))
        except files.SaveError as exc:
            # "Not saved" leaves nothing behind: the folder is this save's own (a full disk
            # used to leave it empty, or with the plots but no curves).
            if made is not None:
                for path in written:
                    with contextlib.suppress(OSError):
                        path.unlink()
                with contextlib.suppress(OSError):
                    made.rmdir()
            self._show_error("Plots not saved", str(exc), "")
            return []
        QSettings().setValue("save/last_folder", str(parent))
        self.statusBar().showMessage(f"Saved {len(written)} files in {folder}", 8000)
        return written

    # -- closing -----------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        self._drop_starting_note()
        self._save_settings()
        self.diagnostics_view.shutdown()
        for key in ("outcome", "compare", "whatif"):
            view = self.created_view(key)
            if view is not None:
                view.shutdown()
        self.report_saver.shutdown()
        self.controller.shutdown()
        super().closeEvent(event)


class _StartingDialog(QDialog):
    """'Starting the new run…' (or going back): busy and modal. Escape does not dismiss it:
    there is nothing to cancel, the training process is at it and the window waits for it;
    Quit closes the window, abandoning it."""

    def __init__(self, what: str, detail: str, parent: QMainWindow) -> None:
        super().__init__(parent)
        self.setObjectName("startingDialog")
        self.setWindowTitle(what)
        self.setWindowModality(Qt.WindowModality.ApplicationModal)
        layout = QVBoxLayout(self)
        label = QLabel(f"{what}: {detail[:1].lower()}{detail[1:]}…")
        label.setObjectName("startingText")
        busy = QProgressBar()
        busy.setRange(0, 0)
        busy.setTextVisible(False)
        quit_button = QPushButton("Quit Training Inspector")
        quit_button.setObjectName("startingQuit")
        quit_button.setAutoDefault(False)
        quit_button.clicked.connect(parent.close)
        layout.addWidget(label)
        layout.addWidget(busy)
        layout.addWidget(quit_button, 0, Qt.AlignmentFlag.AlignRight)

    def reject(self) -> None:  # Escape: the run is on its way either way
        pass

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        event.ignore()

"""Side by side: a second run next to the main one, on the same images, seed and sample order.

Choose the second run's settings (a preset, or the main run's current settings to change
afterwards) and start it. Both runs then move together: Step, Run, Reset, new data and the
history slider act on both (``inspector.compare.ComparisonLink``). Their filters and ReLU
outputs are drawn with shared colour scales (``plotting.ScaleLink``), so the difference is
visible at a glance, and their loss and dead fraction share two plots.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QCoreApplication, QEvent, Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from inspector import plotting
from inspector.compare import SHARED_FIELDS, ComparisonLink, follower_config
from inspector.controller import SessionController
from inspector.tasks import BackgroundTask
from inspector.training_process import TrainerClient
from inspector.views.curves import RangeAnchor, iteration_bounds
from inspector.views.filters import FiltersView
from inspector.views.maps import MapsView
from inspector.views.widgets import scroll_area, wheel_scrolls_panel
from model.config import TrainingConfig
from model.formatting import format_number, format_share
from model.presets import PRESETS

CURRENT = "current"
#: Closing the window while the second run's training process is being made waits this long
#: for it (it is made in a second or so; then ended).
START_WAIT_MS = 60_000
RUN_COLOURS = {"A": (33, 102, 172), "B": (214, 96, 77)}
REDRAW_MS = 100
#: Points get a dot while a run has at most this many rows (a lone point has no line).
SYMBOL_ROWS = 25


def describe(config: TrainingConfig) -> str:
    """One line naming what differs between runs: init, pixels, learning rate."""
    return (
        f"filters {config.init_text('conv')}, classifier {config.init_text('classifier')}, "
        f"pixels {config.pixel_scaling}, learning rate {format_number(config.learning_rate)}"
    )


#: How the title of the second run names what it takes from the first (``SHARED_FIELDS``).
SHARED_NAMES = {"seed": "seed", "update_mode": "update mode", "shuffle": "sample order"}


def preset_title(config: TrainingConfig, *, follower: bool = False) -> str:
    """The preset ``config`` is, else "custom settings". For the second run, a preset but for
    what it takes from the first says so: "The question's setup (fails), with run A's update
    mode" (a newcomer picked that preset and read "custom settings")."""
    name = next((p.title for p in PRESETS.values() if p.config == config), None)
    if name is not None:
        return name
    if follower:
        for preset in PRESETS.values():
            taken = [f for f in SHARED_FIELDS if getattr(preset.config, f) != getattr(config, f)]
            if preset.config.with_changes(**{f: getattr(config, f) for f in taken}) == config:
                names = " and ".join(SHARED_NAMES[f] for f in taken)
                return f"{preset.title}, with run A's {names}"
    return "custom settings"


#: Least height (pixels) of a run's ReLU outputs panel in the comparison.
MAPS_MIN_HEIGHT = 170


class RunColumn(QWidget):
    """One run's title, filters and ReLU outputs."""

    def __init__(self, letter: str, controller: SessionController, parent=None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.setObjectName(f"compareColumn{letter}")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        self.title = QLabel()
        self.title.setObjectName(f"compareTitle{letter}")
        self.title.setWordWrap(True)
        red, green, blue = RUN_COLOURS[letter]
        self.title.setStyleSheet(f"border-left: 6px solid rgb({red},{green},{blue}); padding: 4px;")
        layout.addWidget(self.title)
        splitter = QSplitter(Qt.Orientation.Vertical)
        self.filters = FiltersView(controller)
        self.maps = MapsView(controller)
        splitter.addWidget(self.filters)
        splitter.addWidget(self.maps)
        # Room for the titles, two rows of maps and their colour bars' three labels: squeezed
        # to 60 pixels in a 1280×800 window, the labels ran into each other. The comparison
        # scrolls instead.
        self.maps.setMinimumHeight(MAPS_MIN_HEIGHT)
        splitter.setSizes([420, 320])
        layout.addWidget(splitter, 1)
        self._letter = letter
        # Bound methods, never lambdas: a closed comparison's columns are deleted, and Qt
        # disconnects only a deleted object's own methods (a lambda stayed connected to the
        # main run and raised "Internal C++ object already deleted" at every Step).
        controller.config_changed.connect(self._show_title)
        controller.record_shown.connect(self._show_title)
        self._show_title()

    def _show_title(self, *_args) -> None:
        config = self.controller.config
        record = self.controller.shown
        self.title.setText(
            f"<b>Run {self._letter} · {preset_title(config, follower=self._letter == 'B')}</b>"
            f"<br>{describe(config)}<br>"
            f"iteration {record.iteration}: loss {format_number(record.loss)}, accuracy "
            f"{format_share(record.accuracy)}, ReLU outputs at 0: "
            f"{format_share(record.dead_fraction)}"
        )


class _IterationAxis(pg.AxisItem):
    """An iteration axis: whole iterations only (no tick at 0.5), and no SI prefix (pyqtgraph
    would write 'iteration (x0.001)' under a range around 0)."""

    def __init__(self, orientation: str) -> None:
        super().__init__(orientation)
        self.enableAutoSIPrefix(False)

    def tickSpacing(self, minVal, maxVal, size):  # noqa: N802, N803 (pyqtgraph API)
        levels = [level for level in super().tickSpacing(minVal, maxVal, size) if level[0] >= 1]
        return levels or [(1.0, 0.0)]


class CompareCurves(pg.GraphicsLayoutWidget):
    """Loss (log scale) and dead fraction of both runs over iterations."""

    def __init__(self, runs: dict[str, SessionController], parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("compareCurves")
        self.setBackground("w")
        self._runs = runs
        # Zoomed with Ctrl+wheel only, as every other plot: a plain wheel turn scrolls the
        # panel (a teacher scrolling down zoomed both plots out to a ReLU axis of -10..0).
        self.loss_plot = self.addPlot(
            title="loss (log scale)",
            axisItems={"bottom": _IterationAxis("bottom")},
            viewBox=plotting.GuardedViewBox(),
        )
        self.dead_plot = self.addPlot(
            title="fraction of ReLU outputs at 0",
            axisItems={"bottom": _IterationAxis("bottom")},
            viewBox=plotting.GuardedViewBox(),
        )
        self.loss_plot.setLogMode(y=True)
        self.dead_plot.setYRange(0, 1)
        self.dead_plot.setXLink(self.loss_plot)
        self.curves = {}
        self.anchors = []
        for plot in (self.loss_plot, self.dead_plot):
            plot.showGrid(x=True, y=True, alpha=0.2)
            plot.setLabel("bottom", "iteration")
            legend = plot.addLegend(offset=(-10, 10))
            legend.setLabelTextColor("k")
            anchor = RangeAnchor()  # the iteration axis' range as in the Curves panel
            plot.addItem(anchor)
            self.anchors.append(anchor)
        for letter, colour in RUN_COLOURS.items():
            pen = pg.mkPen(colour, width=2)
            self.curves[("loss", letter)] = self.loss_plot.plot(pen=pen, name=f"run {letter}")
            self.curves[("dead", letter)] = self.dead_plot.plot(pen=pen, name=f"run {letter}")
        self.markers = [
            pg.InfiniteLine(angle=90, pen=pg.mkPen((90, 90, 90), style=Qt.PenStyle.DashLine))
            for _ in range(2)
        ]
        self.loss_plot.addItem(self.markers[0], ignoreBounds=True)
        self.dead_plot.addItem(self.markers[1], ignoreBounds=True)
        self.setMinimumHeight(150)
        wheel_scrolls_panel(self)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self.redraw)
        for controller in runs.values():  # (bound methods: see RunColumn)
            controller.history_changed.connect(self._schedule)
            controller.session_reset.connect(self._schedule)
        runs["A"].record_shown.connect(self._move_marker)
        self.redraw()

    def _schedule(self, *_args) -> None:
        if not self._timer.isActive():
            self._timer.start()

    @Slot()
    def redraw(self) -> None:
        last = 0.0
        for letter, controller in self._runs.items():
            columns = controller.metric_columns(["iteration", "loss", "dead_fraction"])
            x = columns["iteration"]
            loss = columns["loss"]
            if len(x):
                last = max(last, float(x[-1]))
            dots = {
                "symbol": "o" if len(x) <= SYMBOL_ROWS else None,
                "symbolSize": 6,
                "symbolPen": None,
                "symbolBrush": RUN_COLOURS[letter],
            }
            # Log scale cannot show 0 or non-finite losses; they are left out, not faked.
            keep = np.isfinite(loss) & (loss > 0)
            self.curves[("loss", letter)].setData(x[keep], loss[keep], **dots)
            self.curves[("dead", letter)].setData(x, columns["dead_fraction"], **dots)
        for anchor in self.anchors:
            anchor.set_bounds(iteration_bounds(last), None)

    @Slot(object)
    def _move_marker(self, record) -> None:
        for marker in self.markers:
            marker.setValue(record.iteration)

    def plot_items(self) -> dict:
        return {"compare-loss": self.loss_plot, "compare-dead-fraction": self.dead_plot}


class CompareView(QWidget):
    """The 'Side by side' panel: start, show and stop a second run next to the main one.

    Parameters
    ----------
    controller : the main run (run A); the second run follows it.
    backend : training backend of the second run ('process' or 'thread').

    Signals
    -------
    closed() : "Close second run" was pressed (the run is closed by then).
    """

    closed = Signal()

    def __init__(self, controller: SessionController, parent=None, *, backend="process") -> None:
        super().__init__(parent)
        self.setObjectName("compareView")
        self._controller = controller
        self._backend = backend
        self.follower: SessionController | None = None
        self._link: ComparisonLink | None = None
        self._scales: list[plotting.ScaleLink] = []
        self._columns: list[RunColumn] = []
        self.curves: CompareCurves | None = None
        self._starting: BackgroundTask | None = None  # the second run's process starting
        self._starting_client: dict | None = None  # {"client": it}, once made
        self._start_args: tuple = ()  # (dataset, config, source) it starts with
        self._abandoned = False  # closed (or restarted) while it was starting
        self._failure = ""  # why the last start failed, until the next
        self._catching_up = False  # run B trains up to run A's iteration after its start

        outer = QVBoxLayout(self)
        outer.setContentsMargins(6, 4, 6, 4)  # two runs need every line of height
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Second run:"))
        self.choice = QComboBox()
        self.choice.setObjectName("compareChoice")
        for name, preset in PRESETS.items():
            self.choice.addItem(preset.title, name)
            self.choice.setItemData(
                self.choice.count() - 1, preset.description, Qt.ItemDataRole.ToolTipRole
            )
        self.choice.addItem("The main run's current settings", CURRENT)
        bar.addWidget(self.choice)
        self.start_button = QPushButton("Start second run")
        self.start_button.setObjectName("compareStart")
        self.start_button.clicked.connect(self.start)
        bar.addWidget(self.start_button)
        self.close_button = QPushButton("Close second run")
        self.close_button.setObjectName("compareClose")
        self.close_button.clicked.connect(self._close_clicked)
        bar.addWidget(self.close_button)
        bar.addStretch(1)
        outer.addLayout(bar)
        self.note = QLabel()
        self.note.setObjectName("compareNote")
        self.note.setWordWrap(True)
        outer.addWidget(self.note)
        self.body = QSplitter(Qt.Orientation.Vertical)
        self.body.setObjectName("compareBody")
        # Scrolls rather than grows: a floating panel taller than its room would spread over
        # the toolbar and the History bar that move both runs.
        outer.addWidget(scroll_area(self.body, "compareScroll"), 1)
        self._choose_default()
        self._show_state()

    @property
    def is_open(self) -> bool:
        return self.follower is not None

    def _choose_default(self) -> None:
        """Offer the preset the main run is not using (the fix next to the failure)."""
        current = self._controller.preset_name
        other = next((name for name in PRESETS if name != current), None)
        index = self.choice.findData(other)
        if index >= 0:
            self.choice.setCurrentIndex(index)

    def _chosen_config(self) -> TrainingConfig:
        key = self.choice.currentData()
        own = self._controller.config if key == CURRENT else PRESETS[key].config
        return follower_config(self._controller.config, own)

    @Slot()
    def start(self) -> None:
        """Start the second run at iteration 0 (it catches up with the main run at once).

        Its training process starts and makes iteration 0 in the background (0.8 s measured
        here): the window goes on meanwhile, and the note says what it waits for."""
        if self.is_starting:
            return
        self.close_comparison()
        leader = self._controller
        dataset, source = leader.dataset, leader.dataset_source
        config, backend = self._chosen_config(), self._backend
        holder = self._starting_client = {}

        def job(_progress, cancelled) -> TrainerClient:
            client = holder["client"] = TrainerClient(dataset, config, backend)
            if cancelled():
                return client  # (closed by _on_start_cancelled)
            try:
                client.call("state")  # iteration 0 made: the controller then takes it at once
            except BaseException:
                client.close()
                raise
            return client

        task = self._starting = BackgroundTask(job, self)
        self._start_args = (dataset, config, source)
        self._abandoned = False
        task.done.connect(self._on_started)
        task.failed.connect(self._on_start_failed)
        task.cancelled.connect(self._on_start_cancelled)
        task.ended.connect(self._on_start_ended)
        self._show_state()
        task.start()

    @property
    def is_starting(self) -> bool:
        """Whether the second run's training process is starting."""
        return self._starting is not None

    @Slot(object)
    def _on_started(self, client: TrainerClient) -> None:
        if self._abandoned:
            _end_unwanted(client)
            return
        leader = self._controller
        dataset, config, source = self._start_args
        self.follower = SessionController(
            dataset, config, self, source=source, backend=self._backend, client=client
        )
        self._link = ComparisonLink(leader, self.follower)
        # Started after run A has trained, run B first makes the same iterations (a newcomer
        # saw it count up from 285 to 1,144 with no word of it): the note says so until then.
        self._catching_up = leader.latest_iteration > 0
        leader.history_changed.connect(self._on_progress)
        self.follower.history_changed.connect(self._on_progress)
        columns = QSplitter(Qt.Orientation.Horizontal)
        self._columns = [RunColumn("A", leader), RunColumn("B", self.follower)]
        for column in self._columns:
            columns.addWidget(column)
        self._scales = [plotting.ScaleLink(self), plotting.ScaleLink(self)]
        for column in self._columns:
            column.filters.link_scale(self._scales[0])
            column.maps.link_scale(self._scales[1])
        self.curves = CompareCurves({"A": leader, "B": self.follower})
        self.body.addWidget(columns)
        self.body.addWidget(self.curves)
        self.body.setSizes([640, 200])
        if leader.dataset is not dataset or follower_config(leader.config, config) != config:
            # The main run started again meanwhile (new data, seed or sample order).
            self._link.follow_reset()
        else:
            self._link.follow_progress(leader.latest_iteration)

    @Slot()
    def _on_start_cancelled(self) -> None:
        """The start was abandoned while its training process was being made: it ends."""
        client = (self._starting_client or {}).get("client")
        if client is not None:
            _end_unwanted(client)

    @Slot(object, str)
    def _on_start_failed(self, error: Exception, _details: str) -> None:
        if not self._abandoned:
            self._failure = f"The second run could not start: {error}"

    @Slot()
    def _on_start_ended(self) -> None:
        self._starting.deleteLater()
        self._starting = self._starting_client = None
        self._show_state()
        self._failure = ""

    @Slot()
    def _close_clicked(self) -> None:
        """End the second run; ``closed`` asks the window to put the panel away."""
        self.close_comparison()
        self.closed.emit()

    def close_comparison(self) -> None:
        if self.is_starting:
            self._abandoned = True  # its training process is ended as soon as it is made
            self._starting.cancel()
        if self.follower is None:
            self._show_state()
            return
        self._link.disconnect_all()
        self._controller.history_changed.disconnect(self._on_progress)
        self._catching_up = False
        for column in self._columns:
            column.filters.link_scale(None)
            column.maps.link_scale(None)
        while self.body.count():
            widget = self.body.widget(0)
            widget.setParent(None)
            widget.deleteLater()
        self.follower.shutdown()
        self.follower.deleteLater()
        self.follower = None
        self._link = None
        self._columns = []
        self.curves = None
        self._show_state()

    def _show_state(self) -> None:
        starting = self.is_starting and not self._abandoned
        self.start_button.setText("Restart second run" if self.is_open else "Start second run")
        self.start_button.setEnabled(not self.is_starting)
        self.close_button.setEnabled(self.is_open or starting)
        if starting:
            self.note.setText("Starting the second run's training process…")
        elif self._failure:
            self.note.setText(self._failure)
        elif self._catching_up:
            leader, follower = self._controller.latest_iteration, self.follower.latest_iteration
            self.note.setText(
                f"Run B is catching up with run A: iteration {follower:,} of {leader:,}. It "
                "makes the iterations run A has made, on the same images in the same order; "
                "then both move together."
            )
        elif self.is_open:
            self.note.setText(
                "Both runs use the same images, seed and sample order. Step, Run and Reset in "
                "the toolbar, new data and the History slider move both; colours use one scale "
                "for both."
            )
        else:
            self.note.setText(
                "Put two recipes next to each other on the same images, seed and sample order, "
                "for example the question's setup beside the answer's fix. Choose the second "
                "run's settings and press Start second run."
            )

    @Slot(int)
    def _on_progress(self, _last: int) -> None:
        if not self._catching_up:
            return
        if self.follower.latest_iteration >= self._controller.latest_iteration:
            self._catching_up = False  # (or run A went back to before it)
        self._show_state()

    def plot_items(self) -> dict:
        return self.curves.plot_items() if self.curves is not None else {}

    def shutdown(self) -> None:
        """End the second run's training process (on window close), or its start."""
        self.close_comparison()
        task, holder = self._starting, self._starting_client
        if task is not None:
            client = holder.get("client")
            if client is not None:
                client.terminate()  # not waited for: it is not wanted any more
            # Until the training process is made (a review: with a 5 s limit, one made after
            # it was left running behind the closed window); then it is ended, cancelled.
            task.wait(START_WAIT_MS)
            # Its result, queued to this thread, is delivered now (and closes the client),
            # and the task deleted while this view exists (see SessionController.shutdown).
            QCoreApplication.sendPostedEvents()
            QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


def _end_unwanted(client: TrainerClient) -> None:
    """End a second run's training process nobody wants any more, without waiting for it to
    answer (a quit and a join could hold the window for seconds)."""
    client.terminate()
    client.close(timeout=1.0)

"""Qt tests run offscreen, with settings in a temporary folder, on the bundled examples."""

import json
import os
import tempfile
import threading

# An offscreen screen of a real desktop's size (the plugin's default is 800x600, smaller than
# the window's minimum), so that window geometry behaves as on a 1920x1080 monitor.
_SCREEN = {
    "screens": [
        {
            "name": "test-1920x1080",
            "x": 0,
            "y": 0,
            "width": 1920,
            "height": 1080,
            "logicalDpiX": 96,
            "logicalDpiY": 96,
            "dpr": 1,
        }
    ]
}
if os.environ.get("QT_QPA_PLATFORM", "offscreen") == "offscreen":
    _config = os.path.join(tempfile.mkdtemp(prefix="inspector-screen-"), "screen.json")
    with open(_config, "w", encoding="utf-8") as handle:
        json.dump(_SCREEN, handle)
    os.environ["QT_QPA_PLATFORM"] = f"offscreen:configfile={_config}"

import pytest  # noqa: E402
from PySide6.QtCore import QCoreApplication, QSettings, Qt  # noqa: E402

from model.data import load_example  # noqa: E402
from model.presets import preset_config  # noqa: E402


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path, monkeypatch):
    """QSettings and the app's data folder point into ``tmp_path`` for every test."""
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(
        QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings")
    )
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    QCoreApplication.setOrganizationName("TrainingInspectorTests")
    QCoreApplication.setApplicationName("training-inspector-tests")
    yield


@pytest.fixture(scope="session")
def question_dataset():
    return load_example("question")


@pytest.fixture(scope="session")
def shapes_dataset():
    return load_example("shapes")


@pytest.fixture
def controller(qtbot, question_dataset):
    """A controller on the question's two images with the ``seed`` preset (the failure)."""
    from inspector.controller import SessionController

    ctrl = SessionController(question_dataset, preset_config("seed"))
    yield ctrl
    ctrl.shutdown()


@pytest.fixture
def make_controller(qtbot):
    """Controllers on any dataset and config, shut down after the test."""
    from inspector.controller import SessionController

    made = []

    def make(dataset, config):
        controller = SessionController(dataset, config)
        made.append(controller)
        return controller

    yield make
    for controller in made:
        controller.shutdown()


@pytest.fixture
def sweep_grid(qtbot):
    """``sweep_grid(view, lr, scale, iterations, run=True)``: set an outcome map's grid (lr
    and scale as (from, to, count) texts) and, with ``run``, sweep it; returns the result."""

    def sweep(view, lr, scale, iterations, *, run=True):
        for edit, text in (
            (view.lr_from, lr[0]),
            (view.lr_to, lr[1]),
            (view.scale_from, scale[0]),
            (view.scale_to, scale[1]),
        ):
            edit.selectAll()
            qtbot.keyClicks(edit, text)
        view.lr_count.setValue(lr[2])
        view.scale_count.setValue(scale[2])
        view.iterations.setValue(iterations)
        if not run:
            return None
        with qtbot.waitSignal(view.sweep_ended, timeout=60000) as ended:
            qtbot.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
        assert ended.args == ["done"]
        return view.result

    return sweep


@pytest.fixture
def show_window(qtbot):
    """``show_window(controller)``: the main window on it, shown as a user would see it."""
    from inspector.main_window import MainWindow

    def show(controller):
        win = MainWindow(controller)
        qtbot.addWidget(win)
        win.show()
        qtbot.waitExposed(win)
        return win

    return show


@pytest.fixture
def window(controller, show_window):
    """The main window on ``controller``, shown as a user would see it."""
    return show_window(controller)


@pytest.fixture
def show_view(qtbot):
    """Show a view at a size; views with background work (a ``shutdown``) are shut down after
    the test."""
    views = []

    def show(view, width: int, height: int):
        qtbot.addWidget(view)
        view.resize(width, height)
        view.show()
        qtbot.waitExposed(view)
        if hasattr(view, "shutdown"):
            views.append(view)
        return view

    yield show
    for view in views:
        view.shutdown()


@pytest.fixture
def turn_wheel():
    """``turn_wheel(widget, point, notches, modifiers=NoModifier)``: a mouse wheel turned at
    ``point`` of ``widget`` (negative notches: towards the user, scrolling down)."""
    from PySide6.QtCore import QPoint, QPointF, Qt
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    def turn(widget, point, notches: int, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
        event = QWheelEvent(
            QPointF(point),
            QPointF(widget.mapToGlobal(point)),
            QPoint(0, 0),
            QPoint(0, 120 * notches),
            Qt.MouseButton.NoButton,
            modifiers,
            Qt.ScrollPhase.NoScrollPhase,
            False,
        )
        QApplication.sendEvent(widget, event)

    return turn


@pytest.fixture
def count_events():
    """``count_events(widget, kind)`` starts counting the events of type ``kind`` that
    ``widget`` receives (they still reach it); the counter's ``count`` says how many so far."""
    from PySide6.QtCore import QObject

    class Counter(QObject):
        def __init__(self, widget, kind) -> None:
            super().__init__()
            self.count = 0
            self._kind = kind
            widget.installEventFilter(self)

        def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt override)
            if event.type() == self._kind:
                self.count += 1
            return False

    counters = []  # alive as long as the test: a filter that is collected stops counting

    def start(widget, kind):
        counters.append(Counter(widget, kind))
        return counters[-1]

    return start


@pytest.fixture
def step_and_wait(qtbot):
    """Press Step on a controller and wait until the record of the new iteration is shown."""

    def run(ctrl, times=1):
        for _ in range(times):
            target = ctrl.latest_iteration + 1
            with qtbot.waitSignal(
                ctrl.running_changed, timeout=10000, check_params_cb=lambda r: not r
            ):
                ctrl.step()
            assert ctrl.shown.iteration == target
        return ctrl.shown

    return run


@pytest.fixture
def show_and_wait(qtbot):
    """Pick an iteration on a controller and wait until its record is shown (it comes from the
    training process in the background)."""

    def run(ctrl, iteration):
        ctrl.show_iteration(iteration)
        qtbot.waitUntil(lambda: ctrl.shown.iteration == iteration, timeout=10000)
        return ctrl.shown

    return run


class HeldReport:
    """Reports that, once the training process starts writing them, wait for ``release``."""

    def __init__(self, monkeypatch) -> None:
        from model import report

        self.writing, self.release = threading.Event(), threading.Event()
        write = report.write_report

        def held_write(*args, **kwargs):
            self.writing.set()
            assert self.release.wait(30)
            return write(*args, **kwargs)

        monkeypatch.setattr(report, "write_report", held_write)

    def start(self, controller, path):
        """Ask ``controller`` for a report at ``path`` from a worker thread; returns once it is
        being written, with the thread and the list its result will go to."""
        results = []
        worker = threading.Thread(
            target=lambda: results.append(controller.write_report(path)), daemon=True
        )
        worker.start()
        assert self.writing.wait(10)
        return worker, results


@pytest.fixture
def held_report(monkeypatch):
    held = HeldReport(monkeypatch)
    yield held
    held.release.set()

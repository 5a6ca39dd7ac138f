"""Faults injected into the running app: an exception while drawing, an exception while
training, a full disk, a path too long, NaN weights. Each is reported plainly, logged, and the
app keeps working with nothing lost."""

import errno
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PySide6.QtCore import QCoreApplication, QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from inspector import errors  # noqa: E402
from inspector.controller import SessionController  # noqa: E402
from inspector.main_window import MainWindow  # noqa: E402
from model import files  # noqa: E402
from model.config import TrainingConfig  # noqa: E402
from model.data import load_example  # noqa: E402
from model.init import InitSpec  # noqa: E402
from model.presets import preset_config  # noqa: E402


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "s"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    QCoreApplication.setOrganizationName("TrainingInspectorFaults")
    QCoreApplication.setApplicationName("faults")


@pytest.fixture
def window(qtbot):
    # The 'thread' backend runs the training server in this process, so faults can be
    # injected into its session.
    controller = SessionController(
        load_example("question"), preset_config("recommended"), backend="thread"
    )
    win = MainWindow(controller)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    yield win
    controller.shutdown()


def error_dialogs():
    return [w for w in QApplication.topLevelWidgets() if w.objectName() == "errorDialog"]


def step(qtbot, window):
    target = window.controller.latest_iteration + 1
    window.actions["step"].trigger()
    qtbot.waitUntil(
        lambda: window.controller.shown.iteration == target and not window.controller.is_running,
        timeout=10000,
    )


@pytest.mark.qt_no_exception_capture
def test_an_exception_while_drawing_is_shown_logged_and_survived(qtbot, window, monkeypatch):
    errors.install_excepthook(lambda: window)
    original_hook = sys.__excepthook__
    calls = {"n": 0}
    real = window.filters_view.show_record

    def broken(record):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("injected drawing fault")
        real(record)

    monkeypatch.setattr(window.filters_view, "show_record", broken)
    window.controller.record_shown.disconnect(real)
    window.controller.record_shown.connect(window.filters_view.show_record)
    try:
        step(qtbot, window)
        qtbot.waitUntil(lambda: bool(error_dialogs()), timeout=5000)
        dialog = error_dialogs()[-1]
        assert "injected drawing fault" in dialog.text()
        assert "Traceback" in dialog.detailedText()
        log = errors.log_path()
        assert log.exists() and "injected drawing fault" in log.read_text()
        dialog.close()
        step(qtbot, window)  # the next frame draws normally
        assert calls["n"] >= 2 and window.controller.latest_iteration == 2
    finally:
        sys.excepthook = original_hook
        for dialog in error_dialogs():
            dialog.close()


def test_an_exception_while_training_stops_the_run_and_keeps_history(qtbot, window, monkeypatch):
    session = window.controller.server.session
    real_step = session.step
    calls = {"n": 0}

    def flaky():
        calls["n"] += 1
        if calls["n"] == 3:
            raise MemoryError("injected training fault")
        return real_step()

    monkeypatch.setattr(session, "step", flaky)
    reported = []
    window.controller.error_occurred.connect(lambda *a: reported.append(a))
    monkeypatch.setattr("inspector.main_window.show_error", lambda *a: None)
    window.controller.set_speed(0)
    window.controller.run()
    qtbot.waitUntil(lambda: not window.controller.is_running, timeout=10000)
    assert reported and "injected training fault" in reported[0][1]
    assert window.controller.latest_iteration == 2  # the two good steps are kept
    assert window.controller.record(1).iteration == 1
    step(qtbot, window)  # and training goes on
    assert window.controller.latest_iteration == 3


@pytest.mark.parametrize(
    "code,words",
    [(errno.ENOSPC, "the disk is full"), (errno.EROFS, "read-only"), (errno.EACCES, "permission")],
)
def test_a_failed_save_says_why_and_leaves_nothing_behind(
    qtbot, window, tmp_path, monkeypatch, code, words
):
    step(qtbot, window)
    shown = []
    monkeypatch.setattr("inspector.main_window.show_error", lambda *a: shown.append(a))

    def fail(*_args):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(files.os, "fsync", fail)
    window._ask_save_path = lambda *args: str(tmp_path / "snap.png")
    assert window.save_snapshot() == []
    assert shown and words in shown[0][2]
    assert list(tmp_path.glob("snap*")) == [] and list(tmp_path.glob(".snap*")) == []
    monkeypatch.undo()
    window._ask_save_path = lambda *args: str(tmp_path / "snap.png")
    assert len(window.save_snapshot()) == 4  # what was in memory is saved on the next try


def test_a_path_too_long_is_refused_with_a_message(qtbot, window, tmp_path, monkeypatch):
    shown = []
    monkeypatch.setattr("inspector.main_window.show_error", lambda *a: shown.append(a))
    window._ask_save_path = lambda *args: str(tmp_path / ("x" * 300 + ".png"))
    assert window.save_snapshot() == []
    assert shown and "too long" in shown[0][2]


def test_nan_weights_pause_the_run_and_history_stays_browsable(qtbot, question_dataset):
    config = TrainingConfig(
        dtype="float32",
        pixel_scaling="raw",
        activation="leaky_relu",
        conv_init=InitSpec("uniform", {"low": 0, "high": 1}),
        classifier_init=InitSpec("uniform", {"low": 0, "high": 1}),
        learning_rate=1e12,
    )
    controller = SessionController(question_dataset, config)
    paused = []
    controller.paused_by_finding.connect(paused.append)
    controller.set_speed(0)
    controller.run()
    qtbot.waitUntil(lambda: not controller.is_running, timeout=10000)
    assert paused and paused[0].code == "non_finite"
    bad = controller.latest_iteration
    assert all(np.isfinite(controller.record(k).loss) for k in range(bad))
    fix = paused[0].fixes[0]
    assert fix.rewind_to == bad - 1
    controller.apply_fix(fix)
    assert controller.latest_iteration == bad - 1
    assert controller.config.learning_rate == pytest.approx(1e10)
    controller.shutdown()


@pytest.fixture
def question_dataset():
    return load_example("question")


def test_a_dead_training_process_is_reported_and_replaced(qtbot, monkeypatch):
    controller = SessionController(load_example("question"), preset_config("recommended"))
    try:
        errors_seen = []
        controller.error_occurred.connect(lambda *a: errors_seen.append(a))
        resets = []
        controller.session_reset.connect(resets.append)
        old = controller._client
        old._process.kill()
        old._process.join(5)
        controller.step()  # the request finds the process gone
        assert errors_seen and "training process" in errors_seen[0][0].lower()
        assert controller._client is not old and controller._client.alive
        assert resets and controller.latest_iteration == 0
        controller.step()
        qtbot.waitUntil(
            lambda: controller.latest_iteration == 1 and not controller.is_running, timeout=10000
        )
    finally:
        controller.shutdown()

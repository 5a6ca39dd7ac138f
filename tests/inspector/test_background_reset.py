"""A large new run starts in the background: the window goes on while the training process
makes its iteration 0, training waits for it, and what was asked meanwhile is not lost.

The limit (``BACKGROUND_RESET_VALUES``) is set to 0 so that the question's example counts as
large, and the server runs in a thread (``backend="thread"``) so that its reset can be held at
a gate until the test has looked at the window in the meantime."""

import threading

import numpy as np
import pytest
from PySide6.QtCore import QEvent, Qt
from PySide6.QtWidgets import QApplication, QDialog, QLabel, QMessageBox, QPushButton

from inspector import controller as controller_module
from inspector import main_window
from inspector.controller import SessionController
from inspector.tasks import BackgroundTask
from model.presets import preset_config


class _Gate(threading.Event):
    """Opened by the test; ``reached`` is set once the training process waits at it."""

    def __init__(self) -> None:
        super().__init__()
        self.reached = threading.Event()


def _hold(session, monkeypatch) -> _Gate:
    """Make ``session``'s resets and rewinds wait until the returned gate is opened."""
    gate = _Gate()
    for name in ("reset", "rewind"):
        method = getattr(session, name)

        def waiting(*args, _method=method, **kwargs):
            gate.reached.set()
            assert gate.wait(30), "the test never opened the gate"
            return _method(*args, **kwargs)

        monkeypatch.setattr(session, name, waiting)
    return gate


@pytest.fixture
def large_run(qtbot, question_dataset, monkeypatch):
    """A controller whose run counts as large: it starts, goes back and restarts aside."""
    monkeypatch.setattr(controller_module, "BACKGROUND_RESET_VALUES", 0)
    ctrl = SessionController(question_dataset, preset_config("recommended"), backend="thread")
    yield ctrl
    ctrl.shutdown()


@pytest.fixture
def held(large_run, monkeypatch):
    """A controller whose training process waits at ``gate`` before each reset and rewind."""
    gate = _hold(large_run.server.session, monkeypatch)
    yield large_run, gate
    gate.set()


def _failing_client(gate: threading.Event, made: list, failing: str):
    """A training client whose ``failing`` request fails once ``gate`` opens, its server gone."""

    class Failing(controller_module.TrainerClient):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

        def call(self, name, *args, **kwargs):
            if name == failing:
                assert gate.wait(30), "the test never opened the gate"
                self.close(timeout=1.0)
                raise controller_module.TrainerError("no memory for iteration 0", "trace")
            return super().call(name, *args, **kwargs)

    return Failing


@pytest.fixture
def failing_restarts(large_run, monkeypatch):
    """``fail(name)``: the training processes ``large_run`` starts from then on fail their
    ``name`` request once the gate it returns opens (at teardown at the latest); it returns
    ``(gate, made)``, ``made`` listing those processes."""
    gates = []

    def fail(name: str):
        gate, made = threading.Event(), []
        gates.append(gate)
        monkeypatch.setattr(controller_module, "TrainerClient", _failing_client(gate, made, name))
        return gate, made

    yield fail
    for gate in gates:
        gate.set()


def test_a_large_reset_leaves_the_window_free_and_training_waits(qtbot, held, step_and_wait):
    ctrl, gate = held
    step_and_wait(ctrl, 2)
    loading, starting, resets, rates = [], [], [], []
    ctrl.loading_changed.connect(loading.append)
    ctrl.run_starting.connect(starting.append)
    ctrl.session_reset.connect(resets.append)
    # What the training process has when the new run is announced (a compared run steps it
    # at once).
    ctrl.session_reset.connect(lambda _r: rates.append(ctrl.server.session.config.learning_rate))

    ctrl.reset()  # returns while the training process is still held at the gate
    assert ctrl.is_starting and ctrl.is_loading
    assert (loading, starting, resets) == ([True], [True], [])
    assert ctrl.latest_iteration == 2  # the old run is shown until the new one is there
    ctrl.step()
    ctrl.run()
    ctrl.rewind_to(1)
    assert not ctrl.is_running and ctrl.latest_iteration == 2
    # A live setting changed meanwhile is shown at once and applies to the new run.
    ctrl.update_live(learning_rate=0.003)
    assert ctrl.config.learning_rate == 0.003

    gate.set()
    # The new run, then the first update predicted again aside with the rate set meanwhile.
    qtbot.waitUntil(lambda: not ctrl.is_starting and len(starting) == 4, timeout=10000)
    assert (loading, starting) == ([True, False] * 2, [True, False] * 2)
    assert len(resets) == 1 and resets[0].iteration == 0
    assert ctrl.latest_iteration == 0
    assert ctrl.config.learning_rate == 0.003 and rates == [0.003]
    assert step_and_wait(ctrl).settings.learning_rate == 0.003


def test_the_window_says_it_is_starting_and_holds_its_actions(qtbot, show_window, held):
    ctrl, gate = held
    window = show_window(ctrl)
    ctrl.reset()
    for key in ("step", "step_epoch", "run", "reset", "reseed"):
        assert not window.actions[key].isEnabled(), key
    # A busy note holds the whole window meanwhile, from 0.2 s on; Escape does not take it
    # away; what was asked before it showed and would act on the old run is refused.
    dialog = window.findChild(QDialog, "startingDialog")
    assert dialog is not None and not dialog.isVisible()
    messages = []
    ctrl.status_message.connect(messages.append)
    ctrl.reseed()
    ctrl.apply_preset("seed")
    assert messages == ["Starting the new run is still under way; try again in a moment"] * 2
    assert ctrl.pending_config is None
    qtbot.waitUntil(dialog.isVisible, timeout=1000)
    assert dialog.isModal()
    assert dialog.findChild(QLabel, "startingText").text() == (
        "Starting the new run: computing iteration 0 on every image…"
    )
    qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    assert dialog.isVisible()
    data = window.data_view
    assert data._loading_row.isVisible()
    assert data._progress.format() == "Starting the new run…"
    assert not data._cancel_button.isEnabled()  # nothing to cancel: it is being computed
    gate.set()
    qtbot.waitUntil(lambda: not ctrl.is_starting, timeout=10000)
    assert all(window.actions[key].isEnabled() for key in ("step", "run", "reset"))
    assert not data._loading_row.isVisible()
    qtbot.waitUntil(lambda: window.findChild(QDialog, "startingDialog") is None)


def test_new_data_that_cannot_start_a_run_keeps_the_old_data_and_says_why(
    qtbot, held, shapes_dataset, monkeypatch
):
    ctrl, gate = held
    session = ctrl.server.session
    gate.set()

    def failing(*_args, **_kwargs):
        raise MemoryError("injected: no memory for the new run")

    monkeypatch.setattr(session, "reset", failing)
    errors = []
    ctrl.error_occurred.connect(lambda *args: errors.append(args))
    before = (ctrl.dataset, ctrl.dataset_source)
    assert ctrl.set_dataset(shapes_dataset, "somewhere") is True  # on its way
    qtbot.waitUntil(lambda: not ctrl.is_loading, timeout=10000)
    assert errors and errors[0][0] == "Could not start the run"
    assert "no memory for the new run" in errors[0][1]
    assert (ctrl.dataset, ctrl.dataset_source) == before


def test_closing_while_a_run_starts_waits_for_it_without_an_error(qtbot, held):
    ctrl, gate = held
    errors = []
    ctrl.error_occurred.connect(lambda *args: errors.append(args))
    ctrl.reset()
    task = ctrl._aside_task  # noqa: SLF001 - its thread must be over when shutdown returns
    threading.Timer(0.2, gate.set).start()
    ctrl.shutdown()  # returns once the run is made and the training process has quit
    assert task._thread.isFinished()  # noqa: SLF001
    assert not ctrl._client.alive  # noqa: SLF001
    qtbot.wait(50)
    assert errors == []


def test_what_was_asked_while_a_run_starts_applies_to_it_or_is_let_go(qtbot, held, step_and_wait):
    ctrl, gate = held
    step_and_wait(ctrl, 3)
    errors = []
    ctrl.error_occurred.connect(lambda *args: errors.append(args))
    ctrl.show_iteration(1)  # a pick of the old run: let go when the new one starts
    ctrl.reset()
    assert ctrl.picked_iteration is None
    ctrl.show_iteration(2)
    ctrl.set_speed(5.0)  # the training process is busy: it gets the speed afterwards
    assert ctrl.iterations_per_second == 5.0
    gate.set()
    qtbot.waitUntil(lambda: not ctrl.is_starting, timeout=10000)
    qtbot.wait(100)
    assert errors == []
    assert ctrl.server._iterations_per_second == 5.0  # noqa: SLF001
    assert ctrl.latest_iteration == 0 and ctrl.shown.iteration == 0


def test_a_kernel_that_does_not_fit_is_refused_in_words_and_the_run_goes_on(
    qtbot, held, step_and_wait
):
    from model.data import Dataset

    ctrl, gate = held
    gate.set()
    tiny = Dataset(np.zeros((2, 3, 4, 4), np.uint8), np.array([0, 1]), ("a", "b"), ("x", "y"))
    config = ctrl.config.with_changes(padding="valid", kernel_size=5)
    assert controller_module._map_values(config, tiny) == 0  # so it is not started aside
    errors = []
    ctrl.error_occurred.connect(lambda *args: errors.append(args))
    before = ctrl.dataset_source
    assert ctrl.start_over(config, tiny, "tiny") is False
    assert errors == [
        (
            "Could not start the run",
            "A 5x5 kernel with 'valid' padding does not fit a 4x4 image: use a kernel of at "
            "most 4, or 'same' padding.",
            "",  # (a refusal, not a failure: no traceback, nothing in errors.log)
        )
    ]
    assert ctrl.dataset_source == before
    # The training process kept the run too (it was left with the new images and no history,
    # and every Step failed after): both go on as they were.
    session = ctrl.server.session
    assert session.dataset is ctrl.dataset and session.config == ctrl.config
    step_and_wait(ctrl)
    assert len(errors) == 1 and ctrl.latest_iteration == 1


def test_images_the_weights_file_does_not_fit_are_refused_saying_how_to_go_on(
    qtbot, controller, tmp_path
):
    from model.data import Dataset
    from model.weights_file import read_weights

    weights = {"conv.weight": np.zeros((1, 3, 3, 3)), "classifier.weight": np.zeros(32 * 32)}
    np.savez(tmp_path / "mine.npz", **weights)
    config = controller.config.with_changes(initial_weights=read_weights(tmp_path / "mine.npz"))
    assert controller.start_over(config) is True
    errors = []
    controller.error_occurred.connect(lambda *args: errors.append(args))
    small = Dataset(np.zeros((2, 3, 16, 16), np.uint8), np.array([0, 1]), ("a", "b"), ("x", "y"))
    assert controller.start_over(config, small, "small") is False
    assert errors == [
        (
            "Could not start the run",
            "The weights file mine.npz has 1,024 classifier weights (made for 32×32 maps?); 1 "
            "filter × 16×16 outputs "
            "(16×16 images, 'same' padding) need 256. Clear the weights file (Setup → Initial "
            "weights) to draw the weights instead.",
            "",
        )
    ]
    assert controller.dataset.size == (32, 32) and controller.config == config


def test_a_compared_run_starting_in_the_background_catches_up_when_it_is_there(
    qtbot, question_dataset, monkeypatch, step_and_wait
):
    from inspector.compare import ComparisonLink

    monkeypatch.setattr(controller_module, "BACKGROUND_RESET_VALUES", 0)
    leader = SessionController(question_dataset, preset_config("recommended"), backend="thread")
    follower = SessionController(question_dataset, preset_config("seed"), backend="thread")
    gate = _hold(follower.server.session, monkeypatch)
    link = ComparisonLink(leader, follower)
    try:
        leader.reset()
        qtbot.waitUntil(lambda: follower.is_starting, timeout=10000)
        step_and_wait(leader, 2)  # the follower cannot follow while it starts
        assert follower.is_starting
        leader.reseed()  # again while the follower still starts: it follows once it can
        qtbot.waitUntil(lambda: not leader.is_starting, timeout=10000)
        step_and_wait(leader, 2)
        gate.set()
        qtbot.waitUntil(
            lambda: (
                follower.latest_iteration == 2
                and not follower.is_running
                and follower.config.seed == leader.config.seed
            ),
            timeout=15000,
        )
    finally:
        gate.set()
        link.disconnect_all()
        leader.shutdown()
        follower.shutdown()


def test_going_back_on_a_large_run_is_done_aside_too(qtbot, show_window, held, step_and_wait):
    ctrl, gate = held
    gate.set()
    step_and_wait(ctrl, 3)
    gate.clear()
    window = show_window(ctrl)
    went_back = []
    ctrl.history_changed.connect(went_back.append)

    ctrl.rewind_to(1)  # as "Continue from here" or a fix that rewinds would
    assert ctrl.is_starting and ctrl.starting_text[0] == "Going back to iteration 1"
    assert window.data_view._progress.format() == "Going back to iteration 1…"
    note = window.findChild(QDialog, "startingDialog")
    qtbot.waitUntil(note.isVisible, timeout=1000)
    assert note.windowTitle() == "Going back to iteration 1"
    ctrl.update_live(learning_rate=0.004)  # the fix's new learning rate, meanwhile
    assert ctrl.latest_iteration == 3

    gate.set()
    qtbot.waitUntil(lambda: not ctrl.is_starting, timeout=10000)
    assert went_back == [1] and ctrl.latest_iteration == 1 and ctrl.shown.iteration == 1
    assert ctrl.server.session.config.learning_rate == 0.004
    assert step_and_wait(ctrl).settings.learning_rate == 0.004


def test_quit_on_the_note_closes_the_window_while_a_run_starts(qtbot, show_window, held):
    ctrl, gate = held
    window = show_window(ctrl)
    ctrl.reset()
    note = window.findChild(QDialog, "startingDialog")
    qtbot.waitUntil(note.isVisible, timeout=1000)
    # A thread server cannot be ended at once (a training process is): let it finish.
    threading.Timer(0.2, gate.set).start()
    qtbot.mouseClick(note.findChild(QPushButton, "startingQuit"), Qt.MouseButton.LeftButton)
    assert not window.isVisible()
    assert window.findChild(QDialog, "startingDialog") is None or not note.isVisible()


def test_a_dead_training_process_is_replaced_aside_on_a_large_run(
    qtbot, show_window, question_dataset, monkeypatch, step_and_wait
):
    monkeypatch.setattr(controller_module, "BACKGROUND_RESET_VALUES", 0)
    monkeypatch.setattr(main_window, "STARTING_NOTE_DELAY_MS", 0)  # a new process is quick
    ctrl = SessionController(question_dataset, preset_config("recommended"))
    try:
        window = show_window(ctrl)
        step_and_wait(ctrl, 2)
        errors, resets, starting, messages = [], [], [], []
        ctrl.error_occurred.connect(lambda *args: errors.append(args))
        ctrl.session_reset.connect(resets.append)
        ctrl.run_starting.connect(starting.append)
        ctrl.status_message.connect(messages.append)
        narrowest = window.data_view.minimumSizeHint().width()
        old = ctrl._client
        old._process.kill()
        old._process.join(5)
        ctrl.step()  # finds the process gone
        # The Data panel says it too, its long detail wrapped rather than widening the panel
        # (and the Setup panel with it).
        assert window.data_view._progress_detail.text().startswith("The training process stopped")
        QApplication.processEvents()  # the layouts take the new text
        assert window.data_view.minimumSizeHint().width() <= narrowest
        assert errors and "training process" in errors[0][0].lower()
        # The new process makes its iteration 0 while the window goes on.
        assert ctrl._client is not old and ctrl.is_starting and starting == [True]
        assert not resets and ctrl.latest_iteration == 2
        assert ctrl.starting_text[0] == "Restarting training"
        ctrl.step()  # waits, as the Step button does
        ctrl.reseed()
        assert messages[-1] == "Restarting training is still under way; try again in a moment"
        assert not ctrl.is_running and ctrl.is_starting
        seen = []

        def note_seen():
            dialog = window.findChild(QDialog, "startingDialog")
            if dialog is not None and dialog.isVisible():
                seen.append(dialog.findChild(QLabel, "startingText").text())
            return bool(seen) or not ctrl.is_starting

        qtbot.waitUntil(note_seen, timeout=5000)
        assert seen[0] == (
            "Restarting training: the training process stopped; computing iteration 0 on every "
            "image again…"
        )
        qtbot.waitUntil(lambda: not ctrl.is_starting, timeout=30000)
        assert starting == [True, False] and len(errors) == 1
        assert len(resets) == 1 and ctrl.latest_iteration == 0 and ctrl._client.alive
        assert messages[-1] == "Training restarted from iteration 0"
        # The "Training stopped" dialog, covered by the note, is in front to be answered.
        (box,) = [b for b in window.findChildren(QMessageBox, "errorDialog") if b.isVisible()]
        qtbot.waitUntil(lambda: QApplication.activeWindow() is box, timeout=2000)
        # An error left open from before does not jump in front at the next busy note.
        qtbot.wait(int(main_window.NOTE_ERROR_SECONDS * 1000) + 100)
        window.activateWindow()
        qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=2000)
        ctrl.reset()
        qtbot.waitUntil(lambda: not ctrl.is_starting, timeout=30000)
        qtbot.wait(50)
        assert box.isVisible() and QApplication.activeWindow() is not box
        step_and_wait(ctrl, 1)
        assert ctrl.latest_iteration == 1
    finally:
        ctrl.shutdown()


def test_a_new_training_process_that_cannot_start_is_reported_and_not_replaced_again(
    qtbot, large_run, failing_restarts
):
    ctrl = large_run
    errors = []
    ctrl.error_occurred.connect(lambda *args: errors.append(args))
    gate, made = failing_restarts("state")
    gate.set()
    ctrl._restart()
    qtbot.waitUntil(lambda: not ctrl.is_starting, timeout=10000)
    assert len(made) == 1 and not ctrl._client.alive
    assert errors == [("Could not restart training", "no memory for iteration 0", "trace")]


def test_a_request_failing_while_a_run_starts_leaves_the_process_to_the_start(
    qtbot, held, step_and_wait, monkeypatch
):
    ctrl, gate = held
    step_and_wait(ctrl, 2)
    client = ctrl._client
    ctrl.reset()
    assert ctrl.is_starting
    # The start's own call is in the training process before this test's request fails.
    qtbot.waitUntil(gate.reached.is_set, timeout=5000)
    errors = []
    ctrl.error_occurred.connect(lambda *args: errors.append(args))

    def gone(*args, **kwargs):
        raise controller_module.TrainerError("the training process is gone")

    # Gone as this thread sees it. (Not for the start's thread: its call, waiting for the
    # held reset, polls ``alive`` too, and failed when it looked during this block.)
    on_this_thread = threading.current_thread()
    with monkeypatch.context() as patch:
        patch.setattr(client, "call", gone)
        patch.setattr(
            controller_module.TrainerClient,
            "alive",
            property(lambda self: threading.current_thread() is not on_this_thread),
        )
        with pytest.raises(controller_module.TrainerError):
            ctrl.record(1)
    assert errors and ctrl._client is client  # not replaced in the middle of the start
    gate.set()
    qtbot.waitUntil(lambda: not ctrl.is_starting, timeout=10000)
    assert ctrl._client is client and ctrl.latest_iteration == 0


@pytest.mark.parametrize("meanwhile", ["speed", "live setting"])
def test_a_failed_restart_keeps_what_was_changed_meanwhile_without_restarting_again(
    qtbot, large_run, failing_restarts, meanwhile
):
    ctrl = large_run
    errors, starting = [], []
    ctrl.error_occurred.connect(lambda *args: errors.append(args[0]))
    ctrl.run_starting.connect(starting.append)
    gate, made = failing_restarts("state")
    ctrl._restart()
    assert ctrl.is_starting
    if meanwhile == "speed":
        ctrl.set_speed(5.0)
    else:
        ctrl.update_live(learning_rate=0.003)
    gate.set()
    qtbot.waitUntil(lambda: not ctrl.is_starting, timeout=10000)
    qtbot.wait(200)  # a second restart would have begun by now
    assert len(made) == 1 and errors == ["Could not restart training"]
    assert starting == [True, False]
    # Kept for the process that replaces this one.
    if meanwhile == "speed":
        assert ctrl._iterations_per_second == 5.0
    else:
        assert ctrl.config.learning_rate == 0.003


def test_a_new_process_that_dies_after_its_iteration_0_is_reported_from_the_restart(
    qtbot, large_run, failing_restarts
):
    ctrl = large_run
    errors, resets = [], []
    ctrl.error_occurred.connect(lambda *args: errors.append(args[0]))
    ctrl.session_reset.connect(resets.append)
    gate, made = failing_restarts("speed")
    gate.set()
    ctrl._restart()  # no exception may escape the slot that ends the restart (pytest-qt)
    qtbot.waitUntil(lambda: not ctrl.is_starting, timeout=10000)
    assert errors == ["Could not restart training"] and len(made) == 1
    assert len(resets) == 1 and ctrl.latest_iteration == 0  # the views show what it made


def test_a_new_rate_at_iteration_0_of_a_large_run_is_predicted_aside(
    qtbot, question_dataset, monkeypatch
):
    """Before the first Step a new learning rate makes the warning about the first update
    again: on a large run aside, the window free meanwhile."""
    monkeypatch.setattr(controller_module, "BACKGROUND_RESET_VALUES", 0)
    ctrl = SessionController(question_dataset, preset_config("seed"), backend="thread")
    try:
        starting = []
        ctrl.run_starting.connect(starting.append)
        assert "first_update_kills" in {f.code for f in ctrl.shown.findings}
        ctrl.update_live(learning_rate=5e-8)
        assert ctrl.config.learning_rate == 5e-8  # at once
        qtbot.waitUntil(lambda: starting == [True, False], timeout=10000)
        assert ctrl.latest_iteration == 0
        assert "first_update_kills" not in {f.code for f in ctrl.shown.findings}
    finally:
        ctrl.shutdown()


def test_a_rate_changed_while_the_first_update_is_predicted_is_not_lost(
    qtbot, question_dataset, monkeypatch
):
    """A reviewer's case: ÷10 pressed twice on a large run at iteration 0. The second rate came
    while the first was being predicted aside; it was shown, but never sent: Step then trained
    with the first."""
    monkeypatch.setattr(controller_module, "BACKGROUND_RESET_VALUES", 0)
    ctrl = SessionController(question_dataset, preset_config("seed"), backend="thread")
    gate = _Gate()
    session = ctrl.server.session
    predict = session.predict_first_update

    def held():
        gate.reached.set()
        assert gate.wait(30), "the test never opened the gate"
        return predict()

    monkeypatch.setattr(session, "predict_first_update", held)
    try:
        ctrl.update_live(learning_rate=5e-8)
        qtbot.waitUntil(gate.reached.is_set, timeout=10000)
        ctrl.update_live(learning_rate=0.25)  # while the first is predicted
        assert ctrl.config.learning_rate == 0.25
        gate.set()
        qtbot.waitUntil(
            lambda: not ctrl.is_starting and session.config.learning_rate == 0.25, timeout=10000
        )
        qtbot.waitUntil(lambda: not ctrl.is_starting, timeout=10000)
        (kills,) = [f for f in ctrl.shown.findings if f.code == "first_update_kills"]
        assert "= -0.2500 ×" in kills.explanation  # predicted with the rate Step will use
    finally:
        gate.set()
        ctrl.shutdown()


def test_shutdown_leaves_no_ended_task_to_be_deleted_later(qtbot, question_dataset):
    """A task that ended is deleted later, and its handlers' closures hold the controller. One
    still waiting to be deleted after shutdown kept a dropped controller alive, and deleting
    it then deleted the controller, which deleted the task a second time: the crash of the
    test process seen after this file's aside tests ("shared QObject was deleted directly")."""
    ctrl = SessionController(question_dataset, preset_config("seed"), backend="thread")
    ended = []

    def on_ended(held=ctrl) -> None:  # (holds the controller, as the handlers' closures do)
        ended.append(held)

    task = BackgroundTask(lambda _progress, _cancelled: None, ctrl)
    task.ended.connect(on_ended)
    task.start()
    qtbot.waitUntil(lambda: bool(ended), timeout=10000)
    task.deleteLater()  # (as the controller's handlers do; not yet done)
    assert task in ctrl.findChildren(BackgroundTask)
    ctrl.shutdown()
    assert ctrl.findChildren(BackgroundTask) == []
    ended.clear()
    del ctrl, task, on_ended
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    QApplication.processEvents()


def test_images_loaded_as_the_window_closes_start_no_run(qtbot, question_dataset, monkeypatch):
    """A load whose result is delivered by shutdown (it ended as the window closed) starts no
    new run on the training process that shutdown has just closed (a review)."""
    monkeypatch.setattr(controller_module, "BACKGROUND_RESET_VALUES", 0)
    ctrl = SessionController(question_dataset, preset_config("seed"), backend="thread")
    ctrl._load(lambda _progress, _cancelled: question_dataset, "folder")
    assert ctrl._load_task.wait(5000)  # (its result queued, not delivered yet)
    starting = []
    ctrl.run_starting.connect(starting.append)
    ctrl.shutdown()
    assert starting == []
    assert not ctrl.is_loading and not ctrl.is_starting
    assert ctrl.findChildren(BackgroundTask) == []

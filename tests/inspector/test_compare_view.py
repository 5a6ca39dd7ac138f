"""Side by side: a second run moves in lockstep with the main one, with shared colour scales."""

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtWidgets import QToolBar, QWidget

from inspector.views.compare import CompareView
from inspector.views.filters import NO_UPDATE_MESSAGE, NO_UPDATE_SHORTER, FiltersView
from model.presets import PRESETS


@pytest.fixture
def view(qtbot, controller):
    widget = CompareView(controller)
    qtbot.addWidget(widget)
    widget.resize(1200, 800)
    widget.show()
    yield widget
    widget.shutdown()


def start(qtbot, view):
    qtbot.mouseClick(view.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.is_open, timeout=15000)


def caught_up(qtbot, view, iteration):
    qtbot.waitUntil(
        lambda: view.follower.latest_iteration == iteration and not view.follower.is_running,
        timeout=15000,
    )


def test_the_default_second_run_is_the_other_preset_with_the_same_seed(qtbot, view, controller):
    assert view.choice.currentData() == "recommended"  # the main run uses 'seed'
    start(qtbot, view)
    follower = view.follower
    expected = PRESETS["recommended"].config.with_changes(seed=controller.config.seed)
    assert follower.config == expected
    assert follower.dataset is controller.dataset


def test_steps_move_both_and_show_the_difference(qtbot, view, controller, step_and_wait):
    start(qtbot, view)
    step_and_wait(controller, times=2)
    caught_up(qtbot, view, 2)
    assert controller.shown.dead_fraction == 1.0  # the question's setup: dead
    assert view.follower.shown.dead_fraction < 1.0  # the fix: alive
    # Same images in the same order: both updates were made on the same image.
    assert view.follower.shown.batch == controller.shown.batch
    a, b = view._columns
    assert a.filters.current_limits() == b.filters.current_limits()
    assert a.maps.current_limits() == b.maps.current_limits()
    # The shared scale is the larger of the two: the dead filter's -65,000 sets it.
    limit = a.filters.current_limits()["weights"]
    assert limit == pytest.approx(np.abs(controller.shown.params["conv.weight"]).max())
    # Run A's outputs are all 0: they do not impose a made-up scale on run B's.
    output_limit = b.maps.current_limits()["output"]
    assert output_limit == pytest.approx(view.follower.shown.activation.max())


def test_history_reset_and_rewind_move_both(qtbot, view, controller, step_and_wait):
    start(qtbot, view)
    step_and_wait(controller, times=3)
    caught_up(qtbot, view, 3)
    controller.show_iteration(1)
    assert view.follower.picked_iteration == 1  # asked for at once, alongside the leader's
    qtbot.waitUntil(lambda: controller.shown.iteration == 1 == view.follower.shown.iteration)
    controller.follow_latest()
    assert view.follower.shown.iteration == 3
    controller.rewind_to(2)
    caught_up(qtbot, view, 2)
    controller.reseed()
    qtbot.waitUntil(lambda: view.follower.config.seed == controller.config.seed, timeout=10000)
    assert view.follower.latest_iteration == 0


def test_closing_ends_the_second_run(qtbot, view, controller, step_and_wait):
    start(qtbot, view)
    follower = view.follower
    client = follower._client
    step_and_wait(controller)
    qtbot.mouseClick(view.close_button, Qt.MouseButton.LeftButton)
    assert not view.is_open
    qtbot.waitUntil(lambda: not client.alive, timeout=10000)
    assert view.plot_items() == {}
    # The main run goes on without the closed comparison's parts (they stayed connected to
    # it and raised "Internal C++ object already deleted" at each Step and Reset).
    qtbot.wait(50)  # (the parts deleted)
    step_and_wait(controller)
    controller.reset()
    controller.update_live(learning_rate=0.1)


def test_the_second_run_starts_while_the_window_goes_on(qtbot, view, controller, step_and_wait):
    """Its training process starts in the background (0.8 s): the window is not held, says
    what it waits for, and the main run may move meanwhile; the second run catches up."""
    qtbot.mouseClick(view.start_button, Qt.MouseButton.LeftButton)
    assert view.is_starting and not view.is_open
    assert not view.start_button.isEnabled() and view.close_button.isEnabled()
    assert view.note.text() == "Starting the second run's training process…"
    step_and_wait(controller)  # while it starts
    qtbot.waitUntil(lambda: view.is_open, timeout=15000)
    caught_up(qtbot, view, 1)
    assert not view.is_starting and view.start_button.isEnabled()
    assert view.start_button.text() == "Restart second run"
    assert view.follower.shown.batch == controller.shown.batch


def test_a_new_seed_while_the_second_run_starts_is_followed(qtbot, view, controller):
    qtbot.mouseClick(view.start_button, Qt.MouseButton.LeftButton)
    controller.reseed()
    qtbot.waitUntil(lambda: view.is_open, timeout=15000)
    qtbot.waitUntil(lambda: view.follower.config.seed == controller.config.seed, timeout=15000)
    caught_up(qtbot, view, 0)


@pytest.mark.parametrize("how", ["close", "shutdown"])
def test_closing_while_the_second_run_starts_ends_its_process(qtbot, view, how, monkeypatch):
    from inspector.views import compare

    started = []

    class Recorded(compare.TrainerClient):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            started.append(self)

    monkeypatch.setattr(compare, "TrainerClient", Recorded)
    qtbot.mouseClick(view.start_button, Qt.MouseButton.LeftButton)
    if how == "close":
        qtbot.mouseClick(view.close_button, Qt.MouseButton.LeftButton)
        assert not view.close_button.isEnabled()
        qtbot.waitUntil(lambda: not view.is_starting, timeout=15000)
    else:
        view.shutdown()
        assert not view.is_starting
    assert not view.is_open and view.follower is None
    assert len(started) == 1
    qtbot.waitUntil(lambda: not started[0].alive, timeout=10000)
    assert view.start_button.isEnabled() and view.start_button.text() == "Start second run"


def test_a_second_run_that_cannot_start_says_why(qtbot, view, monkeypatch):
    from inspector.views import compare

    def broken(*_args, **_kwargs):
        raise OSError("no more processes")

    monkeypatch.setattr(compare, "TrainerClient", broken)
    qtbot.mouseClick(view.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not view.is_starting, timeout=15000)
    assert not view.is_open
    assert view.note.text() == "The second run could not start: no more processes"
    assert view.start_button.isEnabled()


def assert_message_whole_or_hidden(filters: FiltersView, name: str) -> bool:
    """The no-update message of ``name`` lies wholly inside its view box, or is hidden; returns
    whether it is shown."""
    message = filters._groups[name].message  # noqa: SLF001
    if not message.isVisible():
        return False
    assert message.textItem.toPlainText() in (NO_UPDATE_MESSAGE, *NO_UPDATE_SHORTER)
    box = filters.plot(name).vb.sceneBoundingRect()
    text = message.mapRectToScene(message.textItem.mapRectToParent(message.textItem.boundingRect()))
    assert box.adjusted(-0.5, -0.5, 0.5, 0.5).contains(text), (name, text, box)
    return True


def test_the_no_update_message_is_never_cut_in_a_compared_column(qtbot, view):
    start(qtbot, view)
    qtbot.wait(100)  # the columns' strips get their sizes
    for column in view._columns:
        for name in ("gradient", "update"):
            assert column.filters.message_visible(name) == assert_message_whole_or_hidden(
                column.filters, name
            )


def filters_at(qtbot, controller, width: int, height: int) -> tuple[QWidget, FiltersView]:
    """A Filters view as a child given ``width`` × ``height``, smaller than it would ask for
    (as in a squeezed column of the comparison), and the window holding it."""
    box = QWidget()
    qtbot.addWidget(box)
    box.resize(800, 500)
    filters = FiltersView(controller, box)
    filters.setGeometry(0, 0, width, height)
    box.show()
    qtbot.waitExposed(box)
    qtbot.wait(50)
    return box, filters


@pytest.mark.parametrize("size", [(631, 366), (400, 300), (300, 300), (260, 300), (230, 300)])
def test_the_no_update_message_is_shortened_then_hidden_never_cut(qtbot, controller, size):
    _box, filters = filters_at(qtbot, controller, *size)
    shown = [assert_message_whole_or_hidden(filters, n) for n in ("gradient", "update")]
    if size == (631, 366):  # the Filters panel at 1280×800: the whole message, as before
        assert all(shown)
        assert filters._groups["gradient"].message.textItem.toPlainText() == NO_UPDATE_MESSAGE
    if size == (230, 300):  # a 62×21 mosaic: not even 'F10' fits, so none is shown
        assert not any(shown)


def test_a_hidden_message_comes_back_when_there_is_room_and_goes_after_a_step(
    qtbot, controller, step_and_wait
):
    _box, filters = filters_at(qtbot, controller, 230, 300)
    assert not filters.message_visible("gradient")
    filters.setGeometry(0, 0, 631, 366)
    qtbot.waitUntil(lambda: filters.message_visible("gradient"))
    assert filters._groups["gradient"].message.textItem.toPlainText() == NO_UPDATE_MESSAGE
    step_and_wait(controller)
    assert not filters.message_visible("gradient")
    assert not filters.message_visible("update")


def iteration_ticks(plot) -> list[float]:
    axis = plot.getAxis("bottom")
    low, high = plot.vb.viewRange()[0]
    return [v for _spacing, values in axis.tickValues(low, high, axis.width()) for v in values]


@pytest.mark.parametrize("steps", [0, 1, 2])
def test_the_compared_curves_count_whole_iterations_from_0(
    qtbot, view, controller, step_and_wait, steps
):
    start(qtbot, view)
    if steps:
        step_and_wait(controller, times=steps)
        caught_up(qtbot, view, steps)
    view.curves.redraw()
    qtbot.wait(50)
    for plot in (view.curves.loss_plot, view.curves.dead_plot):
        axis = plot.getAxis("bottom")
        # No SI prefix: pyqtgraph wrote 'iteration (x0.001)' under a range around 0.
        assert axis.labelString() == axis.labelString().split("(")[0]
        assert "iteration" in axis.labelString()
        low, high = plot.vb.viewRange()[0]
        assert -1 < low <= 0 and 10 <= high < 12  # 0..10 early on, as in the Curves panel
        ticks = iteration_ticks(plot)
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
    # Each run's single point at iteration 0 is drawn (a line of one point is not).
    a_loss = view.curves.curves[("loss", "A")]
    assert a_loss.opts["symbol"] is not None
    assert list(a_loss.getData()[0]) == list(range(steps + 1))


def test_the_compared_curves_follow_a_long_run_with_whole_iterations(qtbot, view, controller):
    start(qtbot, view)
    plot = view.curves.loss_plot
    plot.vb.setXRange(0, 3000, padding=0)
    qtbot.wait(20)
    ticks = iteration_ticks(plot)
    assert ticks and all(float(t).is_integer() for t in ticks)
    assert "(" not in plot.getAxis("bottom").labelString()  # no '(k)' or 'x1e+03'
    plot.vb.setXRange(0.2, 1.4, padding=0)  # zoomed in: still no tick between iterations
    qtbot.wait(20)
    assert all(float(t).is_integer() for t in iteration_ticks(plot))


def test_the_note_names_the_button_to_press(qtbot, view):
    assert view.start_button.text() in view.note.text()


def global_rect(widget) -> QRect:
    return QRect(widget.mapToGlobal(widget.rect().topLeft()), widget.size())


def test_side_by_side_leaves_the_toolbar_and_history_bar_in_reach(qtbot, window):
    """Opened with Ctrl+K it lies over the panels, not over the controls that move both runs,
    and starting the second run does not make it grow over them."""
    window.resize(1280, 800)
    qtbot.wait(50)
    qtbot.keyClick(window, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier)
    dock = window.docks["compare"]
    qtbot.waitUntil(dock.isVisible)
    view = window.created_view("compare")
    toolbar = window.findChild(QToolBar, "trainingToolbar")
    history = window.docks["history"]
    controls = {"toolbar": global_rect(toolbar), "history": global_rect(history)}

    def assert_clear() -> None:
        panel = dock.frameGeometry()
        for name, rect in controls.items():
            assert not panel.intersects(rect), (name, panel, rect)
        assert panel.height() > 500 and panel.width() >= 1200  # room for two runs

    assert_clear()
    start(qtbot, view)
    qtbot.waitUntil(lambda: not view.follower.is_running, timeout=15000)
    qtbot.wait(100)
    assert_clear()
    # Each run's ReLU outputs keep room for their maps and labels (the comparison scrolls).
    from inspector.views.compare import MAPS_MIN_HEIGHT

    assert all(column.maps.height() >= MAPS_MIN_HEIGHT for column in view._columns)
    # Step in the toolbar moves both runs.
    step = toolbar.widgetForAction(window.actions["step"])
    qtbot.mouseClick(step, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.follower.latest_iteration == 1, timeout=15000)
    # Closing the second run puts the panel away; Ctrl+K brings it back.
    qtbot.mouseClick(view.close_button, Qt.MouseButton.LeftButton)
    assert not view.is_open and not dock.isVisible()
    qtbot.keyClick(window, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(dock.isVisible)
    assert_clear()


def test_the_side_by_side_panel_follows_the_window_unless_moved(qtbot, window):
    """A learner's review: opened at 1920 pixels, the floating panel stayed 1920 wide over a
    window made 1280, hiding run B, the History bar and the status bar."""
    window.resize(1600, 1000)
    qtbot.wait(50)
    qtbot.keyClick(window, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier)
    dock = window.docks["compare"]
    qtbot.waitUntil(dock.isVisible)
    qtbot.wait(200)  # (placed again once the frame is there)
    window.resize(1280, 800)
    history = global_rect(window.docks["history"])
    qtbot.waitUntil(lambda: dock.frameGeometry().width() <= 1280, timeout=3000)
    assert not dock.frameGeometry().intersects(history)
    assert global_rect(window).contains(dock.frameGeometry())
    # Moved by the user: it stays where they put it.
    qtbot.wait(200)
    dock.move(dock.pos() + QPoint(40, 0))
    moved = dock.geometry()
    window.resize(1200, 780)
    qtbot.wait(100)
    assert dock.geometry() == moved


def test_closing_the_window_while_the_process_is_being_made_ends_it(qtbot, view, monkeypatch):
    """A review: closing while the second run's training process was still being made gave up
    waiting after 5 s and left it to start behind the closed window, never ended."""
    import time

    from inspector.views import compare

    made = []

    class Slow(compare.TrainerClient):
        def __init__(self, *args, **kwargs):
            time.sleep(5.5)  # (a large dataset to send, a busy machine: over 5 s)
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(compare, "TrainerClient", Slow)
    qtbot.mouseClick(view.start_button, Qt.MouseButton.LeftButton)
    qtbot.wait(100)  # (being made)
    view.shutdown()
    assert not view.is_starting and view.follower is None
    assert len(made) == 1
    qtbot.waitUntil(lambda: not made[0].alive, timeout=10000)


def test_a_preset_run_b_takes_run_as_settings_from_is_named_as_such():
    """A newcomer picked "The question's setup (fails)" beside the Shapes preset and read
    "Run B · custom settings": run B takes run A's seed, update mode and sample order."""
    from inspector.compare import follower_config
    from inspector.views.compare import preset_title
    from model.presets import PRESETS, preset_config

    leader = preset_config("shapes")
    second = follower_config(leader, PRESETS["seed"].config)
    assert preset_title(second, follower=True) == (
        "The question's setup (fails), with run A's update mode"
    )
    assert preset_title(second) == "custom settings"  # (run A's own title: no run A to take from)
    assert preset_title(follower_config(leader, leader), follower=True) == PRESETS["shapes"].title
    custom = follower_config(leader, PRESETS["seed"].config.with_changes(learning_rate=0.3))
    assert preset_title(custom, follower=True) == "custom settings"


def test_the_note_says_while_run_b_catches_up(qtbot, view, controller):
    """Started after run A has trained, run B makes the same iterations first: a newcomer saw
    it count up from 285 to 1,144 with no word of why."""
    controller.run_steps(3000)
    qtbot.waitUntil(lambda: controller.latest_iteration == 3000, timeout=30000)
    qtbot.waitUntil(lambda: not controller.is_running, timeout=10000)
    qtbot.mouseClick(view.start_button, Qt.MouseButton.LeftButton)
    seen = []

    def note_seen() -> bool:
        seen.append(view.note.text())
        return view.is_open and "catching up" in seen[-1]

    qtbot.waitUntil(note_seen, timeout=15000)
    assert "of 3,000" in seen[-1] and "Run B is catching up with run A" in seen[-1]
    caught_up(qtbot, view, 3000)
    assert view.note.text().startswith("Both runs use the same images")
    # Run A's new iterations are followed as before: no catching-up note for them.
    controller.step()
    caught_up(qtbot, view, 3001)
    assert "catching up" not in view.note.text()


def test_a_reset_of_run_a_ends_the_catching_up_note(qtbot, view, controller):
    controller.run_steps(3000)
    qtbot.waitUntil(lambda: controller.latest_iteration == 3000, timeout=30000)
    qtbot.waitUntil(lambda: not controller.is_running, timeout=10000)
    start(qtbot, view)
    controller.reset()
    qtbot.waitUntil(lambda: controller.latest_iteration == 0, timeout=10000)
    qtbot.waitUntil(lambda: view.follower.latest_iteration == 0, timeout=15000)
    assert "catching up" not in view.note.text()


def test_a_plain_wheel_over_the_compared_curves_scrolls_the_panel(
    qtbot, view, controller, step_and_wait, turn_wheel
):
    """A teacher scrolling the panel down with the wheel zoomed both curves out (the ReLU axis
    read -10..0). As everywhere else, only Ctrl+wheel zooms."""
    start(qtbot, view)
    step_and_wait(controller, times=3)
    caught_up(qtbot, view, 3)
    view.resize(1200, 420)  # the runs and the curves do not fit: the panel scrolls
    scroll = view.findChild(object, "compareScroll").verticalScrollBar()
    qtbot.waitUntil(lambda: scroll.maximum() > 0)
    scroll.setValue(0)
    curves = view.curves
    ranges = [plot.vb.viewRange() for plot in (curves.loss_plot, curves.dead_plot)]
    point = curves.mapFromScene(curves.dead_plot.vb.sceneBoundingRect().center())
    turn_wheel(curves.viewport(), point, -2)
    assert [plot.vb.viewRange() for plot in (curves.loss_plot, curves.dead_plot)] == ranges
    assert scroll.value() > 0
    turn_wheel(curves.viewport(), point, -1, Qt.KeyboardModifier.ControlModifier)
    assert curves.dead_plot.vb.viewRange() != ranges[1]  # Ctrl+wheel still zooms

"""Side by side: a second run moves in lockstep with the main one, with shared colour scales."""

import numpy as np
import pytest
from PySide6.QtCore import Qt

from inspector.views.compare import CompareView
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
    assert view.is_open


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


def test_closing_ends_the_second_run(qtbot, view):
    start(qtbot, view)
    follower = view.follower
    client = follower._client
    qtbot.mouseClick(view.close_button, Qt.MouseButton.LeftButton)
    assert not view.is_open
    qtbot.waitUntil(lambda: not client.alive, timeout=10000)
    assert view.plot_items() == {}

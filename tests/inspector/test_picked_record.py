"""Picking a past iteration never makes the window wait: a thinned iteration is recomputed in the
training process while the window goes on, and anything else the window asks for interrupts it.

The server runs in a thread here (``backend="thread"``) so that the tests can slow down and
count its replayed updates.
"""

import threading
import time

import numpy as np
import pytest

from inspector.controller import SessionController
from inspector.views.history import HistoryView
from model.presets import preset_config

#: Each replayed update is slowed down to this (seconds): a recomputation of 30 updates takes
#: about a second, as a large model's would.
SLOW_UPDATE = 0.03


@pytest.fixture
def thinned(qtbot, shapes_dataset):
    """A controller whose history had to drop iterations (80 shapes, a 4 MB budget), with its
    server's updates slowed down and counted from then on."""
    config = preset_config("recommended", history_budget_mb=4)
    controller = SessionController(shapes_dataset, config, backend="thread")
    with qtbot.waitSignal(controller.running_changed, check_params_cb=lambda r: not r):
        controller.run_steps(300)
    session = controller.server.session
    updates = []
    advance = session._advance

    def slow_advance(*args, **kwargs):
        updates.append(threading.current_thread().name)
        time.sleep(SLOW_UPDATE)
        return advance(*args, **kwargs)

    session._advance = slow_advance
    controller.updates = updates
    yield controller
    controller.shutdown()


def dropped(controller, at_least: int) -> int:
    """An iteration the history dropped whose recomputation replays ``at_least`` updates."""
    history = controller.server.session.history
    for k in range(controller.latest_iteration - 1, 0, -1):
        if history.stored(k) is None and k - history.latest_restorable(k).iteration >= at_least:
            return k
    raise AssertionError(f"no dropped iteration needs {at_least} updates")


def kept(controller) -> int:
    """An iteration the history can give without replaying an update (at most its maps are
    recomputed)."""
    history = controller.server.session.history
    return next(
        k
        for k in range(controller.latest_iteration - 1, 0, -1)
        if history.latest_restorable(k).iteration == k
    )


def assert_same_arrays(a, b):
    assert a.iteration == b.iteration
    for group in ("params", "grads", "update"):
        for key, value in getattr(a, group).items():
            np.testing.assert_array_equal(value, getattr(b, group)[key])
    np.testing.assert_array_equal(a.activation, b.activation)


def test_a_thinned_iteration_arrives_later_without_the_window_waiting(qtbot, thinned):
    controller = thinned
    target = dropped(controller, at_least=10)
    before = controller.shown
    announced, shown = [], []
    controller.recomputing.connect(announced.append)
    controller.record_shown.connect(shown.append)

    controller.show_iteration(target)
    # The call came back before the recomputation (ten updates of 30 ms) even started.
    assert controller.shown is before and shown == []
    assert controller.waiting_for_record and controller.picked_iteration == target
    qtbot.waitUntil(lambda: controller.shown.iteration == target, timeout=20000)
    assert [r.iteration for r in shown] == [target]
    qtbot.waitUntil(lambda: announced == [target, -1])
    assert not controller.waiting_for_record
    assert_same_arrays(controller.shown, controller.server.session.record(target))


def test_a_newer_pick_interrupts_a_recomputation(qtbot, thinned):
    controller = thinned
    slow = dropped(controller, at_least=20)
    quick = kept(controller)
    shown = []
    controller.record_shown.connect(shown.append)
    controller.show_iteration(slow)
    qtbot.waitUntil(lambda: len(controller.updates) >= 2)
    controller.show_iteration(quick)
    qtbot.waitUntil(lambda: controller.shown.iteration == quick, timeout=20000)
    # The slow one gave way after at most one more update and was never shown.
    assert len(controller.updates) <= 4
    assert [r.iteration for r in shown] == [quick]


def test_a_request_from_the_window_waits_for_one_update_at_most(qtbot, thinned):
    controller = thinned
    target = dropped(controller, at_least=20)
    controller.show_iteration(target)
    qtbot.waitUntil(lambda: len(controller.updates) >= 2)
    before = len(controller.updates)
    controller.set_speed(5)  # a request on the GUI thread, while the recomputation goes on
    assert len(controller.updates) - before <= 1
    assert controller.iterations_per_second == 5
    # The interrupted pick is asked for again and shown.
    qtbot.waitUntil(lambda: controller.shown.iteration == target, timeout=20000)


def test_following_training_again_drops_the_pick(qtbot, thinned):
    controller = thinned
    latest = controller.shown
    controller.show_iteration(dropped(controller, at_least=20))
    qtbot.waitUntil(lambda: len(controller.updates) >= 1)
    controller.follow_latest()
    assert controller.shown is latest and controller.following_latest
    qtbot.waitUntil(lambda: controller._fetch is None)
    assert controller.shown is latest and len(controller.updates) <= 3


def test_the_history_bar_says_what_it_is_recomputing(qtbot, thinned):
    controller = thinned
    view = HistoryView(controller)
    qtbot.addWidget(view)
    target = dropped(controller, at_least=10)
    slider = view._slider
    slider.setValue(target)
    metrics = view._metrics
    qtbot.waitUntil(lambda: metrics.text() == f"recomputing {target}…")
    assert f"before iteration {target}" in metrics.toolTip()
    assert not view._continue.isEnabled()
    assert "Wait until iteration" in view._continue.toolTip()
    qtbot.waitUntil(lambda: controller.shown.iteration == target, timeout=20000)
    qtbot.waitUntil(lambda: metrics.text().startswith("loss "))
    assert view._continue.isEnabled() and slider.value() == target

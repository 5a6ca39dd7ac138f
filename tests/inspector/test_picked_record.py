"""Picking a past iteration never makes the window wait: a thinned iteration is recomputed in the
training process while the window goes on, and anything else the window asks for interrupts it.

The server runs in a thread here (``backend="thread"``) so that the tests can slow down and
count its replayed updates.
"""

import os
import signal
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


def thinned_controller(qtbot, dataset, backend="thread"):
    """A controller whose history had to drop iterations (80 shapes, a 4 MB budget)."""
    config = preset_config("recommended", history_budget_mb=4)
    controller = SessionController(dataset, config, backend=backend)
    with qtbot.waitSignal(
        controller.running_changed, check_params_cb=lambda r: not r, timeout=60000
    ):
        controller.run_steps(300)
    return controller


@pytest.fixture
def thinned(qtbot, shapes_dataset):
    """``thinned_controller`` with its server's replayed updates slowed down and counted in
    ``controller.updates`` (training steps are neither)."""
    controller = thinned_controller(qtbot, shapes_dataset)
    session = controller.server.session
    updates = []
    advance, record = session._advance, session.record
    replaying = threading.local()

    def slow_advance(*args, **kwargs):
        if getattr(replaying, "on", False):
            updates.append(1)
            time.sleep(SLOW_UPDATE)
        return advance(*args, **kwargs)

    def counted_record(*args, **kwargs):
        replaying.on = True
        try:
            return record(*args, **kwargs)
        finally:
            replaying.on = False

    session._advance, session.record = slow_advance, counted_record
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


@pytest.mark.parametrize("wait_for_start", [True, False], ids=["started", "asked for"])
def test_a_newer_pick_interrupts_a_recomputation(qtbot, thinned, wait_for_start):
    controller = thinned
    slow = dropped(controller, at_least=20)
    quick = kept(controller)
    shown = []
    controller.record_shown.connect(shown.append)
    controller.show_iteration(slow)
    if wait_for_start:
        qtbot.waitUntil(lambda: len(controller.updates) >= 2)
    # Not waiting: the pick changes before the background thread has even sent the request.
    controller.show_iteration(quick)
    qtbot.waitUntil(lambda: controller.shown.iteration == quick, timeout=20000)
    # The slow one gave way after at most one more update and was never shown.
    assert len(controller.updates) <= 3
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


@pytest.mark.parametrize("wait_for_start", [True, False], ids=["started", "asked for"])
def test_following_training_again_drops_the_pick(qtbot, thinned, wait_for_start):
    controller = thinned
    latest = controller.shown
    controller.show_iteration(dropped(controller, at_least=20))
    if wait_for_start:
        qtbot.waitUntil(lambda: len(controller.updates) >= 1)
    controller.follow_latest()
    assert controller.shown is latest and controller.following_latest
    qtbot.waitUntil(lambda: controller._fetch is None)
    assert controller.shown is latest and len(controller.updates) <= 2


def test_picking_the_newest_iteration_while_running_lets_training_go_on(qtbot, thinned):
    controller = thinned
    controller.set_speed(50)
    controller.show_iteration(dropped(controller, at_least=25))
    qtbot.waitUntil(lambda: len(controller.updates) >= 1)
    with qtbot.waitSignal(controller.running_changed):
        controller.run()  # follows training again: the recomputation gives way
    controller.show_iteration(controller.latest_iteration)  # pinned to the newest
    start = controller.latest_iteration
    qtbot.waitUntil(lambda: controller.latest_iteration >= start + 5, timeout=5000)
    assert len(controller.updates) <= 2
    controller.pause()


def test_a_record_of_a_replaced_run_is_never_shown(qtbot, thinned):
    controller = thinned
    session = controller.server.session
    target = kept(controller)
    answered = threading.Event()
    record = session.record

    def late_record(*args, **kwargs):
        result = record(*args, **kwargs)
        answered.set()
        return result

    session.record = late_record
    shown = []
    controller.record_shown.connect(shown.append)
    controller.show_iteration(target)
    assert answered.wait(10)
    # The record is on its way to the GUI thread; before it gets there the run starts over,
    # reaches that iteration again with other numbers, and the same iteration is picked. (No
    # events may be processed meanwhile, so the new run trains in the server directly and the
    # controller is told its newest iteration.)
    controller.request_config(controller.config.with_changes(seed=99))
    controller.reset()
    controller.server.session.run(target + 1, pause_on_findings=False)
    controller._latest = controller.server.session.latest
    controller.show_iteration(target)
    qtbot.waitUntil(lambda: controller.shown.iteration == target, timeout=20000)
    qtbot.waitUntil(lambda: controller._fetch is None)
    assert_same_arrays(controller.shown, controller.server.session.record(target))
    assert [r.iteration for r in shown].count(target) == 1  # the new run's, never the old


def test_a_failed_fetch_is_reported_once_and_the_pick_goes_back(qtbot, thinned):
    controller = thinned
    session = controller.server.session
    first = kept(controller)
    controller.show_iteration(first)
    qtbot.waitUntil(lambda: controller.shown.iteration == first)

    def broken(*args, **kwargs):
        raise RuntimeError("no such luck")

    session.record = broken
    errors = []
    controller.error_occurred.connect(lambda *a: errors.append(a))
    controller.show_iteration(dropped(controller, at_least=5))
    qtbot.waitUntil(lambda: controller._fetch is None and bool(errors))
    assert len(errors) == 1 and "no such luck" in errors[0][1]
    assert controller.picked_iteration == first and controller.shown.iteration == first


def test_a_report_being_written_does_not_interrupt_a_pick(qtbot, thinned, tmp_path, held_report):
    controller = thinned
    worker, _ = held_report.start(controller, tmp_path / "r")
    try:
        target = dropped(controller, at_least=20)
        controller.show_iteration(target)
        # The report's worker asks every 50 ms whether it is written; that must not cut the
        # recomputation (20 updates of 30 ms) short every time.
        qtbot.waitUntil(lambda: controller.shown.iteration == target, timeout=20000)
        assert worker.is_alive()
    finally:
        held_report.release.set()
        worker.join(30)


def test_a_fetch_waiting_for_another_call_does_not_interrupt_itself(qtbot, thinned):
    controller = thinned
    server = controller.server
    asked, busy = [], threading.Event()
    do_record, do_history = server.do_record, server.do_history

    def slow_history():
        busy.set()
        time.sleep(0.5)
        return do_history()

    server.do_record = lambda *a, **k: asked.append(a) or do_record(*a, **k)
    server.do_history = slow_history
    other = threading.Thread(target=lambda: controller._client.call("history"))
    other.start()
    assert busy.wait(10)
    target = dropped(controller, at_least=5)
    controller.show_iteration(target)  # its fetch waits for the call above
    qtbot.waitUntil(lambda: controller.shown.iteration == target, timeout=20000)
    other.join(10)
    assert len(asked) == 1  # asked for once, not cut short by its own wait and asked again


def test_the_history_bar_says_what_it_is_recomputing(qtbot, thinned):
    controller = thinned
    view = HistoryView(controller)
    qtbot.addWidget(view)
    slider, metrics, continue_button = view._slider, view._metrics, view._continue
    first = kept(controller)
    slider.setValue(first)
    qtbot.waitUntil(lambda: controller.shown.iteration == first)
    assert continue_button.isEnabled()  # an earlier iteration, shown
    target = dropped(controller, at_least=10)
    slider.setValue(target)
    qtbot.waitUntil(lambda: metrics.text() == f"recomputing {target}…")
    assert f"before iteration {target}" in metrics.toolTip()
    # Continuing now would continue from the iteration still shown, not the picked one.
    assert not continue_button.isEnabled()
    assert "Wait until iteration" in continue_button.toolTip()
    qtbot.waitUntil(lambda: controller.shown.iteration == target, timeout=20000)
    qtbot.waitUntil(lambda: metrics.text().startswith("loss "))
    assert continue_button.isEnabled() and slider.value() == target


@pytest.mark.parametrize("poll_first", [False, True], ids=["as it comes", "frame poll first"])
def test_a_training_process_that_dies_during_a_fetch_is_reported_once(
    qtbot, shapes_dataset, poll_first
):
    controller = thinned_controller(qtbot, shapes_dataset, backend="process")
    try:
        errors, running = [], []
        controller.error_occurred.connect(lambda *a: errors.append(a[0]))
        controller.running_changed.connect(running.append)
        controller.set_speed(30)
        controller.run()
        qtbot.waitUntil(lambda: controller.latest_iteration > 302, timeout=5000)
        controller.show_iteration(150)
        os.kill(controller._client._process.pid, signal.SIGKILL)
        if poll_first:  # the fetch's failure waits in the event queue meanwhile
            time.sleep(0.2)
            controller._poll_frames()
        # Whichever notices first, the frame poll or the fetch, the other stays quiet.
        qtbot.waitUntil(lambda: controller._fetch is None and bool(errors), timeout=10000)
        qtbot.wait(300)
        assert len(errors) == 1, errors
        assert running[-1] is False and not controller.is_running
        assert controller.latest_iteration == 0 and controller.following_latest
    finally:
        controller.shutdown()

"""Ctrl+C in the terminal and SIGTERM close the app as Quit does (inspector.app.SignalWatch)."""

import os
import signal
import time

import pytest

from inspector.app import SignalWatch

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX signals")


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_closes_the_window_and_ends_the_training_process(
    qtbot, qapp, controller, window, number
):
    before = signal.getsignal(number)
    watch = SignalWatch(qapp, window)
    try:
        assert controller._client.alive
        os.kill(os.getpid(), number)
        qtbot.waitUntil(lambda: not window.isVisible(), timeout=5000)
        assert watch.received == [number]
        # Closed as Quit closes it: the training process was ended with it.
        qtbot.waitUntil(lambda: not controller._client.alive, timeout=5000)
        # A second one would end the app at once, should closing hang.
        assert signal.getsignal(number) == signal.SIG_DFL
    finally:
        watch.uninstall()
    assert signal.getsignal(number) == before


def test_the_training_process_outlives_the_terminals_ctrl_c(qtbot, controller, window):
    """Ctrl+C reaches every process of the terminal's group; the window decides what it
    means. The training process dying with it left the window without its run."""
    process = controller._client._process
    os.kill(process.pid, signal.SIGINT)
    time.sleep(0.3)
    assert process.is_alive()
    with qtbot.waitSignal(controller.record_shown, timeout=10000):
        controller.step()
    assert controller.latest_iteration == 1

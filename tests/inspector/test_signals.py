"""How the app and its training process end: Ctrl+C in the terminal and SIGTERM close the app as
Quit does (inspector.app.SignalWatch); a training process that cannot start leaves nothing open."""

import os
import signal
import socket
import time

import pytest

from inspector.app import SignalWatch

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX signals")


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_closes_the_window_and_ends_the_training_process(
    qtbot, qapp, controller, window, number
):
    # (Python's handler, as in a terminal: pytest started in the background has SIGINT ignored)
    before = signal.signal(number, signal.default_int_handler)
    other = signal.SIGINT if number == signal.SIGTERM else signal.SIGTERM
    other_before = signal.getsignal(other)
    # Someone else's wakeup fd still hears of the signal.
    theirs, ours = socket.socketpair()
    theirs.setblocking(False)
    previous_fd = signal.set_wakeup_fd(theirs.fileno())
    watch = SignalWatch(qapp, window)
    try:
        assert controller._client.alive
        os.kill(os.getpid(), number)
        qtbot.waitUntil(lambda: not window.isVisible(), timeout=5000)
        assert watch.received == [number]
        # Closed as Quit closes it: the training process was ended with it.
        qtbot.waitUntil(lambda: not controller._client.alive, timeout=5000)
        # A second one, of either kind, would end the app at once, should closing hang.
        assert signal.getsignal(signal.SIGINT) == signal.SIG_DFL
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
        qtbot.waitUntil(lambda: _readable(ours), timeout=2000)
        assert ours.recv(64) == bytes([number])
    finally:
        watch.uninstall()
        assert signal.set_wakeup_fd(previous_fd) == theirs.fileno()  # (put back)
        theirs.close()
        ours.close()
        assert signal.getsignal(number) == signal.default_int_handler
        assert signal.getsignal(other) == other_before
        signal.signal(number, before)


def _readable(sock) -> bool:
    import select

    return bool(select.select([sock], [], [], 0)[0])


def test_a_signal_ignored_from_the_start_stays_ignored(qapp, window):
    """A shell without job control starts a background program with SIGINT ignored, so that
    Ctrl+C in its terminal leaves it alone."""
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    watch = SignalWatch(qapp, window)
    try:
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) != signal.SIG_IGN
    finally:
        watch.uninstall()
        signal.signal(signal.SIGINT, before)


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


def test_a_training_process_that_cannot_start_leaves_no_pipe_open(question_dataset, monkeypatch):
    """(Side by side's second run, say, on a machine out of processes: the window says so and
    goes on, so nothing of the failed start may stay open until it is collected.)"""
    import multiprocessing.context

    from inspector.training_process import TrainerClient
    from model.presets import preset_config

    def refuse(_process):
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(multiprocessing.context.SpawnProcess, "start", refuse)
    before = set(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    with pytest.raises(OSError, match="temporarily unavailable"):
        TrainerClient(question_dataset, preset_config("seed"))
    if before is not None:
        assert set(os.listdir("/proc/self/fd")) <= before

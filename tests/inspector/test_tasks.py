"""Background tasks: a task deleted with its owner mid-job stops its job, and its thread is
held until it has ended (a QThread destroyed while it runs aborts the whole process)."""

import gc
import threading
import time

from PySide6.QtWidgets import QWidget

from inspector import tasks


def test_a_task_deleted_with_its_owner_stops_and_its_thread_ends_in_its_time(qtbot):
    """A review: a Diagnostics panel deleted while it tried a fix aborted the app with
    "QThread: Destroyed while thread is still running"."""
    owner = QWidget()
    started, stopped = threading.Event(), threading.Event()

    def job(_progress, cancelled):
        started.set()
        deadline = time.monotonic() + 20
        while not cancelled() and time.monotonic() < deadline:
            time.sleep(0.01)
        if cancelled():
            stopped.set()

    held_before = tasks.running_threads()
    task = tasks.BackgroundTask(job, owner)
    task.start()
    assert started.wait(5)
    assert tasks.running_threads() == held_before + 1
    owner.deleteLater()
    qtbot.waitUntil(lambda: stopped.is_set(), timeout=5000)  # the job saw it was not wanted
    del task, owner
    gc.collect()
    qtbot.waitUntil(lambda: tasks.running_threads() == held_before, timeout=5000)


def test_a_task_that_ends_is_released(qtbot):
    held_before = tasks.running_threads()
    task = tasks.BackgroundTask(lambda _progress, _cancelled: 42)
    with qtbot.waitSignal(task.done) as done:
        task.start()
    assert done.args == [42]
    qtbot.waitUntil(lambda: tasks.running_threads() == held_before, timeout=5000)

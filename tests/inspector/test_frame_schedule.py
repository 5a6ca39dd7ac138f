"""The training process sends frames on a fixed 60 Hz schedule (inspector.training_process)."""

from inspector.training_process import FRAME_INTERVAL, FrameSchedule


def frames_sent(step_seconds, duration: float = 1.0, start: float = 100.0) -> list[float]:
    """Times at which a run whose steps take ``step_seconds`` (a number or a function of the
    step's index) sends frames, checking after each step as the server does."""
    schedule, now, sent, index = FrameSchedule(), start, [], 0
    while now < start + duration:
        now += step_seconds(index) if callable(step_seconds) else step_seconds
        index += 1
        if schedule.due(now):
            schedule.sent(now)
            sent.append(now)
    return sent


def test_steps_shorter_than_a_frame_give_sixty_frames_a_second():
    # 10 ms steps: "16.7 ms since the last frame" would send one every 20 ms, 50 a second.
    assert 59 <= len(frames_sent(0.010)) <= 61
    assert 59 <= len(frames_sent(0.0007)) <= 61  # the question's example


def test_steps_longer_than_a_frame_send_every_step():
    assert len(frames_sent(0.030)) == 34  # every step of a run of 1 s


def test_after_a_stall_the_schedule_restarts_instead_of_bursting():
    # One step of 200 ms in 5 ms steps: afterwards frames come at the normal pace, not twelve
    # at once to catch up.
    sent = frames_sent(lambda i: 0.2 if i == 20 else 0.005)
    gaps = [b - a for a, b in zip(sent, sent[1:], strict=False)]
    assert min(gaps) > FRAME_INTERVAL / 2
    assert max(gaps) >= 0.2


def test_a_server_on_a_thread_leaves_no_frame_sender_behind(qtbot, question_dataset):
    """A full test run on a fresh clone crashed with 21 frame-sending threads of finished
    runs still waiting: each server on a thread of this process left one behind."""
    import threading

    from inspector.controller import SessionController
    from model.presets import preset_config

    def senders():
        return [t for t in threading.enumerate() if t.name == "frames"]

    # (an earlier test's sender may still be ending: counted as threads, not by number)
    before = set(senders())
    ctrl = SessionController(question_dataset, preset_config("seed"), backend="thread")
    ctrl.step()
    qtbot.waitUntil(lambda: ctrl.latest_iteration == 1, timeout=5000)
    (new,) = set(senders()) - before
    ctrl.shutdown()
    qtbot.waitUntil(lambda: not new.is_alive(), timeout=5000)

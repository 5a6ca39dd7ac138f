"""Frames carry a record's maps and large parameter arrays through shared memory
(inspector.training_process.ArraySlots): what arrives must be the record, exactly."""

import dataclasses
import multiprocessing
import os
import signal
import threading
import time

import numpy as np
import pytest

from inspector import training_process
from inspector.training_process import (
    SHARED_MIN_BYTES,
    ArraySlots,
    Frame,
    SharedRef,
    TrainerClient,
    _large_arrays,
    remade_activation,
)
from model.config import InitSpec, TrainingConfig
from model.data import Dataset
from model.record import ARRAY_GROUPS
from model.session import TrainingSession


def _dataset(n: int = 4, size: int = 32) -> Dataset:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, 3, size, size), dtype=np.uint8)
    return Dataset(images, np.arange(n) % 2, ("a", "b"), tuple(f"img-{i}" for i in range(n)))


def _frames_of_a_run(client: TrainerClient, steps: int) -> list:
    client.call("speed", 0.0)
    client.call("run", steps, False)
    frames, deadline = [], time.monotonic() + 60
    while time.monotonic() < deadline:
        frames.extend(client.frames())
        if any(frame.outcome is not None for frame in frames):
            return frames
        time.sleep(0.005)
    raise AssertionError("the run did not end")


@pytest.mark.parametrize("backend", ["thread", "process"])
def test_frames_arrive_with_every_array_of_the_record(backend):
    # F=4 filters on 32x32 images: the classifier's arrays (4,096 float64) go through shared
    # memory along with the maps.
    config = TrainingConfig(
        num_filters=4,
        conv_init=InitSpec("he_normal"),
        classifier_init=InitSpec("normal", {"std": 0.01}),
        update_mode="full_batch",
        learning_rate=1e-3,
        seed=1,
    )
    assert 4 * 32 * 32 * 8 >= SHARED_MIN_BYTES
    client = TrainerClient(_dataset(), config, backend)
    restored = []
    record_of = client._record_of

    def counting(frame):
        restored.append({(a.field, a.key) for a in frame.shared.arrays})
        return record_of(frame)

    client._record_of = counting
    try:
        client.call("state")
        frames = _frames_of_a_run(client, 40)
        assert frames[-1].shared is None
        # They did come through shared memory, the classifier's arrays with the maps.
        assert restored and ("params", "classifier.weight") in restored[0]
        for frame in frames:
            if frame.shared is not None:
                continue  # a newer frame came with it (see the next test)
            got = frame.record
            want = client.call("record", got.iteration)
            for name in ("pre_activation", "activation"):
                array = getattr(got, name)
                assert not array.flags.writeable
                np.testing.assert_array_equal(array, getattr(want, name))
            for name in ARRAY_GROUPS:
                if name == "velocity":
                    assert got.velocity is None  # frames leave it out
                    continue
                group = getattr(got, name)
                assert list(group) == list(getattr(want, name))  # keys in the record's order
                for key, array in group.items():
                    assert not array.flags.writeable
                    assert array.dtype == getattr(want, name)[key].dtype
                    np.testing.assert_array_equal(array, getattr(want, name)[key])
            assert got.metrics == want.metrics
    finally:
        client.close()


def test_only_the_newest_of_frames_that_come_together_is_copied_out():
    config = TrainingConfig(num_filters=4, update_mode="full_batch", seed=1)
    session = TrainingSession(_dataset(), config)
    client = TrainerClient(_dataset(), config, "thread")
    slots = ArraySlots()
    # Three frames waiting in the pipe at once, as when the window is slower than training.
    client._frames, frames_out = multiprocessing.Pipe(duplex=False)
    releases_in, client._releases = multiprocessing.Pipe(duplex=False)
    copied = []
    restore = SharedRef.restore

    def counting(ref, record, buffer):
        copied.append(record.iteration)
        return restore(ref, record, buffer)

    try:
        records = []
        for _ in range(3):
            record = session.step()
            records.append(record)
            sent, ref = slots.put(record)
            rows = session.history.metrics.rows_after(record.iteration - 1)
            frames_out.send(Frame(0, sent, rows, "", None, ref))
        SharedRef.restore = counting
        frames = client.frames()
        # Every frame brings its metric rows; only the newest its arrays.
        assert [frame.record.iteration for frame in frames] == [1, 2, 3]
        assert np.concatenate([f.rows[0] for f in frames])[:, 0].tolist() == [1, 2, 3]
        assert [frame.shared is None for frame in frames] == [False, False, True]
        assert copied == [3]
        np.testing.assert_array_equal(frames[-1].record.activation, records[-1].activation)
        # Every slot goes back, the two not copied as well as the one that was.
        while releases_in.poll():
            slots.release(*releases_in.recv())
        assert slots._free == set(range(ArraySlots.SLOTS))
    finally:
        SharedRef.restore = restore
        slots.close()
        client.close()


class _Feed:
    """A thread-backend client whose frames come from the test: ``send`` puts the session's
    next step's frame in the pipe, with its arrays in a slot, as the training process does."""

    def __init__(self, config: TrainingConfig) -> None:
        self.session = TrainingSession(_dataset(), config)
        self.client = TrainerClient(_dataset(), config, "thread")
        self.slots = ArraySlots()
        self.client._frames, self._out = multiprocessing.Pipe(duplex=False)
        self._releases_in, self.client._releases = multiprocessing.Pipe(duplex=False)
        self.records = {}

    def send(self, outcome=None) -> None:
        self.all_slots_back()  # (takes the slots handed back, as the training process does)
        record = self.session.step()
        self.records[record.iteration] = record
        sent, ref = self.slots.put(record, remade_activation(self.session.config))
        rows = self.session.history.metrics.rows_after(record.iteration - 1)
        self._out.send(Frame(0, sent, rows, "", outcome, ref))

    def all_slots_back(self) -> bool:
        while self._releases_in.poll():
            self.slots.release(*self._releases_in.recv())
        return self.slots._free == set(range(ArraySlots.SLOTS))

    def close(self) -> None:
        self.slots.close()
        self.client.close()


def _taken_until(client: TrainerClient, done, timeout: float = 30.0) -> list:
    frames, deadline = [], time.monotonic() + timeout
    while not done(frames):
        assert time.monotonic() < deadline, [f.record.iteration for f in frames]
        frames.extend(client.frames())
        time.sleep(0.002)
    return frames


def test_a_frame_with_large_maps_is_completed_aside_and_the_frames_after_it_wait(monkeypatch):
    """3,000 images of 32×32 with 8 filters made 400 MB of maps a frame: copied out on the
    window's thread, it stopped answering for up to a second at every frame. Such a frame is
    completed on another thread; the frames after it are handed out after it, so that metric
    rows always come in order, and only a run's last frame among them keeps its slot."""
    monkeypatch.setattr(training_process, "BACKGROUND_RESTORE_BYTES", 0)  # every frame is large
    feed = _Feed(TrainingConfig(num_filters=4, update_mode="full_batch", seed=1))
    go_on = threading.Event()
    threads = []
    restore = SharedRef.restore

    def slow(ref, record, buffer):
        threads.append(threading.current_thread())
        assert go_on.wait(30)
        return restore(ref, record, buffer)

    monkeypatch.setattr(SharedRef, "restore", slow)
    try:
        for _ in range(3):
            feed.send()
        # The two older ones come at once (rows only, as before); the newest is held.
        first = feed.client.frames()
        assert [(f.record.iteration, f.shared is None) for f in first] == [(1, False), (2, False)]
        feed.send()
        feed.send(outcome=training_process.RunOutcome(5, stopped=True))
        assert feed.client.frames() == []  # held behind iteration 3, still being completed
        # Iteration 4's slot is back already (the training process may need it); the last
        # frame of the run keeps its own, and 3 is still being read.
        assert not feed.all_slots_back() and len(feed.slots._free) == 1
        go_on.set()
        later = _taken_until(feed.client, lambda got: got and got[-1].outcome is not None)
        frames = first + later
        assert [f.record.iteration for f in frames] == [1, 2, 3, 4, 5]
        assert np.concatenate([f.rows[0] for f in frames])[:, 0].tolist() == [1, 2, 3, 4, 5]
        assert [f.shared is None for f in frames] == [False, False, True, False, True]
        for frame in (frames[2], frames[4]):
            want = feed.records[frame.record.iteration]
            assert frame.record.activation.tobytes() == want.activation.tobytes()
            assert frame.record.pre_activation.tobytes() == want.pre_activation.tobytes()
        assert len(threads) == 2 and threading.current_thread() not in threads
        assert feed.all_slots_back()
        # After the run's end, a new frame is completed again.
        feed.send()
        go_on.set()
        frames = _taken_until(feed.client, lambda got: got and got[-1].shared is None)
        assert [f.record.iteration for f in frames] == [6]
        assert feed.all_slots_back()
    finally:
        go_on.set()
        feed.close()


def test_frames_taken_complete_wait_for_the_one_being_completed(monkeypatch):
    """When a run is paused its last frame must be shown before ``pause`` returns."""
    monkeypatch.setattr(training_process, "BACKGROUND_RESTORE_BYTES", 0)
    feed = _Feed(TrainingConfig(num_filters=4, update_mode="full_batch", seed=1))
    restore = SharedRef.restore
    started = threading.Event()

    def slow(ref, record, buffer):
        started.set()
        time.sleep(0.2)
        return restore(ref, record, buffer)

    monkeypatch.setattr(SharedRef, "restore", slow)
    try:
        feed.send()
        assert feed.client.frames() == []
        assert started.wait(30)
        feed.send(outcome=training_process.RunOutcome(2, stopped=True))
        frames = feed.client.frames(complete=True)
        assert [(f.record.iteration, f.shared is None) for f in frames] == [(1, True), (2, True)]
        assert frames[-1].outcome is not None
        assert feed.client.frames() == []
        assert feed.all_slots_back()
    finally:
        feed.close()


@pytest.mark.parametrize("aside", [True, False])
def test_a_frame_that_cannot_be_completed_is_handed_out_incomplete_and_said(monkeypatch, aside):
    """Raised out of ``frames`` (or out of ``call``, which takes frames while it waits) the
    failure lost the frame, so a run's last frame never ended the run, and left the request's
    reply unread. The frame comes incomplete (its rows and outcome kept) and the failure
    waits to be said."""
    monkeypatch.setattr(training_process, "BACKGROUND_RESTORE_BYTES", 0 if aside else 2**62)
    feed = _Feed(TrainingConfig(num_filters=4, update_mode="full_batch", seed=1))

    def failing(ref, record, buffer):
        raise MemoryError("no room for the maps")

    monkeypatch.setattr(SharedRef, "restore", failing)
    try:
        feed.send(outcome=training_process.RunOutcome(1, stopped=True))
        frames = _taken_until(feed.client, lambda got: bool(got))
        assert [(f.record.iteration, f.shared is None) for f in frames] == [(1, False)]
        assert frames[0].outcome is not None and len(frames[0].rows[0]) == 1
        [(iteration, error, details)] = feed.client.take_failures()
        assert iteration == 1 and error == "MemoryError: no room for the maps"
        assert "no room for the maps" in details
        assert feed.client.take_failures() == []
        assert feed.all_slots_back()
    finally:
        feed.close()


def test_a_waiting_frame_whose_slot_went_back_is_not_read(monkeypatch):
    """Behind a frame being completed, a frame that is not a run's last hands its slot back
    at once; if it is still the newest when the first is done, it stays incomplete: its slot
    may hold another frame's arrays by then."""
    monkeypatch.setattr(training_process, "BACKGROUND_RESTORE_BYTES", 0)
    feed = _Feed(TrainingConfig(num_filters=4, update_mode="full_batch", seed=1))
    go_on = threading.Event()
    restored = []
    restore = SharedRef.restore

    def slow(ref, record, buffer):
        restored.append(record.iteration)
        assert go_on.wait(30)
        return restore(ref, record, buffer)

    monkeypatch.setattr(SharedRef, "restore", slow)
    try:
        feed.send()
        assert feed.client.frames() == []
        feed.send()
        assert feed.client.frames() == []
        go_on.set()
        frames = _taken_until(feed.client, lambda got: len(got) == 2)
        assert [(f.record.iteration, f.shared is None) for f in frames] == [(1, True), (2, False)]
        assert restored == [1]
        assert feed.all_slots_back()
    finally:
        go_on.set()
        feed.close()


def test_only_large_frames_are_completed_aside():
    config = TrainingConfig(num_filters=4, update_mode="full_batch", seed=1)
    record = TrainingSession(_dataset(), config).latest
    slots = ArraySlots()
    try:
        _, ref = slots.put(record, ("relu", 0.01))
        maps = record.pre_activation.nbytes
        # The copies, and the output map made again from the pre-activation.
        parameters = sum(
            a.nbytes for _, key, a in _large_arrays(record, with_output=False) if key is not None
        )
        assert ref.restored_bytes() == 2 * maps + parameters
        _, copied = slots.put(record, None)
        assert copied.restored_bytes() == 2 * maps + parameters
    finally:
        slots.close()
    # The benchmark's 16 images × 16 filters of 64×64 are completed at once; 3,000 of 32×32
    # with 8 filters aside.
    assert 2 * 16 * 16 * 64 * 64 * 8 < training_process.BACKGROUND_RESTORE_BYTES
    assert 2 * 3000 * 8 * 32 * 32 * 8 > training_process.BACKGROUND_RESTORE_BYTES


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "identity"])
def test_large_parameter_arrays_and_the_maps_go_through_shared_memory(activation):
    config = TrainingConfig(num_filters=4, update_mode="full_batch", seed=1, activation=activation)
    session = TrainingSession(_dataset(), config)
    session.step()
    # (the conv weights before the update are small: they travel with the record)
    parameters = {(group, "classifier.weight") for group in ARRAY_GROUPS if group != "conv_before"}
    remade = remade_activation(config)
    chosen = {
        (name, key) for name, key, _ in _large_arrays(session.latest, with_output=remade is None)
    }
    # The output map is made again in the window for ReLU and the identity, copied for leaky
    # ReLU (making it costs more than copying it).
    assert (remade is None) == (activation == "leaky_relu")
    expected = {("pre_activation", None), *parameters}
    assert chosen == (expected | {("activation", None)} if remade is None else expected)


@pytest.mark.parametrize(
    "dtype,activation,made_again",
    [
        ("float64", "relu", False),
        ("float32", "relu", False),
        ("float64", "relu", True),
        ("float32", "relu", True),
        ("float32", "leaky_relu", True),
        ("float64", "identity", True),
    ],
)
def test_a_record_goes_into_a_slot_and_comes_back_the_same(dtype, activation, made_again):
    # 64 filters of 3x7x7: the conv weights, their gradient and update (75 kB in float64,
    # 38 kB in float32) go through shared memory too; the biases stay in the pickled record.
    # The output map is copied too, or left out and made again from the pre-activation.
    config = TrainingConfig(
        num_filters=64,
        kernel_size=7,
        update_mode="full_batch",
        seed=1,
        dtype=dtype,
        activation=activation,
        negative_slope=0.1,
    )
    session = TrainingSession(_dataset(), config)
    slots = ArraySlots()
    try:
        for record in (session.latest, session.step()):  # iteration 0 has no gradient
            placed = slots.put(record, (activation, 0.1) if made_again else None)
            assert placed is not None
            sent, ref = placed
            assert sent.pre_activation is None and sent.activation is None
            fields = {entry.field for entry in ref.arrays}
            assert ("activation" in fields) is not made_again
            assert set(sent.params) == {"conv.bias", "classifier.bias"}
            back = ref.restore(sent, slots._block.buf)
            for name in ("pre_activation", "activation"):
                array = getattr(back, name)
                assert array.dtype == np.dtype(dtype) and not array.flags.writeable
                # Bit for bit: the signs of zeros and NaNs' payloads too.
                want = getattr(record, name)
                assert array.tobytes() == want.tobytes()
            for name in ARRAY_GROUPS:
                want = getattr(record, name)
                if want is None:
                    assert getattr(back, name) is None
                    continue
                assert list(getattr(back, name)) == list(want)
                for key, array in getattr(back, name).items():
                    assert not array.flags.writeable and array.dtype == want[key].dtype
                    np.testing.assert_array_equal(array, want[key])
            slots.release(ref.block, ref.slot)
    finally:
        slots.close()


def test_frames_left_by_a_killed_training_process_are_taken_without_an_error():
    # Handing their slots back to a process that is gone must not raise: the frames are
    # taken, and ``alive`` says the process stopped (the controller restarts it).
    config = TrainingConfig(num_filters=4, update_mode="full_batch", seed=1)
    client = TrainerClient(_dataset(), config, "process")
    try:
        client.call("speed", 0.0)
        client.call("run", 100_000, False)
        deadline = time.monotonic() + 30
        while not client._frames.poll():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(0.2)  # more frames wait, each holding a slot
        os.kill(client._process.pid, signal.SIGKILL)
        client._process.join(10)
        frames = client.frames()
        assert frames and not client.alive
        assert client.frames() == []
    finally:
        client.close()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_an_output_map_made_again_matches_the_engines_bit_for_bit_at_the_edges(dtype):
    # Signed zeros, NaN, infinities and subnormals, with the ReLU output computed as the
    # engine does (image by image into a buffer) and made again in one go by the window.
    config = TrainingConfig(num_filters=2, update_mode="full_batch", seed=1, dtype=dtype)
    record = TrainingSession(_dataset(), config).latest
    pre = np.array(record.pre_activation)
    tiny = np.finfo(dtype).smallest_subnormal
    edges = np.array([-0.0, 0.0, np.nan, -np.nan, np.inf, -np.inf, tiny, -tiny], dtype=dtype)
    pre.reshape(-1)[: 7 * edges.size : 7] = edges
    output = np.empty_like(pre)
    for n in range(pre.shape[0]):
        np.maximum(pre[n], 0, out=output[n])
    record = dataclasses.replace(record, pre_activation=pre, activation=output)
    slots = ArraySlots()
    try:
        sent, ref = slots.put(record, ("relu", 0.01))
        back = ref.restore(sent, slots._block.buf)
        assert back.activation.tobytes() == output.tobytes()
    finally:
        slots.close()


def test_a_refused_request_says_why_without_the_exceptions_names():
    """A report on a full disk said "TrainerError: SaveError: ..." with a traceback: a
    refusal (OSError or ValueError in the training process) comes with its text alone."""
    from inspector.training_process import TrainerError

    client = TrainerClient(_dataset(), TrainingConfig(), "thread")
    try:
        with pytest.raises(TrainerError) as refused:
            client.call("update_settings", {"learning_rate": -1})
        assert refused.value.refused
        assert refused.value.text.startswith("learning_rate: must be greater than 0")
        assert str(refused.value).startswith("ConfigError: learning_rate")  # (for the log)
        with pytest.raises(TrainerError) as failed:
            client.call("record", 99)
        assert not failed.value.refused and "IndexError" in str(failed.value)
    finally:
        client.close()


@pytest.fixture
def thread_controller(qtbot):
    """A controller on the recommended preset and ``_dataset()``, its training server in a
    thread of this process (``controller.server``), shut down after the test."""
    from inspector.controller import SessionController
    from model.presets import preset_config

    controller = SessionController(_dataset(), preset_config("recommended"), backend="thread")
    yield controller
    controller.shutdown()


def _run_for(qtbot, controller, iterations: int) -> None:
    """Run as fast as possible until ``iterations`` more are shown."""
    controller.set_speed(0)
    controller.run()
    start = controller.latest_iteration
    qtbot.waitUntil(lambda: controller.shown.iteration >= start + iterations, timeout=30000)


def test_f5_does_not_wait_for_a_last_frame_being_completed(qtbot, monkeypatch, thread_controller):
    """With 400 MB of maps F5 kept the window waiting for them; it returns at once and the
    run ends when they are there. F5 again meanwhile only says that the run is stopping."""
    controller = thread_controller
    session = controller.server.session
    monkeypatch.setattr(training_process, "BACKGROUND_RESTORE_BYTES", 0)
    restore = SharedRef.restore
    holding, released = threading.Event(), threading.Event()

    def held(ref, record, buffer):
        if holding.is_set():
            released.wait(20)
        return restore(ref, record, buffer)

    monkeypatch.setattr(SharedRef, "restore", held)
    try:
        _run_for(qtbot, controller, 2)
        holding.set()
        controller.toggle_run()
        assert controller.is_running  # F5 returned, its last frame held back meanwhile
        released.set()
        qtbot.waitUntil(lambda: not controller.is_running, timeout=30000)
        assert controller.shown.iteration == session.iteration
        # F5 twice: the button still says Pause, and the second press only says so.
        messages = []
        controller.status_message.connect(messages.append)
        _run_for(qtbot, controller, 2)
        controller.toggle_run()
        controller.toggle_run()
        assert messages == ["Stopping after the step in progress"]
        qtbot.waitUntil(lambda: not controller.is_running, timeout=30000)
        stopped_at = session.iteration
        qtbot.wait(200)
        assert session.iteration == stopped_at and controller.server._run is None
        assert controller.shown.iteration == stopped_at
    finally:
        released.set()


def test_a_failed_last_frame_still_ends_the_run_and_is_said(qtbot, monkeypatch, thread_controller):
    controller = thread_controller
    errors = []
    controller.error_occurred.connect(lambda *args: errors.append(args))

    def failing(ref, record, buffer):
        raise MemoryError("no room for the maps")

    shown = controller.shown.iteration
    monkeypatch.setattr(SharedRef, "restore", failing)
    controller.step()
    qtbot.waitUntil(lambda: not controller.is_running, timeout=30000)
    assert controller.shown.iteration == shown  # (never an incomplete record)
    assert len(controller._metrics) == 2  # its row is taken
    assert errors and errors[0][0] == "An iteration could not be shown"
    assert "MemoryError: no room for the maps" in errors[0][1]


def test_a_run_with_large_maps_ends_with_its_last_iteration_shown(
    qtbot, monkeypatch, thread_controller
):
    """F5 does not wait for the last frame's maps (the run ends when they are there); ``pause``,
    which the views call before changing the run, returns with them shown."""
    controller = thread_controller
    session = controller.server.session
    monkeypatch.setattr(training_process, "BACKGROUND_RESTORE_BYTES", 0)
    for stop in ("toggle_run", "pause"):
        _run_for(qtbot, controller, 3)
        getattr(controller, stop)()
        if stop == "toggle_run":
            qtbot.waitUntil(lambda: not controller.is_running, timeout=30000)
        assert not controller.is_running
        assert controller.shown.iteration == controller.latest_iteration == session.iteration
        np.testing.assert_array_equal(controller.shown.activation, session.latest.activation)


@pytest.mark.parametrize("handed_back", [True, False])
def test_a_runs_last_frame_waits_for_a_slot_rather_than_carry_its_maps(monkeypatch, handed_back):
    """With every slot taken (the window completing one, another waiting in the pipe, the
    sender holding one) the last frame of a run went through the pipe with its maps: 400 MB
    kept the window three seconds in a stop. It waits for the window to hand a slot back, and
    only after ``FINAL_SLOT_WAIT`` carries them."""
    monkeypatch.setattr(training_process, "FINAL_SLOT_WAIT", 10.0 if handed_back else 0.2)
    config = TrainingConfig(num_filters=4, update_mode="full_batch", seed=1)
    requests, _ = multiprocessing.Pipe()
    frames_out_window, frames_out = multiprocessing.Pipe(duplex=False)
    releases_in, releases_out = multiprocessing.Pipe(duplex=False)
    server = training_process.TrainerServer(
        requests, frames_out, releases_in, multiprocessing.Value("Q", 0), _dataset(), config
    )
    timer = None
    try:
        server.session.step()
        # (as the server puts it: the same arrays, so the same slots)
        record = dataclasses.replace(server.session.latest, velocity=None)
        activation = remade_activation(config)
        taken = [server._slots.put(record, activation)[1] for _ in range(ArraySlots.SLOTS)]
        assert server._slots._free == set()
        if handed_back:
            timer = threading.Timer(0.3, lambda: releases_out.send((taken[1].block, taken[1].slot)))
            timer.start()
        started = time.monotonic()
        server._send_frame(outcome=training_process.RunOutcome(1, stopped=True))
        assert frames_out_window.poll(30)
        frame = frames_out_window.recv()
        if handed_back:
            assert time.monotonic() - started >= 0.25
            assert frame.shared is not None and frame.shared.slot == taken[1].slot
            assert frame.record.pre_activation is None
        else:
            assert frame.shared is None and frame.record.pre_activation is not None
        assert frame.outcome is not None
    finally:
        if timer is not None:
            timer.join()
        server._frames.close()
        server._slots.close()


def test_a_request_sent_without_waiting_leaves_the_next_calls_reply_to_it(monkeypatch):
    """``ask`` sends a stop without waiting for its reply, and a call given up on (timed out)
    may still be answered: the server answers in order, and those replies are dropped, so
    each call gets its own."""
    config = TrainingConfig(num_filters=4, update_mode="full_batch", seed=1)
    client = TrainerClient(_dataset(), config, "thread")
    history = client.server.do_history

    def slow_history():
        time.sleep(0.3)
        return history()

    try:
        client.call("speed", 0.0)
        client.call("run", 100_000, False)
        client.ask("stop")
        assert client.call("speed", 0.0) is None
        assert isinstance(client.call("history"), str)
        frames = _taken_until(client, lambda got: any(f.outcome for f in got))
        assert frames[-1].outcome.stopped
        monkeypatch.setattr(client.server, "do_history", slow_history)
        with pytest.raises(training_process.TrainerError, match="did not answer"):
            client.call("history", timeout=0.05)
        assert client.call("speed", 0.0) is None  # (not the late history)
    finally:
        client.close()


def test_f5_does_not_wait_for_the_step_in_progress(qtbot, monkeypatch, thread_controller):
    """A step of a large run measures the whole dataset (0.6 s with 3,000 images and 64
    filters of 15×15), and F5 waited for it before the window answered again. Here a step
    waits at a gate that the test opens only once F5 has returned."""
    controller = thread_controller
    session = controller.server.session
    step = session.step
    gate, in_step = threading.Event(), threading.Event()

    def held_step(*args, **kwargs):
        in_step.set()
        gate.wait(20)
        return step(*args, **kwargs)

    try:
        _run_for(qtbot, controller, 1)
        monkeypatch.setattr(session, "step", held_step)
        assert in_step.wait(20)  # (a step under way, held)
        controller.toggle_run()
        assert not gate.is_set()  # F5 returned while the step was still held
        assert controller.is_running  # (until the run's last frame)
        gate.set()
        qtbot.waitUntil(lambda: not controller.is_running, timeout=30000)
        assert controller.shown.iteration == controller.latest_iteration == session.iteration
        monkeypatch.setattr(session, "step", step)
        assert controller._client.call("speed", 0.0) is None  # (the stop's reply was dropped)
    finally:
        gate.set()


def test_a_stop_sent_while_another_thread_waits_for_its_reply_does_not_wait():
    """F5 while a picked iteration is being fetched (a call from another thread) waited for
    that call, which waits for the step in progress; each reply now carries its request's
    number, so the stop is sent at once and the other call still gets its own reply."""
    config = TrainingConfig(num_filters=4, update_mode="full_batch", seed=1)
    client = TrainerClient(_dataset(), config, "thread")
    history = client.server.do_history
    answering = threading.Event()

    def slow_history():
        answering.set()
        time.sleep(0.5)
        return history()

    client.server.do_history = slow_history
    got = []
    try:
        client.call("speed", 0.0)
        client.call("run", 100_000, False)
        other = threading.Thread(target=lambda: got.append(client.call("history")))
        other.start()
        assert answering.wait(20)
        client.ask("stop")
        assert other.is_alive()  # (sent while the other call still waited)
        other.join(20)
        assert isinstance(got[0], str) and got[0].startswith("history")
        assert client.call("speed", 0.0) is None
        frames = _taken_until(client, lambda taken: any(f.outcome for f in taken))
        assert frames[-1].outcome.stopped
    finally:
        client.close()


def test_pause_ends_a_run_whose_last_frame_was_lost(qtbot, thread_controller):
    """The run ended only with its last frame; with that frame lost (its generation not the
    window's, or its arrays failing to arrive) the window stayed "running" for good, Reset
    included. A stop answered with "no run" ends it."""
    controller = thread_controller
    frames = controller._client.frames
    try:
        _run_for(qtbot, controller, 2)
        controller._client.frames = lambda complete=False: [
            frame for frame in frames(complete=complete) if frame.outcome is None
        ]
        controller.toggle_run()
        qtbot.wait(300)
        assert controller.is_running  # (its last frame never came)
        controller.pause()
        assert not controller.is_running
    finally:
        controller._client.frames = frames


def test_a_frame_that_cannot_be_read_is_said_and_the_next_ones_come():
    """A run's last frame may carry its maps pickled (when no slot came free in time): out of
    memory unpickling them, the error went out of ``frames`` or out of the call taking frames
    meanwhile. The frame is lost, the failure is kept to be said, and frames go on."""
    feed = _Feed(TrainingConfig(num_filters=4, update_mode="full_batch", seed=1))
    pipe = feed.client._frames

    class Failing:
        failed = False

        def poll(self, *args):
            return pipe.poll(*args)

        def recv(self):
            frame = pipe.recv()
            if not Failing.failed:
                Failing.failed = True
                raise MemoryError("no room to unpickle the maps")
            return frame

        def close(self):
            pipe.close()

    feed.client._frames = Failing()
    try:
        feed.send()
        feed.send()
        frames = _taken_until(feed.client, lambda got: bool(got))
        assert [f.record.iteration for f in frames] == [2]
        [(iteration, error, _)] = feed.client.take_failures()
        assert iteration is None and error == "MemoryError: no room to unpickle the maps"
        feed.send()
        assert [f.record.iteration for f in _taken_until(feed.client, bool)] == [3]
    finally:
        feed.close()

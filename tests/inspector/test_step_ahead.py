"""The training process computes the next step while it waits (``TrainerServer._compute_ahead``),
so that a Step is drawn without waiting for it: the window gets the same record either way.

The server runs in a thread here (``backend="thread"``) so that the tests can count its forward
passes and change its limits."""

import time

import numpy as np

from inspector import training_process
from inspector.training_process import TrainerClient
from model.presets import preset_config
from model.session import TrainingSession


def _server_forwards(forward_calls) -> int:
    """Forward passes the server made (its thread is called 'training'), not this test's."""
    return forward_calls.count("training")


def _step(client: TrainerClient):
    """Press Step: run one iteration and return the record of the run's last frame."""
    client.call("run", 1, False)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for frame in client.frames():
            if frame.outcome is not None:
                return frame.record
        time.sleep(0.002)
    raise AssertionError("the Step did not end")


def _wait_until(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_an_idle_training_process_has_the_next_step_ready(
    shapes_dataset, forward_calls, monkeypatch
):
    # Idle time before computing ahead long enough that this test sees each Step end first.
    monkeypatch.setattr(training_process, "AHEAD_AFTER_IDLE", 0.3)
    config = preset_config("recommended", update_mode="full_batch", momentum=0.9)
    client = TrainerClient(shapes_dataset, config, "thread")
    twin = TrainingSession(shapes_dataset, config)
    try:
        client.call("state")
        first = _server_forwards(forward_calls)
        for k in range(1, 5):
            # Idle: the next step is computed without being asked for, once (full batch: one
            # forward pass per update, the one that measures it).
            expected = first + k
            _wait_until(lambda expected=expected: _server_forwards(forward_calls) >= expected)
            time.sleep(0.3)
            assert _server_forwards(forward_calls) == expected
            record = _step(client)
            assert record.iteration == k
            assert _server_forwards(forward_calls) == expected  # the Step took it as it was
            want = twin.step()
            np.testing.assert_array_equal(record.pre_activation, want.pre_activation)
            np.testing.assert_array_equal(record.activation, want.activation)
            for key, value in want.params.items():
                np.testing.assert_array_equal(record.params[key], value)
            assert record.metrics == want.metrics
        # A change of settings since: the next Step is computed with the new learning rate.
        client.call("update_settings", {"learning_rate": 0.002})
        twin.update_settings(learning_rate=0.002)
        record = _step(client)
        assert record.settings.learning_rate == 0.002
        np.testing.assert_array_equal(
            record.params["conv.weight"], twin.step().params["conv.weight"]
        )
    finally:
        client.close()


def test_a_slow_step_is_not_computed_ahead(shapes_dataset, forward_calls, monkeypatch):
    # A request that comes while the next step is computed waits for it: only quick steps are.
    monkeypatch.setattr(training_process, "AHEAD_MAX_SECONDS", 0.0)
    client = TrainerClient(shapes_dataset, preset_config("recommended"), "thread")
    try:
        client.call("state")
        _step(client)
        before = _server_forwards(forward_calls)
        time.sleep(3 * training_process.AHEAD_AFTER_IDLE)
        assert _server_forwards(forward_calls) == before
        _step(client)
        assert _server_forwards(forward_calls) > before
    finally:
        client.close()

"""Frames carry a record's maps and large parameter arrays through shared memory
(inspector.training_process.ArraySlots): what arrives must be the record, exactly."""

import time

import numpy as np
import pytest

from inspector.training_process import SHARED_MIN_BYTES, TrainerClient, _large_arrays
from model.config import InitSpec, TrainingConfig
from model.data import Dataset
from model.record import ARRAY_GROUPS


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
    try:
        client.call("state")
        frames = _frames_of_a_run(client, 40)
        assert frames and all(frame.shared is None for frame in frames)
        for frame in frames:
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


def test_large_parameter_arrays_and_the_maps_go_through_shared_memory():
    from model.session import TrainingSession

    config = TrainingConfig(num_filters=4, update_mode="full_batch", seed=1)
    session = TrainingSession(_dataset(), config)
    session.step()
    chosen = {(name, key) for name, key, _ in _large_arrays(session.latest)}
    assert chosen == {
        ("pre_activation", None),
        ("activation", None),
        *((group, "classifier.weight") for group in ("params", "velocity", "grads", "update")),
    }

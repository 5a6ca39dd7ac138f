"""Long runs stay within the history budget, and memory stops growing once it is reached."""

import gc
import tracemalloc

import pytest

from model.data import load_example
from model.presets import preset_config
from model.session import TrainingSession


@pytest.mark.slow
def test_long_run_holds_memory_flat_after_the_budget_is_reached():
    budget_mb = 1
    budget = budget_mb * 2**20
    dataset = load_example("question")
    tracemalloc.start()
    try:
        session = TrainingSession(
            dataset, preset_config("recommended", history_budget_mb=budget_mb)
        )
        session.run(600, pause_on_findings=False)  # well past the point the budget is full
        assert session.history.nbytes <= budget
        gc.collect()
        full, _ = tracemalloc.get_traced_memory()
        session.run(1200, pause_on_findings=False)
        gc.collect()
        later, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert session.history.nbytes <= budget
    # Twice as many iterations again: everything the process holds (not just what the
    # history counts) may move around within the budget but not grow past it.
    assert later - full < budget // 4, f"grew by {(later - full) / 2**20:.2f} MiB"
    assert session.record(1234).iteration == 1234  # a dropped iteration is rebuilt exactly
    assert session.history.stored(1234) is None or not session.history.stored(1234).has_maps

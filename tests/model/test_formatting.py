"""Numbers written for people: never a misleading 0% or 100%, never a count rounded away."""

from types import SimpleNamespace

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from model import diagnostics
from model.formatting import format_share
from model.optim import OptimSettings


@given(st.floats(min_value=0, max_value=1))
def test_a_share_reads_0_or_100_percent_only_when_it_is(share):
    text = format_share(share)
    assert (text == "0%") == (share == 0)
    assert (text == "100%") == (share == 1)
    if 0 < share < 0.01:
        assert text == "<1%"
    if 0.99 < share < 1:
        assert text == ">99%"


def test_a_share_that_is_not_a_number_is_a_dash():
    assert format_share(float("nan")) == "–"


def test_a_mostly_dead_filter_says_how_many_outputs_are_still_positive():
    # Filter 0: 1 positive output of 128 (2 images of 8x8), filter 1: 109 of 128 zero, filter 2: dead.
    record = SimpleNamespace(
        activation=np.zeros((2, 3, 8, 8)),
        dead_fraction_per_filter=np.array([127 / 128, 109 / 128, 1.0]),
        dead_since=(None, None, 2),
        settings=OptimSettings(0.1, 0.0, None),
        iteration=3,
    )
    first, second = diagnostics._mostly_dead(record)
    assert first.title == ">99% of filter 0's ReLU outputs are zero"
    assert first.explanation.startswith("Only 1 of its 128 outputs (<1%) is positive,")
    assert second.title == "85% of filter 1's ReLU outputs are zero"
    assert second.explanation.startswith("Only 19 of its 128 outputs (15%) are positive,")

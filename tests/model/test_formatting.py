"""Numbers written for people: never a misleading 0% or 100%, never a count rounded away."""

from types import SimpleNamespace

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from model import diagnostics
from model.formatting import format_number, format_product, format_share
from model.optim import OptimSettings


@given(st.floats(min_value=0, max_value=1), st.sampled_from([0, 1]))
def test_a_share_reads_0_or_100_percent_only_when_it_is(share, decimals):
    text = format_share(share, decimals)
    rounded = f"{share:.{decimals}%}"
    if rounded in (f"{0:.{decimals}%}", f"{1:.{decimals}%}") and share not in (0, 1):
        assert text[0] == ("<" if share < 0.5 else ">")
    else:
        assert text == rounded


def test_shares_next_to_0_and_100_percent():
    assert [format_share(s) for s in (0, 0.004, 0.006, 0.5, 0.994, 0.996, 1)] == [
        "0%",
        "<1%",
        "1%",
        "50%",
        "99%",
        ">99%",
        "100%",
    ]
    assert [format_share(s, 1) for s in (0.0004, 0.9996, 0.12345)] == ["<0.1%", ">99.9%", "12.3%"]


def test_a_share_that_is_not_a_number_is_a_dash():
    assert format_share(float("nan")) == "–"


def test_a_mostly_dead_filter_says_how_many_outputs_are_still_positive():
    # 2 images of 32x32: filter 0 has 1 positive output of 2,048, filter 1 has 307; 2 is dead.
    record = SimpleNamespace(
        activation=np.zeros((2, 3, 32, 32)),
        dead_fraction_per_filter=np.array([2047 / 2048, 1741 / 2048, 1.0]),
        dead_since=(None, None, 2),
        settings=OptimSettings(0.1, 0.0, None),
        iteration=3,
        metrics={"conv_update_ratio": 0.5, "classifier_update_ratio": 0.01},
    )
    first, second = diagnostics._mostly_dead(record)
    assert first.title == ">99% of filter 0's ReLU outputs are zero"
    assert first.explanation == (
        "Only 1 of its 2,048 outputs (<1%) is positive, so only it passes gradient back to "
        "filter 0. The last update moved the conv layer's weights by 0.5000× their size: one "
        "more such update in the wrong direction can make it 0 everywhere (a dead filter)."
    )
    assert second.title == "85% of filter 1's ReLU outputs are zero"
    assert second.explanation.startswith(
        "Only 307 of its 2,048 outputs (15%) are positive, so only they pass gradient back to "
        "filter 1."
    )


def _mostly_dead_record(fractions, iteration=3):
    return SimpleNamespace(
        activation=np.zeros((2, len(fractions), 32, 32)),
        dead_fraction_per_filter=np.array(fractions),
        dead_since=(None,) * len(fractions),
        settings=OptimSettings(0.1, 0.0, None),
        iteration=iteration,
        metrics={"conv_update_ratio": 0.5, "classifier_update_ratio": 0.01},
    )


def test_several_mostly_dead_filters_read_as_one_warning_in_the_place_of_the_first():
    dead = diagnostics.Finding("dead_filter", "error", "Filter 4 is dead", "…", subject="filter 4")
    mostly = diagnostics._mostly_dead(_mostly_dead_record([2047 / 2048, 0.1, 1741 / 2048, 0.9]))
    later = diagnostics._mostly_dead(_mostly_dead_record([0.9], iteration=4))
    merged = diagnostics.merge_alike([dead, *mostly, *later])
    assert merged[0] is dead and merged[2] is later[0]  # another iteration: its own warning
    group = merged[1]
    assert len(merged) == 3
    assert (group.code, group.severity, group.iteration) == ("mostly_dead", "warning", 3)
    assert group.subject == "filters 0, 2, 3"
    assert group.title == "Filters 0, 2 and 3: most of their ReLU outputs are zero"
    assert group.explanation.splitlines()[:3] == [
        "• >99% of filter 0's ReLU outputs are zero",
        "• 85% of filter 2's ReLU outputs are zero",
        "• 90% of filter 3's ReLU outputs are zero",
    ]
    assert "each of these 3 filters" in group.explanation
    assert group.explanation.endswith(
        "The last update moved the conv layer's weights by 0.5000× their size: one more such "
        "update in the wrong direction can make any of them 0 everywhere (a dead filter)."
    )
    assert group.fixes == mostly[0].fixes


def test_a_smaller_rate_is_offered_to_a_mostly_dead_filter_only_after_a_large_update():
    """What if calls an update of 0.1 of the weights' size or more, in either layer, "too
    large"; below that it is "ok", and the card does not say otherwise."""
    large = _mostly_dead_record([0.95])
    small = SimpleNamespace(
        **{**vars(large), "metrics": {"conv_update_ratio": 0.002, "classifier_update_ratio": 0.09}}
    )
    labels = [[fix.label for fix in diagnostics._mostly_dead(r)[0].fixes] for r in (large, small)]
    assert labels == [
        ["Divide the learning rate by 10 (→ 0.01)", "Use leaky ReLU (slope 0.01) and start again"],
        ["Use leaky ReLU (slope 0.01) and start again"],
    ]
    assert "(no layer's weights moved by more than 0.09000 of their size)" in (
        diagnostics._mostly_dead(small)[0].explanation
    )
    classifier = SimpleNamespace(
        **{**vars(large), "metrics": {"conv_update_ratio": 0.002, "classifier_update_ratio": 0.3}}
    )
    (card,) = diagnostics._mostly_dead(classifier)
    assert "moved the classifier's weights by 0.3000× their size" in card.explanation
    assert card.fixes[0].lowers_rate


def test_one_mostly_dead_filter_keeps_its_own_words():
    (single,) = diagnostics._mostly_dead(_mostly_dead_record([0.1, 0.95]))
    assert diagnostics.merge_alike([single]) == [single]
    assert diagnostics.merge_alike([single])[0] is single


def test_format_count():
    from model.formatting import format_count

    assert [format_count(n, "file") for n in (0, 1, 3)] == ["0 files", "1 file", "3 files"]


def test_filter_lists_read_runs_as_ranges():
    assert diagnostics._listed([3]) == "3"
    assert diagnostics._listed([0, 1]) == "0 and 1"
    assert diagnostics._listed([0, 1, 2, 3]) == "0–3"
    assert diagnostics._listed([0, 2, 5, 6, 7, 9, 10]) == "0, 2, 5–7, 9 and 10"


def test_dead_filters_merge_only_with_those_dead_since_the_same_update():
    def dead(f, since):
        return diagnostics.Finding(
            "dead_filter",
            "error",
            f"Filter {f} is dead (since iteration {since})",
            "…",
            iteration=4,
            since=since,
            subject=f"filter {f}",
            detail=f"largest pre-activation -{f}",
        )

    merged = diagnostics.merge_alike([dead(0, 2), dead(1, 3), dead(2, 2)])
    assert [f.title for f in merged] == [
        "Filters 0 and 2 are dead (since iteration 2)",
        "Filter 1 is dead (since iteration 3)",
    ]
    assert merged[0].explanation.splitlines()[1:] == [
        "• Filter 0: largest pre-activation -0",
        "• Filter 2: largest pre-activation -2",
    ]
    # The files keep one finding per filter, without the line made for merging.
    assert "detail" not in dead(0, 2).to_dict()
    # Beyond four filters the rest share a line, so the card's fixes stay in sight.
    (many,) = diagnostics.merge_alike([dead(f, 2) for f in (0, 1, 2, 3, 5, 6)])
    assert many.title == "Filters 0–3, 5 and 6 are dead (since iteration 2)"
    assert many.explanation.splitlines()[1:] == [
        "• Filter 0: largest pre-activation -0",
        "• Filter 1: largest pre-activation -1",
        "• Filter 2: largest pre-activation -2",
        "• Filters 3, 5 and 6: the same, each with its own numbers",
    ]


def test_cell_texts_choose_their_form_by_the_value_as_written():
    from model.formatting import format_cell

    assert format_cell(999.4) == "999"
    assert format_cell(999.6) == "1,000"  # not "1e3" beside "1,001"
    assert format_cell(-61_304.6) == "-61,305"
    assert format_cell(999_999.6) == "1.00e6"  # not "1,000,000"
    assert format_cell(2.5416e-5) == "2.54e-5"


def test_a_fix_that_goes_back_is_kept_even_when_its_setting_is_already_set():
    from model.config import TrainingConfig

    config = TrainingConfig(learning_rate=0.01)
    going_back = diagnostics.fix_learning_rate(1.0, 100, rewind_to=0)  # (→ 0.01)
    idle = diagnostics.fix_learning_rate(1.0, 100)
    assert going_back.lowers_rate and idle.lowers_rate
    finding = diagnostics.Finding("large_update", "warning", "t", "e", fixes=(going_back, idle))
    (shown,) = diagnostics.useful_fixes([finding], config)
    assert shown.fixes == (going_back,)  # the bad update is still to be undone


def test_a_product_of_ranges_pairs_the_ends_that_belong_together():
    """-lr × [smallest, largest gradient] = [their updates]: with a negative factor the first
    update is the larger, and each end checks on a calculator (a teacher's review)."""
    gradient = np.array([[130185.8, 107312.8], [120000.0, np.nan]])
    update = -0.5 * gradient
    text = format_product("-0.5000", gradient, update)
    assert text == "-0.5000 × [107,312.8, 130,185.8] = [-53,656.4, -65,092.9]"
    assert format_product("-0.5000", [np.nan], [np.nan]) == "-0.5000 × [no finite value]"


@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False, width=32), min_size=1, max_size=30, unique=True),
    st.floats(-10.0, 10.0, allow_nan=False).filter(lambda f: f != 0),
)
def test_each_end_of_the_product_is_the_factor_times_the_end_of_the_range(values, factor):
    source = np.array(values)
    result = factor * source
    text = format_product("f", source, result)
    ends = text.split(" = ")[1]
    assert ends == (
        f"[{format_number(factor * source.min())}, {format_number(factor * source.max())}]"
    )

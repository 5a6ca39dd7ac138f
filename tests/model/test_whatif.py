"""Learning-rate what-if: previews at other learning rates, verdicts, and an unchanged session."""

import math

import numpy as np
import pytest

from model.presets import preset_config
from model.session import TrainingSession
from model.whatif import DEFAULT_FACTORS, VERDICTS, WhatIfRow, format_table, verdict, what_if


def test_the_questions_step_kills_the_filter_and_a_tiny_one_does_not(question):
    session = TrainingSession(question, preset_config("seed"))
    rows = what_if(session, (1, 1e-6))
    at_current, tiny = rows
    assert at_current.learning_rate == 0.5 and at_current.factor == 1
    assert at_current.verdict == "kills filter"
    assert at_current.dead_filters == 1 and at_current.newly_dead == 1
    assert at_current.surviving_fraction == 0.0
    assert at_current.filter_max < -1000  # the question's "massively negative" filter
    assert tiny.learning_rate == pytest.approx(5e-7)
    assert tiny.verdict in ("ok", "too small")
    assert tiny.dead_filters == 0 and tiny.surviving_fraction > 0.5
    assert not tiny.non_finite


def test_what_if_leaves_the_session_unchanged(question):
    session = TrainingSession(question, preset_config("seed", learning_rate=1e-6))
    session.run(2, pause_on_findings=False)
    before = session.latest
    params = {key: np.array(value) for key, value in before.params.items()}
    rows_before = len(session.history.metrics)
    log_before = list(session.history.settings_log)
    what_if(session, (1e3, 1, 1e-3))
    assert session.iteration == 2 and session.latest is before
    assert len(session.history) == 3 and len(session.history.metrics) == rows_before
    assert session.history.settings_log == log_before
    assert session.settings.learning_rate == 1e-6
    for key, value in session.latest.params.items():
        assert np.array_equal(value, params[key])


def test_the_row_at_factor_one_is_exactly_the_next_step(question):
    session = TrainingSession(question, preset_config("recommended"))
    (row,) = what_if(session, (1,))
    record = session.step()
    weights = record.params["conv.weight"]
    assert (row.filter_min, row.filter_max) == (weights.min(), weights.max())
    assert (row.loss, row.accuracy) == (record.loss, record.accuracy)
    assert row.update_ratio == record.metrics["conv_update_ratio"]
    assert row.surviving_fraction == 1 - record.dead_fraction


def test_the_row_at_factor_one_takes_the_step_computed_ahead(question, monkeypatch):
    """Computed ahead while the window was idle, the next step is not computed again for the
    ×1 row; the other rows are."""
    from model import network

    session = TrainingSession(question, preset_config("recommended"))
    session.step()
    session.compute_ahead()
    calls = []
    original = network.backward
    monkeypatch.setattr(network, "backward", lambda *a, **k: calls.append(1) or original(*a, **k))
    rows = what_if(session, (10, 1, 0.1))
    assert len(calls) == 2  # ×10 and ×0.1
    record = session.step()
    assert rows[1].loss == record.loss and len(calls) == 2  # the step took it as it was


def test_default_factors_give_one_row_each_in_order(question):
    session = TrainingSession(question, preset_config("recommended"))
    rows = what_if(session)
    assert [row.factor for row in rows] == list(DEFAULT_FACTORS)
    assert [row.learning_rate for row in rows] == pytest.approx([0.01 * f for f in DEFAULT_FACTORS])
    assert all(row.verdict in VERDICTS for row in rows)


def test_a_negligible_step_is_too_small(question):
    session = TrainingSession(question, preset_config("recommended"))
    (row,) = what_if(session, (1e-9,))
    assert row.update_ratio < 1e-6
    assert row.verdict == "too small"


def test_an_overflowing_step_diverges(question):
    config = preset_config(
        "recommended", dtype="float32", pixel_scaling="standardize", learning_rate=1e9
    )
    session = TrainingSession(question, config)
    session.step()
    (row,) = what_if(session, (1,))
    assert row.non_finite
    assert row.verdict == "diverges"


def test_no_rate_moves_a_dead_filter(question):
    # The question's filter dies in the first update; then its gradient is exactly zero, and a
    # verdict of 'too small' would suggest a larger learning rate might help.
    session = TrainingSession(question, preset_config("seed"))
    session.step()
    rows = what_if(session)
    assert {row.update_ratio for row in rows} == {0.0}
    assert {row.verdict for row in rows} == {"no effect"}


def test_an_update_that_rounds_to_nothing_is_too_small_not_without_effect(question):
    # float32 at a learning rate of 1e-43: lr × gradient underflows to 0, yet a larger rate
    # would move the filters.
    config = preset_config("recommended", dtype="float32", learning_rate=1e-40)
    (row,) = what_if(TrainingSession(question, config), (1e-3,))
    assert row.update_ratio == 0
    assert row.verdict == "too small"


def test_momentum_still_moving_a_dead_filter_is_not_without_effect(question):
    # The filter is dead (zero gradient) but the momentum of the update that killed it still
    # moves it; at a learning rate this small the step rounds to nothing on weights of -65,000.
    session = TrainingSession(question, preset_config("seed", momentum=0.9))
    session.step()
    session.update_settings(learning_rate=1e-17)
    rows = what_if(session, (1, 0.1))
    assert [row.update_ratio for row in rows] == [0.0, 0.0]
    assert [row.verdict for row in rows] == ["too small", "too small"]


def test_ok_is_never_a_step_that_diagnostics_warns_of(question):
    """The reviewer's case: the answer's fix at iteration 10, the ×10 row moved the weights by
    half their size. It said 'ok' and the summary recommended it; taken, Diagnostics warned at
    once. Every row is now 'too large' exactly when the step's own record has a large_update
    finding."""
    session = TrainingSession(question, preset_config("recommended"))
    session.run(10, pause_on_findings=False)
    rows = what_if(session, (100, 10, 1, 0.1))
    for row in rows:
        preview = session.preview(row.learning_rate)
        warned = any(f.code == "large_update" for f in preview.findings)
        if row.verdict in ("ok", "too large", "too small"):
            assert (row.verdict == "too large") == warned, (row.factor, row.verdict)
    assert rows[0].verdict != "ok"


def test_verdict_order():
    assert verdict(True, 1, math.nan) == "diverges"
    assert verdict(False, 1, 1e-9) == "kills filter"
    assert verdict(False, 0, 0.1) == "too large"
    assert verdict(False, 0, 1e-3, 1.0, 0.5) == "too large"  # the classifier's update
    assert verdict(False, 0, 0.0, 0.0) == "no effect"
    assert verdict(False, 0, 0.0, 0.05) == "too small"  # lr × gradient rounded to 0
    assert verdict(False, 0, 1e-7) == "too small"
    assert verdict(False, 0, 1e-3) == "ok"


@pytest.mark.parametrize("factor", [0, -1, math.nan, math.inf])
def test_bad_factors_are_refused(question, factor):
    session = TrainingSession(question, preset_config("recommended"))
    with pytest.raises(ValueError, match="factor"):
        what_if(session, (1, factor))


def test_table_and_dict(question):
    session = TrainingSession(question, preset_config("seed"))
    rows = what_if(session, (1, 1e-6))
    table = format_table(rows).splitlines()
    assert len(table) == 4  # header, rule, two rows
    assert table[0].startswith("factor") and set(table[1]) <= {"-", " "}
    assert "kills filter" in table[2] and "x1e-06" in table[3]
    data = rows[0].to_dict()
    assert set(data) == {field for field in WhatIfRow.__dataclass_fields__}
    assert data["verdict"] == "kills filter"

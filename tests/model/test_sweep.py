"""Outcome map: the grid, the classification of a cell, the process pool, cancel, CSV, picture."""

import csv
import io
import math
import multiprocessing
import time

import numpy as np
import pytest

from model.config import ConfigError
from model.init import InitSpec
from model.presets import preset_config
from model.session import TrainingSession
from model.sweep import (
    CELL_HISTORY_MB,
    CSV_COLUMNS,
    MARKER_COLOUR,
    OUTCOME_COLOURS,
    OUTCOMES,
    SweepCancelled,
    SweepSpec,
    classify,
    log_spaced,
    run_cell,
    run_sweep,
    tick_label,
)


def one_cell(base, rate, scale, family, pixels=None):
    spec = SweepSpec(base, (rate,), (scale,), family, pixel_scalings=(pixels,) if pixels else ())
    return spec, spec.cells()[0]


# ---------------------------------------------------------------------------------------------
# The grid
# ---------------------------------------------------------------------------------------------


def test_log_spaced():
    values = log_spaced(1e-4, 10, 11)
    assert len(values) == 11 and values[0] == 1e-4 and values[-1] == 10
    assert 0.01 in values and 1.0 in values
    assert np.allclose(np.diff(np.log10(values)), 0.5)
    assert log_spaced(0.3, 0.3, 1) == (0.3,)
    for bad in ((0, 1, 3), (1, -1, 3), (1, math.inf, 3), (1, 2, 0)):
        with pytest.raises(ValueError):
            log_spaced(*bad)


def test_spec_sorts_axes_and_lists_cells():
    base = preset_config("seed")
    spec = SweepSpec(base, (0.5, 0.01, 0.5), (1.0, 0.1), "uniform", pixel_scalings=("unit", "raw"))
    assert spec.learning_rates == (0.01, 0.5) and spec.init_scales == (0.1, 1.0)
    assert spec.pixel_scalings == ("unit", "raw")
    cells = spec.cells()
    assert len(cells) == 8
    assert [(c.pixel_scaling, c.init_scale, c.learning_rate) for c in cells[:3]] == [
        ("unit", 0.1, 0.01),
        ("unit", 0.1, 0.5),
        ("unit", 1.0, 0.01),
    ]
    config = cells[3].config
    assert config.conv_init == config.classifier_init == InitSpec("uniform", {"high": 1.0})
    assert (config.learning_rate, config.pixel_scaling) == (0.5, "unit")
    assert config.history_budget_mb == CELL_HISTORY_MB
    assert config.seed == base.seed and config.update_mode == base.update_mode
    normal = SweepSpec(base, (0.01,), (0.02,)).cells()[0].config
    assert normal.conv_init == InitSpec("normal", {"mean": 0.0, "std": 0.02})
    assert normal.pixel_scaling == "raw"  # the base config's, when none are given


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"learning_rates": ()}, ValueError),
        ({"init_scales": (0.1, 0)}, ValueError),
        ({"learning_rates": (math.nan,)}, ValueError),
        ({"init_family": "he_normal"}, ValueError),
        ({"pixel_scalings": ("raw", "bogus")}, ValueError),
        ({"iterations": 0}, ValueError),
        ({"learned_accuracy": 1.5}, ValueError),
        ({"learning_rates": (1e13,)}, ConfigError),
    ],
)
def test_spec_refuses_bad_values(changes, error):
    arguments = {"learning_rates": (0.1,), "init_scales": (0.1,), **changes}
    with pytest.raises(error):
        SweepSpec(preset_config("seed"), **arguments)


def test_learned_threshold_depends_on_the_dataset_size():
    spec = SweepSpec(preset_config("seed"), (0.1,), (0.1,))
    assert spec.learned_threshold(2) == 1.0 and spec.learned_threshold(10) == 1.0
    assert spec.learned_threshold(80) == 0.95
    assert (
        SweepSpec(preset_config("seed"), (0.1,), (0.1,), learned_accuracy=0.5).learned_threshold(2)
        == 0.5
    )


def test_scale_of_recognises_the_family():
    spec = SweepSpec(preset_config("seed"), (0.1,), (0.1,), "uniform")
    assert spec.scale_of(InitSpec("uniform", {"low": 0.0, "high": 1.0})) == 1.0
    assert spec.scale_of(InitSpec("uniform", {"low": -1.0, "high": 1.0})) is None
    assert spec.scale_of(InitSpec("normal", {"std": 1.0})) is None


# ---------------------------------------------------------------------------------------------
# One cell
# ---------------------------------------------------------------------------------------------


def test_the_questions_cell_is_a_dead_filter_and_stops_at_once(question):
    spec, cell = one_cell(preset_config("seed"), 0.5, 1.0, "uniform", "raw")
    assert cell.config.conv_init == preset_config("seed").conv_init
    result = run_cell(question, cell, 50, 1.0)
    assert result.outcome == "dead filter"
    assert result.died_at == 1 and result.dead_filters == 1 and result.dead_fraction == 1.0
    assert result.iterations_run == 1  # nothing can change after every filter is dead


def test_the_answers_cell_learns(question):
    spec, cell = one_cell(preset_config("seed"), 0.01, 0.02, "normal", "unit")
    assert cell.config.seed == 4
    result = run_cell(question, cell, 50, spec.learned_threshold(len(question)))
    assert result.outcome == "learned"
    assert result.accuracy == 1.0 and result.dead_filters == 0 and result.died_at is None
    assert result.iterations_run == 50


def test_a_huge_float32_step_diverges(question):
    base = preset_config("recommended", dtype="float32")
    _, cell = one_cell(base, 1e9, 0.02, "normal", "standardize")
    result = run_cell(question, cell, 50, 1.0)
    assert result.outcome == "diverged"
    assert result.iterations_run < 50  # stopped once a value was not finite
    assert not math.isfinite(result.loss) or result.died_at is None


def test_a_tiny_step_is_stuck(question):
    _, cell = one_cell(preset_config("seed"), 1e-9, 1.0, "uniform", "raw")
    result = run_cell(question, cell, 20, 1.0)
    assert result.outcome == "stuck"
    assert result.iterations_run == 20 and result.dead_filters == 0


def test_with_momentum_a_dead_filter_is_trained_on(question):
    """Momentum keeps moving a dead filter, so the cell may not stop at the death."""
    base = preset_config("seed", momentum=0.9)
    _, cell = one_cell(base, 0.5, 1.0, "uniform", "raw")
    result = run_cell(question, cell, 10, 1.0)
    assert result.iterations_run == 10


def test_classify_reads_sessions_and_records_alike(question):
    session = TrainingSession(question, preset_config("seed"))
    records = [session.latest]
    records += [session.step() for _ in range(3)]
    assert classify(session, 1.0) == classify(records, 1.0) == "dead filter"
    assert classify(records[:1], 1.0) == "stuck"  # before the first update: alive, 50%
    # Accuracy enough but the loss has not fallen: a lucky start, not learning.
    assert classify(records[:1], 0.5) == "stuck"
    recommended = TrainingSession(question, preset_config("recommended"))
    learning = [recommended.latest] + [recommended.step() for _ in range(50)]
    assert classify(learning, 1.0) == "learned"


def test_classify_sees_a_non_finite_value_anywhere_in_the_run(question):
    config = preset_config(
        "recommended", dtype="float32", pixel_scaling="standardize", learning_rate=1e9
    )
    session = TrainingSession(question, config)
    records = [session.latest] + [session.step() for _ in range(4)]
    first_bad = next(i for i, r in enumerate(records) if not math.isfinite(r.loss))
    assert classify(records[: first_bad + 1], 1.0) == "diverged"
    assert classify(records[:first_bad], 1.0) != "diverged"
    assert classify(session, 1.0) == "diverged"


# ---------------------------------------------------------------------------------------------
# The grid run
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_map(question):
    """2 learning rates x 2 scales of the question's family, raw pixels, in this process."""
    spec = SweepSpec(preset_config("seed"), (1e-9, 0.5), (1e-3, 1.0), "uniform", iterations=20)
    return run_sweep(spec, question, workers=1, dataset_name="question")


def test_outcome_grid_rows_are_scales_and_columns_learning_rates(small_map):
    grid = small_map.outcome_grid("raw")
    stuck, dead = OUTCOMES.index("stuck"), OUTCOMES.index("dead filter")
    assert grid.tolist() == [[stuck, dead], [stuck, dead]]
    assert small_map.outcome_grid().tolist() == grid.tolist()
    events = small_map.event_grid("raw")
    assert events.tolist() == [[-1, 1], [-1, 1]]
    assert small_map.counts() == {"learned": 0, "stuck": 2, "dead filter": 2, "diverged": 0}
    with pytest.raises(KeyError):
        small_map.outcome_grid("unit")


def test_csv_has_one_exact_row_per_cell(small_map):
    rows = list(csv.reader(io.StringIO(small_map.to_csv_bytes().decode("utf-8"))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == 5
    table = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    for line, cell in zip(table, small_map.cells, strict=True):
        assert line["outcome"] == cell.outcome and line["init_family"] == "uniform"
        assert float(line["learning_rate"]) == cell.learning_rate
        assert float(line["loss"]) == cell.loss
        assert line["died_at"] == ("" if cell.died_at is None else str(cell.died_at))
    assert table[1]["outcome"] == "dead filter" and table[1]["died_at"] == "1"


def colour_pixels(image, colour):
    return int(np.all(np.asarray(image) == colour, axis=-1).sum())


def test_the_map_has_a_legend_and_rings_the_marker(small_map):
    plain = small_map.render_png()
    marked = small_map.render_png((0.5, 1.0))
    assert plain.mode == "RGB" and plain.width > 500 and plain.height > 200
    # Every outcome has a legend swatch, also those no cell has.
    for colour in OUTCOME_COLOURS.values():
        assert colour_pixels(plain, colour) > 0
    assert colour_pixels(plain, OUTCOME_COLOURS["learned"]) < 20 * 20
    assert colour_pixels(plain, MARKER_COLOUR) == 0
    assert colour_pixels(marked, MARKER_COLOUR) > 100
    assert marked.height > plain.height  # the legend names the marked setting


def test_one_panel_per_pixel_scaling(question):
    rates = log_spaced(1e-9, 10, 11)
    spec = SweepSpec(
        preset_config("seed"),
        rates,
        (1.0,),
        "uniform",
        pixel_scalings=("raw", "unit"),
        iterations=1,
    )
    result = run_sweep(spec, question, workers=1)
    single = run_sweep(
        SweepSpec(spec.base, rates, (1.0,), "uniform", iterations=1), question, workers=1
    )

    def cell_area(image):
        return sum(colour_pixels(image, colour) for colour in OUTCOME_COLOURS.values())

    assert cell_area(result.render_png()) > 1.8 * cell_area(single.render_png())
    ringed = result.render_png((0.5, 1.0), marker_pixel_scaling="raw")
    everywhere = result.render_png((0.5, 1.0))
    assert colour_pixels(everywhere, MARKER_COLOUR) > colour_pixels(ringed, MARKER_COLOUR)


def test_tick_labels():
    assert [tick_label(v) for v in (1e-4, 3.1622776e-4, 0.01, 0.5, 10, 1e4)] == [
        "1e-4",
        "3.2e-4",
        "0.01",
        "0.5",
        "10",
        "1e4",
    ]


def test_a_process_pool_gives_the_same_cells(question):
    spec = SweepSpec(preset_config("seed"), (1e-9, 0.5), (1e-3, 1.0), "uniform", iterations=20)
    calls = []
    pooled = run_sweep(spec, question, workers=2, progress=lambda d, t: calls.append((d, t)))
    alone = run_sweep(spec, question, workers=1)
    assert pooled.workers == 2
    assert pooled.cells == alone.cells
    assert [done for done, _ in calls] == [1, 2, 3, 4] and {t for _, t in calls} == {4}


def test_cancel_stops_a_pooled_sweep_promptly(question):
    # 24 cells that stay alive (tiny steps) and so run all 250 iterations: several seconds in all.
    spec = SweepSpec(
        preset_config("seed"), log_spaced(1e-12, 1e-9, 12), (1e-3, 1.0), "uniform", iterations=250
    )
    calls = []
    started = time.perf_counter()
    with pytest.raises(SweepCancelled):
        run_sweep(
            spec,
            question,
            workers=2,
            progress=lambda *a: calls.append(a),
            cancel=lambda: bool(calls),
        )
    assert 1 <= len(calls) <= 4  # streamed as they finished, then stopped
    # run_sweep waited for its workers, which stopped mid-cell: none is left, and no queued
    # cell ran after the cancel.
    assert not multiprocessing.active_children()
    assert time.perf_counter() - started < 30, "a hang guard, not a speed claim"


def test_cancel_in_process_runs_no_cell(question):
    spec = SweepSpec(preset_config("seed"), (0.5,), (1.0,), "uniform")
    calls = []
    with pytest.raises(SweepCancelled):
        run_sweep(
            spec, question, workers=1, progress=lambda *a: calls.append(a), cancel=lambda: True
        )
    assert calls == []


def test_the_saved_map_writes_the_learned_threshold_as_set(small_map):
    """The window wrote a threshold of 99.9% as such; the saved map's description rounded it
    to "100%" (``:.0%``)."""
    from dataclasses import replace

    from model.sweep import _describe_base

    assert small_map.learned_text == "100%"
    assert "learned = accuracy >= 99.9% and loss" in _describe_base(
        replace(small_map, learned_accuracy=0.999)
    )
    # Everything right is "= 100%", not ">= 100%" (a learner's review).
    assert "learned = accuracy = 100% and loss" in _describe_base(small_map)
    assert small_map.learned_condition() == "accuracy = 100%"
    assert replace(small_map, learned_accuracy=0.95).learned_condition() == "accuracy ≥ 95%"

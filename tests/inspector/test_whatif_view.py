"""The What-if panel, driven as a learner would: read the table for the question's first update,
pick a smaller learning rate, see the table follow, and look back at an older iteration.

The expected verdicts are the engine's real numbers for the ``seed`` preset at iteration 0
(checked with ``model.whatif``): the first update multiplies the filter by about -65,000 at
learning rate 0.5, and even 0.5 × 0.001 still drives every weight below -50, so every default
row kills the filter; only a step around 1e-5 of the current one keeps it alive.
"""

import numpy as np
import pytest
from PySide6.QtCore import Qt

from inspector.views.whatif import COLUMN, VERDICT_COLOURS, WhatIfView
from model.presets import preset_config


@pytest.fixture
def make_view(controller, show_view):
    return lambda **kwargs: show_view(WhatIfView(controller, **kwargs), 900, 360)


def wait_table(qtbot, view, timeout=15000):
    qtbot.waitUntil(lambda: view.is_current and not view.is_computing, timeout=timeout)


def cell(view, row, key):
    return view.table.item(row, COLUMN[key]).text()


def verdicts(view):
    return [cell(view, row, "verdict") for row in range(view.table.rowCount())]


def test_seed_first_update_kills_the_filter_at_every_rate_tried(qtbot, controller, make_view):
    before = controller.record(0)
    view = make_view()
    wait_table(qtbot, view)

    header = view.header.text()
    assert "next update (iteration 1, on image 'cross'" in header
    assert "Nothing is changed until you pick one." in header
    assert [cell(view, row, "rate") for row in range(5)] == [
        "5.000 (×10)",
        "0.5000 (×1)",
        "0.05000 (×0.1)",
        "0.005000 (×0.01)",
        "5.000e-04 (×0.001)",
    ]
    assert verdicts(view) == ["kills filter"] * 5
    # The current rate's row: the question's jump to about -65,000, all ReLU outputs zero.
    assert cell(view, 1, "range") == "-65,092.3 … -53,655.4"
    assert cell(view, 1, "alive") == "0.0%"
    assert cell(view, 1, "dead") == "1 (+1)"
    assert view.table.item(1, COLUMN["rate"]).font().bold()
    assert view.use_buttons[1].text() == "In use" and not view.use_buttons[1].isEnabled()
    assert all(view.use_buttons[row].isEnabled() for row in (0, 2, 3, 4))
    # Even ×0.001 lands below -50: the table says the step size alone is not the fix.
    assert cell(view, 4, "range") == "-64.49 … -52.73"
    assert "Even the smallest step tried" in view.summary.text()
    assert "the rate must come down further" in view.summary.text()
    black = view.table.item(1, COLUMN["verdict"]).background().color().getRgb()[:3]
    assert black == VERDICT_COLOURS["kills filter"]

    # Computing changed nothing.
    assert controller.latest_iteration == 0
    after = controller.record(0)
    for name, values in before.params.items():
        np.testing.assert_array_equal(after.params[name], values)
    np.testing.assert_array_equal(after.losses, before.losses)


def test_a_tiny_enough_step_is_ok_and_coloured_so(qtbot, make_view):
    # ×1e-5 spares the filter but still moves the weights by about their own size, which
    # Diagnostics warns of: 'too large', not 'ok'.
    view = make_view(factors=(1, 1e-5, 1e-7))
    wait_table(qtbot, view)
    assert verdicts(view) == ["kills filter", "too large", "ok"]
    assert cell(view, 1, "dead") == cell(view, 2, "dead") == "0"
    amber = view.table.item(1, COLUMN["verdict"]).background().color().getRgb()[:3]
    assert amber == VERDICT_COLOURS["too large"]
    green = view.table.item(2, COLUMN["verdict"]).background().color().getRgb()[:3]
    assert green == VERDICT_COLOURS["ok"]
    assert "Largest learning rate tried with verdict ok: 5.000e-08" in view.summary.text()


def test_use_takes_the_rate_and_the_table_follows(qtbot, controller, make_view):
    view = make_view()
    wait_table(qtbot, view)
    with qtbot.waitSignal(view.table_updated, timeout=15000):
        qtbot.mouseClick(view.use_buttons[2], Qt.MouseButton.LeftButton)
    assert controller.config.learning_rate == pytest.approx(0.05)
    wait_table(qtbot, view)
    assert cell(view, 1, "rate") == "0.05000 (×1)"
    assert cell(view, 0, "rate") == "0.5000 (×10)"
    assert "Current learning rate 0.05000" in view.note.text()
    assert controller.latest_iteration == 0  # a live setting: no new run, no step taken

    # A double-click on a row does the same (a real double-click: press, release, press).
    item = view.table.item(4, COLUMN["range"])
    where = view.table.visualItemRect(item).center()
    viewport = view.table.viewport()
    with qtbot.waitSignal(view.table_updated, timeout=15000):
        qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=where)
        qtbot.mouseDClick(viewport, Qt.MouseButton.LeftButton, pos=where)
    assert controller.config.learning_rate == pytest.approx(5e-5)
    wait_table(qtbot, view)
    assert cell(view, 1, "rate") == "5.000e-05 (×1)"
    # The row clicked held 5e-5; it now holds another rate, and is no longer highlighted.
    assert view.table.selectedItems() == []


def test_a_rate_beyond_the_limit_is_not_used_and_says_why(qtbot, controller, make_view):
    """At a rate of 1e12, Use on the ×10 row raised a ConfigError dialog while the status bar
    said the rate was in use."""
    controller.update_live(learning_rate=1e12)
    view = make_view()
    wait_table(qtbot, view)
    messages = []
    controller.status_message.connect(messages.append)
    qtbot.mouseClick(view.use_buttons[0], Qt.MouseButton.LeftButton)  # ×10: 1e13
    assert controller.config.learning_rate == 1e12
    assert messages == [
        "Not used: learning_rate: must be greater than 0 and at most 1e+12, got 1e+13"
    ]


def test_a_zero_gradient_of_a_saturated_image_is_not_blamed_on_the_rate(
    qtbot, controller, make_view, step_and_wait
):
    """The question's setup at 1e-8, after one update: the next one is on the circle, whose
    sigmoid is saturated at exactly 1 = its label, so its gradient is exactly zero; the
    summary said no step was "both safe and large enough to make progress"."""
    controller.update_live(learning_rate=1e-8)
    step_and_wait(controller)
    view = make_view()
    wait_table(qtbot, view)
    assert all(row.update_ratio == 0 == row.classifier_ratio for row in view._rows)
    assert view.summary.text().startswith("No learning rate changes the weights at this update")


def test_a_row_that_diverges_shows_no_shares_of_nan(qtbot, controller, make_view):
    """On a row whose update overflows, the table said "100%" of ReLU outputs positive and
    "accuracy 50%" (NaN logits read as predictions) beside NaN weights."""
    controller.start_over(
        preset_config("seed", learning_rate=1e12, activation="leaky_relu", dtype="float32")
    )
    qtbot.waitUntil(lambda: controller.config.dtype == "float32")
    view = make_view()
    wait_table(qtbot, view)
    assert verdicts(view)[0] == "diverges"
    assert [cell(view, 0, key) for key in ("alive", "dead", "accuracy")] == ["–"] * 3
    assert cell(view, 1, "accuracy") == "50%"  # a row that does not diverge keeps its numbers


def test_after_the_filter_died_no_rate_helps(qtbot, controller, make_view, step_and_wait):
    view = make_view()
    step_and_wait(controller)
    wait_table(qtbot, view)
    assert "iteration 2, on image 'circle'" in view.header.text()
    assert set(verdicts(view)) == {"no effect"}  # not a step too small: no step moves it
    assert "every filter is already dead" in view.summary.text()


def test_looking_back_says_the_table_is_about_the_latest(
    qtbot, controller, make_view, step_and_wait
):
    step_and_wait(controller, 2)
    view = make_view()
    wait_table(qtbot, view)
    controller.show_iteration(1)
    qtbot.waitUntil(lambda: "looking at iteration 1" in view.note.text(), timeout=5000)
    assert "next update from the latest iteration (2)" in view.note.text()
    assert "iteration 3" in view.header.text()
    assert view.table.isEnabled()  # still the table for the latest iteration


def test_while_running_the_last_table_is_greyed_then_recomputed(qtbot, controller, make_view):
    controller.apply_preset("recommended")  # a run that no finding pauses at once
    controller.reset()
    view = make_view()
    wait_table(qtbot, view)
    controller.set_speed(20)
    controller.run()
    qtbot.waitUntil(lambda: controller.latest_iteration >= 2, timeout=15000)
    assert controller.is_running
    assert not view.table.isEnabled()
    assert "Training is running" in view.note.text()
    assert "from iteration 0" in view.note.text()
    assert not any(button.isEnabled() for button in view.use_buttons)
    controller.pause()
    qtbot.waitUntil(lambda: not controller.is_running, timeout=15000)
    wait_table(qtbot, view)
    assert view.table.isEnabled()
    assert f"iteration {controller.latest_iteration + 1}" in view.header.text()


def test_a_hidden_panel_computes_nothing_until_shown(qtbot, controller, make_view):
    view = make_view()
    wait_table(qtbot, view)
    view.hide()
    controller.update_live(learning_rate=0.01)
    qtbot.wait(200)
    assert not view.is_current and not view.is_computing
    view.show()
    wait_table(qtbot, view)
    assert cell(view, 1, "rate") == "0.01000 (×1)"

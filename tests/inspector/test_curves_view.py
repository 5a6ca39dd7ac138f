"""The Curves panel shows the true metrics of every iteration, marks the shown one, reads out
exact values on hover and exports its table as CSV."""

import csv
import math
import time

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from inspector.views.curves import PLOT_NAMES, REDRAW_INTERVAL_MS, CurvesView
from model.files import SaveError
from model.formatting import format_number
from model.presets import preset_config
from model.record import METRIC_NAMES


@pytest.fixture
def view(qtbot, controller):
    widget = CurvesView(controller)
    qtbot.addWidget(widget)
    widget.resize(900, 600)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def curve_named(plot, name):
    matches = [item for item in plot.listDataItems() if item.name() == name]
    assert len(matches) == 1, [item.name() for item in plot.listDataItems()]
    return matches[0]


def y_at(curve, iteration):
    x, y = curve.getData()
    index = np.flatnonzero(x == iteration)
    assert index.size == 1, (x, iteration)
    return float(y[index[0]])


def xs(item):
    """x values an item draws (pyqtgraph gives None for an empty item)."""
    x = item.getData()[0]
    return [] if x is None else list(x)


def switch_to_recommended(controller):
    controller.request_config(preset_config("recommended"))
    controller.reset()


def test_plot_items_has_every_named_plot(view):
    assert list(view.plot_items()) == list(PLOT_NAMES)


def test_weights_min_curve_shows_the_records_minimum(view, controller, step_and_wait):
    step_and_wait(controller, 3)
    expected = controller.record(1).metrics["conv_weight_min"]
    assert expected < -40_000  # the question's jump
    weights = view.plot_items()["curve-weights"]
    assert y_at(curve_named(weights, "min"), 1) == pytest.approx(expected)
    assert y_at(curve_named(weights, "max"), 0) == pytest.approx(
        controller.record(0).metrics["conv_weight_max"]
    )


def test_loss_plot_has_mean_and_one_curve_per_image(
    view, controller, step_and_wait, shapes_dataset
):
    step_and_wait(controller, 2)
    loss = view.plot_items()["curve-loss"]
    images = len(controller.dataset.labels)
    assert len(loss.listDataItems()) == images + 1
    cross = curve_named(loss, "cross.png")
    column = controller.metric_columns(["image_losses"])["image_losses"]
    assert y_at(cross, 2) == pytest.approx(math.log10(column[2, 0]))  # log axis: seed's loss

    controller.set_dataset(shapes_dataset, "example:shapes")
    # 80 images: the highest and lowest image loss instead of 80 lines, and the legend says so
    assert len(loss.listDataItems()) == 3
    assert "highest of 80 images" in loss.titleLabel.text


def test_seed_loss_starts_on_a_log_axis_and_the_user_can_switch_it_off(
    view, controller, step_and_wait
):
    step_and_wait(controller, 1)
    box = view.findChild(type(view._loss_log), "curvesLossLog")
    loss = view.plot_items()["curve-loss"]
    assert box.isChecked() and view.loss_log_scale
    assert loss.getAxis("left").logMode
    # The title says it too: a saved figure has no check box (a teacher's report).
    assert "Loss (cross-entropy) (log)" in loss.titleLabel.text
    box.click()
    assert not view.loss_log_scale and not loss.getAxis("left").logMode
    assert "(log)" not in loss.titleLabel.text
    mean = curve_named(loss, "mean")
    assert y_at(mean, 0) == pytest.approx(controller.record(0).loss)

    switch_to_recommended(controller)  # a new run decides from its own data again
    step_and_wait(controller, 2)
    assert not box.isChecked() and not view.loss_log_scale


def test_dead_filters_zero_gradient_is_drawn_not_dropped(view, controller, step_and_wait):
    gradients = view.plot_items()["curve-gradient-norms"]
    zeros = curve_named(gradients, "conv filter: 0 (no gradient)")
    step_and_wait(controller, 1)
    assert xs(zeros) == []  # iteration 1 still had a (huge) gradient

    step_and_wait(controller, 2)
    assert controller.record(2).metrics["conv_grad_norm"] == 0
    x, y = zeros.getData()
    assert list(x) == [2, 3]
    # on the floor line, below every drawn gradient
    classifier = curve_named(gradients, "classifier").getData()[1]
    assert np.all(y < np.nanmin(classifier))
    floor_line = view._panels["curve-gradient-norms"].floor_line
    assert floor_line.isVisible() and floor_line.value() == pytest.approx(y[0])

    ratio = view.plot_items()["curve-update-ratio"]
    assert xs(curve_named(ratio, "conv filter: 0 (no update)")) == [2, 3]


def test_every_plot_marks_where_filters_died(qtbot, view, controller, step_and_wait):
    """The question's loss falls a millionfold at the update that kills its filter: the plots
    say so there, labelled on the plots of the first row (loss, outputs at 0)."""
    assert all(view.death_lines(name) == [] for name in PLOT_NAMES)
    step_and_wait(controller, 2)
    qtbot.waitUntil(lambda: view.death_lines("curve-loss") != [])
    for name in PLOT_NAMES:
        labelled = name in ("curve-loss", "curve-dead-fraction")
        assert view.death_lines(name) == [(1.0, "filter 0 died" if labelled else "")], name
    # Going back before the death takes the line away; a new run has none.
    controller.rewind_to(0)
    qtbot.waitUntil(lambda: view.death_lines("curve-loss") == [], timeout=5000)
    step_and_wait(controller, 1)
    qtbot.waitUntil(lambda: view.death_lines("curve-loss") != [])
    controller.reset()
    qtbot.waitUntil(lambda: view.death_lines("curve-loss") == [], timeout=5000)


def test_marker_follows_the_shown_iteration(view, controller, step_and_wait, show_and_wait):
    step_and_wait(controller, 3)
    markers = [panel.marker for panel in view._panels.values()]
    assert [m.value() for m in markers] == [3] * len(PLOT_NAMES)
    show_and_wait(controller, 0)
    assert [m.value() for m in markers] == [0] * len(PLOT_NAMES)
    controller.follow_latest()
    assert [m.value() for m in markers] == [3] * len(PLOT_NAMES)


def test_hover_reads_out_exact_values_at_the_nearest_iteration(
    qtbot, view, controller, step_and_wait
):
    step_and_wait(controller, 3)
    record = controller.record(1)
    weights = view.plot_items()["curve-weights"]
    scene = weights.scene()
    # a little right of iteration 1: the readout snaps to the nearest iteration
    position = weights.vb.mapViewToScene(QPointF(1.2, record.metrics["conv_weight_mean"]))
    scene.sigMouseMoved.emit(position)
    qtbot.waitUntil(lambda: view.hover_text("curve-weights") != "", timeout=2000)
    text = view.hover_text("curve-weights")
    assert "iteration 1" in text
    for name in ("conv_weight_min", "conv_weight_mean", "conv_weight_max"):
        assert format_number(record.metrics[name]) in text
    assert view.hover_text("curve-loss") == ""

    gradients = view.plot_items()["curve-gradient-norms"]
    position = gradients.vb.mapViewToScene(QPointF(2, gradients.vb.viewRect().center().y()))
    scene.sigMouseMoved.emit(position)
    qtbot.waitUntil(lambda: "iteration 2" in view.hover_text("curve-gradient-norms"))
    text = view.hover_text("curve-gradient-norms")
    assert "conv filter: 0 (no gradient)" in text
    classifier = controller.record(2).metrics["classifier_grad_norm"]
    assert f"classifier: {format_number(classifier)}" in text
    assert view.hover_text("curve-weights") == ""


def test_export_csv_writes_every_metric_and_refuses_to_overwrite(
    view, controller, step_and_wait, tmp_path
):
    step_and_wait(controller, 3)
    path = tmp_path / "metrics.csv"
    assert view.export_csv(path) == path
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == [*METRIC_NAMES, "loss_image_1", "loss_image_2"]  # #1, #2 as on screen
    assert len(rows) == 1 + 4
    header = rows[0]
    first = dict(zip(header, rows[1], strict=True))
    second = dict(zip(header, rows[2], strict=True))
    assert first["iteration"] == "0" and first["conv_grad_norm"] == ""  # NaN -> empty
    record = controller.record(1)
    assert float(second["conv_weight_min"]) == record.metrics["conv_weight_min"]
    assert float(second["loss_image_2"]) == record.losses[1]

    before = path.read_bytes()
    step_and_wait(controller, 1)
    with pytest.raises(SaveError, match="already exists"):
        view.export_csv(path)
    assert path.read_bytes() == before
    view.export_csv(path, overwrite=True)
    assert len(path.read_text().splitlines()) == 1 + 5


def test_redraws_are_coalesced_while_running_and_exact_when_paused(
    qtbot, view, controller, monkeypatch
):
    switch_to_recommended(controller)
    fetches = []
    original = controller.metric_columns

    def counting(names):
        fetches.append(time.monotonic())
        return original(names)

    monkeypatch.setattr(controller, "metric_columns", counting)
    announcements = []
    controller.history_changed.connect(announcements.append)
    controller.set_speed(300)
    with qtbot.waitSignal(controller.running_changed):
        controller.run()
    qtbot.wait(1000)
    with qtbot.waitSignal(controller.running_changed, timeout=10000):
        controller.pause()
    assert len(announcements) >= 10
    # at most one fetch per interval (plus the final one when the run ended)
    gaps = np.diff(fetches[:-1]) * 1000
    assert len(fetches) < len(announcements)
    assert len(gaps) >= 3 and np.all(gaps >= REDRAW_INTERVAL_MS * 0.9), gaps
    mean = curve_named(view.plot_items()["curve-loss"], "mean")
    x, y = mean.getData()
    assert x[-1] == controller.latest_iteration
    assert y[-1] == pytest.approx(controller.record(controller.latest_iteration).loss)


def test_a_short_panel_scrolls_instead_of_squashing_the_plots(
    qtbot, controller, show_view, turn_wheel
):
    """The Curves tab at 1280x800 is about 630x230: the plots keep a readable size and the
    wheel scrolls to the others; Ctrl+wheel zooms a plot, as in the other panels."""
    from inspector.views.curves import MIN_PLOT_HEIGHT, MIN_PLOT_WIDTH

    widget = show_view(CurvesView(controller), 630, 230)
    scroll = widget.findChild(object, "curvesScroll")
    graphics = widget.findChild(object, "curvesGraphics")
    qtbot.waitUntil(lambda: scroll.verticalScrollBar().maximum() > 0)
    assert graphics.height() >= 3 * MIN_PLOT_HEIGHT  # two columns of three rows
    assert graphics.width() <= scroll.viewport().width()  # nothing cut off on the right
    assert graphics.width() >= 2 * MIN_PLOT_WIDTH
    # a row scrolled into view alone still says which iterations it shows
    plots = widget.plot_items().values()
    assert all(plot.getAxis("bottom").style["showValues"] for plot in plots)
    loss = widget.plot_items()["curve-loss"]
    ranges = loss.vb.viewRange()
    viewport = graphics.viewport()
    centre = loss.vb.viewRect().center()
    point = graphics.mapFromScene(loss.vb.mapViewToScene(centre))  # in the viewport

    turn_wheel(viewport, point, -1)
    assert scroll.verticalScrollBar().value() > 0
    assert loss.vb.viewRange() == ranges

    scroll.verticalScrollBar().setValue(0)
    turn_wheel(viewport, point, -1, Qt.KeyboardModifier.ControlModifier)
    assert scroll.verticalScrollBar().value() == 0
    assert loss.vb.viewRange() != ranges


def test_a_large_panel_shows_every_plot_without_scrolling(view):
    scroll = view.findChild(object, "curvesScroll")
    assert scroll.verticalScrollBar().maximum() == 0
    assert scroll.horizontalScrollBar().maximum() == 0
    # the iteration values on the bottom row only, which is always in sight
    shown = [plot.getAxis("bottom").style["showValues"] for plot in view.plot_items().values()]
    assert shown == [False] * 3 + [True] * 3


@pytest.mark.parametrize("size", [(1400, 700), (900, 600), (1000, 300), (790, 260), (630, 230)])
def test_the_plots_fit_the_width_shown_with_titles_laid_out_for_it(
    qtbot, controller, show_view, size
):
    """Whatever the size: no column cut off (a third column only when it fits beside a
    vertical scroll bar), and each title laid out for the width its plot really got."""
    widget = show_view(CurvesView(controller), *size)
    qtbot.wait(50)
    scroll = widget.findChild(object, "curvesScroll")
    assert scroll.horizontalScrollBar().maximum() == 0
    titles = {name: panel.title_html for name, panel in widget._panels.items()}
    widget._layout_titles()  # for the plots' width now: nothing to change
    assert {name: panel.title_html for name, panel in widget._panels.items()} == titles


def test_the_hover_readout_stays_in_the_part_of_a_scrolled_panel_shown(
    qtbot, controller, step_and_wait, show_view, turn_wheel
):
    widget = show_view(CurvesView(controller), 630, 230)
    step_and_wait(controller, 3)
    scroll = widget.findChild(object, "curvesScroll")
    graphics = widget.findChild(object, "curvesGraphics")
    area = scroll.viewport()
    scroll.verticalScrollBar().setValue(60)  # the second row's plots end below what is shown
    # the pointer a little above the bottom of what is shown (too little for the readout below
    # it: 14 pixels apart, at least 36 high), over whichever plot is there
    bottom = graphics.mapToScene(graphics.viewport().mapFrom(area, area.rect().bottomLeft()))
    name, position = next(
        (name, QPointF(plot.vb.sceneBoundingRect().center().x(), bottom.y() - above))
        for above in range(5, 40)
        for name, plot in widget.plot_items().items()
        if plot.vb.sceneBoundingRect().contains(
            plot.vb.sceneBoundingRect().center().x(), bottom.y() - above
        )
    )
    graphics.scene().sigMouseMoved.emit(position)
    qtbot.waitUntil(lambda: widget.hover_text(name) != "", timeout=2000)
    assert widget._readout.sceneBoundingRect().bottom() <= bottom.y() + 1
    # scrolled by the wheel, the plots move under the pointer: the readout goes
    viewport = graphics.viewport()
    turn_wheel(viewport, graphics.mapFromScene(position), -1)
    assert scroll.verticalScrollBar().value() > 60
    assert not widget._readout.isVisible() and widget.hover_text(name) == ""


def test_a_loss_in_the_millions_keeps_its_axis_labels(qtbot, view):
    """The question's first loss, 947,260 (its images' up to 1.89 million), on a linear axis:
    "1,000,000" was wider than the axis, which then hid every label but 0."""
    from PySide6.QtGui import QFontMetrics

    from inspector.views.curves import AXIS_WIDTH, _large_tick

    assert [_large_tick(v) for v in (-60_000, 1_500_000, 2e9, -3e12)] == [
        "-60,000",
        "1.5M",
        "2G",
        "-3e+12",
    ]
    plot = view._panels["curve-loss"].plot
    axis = plot.getAxis("left")
    qtbot.waitUntil(lambda: plot.vb.viewRange()[1][1] > 1e6)
    low, high = plot.vb.viewRange()[1]
    metrics = QFontMetrics(axis.style["tickFont"] or axis.font())
    labels = [
        text
        for spacing, values in axis.tickValues(low, high, axis.height())[:2]
        for text in axis.tickStrings(values, axis.autoSIPrefixScale, spacing)
    ]
    assert "1M" in labels
    assert all(metrics.horizontalAdvance(text) <= AXIS_WIDTH for text in labels), [
        (text, metrics.horizontalAdvance(text)) for text in labels
    ]


def test_the_curves_follow_a_run_started_again(qtbot, window, controller, step_and_wait):
    """A learner applied the answer's fix after the filter died and ran: every plot stayed on
    iterations 0-10, and so did the plots they saved. The six plots share their iteration axis
    and turned each other's auto-range off on the reset; only a switch of the loss's log scale
    put it back (here the loss stays flat, so none comes)."""
    window.resize(1280, 800)
    window.docks["curves"].raise_()
    view = window.curves_view
    qtbot.wait(100)
    step_and_wait(controller)  # the filter dies; the loss spans decades: log scale
    assert view.loss_log_scale
    controller.request_config(preset_config("recommended", learning_rate=1e-6))
    controller.reset()
    qtbot.wait(200)  # (pyqtgraph ranges the plots when it next draws them)
    # Which plot was left following the run depended on the order of range changes (here
    # one was, for the learner none): the loss plot ranges the shared axis, the others follow.
    loss = view.plot_items()["curve-loss"]
    assert loss.vb.autoRangeEnabled()[0]
    step_and_wait(controller, 25)
    assert not view.loss_log_scale
    qtbot.waitUntil(
        lambda: all(plot.vb.viewRange()[0][1] >= 25 for plot in view.plot_items().values()),
        timeout=5000,
    )

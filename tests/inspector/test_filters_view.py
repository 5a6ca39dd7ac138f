"""FiltersView: the weights, gradient and update heatmaps, their scales and the equation."""

import re
import time

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QFontMetricsF
from PySide6.QtWidgets import QApplication

from inspector import plotting
from inspector.views.filters import GROUP_NAMES, FilterLayout, FiltersView
from model.formatting import format_number, format_range
from model.presets import preset_config

#: The Filters dock's size in the 1280×800 window at first launch, and in a maximised
#: 1920×1080 window.
DOCK_1280 = (631, 366)
DOCK_1920 = (1250, 480)


@pytest.fixture
def view(qtbot, controller):
    widget = FiltersView(controller)
    qtbot.addWidget(widget)
    return widget


def shown_big(qtbot, widget, width=DOCK_1280[0], height=DOCK_1280[1]):
    """Show the view at the window's size for it (3×3 cells then hold their values)."""
    widget.resize(width, height)
    widget.show()
    qtbot.waitExposed(widget)
    cells = widget.cell_texts("weights")
    qtbot.waitUntil(lambda: len(cells) == 0 or cells.isVisible())  # (no cells: too many)


def cell_values(widget, name):
    """Values read back from the group's ImageItem at every cell, in weight order [f, c, i, j]."""
    image = widget.image_item(name).image
    layout = widget.mosaic_layout()
    values = np.empty((layout.filters, 3, layout.kernel, layout.kernel))
    for f, c, i, j in np.ndindex(values.shape):
        values[f, c, i, j] = image[layout.cell_pixel(f, c, i, j)]
    return values


def cell_texts(widget, name):
    return [text.replace("\n", "") for text in widget.cell_texts(name).texts()]


def assert_cells_read(texts, values):
    """Every text is the value in one of the cell formats, and reads back as the value to its
    three or more significant digits."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    exact, short = plotting.cell_formats(values)
    assert len(texts) == len(values)
    for text, value, one, other in zip(texts, values, exact, short, strict=True):
        assert text in (one, other)
        written = float(text.replace(",", ""))
        assert written == pytest.approx(value, rel=5e-3, abs=0.5 if "," in text else 0)


def combo(widget, name):
    return widget.findChild(object, name)


def test_iteration_0_mosaic_holds_the_weights_where_the_layout_says(view, controller):
    weights = np.asarray(controller.shown.params["conv.weight"])
    image = view.image_item("weights").image
    layout = view.mosaic_layout()

    np.testing.assert_array_equal(cell_values(view, "weights"), weights)
    # The question's one filter: its channels R, G, B side by side, NaN gaps between them
    # (drawn transparent).
    assert layout.filters == 1 and layout.across
    assert image.shape[1] > 3 * image.shape[0]
    for channel in (1, 2):
        gap_x = layout.tile_pixel(0, channel)[1] - 1
        assert np.isnan(image[:, gap_x]).all()
    cells = weights.size * layout.scale**2
    assert np.count_nonzero(np.isfinite(image)) == cells


def test_cells_show_the_weight_values(qtbot, view, controller):
    shown_big(qtbot, view)
    assert_cells_read(cell_texts(view, "weights"), controller.shown.params["conv.weight"])


def test_reset_and_reseed_keep_the_cell_texts_and_write_the_new_run(
    qtbot, view, controller, step_and_wait
):
    """Reset used to make every cell text anew (most of its 70 ms; held down, the resets queued
    up): a run of the same shape keeps them, and they show the new run, light cells in black."""
    shown_big(qtbot, view)
    step_and_wait(controller)
    items = {name: view.cell_texts(name) for name in GROUP_NAMES}
    cells = {name: len(item) for name, item in items.items()}
    controller.reseed()
    record = controller.shown
    assert record.iteration == 0
    assert all(view.cell_texts(name) is item for name, item in items.items())
    assert (
        {name: len(item) for name, item in items.items()}
        == cells
        == {name: 27 for name in GROUP_NAMES}
    )
    qtbot.waitUntil(lambda: items["weights"].isVisible())
    assert_cells_read(cell_texts(view, "weights"), record.params["conv.weight"])
    light = plotting.light_cells(
        np.asarray(record.params["conv.weight"]).reshape(-1), view.current_limits()["weights"]
    )
    assert items["weights"].inks() == ["#000000" if is_light else "#ffffff" for is_light in light]
    # No gradient or update at iteration 0: their texts are gone, not left from iteration 1.
    assert not items["gradient"].isVisible() and not items["update"].isVisible()


@pytest.mark.parametrize("size", [DOCK_1280, DOCK_1920])
def test_every_value_of_the_question_filter_is_written_at_window_sizes(
    qtbot, view, controller, step_and_wait, size
):
    """The brief's hard requirement: weights, gradient and update of the one 3×3×3 filter
    all readable, without zooming, in the dock the window gives the view."""
    shown_big(qtbot, view, *size)
    record = step_and_wait(controller)
    arrays = {"weights": record.params, "gradient": record.grads, "update": record.update}
    sizes = set()
    for name, array in arrays.items():
        qtbot.waitUntil(lambda n=name: view.cell_texts(n).isVisible())
        assert_cells_read(cell_texts(view, name), array["conv.weight"])
        # Large enough to read, the same size in all three heatmaps.
        sizes.add(view.cell_texts(name).font().pixelSize())
    assert len(sizes) == 1 and sizes.pop() >= 10
    # The more exact format where there is room for it.
    if size == DOCK_1920:
        assert cell_texts(view, "weights")[0] == format_number(
            record.params["conv.weight"][0, 0, 0, 0]
        )
    # Nothing clipped: each heatmap lies wholly in its view, each plot wholly in its strip.
    rect = view.mosaic_layout().data_rect()
    for name in ("weights", "gradient", "update"):
        (x0, x1), (y0, y1) = view.plot(name).vb.viewRange()
        assert x0 <= 0 and y0 <= 0 and x1 >= rect.width() and y1 >= rect.height()
        strip = view.findChild(object, f"filters{name.capitalize()}Plot")
        plot_rect = view.plot(name).sceneBoundingRect()
        assert plot_rect.bottom() <= strip.height() and plot_rect.right() <= strip.width()


def test_iteration_0_says_no_update_yet_instead_of_blank_panels(view, controller):
    assert controller.shown.iteration == 0
    for name in ("gradient", "update"):
        assert view.message_visible(name)
        assert "no update yet" in view.scale_labels()[name]
        assert np.isnan(view.image_item(name).image).all()
    assert not view.message_visible("weights")
    assert "no gradient and no update yet" in view.findChild(object, "filtersEquation").text()


@pytest.mark.parametrize("width", [DOCK_1280[0], 420])
def test_the_no_update_message_fits_its_mosaic_with_many_filters(qtbot, view, controller, width):
    from inspector.views.filters import NO_UPDATE_MESSAGE, NO_UPDATE_SHORTER

    controller.start_over(controller.config.with_changes(num_filters=8))
    shown_big(qtbot, view, width=width)
    qtbot.wait(50)
    for name in ("gradient", "update"):
        message = view._groups[name].message  # noqa: SLF001
        box = view.plot(name).vb.sceneBoundingRect()
        assert message.textItem.toPlainText() in (NO_UPDATE_MESSAGE, *NO_UPDATE_SHORTER)
        assert message.sceneBoundingRect().width() <= box.width()


def test_after_one_step_weights_are_tens_of_thousands_negative(
    qtbot, view, controller, step_and_wait
):
    shown_big(qtbot, view)
    record = step_and_wait(controller)
    weights = np.asarray(record.params["conv.weight"])

    texts = cell_texts(view, "weights")
    written = np.array([float(text.replace(",", "")) for text in texts])
    assert np.all((written > -66_000) & (written < -48_000))
    assert_cells_read(texts, weights)
    label = view.scale_labels()["weights"]
    assert label == f"colour ±{format_number(np.abs(weights).max())}\nper iteration"
    assert label.startswith("colour ±65,")


def test_after_one_step_gradient_and_update_panels_show_the_record(view, controller, step_and_wait):
    record = step_and_wait(controller)

    for name, arrays in (("gradient", record.grads), ("update", record.update)):
        assert not view.message_visible(name)
        np.testing.assert_array_equal(cell_values(view, name), arrays["conv.weight"])
    limits = view.current_limits()
    assert limits["update"] == pytest.approx(np.abs(record.update["conv.weight"]).max())
    assert view.image_item("gradient").levels.tolist() == [-limits["gradient"], limits["gradient"]]


def test_equation_uses_the_learning_rate_of_the_shown_update(view, controller, step_and_wait):
    record = step_and_wait(controller)
    equation = view.findChild(object, "filtersEquation").text()
    update = np.asarray(record.update["conv.weight"])
    gradient = np.asarray(record.grads["conv.weight"])

    # The ends in step (a teacher checked "-0.5 × [107,312.7, …]" against the first end).
    assert (
        f"update = -lr × gradient = -{format_number(0.5)} × "
        f"{format_range(gradient.min(), gradient.max())} = "
        f"{format_range(update.max(), update.min())}" in equation
    )
    assert "image 1 (cross)" in equation
    before, after = record.conv_before["conv.weight"], record.params["conv.weight"]
    assert (
        f"Weights {format_range(before.min(), before.max())} → "
        f"{format_range(after.min(), after.max())}" in equation
    )

    controller.request_config(controller.config.with_changes(learning_rate=0.25))
    step_and_wait(controller)
    assert f"-{format_number(0.25)} × " in view.findChild(object, "filtersEquation").text()


def test_whole_run_scale_is_the_largest_value_so_far(qtbot, view, controller, step_and_wait):
    step_and_wait(controller)
    mode = combo(view, "filterScaleMode")
    mode.setCurrentText("Whole run")

    expected = max(np.abs(controller.record(k).params["conv.weight"]).max() for k in (0, 1))
    assert view.current_limits()["weights"] == pytest.approx(expected)
    assert view.scale_labels()["weights"].endswith("\nwhole run")

    # The dead filter gets a zero gradient at iteration 2: per iteration the scale of the
    # gradient shows it as all zero, the whole-run scale keeps iteration 1's size.
    step_and_wait(controller)
    first_gradient = np.abs(controller.record(1).grads["conv.weight"]).max()
    assert view.current_limits()["gradient"] == pytest.approx(first_gradient)
    mode.setCurrentText("Per iteration")
    assert view.current_limits()["gradient"] == 1.0
    assert view.scale_labels()["gradient"].startswith("all values are 0")


def test_custom_limit_clips_and_says_so(view, controller, step_and_wait):
    step_and_wait(controller)
    spin = view.findChild(object, "filterScaleCustom")
    assert not spin.isVisibleTo(view)
    combo(view, "filterScaleMode").setCurrentText("Custom")
    assert spin.isVisibleTo(view)
    spin.setValue(1000.0)

    assert view.current_limits() == {"weights": 1000.0, "gradient": 1000.0, "update": 1000.0}
    assert view.image_item("weights").levels.tolist() == [-1000.0, 1000.0]
    assert view.scale_labels()["weights"] == "colour ±1,000.0\ncustom\n27 clipped"


def test_negative_cell_is_drawn_blue(qtbot, view, controller, step_and_wait):
    shown_big(qtbot, view, 1000, 700)
    step_and_wait(controller)
    qtbot.wait(50)
    group_widget = view.findChild(object, "filtersWeightsPlot")
    plot = view.plot("weights")
    # Near a corner of cell [0, 0] of filter 0, channel R: away from its value's text.
    x, y = view.mosaic_layout().cell_centre(0, 0, 0, 0)
    point = plotting.widget_point(group_widget, plot, x - 0.42, y - 0.38, view)
    colour = view.grab().toImage().pixelColor(point)

    assert colour.blue() > colour.red() + 60


def test_small_cells_hide_their_values_until_zoomed(qtbot, view, controller, step_and_wait):
    view.resize(400, 300)
    view.show()
    qtbot.waitExposed(view)
    step_and_wait(controller)
    readout = view.findChild(object, "filtersReadout")
    texts = view.cell_texts("weights")
    assert not texts.isVisible()
    assert readout.text().startswith("Cells too small for values")

    plot = view.plot("weights")
    plot.vb.scaleBy((0.15, 0.15))
    qtbot.waitUntil(texts.isVisible)
    assert_cells_read(
        [texts.texts()[0].replace("\n", "")], controller.shown.params["conv.weight"][0, 0, 0, 0]
    )


def test_cell_text_colour_follows_the_cell_background(qtbot, view, controller, step_and_wait):
    shown_big(qtbot, view)
    step_and_wait(controller)
    # Every weight is far below 0: dark blue cells, white text.
    assert set(view.cell_texts("weights").inks()) == {"#ffffff"}


def test_cell_values_are_painted_in_their_cells_in_the_ink_of_their_cell(
    qtbot, view, controller, step_and_wait
):
    """The values are written by one item for all cells (``CellTexts``): what it holds is
    what is painted, centred in each cell, white on the dark cells of the seed's weights."""
    shown_big(qtbot, view)
    step_and_wait(controller)
    cells = view.cell_texts("weights")
    qtbot.waitUntil(cells.isVisible)
    assert set(cells.inks()) == {"#ffffff"}
    widget = view.findChild(object, "filtersWeightsPlot")
    written = widget.grab().toImage()
    cells.setVisible(False)
    blank = widget.grab().toImage()
    cells.setVisible(True)
    layout, plot = view.mosaic_layout(), view.plot("weights")
    metrics = QFontMetricsF(cells.font())
    first = plotting.widget_point(widget, plot, *layout.cell_centre(0, 0, 0, 0), widget)
    right = plotting.widget_point(widget, plot, *layout.cell_centre(0, 0, 0, 1), widget)
    below = plotting.widget_point(widget, plot, *layout.cell_centre(0, 0, 1, 0), widget)
    cell_w, cell_h = right.x() - first.x(), below.y() - first.y()  # (screen pixels)
    for index, cell in enumerate(np.ndindex(1, 3, 3, 3)):
        centre = plotting.widget_point(widget, plot, *layout.cell_centre(*cell), widget)
        text = cells.texts()[index]
        half_w = metrics.horizontalAdvance(text) / 2 + 2
        half_h = metrics.height() / 2 + 1
        ink, outside = 0, 0
        for y in range(centre.y() - cell_h // 2 + 2, centre.y() + cell_h // 2 - 1):
            for x in range(centre.x() - cell_w // 2 + 2, centre.x() + cell_w // 2 - 1):
                if written.pixel(x, y) == blank.pixel(x, y):
                    continue
                inside = abs(x - centre.x()) <= half_w and abs(y - centre.y()) <= half_h
                outside += not inside
                colour = written.pixelColor(x, y)
                ink += inside and min(colour.red(), colour.green(), colour.blue()) > 200
        assert ink >= 10 and outside == 0, (cell, text, ink, outside)


def hover_cell(qtbot, view, group: str, cell: tuple[int, int, int, int]):
    """Move the mouse over ``cell`` (filter, channel, row, column) of heatmap ``group``;
    returns the group's widget and the read-out label."""
    widget = view.findChild(object, f"filters{group.capitalize()}Plot")
    x, y = view.mosaic_layout().cell_centre(*cell)
    point = plotting.widget_point(widget, view.plot(group), x, y, widget)
    qtbot.mouseMove(widget.viewport(), point)
    return widget, view.findChild(object, "filtersReadout")


def test_hover_reads_out_a_cell(qtbot, view, controller, step_and_wait):
    shown_big(qtbot, view, 1000, 700)
    record = step_and_wait(controller)
    _widget, readout = hover_cell(qtbot, view, "update", (0, 2, 1, 2))
    qtbot.waitUntil(lambda: "channel B" in readout.text())

    update = record.update["conv.weight"][0, 2, 1, 2]
    gradient = record.grads["conv.weight"][0, 2, 1, 2]
    assert "filter 0, channel B, row 1, col 2: weight " in readout.text()
    assert f", gradient {format_number(gradient)}, update {format_number(update)}" in readout.text()


def test_the_read_out_follows_a_step_and_goes_when_the_mouse_leaves(
    qtbot, view, controller, step_and_wait
):
    """A Step while the mouse rests on a cell shows that cell's new values: the old ones
    (before the explosion) must not stay under the new cells."""
    shown_big(qtbot, view, 1000, 700)
    group_widget, readout = hover_cell(qtbot, view, "weights", (0, 0, 0, 0))
    qtbot.waitUntil(lambda: "(no update yet)" in readout.text())

    record = step_and_wait(controller)
    qtbot.waitUntil(lambda: "no update yet" not in readout.text())
    # (the strips below fill in at the first Step, so the cell under the mouse may be another)
    found = re.match(r"filter (\d), channel (\w), row (\d), col (\d): ", readout.text())
    assert found, readout.text()
    f, channel, i, j = found.groups()
    cell = (int(f), "RGB".index(channel), int(i), int(j))
    weight = record.params["conv.weight"][cell]
    # The weight before, as it was: not after − update, which lost its last digits here.
    before = record.conv_before["conv.weight"][cell]
    assert f"weight {format_number(before)} → {format_number(weight)}, gradient" in readout.text()

    # The mouse leaves the plot (sent: the offscreen platform delivers no Leave to a move).
    QApplication.sendEvent(group_widget.viewport(), QEvent(QEvent.Type.Leave))
    assert "filter 0, channel R" not in readout.text()
    assert "hover" in readout.text().lower()


def test_more_filters_after_reset_rebuild_the_cells(qtbot, view, controller):
    controller.request_config(preset_config("seed", num_filters=2, kernel_size=5))
    controller.reset()

    layout = view.mosaic_layout()
    assert (layout.filters, layout.kernel) == (2, 5)
    np.testing.assert_array_equal(
        cell_values(view, "weights"), controller.shown.params["conv.weight"]
    )
    # 2 × 3 × 5 × 5 = 150 cells per group: beyond the text budget, values go to the read-out.
    assert len(view.cell_texts("weights")) == 0


def test_reset_zoom_shows_every_tile(qtbot, view):
    shown_big(qtbot, view, 1000, 700)
    plot = view.plot("weights")
    plot.vb.scaleBy((0.2, 0.2))
    qtbot.mouseClick(view.findChild(object, "filtersResetZoom"), Qt.MouseButton.LeftButton)
    (x0, x1), (y0, y1) = plot.vb.viewRange()
    rect = view.mosaic_layout().data_rect()
    assert x0 <= 0 and y0 <= 0 and x1 >= rect.width() and y1 >= rect.height()


def test_plot_items_are_named_for_export(view):
    assert set(view.plot_items()) == {"filters-weights", "filters-gradient", "filters-update"}


@pytest.mark.parametrize("across", [True, False])
def test_filter_layout_locates_every_cell_it_places(across):
    layout = FilterLayout(filters=3, channels=3, kernel=5, across=across, scale=2, block_gap=2)
    mosaic = layout.allocate()
    values = np.arange(3 * 3 * 5 * 5, dtype=np.float64).reshape(3, 3, 5, 5)
    layout.fill(mosaic, values)
    for f, c, i, j in np.ndindex(values.shape):
        assert layout.locate(*layout.cell_centre(f, c, i, j)) == (f, c, i, j)
        assert mosaic[layout.cell_pixel(f, c, i, j)] == values[f, c, i, j]
    assert np.count_nonzero(np.isfinite(mosaic)) == values.size * layout.scale**2
    # Gaps between tiles and between filters are no cell.
    x, y = layout.tile_origin(0, 1)
    assert layout.locate(x - 0.25, y + 0.5 if across else y - 0.25) is None
    assert layout.locate(layout.block_centre(1)[0] - layout.units[0] / 6 + 0.01, 100.0) is None


def shown_with_filters(qtbot, controller, filters: int) -> FiltersView:
    """The view at the 1280x800 dock's size on a fresh run of ``filters`` filters."""
    controller.request_config(preset_config("recommended", num_filters=filters))
    controller.reset()
    view = FiltersView(controller)
    qtbot.addWidget(view)
    shown_big_plain(qtbot, view, *DOCK_1280)
    return view


def test_many_filters_stand_in_columns_with_the_channels_down(qtbot, controller):
    view = shown_with_filters(qtbot, controller, 16)
    layout = view.mosaic_layout()
    assert layout.filters == 16 and not layout.across
    np.testing.assert_array_equal(
        cell_values(view, "weights"), controller.shown.params["conv.weight"]
    )
    # Filter numbers over the columns, channel letters beside the rows.
    top = view.plot("weights").getAxis("top")._tickLevels[0]
    dead = controller.shown.dead_since
    assert [text for _, text in top] == [
        f"{f}✝" if dead[f] is not None else str(f) for f in range(16)
    ]
    left = view.plot("weights").getAxis("left")._tickLevels[0]
    assert [text for _, text in left] == ["R", "G", "B"]


def test_64_filters_are_numbered_without_their_numbers_running_together(qtbot, controller):
    """A review: 64 filters in the 1280x800 dock read "0123456789101112..."."""
    view = shown_with_filters(qtbot, controller, 64)
    axis = view.plot("weights").getAxis("top")
    ticks = axis._tickLevels[0]
    numbers = [int(text.rstrip("✝")) for _, text in ticks]
    step = numbers[1] - numbers[0]
    assert step > 1 and numbers == list(range(0, 64, step))
    # Far enough apart on screen for the widest number.
    box = view.plot("weights").vb
    xs = [box.mapViewToScene(QPointF(x, 0)).x() for x, _ in ticks]
    metrics = QFontMetricsF(axis.style["tickFont"])
    assert min(np.diff(xs)) >= metrics.horizontalAdvance("63✝")
    # Tiles lower than a letter carry no R, G, B beside them (they ran over each other), after
    # a Reset too (its new layout puts the letters back, to be looked at again).
    assert view.plot("weights").getAxis("left")._tickLevels[0] == []
    controller.reset()
    qtbot.waitUntil(lambda: view.mosaic_layout() is not None)
    qtbot.wait(50)
    assert view.plot("weights").getAxis("left")._tickLevels[0] == []


def shown_big_plain(qtbot, widget, width, height):
    widget.resize(width, height)
    widget.show()
    qtbot.waitExposed(widget)


def test_while_a_run_shows_records_the_cells_never_read_another_records_numbers(
    qtbot, view, controller, step_and_wait, monkeypatch
):
    """At 20 records a second the cell texts followed every other record: with one image per
    update, always the same image's, so the gradient cells read 0 under the colours of a
    gradient of 100,000. Now, at set speeds up to 25 a second, every record gets its texts,
    however unevenly the records come (a review: the window looks for them every 16 ms);
    faster, they are hidden until the run stops."""
    from inspector.views import filters

    first = step_and_wait(controller)
    second = step_and_wait(controller)
    assert np.any(first.grads["conv.weight"]) and not np.any(second.grads["conv.weight"])
    shown_big(qtbot, view)
    start = time.monotonic() + 100  # (after every record the view has drawn for real)
    clock = [start]
    running, speed = [True], [20.0]
    monkeypatch.setattr(filters.time, "monotonic", lambda: clock[0])
    cls = type(controller)
    monkeypatch.setattr(cls, "is_running", property(lambda _self: running[0]))
    monkeypatch.setattr(cls, "iterations_per_second", property(lambda _self: speed[0]))

    def show(record, at):
        clock[0] = start + at
        view.show_record(record)
        return [view.cell_texts("gradient").isVisible()]

    def selectable():
        return view._equation.is_selectable()

    for record, at in ((first, 0.0), (second, 0.034), (first, 0.05), (second, 0.066)):
        assert all(show(record, at))
        assert_cells_read(cell_texts(view, "gradient"), record.grads["conv.weight"])
        assert selectable()
    speed[0] = 100.0
    assert not any(show(first, 0.07))
    assert "Values hidden while the run is this fast" in view._readout.text()
    # Nor can the equation be selected while it is replaced this fast (it would be painted
    # three times a frame, not once); once the run stops it can be again.
    assert not selectable() and view._equation.text().startswith("Iteration 1,")
    running[0] = False
    controller.running_changed.emit(False)
    assert selectable()
    assert view.cell_texts("gradient").isVisible()
    assert_cells_read(cell_texts(view, "gradient"), first.grads["conv.weight"])

    # As fast as possible: from the records' pace, with no blinking in between.
    running[0], speed[0] = True, 0.0
    controller.running_changed.emit(True)
    at = 10.0
    assert all(show(second, at))  # (the first record of a run: no pace yet)
    for _ in range(8):  # 60 a second
        at += 1 / 60
        hidden = not any(show(second, at) if _ % 2 else show(first, at))
    assert hidden and not selectable()
    running[0] = False  # a record drawn once the run is over makes it selectable too
    show(first, at + 0.01)
    assert selectable()
    running[0] = True
    seen = []
    for _ in range(3):  # a scale change draws the same record again: not a new one
        view._draw_record(view._record)
        seen.append(view.cell_texts("gradient").isVisible())
    assert seen == [False] * 3
    paces = []
    for index, gap in enumerate((0.05, 0.05, 0.2, 0.2, 0.2, 0.2)):  # slower (a large model)
        at += gap
        paces.append(all(show((first, second)[index % 2], at)))
    assert paces[:2] == [False, False] and paces[-1] is True
    assert_cells_read(cell_texts(view, "gradient"), second.grads["conv.weight"])


def test_the_filter_and_channel_labels_are_not_painted_again_for_each_record(
    qtbot, view, controller, step_and_wait, monkeypatch
):
    """Each record repaints the strips, and the labels beside them with them: those are
    painted from the pixmap Qt keeps of them until they change (a zoom here), which saves
    pyqtgraph drawing them in Python every frame. What is shown and saved is what the labels
    drawn afresh give, pixel for pixel."""
    from inspector import export

    painted = []
    original = plotting.TextAxis.paint

    def counting(axis, *args):
        painted.append(axis.orientation)
        return original(axis, *args)

    monkeypatch.setattr(plotting.TextAxis, "paint", counting)
    shown_big(qtbot, view)
    records = [step_and_wait(controller) for _ in range(3)]
    view.grab()
    painted.clear()
    for record in records:
        view.show_record(record)
        view.grab()
    assert painted == []
    view.plot("weights").getViewBox().scaleBy((0.5, 0.5))
    view.resize(view.width() - 37, view.height() - 23)
    qtbot.wait(20)
    cached = view.grab().toImage()
    assert "top" in painted  # the filter numbers drawn again for the new range
    saved = {name: export.render_png(item) for name, item in view.plot_items().items()}

    scenes = {view.plot(name).scene() for name in GROUP_NAMES}
    cached_items = [
        item
        for scene in scenes
        for item in scene.items()
        if item.cacheMode() != item.CacheMode.NoCache
    ]
    assert cached_items and all(isinstance(i, plotting.TextAxis) for i in cached_items)
    for item in cached_items:
        item.setCacheMode(item.CacheMode.NoCache)
    assert view.grab().toImage() == cached
    assert {name: export.render_png(item) for name, item in view.plot_items().items()} == saved


def test_a_saved_svg_writes_the_values_where_the_png_does(qtbot, view, controller, step_and_wait):
    """The cell values are painted by hand (``CellTexts``): the SVG exporter's painter must
    place them as the PNG's does. Compared by where the white ink on the seed's dark cells
    lies across and down the figure, rendered from both."""
    from PySide6.QtCore import QByteArray
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    from inspector import export

    shown_big(qtbot, view)
    step_and_wait(controller)
    qtbot.waitUntil(view.cell_texts("weights").isVisible)
    item = view.plot_items()["filters-weights"]
    png = QImage()
    png.loadFromData(export.render_png(item))
    svg = QImage(png.size(), QImage.Format.Format_RGB32)
    svg.fill(0xFFFFFFFF)
    painter = QPainter(svg)
    QSvgRenderer(QByteArray(export.render_svg(item))).render(painter)
    painter.end()

    def ink_profiles(image):
        pixels = np.frombuffer(
            image.convertToFormat(QImage.Format.Format_RGB32).constBits(), np.uint8
        )
        rgb = pixels.reshape(image.height(), image.width(), 4)[:, :, 2::-1].astype(int)
        dark = (rgb[:, :, 2] > 80) & (rgb[:, :, 0] < 60)  # (the cells' dark blues)
        near_dark = np.zeros_like(dark)
        near_dark[:, 6:] |= dark[:, :-6]
        near_dark[:, :-6] |= dark[:, 6:]
        ink = (rgb.min(axis=2) > 200) & near_dark  # white between dark pixels: the texts
        across, down = ink.sum(axis=0).astype(float), ink.sum(axis=1).astype(float)
        return across / across.sum(), down / down.sum()

    (png_x, png_y), (svg_x, svg_y) = ink_profiles(png), ink_profiles(svg)
    # (Bins of about half a cell: the SVG's renderer writes the same texts a little wider.)
    for png_ink, svg_ink, step in ((png_x, svg_x, 40), (png_y, svg_y, 12)):
        starts = np.arange(0, len(png_ink), step)
        bins = np.add.reduceat(png_ink, starts), np.add.reduceat(svg_ink, starts)
        assert np.corrcoef(*bins)[0, 1] > 0.9

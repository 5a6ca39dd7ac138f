"""FiltersView: the weights, gradient and update heatmaps, their scales and the equation."""

import numpy as np
import pytest
from PySide6.QtCore import Qt

from inspector import plotting
from inspector.views.filters import FiltersView
from model.formatting import format_compact, format_number, format_range
from model.presets import preset_config


@pytest.fixture
def view(qtbot, controller):
    widget = FiltersView(controller)
    qtbot.addWidget(widget)
    return widget


def shown_big(qtbot, widget, width=1300, height=950):
    """Show the view large enough for 3×3 cells to hold their values."""
    widget.resize(width, height)
    widget.show()
    qtbot.waitExposed(widget)
    qtbot.waitUntil(lambda: all(item.isVisible() for item in widget.cell_text_items("weights")))


def cell_values(widget, name):
    """Values read back from the group's ImageItem at every cell, in weight order [f, c, i, j]."""
    image = widget.image_item(name).image
    layout = widget.mosaic_layout()
    filters = layout.cols
    kernel = layout.tile_height
    values = np.empty((filters, 3, kernel, kernel))
    for f, c, i, j in np.ndindex(values.shape):
        values[f, c, i, j] = image[layout.cell_pixel(c, f, i, j)]
    return values


def combo(widget, name):
    return widget.findChild(object, name)


def test_iteration_0_mosaic_holds_the_weights_where_the_layout_says(view, controller):
    weights = np.asarray(controller.shown.params["conv.weight"])
    image = view.image_item("weights").image
    layout = view.mosaic_layout()

    np.testing.assert_array_equal(cell_values(view, "weights"), weights)
    # Rows of tiles are the channels R, G, B; gaps between them are NaN (drawn transparent).
    assert (layout.rows, layout.cols) == (3, 1)
    assert np.isnan(image[layout.pitch_y - 1, :]).all()
    cells = weights.size * layout.scale**2
    assert np.count_nonzero(np.isfinite(image)) == cells


def test_cells_show_the_weight_values_as_format_compact(qtbot, view, controller):
    shown_big(qtbot, view)
    weights = np.asarray(controller.shown.params["conv.weight"]).reshape(-1)
    texts = [item.toPlainText().replace("\n", "") for item in view.cell_text_items("weights")]

    assert texts == [format_compact(value) for value in weights]


def test_iteration_0_says_no_update_yet_instead_of_blank_panels(view, controller):
    assert controller.shown.iteration == 0
    for name in ("gradient", "update"):
        assert view.message_visible(name)
        assert "no update yet" in view.scale_labels()[name]
        assert np.isnan(view.image_item(name).image).all()
    assert not view.message_visible("weights")
    assert "no gradient and no update yet" in view.findChild(object, "filtersEquation").text()


def test_after_one_step_weights_are_tens_of_thousands_negative(
    qtbot, view, controller, step_and_wait
):
    shown_big(qtbot, view)
    record = step_and_wait(controller)
    weights = np.asarray(record.params["conv.weight"])

    texts = [item.toPlainText().replace("\n", "") for item in view.cell_text_items("weights")]
    written = np.array([float(text) for text in texts])
    assert np.all((written > -66_000) & (written < -48_000))
    assert texts == [format_compact(value) for value in weights.reshape(-1)]
    label = view.scale_labels()["weights"]
    assert label == f"±{format_number(np.abs(weights).max())}\n(per iteration)"
    assert label.startswith("±65,")


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

    assert f"update = −lr × gradient = −{format_number(0.5)} × " in equation
    assert format_range(gradient.min(), gradient.max()) in equation
    assert format_range(update.min(), update.max()) in equation
    assert "image 1 (cross)" in equation

    controller.request_config(controller.config.with_changes(learning_rate=0.25))
    step_and_wait(controller)
    assert f"−{format_number(0.25)} × " in view.findChild(object, "filtersEquation").text()


def test_whole_run_scale_is_the_largest_value_so_far(qtbot, view, controller, step_and_wait):
    step_and_wait(controller)
    mode = combo(view, "filterScaleMode")
    mode.setCurrentText("Whole run")

    expected = max(np.abs(controller.record(k).params["conv.weight"]).max() for k in (0, 1))
    assert view.current_limits()["weights"] == pytest.approx(expected)
    assert "(whole run)" in view.scale_labels()["weights"]

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
    assert view.scale_labels()["weights"] == "±1,000.0\n(custom; 27 clipped beyond ±1,000.0)"


def test_negative_cell_is_drawn_blue(qtbot, view, controller, step_and_wait):
    shown_big(qtbot, view, 1000, 700)
    step_and_wait(controller)
    qtbot.wait(50)
    group_widget = view.findChild(object, "filtersWeightsPlot")
    plot = view.plot("weights")
    # Near a corner of cell [0, 0] of filter 0, channel R: away from its value's text.
    x, y = view.mosaic_layout().cell_centre(0, 0, 0, 0)
    point = plotting.widget_point(group_widget, plot, x - 0.35, y - 0.35, view)
    colour = view.grab().toImage().pixelColor(point)

    assert colour.blue() > colour.red() + 60


def test_small_cells_hide_their_values_until_zoomed(qtbot, view, controller, step_and_wait):
    view.resize(600, 400)
    view.show()
    qtbot.waitExposed(view)
    step_and_wait(controller)
    readout = view.findChild(object, "filtersReadout")
    texts = view.cell_text_items("weights")
    assert not any(item.isVisible() for item in texts)
    assert readout.text().startswith("Cells too small for values")

    plot = view.plot("weights")
    plot.vb.scaleBy((0.3, 0.3))
    qtbot.waitUntil(lambda: any(item.isVisible() for item in texts))
    assert texts[0].toPlainText().replace("\n", "") == format_compact(
        controller.shown.params["conv.weight"][0, 0, 0, 0]
    )


def test_cell_text_colour_follows_the_cell_background(qtbot, view, controller, step_and_wait):
    shown_big(qtbot, view)
    step_and_wait(controller)
    # Every weight is far below 0: dark blue cells, white text.
    assert all(item.color.name() == "#ffffff" for item in view.cell_text_items("weights"))


def test_hover_reads_out_a_cell(qtbot, view, controller, step_and_wait):
    shown_big(qtbot, view, 1000, 700)
    record = step_and_wait(controller)
    group_widget = view.findChild(object, "filtersUpdatePlot")
    x, y = view.mosaic_layout().cell_centre(2, 0, 1, 2)
    point = plotting.widget_point(group_widget, view.plot("update"), x, y, group_widget)
    qtbot.mouseMove(group_widget.viewport(), point)
    readout = view.findChild(object, "filtersReadout")
    qtbot.waitUntil(lambda: "channel B" in readout.text())

    update = record.update["conv.weight"][0, 2, 1, 2]
    assert "filter 0, channel B, row 1, column 2" in readout.text()
    assert f"update {format_number(update)}" in readout.text()


def test_more_filters_after_reset_rebuild_the_cells(qtbot, view, controller):
    controller.request_config(preset_config("seed", num_filters=2, kernel_size=5))
    controller.reset()

    layout = view.mosaic_layout()
    assert (layout.cols, layout.tile_height) == (2, 5)
    np.testing.assert_array_equal(
        cell_values(view, "weights"), controller.shown.params["conv.weight"]
    )
    # 2 × 3 × 5 × 5 = 150 cells per group: beyond the text budget, values go to the read-out.
    assert view.cell_text_items("weights") == []


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

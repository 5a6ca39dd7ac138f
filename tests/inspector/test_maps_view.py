"""MapsView: pre-activation and ReLU output maps, dead outputs, paging, predictions."""

import math
import re

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from inspector import plotting
from inspector.export import save_plots
from inspector.views.maps import MIN_MAP_PIXELS, PAGE_SIZE, MapsView
from model.colormap import diverging_rgb
from model.formatting import format_number, format_share
from model.presets import preset_config

#: The ReLU outputs dock's size in the 1280×800 window at first launch, and in a maximised
#: 1920×1080 window.
DOCK_1280 = (631, 242)
DOCK_1920 = (1250, 330)


def make_view(qtbot, controller, width=None, height=None):
    view = MapsView(controller)
    qtbot.addWidget(view)
    if width:
        view.resize(width, height)
        view.show()
        qtbot.waitExposed(view)
        qtbot.waitUntil(lambda: laid_out(view))
    return view


def laid_out(view):
    """Whether the maps are drawn at their fitted size (the plots have their new widths)."""
    width = view.mosaic_layout().data_rect().width() * view.map_pixels()
    return abs(view.plots()["pre"].vb.width() - width * 1.02) < 2


def inside(item, widget):
    """Whether a graphics item lies wholly inside the widget showing it."""
    rect = item.sceneBoundingRect()
    return (
        rect.left() >= 0
        and rect.top() >= 0
        and rect.right() <= widget.width() + 0.5
        and (rect.bottom() <= widget.height() + 0.5)
    )


def tile(view, name, row, f):
    """The colour codes of map (row, f) of the page in mosaic ``name`` ('pre' / 'output')."""
    assert view.pixel_step() == 1
    layout = view.shown_layout()
    image = view.image_items()[name].image
    y, x = row * layout.pitch_y, f * layout.pitch_x
    return image[y : y + layout.tile_height, x : x + layout.tile_width]


def pixel_at(view, name, x, y):
    graphics = view.findChild(object, "mapsPlots")
    point = plotting.widget_point(graphics, view.plots()[name], x, y, view)
    return view.grab().toImage().pixelColor(point)


def test_seed_after_one_step_every_output_is_dead_and_drawn_black(qtbot, controller, step_and_wait):
    view = make_view(qtbot, controller, 900, 600)
    record = step_and_wait(controller)
    qtbot.wait(50)
    assert np.all(record.activation == 0)

    layout = view.mosaic_layout()
    for row in range(2):
        assert np.all(tile(view, "output", row, 0) == plotting.DEAD_CODE)
        x, y = layout.tile_centre(row, 0)
        colour = pixel_at(view, "output", x + 3, y + 3)
        assert max(colour.red(), colour.green(), colour.blue()) < 20
    assert view.pair_labels() == ["100% zero", "100% zero"]
    banner = view.findChild(object, "mapsDeadBanner")
    assert banner.isVisible()
    assert banner.text() == (
        "All ReLU outputs are 0: the filter is dead (since iteration 1) — see Diagnostics."
    )
    # The summary would repeat the banner: it moves into the banner's tooltip.
    summary = view.findChild(object, "mapsSummary")
    assert not summary.isVisible()
    assert "filter 0 100% (dead since iteration 1)" in summary.text()
    assert summary.text() in banner.toolTip()
    assert "no gradient flows back" in banner.toolTip()
    assert view.scale_labels()["output"] == "every output\nis 0 (dead)"


@pytest.mark.parametrize("size", [DOCK_1280, DOCK_1920])
def test_question_maps_are_large_and_whole_in_the_window_docks(
    qtbot, controller, step_and_wait, size
):
    """Each image's row (thumbnail, pre-activation, output, its zero share) at 64 px or more,
    every row in view, the banner one line, nothing cut off."""
    view = make_view(qtbot, controller, *size)
    step_and_wait(controller)
    qtbot.waitUntil(lambda: view.map_pixels() * view.mosaic_layout().tile_height >= 64)
    qtbot.waitUntil(lambda: laid_out(view))
    assert view.map_pixels() == int(view.map_pixels())  # whole pixels: crisp
    first, end = view.visible_rows()
    assert first <= 0.01 and end >= 1.99
    assert not view.findChild(object, "mapsRowsScroll").isVisible()
    graphics = view.findChild(object, "mapsPlots")
    for item in (*view.plots().values(), *view.plot_items().values()):
        assert inside(item, graphics)
    banner = view.findChild(object, "mapsDeadBanner")
    assert banner.isVisible() and banner.height() < 2 * banner.fontMetrics().height()
    assert banner.text() in banner.toolTip() or banner.toolTip().startswith("The maps")
    # The zero share of each image's output written beside its map.
    side = view.plots()["output"].getAxis("right")
    assert side.isVisible()
    assert [text for _, text in side._tickLevels[0]] == ["100% zero", "100% zero"]


def test_seed_at_iteration_0_nothing_is_dead_yet(qtbot, controller):
    view = make_view(qtbot, controller)
    assert not view.findChild(object, "mapsDeadBanner").isVisibleTo(view)
    assert view.pair_labels() == ["0% zero", "0% zero"]
    assert np.all(tile(view, "output", 0, 0) > plotting.DEAD_CODE)


def test_recommended_dead_fractions_are_the_records(qtbot, make_controller, question_dataset):
    controller = make_controller(question_dataset, preset_config("recommended"))
    view = make_view(qtbot, controller)
    record = controller.shown
    fraction = float(record.dead_fraction_per_filter[0])
    assert 0 < fraction < 1

    summary = view.findChild(object, "mapsSummary").text()
    assert summary == (
        f"Outputs that are 0 (off: no gradient passes back), over all 2 images: filter 0 "
        f"{fraction:.0%}"
    )
    per_image = (np.asarray(record.pre_activation) <= 0).mean(axis=(2, 3))
    assert view.pair_labels() == [f"{share:.0%} zero" for share in per_image[:, 0]]
    dead_pixels = np.count_nonzero(tile(view, "output", 0, 0) == plotting.DEAD_CODE)
    assert dead_pixels == np.count_nonzero(record.activation[0, 0] == 0)
    assert not view.findChild(object, "mapsDeadBanner").isVisibleTo(view)


def test_positive_outputs_use_the_positive_colours(qtbot, make_controller, question_dataset):
    controller = make_controller(question_dataset, preset_config("recommended"))
    view = make_view(qtbot, controller, 900, 600)
    record = controller.shown
    output = np.asarray(record.activation[0, 0])
    i, j = np.unravel_index(np.argmax(output), output.shape)
    layout = view.mosaic_layout()
    x, y = layout.tile_origin(0, 0)
    colour = pixel_at(view, "output", x + j + 0.5, y + i + 0.5)
    # The largest output takes the dark-blue end of the positive map.
    assert (colour.red(), colour.green(), colour.blue()) == pytest.approx((37, 52, 148), abs=12)


def test_predictions_and_losses_label_the_rows(qtbot, controller, step_and_wait):
    view = make_view(qtbot, controller, 1000, 700)
    record = step_and_wait(controller)
    qtbot.wait(50)
    ticks = view.plots()["inputs"].getAxis("left")._tickLevels[0]
    texts = [text for _, text in ticks]
    # The circle (label 1) is predicted as a cross after the update: marked wrong.
    assert record.predictions.tolist() == [0, 0]
    assert texts[0].startswith("#1 cross\n→ cross")
    assert texts[1].startswith("#2 circle")
    assert f"→ cross {1 - record.probabilities[1]:.0%} ✗" in texts[1]
    # The wrongly predicted image is framed in red.
    colour = pixel_at(view, "inputs", 0.0, view.mosaic_layout().pitch_y + 1)
    assert colour.red() > 180 and colour.green() < 80


def test_a_diverged_run_reads_nan_not_a_share_or_a_right_answer(
    qtbot, make_controller, question_dataset, step_and_wait
):
    """A review: all-NaN maps read "0% negative" and a NaN probability "→ cross ✓"."""
    config = preset_config("seed", activation="identity", dtype="float32", learning_rate=1e12)
    controller = make_controller(question_dataset, config)
    view = make_view(qtbot, controller, 1000, 700)
    record = step_and_wait(controller, 8)
    assert np.isnan(record.activation).all()
    qtbot.wait(50)
    texts = [text for _, text in view.plots()["inputs"].getAxis("left")._tickLevels[0]]
    assert all("→ NaN ✗" in text for text in texts)
    assert view._pair_texts == ["NaN", "NaN"]
    assert "filter 0 NaN" in view.findChild(QLabel, "mapsSummary").text()


def test_shapes_pages_through_80_images(qtbot, make_controller, shapes_dataset):
    controller = make_controller(shapes_dataset, preset_config("recommended", num_filters=8))
    view = make_view(qtbot, controller, 900, 600)
    page = view.findChild(object, "mapsPage")
    assert page.currentText() == "images 1–16 of 80"
    assert page.count() == 5
    thumbs = view.image_items()["inputs"]
    first_thumb = thumbs.image[:32, :32, :3].copy()
    np.testing.assert_array_equal(first_thumb, shapes_dataset.images[0].transpose(1, 2, 0))
    first_pre = tile(view, "pre", 0, 3).copy()

    qtbot.mouseClick(view.findChild(object, "mapsPageNext"), Qt.MouseButton.LeftButton)

    assert page.currentText() == "images 17–32 of 80"
    assert view.page_range() == (16, 32)
    np.testing.assert_array_equal(
        thumbs.image[:32, :32, :3], shapes_dataset.images[16].transpose(1, 2, 0)
    )
    assert not np.array_equal(tile(view, "pre", 0, 3), first_pre)
    assert len(view.pair_labels()) == PAGE_SIZE * 8

    page.setCurrentIndex(4)
    assert view.page_range() == (64, 80)
    assert not view.findChild(object, "mapsPageNext").isEnabled()


def test_whole_run_and_custom_scales_are_labelled(qtbot, make_controller, question_dataset):
    controller = make_controller(question_dataset, preset_config("seed"))
    view = make_view(qtbot, controller)
    initial_max = float(controller.shown.metrics["pre_activation_absmax"])
    controller.step()
    qtbot.waitUntil(lambda: controller.shown.iteration == 1 and not controller.is_running)
    mode = view.findChild(object, "mapsScaleMode")

    mode.setCurrentText("Whole run")
    after = float(controller.shown.metrics["pre_activation_absmax"])
    assert view.current_limits()["pre"] == pytest.approx(max(initial_max, after))
    assert view.scale_labels()["pre"] == "whole run"

    mode.setCurrentText("Custom")
    view.findChild(object, "mapsScaleCustom").setValue(100.0)
    assert view.current_limits() == {"pre": 100.0, "output": 100.0}
    assert view.scale_labels()["pre"] == "custom\n2048 clipped\non this page"
    assert [text for _, text in view._pre_bar.axis._tickLevels[0]] == ["-100.0", "0", "100.0"]
    assert np.all(np.isin(tile(view, "pre", 0, 0), (2, 254)))


def test_leaky_relu_speaks_of_negative_outputs(qtbot, make_controller, question_dataset):
    config = preset_config("seed", activation="leaky_relu")
    controller = make_controller(question_dataset, config)
    view = make_view(qtbot, controller)
    controller.step()
    qtbot.waitUntil(lambda: controller.shown.iteration == 1 and not controller.is_running)

    assert view.pair_labels() == ["100% negative", "100% negative"]
    summary = view.findChild(object, "mapsSummary").text()
    assert summary.startswith("Outputs that are negative")
    assert "dead" not in summary
    assert not view.findChild(object, "mapsDeadBanner").isVisibleTo(view)
    assert view.scale_labels()["output"] == "per iteration"
    limit = view.current_limits()["output"]
    ticks = view._out_bar.axis._tickLevels[0]
    assert [value for value, _ in ticks] == [-limit, 0.0, limit]
    # Negative outputs use the blue half of the diverging codes, not the dead code.
    assert np.all(tile(view, "output", 0, 0) < plotting.DIVERGING_CENTRE_CODE)


def test_plot_items_are_named_for_export(qtbot, controller):
    view = make_view(qtbot, controller)
    assert set(view.plot_items()) == {"maps-pre-activation", "maps-relu-output"}


@pytest.mark.parametrize(
    ("value", "code"),
    [(0.0, plotting.DEAD_CODE), (1e-300, plotting.DEAD_CODE + 1), (2.0, 255), (np.nan, 1)],
)
def test_activation_codes_keep_zero_apart_from_tiny_positives(value, code):
    out = np.empty(1, dtype=np.uint8)
    plotting.encode_activation(np.array([value]), 2.0, out)
    assert out[0] == code


def test_diverging_codes_are_centred_on_zero_and_coloured_as_saved_pngs():
    values = np.array([0.0, -5.0, 5.0, -1e9, 2.5])
    out = np.empty(len(values), dtype=np.uint8)
    plotting.encode_diverging(values, 5.0, out)
    assert out.tolist() == [128, 2, 254, 2, 191]
    np.testing.assert_array_equal(plotting.DIVERGING_CODE_LUT[out, :3], diverging_rgb(values, 5.0))


def test_maps_smaller_than_their_pixels_draw_every_nth_pixel(qtbot, make_controller):
    from model.data import Dataset

    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(16, 3, 64, 64), dtype=np.uint8)
    dataset = Dataset(images, np.arange(16) % 2, ("a", "b"), [f"{i}.png" for i in range(16)])
    controller = make_controller(dataset, preset_config("recommended", num_filters=16))
    view = make_view(qtbot, controller, 600, 400)
    qtbot.waitUntil(lambda: view.pixel_step() > 1)
    step = view.pixel_step()
    record = controller.shown

    shown = view.shown_layout()
    image = view.image_items()["pre"].image
    y, x = 3 * shown.pitch_y, 5 * shown.pitch_x
    codes = image[y : y + shown.tile_height, x : x + shown.tile_width]
    expected = np.empty(codes.shape, dtype=np.uint8)
    limit = view.current_limits()["pre"]
    plotting.encode_diverging(record.pre_activation[3, 5, ::step, ::step], limit, expected)
    np.testing.assert_array_equal(codes, expected)
    # The same plot coordinates as with every pixel: tiles stay where the layout puts them.
    assert (
        view.image_items()["pre"].mapRectToParent(view.image_items()["pre"].boundingRect())
        == view.mosaic_layout().data_rect()
    )

    view.resize(1900, 1400)
    qtbot.waitUntil(lambda: view.pixel_step() == 1)


def test_shapes_page_scrolls_its_rows_under_fixed_headers(qtbot, make_controller, shapes_dataset):
    controller = make_controller(shapes_dataset, preset_config("recommended", num_filters=8))
    view = make_view(qtbot, controller, *DOCK_1920)
    # Maps pixel for pixel at least (32×32 maps), the rows that do not fit scroll.
    assert view.map_pixels() * view.mosaic_layout().tile_height >= MIN_MAP_PIXELS
    scroll = view.findChild(object, "mapsRowsScroll")
    assert scroll.isVisible()
    first, end = view.visible_rows()
    assert first <= 0.01 and 4 <= end < PAGE_SIZE
    scroll.setValue(scroll.maximum())
    first, end = view.visible_rows()
    layout = view.mosaic_layout()
    # The last image's maps wholly in view (the gap after them need not be).
    assert end * layout.pitch_y >= (PAGE_SIZE - 1) * layout.pitch_y + layout.tile_height
    assert first > 4
    # The pre-activation and output plots scroll with the thumbnails.
    assert view.plots()["pre"].vb.viewRange()[1] == pytest.approx(
        view.plots()["inputs"].vb.viewRange()[1]
    )
    # Fit shows the page from its first row again.
    qtbot.mouseClick(view.findChild(object, "mapsResetZoom"), Qt.MouseButton.LeftButton)
    assert view.visible_rows()[0] <= 0.01 and scroll.value() == 0


def test_wheel_over_the_maps_scrolls_the_rows(qtbot, make_controller, shapes_dataset, turn_wheel):
    controller = make_controller(shapes_dataset, preset_config("recommended", num_filters=8))
    view = make_view(qtbot, controller, *DOCK_1280)
    scroll = view.findChild(object, "mapsRowsScroll")
    assert scroll.isVisible()
    graphics = view.findChild(object, "mapsPlots")
    layout = view.mosaic_layout()
    x, y = layout.tile_centre(1, 2)
    point = plotting.widget_point(graphics, view.plots()["pre"], x, y, graphics)
    before = view.visible_rows()[0]
    turn_wheel(graphics.viewport(), point, -2)
    assert view.visible_rows()[0] == pytest.approx(before + 2, abs=0.1)
    assert scroll.value() > 0


def test_hover_reads_out_a_map_pixel_over_the_footer(qtbot, make_controller, shapes_dataset):
    controller = make_controller(shapes_dataset, preset_config("recommended", num_filters=8))
    view = make_view(qtbot, controller, *DOCK_1920)
    graphics = view.findChild(object, "mapsPlots")
    summary = view.findChild(object, "mapsSummary")
    readout = view.findChild(object, "mapsReadout")
    height = graphics.height()
    assert summary.isVisible() and not readout.isVisible()
    x, y = view.mosaic_layout().tile_origin(1, 3)
    point = plotting.widget_point(graphics, view.plots()["pre"], x + 5.5, y + 7.5, graphics)
    qtbot.mouseMove(graphics.viewport(), point)
    qtbot.waitUntil(readout.isVisible)

    # The pixel under the mouse (within a pixel of the aimed one, as the mouse moves in
    # whole screen pixels), with its pre-activation and output.
    match = re.match(
        r"image 2, filter 3, x=(\d+), y=(\d+): pre-activation (\S+) → output", readout.text()
    )
    assert match
    column, row = int(match[1]), int(match[2])
    assert abs(column - 5) <= 1 and abs(row - 7) <= 1
    assert match[3] == format_number(controller.shown.pre_activation[1, 3, row, column])
    # The read-out covers the summary; nothing above it moves.
    assert readout.geometry() == view.findChild(object, "mapsFooter").rect()
    qtbot.wait(20)
    assert graphics.height() == height


# -- only the rows in view are colour-coded ---------------------------------------------------


def true_codes(view, record, name, row, f):
    """What map (row, f) of ``record`` is coded as, from its values and the view's limits."""
    limits = view.current_limits()
    values = (record.pre_activation if name == "pre" else record.activation)[row, f]
    codes = np.empty(values.shape, dtype=np.uint8)
    if name == "pre":
        return plotting.encode_diverging(values, limits["pre"], codes)
    return plotting.encode_activation(values, limits["output"], codes)


def coded_rows(view, record):
    """Per row of the page: True when every map holds ``record``'s true codes, False when
    every map holds the gap's code (nothing), None otherwise (something else: wrong)."""
    states = []
    for row in range(view.page_range()[1]):
        tiles = [
            (tile(view, name, row, f), true_codes(view, record, name, row, f))
            for name in ("pre", "output")
            for f in range(record.activation.shape[1])
        ]
        if all(np.array_equal(shown, true) for shown, true in tiles):
            states.append(True)
        elif all(np.all(shown == plotting.GAP_CODE) for shown, _ in tiles):
            states.append(False)
        else:
            states.append(None)
    return states


def test_rows_are_coded_as_they_come_into_view_and_every_row_is_saved(
    qtbot, make_controller, shapes_dataset, step_and_wait, tmp_path
):
    """Colour-coding two million map values took some 3 ms a frame, for 16 rows of which a
    1280×800 window shows 3: a record codes the rows in view, scrolling codes the rows that
    come into view, and a saved figure holds every row. No row ever shows another record's
    codes, and the zero shares written are of every row."""
    controller = make_controller(shapes_dataset, preset_config("recommended", num_filters=4))
    view = make_view(qtbot, controller, *DOCK_1280)
    record = step_and_wait(controller)
    qtbot.waitUntil(lambda: laid_out(view) and view._record is record)
    assert view.page_range()[0] == 0
    count = view.page_range()[1]  # (the first page's rows)
    first, end = (math.floor(v) for v in view.visible_rows())
    assert first == 0 and 1 <= end < count - 2  # (most rows scroll out of view)
    states = coded_rows(view, record)
    assert states[: end + 1] == [True] * (end + 1) and states[end + 1 :] == [False] * (
        count - end - 1
    )
    shares = np.mean(record.activation[:count] <= 0, axis=(2, 3))
    assert view.pair_labels() == [f"{format_share(v)} zero" for v in shares.reshape(-1)]

    # Scrolled to the last rows: they are coded now; the first ones keep their codes.
    bar = view._rows_bar
    bar.setValue(bar.maximum())
    qtbot.waitUntil(lambda: view.visible_rows()[1] > count - 1)
    states = coded_rows(view, record)
    assert states[-2:] == [True, True] and states[0] is True and None not in states

    # A new record: the rows out of view are emptied, not left with the last record's codes.
    record = step_and_wait(controller)
    qtbot.waitUntil(lambda: view._record is record)
    states = coded_rows(view, record)
    assert states[-2:] == [True, True] and states[0] is False and None not in states

    # Rows coded above and below the ones in view (scrolled to the top, then the middle):
    # a new record codes those in view and empties the others, each run on its own.
    bar.setValue(0)
    bar.setValue(bar.maximum() // 2)
    qtbot.waitUntil(lambda: 2 < view.visible_rows()[0] < count - 4)
    first, end = (math.floor(v) for v in view.visible_rows())
    record = step_and_wait(controller)
    qtbot.waitUntil(lambda: view._record is record)
    states = coded_rows(view, record)
    assert states[first : end + 1] == [True] * (end + 1 - first) and None not in states
    assert states[0] is False and states[-1] is False
    shares = np.mean(record.activation[:count] <= 0, axis=(2, 3))
    assert view.pair_labels() == [f"{format_share(v)} zero" for v in shares.reshape(-1)]

    # Saved, every row is in the figure (and stays coded in the window): saved again, now
    # that every row was coded beforehand, the figure is the same.
    (tmp_path / "first").mkdir()
    (tmp_path / "again").mkdir()
    save_plots(view.plot_items(), tmp_path / "first")
    assert coded_rows(view, record) == [True] * count
    save_plots(view.plot_items(), tmp_path / "again")
    for name in ("maps-pre-activation.png", "maps-relu-output.png"):
        first_saved = np.asarray(Image.open(tmp_path / "first" / name))
        assert np.array_equal(first_saved, np.asarray(Image.open(tmp_path / "again" / name)))


def test_a_pixel_step_changed_while_drawing_leaves_the_zero_shares_true(
    qtbot, make_controller, shapes_dataset, step_and_wait
):
    """Drawing the colour bars can lay the panel out and change the pixel step (every 2nd
    pixel drawn), which makes new code arrays: the shares are counted on the codes the record
    was drawn with, not on the new ones (a review found 25% written for 99%)."""
    controller = make_controller(shapes_dataset, preset_config("recommended", num_filters=1))
    view = make_view(qtbot, controller, *DOCK_1280)
    record = step_and_wait(controller)
    qtbot.waitUntil(lambda: laid_out(view) and view._record is record)
    assert view.pixel_step() == 1
    draw_bars, steps = view._draw_bars, []

    def bars_then_a_smaller_scale(*args):
        draw_bars(*args)
        if not steps:
            steps.append(1)
            view._update_step(0.4)  # (as _size_panels does when the fitted scale drops)

    view._draw_bars = bars_then_a_smaller_scale
    record = step_and_wait(controller)
    qtbot.waitUntil(lambda: view._record is record)
    assert steps and view.pixel_step() == 2
    count = view.page_range()[1]
    shares = np.mean(record.activation[:count] <= 0, axis=(2, 3))
    assert view.pair_labels() == [f"{format_share(v)} zero" for v in shares.reshape(-1)]

"""MapsView in a small window, its hover read-out over time, and its saved figures.

A reviewer found at 1024×700 maps a few pixels wide under overlapping row labels, a read-out
that kept the values of an earlier iteration, and saved map plots that did not say which
images or iteration they show.
"""

import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QEvent, QPointF
from PySide6.QtGui import QFontMetricsF, QImage, QPainter
from PySide6.QtWidgets import QApplication

from inspector import export, plotting
from inspector.export import save_plots
from inspector.views.maps import MIN_MAP_PIXELS, MapsView
from model.formatting import format_number, format_share
from model.presets import preset_config

#: The ReLU outputs dock's size in the 1280×800 window at first launch, and in a maximised
#: 1920×1080 window (as in test_maps_view).
DOCK_1280 = (631, 242)
DOCK_1920 = (1250, 330)


def laid_out(view):
    """Whether the maps are drawn at their fitted size (the plots have their new widths)."""
    width = view.mosaic_layout().data_rect().width() * view.map_pixels()
    return abs(view.plots()["pre"].vb.width() - width * 1.02) < 2


def shown_laid_out(qtbot, show_view, controller, size):
    """A MapsView on ``controller`` shown at ``size``, its maps laid out."""
    view = show_view(MapsView(controller), *size)
    qtbot.waitUntil(lambda: laid_out(view))
    return view


def hovered(qtbot, view, *cell):
    """The read-out once the mouse is over ``cell`` (image row, filter, x, y) of the
    pre-activation maps, and the point the mouse is at."""
    readout = view.findChild(object, "mapsReadout")
    point = hover(qtbot, view, "pre", *cell)
    qtbot.waitUntil(readout.isVisible)
    return readout, point


def text_rects(axis):
    """The rectangles (in scene coordinates) of the texts ``axis`` draws, with the texts."""
    image = QImage(10, 10, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        specs = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    return [(axis.mapRectToScene(rect), text) for rect, _, text in specs[2]]


def assert_apart(rects):
    """No two of the text rectangles overlap."""
    for k, (rect, text) in enumerate(rects):
        for other, other_text in rects[k + 1 :]:
            assert not rect.intersects(other), (text, other_text)


# -- a small window: maps keep a readable size and the panel scrolls ----------------------------


def test_maps_stay_readable_in_a_1024x700_window(qtbot, controller, show_window, step_and_wait):
    window = show_window(controller)
    window.resize(1024, 700)
    view = window.maps_view
    qtbot.waitUntil(lambda: view.isVisible() and view.width() < 500)
    record = step_and_wait(controller)
    qtbot.wait(100)
    # Every map at least MIN_MAP_PIXELS across (they were under 2 pixels), drawn pixel for pixel.
    layout = view.mosaic_layout()
    assert view.map_pixels() * layout.tile_height >= MIN_MAP_PIXELS
    assert view.map_pixels() * layout.tile_width >= MIN_MAP_PIXELS
    qtbot.waitUntil(lambda: laid_out(view))
    assert view.pixel_step() == 1
    assert view.plots()["pre"].vb.height() >= 2 * layout.tile_height * view.map_pixels()
    # The panel scrolls across instead of squashing the maps.
    scroll = view.findChild(object, "mapsScroll")
    graphics = view.findChild(object, "mapsPlots")
    qtbot.waitUntil(scroll.horizontalScrollBar().isVisible)
    assert graphics.width() > scroll.viewport().width()
    # Row labels and the zero shares beside the output maps: one per row, none overlapping.
    rows = text_rects(view.plots()["inputs"].getAxis("left"))
    shares = text_rects(view.plots()["output"].getAxis("right"))
    assert [text.split("\n")[0].rsplit(" ", 1)[0] for _, text in rows] == ["#1 cross", "#2 circle"]
    assert [text for _, text in shares] == ["100% zero", "100% zero"]
    assert_apart(rows)
    assert_apart(shares)
    # Everything of the panel is there to scroll to: the output colour bar and its caption.
    for item in view.plot_items().values():
        assert item.sceneBoundingRect().right() <= graphics.width() + 0.5
    # The colour scales are the record's, whatever the size.
    assert view.current_limits()["pre"] == pytest.approx(np.abs(record.pre_activation).max())
    ticks = [text for _, text in view._pre_bar.axis._tickLevels[0]]
    assert ticks[-1] == format_number(view.current_limits()["pre"])

    # Scrolled to the end, the output colour bar is in view.
    scroll.horizontalScrollBar().setValue(scroll.horizontalScrollBar().maximum())
    shown = scroll.viewport().rect().translated(-graphics.pos())
    assert graphics.mapFromScene(view._out_bar.sceneBoundingRect()).boundingRect().right() <= (
        shown.right() + 1
    )

    # A larger window: no scroll bar, maps larger again.
    small = view.map_pixels()
    window.resize(1280, 800)
    qtbot.waitUntil(lambda: not scroll.horizontalScrollBar().isVisible())
    qtbot.waitUntil(lambda: view.map_pixels() > small)


@pytest.mark.parametrize("size", [(380, 200), (300, 110)])
def test_a_narrow_or_low_panel_scrolls_rather_than_shrinking_the_maps(
    qtbot, controller, show_view, size
):
    view = show_view(MapsView(controller), *size)
    qtbot.waitUntil(lambda: laid_out(view))
    layout = view.mosaic_layout()
    assert view.map_pixels() * layout.tile_height >= MIN_MAP_PIXELS
    scroll = view.findChild(object, "mapsScroll")
    graphics = view.findChild(object, "mapsPlots")
    qtbot.waitUntil(scroll.horizontalScrollBar().isVisible)
    if size[1] < 150:  # not even one row of maps fits the height: the panel scrolls down too
        qtbot.waitUntil(scroll.verticalScrollBar().isVisible)
        assert graphics.height() > scroll.viewport().height()
        # ... titles and rows together: the rows do not scroll on their own as well
        assert not view.findChild(object, "mapsRowsScroll").isVisible()
        first, end = view.visible_rows()
        assert first <= 0.01 and end >= 1.9
    assert_apart(text_rects(view.plots()["inputs"].getAxis("left")))
    assert_apart(text_rects(view.plots()["output"].getAxis("right")))


@pytest.mark.parametrize("size", [DOCK_1280, DOCK_1920])
def test_large_docks_do_not_scroll(qtbot, controller, show_view, size):
    view = show_view(MapsView(controller), *size)
    qtbot.waitUntil(lambda: laid_out(view))
    scroll = view.findChild(object, "mapsScroll")
    qtbot.waitUntil(lambda: not scroll.verticalScrollBar().isVisible())
    assert not scroll.horizontalScrollBar().isVisible()
    graphics = view.findChild(object, "mapsPlots")
    assert graphics.minimumWidth() == graphics.minimumHeight() == 0
    assert view.map_pixels() * view.mosaic_layout().tile_height >= 64


def test_wheel_scrolls_a_narrow_panel_across(qtbot, controller, show_view, turn_wheel):
    view = show_view(MapsView(controller), 380, 200)
    qtbot.waitUntil(lambda: laid_out(view))
    scroll = view.findChild(object, "mapsScroll")
    graphics = view.findChild(object, "mapsPlots")
    qtbot.waitUntil(lambda: scroll.horizontalScrollBar().maximum() > 0)
    x, y = view.mosaic_layout().tile_centre(0, 0)
    point = plotting.widget_point(graphics, view.plots()["pre"], x, y, graphics)
    limits = view.current_limits()
    turn_wheel(graphics.viewport(), point, -1)
    assert scroll.horizontalScrollBar().value() > 0
    # A plain wheel turn never zooms the maps.
    assert view.map_pixels() * view.mosaic_layout().tile_height >= MIN_MAP_PIXELS
    assert view.current_limits() == limits


# -- the hover read-out follows what is under the mouse ------------------------------------------


def hover(qtbot, view, name, row, f, x, y):
    """Move the mouse over pixel (x, y) of map (row, f) of plot ``name``; returns the point."""
    graphics = view.findChild(object, "mapsPlots")
    left, top = view.mosaic_layout().tile_origin(row, f)
    point = plotting.widget_point(graphics, view.plots()[name], left + x, top + y, graphics)
    qtbot.mouseMove(graphics.viewport(), point)
    return point


def under(view, name, point):
    """(row, filter, y, x) of the pixel of map plot ``name`` at ``point`` of the maps'
    viewport now (None when there is none)."""
    graphics = view.findChild(object, "mapsPlots")
    scene = graphics.mapToScene(point)
    plot = view.plots()[name]
    if not plot.vb.sceneBoundingRect().contains(scene):
        return None
    plotted = plot.vb.mapSceneToView(QPointF(scene))
    return view.mosaic_layout().locate(plotted.x(), plotted.y())


def expected_text(view, record, cell):
    row, f, i, j = cell
    first = view.page_range()[0]
    pre = float(record.pre_activation[first + row, f, i, j])
    out = float(record.activation[first + row, f, i, j])
    dead = " (off: no gradient)" if out <= 0 else ""
    share = float(np.mean(record.activation[first + row, f] <= 0))
    return (
        f"image {first + row + 1}, filter {f}, x={j}, y={i}: pre-activation "
        f"{format_number(pre)} → output {format_number(out)}{dead} · this map "
        f"{format_share(share)} zero"
    )


def test_readout_shows_the_new_record_under_a_mouse_that_stands_still(
    qtbot, controller, show_view, step_and_wait
):
    """The question's first step kills the filter: a read-out still saying '0% zero' over
    maps that are now all zero was the reviewer's stale read-out."""
    view = show_view(MapsView(controller), *DOCK_1920)
    qtbot.waitUntil(lambda: laid_out(view))
    readout = view.findChild(object, "mapsReadout")
    point = hover(qtbot, view, "output", 0, 0, 28.5, 16.5)
    qtbot.waitUntil(readout.isVisible)
    before = controller.shown
    assert readout.text() == expected_text(view, before, under(view, "output", point))
    assert readout.text().endswith("this map 0% zero")

    record = step_and_wait(controller)
    qtbot.waitUntil(lambda: laid_out(view))
    qtbot.wait(50)  # the maps may move: the colour bars' labels are wider now
    cell = under(view, "output", point)
    assert cell is not None and cell[0] == 0
    assert readout.isVisible()
    assert readout.text() == expected_text(view, record, cell)
    assert readout.text().endswith("(off: no gradient) · this map 100% zero")

    # The mouse leaves the maps: the footer shows the summary (here the banner) again.
    QApplication.sendEvent(
        view.findChild(object, "mapsPlots").viewport(), QEvent(QEvent.Type.Leave)
    )
    assert not readout.isVisible()
    assert view.findChild(object, "mapsDeadBanner").isVisible()
    # ... and stays so when the next record comes.
    step_and_wait(controller)
    qtbot.wait(50)
    assert not readout.isVisible()


def test_readout_clears_when_the_mouse_moves_off_the_maps(qtbot, controller, show_view):
    view = shown_laid_out(qtbot, show_view, controller, DOCK_1280)
    readout, _ = hovered(qtbot, view, 1, 0, 10.5, 10.5)
    assert readout.text().startswith("image 2, filter 0")
    qtbot.mouseMove(view.findChild(object, "mapsHeading"))
    qtbot.waitUntil(lambda: not readout.isVisible())
    assert view.findChild(object, "mapsSummary").isVisible()


def test_readout_follows_rows_scrolled_under_the_mouse(
    qtbot, make_controller, shapes_dataset, turn_wheel, show_view
):
    controller = make_controller(shapes_dataset, preset_config("recommended", num_filters=8))
    view = shown_laid_out(qtbot, show_view, controller, DOCK_1280)
    readout, point = hovered(qtbot, view, 1, 2, 5.5, 7.5)
    assert readout.text().startswith("image 2, filter 2")
    graphics = view.findChild(object, "mapsPlots")
    turn_wheel(graphics.viewport(), point, -2)
    cell = under(view, "pre", point)
    assert cell[0] == 3
    record = controller.shown
    row, f, i, j = cell
    assert readout.text().startswith(f"image 4, filter 2, x={j}, y={i}: pre-activation ")
    assert format_number(float(record.pre_activation[3, 2, i, j])) in readout.text()


def assert_true_readout(view, controller, text):
    """``text`` (a read-out) gives the shown record's (or the dataset's) values of the pixel
    it names."""
    record, dataset = controller.shown, controller.dataset
    found = re.fullmatch(
        r"image (\d+), filter (\d+), x=(\d+), y=(\d+): pre-activation (\S+) → output (\S+)"
        r"( \(dead\))? · this map (\S+) zero",
        text,
    )
    if found:
        index, f, j, i = (int(found[k]) for k in range(1, 5))
        assert found[5] == format_number(float(record.pre_activation[index - 1, f, i, j]))
        assert found[6] == format_number(float(record.activation[index - 1, f, i, j]))
        share = float(np.mean(record.activation[index - 1, f] <= 0))
        assert found[8] == format_share(share)
        return
    found = re.fullmatch(r"image (\d+) \((\w+)\), pixel x=(\d+), y=(\d+): RGB \((.*)\)", text)
    assert found, text
    index, j, i = int(found[1]), int(found[3]), int(found[4])
    assert found[2] == dataset.class_names[int(dataset.labels[index - 1])]
    rgb = ", ".join(str(int(v)) for v in dataset.images[index - 1, :, i, j])
    assert found[5] == rgb


def test_readout_of_a_removed_image_is_cleared(qtbot, controller, show_view):
    view = shown_laid_out(qtbot, show_view, controller, DOCK_1920)
    readout, _ = hovered(qtbot, view, 1, 0, 12.5, 12.5)
    assert readout.text().startswith("image 2, ")

    controller.remove_images([1])
    qtbot.waitUntil(lambda: len(controller.dataset) == 1, timeout=10000)
    qtbot.waitUntil(lambda: laid_out(view))
    qtbot.wait(50)
    # Image 2 is gone: no read-out names it. Whatever now lies under the mouse (the maps
    # moved) is read out, with its true values.
    if readout.isVisible():
        assert readout.text().startswith("image 1")
        assert_true_readout(view, controller, readout.text())


# -- saved map plots say what they show ----------------------------------------------------------


def svg_texts(path):
    root = ET.fromstring(path.read_bytes())
    return [
        "".join(node.itertext()).strip() for node in root.iter("{http://www.w3.org/2000/svg}text")
    ]


def test_saved_maps_name_the_iteration_the_images_and_their_zero_shares(
    qtbot, controller, show_view, step_and_wait, tmp_path
):
    view = show_view(MapsView(controller), *DOCK_1280)
    record = step_and_wait(controller, 2)
    qtbot.waitUntil(lambda: laid_out(view))
    written = save_plots(view.plot_items(), tmp_path)
    # Names and formats as before.
    assert [p.name for p in written] == [
        "maps-pre-activation.png",
        "maps-pre-activation.svg",
        "maps-relu-output.png",
        "maps-relu-output.svg",
    ]
    assert record.iteration == 2
    pre = svg_texts(tmp_path / "maps-pre-activation.svg")
    assert "pre-activation · iteration 2" in pre
    assert pre.count("#1 cross (label 0)") == 1
    assert pre.count("#2 circle (label 1)") == 1
    assert pre.count("ReLU output 100% zero") == 2
    assert format_number(view.current_limits()["pre"]) in pre
    out = svg_texts(tmp_path / "maps-relu-output.svg")
    assert "ReLU output · iteration 2" in out
    assert "#1 cross (label 0)" in out and "#2 circle (label 1)" in out
    assert out.count("100% zero") == 2

    # The window is as it was: short titles, no row labels beside the maps.
    assert view._pre_title.text == "pre-activation"
    assert view._out_title.text == "ReLU output"
    for name in ("pre", "output"):
        assert not view.plots()[name].getAxis("left").isVisible()


def ink_columns(rgb, top, bottom):
    """Columns of rows top..bottom of ``rgb`` with dark (text) pixels."""
    band = rgb[top:bottom]
    return np.flatnonzero((band.sum(axis=2) < 3 * 120).any(axis=0))


def test_saved_png_carries_the_title_and_row_labels(qtbot, controller, show_view, tmp_path):
    view = show_view(MapsView(controller), *DOCK_1280)
    qtbot.waitUntil(lambda: laid_out(view))
    panel = view.plot_items()["maps-relu-output"]
    title = "ReLU output · iteration 0"
    # The figure the PNG is drawn from (as render_png and save_plots lay it out): that title,
    # and each image's label left of its maps.
    with export.export_layout(panel) as geometry:
        assert view._out_title.text == title
        axis = view.plots()["output"].getAxis("left")
        assert axis.isVisible()
        labels = [text for _, text in text_rects(axis)]
        assert labels == ["#1 cross (label 0)", "#2 circle (label 1)"]
        assert_apart(text_rects(axis))
        data_left = geometry.data_rect.left()
        width = geometry.size.width()
    (tmp_path / "maps.png").write_bytes(export.render_png(panel))
    with Image.open(tmp_path / "maps.png") as image:
        rgb = np.asarray(image.convert("RGB")).astype(int)
    scale = rgb.shape[1] / width
    # The title's ink is as wide as the whole title (not the window's short one) ...
    columns = ink_columns(rgb, 0, int(18 * scale))
    advance = QFontMetricsF(plotting.font(13, bold=True)).horizontalAdvance(title) * scale
    assert columns.size and columns[-1] - columns[0] == pytest.approx(advance, rel=0.15)
    # ... and left of the maps is the column of row labels (there was nothing).
    left = int(data_left * scale) - 4
    assert left > 100
    assert ink_columns(rgb[:, :left], int(18 * scale), rgb.shape[0]).size > 0.3 * left
    # The window is as it was.
    assert view._out_title.text == "ReLU output"
    assert not view.plots()["output"].getAxis("left").isVisible()


def test_saved_maps_of_a_page_say_which_images(
    qtbot, make_controller, shapes_dataset, tmp_path, show_view
):
    controller = make_controller(shapes_dataset, preset_config("recommended", num_filters=8))
    view = shown_laid_out(qtbot, show_view, controller, DOCK_1920)
    first, end = view.visible_rows()
    shown = int(np.ceil(end - 1e-6))
    assert 1 < shown < 16
    title, rows = view.export_texts("pre")
    assert title == f"pre-activation · iteration 0 · images 1–{shown} of 80"
    assert len(rows) == shown
    record = controller.shown
    zero = (record.activation[:shown] <= 0).mean(axis=(1, 2, 3))
    assert [text for _, text in rows] == [
        f"#{n + 1} {shapes_dataset.class_names[int(shapes_dataset.labels[n])]} "
        f"(label {int(shapes_dataset.labels[n])})\nReLU output {format_share(zero[n])} zero, "
        "all filters"
        for n in range(shown)
    ]
    # A saved figure holds every image of the page, not only those in view (the last of
    # them cut in half), and the window is left as it was.
    before = view.grab().toImage()
    save_plots(view.plot_items(), tmp_path)
    texts = svg_texts(tmp_path / "maps-relu-output.svg")
    assert "ReLU output · iteration 0 · images 1–16 of 80" in texts
    assert [t for t in texts if re.fullmatch(r"#\d+ \w+ \(label \d\)", t)] == [
        f"#{n + 1} {shapes_dataset.class_names[int(shapes_dataset.labels[n])]} "
        f"(label {int(shapes_dataset.labels[n])})"
        for n in range(16)
    ]
    assert re.compile(r"\d+% zero, all filters").fullmatch(
        texts[texts.index("#1 cross (label 0)") + 1]
    )
    assert view.visible_rows() == (first, end) and view.grab().toImage() == before


def test_sizing_the_maps_never_calls_itself_deeply_at_any_size(
    qtbot, controller, show_view, step_and_wait
):
    """Setting the plots' minimum size resizes them at once; the scroll bars that then came
    or went made the sizing call itself until the stack overflowed (a RecursionError at
    1024×700 in the window; a crash in this sweep of sizes)."""
    view = show_view(MapsView(controller), 400, 200)
    original = view._size_panels
    depth = {"now": 0, "most": 0}

    def counting():
        depth["now"] += 1
        depth["most"] = max(depth["most"], depth["now"])
        try:
            original()
        finally:
            depth["now"] -= 1

    view._size_panels = counting
    step_and_wait(controller)
    for width in range(180, 700, 23):
        for height in range(90, 320, 17):
            view.resize(width, height)
            qtbot.wait(1)
    assert depth["most"] <= 2, depth


def test_a_custom_scale_does_not_lay_the_panel_out_at_every_frame(
    qtbot, make_controller, shapes_dataset, show_view
):
    """With a custom limit the captions count the values beyond it, a count that changes at
    every iteration while training; only a change of the captions' width moves the maps."""
    controller = make_controller(shapes_dataset, preset_config("recommended"))
    view = shown_laid_out(qtbot, show_view, controller, DOCK_1280)
    view._scale_mode.setCurrentText("Custom")
    view._custom.setValue(0.05)
    qtbot.wait(50)
    sized = []
    original = view._size_panels
    view._size_panels = lambda: (sized.append(1), original())
    texts = set()
    for iteration in range(1, 7):
        view.show_record(controller.record(0) if iteration == 1 else controller.shown)
        controller.step()
        qtbot.waitUntil(lambda iteration=iteration: controller.shown.iteration == iteration)
        texts.add(view._scale_texts["pre"])
    assert len(texts) > 2  # the clipped count changed from frame to frame
    assert len(sized) <= 2

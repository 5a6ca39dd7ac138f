"""Saving plots writes crisp PNGs and valid SVGs, never over existing files, and all or
nothing."""

import xml.etree.ElementTree as ET

import numpy as np
import pyqtgraph as pg
import pytest
from PIL import Image
from PySide6.QtWidgets import QGraphicsView, QGraphicsWidget, QLabel, QTabWidget

import inspector.export as export
from inspector.export import MIN_PNG_WIDTH, save_plots
from inspector.views.curves import FOREGROUND, MIN_PLOT_HEIGHT, MUTED, PLOT_NAMES, CurvesView
from inspector.views.filters import FiltersView
from inspector.views.maps import MapsView
from model.files import SaveError
from model.formatting import format_number
from model.presets import preset_config


@pytest.fixture
def curves(qtbot, controller, step_and_wait):
    view = CurvesView(controller)
    qtbot.addWidget(view)
    view.resize(900, 600)
    view.show()
    qtbot.waitExposed(view)
    step_and_wait(controller, 3)
    return view


def test_save_plots_writes_png_and_svg_of_every_plot(curves, tmp_path):
    written = save_plots(curves.plot_items(), tmp_path)
    expected = [tmp_path / f"{name}{suffix}" for name in PLOT_NAMES for suffix in (".png", ".svg")]
    assert written == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in expected)
    for name in PLOT_NAMES:
        with Image.open(tmp_path / f"{name}.png") as image:
            image.load()
            assert image.format == "PNG"
            assert image.width >= MIN_PNG_WIDTH
            # a drawn plot, not an empty canvas
            assert len(image.convert("RGB").getcolors(maxcolors=1 << 20)) > 20
        svg = (tmp_path / f"{name}.svg").read_text(encoding="utf-8")
        assert "<svg" in svg
        root = ET.fromstring(svg.encode("utf-8"))
        assert root.tag.endswith("svg")
    weights_svg = (tmp_path / "curve-weights.svg").read_text(encoding="utf-8")
    assert "Conv filter weights" in weights_svg


def test_second_save_refuses_and_writes_nothing(curves, tmp_path):
    save_plots(curves.plot_items(), tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    (tmp_path / "curve-loss.svg").unlink()  # one target free, the others taken
    with pytest.raises(SaveError, match="already exist") as raised:
        save_plots(curves.plot_items(), tmp_path)
    assert "curve-loss.png" in str(raised.value)
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert "curve-loss.svg" not in after
    assert after == {k: v for k, v in before.items() if k != "curve-loss.svg"}

    written = save_plots([curves], tmp_path, overwrite=True)  # views work as well as items
    assert len(written) == 2 * len(PLOT_NAMES)
    assert (tmp_path / "curve-loss.svg").exists()


def test_folder_that_cannot_exist_gives_save_error(curves, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(SaveError, match="does not exist|not a folder"):
        save_plots(curves.plot_items(), blocker / "plots")
    with pytest.raises(SaveError, match="not a folder"):
        save_plots(curves.plot_items(), blocker)
    with pytest.raises(SaveError):
        save_plots(curves.plot_items(), tmp_path / ("x" * 300))
    assert [p.name for p in tmp_path.iterdir()] == ["a-file"]


def test_a_failed_write_removes_what_the_save_had_written(curves, tmp_path, monkeypatch):
    calls = []
    real_write = export.write_atomic

    def failing_third(path, data, *, overwrite=False):
        calls.append(path)
        if len(calls) == 3:
            raise SaveError(28, f"Could not save {path}: the disk is full")
        return real_write(path, data, overwrite=overwrite)

    monkeypatch.setattr(export, "write_atomic", failing_third)
    with pytest.raises(SaveError, match="disk is full"):
        save_plots(curves.plot_items(), tmp_path)
    assert len(calls) == 3
    assert list(tmp_path.iterdir()) == []


def test_svg_keeps_closed_paths_closed(curves):
    # Qt writes closed shapes (triangle markers, the plot frame) as "M .. L .. Z"; pyqtgraph
    # 0.14 could not parse that at all, and the fix must not drop the closing command
    svg = export.render_svg(curves.plot_items()["curve-gradient-norms"]).decode("utf-8")
    paths = [p.get("d", "") for p in ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}path")]
    closed = [d for d in paths if d.rstrip().endswith("Z")]
    assert closed, paths
    for d in closed:
        assert d.lstrip().startswith("M")


def test_right_click_export_stays_available(curves):
    for plot in curves.plot_items().values():
        assert plot.menuEnabled()
        actions = [a.text() for a in plot.scene().contextMenu]
        assert any("Export" in text for text in actions)


# -- every plot exported as a whole figure, whatever its size in the window ----------------------
#
# A plot used to be exported at its size on screen, scaled up to MIN_PNG_WIDTH: from a tab that
# was never in front (never laid out) or a short dock that gave a PNG of a huge title and legend
# over a plot a few pixels high. The checks below read the PNGs themselves.

#: Text ink may cover at most this share of a figure (about 0.3–0.5% at twice screen size;
#: 1.1–4.6% when a 200×80 plot was blown up to 1200 pixels).
MAX_INK = 0.008


def pixels(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB")).astype(int)


def near(rgb: np.ndarray, color: str, tolerance: int) -> np.ndarray:
    target = np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)])
    return np.abs(rgb - target).sum(axis=2) <= tolerance


def ink(rgb: np.ndarray) -> float:
    """Share of the image drawn in the text colour."""
    return float(near(rgb, FOREGROUND, 60).mean())


def painted(rgb: np.ndarray) -> float:
    """Share of the image that is not white background."""
    return float((np.abs(rgb - 255).sum(axis=2) > 30).mean())


def longest_run(mask: np.ndarray) -> int:
    """Longest run of True down any column of ``mask``."""
    best = 0
    for column in np.flatnonzero(mask.any(axis=0)):
        values = np.concatenate(([0], mask[:, column].astype(int), [0]))
        edges = np.flatnonzero(np.diff(values))
        best = max(best, int((edges[1::2] - edges[::2]).max()))
    return best


def assert_curve_figure(rgb, name):
    """A whole plot: proportions of a figure, axes as long as the figure, text of normal size."""
    height, width = rgb.shape[:2]
    assert width >= MIN_PNG_WIDTH
    assert 0.5 <= height / width <= 0.75, (name, width, height)
    axis = near(rgb, MUTED, 40)
    assert longest_run(axis) >= 0.6 * height, name  # the y axis: the data area's height
    assert longest_run(axis.T) >= 0.75 * width, name  # the x axis: its width
    assert ink(rgb) <= MAX_INK, (name, ink(rgb))


def svg_size(path) -> tuple[float, float]:
    root = ET.fromstring(path.read_bytes())
    _, _, width, height = (float(v) for v in root.get("viewBox").split())
    return width, height


@pytest.fixture
def back_tab_curves(qtbot, controller, step_and_wait):
    """Curves in a tab behind another, laid out only while their dock was small (in the
    1280×800 window, Curves lies behind "ReLU outputs"), after two steps of the question."""
    tabs = QTabWidget()
    qtbot.addWidget(tabs)
    tabs.addTab(QLabel("ReLU outputs"), "ReLU outputs")
    view = CurvesView(controller)
    tabs.addTab(view, "Curves")
    tabs.setCurrentWidget(view)
    tabs.resize(420, 160)
    tabs.show()
    qtbot.waitExposed(tabs)
    tabs.setCurrentIndex(0)
    tabs.resize(640, 300)  # the window grows: the hidden tab keeps its small layout
    step_and_wait(controller, 2)
    assert not view.isVisible()
    # Laid out at the least room the panel gives its plots (it scrolls rather than squash them
    # further): data areas under 100 pixels high.
    graphics = view.findChild(QGraphicsView, "curvesGraphics")
    assert graphics.height() == graphics.minimumHeight() == 3 * MIN_PLOT_HEIGHT
    assert view.plot_items()["curve-loss"].vb.height() < 100
    yield view  # (the tabs stay referenced until the test ends)


def test_plots_of_a_tab_never_in_front_export_as_whole_figures(back_tab_curves, tmp_path):
    save_plots(back_tab_curves.plot_items(), tmp_path)
    for name in PLOT_NAMES:
        assert_curve_figure(pixels(tmp_path / f"{name}.png"), name)
        width, height = svg_size(tmp_path / f"{name}.svg")
        assert width >= 500 and 0.5 <= height / width <= 0.75, (name, width, height)
    # each plot a figure of its own: its own iteration axis, title and legend on one line
    svg = (tmp_path / "curve-loss.svg").read_text(encoding="utf-8")
    assert "iteration" in svg and "cross.png" in svg


@pytest.fixture
def recommended(qtbot, question_dataset):
    from inspector.controller import SessionController

    controller = SessionController(question_dataset, preset_config("recommended"))
    yield controller
    controller.shutdown()


def shown(qtbot, widget, width, height):
    qtbot.addWidget(widget)
    widget.resize(width, height)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def test_short_docks_export_whole_figures(qtbot, recommended, step_and_wait, tmp_path):
    filters = shown(qtbot, FiltersView(recommended), 620, 200)
    maps = shown(qtbot, MapsView(recommended), 620, 150)
    curves = shown(qtbot, CurvesView(recommended), 620, 140)
    step_and_wait(recommended, 5)
    items = {**filters.plot_items(), **maps.plot_items(), **curves.plot_items()}
    # the data areas are small on screen: a strip of tiny cells, maps of a few pixels
    assert filters.plot("weights").vb.height() < 60
    save_plots(items, tmp_path)
    for name in items:
        path = tmp_path / f"{name}.png"
        rgb = pixels(path)
        if name.startswith("curve-"):
            assert_curve_figure(pixels(path), path.name)
            continue
        # mostly cells (0.08–0.3 of the PNG when tiny cells were scaled up with their labels;
        # a map figure holds every row of the page, with the gaps between them)
        least = 0.35 if name.startswith("maps-") else 0.4
        assert painted(rgb) >= least, (name, painted(rgb))
        if name.startswith("maps-"):
            assert ink(rgb) <= MAX_INK, (name, ink(rgb))
    for name, item in items.items():
        with export.export_layout(item) as geometry:
            # laid out about EXPORT_MIN_WIDTH wide: text about twice its screen size in the PNG
            assert MIN_PNG_WIDTH / geometry.size.width() <= 2.5, (name, geometry)
            assert geometry.data_fraction >= 0.3, (name, geometry)
        # the PNG was drawn from that layout
        size, rgb = geometry.size, pixels(tmp_path / f"{name}.png")
        assert abs(rgb.shape[0] - MIN_PNG_WIDTH * size.height() / size.width()) <= 2, name
    # the colour bars keep their numeric range
    for group, limit in filters.current_limits().items():
        svg = (tmp_path / f"filters-{group}.svg").read_text(encoding="utf-8")
        assert format_number(limit) in svg, group


def view_state(view) -> list:
    """What the user sees of ``view`` (its picture) and where every part of its plots is, what
    range each shows and how it is drawn."""
    state = [view.grab().toImage()]
    for graphics in view.findChildren(QGraphicsView):
        for item in graphics.scene().items():
            entry = [type(item).__name__, item.pos(), item.opacity(), item.isVisible()]
            if isinstance(item, QGraphicsWidget):
                entry += [item.geometry(), item.minimumSize(), item.maximumSize()]
            if isinstance(item, pg.ViewBox):
                entry += [item.viewRange(), item.autoRangeEnabled(), item.linksBlocked]
            state.append(entry)
    return state


def test_saving_leaves_the_views_as_they_were(qtbot, recommended, step_and_wait, tmp_path):
    views = [
        shown(qtbot, FiltersView(recommended), 640, 420),
        shown(qtbot, MapsView(recommended), 640, 150),  # short: the maps grow for export
        shown(qtbot, CurvesView(recommended), 640, 300),
    ]
    step_and_wait(recommended, 3)
    qtbot.wait(300)  # the curves redraw at most every 100 ms
    before = [view_state(view) for view in views]
    items = {name: item for view in views for name, item in view.plot_items().items()}
    save_plots(items, tmp_path)
    assert [view_state(view) for view in views] == before
    qtbot.wait(100)  # nothing left to happen later either (a relayout, a repaint)
    assert [view_state(view) for view in views] == before


def test_window_saves_every_plot_as_a_figure(qtbot, question_dataset, step_and_wait, tmp_path):
    """The colleague's case: the 1280×800 window, Curves behind "ReLU outputs", Save plots."""
    from inspector.controller import SessionController
    from inspector.main_window import MainWindow

    controller = SessionController(question_dataset, preset_config("seed"))
    try:
        window = MainWindow(controller)
        qtbot.addWidget(window)
        window.show()
        qtbot.waitExposed(window)
        window.resize(1280, 800)
        qtbot.wait(100)
        step_and_wait(controller, 2)
        window._ask_directory = lambda *args: str(tmp_path)
        written = window.save_plots()
        folder = tmp_path / "plots-iter000002"
        names = list(window.plot_items())
        assert set(PLOT_NAMES) | {"maps-pre-activation", "maps-relu-output"} < set(names)
        assert {p.name for p in written} >= {f"{n}{s}" for n in names for s in (".png", ".svg")}
        for name in names:
            # Under the figure, what it shows (a learner's saved plots named no run).
            caption = window.plot_caption(name)
            assert caption[0].startswith("Training Inspector · question example (2 images) · ")
            assert "iteration 2" in caption[0]
            assert caption[1] == "filters uniform(low=0, high=1), classifier uniform(low=0, high=1)"
            whole = pixels(folder / f"{name}.png")
            band = export.caption_height(whole.shape[1], caption)
            assert painted(whole[-band:]) > 0.005, name  # the caption's text
            rgb = whole[:-band]
            assert rgb.shape[1] >= MIN_PNG_WIDTH
            if name in PLOT_NAMES:
                assert_curve_figure(rgb, name)
            elif name.startswith("maps-"):
                assert ink(rgb) <= MAX_INK, (name, ink(rgb))
                assert painted(rgb) >= 0.4, (name, painted(rgb))
            width, height = svg_size(folder / f"{name}.svg")
            assert width >= 500, (name, width, height)
    finally:
        controller.shutdown()


def test_a_closed_dock_exports_the_shown_iteration(qtbot, tmp_path, question_dataset):
    from inspector.controller import SessionController
    from inspector.main_window import MainWindow
    from model.presets import preset_config

    controller = SessionController(question_dataset, preset_config("seed"))
    window = MainWindow(controller)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    try:
        window.docks["maps"].close()
        window.docks["filters"].close()
        for _ in range(2):
            target = controller.latest_iteration + 1
            controller.step()
            qtbot.waitUntil(lambda t=target: controller.shown.iteration == t, timeout=10000)
        shown = controller.shown
        assert window.maps_view.plot_items() and window.filters_view.plot_items()
        weights = window.filters_view.current_limits()["weights"]
        assert weights == pytest.approx(abs(shown.params["conv.weight"]).max())
        pre = window.maps_view.current_limits()["pre"]
        assert pre == pytest.approx(abs(shown.pre_activation).max())
    finally:
        controller.shutdown()


def test_heatmaps_in_svg_stay_crisp_where_renderers_smooth_pictures(
    qtbot, recommended, step_and_wait
):
    """A teacher's report: Qt's SVG renderer (and office programs) smoothed the weights' 38×12
    picture, blending the cells and the white gaps between channels. Each embedded picture is
    now enlarged pixel by pixel, at the same size on the page."""
    import base64
    import re

    from pyqtgraph.exporters import SVGExporter
    from PySide6.QtGui import QImage

    filters = shown(qtbot, FiltersView(recommended), 620, 400)
    step_and_wait(recommended, 2)
    item = filters.plot_items()["filters-weights"]
    pattern = re.compile(rb'<image\b[^>]*?width="([\d.]+)" height="([\d.]+)"[^>]*?base64,([^"]+)"')

    def pictures(svg: bytes):
        return [
            (float(w), float(h), QImage.fromData(base64.b64decode(data), "PNG"))
            for w, h, data in pattern.findall(svg)
        ]

    with export.export_layout(item):
        plain = pictures(bytes(SVGExporter(item).export(toBytes=True)))
    crisp = pictures(export.render_svg(item))
    assert plain and len(crisp) == len(plain)
    for (width, height, small), (crisp_width, crisp_height, large) in zip(
        plain, crisp, strict=True
    ):
        assert (crisp_width, crisp_height) == (width, height)  # the same size on the page
        factor = large.width() // small.width()
        assert factor >= 2 and large.height() == small.height() * factor
        for y in range(small.height()):  # each pixel a block of its own colour
            for x in range(small.width()):
                colour = small.pixelColor(x, y)
                for corner in (0, factor - 1):
                    enlarged = large.pixelColor(x * factor + corner, y * factor + corner)
                    if colour.alpha() == 0:  # (a gap: its colour is nobody's)
                        assert enlarged.alpha() == 0
                    else:
                        assert enlarged == colour

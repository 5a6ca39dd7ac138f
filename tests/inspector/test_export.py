"""Saving plots writes crisp PNGs and valid SVGs, never over existing files, and all or
nothing."""

import xml.etree.ElementTree as ET

import pytest
from PIL import Image

import inspector.export as export
from inspector.export import MIN_PNG_WIDTH, save_plots
from inspector.views.curves import PLOT_NAMES, CurvesView
from model.files import SaveError


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

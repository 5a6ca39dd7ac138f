"""The Outcome map panel, driven as a user would: type a grid, run it, read the map, pick a cell,
cancel a long sweep, save the map (and not over earlier files without asking)."""

import csv
import io
import time

import pytest
from PIL import Image
from PySide6.QtCore import Qt

from inspector.views.outcome_map import OutcomeMapView
from model.init import InitSpec
from model.sweep import OUTCOME_COLOURS


@pytest.fixture
def make_view(controller, show_view):
    return lambda workers=1: show_view(OutcomeMapView(controller, workers=workers), 1000, 560)


def test_defaults_follow_the_current_setting(make_view):
    view = make_view()
    assert view.family.currentData() == "uniform"  # the seed preset starts U(0, 1)
    assert [name for name, box in view.pixel_boxes.items() if box.isChecked()] == ["raw"]
    assert view.lr_count.value() == 11 and view.scale_count.value() == 7
    assert view.iterations.value() == 50
    assert view.size_label.text().startswith("77 cells × 50 iterations")
    assert not view.save_button.isEnabled()


def test_tiny_sweep_shows_the_map_with_the_seed_cell_dead(qtbot, controller, make_view, sweep_grid):
    view = make_view()
    result = sweep_grid(view, ("0.05", "0.5", 2), ("0.1", "1", 2), 5)
    assert len(result.cells) == 4
    seed_cell = next(c for c in result.cells if (c.learning_rate, c.init_scale) == (0.5, 1.0))
    assert seed_cell.outcome == "dead filter" and seed_cell.died_at == 1
    assert "4 cells" in view.status.text() and "dead filter" in view.status.text()
    assert view.save_button.isEnabled()
    assert view.canvas.result is result

    # The map shows the seed's cell black (dead) and rings the current setting there.
    picture = view.canvas.grab().toImage()
    box = view.canvas.cell_rect(seed_cell)
    corner = picture.pixelColor(int(box.left()) + 3, int(box.bottom()) - 3)
    assert (corner.red(), corner.green(), corner.blue()) == OUTCOME_COLOURS["dead filter"]
    assert view.canvas._marker == (0.5, 1.0)

    # Clicking a cell explains it and offers its settings as a new run.
    other = next(c for c in result.cells if (c.learning_rate, c.init_scale) == (0.05, 0.1))
    qtbot.mouseClick(
        view.canvas,
        Qt.MouseButton.LeftButton,
        pos=view.canvas.cell_rect(other).center().toPoint(),
    )
    assert view.canvas.selected == other
    assert view.try_button.isVisible()
    assert "Learning rate 0.05000, weights U(0, 0.1)" in view.cell_label.text()
    with qtbot.waitSignal(controller.session_reset, timeout=10000):
        qtbot.mouseClick(view.try_button, Qt.MouseButton.LeftButton)
    assert controller.config.learning_rate == 0.05
    assert controller.config.conv_init == InitSpec("uniform", {"low": 0.0, "high": 0.1})
    assert controller.config.classifier_init == controller.config.conv_init
    assert controller.latest_iteration == 0
    # The ring follows the new current setting.
    assert view.canvas._marker == (0.05, 0.1)


def test_a_map_of_other_data_says_so(qtbot, controller, make_view, shapes_dataset, sweep_grid):
    """Open other images after a sweep: the map is kept, but it is no longer of these images."""
    view = make_view()
    sweep_grid(view, ("0.05", "0.5", 2), ("0.1", "1", 2), 5)
    assert not view.stale_note.isVisibleTo(view)
    controller.set_dataset(shapes_dataset, "example:shapes")
    qtbot.waitUntil(lambda: controller.dataset is shapes_dataset)
    assert view.stale_note.isVisibleTo(view)
    assert f"The data changed since this sweep (now {len(shapes_dataset)} images" in (
        view.stale_note.text()
    )
    assert "'question'" in view.title.text()  # the map still names what it was swept on
    # The next sweep's size counts the images there are now (it said "on 2 images").
    assert view.size_label.text().endswith(
        f"on {len(shapes_dataset)} images: 0.0625 epochs a cell."
    )
    assert "learns more slowly than this ends 'stuck'" in view.size_label.toolTip()


def test_a_run_from_a_weights_file_is_said_to_be_on_no_cell(
    qtbot, controller, make_view, sweep_grid, tmp_path
):
    """Every cell draws its weights: a file is not a setting the map is stale for, and the
    missing ring is explained (a review)."""
    import numpy as np

    from model.weights_file import read_weights

    view = make_view()
    sweep_grid(view, ("0.05", "0.5", 2), ("0.1", "1", 2), 5)
    np.save(tmp_path / "mine.npy", np.full((1, 3, 3, 3), 0.01))
    weights = read_weights(tmp_path / "mine.npy")
    with qtbot.waitSignal(controller.session_reset, timeout=10000):
        controller.start_over(controller.config.with_weights(weights))
    note = view.stale_note.text()
    assert view.stale_note.isVisibleTo(view)
    assert "starts from the weights in mine.npy, which no cell does" in note
    assert "Settings changed" not in note
    assert view.canvas._marker is None


def test_bad_input_is_refused_and_marked(qtbot, make_view):
    view = make_view()
    view.lr_from.selectAll()
    qtbot.keyClicks(view.lr_from, "fast")
    qtbot.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
    assert not view.is_running
    assert view.status.text().startswith("Not started: learning rate 'from' must be a positive")
    assert view.lr_from.property("error") is True
    view.lr_from.selectAll()
    qtbot.keyClicks(view.lr_from, "1e-3")
    view.pixel_boxes["raw"].setChecked(False)
    qtbot.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
    assert "Tick at least one pixel scaling" in view.status.text()
    assert view.lr_from.property("error") is False


def test_cancel_stops_a_long_sweep(qtbot, make_view, sweep_grid):
    view = make_view()
    sweep_grid(view, ("1e-4", "10", 11), ("1e-3", "1", 7), 2000, run=False)
    view.pixel_boxes["unit"].setChecked(True)
    qtbot.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
    assert view.is_running and view.progress.isVisible()
    assert not view.run_button.isEnabled() and view.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: view.progress.value() >= 1, timeout=30000)
    started = time.monotonic()
    with qtbot.waitSignal(view.sweep_ended, timeout=30000) as ended:
        qtbot.mouseClick(view.cancel_button, Qt.MouseButton.LeftButton)
    assert ended.args == ["cancelled"]
    assert time.monotonic() - started < 20
    assert "cancelled" in view.status.text()
    assert view.result is None
    assert view.run_button.isEnabled() and not view.progress.isVisible()


def test_shutdown_during_a_pooled_sweep_does_not_hang(qtbot, make_view, sweep_grid):
    view = make_view(workers=2)
    # Cells that learn run all their iterations: with the seed's raw pixels and U(0, s)
    # weights every cell's filter died at once, and the sweep was over within 0.3 s on a
    # fast machine (twice, in whole-suite runs).
    sweep_grid(view, ("1e-4", "1e-2", 11), ("1e-3", "0.1", 7), 2000, run=False)
    view.family.setCurrentIndex(view.family.findData("normal"))
    view.pixel_boxes["unit"].setChecked(True)
    view.pixel_boxes["raw"].setChecked(False)
    qtbot.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
    qtbot.wait(300)
    assert view.is_running, view.status.text()
    started = time.monotonic()
    view.shutdown()
    assert time.monotonic() - started < 20
    qtbot.waitUntil(lambda: not view.is_running, timeout=5000)


def test_save_writes_png_csv_json_and_asks_before_replacing(qtbot, make_view, tmp_path, sweep_grid):
    view = make_view()
    result = sweep_grid(view, ("0.05", "0.5", 2), ("0.1", "1", 2), 5)
    view._ask_save_path = lambda *args: str(tmp_path / "map.png")
    written = view.save()
    assert sorted(p.name for p in written) == ["map.csv", "map.json", "map.png"]
    picture = Image.open(tmp_path / "map.png")
    assert picture.size[0] >= 600
    rows = list(csv.DictReader(io.StringIO((tmp_path / "map.csv").read_text())))
    assert len(rows) == len(result.cells) == 4
    assert {row["outcome"] for row in rows if row["learning_rate"] == "0.5"} == {"dead filter"}
    assert '"--sweep"' in (tmp_path / "map.json").read_text()

    before = (tmp_path / "map.csv").stat().st_mtime_ns
    asked = []
    view._confirm_replace = lambda paths: asked.append(sorted(p.name for p in paths)) or False
    assert view.save() == []
    assert asked == [["map.csv", "map.json", "map.png"]]
    assert (tmp_path / "map.csv").stat().st_mtime_ns == before
    assert "kept" in view.status.text()

    view._confirm_replace = lambda paths: True
    assert len(view.save()) == 3

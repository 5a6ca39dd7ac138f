"""The Data panel, driven as a user would: thumbnails, predictions, relabelling, removing,
opening a folder, drag and drop, loading progress and cancel."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QLabel, QProgressBar, QPushButton, QToolButton

from inspector.views.data import (
    LAST_FOLDER_KEY,
    RIGHT_COLOR,
    WRONG_COLOR,
    CompactLinesRole,
    CorrectRole,
    DataView,
    LabelRole,
)
from model.formatting import format_compact, format_number
from model.presets import preset_config


@pytest.fixture
def view(qtbot, controller):
    data_view = DataView(controller)
    qtbot.addWidget(data_view)
    data_view.resize(360, 500)
    data_view.show()
    qtbot.waitExposed(data_view)
    return data_view


def lines(view, row):
    return view.thumbnail_model.index(row).data(Qt.ItemDataRole.DisplayRole).splitlines()


def click_thumbnail(qtbot, view, row, modifier=Qt.KeyboardModifier.NoModifier):
    rect = view.thumbnail_view.visualRect(view.thumbnail_model.index(row))
    qtbot.mouseClick(
        view.thumbnail_view.viewport(), Qt.MouseButton.LeftButton, modifier, rect.center()
    )


def button(view, name):
    return view.findChild(QPushButton, name)


def write_png(path, color, size=(12, 12)):
    Image.new("RGB", size, color).save(path)


@pytest.fixture
def labelled_folder(tmp_path):
    """Two class folders with two good images each and one file that is no image."""
    root = tmp_path / "pets"
    for label, name in enumerate(("0_cat", "1_dog")):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(2):
            write_png(folder / f"{name}_{i}.png", (40 * i, 200 * label, 90))
    (root / "1_dog" / "bad.png").write_bytes(b"this is not an image")
    return root


def wait_loaded(qtbot, controller, start):
    with qtbot.waitSignal(
        controller.loading_changed, timeout=20000, check_params_cb=lambda loading: not loading
    ):
        start()


def test_question_example_shows_two_labelled_thumbnails(view, controller):
    model = view.thumbnail_model
    assert model.rowCount() == 2
    assert [lines(view, row)[0] for row in range(2)] == ["cross (0)", "circle (1)"]
    assert [model.index(row).data(LabelRole) for row in range(2)] == [0, 1]
    # The 32x32 images are enlarged 2x with nearest neighbour: each pixel a 2x2 block.
    thumbnail = model.index(0).data(Qt.ItemDataRole.DecorationRole).toImage()
    assert (thumbnail.width(), thumbnail.height()) == (64, 64)
    image = controller.dataset.images[0]
    for y, x in ((0, 0), (16, 16), (16, 5), (3, 27)):
        for dy in (0, 1):
            colour = thumbnail.pixelColor(2 * x + dy, 2 * y + 1 - dy)
            assert (colour.red(), colour.green(), colour.blue()) == tuple(image[:, y, x])
    counts = view.findChild(QLabel, "dataCounts").text()
    assert "2 images of 32×32 px" in counts
    assert "cross (0): 1" in counts and "circle (1): 1" in counts
    assert view.findChild(QLabel, "dataSource").text() == "Question example"


def test_a_nan_probability_is_no_class_and_marked_wrong(
    qtbot, make_controller, question_dataset, step_and_wait
):
    config = preset_config("seed", activation="identity", dtype="float32", learning_rate=1e12)
    controller = make_controller(question_dataset, config)
    data_view = DataView(controller)
    qtbot.addWidget(data_view)
    step_and_wait(controller, 8)
    model = data_view.thumbnail_model
    for row in range(2):
        assert lines(data_view, row)[2] == "→ no class (P(1) is NaN)"
        assert model.index(row).data(CorrectRole) is False
    assert "0 of 2" in data_view.findChild(QLabel, "predictionSummary").text()


def test_thumbnails_show_prediction_and_loss_of_the_shown_record(
    qtbot, view, controller, step_and_wait
):
    record = step_and_wait(controller, 1)
    model = view.thumbnail_model
    labels = controller.dataset.labels
    names = controller.dataset.class_names
    frames = view.thumbnail_view.viewport().grab().toImage()
    verdicts = []
    for row in range(2):
        probability = record.probabilities[row]
        predicted = int(probability >= 0.5)
        shown = lines(view, row)
        assert shown[1] == f"P(1) {format_number(probability)}"
        assert shown[2] == f"→ {names[predicted]} ({predicted})"
        assert shown[3] == f"loss {format_number(record.losses[row])}"
        # Written shorter, never cut off, when a number does not fit the cell.
        compact = model.index(row).data(CompactLinesRole)
        assert compact[3] == f"loss {format_compact(record.losses[row])}"
        correct = predicted == labels[row]
        assert model.index(row).data(CorrectRole) == correct
        verdicts.append(correct)
        # The frame around the image is green when right, red when wrong.
        cell = view.thumbnail_view.visualRect(model.index(row))
        frame = view._delegate.frame_rect(cell)
        pixel = frames.pixelColor(frame.left() + 1, frame.center().y())
        assert pixel.name() == (RIGHT_COLOR if correct else WRONG_COLOR).name()
    # The question's failure: every output is the same, so one of the two is wrong.
    assert sorted(verdicts) == [False, True]
    summary = view.findChild(QLabel, "predictionSummary").text()
    assert summary.startswith("Iteration 1: 1 of 2 right")


def test_relabel_from_context_menu_and_key_restarts_the_run(qtbot, view, controller, step_and_wait):
    asked = []
    view.confirm_new_run = lambda *args: asked.append(args) or True
    step_and_wait(controller, 1)
    click_thumbnail(qtbot, view, 0)
    assert view.selected_rows() == [0]
    menu = view.context_menu()
    texts = [action.text() for action in menu.actions() if not action.isSeparator()]
    assert texts == ["Label as cross (0)", "Label as circle (1)", "Remove from dataset"]
    menu.actions()[1].trigger()
    assert asked == [("Relabel", "Give 1 image label 1?", 1)]  # the trained iteration goes
    assert controller.dataset.labels.tolist() == [1, 1]
    assert controller.shown.iteration == 0
    assert lines(view, 0)[0] == "circle (1)"

    view.activateWindow()
    qtbot.waitActive(view)
    click_thumbnail(qtbot, view, 0)
    qtbot.keyClick(view.thumbnail_view, Qt.Key.Key_0)
    assert controller.dataset.labels.tolist() == [0, 1]
    assert lines(view, 0)[0] == "cross (0)"


def test_a_data_edit_asks_before_it_drops_trained_iterations(
    qtbot, view, controller, step_and_wait, tmp_path
):
    """A teacher's Relabel threw away a run of 101 iterations without a word."""
    answers, asked = [False, True], []

    def confirm(action, question, dropped):
        asked.append((action, dropped))
        return answers.pop(0)

    view.confirm_new_run = confirm
    step_and_wait(controller, 3)
    click_thumbnail(qtbot, view, 1)
    qtbot.mouseClick(button(view, "removeButton"), Qt.MouseButton.LeftButton)
    assert asked == [("Remove", 3)]
    assert len(controller.dataset) == 2 and controller.latest_iteration == 3  # kept
    qtbot.mouseClick(button(view, "removeButton"), Qt.MouseButton.LeftButton)
    assert len(controller.dataset) == 1 and controller.latest_iteration == 0
    # Before any training there is nothing to lose: no question.
    click_thumbnail(qtbot, view, 0)
    view.context_menu().actions()[1].trigger()
    assert len(asked) == 2 and controller.dataset.labels.tolist() == [1]
    # Other data (an example, a folder) asks too, once something was trained.
    step_and_wait(controller, 1)
    answers[:] = [False, False]
    qtbot.mouseClick(button(view, "shapesExampleButton"), Qt.MouseButton.LeftButton)
    view._ask_folder = lambda: str(tmp_path)
    view.open_folder()
    assert asked[2:] == [("Open", 1), ("Open", 1)] and len(controller.dataset) == 1


def test_remove_one_shapes_image_and_refuse_removing_all(qtbot, view, controller, shapes_dataset):
    controller.set_dataset(shapes_dataset, "example:shapes")
    assert view.thumbnail_model.rowCount() == 80
    remove = button(view, "removeButton")
    assert not remove.isEnabled()
    click_thumbnail(qtbot, view, 3)
    qtbot.mouseClick(remove, Qt.MouseButton.LeftButton)
    assert len(controller.dataset) == 79
    assert view.thumbnail_model.rowCount() == 79
    assert shapes_dataset.paths[3] not in controller.dataset.paths
    assert "79 images" in view.findChild(QLabel, "dataCounts").text()

    view.thumbnail_view.selectAll()
    qtbot.mouseClick(remove, Qt.MouseButton.LeftButton)
    assert len(controller.dataset) == 79
    message = view.findChild(QLabel, "dataMessage")
    assert message.isVisibleTo(view) and "nothing was removed" in message.text()


def test_open_folder_lists_the_skipped_file_with_its_reason(
    qtbot, view, controller, labelled_folder, monkeypatch
):
    monkeypatch.setattr(view, "_ask_folder", lambda: str(labelled_folder))
    toggle = view.findChild(QToolButton, "skippedToggle")
    assert not toggle.isVisibleTo(view)
    wait_loaded(
        qtbot,
        controller,
        lambda: qtbot.mouseClick(button(view, "openFolderButton"), Qt.MouseButton.LeftButton),
    )
    assert controller.dataset_source == str(labelled_folder.resolve())
    assert len(controller.dataset) == 4
    assert [lines(view, row)[0] for row in range(4)] == ["cat (0)"] * 2 + ["dog (1)"] * 2
    qtbot.waitUntil(lambda: view.findChild(QLabel, "dataSource").text() == "Folder: pets")
    assert "12×12 px" in view.findChild(QLabel, "dataCounts").text()
    assert QSettings().value(LAST_FOLDER_KEY) == str(labelled_folder)

    assert toggle.isVisibleTo(view) and toggle.text() == "1 file skipped"
    skipped = view.findChild(type(view._skipped_list), "skippedList")
    assert not skipped.isVisibleTo(view)
    qtbot.mouseClick(toggle, Qt.MouseButton.LeftButton)
    assert skipped.isVisibleTo(view)
    ((path, reason),) = controller.dataset.skipped
    assert skipped.count() == 1
    item = skipped.item(0)
    assert item.text() == f"{Path(path).parent.name}/bad.png: {reason}"  # (its label folder)
    assert item.toolTip() == f"{path}\n{reason}"


def drag_events(paths, where=None):
    where = where or QPoint(150, 300)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path)) for path in paths])
    enter = QDragEnterEvent(
        where,
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    drop = QDropEvent(
        QPointF(where),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    return mime, enter, drop


def test_images_of_another_size_are_said_to_be_resized(
    qtbot, view, controller, labelled_folder, monkeypatch
):
    """An engineer's 20×24 images were squashed to 16×16 without a word."""
    write_png(labelled_folder / "0_cat" / "wide.png", (9, 9, 9), size=(30, 12))
    monkeypatch.setattr(view, "_ask_folder", lambda: str(labelled_folder))
    wait_loaded(
        qtbot,
        controller,
        lambda: qtbot.mouseClick(button(view, "openFolderButton"), Qt.MouseButton.LeftButton),
    )
    counts = view.findChild(QLabel, "dataCounts").text()
    assert "5 images of 12×12 px (1 resized from other sizes)" in counts
    row = controller.dataset.paths.index(str(labelled_folder.resolve() / "0_cat" / "wide.png"))
    tip = view.thumbnail_model.index(row).data(Qt.ItemDataRole.ToolTipRole)
    assert "Resized from 12×30 px to 12×12 (H×W), the aspect ratio not kept" in tip
    other = view.thumbnail_model.index(0).data(Qt.ItemDataRole.ToolTipRole)
    assert "Resized" not in other


def test_dropping_a_folder_loads_it(qtbot, view, controller, labelled_folder):
    mime, enter, drop = drag_events([labelled_folder])
    QApplication.sendEvent(view, enter)
    assert enter.isAccepted()
    hint = view.findChild(QLabel, "dropHint")
    assert hint.isVisible()
    wait_loaded(qtbot, controller, lambda: QApplication.sendEvent(view, drop))
    assert drop.isAccepted()
    assert not hint.isVisible()
    assert controller.dataset_source == str(labelled_folder.resolve())
    assert view.thumbnail_model.rowCount() == 4


def test_dropping_image_files_adds_them_with_the_chosen_label(
    qtbot, view, controller, tmp_path, monkeypatch
):
    files = [tmp_path / "a.png", tmp_path / "b.png"]
    for path in files:
        write_png(path, (255, 0, 0), size=(32, 32))
    asked = []
    monkeypatch.setattr(view, "_ask_label", lambda count: asked.append(count) or 1)
    _mime, enter, drop = drag_events(files)
    QApplication.sendEvent(view, enter)
    wait_loaded(qtbot, controller, lambda: QApplication.sendEvent(view, drop))
    assert asked == [2]
    assert controller.dataset.labels.tolist() == [0, 1, 1, 1]
    assert view.thumbnail_model.rowCount() == 4
    assert lines(view, 3)[0] == "circle (1)"
    # The added images are shown as loaded (pure red).
    corner = view.thumbnail_model.index(3).data(Qt.ItemDataRole.DecorationRole).toImage()
    assert corner.pixelColor(5, 5).name() == "#ff0000"


def test_add_images_button_cancelled_label_adds_nothing(
    qtbot, view, controller, tmp_path, monkeypatch
):
    path = tmp_path / "c.png"
    write_png(path, (0, 0, 255), size=(32, 32))
    monkeypatch.setattr(view, "_ask_files", lambda: [str(path)])
    monkeypatch.setattr(view, "_ask_label", lambda count: None)
    qtbot.mouseClick(button(view, "addImagesButton"), Qt.MouseButton.LeftButton)
    assert not controller.is_loading
    assert len(controller.dataset) == 2
    monkeypatch.setattr(view, "_ask_label", lambda count: 0)
    wait_loaded(
        qtbot,
        controller,
        lambda: qtbot.mouseClick(button(view, "addImagesButton"), Qt.MouseButton.LeftButton),
    )
    assert controller.dataset.labels.tolist() == [0, 1, 0]
    assert controller.dataset_source == "files"


def test_progress_bar_while_loading_and_cancel_stops_it(
    qtbot, view, controller, tmp_path, monkeypatch
):
    root = tmp_path / "many"
    rng = np.random.default_rng(0)
    for label in (0, 1):
        folder = root / f"{label}_class"
        folder.mkdir(parents=True)
        for i in range(300):
            pixels = rng.integers(0, 256, size=(24, 24, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{i:03}.png")
    messages = []
    controller.status_message.connect(messages.append)
    monkeypatch.setattr(view, "_ask_folder", lambda: str(root))
    row = view.findChild(type(view._loading_row), "loadingRow")
    bar = view.findChild(QProgressBar, "loadProgress")
    assert not row.isVisibleTo(view)
    with qtbot.waitSignal(controller.load_progress, timeout=10000):
        qtbot.mouseClick(button(view, "openFolderButton"), Qt.MouseButton.LeftButton)
    assert row.isVisibleTo(view)
    assert not button(view, "openFolderButton").isEnabled()
    assert bar.maximum() == 1200  # 600 files, each read twice (header, then pixels)
    assert bar.text().startswith("Loading images: ")
    detail = view.findChild(QLabel, "loadDetail")
    assert detail.isVisibleTo(view) and detail.text().endswith(" of 1,200 file reads")
    # The thumbnails stay usable while loading.
    assert view.thumbnail_view.isEnabled() and view.thumbnail_model.rowCount() == 2
    wait_loaded(
        qtbot,
        controller,
        lambda: qtbot.mouseClick(button(view, "cancelLoadingButton"), Qt.MouseButton.LeftButton),
    )
    assert "Loading cancelled" in messages
    assert not row.isVisibleTo(view)
    assert len(controller.dataset) == 2
    assert controller.dataset_source == "example:question"
    assert button(view, "openFolderButton").isEnabled()


def test_the_file_dialogs_open_beside_the_data_shown_until_one_was_used(view, controller):
    """Not the home folder: beside the example (or the folder given on the command line)."""
    from model.data import example_path

    assert view._start_folder() == str(example_path("question").parent)
    view._remember_folder(str(example_path("shapes")))
    assert view._start_folder() == str(example_path("shapes"))


def test_an_edit_answered_after_other_data_came_changes_nothing(
    qtbot, view, controller, step_and_wait
):
    """A review: while the question was open a load ended, and the answer removed image #2
    of the new data (the Shapes example) instead of the question's circle."""
    step_and_wait(controller, 2)
    click_thumbnail(qtbot, view, 1)
    controller.load_example("shapes")  # a load under way (an Open confirmed a moment ago)

    def confirm(action, question, dropped):
        qtbot.waitUntil(lambda: not controller.is_loading, timeout=20000)  # the user reads
        return True

    view.confirm_new_run = confirm
    # (The Remove button is held while loading; the question was asked just before.)
    view._remove_selected()
    assert len(controller.dataset) == 80  # the Shapes example, whole
    message = view.findChild(QLabel, "dataMessage")
    assert message.isVisibleTo(view) and "nothing was changed" in message.text()

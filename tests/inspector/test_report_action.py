"""File > Save report…: a folder (or .zip) to share, written in the background, never over an
existing one, and a failure that says so and leaves the app working."""

import errno
import re
import zipfile
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from inspector.report_action import outcome_map_png
from inspector.training_process import TrainerError
from model.files import SaveError


@pytest.fixture
def window(window):
    """The shown main window, recording the report pages it would open in a browser."""
    opened = []
    window.report_saver.open_url = opened.append
    window.opened = opened
    yield window
    window.report_saver.shutdown()


def step(qtbot, window):
    target = window.controller.latest_iteration + 1
    qtbot.keyClick(window, Qt.Key.Key_F10)
    qtbot.waitUntil(
        lambda: window.controller.shown.iteration == target and not window.controller.is_running,
        timeout=10000,
    )


def save(qtbot, window, key="save_report"):
    """Trigger the action and wait for the report; returns its path (None if not written)."""
    with qtbot.waitSignal(window.report_saver.finished, timeout=60000) as done:
        window.actions[key].trigger()
        assert window.report_saver.is_busy
        assert busy_shown(window)
    return done.args[0]


def busy_shown(window) -> bool:
    label = window.findChild(type(window.status_iteration), "reportBusyLabel")
    return label is not None and label.isVisible()


def links(page: str) -> list[str]:
    return re.findall(r'(?:href|src)="([^"]+)"', page)


def test_save_report_writes_a_folder_whose_links_resolve(qtbot, window, tmp_path):
    step(qtbot, window)
    target = tmp_path / "question-report"
    asked = []
    window._ask_save_path = lambda *args: asked.append(args) or str(target)
    written = save(qtbot, window)
    assert written == target
    assert asked and asked[0][1].name == "report-iter000001"  # a free name is suggested

    page = (target / "index.html").read_text(encoding="utf-8")
    found = links(page)
    assert found
    for link in found:
        assert not link.startswith(("/", "http")), link
        assert (target / link).exists(), link
    plots = sorted(p.stem for p in (target / "plots").glob("*.png"))
    assert plots == sorted(window.plot_items())
    for path in (target / "plots").glob("*.png"):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    reproduce = (target / "REPRODUCE.txt").read_text()
    assert "training-inspector --headless --data images.csv" in reproduce
    assert not window.report_saver.is_busy and not busy_shown(window)
    assert window.actions["save_report"].isEnabled()
    assert "question-report" in window.statusBar().currentMessage()

    dialog = window.report_saver.saved_dialog
    assert dialog.isVisible() and str(target) in dialog.text()
    opener = dialog.findChild(type(dialog.buttons()[0]), "reportOpen")
    qtbot.mouseClick(opener, Qt.MouseButton.LeftButton)
    assert [Path(url.toLocalFile()) for url in window.opened] == [target / "index.html"]


def test_save_report_as_zip(qtbot, window, tmp_path):
    window._ask_save_path = lambda *args: str(tmp_path / "shared")
    written = save(qtbot, window, "save_report_zip")
    assert written == tmp_path / "shared.zip"
    with zipfile.ZipFile(written) as archive:
        names = archive.namelist()
    assert "shared/index.html" in names and "shared/REPRODUCE.txt" in names
    assert any(name.startswith("shared/plots/") for name in names)
    assert not (tmp_path / "shared").exists()


def test_a_zip_name_given_to_save_report_is_an_archive(qtbot, window, tmp_path):
    """Ctrl+Shift+E with "report.zip" typed made a folder of that name, and the message
    said to attach the archive."""
    window._ask_save_path = lambda *args: str(tmp_path / "typed.zip")
    written = save(qtbot, window, "save_report")
    assert written == tmp_path / "typed.zip" and zipfile.is_zipfile(written)
    dialog = window.report_saver.saved_dialog
    assert "Attach the archive" in dialog.informativeText()


def test_a_taken_zip_name_is_offered_as_a_free_zip_name(qtbot, window, tmp_path):
    (tmp_path / "typed.zip").write_bytes(b"someone's archive")
    window._ask_save_path = lambda *args: str(tmp_path / "typed.zip")
    window.report_saver._use_free_name = lambda taken, free: True
    written = save(qtbot, window, "save_report")
    assert written == tmp_path / "typed-2.zip" and zipfile.is_zipfile(written)
    assert (tmp_path / "typed.zip").read_bytes() == b"someone's archive"


def test_the_saved_message_closes_when_training_goes_on(qtbot, window, tmp_path):
    window._ask_save_path = lambda *args: str(tmp_path / "report")
    save(qtbot, window)
    dialog = window.report_saver.saved_dialog
    assert dialog.isVisible() and "index.html is the report" in dialog.informativeText()
    window.controller.running_changed.emit(False)  # a Run going on as it was written ends
    assert dialog.isVisible()
    window.actions["step"].trigger()
    qtbot.waitUntil(lambda: window.controller.shown.iteration == 1, timeout=10000)
    assert not dialog.isVisible()


def test_an_existing_folder_is_never_replaced(qtbot, window, tmp_path):
    taken = tmp_path / "report"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    window._ask_save_path = lambda *args: str(taken)
    offered = []
    window.report_saver._use_free_name = lambda old, new: offered.append(new) or False
    window.actions["save_report"].trigger()
    assert offered == [tmp_path / "report-2"]
    assert not window.report_saver.is_busy
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]
    assert (taken / "notes.txt").read_text() == "mine"

    window.report_saver._use_free_name = lambda old, new: True
    assert save(qtbot, window) == tmp_path / "report-2"
    assert (tmp_path / "report-2" / "index.html").is_file()
    assert sorted(p.name for p in taken.iterdir()) == ["notes.txt"]


def test_an_unwritable_target_says_so_and_the_app_keeps_working(
    qtbot, window, tmp_path, monkeypatch
):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    window._ask_save_path = lambda *args: str(blocker / "report")
    shown = []
    monkeypatch.setattr("inspector.report_action.show_error", lambda *a: shown.append(a))
    assert window.report_saver.save() is False
    assert shown and shown[0][1] == "Report not saved"
    assert "not-a-folder" in shown[0][2]
    assert not window.report_saver.is_busy
    assert blocker.read_text() == "x"
    step(qtbot, window)
    assert window.controller.latest_iteration == 1


@pytest.mark.parametrize("where", ["window", "training process"])
def test_a_failure_while_writing_says_so_and_the_app_keeps_working(
    qtbot, window, tmp_path, monkeypatch, where
):
    def disk_full(*args, **kwargs):
        error = SaveError(errno.ENOSPC, "Could not save the report: the disk is full")
        if where == "window":
            raise error
        # (as the client raises it: a robustness pass saw "TrainerError: SaveError: ...")
        raise TrainerError(f"SaveError: {error}", "Traceback ...", text=str(error), refused=True)

    monkeypatch.setattr(window.controller, "write_report", disk_full)
    window._ask_save_path = lambda *args: str(tmp_path / "report")
    shown = []
    monkeypatch.setattr("inspector.report_action.show_error", lambda *a: shown.append(a))
    assert save(qtbot, window) is None
    assert shown == [(window, "Report not saved", "Could not save the report: the disk is full")]
    assert window.actions["save_report"].isEnabled()
    assert not busy_shown(window)
    assert "not saved" in window.statusBar().currentMessage()
    assert not (tmp_path / "report").exists()
    step(qtbot, window)
    assert window.controller.latest_iteration == 1


def test_the_run_goes_on_while_a_report_is_written(qtbot, question_dataset, tmp_path, held_report):
    # Writing takes seconds after a long run; the training process writes it in a thread of
    # its own and answers the window meanwhile (before, a Step pressed then waited for it).
    import threading

    from inspector.controller import SessionController
    from model.presets import preset_config

    controller = SessionController(question_dataset, preset_config("seed"), backend="thread")
    try:
        worker, results = held_report.start(controller, tmp_path / "r")
        # Were the Step to wait for the report, it would wait for this.
        threading.Timer(5, held_report.release.set).start()
        with qtbot.waitSignal(controller.running_changed, check_params_cb=lambda r: not r):
            controller.step()  # answered although the report is not written yet
        assert controller.latest_iteration == 1 and not results
        held_report.release.set()
        worker.join(30)
        assert results == [tmp_path / "r"]
        # The report is of the run as it was when asked for: iteration 0.
        assert '"iterations": 0' in (tmp_path / "r" / "config.json").read_text(encoding="utf-8")
        # Chosen snapshot iterations reach the writer in the training process too.
        controller.write_report(tmp_path / "chosen", snapshot_iterations=[0])
        snapshots = sorted(p.stem for p in (tmp_path / "chosen" / "snapshots").glob("*.png"))
        assert snapshots == ["filters-iter000000"]
    finally:
        held_report.release.set()
        controller.shutdown()


def test_a_training_process_killed_mid_report_leaves_nothing_hidden(
    qtbot, question_dataset, tmp_path
):
    """Quitting while a large run starts aside ends the training process at once, report
    thread and all. The window made the folder the report was being built in, and removes it."""
    import threading

    from inspector.controller import SessionController
    from inspector.training_process import TrainerError
    from model.presets import preset_config

    controller = SessionController(question_dataset, preset_config("seed"))
    errors = []

    def write():
        try:
            controller.write_report(tmp_path / "r")
        except TrainerError as exc:
            errors.append(exc)

    try:
        worker = threading.Thread(target=write, daemon=True)
        worker.start()
        # The training process has started building the report in the window's folder.
        qtbot.waitUntil(lambda: any(tmp_path.glob(".r.*/r")), timeout=10000)
        controller._client.terminate()
        worker.join(30)
        assert not worker.is_alive() and errors
    finally:
        controller.shutdown()
    assert list(tmp_path.iterdir()) == []


def test_shutdown_removes_a_report_folder_the_writer_could_not(
    qtbot, question_dataset, tmp_path, monkeypatch
):
    """A call that fails on a training process that still lives leaves the folder, which may
    still be written to; once shutdown has ended the process, it goes."""
    from inspector.controller import SessionController
    from inspector.training_process import TrainerClient, TrainerError
    from model.presets import preset_config

    controller = SessionController(question_dataset, preset_config("seed"))
    real_call = TrainerClient.call

    def failing_report(self, name, *args, **kwargs):
        if name == "start_report":
            (kwargs["work_folder"] / "r").mkdir()  # a writer that got this far
            raise TrainerError("no answer")
        return real_call(self, name, *args, **kwargs)

    monkeypatch.setattr(TrainerClient, "call", failing_report)
    try:
        with pytest.raises(TrainerError):
            controller.write_report(tmp_path / "r")
        assert [p.name[:3] for p in tmp_path.iterdir()] == [".r."]  # not removed while alive
    finally:
        controller.shutdown()
    assert list(tmp_path.iterdir()) == []


def test_a_report_has_the_outcome_map_only_of_the_images_it_reports_on():
    """A newcomer pass: a report of a Shapes run held the question's outcome map, with the
    Shapes setting ringed on one of its cells."""

    class Map:
        def __init__(self, current):
            self.current = current

        def maps_current_data(self):
            return self.current

        def map_png(self):
            return b"\x89PNG map"

    class Window:  # (not the real one: a patched Qt window crashed a later test's)
        def __init__(self, view):
            self.view = view

        def created_view(self, key):
            return self.view if key == "outcome" else None

    assert outcome_map_png(Window(Map(True))) == b"\x89PNG map"
    assert outcome_map_png(Window(Map(False))) is None
    assert outcome_map_png(Window(None)) is None

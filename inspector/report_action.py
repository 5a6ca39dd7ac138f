"""File > Save report…: one folder (or .zip) with the run's settings, data, metrics, findings,
filter snapshots, the window's plots and the command that repeats the run
(``model.report``).

The plots are drawn on the GUI thread (pyqtgraph renders there); the report itself is written
in a background thread while the status bar shows that it is busy. An existing folder or
archive is never replaced: the user is offered a free name instead.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import (
    QCoreApplication,
    QEventLoop,
    QObject,
    QSettings,
    Qt,
    QUrl,
    Signal,
    Slot,
)
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QLabel, QMessageBox, QProgressBar

from inspector import export
from inspector.errors import show_error
from inspector.tasks import BackgroundTask
from model import files

ZIP_SUFFIX = ".zip"
#: Longest wait for a report being written when the window closes.
SHUTDOWN_SECONDS = 60


def _occupied(path: Path) -> bool:
    """Whether a report cannot go to ``path`` without replacing something: a file, or a folder
    that is not empty (an empty folder is simply filled)."""
    if not files.existing([path]):
        return False
    return not path.is_dir() or any(path.iterdir())


def outcome_map_png(window) -> bytes | None:
    """The window's outcome map as PNG bytes when it has one swept on the images it has now
    (a report of a Shapes run held the question's map, the Shapes setting ringed on one of its
    cells: a newcomer pass), else None."""
    outcome = window.created_view("outcome")
    if outcome is None or not outcome.maps_current_data():
        return None
    return outcome.map_png()


class ReportSaver(QObject):
    """Asks where, draws the plots, writes the report in the background, says where it went.

    Attributes
    ----------
    open_url : callable(QUrl)
        Opens the saved report (``QDesktopServices.openUrl``); tests replace it.
    saved_dialog : the last "Report saved" message box (None before the first).

    Signals
    -------
    finished(object) : a report that was started has ended: its path, or None when writing
        it failed.
    """

    finished = Signal(object)

    def __init__(self, window) -> None:
        super().__init__(window)
        self._window = window
        self._task: BackgroundTask | None = None
        self._busy_widgets: list = []
        self.open_url = QDesktopServices.openUrl
        self.saved_dialog: QMessageBox | None = None
        self._result: Path | None = None
        self._closed = False

    @property
    def is_busy(self) -> bool:
        return self._task is not None

    # -- the action --------------------------------------------------------------------------

    @Slot()
    def save(self, as_zip: bool = False) -> bool:
        """Ask for the report's name and start writing it; returns whether it started."""
        window = self._window
        if self._task is not None:
            window.statusBar().showMessage("A report is already being saved", 5000)
            return False
        target = self._ask_target(as_zip)
        if target is None:
            return False
        as_zip = target.suffix.lower() == ZIP_SUFFIX  # (see _ask_target)
        controller = window.controller
        if not window.settle_for_drawing("Report not saved"):
            return False
        try:
            plot_pngs = self._plot_pngs()
        except Exception as exc:  # noqa: BLE001 - pyqtgraph raises plain Exception
            show_error(window, "Report not saved", f"Could not draw the plots: {exc}")
            return False

        def job(_progress, _cancelled):
            return controller.write_report(target, plot_pngs=plot_pngs, as_zip=as_zip)

        task = BackgroundTask(job, self)
        self._task = task
        task.done.connect(self._on_done)
        task.failed.connect(self._on_failed)
        task.ended.connect(self._on_ended)
        self._set_busy(True, target)
        task.start()
        return True

    @Slot()
    def save_zip(self) -> bool:
        return self.save(as_zip=True)

    def shutdown(self) -> None:
        """Let a report being written finish (window closing)."""
        self._closed = True
        # BackgroundTask's thread only quits once its result reaches this (GUI) thread, so
        # deliver events while waiting rather than block in QThread.wait.
        deadline = time.monotonic() + SHUTDOWN_SECONDS
        while self._task is not None and time.monotonic() < deadline:
            QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)

    # -- steps -------------------------------------------------------------------------------

    def _ask_target(self, as_zip: bool) -> Path | None:
        """The folder (or archive) to write, never an occupied one."""
        window = self._window
        folder = window._last_save_folder()
        iteration = window.controller.latest_iteration
        stem = files.free_stem(folder, f"report-iter{iteration:06d}", ["", ZIP_SUFFIX])
        suggested = folder / (stem + (ZIP_SUFFIX if as_zip else ""))
        chosen = window._ask_save_path(
            "Save report as zip" if as_zip else "Save report (a new folder)",
            suggested,
            "Zip archive (*.zip)" if as_zip else "Report folder (*)",
        )
        if not chosen:
            return None
        target = Path(chosen)
        if as_zip and target.suffix.lower() != ZIP_SUFFIX:
            target = target.with_name(target.name + ZIP_SUFFIX)
        # A name typed with .zip in the folder dialog is an archive too (it made a folder
        # called "report.zip", which the message then called an archive to attach).
        as_zip = target.suffix.lower() == ZIP_SUFFIX
        try:
            occupied = _occupied(target)
        except (files.SaveError, OSError) as exc:
            show_error(window, "Report not saved", str(exc))
            return None
        if not occupied:
            return target
        suffixes = [ZIP_SUFFIX] if as_zip else ["", ZIP_SUFFIX]
        base = target.stem if as_zip else target.name
        try:
            free = target.parent / (
                files.free_stem(target.parent, base, suffixes) + (ZIP_SUFFIX if as_zip else "")
            )
        except files.SaveError as exc:
            show_error(window, "Report not saved", str(exc))
            return None
        return free if self._use_free_name(target, free) else None

    def _use_free_name(self, taken: Path, free: Path) -> bool:
        """Ask whether to save under ``free`` since ``taken`` exists (tests replace this)."""
        answer = QMessageBox.question(
            self._window,
            "Name already taken",
            f"{taken} already exists and is not replaced.\n\nSave the report as {free.name} "
            "instead?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.Yes,
        )
        return answer == QMessageBox.StandardButton.Yes

    def _plot_pngs(self) -> dict[str, bytes]:
        """Every plot of the window as PNG bytes, and the outcome map when there is one of
        the images the run has now."""
        window = self._window
        with window.drawing_plots() as progress:
            pngs = export.render_pngs(window.plot_items(), progress, window.plot_caption)
            picture = outcome_map_png(window)
            if picture is not None:
                pngs["outcome-map"] = picture
        return pngs

    def _set_busy(self, busy: bool, target: Path | None = None) -> None:
        window = self._window
        bar = window.statusBar()
        for widget in self._busy_widgets:
            bar.removeWidget(widget)
            widget.deleteLater()
        self._busy_widgets = []
        if busy:
            label = QLabel(f"Saving report {target.name}…")
            label.setObjectName("reportBusyLabel")
            spinner = QProgressBar()
            spinner.setObjectName("reportBusy")
            spinner.setRange(0, 0)
            spinner.setMaximumWidth(120)
            spinner.setMaximumHeight(14)
            bar.insertPermanentWidget(0, label)
            bar.insertPermanentWidget(1, spinner)
            self._busy_widgets = [label, spinner]
        for key in ("save_report", "save_report_zip"):
            if key in window.actions:
                window.actions[key].setEnabled(not busy)

    # -- results -----------------------------------------------------------------------------

    @Slot(object)
    def _on_done(self, path) -> None:
        path = Path(path)
        window = self._window
        QSettings().setValue("save/last_folder", str(path.parent))
        window.statusBar().showMessage(f"Report saved: {path}", 10000)
        self._result = path
        if self._closed:
            return
        is_zip = path.is_file()
        box = QMessageBox(
            QMessageBox.Icon.Information,
            "Report saved",
            f"The report is in {path}.",
            QMessageBox.StandardButton.Close,
            window,
        )
        box.setObjectName("reportSavedDialog")
        # Imported here: the report module is only needed once a report exists (start-up).
        from model.report import INDEX_NAME

        box.setInformativeText(
            "Attach the archive to a question or an issue; unpacked, its index.html is the "
            "report and REPRODUCE.txt says how to repeat the run."
            if is_zip
            else f"{INDEX_NAME} is the report (open it in a browser); REPRODUCE.txt says how to "
            "repeat the run."
        )
        opener = box.addButton(
            "Show folder" if is_zip else "Open report", QMessageBox.ButtonRole.ActionRole
        )
        opener.setObjectName("reportOpen")
        page = path.parent if is_zip else path / INDEX_NAME
        opener.clicked.connect(lambda: self.open_url(QUrl.fromLocalFile(str(page))))
        box.setModal(False)
        # It said its piece: the next Step or Run closes it rather than leave it over the
        # panels (the status bar still names the report).
        running_changed = window.controller.running_changed

        def close_when_running(running: bool) -> None:
            if running:  # (not when a Run going on as the report was written ends)
                box.close()

        running_changed.connect(close_when_running)
        box.finished.connect(lambda _result: running_changed.disconnect(close_when_running))
        # Shown without taking the keyboard from the window where the window system allows,
        # so that F10 goes on stepping.
        box.setAttribute(Qt.WidgetAttribute.WA_ShowWithoutActivating)
        box.show()
        self.saved_dialog = box

    @Slot(object, str)
    def _on_failed(self, exc: Exception, details: str) -> None:
        window = self._window
        if isinstance(exc, (OSError, ValueError)):  # SaveError is an OSError
            show_error(window, "Report not saved", str(exc))
        elif getattr(exc, "refused", False):
            # The same, raised in the training process, which writes the report: said without
            # "TrainerError: SaveError:" and a traceback.
            show_error(window, "Report not saved", exc.text)
        else:
            show_error(window, "Report not saved", f"{type(exc).__name__}: {exc}", details)
        window.statusBar().showMessage("Report not saved; the run is unchanged", 10000)

    @Slot()
    def _on_ended(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.deleteLater()
        self._set_busy(False)
        result, self._result = self._result, None
        self.finished.emit(result)

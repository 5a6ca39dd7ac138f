"""Errors people can read: a dialog with details to copy, and a log file in the user's data
folder. Nothing here ends the application."""

from __future__ import annotations

import datetime
import sys
import time
import traceback
from pathlib import Path

from PySide6.QtCore import QStandardPaths
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

#: Property of an error dialog: when it was shown (``time.monotonic()``).
SHOWN_AT = "shownAt"


def log_path() -> Path:
    """Where errors are logged: <user data folder>/errors.log."""
    folder = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(folder or Path.home() / ".training-inspector") / "errors.log"


def log_error(title: str, message: str, details: str = "") -> Path | None:
    """Append an error to the log file; returns its path, or None if it could not be written."""
    path = log_path()
    stamp = datetime.datetime.now().isoformat(timespec="seconds")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            handle.write(f"[{stamp}] {title}: {message}\n{details}\n")
    except OSError:
        return None
    return path


def show_error(parent: QWidget | None, title: str, message: str, details: str = "") -> QMessageBox:
    """Log the error and show it in a non-blocking dialog (details can be copied)."""
    logged = log_error(title, message, details)
    # A sentence, whichever layer wrote it ("label 1 folder … has no usable image").
    message = message[:1].upper() + message[1:]
    box = QMessageBox(
        QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, parent
    )
    box.setObjectName("errorDialog")
    box.setProperty(SHOWN_AT, time.monotonic())  # (which busy note it came with)
    if details:
        box.setDetailedText(details)
        # Only where there is more to read: a plain mistake in the data is all in the message.
        if logged is not None:
            box.setInformativeText(f"The details were also written to {logged}.")
    box.setModal(False)
    box.show()
    return box


def install_excepthook(parent_getter) -> None:
    """Show any exception that escapes a slot (drawing, a click) instead of losing it.

    ``parent_getter()`` returns the window to parent the dialog on (or None).
    """

    def hook(exc_type, exc, tb):
        if issubclass(exc_type, KeyboardInterrupt):
            QApplication.quit()
            return
        details = "".join(traceback.format_exception(exc_type, exc, tb))
        sys.stderr.write(details)
        show_error(parent_getter(), "Unexpected error", f"{exc_type.__name__}: {exc}", details)

    sys.excepthook = hook

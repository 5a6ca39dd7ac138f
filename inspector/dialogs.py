"""The file dialogs and questions that saving (and going back in history) asks, in one place.

Views and the window call these through small methods of their own (``_ask_save_path``,
``_confirm_replace``) so that tests can answer them without a dialog.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget


def ask_save_path(parent: QWidget, title: str, suggested: Path, filter_text: str) -> str:
    """A file name to save to, or '' when cancelled. Replacing is asked about separately
    (``confirm_replace``), for every file a save writes, not just the one named here."""
    path, _ = QFileDialog.getSaveFileName(
        parent,
        title,
        str(suggested),
        filter_text,
        options=QFileDialog.Option.DontConfirmOverwrite,
    )
    return path


def confirm_replace(parent: QWidget, paths: list[Path]) -> bool:
    """Whether the user agrees to replace ``paths`` (No is the default)."""
    names = "\n".join(str(p) for p in paths)
    answer = QMessageBox.question(
        parent,
        "Replace files?",
        (
            f"This file already exists:\n{names}\n\nReplace it?"
            if len(paths) == 1
            else f"These files already exist:\n{names}\n\nReplace them?"
        ),
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No,
    )
    return answer == QMessageBox.StandardButton.Yes


def ask_to_drop_later(
    parent: QWidget, iteration: int, dropped: int, title: str, question: str, then: str
) -> bool:
    """Ask before going back to ``iteration`` drops the ``dropped`` later ones; True to go on.
    The safe answer (Cancel) is the default."""
    later = f"{dropped} later iteration{'s' if dropped != 1 else ''}"
    span = f"{iteration + 1}" if dropped == 1 else f"{iteration + 1}–{iteration + dropped}"
    info = f"The {later} ({span}) will be dropped from the history. {then}"
    return _ask(parent, title, question, info, f"Drop {later}")


def ask_new_run(parent: QWidget, action: str, question: str, dropped: int) -> bool:
    """Ask before a change of the data starts a new run that drops the ``dropped`` iterations
    trained so far; True to go on. The safe answer (Cancel) is the default."""
    trained = f"{dropped} iteration{'s' if dropped != 1 else ''}"
    info = (
        f"Changing the data starts a new run from iteration 0: the {trained} trained so far "
        "will be dropped. Save a report first (File → Save report) to keep them."
    )
    return _ask(parent, "Start a new run?", question, info, f"{action} and start again")


def _ask(parent: QWidget, title: str, question: str, info: str, accept_text: str) -> bool:
    """A question box whose answers are ``accept_text`` (True) and Cancel, the default."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle(title)
    box.setText(question)
    box.setInformativeText(info)
    accept = box.addButton(accept_text, QMessageBox.ButtonRole.AcceptRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    box.exec()
    return box.clickedButton() is accept

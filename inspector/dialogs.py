"""The file dialogs and questions that saving asks, in one place.

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
        f"These files already exist:\n{names}\n\nReplace them?",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No,
    )
    return answer == QMessageBox.StandardButton.Yes

"""Every user command declared once: text, shortcut, tooltip, icon and what it calls.

Menus, the toolbar and the tests all take actions from the dictionary ``create_actions``
returns, so a shortcut or a label is changed in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QStyle, QWidget


@dataclass(frozen=True)
class ActionSpec:
    key: str
    text: str
    slot: Callable[[], None]
    shortcut: str | QKeySequence.StandardKey | None = None
    tooltip: str = ""
    icon: QStyle.StandardPixmap | None = None
    checkable: bool = False


def create_actions(parent: QWidget, specs: list[ActionSpec]) -> dict[str, QAction]:
    """QActions for ``specs``, keyed by ``ActionSpec.key``; the shortcut is shown in tooltips."""
    actions = {}
    style = parent.style()
    for spec in specs:
        action = QAction(spec.text, parent)
        action.setObjectName(f"action_{spec.key}")
        if spec.shortcut is not None:
            action.setShortcut(QKeySequence(spec.shortcut))
        shortcut_text = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        tip = spec.tooltip or spec.text.replace("&", "").rstrip(".…")
        action.setToolTip(f"{tip} ({shortcut_text})" if shortcut_text else tip)
        action.setStatusTip(tip)
        if spec.icon is not None:
            action.setIcon(style.standardIcon(spec.icon))
        action.setCheckable(spec.checkable)
        action.triggered.connect(lambda _checked=False, slot=spec.slot: slot())
        actions[spec.key] = action
    return actions

"""One panel filling the window (View → Maximise panel, Ctrl+M), and every panel back again.

For a projector, a small screen or large text (operating-system scaling), where the window
shares too little room between its panels: the Filters cells too small for their values, the
curves a strip each, the What-if table cut off. Maximising hides every other docked panel and
keeps the toolbar, the history strip (the way between iterations) and the status bar; showing
every panel again puts back the layout exactly as it was. Panels in windows of their own (a
floating panel, Side by side) are left alone.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QByteArray, QObject, QPoint, QTimer, Signal
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QApplication, QDockWidget, QMainWindow, QTabBar, QWidget

#: The shortcut: Ctrl+M (as in Eclipse); on macOS, where Cmd+M minimises a window, Control+M
#: (Qt's "Meta").
SHORTCUT = "Meta+M" if sys.platform == "darwin" else "Ctrl+M"


def shortcut_text() -> str:
    """``SHORTCUT`` as this platform writes it ('Ctrl+M', '⌃M')."""
    return QKeySequence(SHORTCUT).toString(QKeySequence.SequenceFormat.NativeText)


#: Panels never maximised (the history strip stays in view with the maximised panel).
KEPT = ("history",)
#: The panel maximised when neither the mouse nor the keyboard focus is on one.
FALLBACK = "filters"


class PanelMaximiser(QObject):
    """Which panel of ``window`` is maximised (``key``), and the layout to go back to.

    ``docks`` maps panel keys to the window's dock widgets; ``state_version`` is the one the
    window saves its layout with.
    """

    #: The maximised panel's key, or "" when every panel is shown again.
    changed = Signal(str)

    def __init__(
        self,
        window: QMainWindow,
        docks: dict[str, QDockWidget],
        state_version: int,
        fallback=None,
    ) -> None:
        super().__init__(window)
        self._window = window
        self._docks = docks
        self._version = state_version
        self._fallback = fallback  # lays out every panel when the saved layout cannot be read
        self._key: str | None = None
        self._state: QByteArray | None = None
        self._width = 0
        for key, dock in docks.items():
            dock.toggleViewAction().toggled.connect(
                lambda shown, key=key: shown or self._check_later(key)
            )
            dock.topLevelChanged.connect(
                lambda floating, key=key: floating and self._check_later(key)
            )

    @property
    def key(self) -> str | None:
        """The maximised panel, or None."""
        return self._key

    def saved_state(self) -> QByteArray:
        """The window's layout as the user arranged it: the one from before maximising, while a
        panel is maximised (what is saved for the next launch)."""
        if self._state is not None:
            return self._state
        return self._window.saveState(self._version)

    def panel_at(self, global_pos: QPoint) -> str | None:
        """The docked panel under a screen point (its contents, title bar or tab), or None."""
        widget = QApplication.widgetAt(global_pos)
        if isinstance(widget, QTabBar) and widget.parentWidget() is self._window:
            # Tabs of panels sharing a place belong to the window; a tab is named after its
            # panel.
            index = widget.tabAt(widget.mapFromGlobal(global_pos))
            title = widget.tabText(index) if index >= 0 else ""
            return next(
                (key for key, dock in self._docks.items() if dock.windowTitle() == title), None
            )
        return self.panel_of(widget)

    def panel_of(self, widget: QWidget | None) -> str | None:
        """The panel ``widget`` is part of, or None."""
        while widget is not None:
            if isinstance(widget, QDockWidget):
                return next((k for k, dock in self._docks.items() if dock is widget), None)
            widget = widget.parentWidget()
        return None

    def can_maximise(self, key: str | None) -> bool:
        return key is not None and key not in KEPT and not self._docks[key].isFloating()

    def target(self, global_pos: QPoint) -> str:
        """The panel Ctrl+M maximises: the one under the mouse, else the one with the keyboard
        focus, else the Filters panel."""
        for key in (self.panel_at(global_pos), self.panel_of(QApplication.focusWidget())):
            if self.can_maximise(key):
                return key
        return FALLBACK

    def maximise(self, key: str) -> bool:
        """Show panel ``key`` alone (with the history strip); False when it cannot be (a panel
        in a window of its own)."""
        if not self.can_maximise(key):
            return False
        if self._key is not None:
            self.restore()
        dock = self._docks[key]
        self._state = self._window.saveState(self._version)
        self._width = self._window.width()
        self._key = key
        for other_key, other in self._docks.items():
            if other is not dock and other_key not in KEPT and not other.isFloating():
                other.hide()
        dock.show()
        dock.raise_()
        self.changed.emit(key)
        return True

    def restore(self) -> bool:
        """Every panel back where it was; returns whether the window's width changed meanwhile
        (the caller may then fit its columns again). Nothing happens when none is maximised."""
        if self._key is None:
            return False
        state, width = self._state, self._width
        self._key, self._state = None, None
        if not self._window.restoreState(state, self._version) and self._fallback is not None:
            self._fallback()
        self.changed.emit("")
        return self._window.width() != width

    def forget(self) -> None:
        """Drop the maximised state without restoring (the layout is being replaced)."""
        was = self._key is not None
        self._key, self._state = None, None
        if was:
            self.changed.emit("")

    def _check_later(self, key: str) -> None:
        if key == self._key:
            QTimer.singleShot(0, self, lambda: self._left_alone(key))

    def _left_alone(self, key: str) -> None:
        """The maximised panel closed (its title bar's ×, the View menu) or floated away (its
        float button): every other panel comes back, rather than a window with nothing in it
        but the history strip; a floated panel stays a window of its own where it was put."""
        if self._key != key:
            return
        dock = self._docks[key]
        if dock.isFloating() and not dock.isHidden():
            geometry = dock.geometry()
            self.restore()
            dock.setFloating(True)
            dock.setGeometry(geometry)
            dock.show()
        elif dock.isHidden():
            self.restore()

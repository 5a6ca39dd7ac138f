"""A holder for a label whose text changes every frame, so that the window is not laid out again
each time.

``QLabel.setText`` tells the layout around the label that its size may have changed, and Qt then
activates every layout on the way up, to the main window's dock layout, even when nothing moves.
For the labels that show the iteration's numbers while training runs, that was several
milliseconds a frame. A ``LayoutGuard`` puts its label in a widget without a layout: the label's
size hints are passed on unchanged, but the layouts above hear of a change only when the hints
(or the label's own size limits) really differ.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QSize
from PySide6.QtWidgets import QLabel, QWidget


class LayoutGuard(QWidget):
    """Holds ``label`` (re-parented here) and stands for it in a layout.

    Put the guard where the label would go; keep using the label itself (text, font, tooltip,
    object name). The label fills the guard; the guard's size policy, limits and hints are the
    label's. Hiding or showing the label hides or shows the guard with it, so that the layout
    closes the gap as it would for the label alone.
    """

    def __init__(self, label: QLabel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._label = label
        label.setParent(self)
        self._hints = None
        self._adopt_hints()
        label.installEventFilter(self)

    @property
    def label(self) -> QLabel:
        return self._label

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        return self._label.sizeHint()

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        return self._label.minimumSizeHint()

    def hasHeightForWidth(self) -> bool:  # noqa: N802 (Qt override)
        return self._label.hasHeightForWidth()

    def heightForWidth(self, width: int) -> int:  # noqa: N802 (Qt override)
        return self._label.heightForWidth(width)

    def _measure(self) -> tuple:
        label = self._label
        height_for_width = label.heightForWidth(self.width()) if label.hasHeightForWidth() else -1
        return (
            label.sizeHint(),
            label.minimumSizeHint(),
            label.minimumSize(),
            label.maximumSize(),
            label.sizePolicy(),
            height_for_width,
        )

    def _adopt_hints(self) -> bool:
        """Take the label's hints and limits; True when they differ from the last ones."""
        hints = self._measure()
        if hints == self._hints:
            return False
        self._hints = hints
        _, _, minimum, maximum, policy, _ = hints
        self.setSizePolicy(policy)
        self.setMinimumSize(minimum)
        self.setMaximumSize(maximum)
        return True

    def sync(self) -> None:
        """Pass a change of the label's hints or limits on now, not when the label's own
        notice arrives (call it after changing the label's size limits in code that then
        relies on the layout)."""
        if self._adopt_hints():
            self.updateGeometry()

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt override)
        # The label hidden or shown itself (not because the guard was): follow it.
        if watched is self._label:
            kind = event.type()
            if kind == QEvent.Type.HideToParent and self.isVisibleTo(self.parentWidget()):
                self.hide()
            elif kind == QEvent.Type.ShowToParent and not self.isVisibleTo(self.parentWidget()):
                self.show()
        return super().eventFilter(watched, event)

    def event(self, event) -> bool:
        if event.type() == QEvent.Type.LayoutRequest:
            # Posted by the label's updateGeometry: pass it on only when something changed.
            self.sync()
            return True
        return super().event(event)

    def showEvent(self, event) -> None:  # noqa: N802 (Qt override)
        # While hidden, the label's changes were not posted here.
        self.sync()
        super().showEvent(event)

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        self._label.setGeometry(self.rect())

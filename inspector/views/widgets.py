"""Small widgets the views share: a label that elides its text, a label whose text can be
selected without costing a frame, the frameless scroll area a panel scrolls in when its content
does not fit, and the wheel of plots inside one."""

from __future__ import annotations

import math

from PySide6.QtCore import QEvent, QObject, QSize, Qt
from PySide6.QtGui import Qt as GuiQt
from PySide6.QtGui import QTextDocument, QTextOption
from PySide6.QtWidgets import QApplication, QFrame, QLabel, QScrollArea, QSizePolicy, QWidget

#: Qt's largest widget size (QWIDGETSIZE_MAX), at which QLabel measures a text's fewest lines.
_WIDGET_SIZE_MAX = (1 << 24) - 1


class ElidedLabel(QLabel):
    """A one-line label that shortens its text with '…' to the width it gets (the whole text
    stays in ``text()`` and, when shortened, in the tooltip)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._full = ""
        self._tip = ""
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.setMinimumWidth(20)

    def setText(self, text: str) -> None:  # noqa: N802 (Qt override)
        self._full = text
        self._elide()

    def text(self) -> str:
        return self._full

    def set_tip(self, tip: str) -> None:
        """The tooltip (besides the whole text when it is shortened)."""
        self._tip = tip
        self._elide()

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        margins = self.contentsMargins()
        room = self.width() - margins.left() - margins.right() - 2 * self.margin() - 16
        shown = self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideRight, room)
        super().setText(shown)
        tips = [self._full] if shown != self._full else []
        if self._tip:
            tips.append(self._tip)
        self.setToolTip("\n\n".join(tips))


class SelectableLabel(QLabel):
    """A label whose text can be selected with the mouse (to copy its numbers), for text that
    changes with every iteration shown: it becomes selectable only when the mouse is over it.

    A selectable ``QLabel`` keeps its text in a document, and each measurement of its size (the
    layout around it asks for several) lays the document out at another width and back, which
    asks for another repaint. A word-wrapped one whose text changed was laid out several more
    times and painted three times, not once: with the Filters equation, a Diagnostics
    explanation and the maps' summary, several milliseconds of each iteration shown. Not
    selectable, it is measured and painted from its font's metrics: the same lines and the same
    pixels.

    So it is selectable while the mouse is over it or its context menu (Copy, Select All) is
    open, and stays so while text in it is selected until its text changes (a new text ends
    the selection). ``set_selectable(False)`` keeps it unselectable whatever the mouse does
    (while a run replaces the text faster than it could be selected). Its size hints are a
    selectable label's (``sizeHint``, ``minimumSizeHint``).
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._allowed = True
        self._hovered = False
        self._document: QTextDocument | None = None
        self._document_style: tuple | None = None
        self._hint_key: tuple | None = None
        self._hints: tuple[QSize, QSize] | None = None

    def set_selectable(self, allowed: bool) -> None:
        """Whether the text may be selected (once the mouse is over it)."""
        self._allowed = allowed
        self._follow()

    def is_selectable(self) -> bool:
        """True when the text can be selected as soon as the mouse is over it."""
        return self._allowed

    def setText(self, text: str) -> None:  # noqa: N802 (Qt override)
        if text != self.text() and self.hasSelectedText() and not self._menu_open():
            # A new text ends the selection (a QLabel would keep its range, now over other
            # characters): dropping selectability drops the selection with it.
            self.setTextInteractionFlags(Qt.TextInteractionFlag.NoTextInteraction)
        super().setText(text)
        self._follow()

    def clear(self) -> None:
        self.setText("")

    def enterEvent(self, event) -> None:  # noqa: N802 (Qt override)
        self._hovered = True
        self._follow()
        super().enterEvent(event)

    def leaveEvent(self, event) -> None:  # noqa: N802 (Qt override)
        self._hovered = False
        self._follow()
        super().leaveEvent(event)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        """The size a selectable label asks for, so that the layouts around it are the same
        either way: its document's ideal size. (An unselectable word-wrapped label asks for
        a line of some 80 characters instead, and a new text's hint then changed the Filters
        panel's, which laid out the main window again.)"""
        hints = self._wrapped_hints()
        return super().sizeHint() if hints is None else QSize(hints[0])

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        """A selectable label's too: its longest word wide, a line high (measured with the
        size hint, in the same document: QLabel measured it again, three times, from the
        font's metrics, for every new text of a panel's wrapped explanation)."""
        hints = self._wrapped_hints()
        return super().minimumSizeHint() if hints is None else QSize(hints[1])

    def _wrapped_hints(self) -> tuple[QSize, QSize] | None:
        """(size hint, minimum size hint) of a word-wrapped plain text, as a selectable QLabel
        measures them; None for any other label (the same either way)."""
        if (
            not self.text()  # (QLabel measures no text as some pixels wide, either way)
            or not self.wordWrap()
            or self.textFormat() == Qt.TextFormat.RichText
            or (self.textFormat() == Qt.TextFormat.AutoText and GuiQt.mightBeRichText(self.text()))
        ):
            return None
        # (Measured here while selectable too: QLabel keeps the hints it measured before.)
        margins = self.contentsMargins()
        key = (
            self.text(),
            self.font().toString(),
            self.margin(),
            self.indent(),
            int(self.alignment()),
            (margins.left(), margins.top(), margins.right(), margins.bottom()),
            self.minimumSize().toTuple(),
            self.frameWidth(),
            self.textFormat(),
        )
        if key != self._hint_key:
            self._hint_key = key
            self._hints = self._measure_document()
        return self._hints

    def _measure_document(self) -> tuple[QSize, QSize]:
        """What ``QLabel`` measures a selectable word-wrapped plain text as: its text in a
        document without margins, in the label's font, at the document's ideal width (the size
        hint), at no width (the minimum's width) and at any width (its fewest lines: the
        minimum's height), plus the label's margin, indent and contents margins."""
        document = self._document
        if document is None:
            document = self._document = QTextDocument(self)
            document.setUndoRedoEnabled(False)
            document.setDocumentMargin(0)
        style = (int(self.alignment()), self.font().toString())
        if style != self._document_style:
            # (Either relays out the text the document holds: set only when they change.)
            self._document_style = style
            option = QTextOption(self.alignment())
            option.setWrapMode(QTextOption.WrapMode.WordWrap)
            document.setDefaultTextOption(option)
            document.setDefaultFont(self.font())
        document.setPlainText(self.text())
        extra_w = extra_h = 2 * self.margin()
        indent = self.indent()
        if indent < 0 and self.frameWidth():  # (no indent given, but a frame)
            indent = self.fontMetrics().horizontalAdvance("x") - 2 * self.margin()
        if indent > 0:
            align = self.alignment()
            if align & (Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignRight):
                extra_w += indent
            if align & (Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignBottom):
                extra_h += indent
        margins = self.contentsMargins()
        extra_w += margins.left() + margins.right()
        extra_h += margins.top() + margins.bottom()
        least = self.minimumSize()

        def laid_out(width: int) -> QSize:
            """QLabel's ``sizeForWidth(width)``: at least its minimum width, or its ideal
            width for -1."""
            if least.width() > 0:
                width = max(width, least.width())
            if width >= 0:
                document.setTextWidth(max(width - extra_w, 0))
            else:
                document.adjustSize()
            size = document.size()
            hint = QSize(math.ceil(size.width()) + extra_w, math.ceil(size.height()) + extra_h)
            return hint.expandedTo(least)

        # (Ideal width last: the next text is laid out at the width the document was left at
        # as it is set, and a text is laid out fastest near its ideal width.)
        least_width = laid_out(0).width()
        one_line = laid_out(_WIDGET_SIZE_MAX).height()
        hint = laid_out(-1)
        return hint, QSize(least_width, min(one_line, hint.height()))

    def _menu_open(self) -> bool:
        """Whether the label's own context menu (Copy, Select All) is open: its actions act
        on the selection, so the label stays selectable meanwhile (the menu took the mouse)."""
        popup = QApplication.activePopupWidget()
        return popup is not None and popup.parentWidget() is self

    def _follow(self) -> None:
        selectable = self._allowed and (
            self._hovered or self.hasSelectedText() or self._menu_open()
        )
        flag = (
            Qt.TextInteractionFlag.TextSelectableByMouse
            if selectable
            else Qt.TextInteractionFlag.NoTextInteraction
        )
        if self.textInteractionFlags() != flag:
            self.setTextInteractionFlags(flag)


def scroll_area(
    content: QWidget, name: str = "", *, across: bool = True, parent: QWidget | None = None
) -> QScrollArea:
    """A scroll area without a frame that sizes ``content`` to its room, scrolling what does
    not fit (never sideways unless ``across``)."""
    area = QScrollArea(parent)
    if name:
        area.setObjectName(name)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setWidgetResizable(True)
    if not across:
        area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    area.setWidget(content)
    return area


def scroll_with_plain_wheel(area: QScrollArea, event) -> bool:
    """Give ``event``, if it is a plain wheel turn (no Ctrl: that zooms a plot), to ``area``;
    True when it did. Plots that zoom with Ctrl+wheel only leave a plain turn unused, and an
    unused turn does not reach the scroll area around them by itself."""
    if event.type() != QEvent.Type.Wheel or (
        event.modifiers() & Qt.KeyboardModifier.ControlModifier
    ):
        return False
    QApplication.sendEvent(area.viewport(), event)
    return True


class _WheelScrollsPanel(QObject):
    """Plain wheel turns over plots scroll the panel they are in (``scroll_with_plain_wheel``)."""

    def __init__(self, graphics: QWidget) -> None:
        super().__init__(graphics)
        self._graphics = graphics
        graphics.viewport().installEventFilter(self)

    def eventFilter(self, _watched, event) -> bool:  # noqa: N802 (Qt override)
        if event.type() != QEvent.Type.Wheel:
            return False
        widget = self._graphics.parentWidget()
        while widget is not None and not isinstance(widget, QScrollArea):
            widget = widget.parentWidget()
        return widget is not None and scroll_with_plain_wheel(widget, event)


def wheel_scrolls_panel(graphics: QWidget) -> None:
    """Give plain wheel turns over ``graphics`` (a plot widget whose plots zoom with Ctrl+wheel
    only) to the scroll area it is in."""
    _WheelScrollsPanel(graphics)

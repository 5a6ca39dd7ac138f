"""The selectable label: selectable under the mouse, measured and painted once per new text
otherwise, with the same lines and pixels either way."""

import random

import pytest
from PySide6.QtCore import QCoreApplication, QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QContextMenuEvent, QEnterEvent
from PySide6.QtWidgets import QApplication, QLabel, QVBoxLayout, QWidget

from inspector.layout_guard import LayoutGuard
from inspector.views.widgets import SelectableLabel

SELECT = Qt.TextInteractionFlag.TextSelectableByMouse
TEXT = (
    "Iteration 12: w ← w − η·∇w = 0.0123 − 0.01 × 3.33 for filter 3, channel R, row 1, "
    "column 2, and the bias 0.12 ← 0.13 − 0.01 × 1.0, over several lines at this width"
)


def _panel(qtbot, label: QLabel) -> QWidget:
    """``label`` word-wrapped in a guard above a stretch, as the views hold their equation,
    summary and explanations."""
    panel = QWidget()
    qtbot.addWidget(panel)
    label.setObjectName("numbers")
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setText(TEXT)
    layout = QVBoxLayout(panel)
    layout.addWidget(LayoutGuard(label, panel))
    layout.addStretch(1)
    panel.resize(300, 200)
    panel.show()
    qtbot.waitExposed(panel)
    qtbot.wait(20)
    # Wherever an earlier test left the mouse, the label starts with the mouse away from it
    # (shown under it, it would start selectable).
    _leave(label)
    return panel


def _enter(label: QLabel) -> None:
    centre = QPointF(label.rect().center())
    QApplication.sendEvent(label, QEnterEvent(centre, centre, label.mapToGlobal(centre)))


def _leave(label: QLabel) -> None:
    QApplication.sendEvent(label, QEvent(QEvent.Type.Leave))


def _selectable(label: QLabel) -> bool:
    return bool(label.textInteractionFlags() & SELECT)


def test_a_new_text_is_painted_once(qtbot, count_events):
    label = SelectableLabel()
    panel = _panel(qtbot, label)  # noqa: F841 (kept: the panel owns the label)
    paints = count_events(label, QEvent.Type.Paint)
    for iteration in range(13, 19):
        label.setText(TEXT.replace("Iteration 12", f"Iteration {iteration}"))
        # Painted first, then laid out, as in the window, where the frame's repaint is
        # asked for before the label's new text asks for a layout.
        QCoreApplication.sendPostedEvents(None, QEvent.Type.UpdateRequest)
        qtbot.wait(30)  # (every other posted repaint and layout request delivered)
    assert paints.count == 6
    assert not _selectable(label)


def test_it_is_selectable_under_the_mouse_and_while_text_is_selected(qtbot):
    label = SelectableLabel()
    panel = _panel(qtbot, label)  # noqa: F841 (kept: the panel owns the label)
    assert not _selectable(label) and label.is_selectable()
    _enter(label)
    assert _selectable(label)
    _leave(label)
    assert not _selectable(label)

    # A selection outlives the mouse leaving, so that it can still be copied ...
    _enter(label)
    label.setSelection(0, 9)
    _leave(label)
    assert _selectable(label) and label.selectedText() == "Iteration"
    # ... until the text changes, which ends it.
    label.setText("Iteration 13")
    assert not _selectable(label) and not label.hasSelectedText()


def test_set_selectable_false_keeps_it_unselectable_under_the_mouse(qtbot):
    label = SelectableLabel()
    panel = _panel(qtbot, label)  # noqa: F841 (kept: the panel owns the label)
    _enter(label)
    label.set_selectable(False)
    assert not _selectable(label) and not label.is_selectable()
    _leave(label)
    _enter(label)
    assert not _selectable(label)
    label.set_selectable(True)
    assert _selectable(label)


def test_the_mouse_selects_its_text(qtbot):
    label = SelectableLabel()
    panel = _panel(qtbot, label)  # noqa: F841 (kept: the panel owns the label)
    start = QPoint(2, label.fontMetrics().height() // 2)
    qtbot.mouseMove(label, start)
    qtbot.waitUntil(lambda: _selectable(label))
    qtbot.mousePress(label, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(label, QPoint(label.width() // 2, start.y()))
    qtbot.mouseRelease(label, Qt.MouseButton.LeftButton, pos=QPoint(label.width() // 2, start.y()))
    assert len(label.selectedText()) > 5 and label.selectedText() in TEXT


@pytest.mark.parametrize(
    "setup",
    ["plain", "auto format", "style sheet", "margin", "large font", "contents margins"],
)
def test_it_asks_the_layout_for_what_a_selectable_label_asks(qtbot, setup):
    """Same size hints as a selectable QLabel, whatever the text: an unselectable word-wrapped
    QLabel asks for a line of some 80 characters instead, and with that the Filters panel's
    hint changed with the equation's numbers and laid out the main window again."""
    rng = random.Random(setup)
    words = "the filter's inputs are negative on every pixel 0.0123 −0.045 [1.0, 2.0] → · ×"
    words = words.split()

    def pair(text: str, least: int = 0) -> tuple[SelectableLabel, QLabel]:
        ours, theirs = SelectableLabel(), QLabel()
        theirs.setTextInteractionFlags(SELECT)
        for label in (ours, theirs):
            qtbot.addWidget(label)
            label.setWordWrap(True)
            if least:
                label.setMinimumWidth(least)  # (QLabel then wraps at that width)
            if setup != "auto format":
                label.setTextFormat(Qt.TextFormat.PlainText)
            if setup == "style sheet":
                label.setStyleSheet("background: transparent; border: none; padding: 3px;")
            elif setup == "margin":
                label.setMargin(4)
            elif setup == "large font":
                font = label.font()
                font.setPointSize(15)
                label.setFont(font)
            elif setup == "contents margins":
                label.setContentsMargins(2, 4, 6, 8)
            label.setText(text)
        return ours, theirs

    texts = [" ".join(rng.choice(words) for _ in range(count)) for count in (1, 3, 12, 40, 120)]
    texts[3] = texts[3].replace(" pixel ", "\n")
    texts += ["", "a_single_word_far_longer_than_any_line_of_the_label_" * 3]
    for text in texts:
        ours, theirs = pair(text)
        assert not _selectable(ours)
        assert ours.sizeHint() == theirs.sizeHint(), text
        assert ours.minimumSizeHint() == theirs.minimumSizeHint(), text
        for width in (60, 200, 500):
            assert ours.heightForWidth(width) == theirs.heightForWidth(width), text
        # Under the mouse too (QLabel keeps the hints it measured while unselectable).
        _enter(ours)
        assert _selectable(ours), text
        assert ours.sizeHint() == theirs.sizeHint(), text
        assert ours.minimumSizeHint() == theirs.minimumSizeHint(), text
        ours, theirs = pair(text, least=150)
        assert ours.sizeHint() == theirs.sizeHint(), text
        assert ours.minimumSizeHint() == theirs.minimumSizeHint(), text


@pytest.mark.parametrize("width", [150, 283, 622])
def test_the_same_lines_and_pixels_selectable_or_not(qtbot, width):
    label = SelectableLabel()
    panel = _panel(qtbot, label)
    panel.resize(width + 40, 400)
    qtbot.wait(20)
    plain = (label.heightForWidth(width), label.grab().toImage())
    _enter(label)
    assert _selectable(label)
    selectable = (label.heightForWidth(width), label.grab().toImage())
    assert plain[0] == selectable[0]
    assert plain[1] == selectable[1]


def test_its_context_menu_selects_and_copies_though_the_mouse_left_for_it(qtbot):
    """The context menu takes the mouse (the label hears it leave); its Select All and Copy
    act on the selection, so the label stays selectable while it is open."""
    label = SelectableLabel()
    panel = _panel(qtbot, label)  # noqa: F841 (kept: the panel owns the label)
    _enter(label)
    point = label.rect().center()
    QApplication.sendEvent(
        label, QContextMenuEvent(QContextMenuEvent.Reason.Mouse, point, label.mapToGlobal(point))
    )
    qtbot.waitUntil(lambda: QApplication.activePopupWidget() is not None)
    menu = QApplication.activePopupWidget()
    _leave(label)
    assert _selectable(label)
    select_all = next(a for a in menu.actions() if a.text().startswith("Select All"))
    select_all.trigger()
    assert label.selectedText() == TEXT
    menu.close()
    qtbot.waitUntil(lambda: QApplication.activePopupWidget() is None)
    assert _selectable(label)  # (the selection is still there to copy)
    label.setText("Iteration 13")  # ... until the text changes
    assert not _selectable(label) and not label.hasSelectedText()

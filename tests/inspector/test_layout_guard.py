"""The layout guard lays the window out again only when a label's new text needs another size."""

from PySide6.QtCore import QEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from inspector.layout_guard import LayoutGuard


def _panel(qtbot, text: str, *, wrap: bool = False):
    """A label above a stretch (wrapped) or beside one (one line: as wide as its text)."""
    panel = QWidget()
    qtbot.addWidget(panel)
    label = QLabel(text)
    label.setObjectName("numbers")
    label.setWordWrap(wrap)
    layout = QVBoxLayout(panel) if wrap else QHBoxLayout(panel)
    layout.addWidget(LayoutGuard(label, panel))
    layout.addStretch(1)
    panel.resize(400, 300)
    panel.show()
    qtbot.waitExposed(panel)
    qtbot.wait(20)
    return panel, label


def test_same_size_text_does_not_lay_the_panel_out_again(qtbot, count_events):
    panel, label = _panel(qtbot, "Iteration 10 of 10")
    requests = count_events(panel, QEvent.Type.LayoutRequest)
    for iteration in range(11, 20):
        label.setText(f"Iteration {iteration} of {iteration}")
        qtbot.wait(5)
    assert requests.count == 0
    assert label.text() == "Iteration 19 of 19"
    assert panel.findChild(QLabel, "numbers") is label


def test_a_text_that_needs_more_room_gets_it(qtbot, count_events):
    panel, label = _panel(qtbot, "Loss 0.5")
    before = label.width()
    requests = count_events(panel, QEvent.Type.LayoutRequest)
    label.setText("Loss 0.5 · accuracy 100% · a longer line")
    qtbot.waitUntil(lambda: requests.count > 0)
    qtbot.waitUntil(lambda: label.width() > before)
    assert label.width() >= label.sizeHint().width()


def test_limits_set_on_the_label_reach_the_layout(qtbot):
    panel, label = _panel(qtbot, "one line\nand another", wrap=True)
    guard = label.parentWidget()
    label.setMinimumHeight(120)
    qtbot.waitUntil(lambda: guard.height() >= 120)
    # Wrapped text asks for the height its lines need at the width it gets.
    long = " ".join(["word"] * 200)
    label.setText(long)
    qtbot.waitUntil(lambda: guard.height() >= label.heightForWidth(label.width()) > 120)


def test_hiding_the_label_closes_its_gap_and_showing_it_opens_it_again(qtbot):
    panel = QWidget()
    qtbot.addWidget(panel)
    label, below = QLabel("numbers"), QLabel("below")
    layout = QVBoxLayout(panel)
    guard = LayoutGuard(label, panel)
    layout.addWidget(guard)
    layout.addWidget(below)
    layout.addStretch(1)
    panel.resize(300, 200)
    panel.show()
    qtbot.waitExposed(panel)
    shown_at = below.y()
    label.hide()
    qtbot.waitUntil(lambda: below.y() < shown_at)
    assert not guard.isVisible()
    label.show()
    qtbot.waitUntil(lambda: below.y() == shown_at)
    assert guard.isVisible() and label.isVisible()

"""View → Maximise panel (Ctrl+M): one panel fills the window for a projector or a small
screen, and every panel comes back exactly where it was."""

import pytest
from PySide6.QtCore import QByteArray, QPoint, QSettings
from PySide6.QtGui import QCursor
from PySide6.QtWidgets import QApplication, QLineEdit, QTabBar

from inspector.controller import SessionController
from inspector.main_window import MainWindow
from model.presets import preset_config


def shown_panels(window) -> set[str]:
    return {key for key, dock in window.docks.items() if dock.toggleViewAction().isChecked()}


def title_point(dock) -> QPoint:
    """A screen point on ``dock``'s title bar."""
    return dock.mapToGlobal(QPoint(dock.width() // 3, 6))


def test_the_filters_panel_fills_a_small_window_with_its_values_and_comes_back(
    qtbot, window, step_and_wait
):
    window.resize(1024, 768)
    step_and_wait(window.controller)
    filters = window.filters_view
    qtbot.waitUntil(lambda: filters._groups["weights"].fit is None)
    assert filters._readout.text().startswith("Cells too small for values: Ctrl+M")
    before = shown_panels(window)
    widths = {key: window.docks[key].width() for key in ("setup", "filters", "diagnostics")}

    window.maximise_panel("filters")

    # Alone with the history strip, and every cell carries its value at the full width.
    assert shown_panels(window) == {"filters", "history"}
    qtbot.waitUntil(lambda: all(g.fit is not None for g in filters._groups.values()))
    assert window.docks["filters"].width() == window.width()
    assert window.actions["maximise"].text() == "Show every &panel"
    assert "Ctrl+M shows every panel" in window.statusBar().currentMessage()

    window.actions["maximise"].trigger()  # Ctrl+M again

    assert shown_panels(window) == before
    assert {key: window.docks[key].width() for key in widths} == widths
    assert window.actions["maximise"].text() == "&Maximise panel"
    assert window.maximiser.key is None


def test_ctrl_m_maximises_the_panel_under_the_mouse(qtbot, window):
    maximiser = window.maximiser
    diagnostics = window.docks["diagnostics"]
    assert maximiser.panel_at(title_point(diagnostics)) == "diagnostics"
    inside = window.diagnostics_view.mapToGlobal(window.diagnostics_view.rect().center())
    assert maximiser.target(inside) == "diagnostics"
    # A tab of panels sharing a place counts as its panel.
    bars = [bar for bar in window.findChildren(QTabBar) if bar.parentWidget() is window]
    tabs = next(bar for bar in bars if "Curves" in [bar.tabText(i) for i in range(bar.count())])
    index = next(i for i in range(tabs.count()) if tabs.tabText(i) == "Curves")
    assert maximiser.panel_at(tabs.mapToGlobal(tabs.tabRect(index).center())) == "curves"
    # Off the panels (or on the history strip): the panel with the keyboard focus, else the
    # Filters panel.
    far = QPoint(-5000, -5000)
    focus = QApplication.focusWidget()
    if focus is not None:
        focus.clearFocus()
    assert maximiser.target(title_point(window.docks["history"])) == "filters"
    assert maximiser.target(far) == "filters"
    window.setup_view.findChild(QLineEdit).setFocus()
    if QApplication.focusWidget() is not None:
        assert maximiser.target(far) == "setup"

    QCursor.setPos(inside)
    window.toggle_maximised()
    if window.maximiser.key != "diagnostics":  # (a platform without a settable cursor)
        assert window.maximiser.key == "filters"
    assert shown_panels(window) == {window.maximiser.key, "history"}
    window.toggle_maximised()
    assert window.maximiser.key is None


def test_a_tabbed_panel_maximised_comes_back_to_its_tabs(qtbot, window):
    window.docks["curves"].raise_()
    qtbot.waitUntil(lambda: window.created_view("curves") is not None)
    before = shown_panels(window)
    window.maximise_panel("curves")
    assert shown_panels(window) == {"curves", "history"}
    assert window.docks["curves"].height() > window.height() // 2
    window.show_every_panel()
    assert shown_panels(window) == before
    assert window.tabifiedDockWidgets(window.docks["curves"])


def test_closing_the_maximised_panel_brings_every_panel_back(qtbot, window):
    before = shown_panels(window)
    window.maximise_panel("diagnostics")
    window.docks["diagnostics"].close()
    qtbot.waitUntil(lambda: window.maximiser.key is None)
    assert shown_panels(window) == before


def test_maximising_another_panel_goes_straight_there(qtbot, window):
    before = shown_panels(window)
    window.maximise_panel("filters")
    window.maximise_panel("maps")
    assert shown_panels(window) == {"maps", "history"}
    window.show_every_panel()
    assert shown_panels(window) == before


def test_a_floating_panel_is_not_maximised(qtbot, window):
    window.docks["diagnostics"].setFloating(True)
    assert not window.maximiser.maximise("diagnostics")
    assert window.maximiser.key is None
    window.maximise_panel("filters")
    assert window.docks["diagnostics"].isVisible()  # a window of its own, left alone


def test_the_layout_saved_while_maximised_is_the_one_to_go_back_to(qtbot, question_dataset):
    first = MainWindow(SessionController(question_dataset, preset_config("seed")))
    qtbot.addWidget(first)
    first.show()
    before = shown_panels(first)
    first.maximise_panel("filters")
    first.close()
    assert QSettings().value("window/state") is not None

    second = MainWindow(SessionController(question_dataset, preset_config("seed")))
    qtbot.addWidget(second)
    second.show()
    assert shown_panels(second) == before
    second.close()


def test_restoring_the_default_layout_ends_the_maximised_panel(qtbot, window):
    window.maximise_panel("filters")
    window.restore_default_layout()
    assert window.maximiser.key is None
    assert {"setup", "filters", "maps", "diagnostics"} <= shown_panels(window)
    assert window.actions["maximise"].text() == "&Maximise panel"


def test_the_title_bar_menu_offers_to_maximise_the_panel_clicked(qtbot, window):
    QCursor.setPos(title_point(window.docks["filters"]))
    if QCursor.pos() != title_point(window.docks["filters"]):
        pytest.skip("this platform does not move the cursor (panel_at is tested above)")
    menu = window.createPopupMenu()
    first = menu.actions()[0]
    assert first.text() == "Maximise Filters"
    first.trigger()
    assert window.maximiser.key == "filters"
    menu = window.createPopupMenu()
    assert menu.actions()[0] is window.actions["maximise"]
    assert menu.actions()[0].text() == "Show every &panel"


def test_maximise_is_in_the_view_menu_and_the_shortcuts(window):
    view_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&View")
    assert window.actions["maximise"] in view_menu.actions()
    assert window.actions["maximise"].shortcut().toString() == "Ctrl+M"
    assert ("Maximise panel", "Ctrl+M") in window.shortcut_rows()


def test_floating_the_maximised_panel_keeps_it_floating_with_every_panel_back(qtbot, window):
    """A review: floating the maximised panel (its float button) re-docked it at once."""
    before = shown_panels(window)
    window.maximise_panel("filters")
    window.docks["filters"].setFloating(True)
    qtbot.waitUntil(lambda: window.maximiser.key is None)
    qtbot.wait(50)
    assert window.docks["filters"].isFloating() and window.docks["filters"].isVisible()
    assert shown_panels(window) == before


def test_a_layout_that_cannot_be_read_back_falls_back_to_the_default(qtbot, window):
    window.maximise_panel("filters")
    window.maximiser._state = QByteArray(b"not a layout")
    window.show_every_panel()
    assert {"setup", "filters", "maps", "diagnostics", "history"} <= shown_panels(window)

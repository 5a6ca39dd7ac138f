"""Fitting heatmap cell values: text widths are measured once per text and font, within a
bounded memory, and the fit is the one the widths measured afresh give. The texts are written
at a fixed screen size whatever the zoom, and scale with a saved figure."""

import numpy as np
from PySide6.QtGui import QFontMetricsF, QImage, QPainter
from PySide6.QtWidgets import QApplication

from inspector import plotting


class _Counting:
    """Stands for a QFontMetricsF and counts the widths asked of it."""

    def __init__(self, metrics: QFontMetricsF) -> None:
        self._metrics = metrics
        self.calls = 0

    def height(self) -> float:
        return self._metrics.height()

    def horizontalAdvance(self, text: str) -> float:  # noqa: N802 (Qt's name)
        self.calls += 1
        return self._metrics.horizontalAdvance(text)


TEXTS = (["-65,092.3", "0.0451", "-2.54e-4"], ["-65,092", "0.0451", "-2.54e-4"])


def test_each_text_is_measured_once_and_as_qt_measures_it(qtbot, monkeypatch):
    widths = plotting._CellTextWidths()
    monkeypatch.setattr(plotting, "_CELL_TEXT_WIDTHS", widths)
    metrics = widths.metrics()
    expected = max(metrics.horizontalAdvance(t) for t in TEXTS[0])
    assert widths.widest(TEXTS[0]) == expected
    counting = widths._metrics = _Counting(metrics)
    first = plotting.fit_cell_texts(TEXTS, 60.0, 20.0)
    # New: the shorter format's "-65,092", and the parts "-2.54" and "e-4" split before the
    # exponent; the rest were measured above.
    assert counting.calls == 3
    assert plotting.fit_cell_texts(TEXTS, 60.0, 20.0) == first
    plotting.fit_cell_texts(TEXTS, 30.0, 30.0)  # another cell size: the same texts
    assert counting.calls == 3


def test_the_fit_is_the_one_fresh_widths_give(qtbot, monkeypatch):
    remembered = plotting._CellTextWidths()
    monkeypatch.setattr(plotting, "_CELL_TEXT_WIDTHS", remembered)
    formats = (["-65,092.3", "-61,932.8", "0.0451"], ["-65,092", "-61,933", "0.0451"])
    for width, height in [(90, 20), (60, 20), (45, 30), (30, 40), (20, 20)]:
        plotting.fit_cell_texts(formats, width, height)  # fills the memory
        got = plotting.fit_cell_texts(formats, width, height)
        monkeypatch.setattr(plotting, "_CELL_TEXT_WIDTHS", plotting._CellTextWidths())
        assert got == plotting.fit_cell_texts(formats, width, height)
        monkeypatch.setattr(plotting, "_CELL_TEXT_WIDTHS", remembered)


def test_the_memory_of_widths_is_bounded(qtbot, monkeypatch):
    widths = plotting._CellTextWidths()
    monkeypatch.setattr(widths, "MAX_TEXTS", 10)
    metrics = widths.metrics()
    for value in range(25):
        assert widths.widest([f"{value}.5"]) == metrics.horizontalAdvance(f"{value}.5")
        assert len(widths._widths) <= 10


def test_another_application_font_measures_again(qtbot, monkeypatch):
    widths = plotting._CellTextWidths()
    monkeypatch.setattr(plotting, "_CELL_TEXT_WIDTHS", widths)
    before = widths.metrics()
    widths.widest(["-65,092.3"])
    app = QApplication.instance()
    original = app.font()
    other = app.font()
    # Another family among the fallbacks only: a font the key of QFont does not tell apart.
    other.setFamilies([*original.families(), "DejaVu Serif"])
    app.setFont(other)
    try:
        after = widths.metrics()
        assert after is not before and not widths._widths
        assert widths.widest(["-65,092.3"]) == after.horizontalAdvance("-65,092.3")
    finally:
        app.setFont(original)


def _ink_box(image: QImage) -> tuple[int, int, float, float]:
    """(width, height, centre x, centre y) of the pixels that are not the dark background."""
    pixels = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), -1, 4)
    ink = pixels[:, : image.width(), :3].max(axis=2) > 128
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    width, height = int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)
    return width, height, (cols[0] + cols[-1] + 1) / 2, (rows[0] + rows[-1] + 1) / 2


def test_cell_texts_keep_their_screen_size_at_any_zoom_and_grow_with_an_export(qtbot):
    """Written at a fixed size in scene units: a view's zoom (the items' transform) leaves it,
    a painter that draws the scene larger (a saved figure) scales it with the rest."""
    from PySide6.QtCore import QRectF
    from PySide6.QtWidgets import QGraphicsScene

    def render(zoom: float, export: float) -> QImage:
        scene = QGraphicsScene()
        texts = plotting.CellTexts()
        scene.addItem(texts)
        texts.setScale(zoom)  # (a view's zoom: plot units to scene pixels)
        texts.set_cells([(50 / zoom, 30 / zoom)], QRectF(0, 0, 100 / zoom, 60 / zoom))
        texts.set_font(plotting.cell_font(12))
        texts.set_texts(["-65,092"], [False])
        image = QImage(int(100 * export), int(60 * export), QImage.Format.Format_RGB32)
        image.fill(0)
        painter = QPainter(image)
        scene.render(painter, QRectF(image.rect()), QRectF(0, 0, 100, 60))
        painter.end()
        return image

    width, height, x, y = _ink_box(render(1.0, 1.0))
    assert 30 < width < 90 and 6 < height < 20
    assert abs(x - 50) <= 2 and abs(y - 30) <= 2  # (centred on the cell)
    assert _ink_box(render(4.0, 1.0)) == (width, height, x, y)
    big_w, big_h, big_x, big_y = _ink_box(render(1.0, 2.0))
    assert abs(big_w - 2 * width) <= 4 and abs(big_h - 2 * height) <= 3
    assert abs(big_x - 100) <= 3 and abs(big_y - 60) <= 3

"""Colour bars: a bar whose range changes while its labels stay put reuses the axis's drawing,
and always looks exactly like a bar given that range from scratch."""

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtGui import QImage

from inspector import plotting
from model.colormap import diverging_rgb


def _symmetric(limit: float, text: str):
    return [(-limit, f"-{text}"), (0.0, "0"), (limit, text)]


@pytest.fixture
def bar_in_view(qtbot):
    """A shown layout holding one vertical colour bar; returns (widget, bar)."""

    def make():
        widget = pg.GraphicsLayoutWidget()
        plotting.style_graphics_widget(widget)
        colormap = pg.ColorMap(np.linspace(0, 1, 3), diverging_rgb(np.linspace(-1, 1, 3), 1.0))
        bar = plotting.colour_bar(colormap)
        widget.addItem(bar)
        widget.resize(120, 300)
        qtbot.addWidget(widget)
        widget.show()
        qtbot.waitExposed(widget)
        return widget, bar

    return make


def _pixels(widget) -> np.ndarray:
    image = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    return np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), -1).copy()


def test_a_bar_keeps_its_axis_drawing_only_while_its_labels_stay_put(bar_in_view):
    widget, bar = bar_in_view()
    plotting.set_bar_range(bar, -2.0, 2.0, _symmetric(2.0, "2.00"))
    _pixels(widget)
    drawn = bar.axis.picture
    assert drawn is not None

    # A new range, the same labels in the same places: the drawing is kept.
    plotting.set_bar_range(bar, -2.001, 2.001, _symmetric(2.001, "2.00"))
    assert bar.axis.picture is drawn
    assert bar.levels() == (-2.001, 2.001)
    fresh, fresh_bar = bar_in_view()
    plotting.set_bar_range(fresh_bar, -2.001, 2.001, _symmetric(2.001, "2.00"))
    np.testing.assert_array_equal(_pixels(widget), _pixels(fresh))

    # Another label text, or the labels elsewhere along the bar: drawn again.
    plotting.set_bar_range(bar, -3.0, 3.0, _symmetric(3.0, "3.00"))
    assert bar.axis.picture is None
    _pixels(widget)
    drawn = bar.axis.picture
    plotting.set_bar_range(bar, -1.0, 3.0, [(-1.0, "-3.00"), (0.0, "0"), (3.0, "3.00")])
    assert bar.axis.picture is None
    plotting.set_bar_range(fresh_bar, -1.0, 3.0, [(-1.0, "-3.00"), (0.0, "0"), (3.0, "3.00")])
    np.testing.assert_array_equal(_pixels(widget), _pixels(fresh))

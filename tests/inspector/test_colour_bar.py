"""Colour bars and the texts beside mosaics: a bar whose range changes while its labels stay put
reuses the axis's drawing, and always looks exactly like a bar given that range from scratch;
their axes (``GivenTicksAxis``) compute what pyqtgraph's AxisItem would draw."""

import random

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtGui import QColor, QImage, QPainter, QPicture
from PySide6.QtWidgets import QApplication

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


def _specs(specs):
    """Draw specs as plain tuples: (pen colour, width), points, rects, flags, texts."""
    if specs is None:
        return None
    (pen, start, stop), ticks, texts = specs

    def ink(pen):
        return pen.color().name(QColor.NameFormat.HexArgb)

    return (
        (ink(pen), pen.widthF(), start.toTuple(), stop.toTuple()),
        [(ink(p), a.toTuple(), b.toTuple()) for p, a, b in ticks],
        [(rect.getRect(), int(flags), text) for rect, flags, text in texts],
    )


def test_the_scale_draws_what_pyqtgraphs_axis_draws(bar_in_view):
    """The bars' ``GivenTicksAxis`` computes its ticks and labels in a shorter way than
    pyqtgraph's AxisItem: the same specs, over ranges, labels (some off the bar), fonts and
    heights."""
    widget, bar = bar_in_view()
    scale = bar.axis
    assert isinstance(scale, plotting.GivenTicksAxis)
    rng = random.Random(4)
    picture = QPicture()
    checked = 0
    for trial in range(60):
        if trial % 10 == 0:
            scale.setWidth(rng.choice([40, 60, 90]))
            widget.resize(160, rng.choice([80, 150, 300, 520]))
            QApplication.processEvents()
        font = plotting.font(rng.choice([9, 11, 14]))
        scale.setStyle(tickFont=font, tickLength=rng.choice([0, 4, 7]))
        low = rng.uniform(-100.0, 1.0)
        high = low + rng.choice([0.0, rng.uniform(1e-6, 1.0), rng.uniform(1.0, 1e3)])
        values = [low, high, (low + high) / 2, low - rng.uniform(0, 1), high + rng.uniform(0, 1)]
        ticks = [(v, f"{v:.{rng.randint(1, 4)}g}") for v in values[: rng.randint(0, 5)]]
        bar.setLevels((low, high))
        scale.setTicks([ticks])
        painter = QPainter(picture)
        painter.setFont(scale.style["tickFont"])
        ours = scale.generateDrawSpecs(painter)
        width = scale.textWidth
        theirs = pg.AxisItem.generateDrawSpecs(scale, painter)
        painter.end()
        assert _specs(ours) == _specs(theirs), (low, high, ticks)
        assert scale.textWidth == width
        checked += bool(ours and ours[2])
    assert checked >= 20  # (trials that wrote labels; the others had none on the bar or room)


@pytest.mark.parametrize(
    "change",
    ["computed ticks", "two levels", "grid", "tick alpha", "stop at ticks", "no values"],
)
def test_other_scales_are_pyqtgraphs(bar_in_view, change):
    """What these axes never have (ticks pyqtgraph chooses, several levels, a grid, faded
    ticks, a line that stops at the ticks, no texts) is left to pyqtgraph."""
    widget, bar = bar_in_view()
    scale = bar.axis
    bar.setLevels((-3.0, 5.0))
    scale.setTicks([[(-3.0, "-3"), (1.0, "1"), (5.0, "5")]])
    if change == "computed ticks":
        scale.setTicks(None)
    elif change == "two levels":
        scale.setTicks([[(-3.0, "-3"), (5.0, "5")], [(1.0, "1")]])
    elif change == "grid":
        scale.setGrid(128)
    elif change == "tick alpha":
        scale.setStyle(tickAlpha=0.3)
    elif change == "stop at ticks":
        scale.setStyle(stopAxisAtTick=(True, True))
    else:
        scale.setStyle(showValues=False)
    QApplication.processEvents()
    picture = QPicture()
    painter = QPainter(picture)
    ours = scale.generateDrawSpecs(painter)
    theirs = pg.AxisItem.generateDrawSpecs(scale, painter)
    painter.end()
    assert _specs(ours) == _specs(theirs)
    assert len(ours[1]) >= 2


@pytest.mark.parametrize("inverted", [False, True])
def test_text_axes_beside_a_mosaic_write_what_pyqtgraph_writes(qtbot, inverted):
    """The labels beside mosaics (``TextAxis``, on any side of a view that may be upside
    down) have the same specs as pyqtgraph's: multi-line texts, some beyond the view."""
    widget = pg.GraphicsLayoutWidget()
    qtbot.addWidget(widget)
    plot = plotting.image_plot(text_axes=("left", "right", "top", "bottom"))
    plot.getViewBox().invertY(inverted)
    widget.addItem(plot)
    widget.resize(420, 360)
    widget.show()
    qtbot.waitExposed(widget)
    rng = random.Random(7)
    written = 0
    for trial in range(24):
        plot.getViewBox().setRange(
            xRange=(0, rng.uniform(20, 200)), yRange=(0, rng.uniform(20, 200)), padding=0
        )
        for name in ("left", "right", "top", "bottom"):
            axis = plot.getAxis(name)
            assert isinstance(axis, plotting.GivenTicksAxis)
            axis.setStyle(tickFont=plotting.font(rng.choice([9, 11])))
            if trial % 6 == 0 and name in ("left", "right"):
                axis.setWidth(rng.choice([40, 120]))
            texts = ["#1 cross", "#2 circle\n→ circle 97% ✓", "a\nb\nc", "0.5% zero"]
            ticks = [(rng.uniform(-20, 220), rng.choice(texts)) for _ in range(rng.randint(1, 6))]
            axis.setTicks([ticks])
            QApplication.processEvents()
            picture = QPicture()
            painter = QPainter(picture)
            painter.setFont(axis.style["tickFont"])
            ours = axis.generateDrawSpecs(painter)
            theirs = pg.AxisItem.generateDrawSpecs(axis, painter)
            painter.end()
            assert _specs(ours) == _specs(theirs), (name, ticks)
            written += len(ours[2])
    assert written > 100

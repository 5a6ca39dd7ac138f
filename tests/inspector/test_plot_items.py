"""Plot items made faster than pyqtgraph's: the heatmaps' and mosaics' ``TableImage`` draws
exactly what pyqtgraph's ImageItem draws, by a shorter path for codes and for floats with levels;
views without a border are not asked to paint."""

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtGui import QImage

from inspector import plotting
from model.colormap import DIVERGING_LUT


def _argb(image: QImage) -> np.ndarray:
    """An image's pixels, (height, width, BGRA) as ARGB32 lies in memory."""
    converted = image.convertToFormat(QImage.Format.Format_ARGB32)
    return np.frombuffer(converted.constBits(), np.uint8).reshape(image.height(), -1, 4).copy()


def _rendered(item: pg.ImageItem, image: np.ndarray, lut: np.ndarray, levels) -> np.ndarray:
    item.setLookupTable(lut)
    item.setImage(image, levels=levels, autoLevels=False)
    item.render()
    assert item.qimage is not None
    return _argb(item.qimage).reshape(image.shape[0], -1)


def _both(image, lut, levels):
    ours = plotting.new_image_item(lut)
    assert isinstance(ours, plotting.TableImage)
    theirs = pg.ImageItem(axisOrder="row-major")
    theirs.setAutoDownsample(False)
    return _rendered(ours, image, lut, levels), _rendered(theirs, image, lut, levels), ours


LUTS = {
    "rgb": DIVERGING_LUT,
    "rgba codes": plotting.DIVERGING_CODE_LUT,
    "activation codes": plotting.ACTIVATION_CODE_LUT,
}


@pytest.mark.parametrize("lut", LUTS.values(), ids=LUTS.keys())
@pytest.mark.parametrize("levels", [None, (0, 255)])
def test_codes_are_shown_in_their_colours(qtbot, lut, levels):
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, size=(23, 41), dtype=np.uint8)
    ours, theirs, item = _both(codes, lut, levels)
    np.testing.assert_array_equal(ours, theirs)
    assert item.qimage.format() == QImage.Format.Format_Indexed8


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "levels", [(-1.0, 1.0), (-3e-5, 3e-5), (-61932.0, 61932.0), (0.0, 2.5), (0.7, 0.7)]
)
def test_floats_are_scaled_as_pyqtgraph_scales_them(qtbot, dtype, levels):
    rng = np.random.default_rng(1)
    low, high = levels
    middle, half = (low + high) / 2, max(high - low, 1e-3)
    values = rng.uniform(middle - half, middle + half, size=(12, 38))  # (some beyond the levels)
    values[0, :4] = [low, high, middle, 0.0]
    image = values.astype(dtype)
    ours, theirs, item = _both(image, DIVERGING_LUT, levels)
    np.testing.assert_array_equal(ours, theirs)
    assert item.qimage.format() == QImage.Format.Format_Indexed8


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_nans_are_left_transparent(qtbot, dtype):
    """A heatmap's gaps (NaN) are transparent and the rest is as pyqtgraph draws it (under a
    transparent pixel the colour does not matter). Enough values that some fall on the edge
    between two colours, where float32 arithmetic and float64 arithmetic part (a review)."""
    rng = np.random.default_rng(2)
    low, high = -0.3, 0.7
    values = rng.uniform(low - 0.5, high + 0.5, size=(200, 500)).astype(dtype)
    # The edges between codes, and the values either side of them, in the image's type.
    edges = (low + np.arange(257) * (high - low) / 256).astype(dtype)
    near = np.concatenate([np.nextafter(edges, -np.inf), edges, np.nextafter(edges, np.inf)])
    values[:3, :257] = near.reshape(3, 257)
    values[:, 299::10] = np.nan
    values[4, 3] = np.nan
    ours, theirs, item = _both(values, DIVERGING_LUT, (low, high))
    assert item._codes()[1] is not None
    ours, theirs = ours.reshape(200, 500, 4), theirs.reshape(200, 500, 4)
    alpha = ours[..., 3]  # (ARGB32 in memory: B, G, R, A)
    np.testing.assert_array_equal(alpha, theirs[..., 3])
    np.testing.assert_array_equal(alpha == 0, np.isnan(values))
    shown = alpha > 0
    np.testing.assert_array_equal(ours[shown], theirs[shown])


def test_images_that_are_slices_of_others(qtbot):
    """Views into larger arrays (not contiguous) are drawn as their copies are."""
    rng = np.random.default_rng(5)
    codes = rng.integers(0, 256, size=(20, 40), dtype=np.uint8)[:, ::2]
    values = rng.uniform(-1, 1, size=(20, 40))[::2, 1::3]
    for image, lut, levels in (
        (codes, plotting.DIVERGING_CODE_LUT, (0, 255)),
        (values, DIVERGING_LUT, (-1.0, 1.0)),
    ):
        assert not image.flags.c_contiguous
        ours, theirs, _ = _both(image, lut, levels)
        np.testing.assert_array_equal(ours, theirs)
        np.testing.assert_array_equal(ours, _both(image.copy(), lut, levels)[0])


def test_other_images_go_to_pyqtgraph(qtbot):
    """Levels that do not map codes to themselves and tables of another size take pyqtgraph's
    path, with pyqtgraph's result."""
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 256, size=(9, 9), dtype=np.uint8)
    for lut, levels in ((DIVERGING_LUT, (10, 200)), (DIVERGING_LUT[::2], None)):
        ours, theirs, item = _both(codes, lut, levels)
        assert item._codes() is None
        np.testing.assert_array_equal(ours, theirs)


def test_a_new_table_is_used(qtbot):
    """The converted table is kept only while the item's table is the same."""
    codes = np.arange(256, dtype=np.uint8).reshape(16, 16)
    item = plotting.new_image_item(plotting.DIVERGING_CODE_LUT)
    _rendered(item, codes, plotting.DIVERGING_CODE_LUT, (0, 255))
    switched = _rendered(item, codes, plotting.ACTIVATION_CODE_LUT, (0, 255))
    fresh = _rendered(
        plotting.new_image_item(plotting.ACTIVATION_CODE_LUT),
        codes,
        plotting.ACTIVATION_CODE_LUT,
        (0, 255),
    )
    np.testing.assert_array_equal(switched, fresh)
    assert not np.array_equal(
        switched, _rendered(item, codes, plotting.DIVERGING_CODE_LUT, (0, 255))
    )


def test_views_without_a_border_are_not_asked_to_paint(qtbot, monkeypatch):
    """A plot's view and a colour bar's draw nothing themselves (no border), so a repaint does
    not call their ``paint``; given a border, a view paints it. Mouse hits still find them."""
    painted = []
    original = pg.ViewBox.paint

    def counting(self, *args):
        painted.append(self)
        return original(self, *args)

    monkeypatch.setattr(pg.ViewBox, "paint", counting)
    widget = pg.GraphicsLayoutWidget()
    qtbot.addWidget(widget)
    plot = plotting.image_plot(plotting.new_image_item(DIVERGING_LUT))
    plot.getViewBox().addItem(pg.PlotCurveItem([0, 5], [0, 5]))
    bar = plotting.colour_bar(plotting.DIVERGING_COLORMAP)
    widget.addItem(plot)
    widget.addItem(bar)
    widget.resize(300, 200)
    widget.show()
    qtbot.waitExposed(widget)
    widget.grab()
    assert painted == []
    view = plot.getViewBox()
    centre = view.mapToScene(view.boundingRect().center())
    assert view in widget.scene().items(centre)

    view.setBorder("#ff0000")
    image = widget.grab().toImage()
    assert painted and all(p is view for p in painted)
    pixels = _argb(image)
    red = (pixels[..., 2] > 200) & (pixels[..., 1] < 60) & (pixels[..., 0] < 60)
    assert red.sum() > 2 * min(view.width(), view.height())  # (its outline)
    view.setBorder(None)
    painted.clear()
    widget.grab()
    assert painted == []


def test_a_table_edited_in_place_is_used(qtbot):
    """The converted table is kept by the table's contents, not only by which array it is."""
    lut = DIVERGING_LUT.copy()
    codes = np.arange(256, dtype=np.uint8).reshape(16, 16)
    item = plotting.new_image_item(lut)
    _rendered(item, codes, lut, None)
    lut[:] = 255 - lut
    edited = _rendered(item, codes, lut, None)
    fresh = pg.ImageItem(axisOrder="row-major")
    np.testing.assert_array_equal(edited, _rendered(fresh, codes, lut, None))

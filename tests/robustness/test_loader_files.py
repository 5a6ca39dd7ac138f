"""The loader against every kind of file a learner's folder may hold.

Each usable file is written here from known pixels and compared with a reference conversion
computed in this module with NumPy, not by Pillow: compositing on white, 16-bit scaling, palette
look-up, CMYK and YCbCr formulas, EXIF rotations. Each unusable file must land in the skipped
list with its reason, and a folder holding all of them must load in bounded time. Run as root,
the unreadable-file test loads as user nobody, since root may read any file.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import math
import os
import struct
import tempfile
import time
import warnings
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from model import data
from model.data import ImageError

HEIGHT, WIDTH = 6, 10
SIZE = (WIDTH, HEIGHT)
ORIENTATION = 0x0112

# name -> writer(path) returning (expected (H, W, 3) uint8, tolerance in levels)
USABLE: dict[str, Callable[[Path], tuple[np.ndarray, int]]] = {}


def usable(name: str):
    def register(writer):
        USABLE[name] = writer
        return writer

    return register


def _random(shape, seed: int, high: int = 256, dtype=np.uint8) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, high, shape).astype(dtype)


def _image(mode: str, array: np.ndarray) -> Image.Image:
    """A Pillow image of ``mode`` holding ``array``'s bytes, (H, W) or (H, W, bands)."""
    return Image.frombytes(mode, (array.shape[1], array.shape[0]), array.tobytes())


def _grey(levels: np.ndarray) -> np.ndarray:
    return np.repeat(levels[..., None], 3, axis=2).astype(np.uint8)


def _on_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Exact round(a·rgb + (1 − a)·255) with a = alpha / 255, in integers."""
    rgb = rgb.astype(np.int64)
    alpha = alpha.astype(np.int64)[..., None]
    return ((rgb * alpha + 255 * (255 - alpha) + 127) // 255).astype(np.uint8)


def _scaled_16(values: np.ndarray) -> np.ndarray:
    return np.rint(values.astype(np.float64) * 255 / 65535).astype(np.uint8)


def _blocks(seed: int, height: int = 16, width: int = 32, block: int = 8) -> np.ndarray:
    """Flat colour blocks aligned to JPEG's 8x8 grid, so JPEG keeps them nearly exact."""
    colours = _random((height // block, width // block, 3), seed)
    return np.repeat(np.repeat(colours, block, axis=0), block, axis=1)


def _palette_image(mode: str, seed: int, colours: int = 8) -> tuple[Image.Image, np.ndarray]:
    """A 'P' image of random indices and its palette, (colours, 3)."""
    indices = _random((HEIGHT, WIDTH), seed, high=colours)
    palette = _random((colours, 3), seed + 1)
    image = _image(mode, indices)
    image.putpalette(palette.ravel().tolist())
    return image, palette[indices]


def _png(width: int, height: int, bit_depth: int, colour_type: int, rows: Iterable[bytes]) -> bytes:
    """A PNG file from raw rows (filter type 0 is added), written without Pillow."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    compressor = zlib.compressobj()
    pixels = b"".join(compressor.compress(b"\0" + row) for row in rows) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def _blank_1_bit_png(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of any size in little memory and time: its rows compress to nothing."""
    return _png(width, height, 1, 0, itertools.repeat(bytes(math.ceil(width / 8)), height))


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    return exif.tobytes()


# ---------------------------------------------------------------------------------------------
# Usable files, by mode
# ---------------------------------------------------------------------------------------------


@usable("rgb.png")
def _(path):
    pixels = _random((HEIGHT, WIDTH, 3), 1)
    Image.fromarray(pixels).save(path)
    return pixels, 0


@usable("nested/deeper/rgb.bmp")
def _(path):
    pixels = _random((HEIGHT, WIDTH, 3), 2)
    Image.fromarray(pixels).save(path)
    return pixels, 0


@usable("rgb.tif")
def _(path):
    pixels = _random((HEIGHT, WIDTH, 3), 3)
    Image.fromarray(pixels).save(path)
    return pixels, 0


@usable("rgb_lossless.webp")
def _(path):
    pixels = _random((HEIGHT, WIDTH, 3), 4)
    Image.fromarray(pixels).save(path, lossless=True)
    return pixels, 0


@usable("rgb.jpg")
def _(path):
    pixels = _blocks(5)
    Image.fromarray(pixels).save(path, quality=95, subsampling=0)
    return pixels, 4


@usable("grey.png")
def _(path):
    levels = _random((HEIGHT, WIDTH), 6)
    _image("L", levels).save(path)
    return _grey(levels), 0


@usable("grey.jpg")
def _(path):
    levels = _blocks(7)[..., 0]
    _image("L", levels).save(path, quality=95)
    return _grey(levels), 4


@usable("bits.png")
def _(path):
    bits = _random((HEIGHT, WIDTH), 8, high=2)
    _image("L", bits * 255).convert("1").save(path)
    return _grey(bits * 255), 0


@usable("bits.bmp")
def _(path):
    bits = _random((HEIGHT, WIDTH), 9, high=2)
    _image("L", bits * 255).convert("1").save(path)
    return _grey(bits * 255), 0


@usable("grey_alpha.png")
def _(path):
    pixels = _random((HEIGHT, WIDTH, 2), 10)
    _image("LA", pixels).save(path)
    return _on_white(_grey(pixels[..., 0]), pixels[..., 1]), 0


@usable("grey_keyed.png")
def _(path):
    levels = _random((HEIGHT, WIDTH), 11, high=4) * 60
    _image("L", levels).save(path, transparency=60)
    expected = _grey(levels)
    expected[levels == 60] = 255
    return expected, 0


@usable("rgb_keyed.png")
def _(path):
    pixels = _random((HEIGHT, WIDTH, 3), 12, high=2) * 200
    Image.fromarray(pixels).save(path, transparency=(200, 0, 200))
    expected = pixels.copy()
    expected[(pixels == (200, 0, 200)).all(axis=2)] = 255
    return expected, 0


@usable("palette.png")
def _(path):
    image, expected = _palette_image("P", 13)
    image.save(path)
    return expected, 0


@usable("palette.bmp")
def _(path):
    image, expected = _palette_image("P", 14)
    image.save(path)
    return expected, 0


@usable("palette_transparent_index.png")
def _(path):
    image, expected = _palette_image("P", 15)
    indices = np.asarray(image)
    image.save(path, transparency=3)
    expected[indices == 3] = 255
    return expected, 0


@usable("palette_alpha.png")
def _(path):
    image, colours = _palette_image("P", 16)
    alphas = _random(8, 17)
    image.save(path, transparency=alphas.tobytes())
    return _on_white(colours, alphas[np.asarray(image)]), 0


@usable("palette_transparent.gif")
def _(path):
    image, expected = _palette_image("P", 18)
    indices = np.asarray(image)
    image.save(path, transparency=5)
    expected[indices == 5] = 255
    return expected, 0


@usable("palette_alpha.tif")
def _(path):
    image, colours = _palette_image("P", 19)
    alpha = _random((HEIGHT, WIDTH), 20)
    with_alpha = _image("PA", np.stack([np.asarray(image), alpha], axis=-1))
    with_alpha.putpalette(image.getpalette())
    with_alpha.save(path)
    return _on_white(colours, alpha), 0


@usable("rgba.png")
def _(path):
    pixels = _random((HEIGHT, WIDTH, 4), 21)
    pixels[0, :, 3] = 0
    pixels[1, :, 3] = 255
    Image.fromarray(pixels).save(path)
    return _on_white(pixels[..., :3], pixels[..., 3]), 0


@usable("rgba.tif")
def _(path):
    pixels = _random((HEIGHT, WIDTH, 4), 22)
    Image.fromarray(pixels).save(path)
    return _on_white(pixels[..., :3], pixels[..., 3]), 0


@usable("rgba_lossless.webp")
def _(path):
    pixels = _random((HEIGHT, WIDTH, 4), 23)
    Image.fromarray(pixels).save(path, lossless=True, exact=True)
    return _on_white(pixels[..., :3], pixels[..., 3]), 0


@usable("grey16.png")
def _(path):
    values = _random((HEIGHT, WIDTH), 24, high=65536, dtype=np.uint16)
    values[0, :3] = (0, 65535, 128)
    _image("I;16", values).save(path)
    return _grey(_scaled_16(values)), 0


@usable("grey16.tif")
def _(path):
    values = _random((HEIGHT, WIDTH), 25, high=65536, dtype=np.uint16)
    _image("I;16", values).save(path)
    return _grey(_scaled_16(values)), 0


@usable("grey16_big_endian.tif")
def _(path):
    values = _random((HEIGHT, WIDTH), 26, high=65536, dtype=np.uint16)
    _image("I;16B", values.astype(">u2")).save(path)
    return _grey(_scaled_16(values)), 0


@usable("colour16.png")
def _(path):
    values = _random((HEIGHT, WIDTH, 3), 27, high=65536, dtype=np.uint16)
    path.write_bytes(_png(WIDTH, HEIGHT, 16, 2, (row.astype(">u2").tobytes() for row in values)))
    # Pillow keeps the high byte of 16-bit colour; that is at most one level from the rounding.
    return _scaled_16(values), 1


@usable("int32_wide.tif")
def _(path):
    values = _random((HEIGHT, WIDTH), 28, high=100_000, dtype=np.int32) - 1000
    _image("I", values).save(path)
    return _grey(_scaled_16(np.clip(values, 0, 65535))), 0


@usable("int32_narrow.tif")
def _(path):
    values = _random((HEIGHT, WIDTH), 29, high=256, dtype=np.int32)
    values[0, 0] = -7
    _image("I", values).save(path)
    return _grey(np.clip(values, 0, 255)), 0


@usable("float_unit.tif")
def _(path):
    values = np.random.default_rng(30).uniform(0, 1, (HEIGHT, WIDTH)).astype(np.float32)
    values[0, :2] = (0.0, 1.0)
    _image("F", values).save(path)
    return _grey(np.rint(values.astype(np.float64) * 255)), 0


@usable("float_wide.tif")
def _(path):
    values = np.random.default_rng(31).uniform(-20, 300, (HEIGHT, WIDTH)).astype(np.float32)
    values[0, :3] = (np.nan, np.inf, -np.inf)
    _image("F", values).save(path)
    finite = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=255.0, neginf=0.0)
    return _grey(np.rint(np.clip(finite, 0, 255))), 0


@usable("cmyk.tif")
def _(path):
    inks = _random((HEIGHT, WIDTH, 4), 32).astype(np.int64)
    _image("CMYK", inks.astype(np.uint8)).save(path)
    key = inks[..., 3:]
    return np.rint((255 - inks[..., :3]) * (255 - key) / 255).astype(np.uint8), 0


@usable("cmyk.jpg")
def _(path):
    inks = np.concatenate([_blocks(33), _blocks(34)[..., :1]], axis=2).astype(np.int64)
    _image("CMYK", inks.astype(np.uint8)).save(path, quality=95)
    key = inks[..., 3:]
    return np.rint((255 - inks[..., :3]) * (255 - key) / 255).astype(np.uint8), 6


@usable("ycbcr.tif")
def _(path):
    ycbcr = _random((HEIGHT, WIDTH, 3), 35)
    _image("YCbCr", ycbcr).save(path)
    y, cb, cr = (ycbcr[..., band].astype(np.float64) for band in range(3))
    rgb = np.stack(
        [
            y + 1.402 * (cr - 128),
            y - 0.344136 * (cb - 128) - 0.714136 * (cr - 128),
            y + 1.772 * (cb - 128),
        ],
        axis=-1,
    )
    return np.rint(np.clip(rgb, 0, 255)).astype(np.uint8), 1


@usable("lab.tif")
def _(path):
    lightness = np.repeat(np.array([0, 128, 255], dtype=np.uint8), [3, 4, 3])[None, :]
    lightness = np.repeat(lightness, HEIGHT, axis=0)
    neutral = np.zeros_like(lightness)  # Pillow stores a* and b* as signed bytes
    _image("LAB", np.stack([lightness, neutral, neutral], axis=-1)).save(path)
    # CIE L* (0..100 stored as 0..255) of a neutral grey, to linear light, to sRGB.
    l_star = lightness / 255 * 100
    linear = np.where(l_star > 8, ((l_star + 16) / 116) ** 3, l_star / 903.3)
    srgb = np.where(linear > 0.0031308, 1.055 * linear ** (1 / 2.4) - 0.055, 12.92 * linear)
    return _grey(np.rint(srgb * 255)), 2


# ---------------------------------------------------------------------------------------------
# Usable files: orientation, animation, odd names and sizes
# ---------------------------------------------------------------------------------------------


def _quadrants() -> np.ndarray:
    """16 x 32 with four 8 x 16 quadrants of clearly different colours."""
    pixels = np.empty((16, 32, 3), dtype=np.uint8)
    pixels[:8, :16] = (230, 20, 20)
    pixels[:8, 16:] = (20, 200, 20)
    pixels[8:, :16] = (20, 20, 230)
    pixels[8:, 16:] = (240, 240, 240)
    return pixels


@usable("rotated_6.jpg")
def _(path):
    Image.fromarray(_quadrants()).save(path, quality=95, subsampling=0, exif=_exif(6))
    return np.rot90(_quadrants(), k=-1), 4


@usable("rotated_8.jpg")
def _(path):
    Image.fromarray(_quadrants()).save(path, quality=95, subsampling=0, exif=_exif(8))
    return np.rot90(_quadrants(), k=1), 4


@usable("rotated_6.png")
def _(path):
    Image.fromarray(_quadrants()).save(path, exif=_exif(6))
    return np.rot90(_quadrants(), k=-1), 0


@usable("rotated_3.webp")
def _(path):
    Image.fromarray(_quadrants()).save(path, lossless=True, exif=_exif(3))
    return np.rot90(_quadrants(), k=2), 0


def _frames(seed: int) -> list[np.ndarray]:
    return [_random((HEIGHT, WIDTH, 3), seed), _random((HEIGHT, WIDTH, 3), seed + 1)]


@usable("animated.gif")
def _(path):
    first, second = (Image.new("RGB", SIZE, colour) for colour in ((250, 0, 0), (0, 0, 250)))
    first.save(path, save_all=True, append_images=[second], duration=100, loop=0)
    return np.asarray(first), 0


@usable("animated.webp")
def _(path):
    first, second = _frames(36)
    Image.fromarray(first).save(
        path, save_all=True, append_images=[Image.fromarray(second)], lossless=True
    )
    return first, 0


@usable("animated.png")
def _(path):
    first, second = _frames(38)
    Image.fromarray(first).save(path, save_all=True, append_images=[Image.fromarray(second)])
    return first, 0


@usable("pages.tif")
def _(path):
    first, second = _frames(40)
    Image.fromarray(first).save(path, save_all=True, append_images=[Image.fromarray(second)])
    return first, 0


@usable("tiny.png")
def _(path):
    pixel = np.array([[[12, 34, 56]]], dtype=np.uint8)
    Image.fromarray(pixel).save(path)
    return pixel, 0


@usable("ĉu_日本語_🙂.png")
def _(path):
    pixels = _random((HEIGHT, WIDTH, 3), 42)
    Image.fromarray(pixels).save(path)
    return pixels, 0


@usable("UPPER.PNG")
def _(path):
    pixels = _random((HEIGHT, WIDTH, 3), 43)
    Image.fromarray(pixels).save(path)
    return pixels, 0


@usable("UPPER.JPG")
def _(path):
    pixels = _blocks(44)
    Image.fromarray(pixels).save(path, format="JPEG", quality=95, subsampling=0)
    return pixels, 4


@usable("png_named.jpg")
def _(path):
    pixels = _random((HEIGHT, WIDTH, 3), 45)
    Image.fromarray(pixels).save(path, format="PNG")
    return pixels, 0


@usable("no_extension")
def _(path):
    pixels = _random((HEIGHT, WIDTH, 3), 46)
    Image.fromarray(pixels).save(path, format="BMP")
    return pixels, 0


@pytest.mark.parametrize("name", sorted(USABLE))
def test_each_usable_file_loads_as_its_reference(tmp_path, name):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    expected, tolerance = USABLE[name](path)

    loaded = data.load_image(path, expected.shape[:2])

    assert loaded.shape == (3, *expected.shape[:2]) and loaded.dtype == np.uint8
    difference = np.abs(loaded.astype(int) - expected.transpose(2, 0, 1).astype(int))
    assert difference.max() <= tolerance, f"{name}: off by up to {difference.max()}"


@pytest.mark.parametrize("name", ["rgba.png", "grey16.png", "palette_alpha.png", "rgb.jpg"])
def test_resizing_commutes_with_conversion(tmp_path, name):
    # Shrinking the converted file equals converting first then averaging 2x2 blocks (to the
    # rounding of Pillow's two resize passes and of the file's own lossy coding).
    path = tmp_path / name
    expected, tolerance = USABLE[name](path)
    height, width = expected.shape[0] // 2, expected.shape[1] // 2
    blocks = expected[: height * 2, : width * 2].reshape(height, 2, width, 2, 3).mean(axis=(1, 3))

    loaded = data.load_image(path, (height, width))

    assert np.abs(loaded.transpose(1, 2, 0) - blocks).max() <= tolerance + 1


def test_a_tiny_image_is_enlarged_to_a_flat_image(tmp_path):
    path = tmp_path / "tiny.png"
    USABLE["tiny.png"](path)

    loaded = data.load_image(path, (5, 7))

    assert (loaded == np.array([12, 34, 56])[:, None, None]).all()


def test_a_30_megapixel_jpeg_loads_at_a_small_size(tmp_path):
    height, width = 5000, 6000
    canvas = Image.new("RGB", (width, height), (240, 240, 240))
    canvas.paste((230, 20, 20), (0, 0, width // 2, height // 2))
    canvas.paste((20, 20, 230), (width // 2, height // 2, width, height))
    path = tmp_path / "large.jpg"
    canvas.save(path, quality=90)

    loaded = data.load_image(path, (50, 60)).astype(int)

    def near(pixel, colour):
        return np.abs(pixel - np.array(colour)).max() <= 6

    assert near(loaded[:, 5, 5], (230, 20, 20))
    assert near(loaded[:, 45, 55], (20, 20, 230))
    assert near(loaded[:, 5, 55], (240, 240, 240))
    assert near(loaded[:, 45, 5], (240, 240, 240))


def _write_usable(folder: Path, name: str) -> tuple[Path, np.ndarray, int]:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    expected, tolerance = USABLE[name](path)
    return path, expected, tolerance


def test_the_default_size_follows_exif_orientation(tmp_path):
    # Stored 16 high and 32 wide, these three stand 32 high and 16 wide.
    for name in ("rotated_6.jpg", "rotated_6.png", "rotated_8.jpg"):
        _write_usable(tmp_path / "a", name)
    _write_usable(tmp_path / "b", "rgb.png")

    dataset = data.load_dataset(tmp_path)

    assert dataset.size == (32, 16)


# ---------------------------------------------------------------------------------------------
# Unusable files
# ---------------------------------------------------------------------------------------------

# name -> (writer(path), expected reason, or its start when it ends with '...')
UNUSABLE: dict[str, tuple[Callable[[Path], object], str]] = {}


def unusable(name: str, reason: str):
    def register(writer):
        UNUSABLE[name] = (writer, reason)
        return writer

    return register


def _valid_bytes(format_name: str) -> bytes:
    """A file whose pixels do not compress, so cutting it removes pixel data."""
    buffer = io.BytesIO()
    Image.fromarray(_random((64, 64, 3), 50)).save(buffer, format=format_name)
    return buffer.getvalue()


@unusable("empty.png", "empty file (0 bytes)")
def _(path):
    path.write_bytes(b"")


@unusable("text.png", "not an image Pillow can read")
def _(path):
    path.write_text("This is a note, not a picture.\n")


@unusable("readme.txt", "not an image Pillow can read")
def _(path):
    path.write_text("Crosses are label 0.\n")


@unusable("drawing.svg", "an SVG drawing: Pillow reads pixel images only (export it as PNG)")
def _(path):
    path.write_text(
        '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="32" height="32">'
        '<circle cx="16" cy="16" r="10" fill="none" stroke="red"/></svg>\n'
    )


@unusable("truncated.png", "could not be decoded: image file is truncated...")
def _(path):
    content = _valid_bytes("PNG")
    path.write_bytes(content[: len(content) // 2])


@unusable("truncated.jpg", "could not be decoded: image file is truncated...")
def _(path):
    content = _valid_bytes("JPEG")
    path.write_bytes(content[: len(content) // 2])


@unusable("over_the_limit.png", "too large: 9000 x 8000 pixels (limit 64,000,000)")
def _(path):
    path.write_bytes(_blank_1_bit_png(9000, 8000))


@unusable("bomb_warned.png", "too large: Pillow refuses it as a possible decompression bomb")
def _(path):
    # Between Pillow's warning threshold (about 89 megapixels) and its error threshold.
    path.write_bytes(_blank_1_bit_png(10_000, 10_000))


@unusable("bomb.png", "too large: Pillow refuses it as a possible decompression bomb")
def _(path):
    path.write_bytes(_blank_1_bit_png(20_000, 20_000))


def _matches(reason: str, expected: str) -> bool:
    if expected.endswith("..."):
        return reason.startswith(expected[:-3])
    return reason == expected


@pytest.mark.parametrize("name", sorted(UNUSABLE))
def test_each_unusable_file_raises_image_error_with_its_reason_and_no_warning(tmp_path, name):
    path = tmp_path / name
    writer, expected = UNUSABLE[name]
    writer(path)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ImageError) as error:
            data.load_image(path, (8, 8))

    assert _matches(error.value.reason, expected), error.value.reason
    assert [str(warning.message) for warning in caught] == []
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_the_bomb_files_claim_the_sizes_they_are_meant_to():
    # Guards the test files themselves: the warned bomb must sit between Pillow's thresholds.
    assert 9000 * 8000 > data.MAX_PIXELS
    assert Image.MAX_IMAGE_PIXELS < 10_000 * 10_000 <= 2 * Image.MAX_IMAGE_PIXELS
    assert 20_000 * 20_000 > 2 * Image.MAX_IMAGE_PIXELS


@contextlib.contextmanager
def _without_root():
    """Run the block as user nobody when the tests run as root, who may read any file."""
    if os.geteuid() != 0:
        yield
        return
    import pwd

    try:
        nobody = pwd.getpwnam("nobody")
        os.setegid(nobody.pw_gid)
        os.seteuid(nobody.pw_uid)
    except (KeyError, OSError) as error:
        os.setegid(0)
        pytest.skip(f"running as root and cannot become nobody to test permissions: {error!r}")
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


@pytest.mark.skipif(os.name != "posix", reason="file modes and users are POSIX")
def test_an_unreadable_file_is_skipped_with_permission_denied():
    # Not under tmp_path: pytest's folders there are private to the user running the tests.
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for label in ("a", "b"):
            _write_usable(root / label, "rgb.png")
        locked = root / "a" / "locked.png"
        Image.fromarray(_random((4, 4, 3), 51)).save(locked)
        for path in (root, root / "a", root / "b"):
            path.chmod(0o755)
        for path in root.rglob("*.png"):
            path.chmod(0o644)
        locked.chmod(0)

        with _without_root():
            dataset = data.load_dataset(root)

        assert dataset.skipped == ((str(locked), "cannot be read: permission denied"),)
        assert len(dataset) == 2


# ---------------------------------------------------------------------------------------------
# A folder holding all of it
# ---------------------------------------------------------------------------------------------


def _special_files(folder: Path) -> dict[str, str]:
    """Links and a named pipe in ``folder``; returns name -> expected reason."""
    os.symlink("..", folder / "loop")
    os.symlink(folder.parent, folder / "up")
    os.symlink("missing.png", folder / "dangling.png")
    os.mkfifo(folder / "pipe.png")
    return {
        "loop": "link to a folder, not followed",
        "up": "link to a folder, not followed",
        "dangling.png": "a broken link: what it points to is missing",
        "pipe.png": "not a regular file",
    }


@pytest.mark.skipif(os.name != "posix", reason="symbolic links and named pipes are POSIX")
def test_a_folder_of_every_kind_of_file_loads_what_it_can_and_says_why_not_the_rest(tmp_path):
    first, second = tmp_path / "0_first", tmp_path / "1_second"
    usable_paths = set()
    for index, name in enumerate(sorted(USABLE)):
        path, _, _ = _write_usable(first if index % 2 else second, name)
        usable_paths.add(str(path))
    expected_reasons = {}
    for name, (writer, reason) in UNUSABLE.items():
        path = second / "bad" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        writer(path)
        expected_reasons[str(path)] = reason
    for name, reason in _special_files(first).items():
        expected_reasons[str(first / name)] = reason
    (first / ".hidden.png").write_text("ignored")
    (second / ".thumbnails").mkdir()
    (second / ".thumbnails" / "x.png").write_text("ignored")

    started = time.monotonic()
    dataset = data.load_dataset(tmp_path)
    elapsed = time.monotonic() - started

    assert set(dataset.paths) == usable_paths
    skipped = dict(dataset.skipped)
    assert set(skipped) == set(expected_reasons)
    for path, reason in skipped.items():
        assert _matches(reason, expected_reasons[path]), (path, reason)
    assert dataset.size == (HEIGHT, WIDTH)
    assert elapsed < 60, "a hang guard, not a speed claim"

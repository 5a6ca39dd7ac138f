"""Damaged files: whatever the bytes, loading gives an image or a reason, and ends.

Valid PNG, JPEG, GIF, BMP, TIFF and WebP files are mutated (bit flips, cuts, insertions,
deletions, overwritten header fields) and written to a temporary file. ``load_image`` must return
a (3, H, W) uint8 array or raise ``ImageError``, and a one-file ``dataset_from_files`` a
``Dataset`` or ``DatasetError``: no other exception, and no hang.
"""

from __future__ import annotations

import contextlib
import io
import signal
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from model import data
from model.data import DatasetError, ImageError

SIZE = (8, 8)
HEADER_BYTES = 64
TIME_LIMIT_SECONDS = 20


def _seed_files() -> dict[str, bytes]:
    """Small valid files: a gradient with some noise, so every format has real pixel data."""
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 255, 24)
    across, down = np.meshgrid(ramp, ramp[:16])
    pixels = np.stack([across, down, rng.uniform(0, 255, (16, 24))], axis=-1)
    rgb = Image.fromarray(pixels.astype(np.uint8))
    rgba = rgb.copy()
    rgba.putalpha(128)
    variants = {
        "png": (rgb, "PNG", {}),
        "png_palette": (rgb.convert("P"), "PNG", {"transparency": 0}),
        "png_rgba": (rgba, "PNG", {}),
        "jpeg": (rgb, "JPEG", {"quality": 80}),
        "jpeg_progressive": (rgb, "JPEG", {"progressive": True}),
        "gif": (rgb.convert("P"), "GIF", {}),
        "bmp": (rgb, "BMP", {}),
        "tiff": (rgb, "TIFF", {}),
        "tiff_deflate": (rgba, "TIFF", {"compression": "tiff_adobe_deflate"}),
        "webp": (rgb, "WEBP", {"quality": 80}),
        "webp_lossless": (rgba, "WEBP", {"lossless": True}),
    }
    files = {}
    for name, (image, format_name, options) in variants.items():
        buffer = io.BytesIO()
        image.save(buffer, format=format_name, **options)
        files[name] = buffer.getvalue()
    return files


SEEDS = _seed_files()


@st.composite
def _damaged(draw) -> bytes:
    content = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(1, 4))):
        last = max(len(content) - 1, 0)
        # Half of the changes hit the header, where sizes, modes and offsets live.
        position = draw(st.integers(0, min(HEADER_BYTES, last)) | st.integers(0, last))
        change = draw(st.sampled_from(["flip", "cut", "insert", "delete", "overwrite"]))
        if change == "flip" and content:
            content[position] ^= 1 << draw(st.integers(0, 7))
        elif change == "cut":
            del content[position:]
        elif change == "insert":
            content[position:position] = draw(st.binary(min_size=1, max_size=16))
        elif change == "delete":
            del content[position : position + draw(st.integers(1, 16))]
        elif change == "overwrite":
            field = draw(st.sampled_from([b"\x00", b"\xff", b"\xff\xff", b"\x7f\xff\xff\xff"]))
            content[position : position + len(field)] = field
    return bytes(content)


class _Hang(BaseException):
    """Raised by the alarm; a BaseException so the loader's per-file net cannot catch it."""


@contextlib.contextmanager
def _time_limit(seconds: float):
    def expire(signum, frame):
        raise _Hang(f"loading took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_the_seed_files_load():
    with tempfile.TemporaryDirectory() as folder:
        for name, content in SEEDS.items():
            path = Path(folder) / name
            path.write_bytes(content)
            assert data.load_image(path, SIZE).shape == (3, *SIZE), name


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=_damaged())
def test_a_damaged_file_gives_an_image_or_a_reason(content):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "damaged"
        path.write_bytes(content)
        with _time_limit(TIME_LIMIT_SECONDS):
            try:
                image = data.load_image(path, SIZE)
            except ImageError as error:
                assert error.reason
            else:
                assert image.shape == (3, *SIZE) and image.dtype == np.uint8
            try:
                dataset = data.dataset_from_files([(path, 0)])
            except DatasetError as error:
                assert "no usable image among 1 file:" in str(error)
            else:
                assert len(dataset) == 1 and dataset.images.dtype == np.uint8

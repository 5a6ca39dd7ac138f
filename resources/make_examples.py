"""Draw the bundled example datasets, the same pixels every time.

``python -m resources.make_examples [--out FOLDER]`` writes, into ``resources/examples`` unless told
otherwise:

- ``question/0_cross/cross.png`` and ``question/1_circle/circle.png``: the two images of the
  question the tool is about, a "+" cross and a ring of the same size and colour, centred on
  white, 32x32 RGB;
- ``shapes/0_cross/cross_NN.png`` and ``shapes/1_circle/circle_NN.png``: ``PER_CLASS`` of each,
  32x32 RGB, with position, size, stroke width, cross angle, colour and background drawn from a
  generator with a fixed seed. Both classes share those distributions, so only the shape tells
  them apart.

Each pixel mixes the stroke colour and the background by the share of the pixel the shape
covers, measured on ``SUPERSAMPLE`` x ``SUPERSAMPLE`` points: edges are anti-aliased exactly and
symmetrically, and the pixels depend on NumPy arithmetic only, not on a rasteriser's version.
Existing PNGs in the folders written are removed first, so a folder holds exactly what the
generator draws.
"""

from __future__ import annotations

import argparse
import colorsys
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

SIZE = 32
SUPERSAMPLE = 8
SEED = 20_171_011
PER_CLASS = 40
QUESTION_COLOUR = (214, 39, 40)
WHITE = (255, 255, 255)
#: Share of shapes images on a white background; the rest get a random one.
WHITE_BACKGROUND_SHARE = 1 / 3
#: Smallest Euclidean RGB distance between a stroke and its background.
MIN_CONTRAST = 110.0

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Shape:
    """One example image, in pixel units of the SIZE x SIZE image.

    Attributes
    ----------
    kind : {'cross', 'ring'}
    centre : (x, y)
    extent : float
        Distance from the centre to the outer end of a cross arm or the outer edge of a ring.
    stroke : float
        Line width.
    angle : float
        Rotation of a cross in degrees (0 is '+', 45 is 'x'); unused by a ring.
    colour, background : (R, G, B)
    """

    kind: str
    centre: tuple[float, float]
    extent: float
    stroke: float
    angle: float
    colour: RGB
    background: RGB


def question_shapes() -> dict[str, Shape]:
    """The question's two images by path below the examples folder."""
    common = {"centre": (SIZE / 2, SIZE / 2), "extent": 11.0, "stroke": 4.0, "angle": 0.0}
    return {
        "question/0_cross/cross.png": Shape(
            "cross", colour=QUESTION_COLOUR, background=WHITE, **common
        ),
        "question/1_circle/circle.png": Shape(
            "ring", colour=QUESTION_COLOUR, background=WHITE, **common
        ),
    }


def random_shapes(rng: np.random.Generator) -> dict[str, Shape]:
    """The shapes dataset's images by path below the examples folder, crosses and rings drawn
    in turns from ``rng``."""
    shapes = {}
    for index in range(PER_CLASS):
        shapes[f"shapes/0_cross/cross_{index:02d}.png"] = _random_shape("cross", rng)
        shapes[f"shapes/1_circle/circle_{index:02d}.png"] = _random_shape("ring", rng)
    return shapes


def _random_shape(kind: str, rng: np.random.Generator) -> Shape:
    extent = rng.uniform(6.0, 12.0)
    stroke = rng.uniform(1.5, min(4.5, extent / 2))
    # The corner of a rotated cross arm lies a little beyond its extent.
    reach = math.hypot(extent, stroke / 2) if kind == "cross" else extent
    low, high = reach + 0.5, SIZE - reach - 0.5
    centre = (rng.uniform(low, high), rng.uniform(low, high))
    angle = rng.uniform(0.0, 90.0) if kind == "cross" else 0.0
    colour = _hsv(rng.uniform(0, 1), rng.uniform(0.6, 1.0), rng.uniform(0.45, 0.95))
    background = _background(colour, rng)
    return Shape(kind, centre, extent, stroke, angle, colour, background)


def _background(colour: RGB, rng: np.random.Generator) -> RGB:
    """White, or a random colour far enough from ``colour`` for the shape to stand out."""
    if rng.uniform() < WHITE_BACKGROUND_SHARE:
        return WHITE
    while True:
        background = _hsv(rng.uniform(0, 1), rng.uniform(0.0, 0.6), rng.uniform(0.05, 1.0))
        if math.dist(background, colour) >= MIN_CONTRAST:
            return background


def _hsv(hue: float, saturation: float, value: float) -> RGB:
    red, green, blue = colorsys.hsv_to_rgb(hue, saturation, value)
    return round(red * 255), round(green * 255), round(blue * 255)


def render(shape: Shape) -> Image.Image:
    """The SIZE x SIZE RGB image of ``shape``: colour over background by pixel coverage."""
    coverage = _coverage(shape)[..., None]
    pixels = coverage * np.array(shape.colour) + (1 - coverage) * np.array(shape.background)
    return Image.fromarray(np.rint(pixels).astype(np.uint8))


def _coverage(shape: Shape) -> np.ndarray:
    """(SIZE, SIZE) share of each pixel covered by the shape, from SUPERSAMPLE² point samples."""
    samples = (np.arange(SIZE * SUPERSAMPLE) + 0.5) / SUPERSAMPLE
    x = samples[None, :] - shape.centre[0]
    y = samples[:, None] - shape.centre[1]
    if shape.kind == "cross":
        inside = _bar(x, y, shape, shape.angle) | _bar(x, y, shape, shape.angle + 90.0)
    elif shape.kind == "ring":
        radius = np.hypot(x, y)
        inside = (radius <= shape.extent) & (radius >= shape.extent - shape.stroke)
    else:
        raise ValueError(f"shape kind must be 'cross' or 'ring', got {shape.kind!r}")
    return inside.reshape(SIZE, SUPERSAMPLE, SIZE, SUPERSAMPLE).mean(axis=(1, 3))


def _bar(x: np.ndarray, y: np.ndarray, shape: Shape, degrees: float) -> np.ndarray:
    """Points within a bar of length 2·extent and width stroke through the centre at
    ``degrees``."""
    cos, sin = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    along = x * cos + y * sin
    across = y * cos - x * sin
    return (np.abs(along) <= shape.extent) & (np.abs(across) <= shape.stroke / 2)


def example_shapes() -> dict[str, Shape]:
    """Every example image by path below the examples folder."""
    return {**question_shapes(), **random_shapes(np.random.default_rng(SEED))}


def write_examples(root: Path) -> list[Path]:
    """Draw every example image into ``root``; returns the files written."""
    shapes = {root / relative: shape for relative, shape in example_shapes().items()}
    for folder in sorted({path.parent for path in shapes}):
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.png"):
            stale.unlink()
    for path, shape in shapes.items():
        render(shape).save(path, optimize=True)
    return list(shapes)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent / "examples",
        help="folder to write into (default: resources/examples)",
    )
    arguments = parser.parse_args(argv)
    written = write_examples(arguments.out)
    print(f"wrote {len(written)} images under {arguments.out}")


if __name__ == "__main__":
    main()

"""Filter snapshots: a picture of the conv filters of one iteration, and the numbers behind it.

``render_filters`` draws, for every filter, its weights, the gradient of the update that led
to them and the update itself, one K×K heatmap per input channel, coloured on a diverging scale
centred on 0 whose limits are printed under each group, with the value written in every cell
that is large enough. ``save_snapshot`` writes that PNG together with the raw conv weights
(.npy), every array of the iteration (.npz: both layers' parameters, their gradient, update and
momentum, each image's logit, probability and loss, the images the update used, the maps) and a
JSON file of the conv arrays, metrics, findings and config.

Text uses Pillow's bundled font, which has only Latin-1 glyphs: labels are written with ASCII
'-' and 'x' where print would use a minus sign and a multiplication sign.
"""

from __future__ import annotations

import errno
import io
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from model.colormap import DIVERGING_LUT, diverging_rgb, symmetric_limit
from model.config import PIXEL_SCALING_LABELS, UPDATE_MODE_LABELS, TrainingConfig
from model.data import Dataset
from model.diagnostics import Finding
from model.files import SaveError, existing, npz_bytes, write_all_atomic
from model.formatting import format_cell, format_count, format_number, format_range
from model.record import METRIC_NAMES, StepRecord, batch_text

#: (group name, StepRecord attribute holding its arrays, title drawn above it).
GROUPS = (
    ("weights", "params", "weights"),
    ("gradient", "grads", "gradient"),
    ("update", "update", "update = new - old"),
)
CHANNEL_NAMES = ("R", "G", "B")
SNAPSHOT_SUFFIXES = (".png", ".npy", ".json", ".npz")
#: The maps (pre-activation, ReLU output; N·F·H'·W' values each) are left out of a snapshot's
#: .npz above this many values (2 MiB each in float64): a large dataset's maps at every
#: snapshot of a long run would take gigabytes. (The question's two images: 2,048 values;
#: Shapes: 81,920.)
MAX_MAP_VALUES = 1 << 18

BACKGROUND = (255, 255, 255)
INK = (20, 20, 20)
MUTED = (100, 100, 100)
DEAD_INK = (178, 24, 43)
BORDER = (110, 110, 110)

MARGIN = 16
CHANNEL_GAP = 8
GROUP_GAP = 40
ROW_GAP = 14
BAR_HEIGHT = 14
TICK = 4
#: Text is drawn in a cell only at a font size at least this large (smaller is unreadable).
MIN_CELL_FONT = 9
MAX_CELL_FONT = 12
#: Font size cells are sized for (when K is small enough to afford it).
CELL_FONT = 11
#: Relative luminance above which a cell gets black text instead of white.
LIGHT_CELL = 0.5


def cell_size(kernel_size: int, widest_text: int) -> int:
    """Side in pixels of one heatmap cell.

    Up to K = 5 a cell is 40..64 px, wide enough for ``widest_text`` (the width in pixels of
    the longest value at ``CELL_FONT``) where possible; larger kernels get smaller cells, in
    which only short values are written.
    """
    if kernel_size > 5:
        return max(12, 200 // kernel_size)
    return min(64, max(40, widest_text + 8))


def default_stem(iteration: int) -> str:
    """File name stem of a snapshot of ``iteration``, e.g. 'filters-iter000001'."""
    return f"filters-iter{iteration:06d}"


def snapshot_paths(directory: str | os.PathLike, stem: str) -> list[Path]:
    """The .png, .npy, .json and .npz paths of snapshot ``stem`` in ``directory``."""
    return [Path(directory) / f"{stem}{suffix}" for suffix in SNAPSHOT_SUFFIXES]


def filter_groups(record: StepRecord) -> dict[str, np.ndarray]:
    """The conv-filter arrays of ``record`` by group name, (F, 3, K, K) each.

    'weights' is always there; 'gradient' and 'update' only after an update (not at 0).
    """
    groups = {}
    for name, attribute, _ in GROUPS:
        arrays = getattr(record, attribute)
        if arrays is not None and "conv.weight" in arrays:
            groups[name] = np.asarray(arrays["conv.weight"])
    return groups


def group_limits(
    groups: Mapping[str, np.ndarray], limits: Mapping[str, float] | None = None
) -> dict[str, float]:
    """Colour limit of each group: ``limits[name]`` when given, else its largest finite |value|.

    Raises
    ------
    ValueError
        When a given limit is not a positive finite number or names no group.
    """
    limits = dict(limits or {})
    unknown = set(limits) - {name for name, _, _ in GROUPS}
    if unknown:
        raise ValueError(f"no colour group named {sorted(unknown)[0]!r}")
    chosen = {}
    for name, values in groups.items():
        if name in limits:
            limit = float(limits[name])
            if not (math.isfinite(limit) and limit > 0):
                raise ValueError(f"{name} colour limit must be a positive number, got {limit}")
            chosen[name] = limit
        else:
            chosen[name] = symmetric_limit(values)
    return chosen


# ---------------------------------------------------------------------------------------------
# Drawing
# ---------------------------------------------------------------------------------------------


def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _text_width(font: ImageFont.FreeTypeFont, text: str) -> int:
    return math.ceil(font.getlength(text))


def _text_height(font: ImageFont.FreeTypeFont) -> int:
    ascent, descent = font.getmetrics()
    return ascent + descent


def heatmap_tile(values: np.ndarray, limit: float, cell: int) -> Image.Image:
    """A K×K array as an image of K×K square cells of ``cell`` px with 1 px borders.

    Parameters
    ----------
    values : (K, K) values.
    limit : colour scale [-limit, +limit].
    cell : side of a cell in pixels, borders included.
    """
    pixels = np.repeat(np.repeat(diverging_rgb(values, limit), cell, axis=0), cell, axis=1)
    pixels = np.pad(pixels, ((0, 1), (0, 1), (0, 0)))
    pixels[::cell, :] = BORDER
    pixels[:, ::cell] = BORDER
    return Image.fromarray(pixels)


def colour_bar(width: int, height: int = BAR_HEIGHT) -> Image.Image:
    """The diverging colour map from -limit (left) to +limit (right), with a border."""
    index = np.round(np.linspace(0, len(DIVERGING_LUT) - 1, width)).astype(np.intp)
    pixels = np.repeat(DIVERGING_LUT[index][None], height, axis=0)
    pixels[[0, -1], :] = BORDER
    pixels[:, [0, -1]] = BORDER
    return Image.fromarray(pixels)


def _is_light(rgb) -> bool:
    red, green, blue = (c / 255 for c in rgb)
    return 0.299 * red + 0.587 * green + 0.114 * blue > LIGHT_CELL


def _cell_font_size(texts: Iterable[str], cell: int) -> int | None:
    """The largest font size at which every text fits in a cell (None: none is readable)."""
    texts = list(texts)
    for size in range(MAX_CELL_FONT, MIN_CELL_FONT - 1, -1):
        font = _font(size)
        fits = all(_text_width(font, text) <= cell - 5 for text in texts)
        if fits and _text_height(font) <= cell - 4:
            return size
    return None


def _write_values(
    draw: ImageDraw.ImageDraw,
    origin: tuple[int, int],
    values: np.ndarray,
    limit: float,
    cell: int,
    font: ImageFont.FreeTypeFont,
) -> None:
    """Write each value of a (K, K) heatmap drawn at ``origin`` into its cell."""
    colours = diverging_rgb(values, limit)
    for (row, column), value in np.ndenumerate(values):
        centre = (origin[0] + column * cell + cell / 2, origin[1] + row * cell + cell / 2)
        ink = (0, 0, 0) if _is_light(colours[row, column]) else (255, 255, 255)
        draw.text(centre, format_cell(value), fill=ink, font=font, anchor="mm")


def _fonts() -> dict[str, ImageFont.FreeTypeFont]:
    return {"header": _font(16), "title": _font(15), "label": _font(13), "small": _font(12)}


@dataclass(frozen=True)
class FilterLayout:
    """Where ``render_filters`` puts things, in pixels from the image's top-left corner.

    Attributes
    ----------
    groups : names of the groups drawn, left to right.
    filters, kernel_size : F and K.
    cell : side of a heatmap cell; its 1 px border is the cell's first row and column.
    cell_font_size : font size of the values in the cells (None: cells too small for text).
    label_width, header_height, titles_height, channels_height, bar_block_height : sizes of
        the filter-label column, the header, the group titles, the channel names and the
        colour bars with their labels.
    header_width : width of the widest header line (the image is at least that wide).
    """

    groups: tuple[str, ...]
    filters: int
    kernel_size: int
    cell: int
    cell_font_size: int | None
    label_width: int
    header_height: int
    titles_height: int
    channels_height: int
    bar_block_height: int
    header_width: int = 0

    @property
    def heatmap_side(self) -> int:
        return self.kernel_size * self.cell + 1

    @property
    def group_width(self) -> int:
        return 3 * self.heatmap_side + 2 * CHANNEL_GAP

    @property
    def rows_top(self) -> int:
        return MARGIN + self.header_height + self.titles_height + self.channels_height

    @property
    def bars_top(self) -> int:
        return self.rows_top + self.filters * (self.heatmap_side + ROW_GAP)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the image."""
        width = self.group_left(len(self.groups)) - GROUP_GAP + MARGIN
        return max(
            width, self.header_width + 2 * MARGIN
        ), self.bars_top + self.bar_block_height + MARGIN

    def group_left(self, group: int) -> int:
        return MARGIN + self.label_width + group * (self.group_width + GROUP_GAP)

    def heatmap_origin(self, group: int, channel: int, row: int) -> tuple[int, int]:
        """Top-left corner of the heatmap of filter ``row``, input ``channel``, in ``group``."""
        left = self.group_left(group) + channel * (self.heatmap_side + CHANNEL_GAP)
        return left, self.rows_top + row * (self.heatmap_side + ROW_GAP)

    def cell_box(self, group: str, f: int, channel: int, i: int, j: int) -> tuple[int, ...]:
        """(left, top, right, bottom) inside the borders of the cell of weight [f, channel, i, j]
        of ``group`` (right and bottom exclusive)."""
        left, top = self.heatmap_origin(self.groups.index(group), channel, f)
        left, top = left + j * self.cell + 1, top + i * self.cell + 1
        return left, top, left + self.cell - 1, top + self.cell - 1


def filter_layout(record: StepRecord, caption: Sequence[str] = ()) -> FilterLayout:
    """The layout ``render_filters`` uses for ``record`` (and ``caption``)."""
    groups = filter_groups(record)
    weights = groups["weights"]
    filters, kernel_size = weights.shape[0], weights.shape[2]
    fonts = _fonts()
    line = {name: _text_height(font) for name, font in fonts.items()}
    texts = _cell_texts(groups)
    widest = max(_text_width(_font(CELL_FONT), text) for text in texts)
    cell = cell_size(kernel_size, widest)
    labels = [text for pair in _filter_labels(record, filters) for text in pair]
    header = _header_lines(record, weights)
    small = [header[1], *caption]
    return FilterLayout(
        groups=tuple(groups),
        filters=filters,
        kernel_size=kernel_size,
        cell=cell,
        cell_font_size=_cell_font_size(texts, cell),
        label_width=max(_text_width(fonts["label"], text) for text in labels) + 16,
        header_height=line["header"] + len(small) * (line["label"] + 4) + 14,
        titles_height=line["title"] + 6,
        channels_height=line["small"] + 4,
        bar_block_height=BAR_HEIGHT + TICK + 2 * line["small"] + 6,
        header_width=max(
            _text_width(fonts["header"], header[0]),
            *(_text_width(fonts["label"], text) for text in small),
        ),
    )


def _cell_texts(groups: Mapping[str, np.ndarray]) -> set[str]:
    return {format_cell(v) for values in groups.values() for v in values.ravel()}


def _header_lines(record: StepRecord, weights: np.ndarray) -> tuple[str, str]:
    f, _, k, _ = weights.shape
    first = (
        f"Iteration {record.iteration} · conv filters {f}x3x{k}x{k} · "
        f"learning rate {format_number(record.settings.learning_rate)}"
    )
    dead = len(record.dead_filters)
    second = (
        f"weights in {format_range(weights.min(), weights.max())} · {dead} of "
        f"{format_count(f, 'filter')} dead"
    )
    return first, second


def _latin1(text: str) -> str:
    """``text`` in the glyphs of Pillow's bundled font ('?' for any other)."""
    return text.encode("latin-1", "replace").decode("latin-1")


def settings_lines(config: TrainingConfig) -> tuple[str, str]:
    """How a run started and learns, in two short lines (a picture's caption)."""
    return (
        f"filters {config.init_text('conv')}, classifier {config.init_text('classifier')}",
        f"pixels {PIXEL_SCALING_LABELS[config.pixel_scaling]}, "
        f"{UPDATE_MODE_LABELS[config.update_mode]}"
        + (", shuffled" if config.shuffle else "")
        + f", seed {config.seed}",
    )


def snapshot_caption(
    record: StepRecord, config: TrainingConfig, dataset: Dataset | None = None
) -> tuple[str, ...]:
    """What a snapshot's picture says besides the filters, so that it stands alone in a post:
    how both layers started, the pixels and the updates, and which images the update used
    (named from ``dataset`` when given)."""
    lines = list(settings_lines(config))
    if record.iteration > 0 and len(record.batch):
        lines.append(f"update computed on {batch_text(record.batch, dataset, file_names=True)}")
    return tuple(_latin1(line) for line in lines)


def _filter_labels(record: StepRecord, filters: int) -> list[tuple[str, str]]:
    return [
        (f"filter {f}", "" if since is None else f"dead since {since}")
        for f, since in enumerate(record.dead_since[:filters])
    ]


def _scale_note(values: np.ndarray, limit: float) -> str:
    """What the colour bar alone does not tell: values beyond a fixed scale (drawn in its end
    colours), or a group that is all zero (its scale of ±1 is then arbitrary)."""
    finite = values[np.isfinite(values)]
    if not np.any(finite):
        return "all values are 0" if finite.size == values.size else "no finite non-zero value"
    with np.errstate(invalid="ignore"):
        beyond = int(np.count_nonzero(np.abs(values) > limit))
    return (
        f"{format_count(beyond, 'value')} beyond the scale, drawn in its end colours"
        if beyond
        else ""
    )


def render_filters(
    record: StepRecord,
    *,
    limits: Mapping[str, float] | None = None,
    caption: Sequence[str] = (),
) -> Image.Image:
    """An RGB picture of the conv filters of ``record`` (positions: ``filter_layout``).

    One row per filter; per row the groups 'weights', 'gradient' and 'update' (the last two
    only after an update), each as three K×K heatmaps for the input channels R, G and B. Every
    group has one symmetric colour scale for all its filters and channels, shown as a colour
    bar labelled -limit, 0, +limit under it.

    Parameters
    ----------
    record : the iteration to draw; uses ``params``, ``grads`` and ``update`` of
        'conv.weight', (F, 3, K, K) each.
    limits : fixed colour limits by group name ('weights', 'gradient', 'update'); groups not
        given use their largest finite |value|. Values beyond a fixed limit take the end
        colours and are counted under the bar.
    caption : more lines under the header (``snapshot_caption``: the settings, the images).

    Returns
    -------
    PIL.Image.Image in mode 'RGB'.
    """
    groups = filter_groups(record)
    scale = group_limits(groups, limits)
    layout = filter_layout(record, caption)
    fonts = _fonts()
    image = Image.new("RGB", layout.size, BACKGROUND)
    draw = ImageDraw.Draw(image)
    header = _header_lines(record, groups["weights"])
    draw.text((MARGIN, MARGIN), header[0], fill=INK, font=fonts["header"])
    top = MARGIN + _text_height(fonts["header"]) + 4
    for line in (header[1], *caption):
        draw.text((MARGIN, top), line, fill=MUTED, font=fonts["label"])
        top += _text_height(fonts["label"]) + 4
    _draw_filter_labels(draw, layout, _filter_labels(record, layout.filters), fonts["label"])
    cell_font = None if layout.cell_font_size is None else _font(layout.cell_font_size)
    for index, (name, values) in enumerate(groups.items()):
        title = next(title for group, _, title in GROUPS if group == name)
        _draw_group(draw, image, layout, index, title, values, scale[name], fonts, cell_font)
    return image


def _draw_filter_labels(draw, layout: FilterLayout, labels, font) -> None:
    for row, (name, state) in enumerate(labels):
        _, top = layout.heatmap_origin(0, 0, row)
        middle = top + layout.heatmap_side // 2
        draw.text((MARGIN, middle), name, fill=INK, font=font, anchor="lb" if state else "lm")
        if state:
            draw.text((MARGIN, middle + 2), state, fill=DEAD_INK, font=font, anchor="lt")


def _draw_group(draw, image, layout: FilterLayout, index, title, values, limit, fonts, cell_font):
    """One group: title, channel names, a heatmap per filter and channel, the colour bar."""
    left = layout.group_left(index)
    draw.text((left, MARGIN + layout.header_height), title, fill=INK, font=fonts["title"])
    channel_top = MARGIN + layout.header_height + layout.titles_height
    for channel, channel_name in enumerate(CHANNEL_NAMES):
        x, _ = layout.heatmap_origin(index, channel, 0)
        centre = x + layout.heatmap_side // 2
        draw.text((centre, channel_top), channel_name, fill=MUTED, font=fonts["small"], anchor="mt")
    for row in range(values.shape[0]):
        for channel in range(3):
            origin = layout.heatmap_origin(index, channel, row)
            image.paste(heatmap_tile(values[row, channel], limit, layout.cell), origin)
            if cell_font is not None:
                _write_values(draw, origin, values[row, channel], limit, layout.cell, cell_font)
    top = layout.bars_top
    _draw_colour_bar(draw, image, (left, top), layout.group_width, limit, values, fonts["small"])


def _draw_colour_bar(draw, image, corner, width, limit, values, font) -> None:
    """The colour bar of a group at ``corner`` (left, top), its limits and what lies beyond."""
    left, top = corner
    right = left + width - 1
    image.paste(colour_bar(width), (left, top))
    tick_top = top + BAR_HEIGHT
    middle = left + width // 2
    ticks = ((left, "la", -limit), (middle, "ma", 0.0), (right, "ra", limit))
    for x, anchor, value in ticks:
        draw.line([(x, tick_top), (x, tick_top + TICK - 1)], fill=INK)
        draw.text((x, tick_top + TICK), format_number(value), fill=INK, font=font, anchor=anchor)
    note = _scale_note(values, limit)
    if note:
        note_top = tick_top + TICK + _text_height(font) + 2
        draw.text((left, note_top), note, fill=MUTED, font=font)


# ---------------------------------------------------------------------------------------------
# Saving
# ---------------------------------------------------------------------------------------------


def json_ready(value):
    """``value`` with arrays as lists and non-finite floats as null (NaN) or 'inf'/'-inf', so
    that strict JSON (``allow_nan=False``) can hold it."""
    if isinstance(value, Mapping):
        return {str(key): json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(item) for item in value]
    if isinstance(value, np.ndarray):
        return json_ready(value.tolist())
    if isinstance(value, np.generic):
        return json_ready(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def json_bytes(data) -> bytes:
    """Strict, indented UTF-8 JSON of ``data`` (after ``json_ready``)."""
    ready = json_ready(data)
    text = json.dumps(ready, indent=2, ensure_ascii=False, allow_nan=False)
    try:
        return (text + "\n").encode("utf-8")
    except UnicodeEncodeError:
        # A file name with bytes that are no UTF-8 (Python keeps them as lone surrogates):
        # escaped as \udcXX, still valid JSON, read back by Python as the same name (strict
        # parsers elsewhere may refuse or replace a lone surrogate).
        text = json.dumps(ready, indent=2, ensure_ascii=True, allow_nan=False)
        return (text + "\n").encode("ascii")


def snapshot_data(
    record: StepRecord,
    config: TrainingConfig,
    findings: Iterable[Finding],
    limits: Mapping[str, float],
) -> dict:
    """The JSON content of a snapshot (before ``extra`` is merged in)."""
    groups = filter_groups(record)
    settings = record.settings
    config_data = config.to_dict()
    if config.initial_weights is not None:
        # A name, not a path: snapshots are shared (its SHA-256 says which file it was).
        config_data["initial_weights"]["file"] = config.initial_weights.name
    return {
        "iteration": record.iteration,
        "seed": config.seed,
        "dtype": str(groups["weights"].dtype),
        "learning_rate": settings.learning_rate,
        "momentum": settings.momentum,
        "clip_norm": settings.clip_norm,
        "clip_scale": record.clip_scale,
        "config": config_data,
        "conv_weight_shape": list(groups["weights"].shape),
        "conv_weight": groups["weights"],
        "conv_bias": np.asarray(record.params["conv.bias"]),
        "conv_weight_gradient": groups.get("gradient"),
        "conv_weight_update": groups.get("update"),
        "dead_since": list(record.dead_since),
        "colour_limits": dict(limits),
        "metrics": {name: record.metrics.get(name, math.nan) for name in METRIC_NAMES},
        "findings": [finding.to_dict() for finding in findings],
    }


def snapshot_arrays(record: StepRecord) -> tuple[dict[str, np.ndarray], list[str]]:
    """Every array of ``record`` for the snapshot's .npz, and what was left out and why (an
    empty list when nothing was).

    Keys: the parameters by name ("conv.weight" (F, C, K, K), "conv.bias" (F,),
    "classifier.weight" (F·H'·W',), "classifier.bias" ()); "grad.<name>" (the gradient the update
    used, before clipping) and "update.<name>" (new − old) after iteration 0; "velocity.<name>"
    (momentum; zeros at iteration 0); "logits", "probabilities", "losses" (N,) of every image
    after the update; "batch" (the 0-based dataset indices the update was computed on, empty at 0);
    "pre_activation" and "activation" (N, F, H', W') unless over ``MAX_MAP_VALUES`` values or
    not kept for this iteration.
    """
    arrays = {name: np.asarray(value) for name, value in record.params.items()}
    left_out = []
    for prefix, group, what in (
        ("grad", record.grads, "gradient"),
        ("update", record.update, "update"),
        ("velocity", record.velocity, "momentum buffers"),
    ):
        if group is None:
            if record.iteration > 0 or prefix == "velocity":
                left_out.append(f"no {what}: not kept for this iteration")
            continue
        for name, value in group.items():
            arrays[f"{prefix}.{name}"] = np.asarray(value)
    arrays["logits"] = np.asarray(record.logits)
    arrays["probabilities"] = np.asarray(record.probabilities)
    arrays["losses"] = np.asarray(record.losses)
    arrays["batch"] = np.asarray(record.batch, dtype=np.int64)
    maps = {"pre_activation": record.pre_activation, "activation": record.activation}
    if any(value is None for value in maps.values()):
        left_out.append("no maps: not kept for this iteration (the history drops them)")
    elif (size := record.pre_activation.size) > MAX_MAP_VALUES:
        left_out.append(f"no maps: {size:,} values each, over {MAX_MAP_VALUES:,}")
    else:
        arrays.update((name, np.asarray(value)) for name, value in maps.items())
    return arrays, left_out


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def _png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def save_snapshot(
    record: StepRecord,
    config: TrainingConfig,
    findings: Iterable[Finding],
    directory: str | os.PathLike,
    stem: str | None = None,
    *,
    overwrite: bool = False,
    limits: Mapping[str, float] | None = None,
    extra: Mapping | None = None,
    dataset: Dataset | None = None,
) -> list[Path]:
    """Write ``<stem>.png``, ``<stem>.npy``, ``<stem>.json`` and ``<stem>.npz`` for ``record``
    in ``directory``.

    Parameters
    ----------
    record : the iteration to save.
    config : the run's settings (stored in the JSON).
    findings : findings to store with it (usually ``record.findings``).
    directory : an existing folder.
    stem : file name without suffix; ``default_stem(record.iteration)`` when None.
    overwrite : replace existing files; otherwise any of the four existing refuses the save.
    limits : fixed colour limits, as in ``render_filters``.
    extra : more JSON fields (e.g. the dataset's source); may not replace the standard ones.
    dataset : the run's images: the picture names the update's image, and the JSON lists
        every image's file name and label in the run's order (the .npz's ``batch`` indexes
        it).

    Returns
    -------
    The four paths written (.png, .npy, .json, .npz).

    Raises
    ------
    SaveError
        When a file exists (and ``overwrite`` is False; nothing is written then) or a file
        cannot be written (then none of the four is written or replaced).
    ValueError
        When ``extra`` repeats a standard field or a limit is invalid.
    """
    paths = snapshot_paths(directory, stem or default_stem(record.iteration))
    clashing = existing(paths)
    if clashing and not overwrite:
        names = ", ".join(path.name for path in clashing)
        raise SaveError(
            errno.EEXIST,
            f"Not saved: {names} already {'exists' if len(clashing) == 1 else 'exist'} in "
            f"{Path(directory)}",
        )
    scale = group_limits(filter_groups(record), limits)
    data = snapshot_data(record, config, findings, scale)
    arrays, left_out = snapshot_arrays(record)
    data["npz"] = {"arrays": sorted(arrays), "left_out": left_out}
    if dataset is not None:
        # Names only, as a report's dataset.json: a snapshot is shared.
        data["images"] = [
            {"file": os.path.basename(path), "label": int(label)}
            for path, label in zip(dataset.paths, dataset.labels.tolist(), strict=True)
        ]
    repeated = set(extra or {}) & set(data)
    if repeated:
        raise ValueError(f"extra may not replace the snapshot field {sorted(repeated)[0]!r}")
    data.update(extra or {})
    payloads = (
        _png_bytes(
            render_filters(record, limits=scale, caption=snapshot_caption(record, config, dataset))
        ),
        _npy_bytes(record.params["conv.weight"]),
        json_bytes(data),
        npz_bytes(arrays),
    )
    # All or none: a set half new and half old (a disk that filled up while replacing it)
    # would no longer belong together, and the old one would be gone.
    return write_all_atomic(list(zip(paths, payloads, strict=True)), overwrite=overwrite)

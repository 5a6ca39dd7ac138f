"""Labelled image datasets: reading a folder, turning any image into RGB, scaling pixels.

Folder convention
-----------------
A dataset folder holds exactly two sub-folders, one per label. The sub-folder names are sorted
with Python's string order (independent of the locale): the first is label 0, the second label 1.
A numeric prefix picks the order: ``0_cross`` and ``1_circle`` give label 0 = cross. The class
names are the folder names without such an ordering prefix (digits followed by ``_``, ``-`` or a
space), so those two folders are named ``cross`` and ``circle``.

Every regular file below a label folder is a candidate, whatever its extension, found through
sub-folders too, in order of its path below the label folder compared name by name. Names that
start with ``.`` (hidden files and folders) are ignored. A link to a label folder is followed;
links to folders further down are not (so a link loop cannot hang a load) and are listed as
skipped. Files directly in the dataset folder are skipped too. A file that cannot be used never
stops a load: it is listed in ``Dataset.skipped`` with a plain-language reason.

Image lists
-----------
``load_image_list`` reads a CSV file instead of a folder, for a dataset whose order matters (a
report's images, so that a run repeats exactly): a header ``path,label,class_name``, then one
row per image, in dataset order. ``path`` is relative to the list's folder (or absolute),
``label`` is 0 or 1 and ``class_name`` the same on every row of a label. Both labels must occur.
Paths and class names are taken exactly as written (CSV quoting as Python's ``csv`` module
reads it); a byte-order mark and Windows line ends are fine. ``is_image_list`` says which paths
are lists: those whose name ends in ``.csv``.

Conversion to RGB
-----------------
Whatever Pillow opens becomes 8-bit RGB, from its first frame (animated GIF, WebP, APNG) turned
upright by its EXIF orientation:

- anything with transparency (an alpha channel, or a transparent palette entry or colour key) is
  composited onto white: ``out = a·rgb + (1 − a)·255`` with ``a`` in 0..1, rounded;
- 16-bit grey (``I;16`` and its byte orders) is scaled by 255/65535 and rounded, never clipped;
- 32-bit integers (``I``) are read as 0..255 when no value exceeds 255 and as 0..65535 otherwise,
  scaled as 16-bit; values outside the chosen range are clipped;
- 32-bit floats (``F``) are read as 0..1 when every value lies in [0, 1] and as 0..255 otherwise,
  rounded and clipped; NaN becomes 0. A transparency key on these three modes is ignored;
- every other mode (``1``, ``L``, ``P``, ``CMYK``, ``YCbCr``, ``LAB``, ...) goes through
  Pillow's own conversion to RGB. 16-bit colour files are reduced to 8 bits by Pillow when it
  opens them. Embedded colour profiles are not applied: values are taken as stored.

Each image is then resized to the dataset size (H, W) without keeping its aspect ratio, with
Pillow's BOX filter: an output pixel is the area-weighted mean of the source pixels it covers. On
shrinking that is plain averaging (no aliasing, no ringing, no value outside the source's range);
on enlarging it repeats pixels, so an enlarged image shows its real pixels rather than invented
smooth ones. Large JPEGs are decoded at a reduced scale (Pillow's ``draft``) no smaller than
the target size.

Size
----
Unless the caller gives one, the size (H, W) is the upright size shared by the most readable
images (ties go to the size met first), when neither side exceeds ``MAX_NATIVE_SIDE``;
otherwise ``DEFAULT_SIZE``. Only headers are read to find it, and a file is readable here when
Pillow reads its header. A size given by the caller must be two integers in 1..``MAX_SIDE``.

Limits
------
An image of more than ``MAX_PIXELS`` pixels is refused from its header, before any decoding, and
Pillow's own decompression-bomb check is turned into a refusal as well. The limit is below
Pillow's warning threshold, so Pillow only ever warns about files refused anyway.
``PIL.ImageFile.LOAD_TRUNCATED_IMAGES`` is left as it is (False unless some other code changed
it), so a truncated file is reported rather than padded with grey.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import importlib.resources
import operator
import os
import re
import stat
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from numpy.typing import DTypeLike
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from model.formatting import format_count

#: Names of the bundled example datasets (see ``example_path``).
EXAMPLES = ("question", "shapes")

#: (H, W) used when the most common image size has a side longer than ``MAX_NATIVE_SIDE``.
DEFAULT_SIZE = (64, 64)
#: Longest side a most common image size may have to be used as the default size.
MAX_NATIVE_SIDE = 128
#: Longest side a caller may ask images to be resized to.
MAX_SIDE = 1024
#: Largest image, in pixels, that is decoded (8000 x 8000).
MAX_PIXELS = 64_000_000

_ORDERING_PREFIX = re.compile(r"^\d+[_\- ]+(?=.)")
_HIGH_BIT_MODES = frozenset({"I", "F", "I;16", "I;16L", "I;16B", "I;16N"})
_ALPHA_MODES = frozenset({"LA", "La", "PA", "RGBA", "RGBa"})
_AXIS_SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})
_SNIFF_BYTES = 4096
_LISTED_NAMES = 5
_LISTED_REASONS = 4

Progress = Callable[[int, int], None]
Cancel = Callable[[], bool]


class DatasetError(ValueError):
    """A load that cannot produce a dataset; the message names what was found."""


class ImageError(Exception):
    """A file that cannot be used as an image.

    Attributes
    ----------
    reason : str
        Short plain-language reason, as shown in a dataset's ``skipped`` list.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LoadCancelled(Exception):
    """Raised by a load whose ``cancel`` callback returned True."""


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """Labelled RGB images of one size, immutable.

    Attributes
    ----------
    images : np.ndarray
        (N, 3, H, W) uint8, C-contiguous, read-only.
    labels : np.ndarray
        (N,) int64, each 0 or 1, read-only.
    class_names : tuple of str
        Name of label 0 and of label 1.
    paths : tuple of str
        (N,) source file of each image.
    skipped : tuple of (str, str)
        (path, reason) for every file that was not loaded.
    native_sizes : tuple of (int, int) or None
        (N,) upright (H, W) of each image's file before it was resized to ``size``; None where
        not known (an image given as an array). Given as () when none is known.

    Arrays given to the constructor are copied unless they are already read-only and own their
    memory, so nothing outside can change a dataset's pixels or labels.
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, str]
    paths: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...] = ()
    native_sizes: tuple[tuple[int, int] | None, ...] = ()

    def __post_init__(self) -> None:
        images = np.asarray(self.images)
        _check_images(images)
        labels = np.asarray(self.labels)
        if labels.shape != (images.shape[0],) or labels.dtype.kind not in "iu":
            raise ValueError(
                f"labels must be ({images.shape[0]},) integers, got {labels.dtype} {labels.shape}"
            )
        if not np.isin(labels, (0, 1)).all():
            raise ValueError(f"labels must be 0 or 1, got {sorted(set(labels.tolist()))}")
        class_names = tuple(self.class_names)
        if len(class_names) != 2 or not all(isinstance(name, str) for name in class_names):
            raise ValueError(f"class_names must be two strings, got {self.class_names!r}")
        paths = tuple(os.fspath(path) for path in self.paths)
        if len(paths) != images.shape[0]:
            raise ValueError(f"{images.shape[0]} images but {len(paths)} paths")
        skipped = tuple((os.fspath(path), str(reason)) for path, reason in self.skipped)
        natives = tuple(self.native_sizes) or (None,) * images.shape[0]
        if len(natives) != images.shape[0]:
            raise ValueError(f"{images.shape[0]} images but {len(natives)} native sizes")
        natives = tuple(None if n is None else (int(n[0]), int(n[1])) for n in natives)
        object.__setattr__(self, "native_sizes", natives)
        object.__setattr__(self, "images", _owned_read_only(images))
        object.__setattr__(self, "labels", _owned_read_only(labels.astype(np.int64)))
        object.__setattr__(self, "class_names", class_names)
        object.__setattr__(self, "paths", paths)
        object.__setattr__(self, "skipped", skipped)

    def __len__(self) -> int:
        return self.images.shape[0]

    def __reduce__(self):
        # Through the constructor, so an unpickled dataset (the desktop app sends one to its
        # training process) is validated and read-only like any other.
        return (
            Dataset,
            (
                self.images,
                self.labels,
                self.class_names,
                self.paths,
                self.skipped,
                self.native_sizes,
            ),
        )

    def __repr__(self) -> str:
        height, width = self.size
        zeros, ones = self.label_counts()
        return (
            f"Dataset({len(self)} images of {height}x{width}, labels 0/1: {zeros}/{ones}, "
            f"class_names={self.class_names!r}, {len(self.skipped)} skipped)"
        )

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of every image."""
        return self.images.shape[2], self.images.shape[3]

    def resized(self) -> list[int]:
        """Indices of the images whose file had another size (resized to ``size``)."""
        return [i for i, native in enumerate(self.native_sizes) if native not in (None, self.size)]

    def label_counts(self) -> tuple[int, int]:
        """Number of images labelled 0 and labelled 1."""
        ones = int(self.labels.sum())
        return len(self) - ones, ones

    def with_label(self, index: int, label: int) -> Dataset:
        """A new dataset in which image ``index`` (0 ≤ index < N) has ``label`` (0 or 1)."""
        index = _checked_index(index, len(self))
        labels = self.labels.copy()
        labels[index] = _checked_label(label)
        return replace(self, labels=_sealed(labels))

    def without(self, indices: Iterable[int]) -> Dataset:
        """A new dataset without the images at ``indices`` (each 0 ≤ index < N).

        Raises
        ------
        DatasetError
            When every image would be removed.
        """
        keep = np.ones(len(self), dtype=bool)
        for index in indices:
            keep[_checked_index(index, len(self))] = False
        if not keep.any():
            raise DatasetError(f"cannot remove all {len(self)} images of a dataset")
        return replace(
            self,
            images=_sealed(self.images[keep]),
            labels=_sealed(self.labels[keep]),
            paths=tuple(path for path, kept in zip(self.paths, keep, strict=True) if kept),
            native_sizes=tuple(n for n, kept in zip(self.native_sizes, keep, strict=True) if kept),
        )

    def extended(self, other: Dataset) -> Dataset:
        """A new dataset with ``other``'s images after these, and both skipped lists.

        Labels keep their numbers; the class names stay this dataset's.

        Raises
        ------
        DatasetError
            When the two image sizes differ.
        """
        if other.size != self.size:
            (height, width), (other_height, other_width) = self.size, other.size
            raise DatasetError(
                f"cannot append images of {other_height}x{other_width} "
                f"to a dataset of {height}x{width}"
            )
        return replace(
            self,
            images=_sealed(np.concatenate([self.images, other.images])),
            labels=_sealed(np.concatenate([self.labels, other.labels])),
            paths=self.paths + other.paths,
            skipped=self.skipped + other.skipped,
            native_sizes=self.native_sizes + other.native_sizes,
        )

    def digest(self) -> str:
        """SHA-256 (hex) of N, H, W, the image bytes and the labels.

        Paths, class names and the skipped list do not enter it: the same pixels with the same
        labels give the same digest wherever the files lie.
        """
        sha = hashlib.sha256()
        sha.update(np.array(self.images.shape[:1] + self.size, dtype="<i8").tobytes())
        sha.update(self.images.tobytes())
        sha.update(self.labels.astype("<i8").tobytes())
        return sha.hexdigest()


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def load_dataset(
    path: str | os.PathLike,
    size: tuple[int, int] | None = None,
    *,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
) -> Dataset:
    """Load a dataset folder laid out as the module docstring describes.

    Parameters
    ----------
    path : path-like
        The dataset folder, holding exactly two label folders.
    size : (H, W), optional
        Size every image is resized to; by default the rule of the module docstring.
    progress : callable (done, total), optional
        Called as files are processed. With the default size every file is visited twice
        (header, then pixels) and ``total`` counts both visits.
    cancel : callable () -> bool, optional
        Asked before each file; True stops the load.

    Returns
    -------
    Dataset
        Images (N, 3, H, W), label 0 first, each label's files in path order.

    Raises
    ------
    DatasetError
        When the folder does not hold exactly two label folders, or a label has no usable image.
    LoadCancelled
        When ``cancel`` returned True.
    ValueError
        When ``size`` is not two integers in 1..``MAX_SIDE``.
    """
    folder = Path(os.path.abspath(path))
    label_folders, skipped = _label_folders(folder)
    files = [
        (file, label)
        for label, label_folder in enumerate(label_folders)
        for file in _files_below(label_folder, skipped)
    ]
    class_names = tuple(
        _ORDERING_PREFIX.sub("", label_folder.name) for label_folder in label_folders
    )
    dataset = _load_files(files, size, class_names, skipped, progress, cancel, f"in {folder}")
    for label, count in enumerate(dataset.label_counts()):
        if count == 0:
            raise DatasetError(_empty_label_message(label_folders[label], label, dataset.skipped))
    return dataset


def dataset_from_files(
    files: Iterable[tuple[str | os.PathLike, int]],
    size: tuple[int, int] | None = None,
    *,
    class_names: tuple[str, str] = ("0", "1"),
    progress: Progress | None = None,
    cancel: Cancel | None = None,
) -> Dataset:
    """Load a dataset from a list of (path, label) pairs, labels 0 or 1, kept in that order.

    ``size``, ``progress`` and ``cancel`` are as in ``load_dataset``. One label may be absent,
    so that images can be gathered here and appended with ``Dataset.extended``.

    Raises
    ------
    DatasetError
        When no file gives a usable image.
    ValueError
        When a label is not 0 or 1, or ``size`` is invalid.
    """
    pairs = [(Path(os.path.abspath(path)), _checked_label(label)) for path, label in files]
    return _load_files(
        pairs, size, class_names, [], progress, cancel, f"among {format_count(len(pairs), 'file')}"
    )


LIST_COLUMNS = ("path", "label", "class_name")


def is_image_list(path: str | os.PathLike) -> bool:
    """Whether ``path`` names an image list (a ``.csv`` file) rather than a dataset folder."""
    return Path(path).suffix.lower() == ".csv"


def load_image_list(
    path: str | os.PathLike,
    size: tuple[int, int] | None = None,
    *,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
) -> Dataset:
    """Load the images a CSV list names, in its order (see "Image lists" above).

    ``size``, ``progress`` and ``cancel`` are as in ``load_dataset``. Raises ``DatasetError``
    when the list cannot be read or is not as described, naming the row; files that cannot be
    used are skipped with their reasons, as in a folder.
    """
    path = Path(path)
    try:
        # utf-8-sig: spreadsheet programs start their CSV files with a byte-order mark.
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            rows = [(reader.line_num, row) for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"cannot read the image list {path}: {exc}") from exc
    if not rows or tuple(cell.strip() for cell in rows[0][1]) != LIST_COLUMNS:
        raise DatasetError(
            f"{path} is not an image list: its first line must be 'path,label,class_name'"
        )
    files: list[tuple[Path, int]] = []
    names: dict[int, str] = {}
    for number, row in rows[1:]:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(LIST_COLUMNS):
            raise DatasetError(f"{path}, line {number}: expected 3 values, got {len(row)}")
        name, label_text, class_name = row
        label_text = label_text.strip()
        if label_text not in ("0", "1") or not name:
            raise DatasetError(
                f"{path}, line {number}: the label must be 0 or 1 and the path given"
            )
        label = int(label_text)
        if names.setdefault(label, class_name) != class_name:
            raise DatasetError(
                f"{path}, line {number}: label {label} is named {names[label]!r} above, "
                f"{class_name!r} here"
            )
        files.append((path.parent / name, label))
    if len(names) != 2:
        found = ", ".join(f"label {k}" for k in sorted(names)) or "no image"
        raise DatasetError(f"{path} must list images of both labels, 0 and 1; it has {found}")
    dataset = dataset_from_files(
        files, size, class_names=(names[0], names[1]), progress=progress, cancel=cancel
    )
    for label in (0, 1):
        if not np.any(dataset.labels == label):
            reasons = "; ".join(f"{Path(p).name}: {why}" for p, why in dataset.skipped[:3])
            raise DatasetError(
                f"{path}: no usable image of label {label} ({names[label]!r}): {reasons}"
            )
    return dataset


def load_image(path: str | os.PathLike, size: tuple[int, int]) -> np.ndarray:
    """One image file as RGB, converted as the module docstring describes.

    Parameters
    ----------
    path : path-like
        The image file.
    size : (H, W)
        Size of the result; two integers in 1..``MAX_SIDE``.

    Returns
    -------
    np.ndarray
        (3, H, W) uint8.

    Raises
    ------
    ImageError
        When the file cannot be used; ``reason`` says why.
    ValueError
        When ``size`` is invalid.
    """
    return _decoded(path, size)[0]


def _decoded(path: str | os.PathLike, size: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    """``load_image``'s pixels, and the upright (H, W) of the file."""
    height, width = _checked_size(size)
    with _reading(path) as image:
        native = _upright(image)
        _draft(image, width, height)
        ImageOps.exif_transpose(image, in_place=True)
        converted = _eight_bit(image)
        if converted.size != (width, height):
            converted = converted.resize((width, height), Image.Resampling.BOX)
        pixels = np.asarray(converted)
    if converted.mode == "RGBa":
        pixels = _on_white(pixels)
    return np.ascontiguousarray(pixels.transpose(2, 0, 1)), native


def _load_files(
    files: list[tuple[Path, int]],
    size: tuple[int, int] | None,
    class_names: tuple[str, str],
    skipped: list[tuple[str, str]],
    progress: Progress | None,
    cancel: Cancel | None,
    where: str,
) -> Dataset:
    """Decode ``files`` into a dataset; failures are appended to ``skipped``."""
    if size is not None:
        size = _checked_size(size)
    steps = _Steps(len(files) * (1 if size is not None else 2), progress, cancel)
    failures: dict[Path, str] = {}
    if size is None:
        size = _default_size(_upright_sizes([file for file, _ in files], failures, steps))
    images, labels, paths, natives = [], [], [], []
    for file, label in files:
        steps.check_cancel()
        try:
            image, native = _load_unless_failed(file, size, failures)
        except ImageError as error:
            skipped.append((str(file), error.reason))
        else:
            images.append(image)
            labels.append(label)
            paths.append(str(file))
            natives.append(native)
        steps.advance()
    if not images:
        raise DatasetError(f"no usable image {where}: {_reason_summary(skipped)}")
    return Dataset(
        images=_sealed(np.stack(images)),
        labels=_sealed(np.array(labels, dtype=np.int64)),
        class_names=class_names,
        paths=tuple(paths),
        skipped=tuple(skipped),
        native_sizes=tuple(natives),
    )


def _load_unless_failed(
    file: Path, size: tuple[int, int], failures: dict[Path, str]
) -> tuple[np.ndarray, tuple[int, int]]:
    """``_decoded``, without trying again a file whose header already failed."""
    if file in failures:
        raise ImageError(failures[file])
    return _decoded(file, size)


class _Steps:
    """Progress over a known number of file visits, with a cancel check before each."""

    def __init__(self, total: int, progress: Progress | None, cancel: Cancel | None) -> None:
        self.total = total
        self.done = 0
        self._progress = progress
        self._cancel = cancel
        self._report()

    def check_cancel(self) -> None:
        if self._cancel is not None and self._cancel():
            raise LoadCancelled(f"load cancelled after {self.done} of {self.total} steps")

    def advance(self) -> None:
        self.done += 1
        self._report()

    def _report(self) -> None:
        if self._progress is not None:
            self._progress(self.done, self.total)


def _upright_sizes(
    files: list[Path], failures: dict[Path, str], steps: _Steps
) -> list[tuple[int, int]]:
    """(H, W) of each readable file as it will stand upright; unreadable ones go to ``failures``."""
    sizes = []
    for file in files:
        steps.check_cancel()
        try:
            sizes.append(_upright_size(file))
        except ImageError as error:
            failures[file] = error.reason
        steps.advance()
    return sizes


def _upright_size(path: Path) -> tuple[int, int]:
    """(H, W) of an image after its EXIF orientation, from its header."""
    with _reading(path) as image:
        return _upright(image)


def _upright(image: Image.Image) -> tuple[int, int]:
    """(H, W) of an opened image after its EXIF orientation (before any decoding)."""
    width, height = image.size
    if _orientation(image) in _AXIS_SWAPPING_ORIENTATIONS:
        width, height = height, width
    return height, width


def _default_size(sizes: list[tuple[int, int]]) -> tuple[int, int]:
    """The default-size rule of the module docstring, over the readable images' (H, W)."""
    if not sizes:
        return DEFAULT_SIZE
    (height, width), _ = Counter(sizes).most_common(1)[0]
    if height <= MAX_NATIVE_SIDE and width <= MAX_NATIVE_SIDE:
        return height, width
    return DEFAULT_SIZE


def _checked_size(size) -> tuple[int, int]:
    """``size`` as (H, W) ints, each in 1..MAX_SIDE, or ValueError."""
    try:
        height, width = (operator.index(side) for side in size)
    except (TypeError, ValueError):
        raise ValueError(f"size must be two integers (H, W), got {size!r}") from None
    if not (1 <= height <= MAX_SIDE and 1 <= width <= MAX_SIDE):
        raise ValueError(f"each side of size must be in 1..{MAX_SIDE}, got {height}x{width}")
    return height, width


def _checked_index(index: int, length: int) -> int:
    index = operator.index(index)
    if not 0 <= index < length:
        raise IndexError(f"image index {index} out of range for {length} images")
    return index


def _checked_label(label: int) -> int:
    try:
        value = operator.index(label)
    except TypeError:
        value = None
    if value not in (0, 1):
        raise ValueError(f"label must be 0 or 1, got {label!r}")
    return value


# ---------------------------------------------------------------------------------------------
# The folder convention
# ---------------------------------------------------------------------------------------------


def _label_folders(folder: Path) -> tuple[tuple[Path, Path], list[tuple[str, str]]]:
    """The two label folders of a dataset folder in label order, and its loose files as skipped.

    Raises
    ------
    DatasetError
        When ``folder`` is not a folder holding exactly two (non-hidden) sub-folders.
    """
    entries = _visible_entries(folder)
    if entries is None:
        raise DatasetError(_unreadable_folder_message(folder))
    folders = [entry for entry in entries if entry.is_dir()]
    files = [entry for entry in entries if not entry.is_dir()]
    if len(folders) == 2:
        loose = [(entry.path, "not inside a label folder") for entry in files]
        return (Path(folders[0].path), Path(folders[1].path)), loose
    expected = f"expected exactly two label folders in {folder}, found"
    if folders:
        names = _listing([entry.name for entry in folders])
        raise DatasetError(f"{expected} {len(folders)}: {names}")
    if files:
        names = _listing([entry.name for entry in files])
        raise DatasetError(f"{expected} none; files directly in the folder: {names}")
    raise DatasetError(f"{expected} none; the folder is empty")


def _unreadable_folder_message(folder: Path) -> str:
    if not folder.exists():
        return f"no such folder: {folder}"
    if not folder.is_dir():
        return f"not a folder: {folder}"
    return f"cannot list the folder {folder}"


def _visible_entries(folder: Path) -> list[os.DirEntry] | None:
    """Non-hidden entries of ``folder`` sorted by name, or None when it cannot be listed."""
    try:
        with os.scandir(folder) as entries:
            return sorted(
                (entry for entry in entries if not entry.name.startswith(".")),
                key=lambda entry: entry.name,
            )
    except OSError:
        return None


def _files_below(folder: Path, skipped: list[tuple[str, str]]) -> list[Path]:
    """Regular files below ``folder``, depth first in name order; what is left out goes to
    ``skipped``. Links to folders are not followed, so a link loop cannot hang the walk."""
    files = []
    pending = [_listed(folder, skipped)]
    while pending:
        entry = next(pending[-1], None)
        if entry is None:
            pending.pop()
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                pending.append(_listed(Path(entry.path), skipped))
            elif entry.is_dir():
                skipped.append((entry.path, "link to a folder, not followed"))
            elif entry.is_file():
                files.append(Path(entry.path))
            elif entry.is_symlink() and not os.path.lexists(os.path.realpath(entry.path)):
                skipped.append((entry.path, "a broken link: what it points to is missing"))
            else:
                skipped.append((entry.path, "not a regular file"))
        except OSError as error:  # a link to itself (ELOOP), a target that cannot be looked at
            kind = "a link that cannot be followed" if entry.is_symlink() else "cannot be read"
            skipped.append((entry.path, f"{kind} ({error.strerror or error})"))
    return files


def _listed(folder: Path, skipped: list[tuple[str, str]]) -> Iterator[os.DirEntry]:
    entries = _visible_entries(folder)
    if entries is None:
        skipped.append((str(folder), "folder cannot be listed"))
        return iter(())
    return iter(entries)


def _empty_label_message(folder: Path, label: int, skipped: tuple[tuple[str, str], ...]) -> str:
    below = [(path, reason) for path, reason in skipped if Path(path).is_relative_to(folder)]
    found = _reason_summary(below) if below else "it holds no files"
    return f"label {label} folder {folder} has no usable image: {found}"


def _reason_summary(skipped: Iterable[tuple[str, str]]) -> str:
    """Counts of the most frequent reasons, e.g. '3 files: empty file (0 bytes); 1 file: ...'."""
    counts = Counter(reason for _, reason in skipped).most_common()
    if not counts:
        return "no files found"
    parts = [f"{format_count(n, 'file')}: {reason}" for reason, n in counts[:_LISTED_REASONS]]
    if len(counts) > _LISTED_REASONS:
        parts.append(f"{len(counts) - _LISTED_REASONS} other reasons")
    return "; ".join(parts)


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:_LISTED_NAMES])
    hidden = len(names) - _LISTED_NAMES
    return f"{shown} and {hidden} more" if hidden > 0 else shown


# ---------------------------------------------------------------------------------------------
# One image file
# ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _reading(path: str | os.PathLike) -> Iterator[Image.Image]:
    """Pillow's image of ``path``, header read and size checked; every failure in the block,
    whatever its type, becomes an ``ImageError`` with a reason.

    The net is this wide because a damaged file can make Pillow's format plugins raise almost
    any exception; each is a fact about that one file, to be reported, not to stop a load.
    Pillow's warnings about quirks it works around (corrupt EXIF, odd metadata) are silenced
    inside the block; its decompression-bomb warning becomes an error.
    """
    try:
        _check_regular_file(path)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                _check_pixel_count(image)
                yield image
    except ImageError:
        raise
    except Exception as error:
        raise ImageError(_failure_reason(error, path)) from error


def _check_regular_file(path: str | os.PathLike) -> None:
    """Refuse what Pillow should not open: opening a named pipe would block forever."""
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        raise ImageError("not a regular file")
    if info.st_size == 0:
        raise ImageError("empty file (0 bytes)")


def _check_pixel_count(image: Image.Image) -> None:
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageError(f"has no pixels ({width} x {height})")
    if width * height > MAX_PIXELS:
        raise ImageError(f"too large: {width} x {height} pixels (limit {MAX_PIXELS:,})")


def _failure_reason(error: Exception, path: str | os.PathLike) -> str:
    if isinstance(error, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return "too large: Pillow refuses it as a possible decompression bomb"
    if isinstance(error, UnidentifiedImageError):
        return _unidentified_reason(path)
    if isinstance(error, OSError) and error.strerror:
        return f"cannot be read: {error.strerror.lower()}"
    if isinstance(error, MemoryError):
        return "too large to decode in the available memory"
    return f"could not be decoded: {error or type(error).__name__}"


def _unidentified_reason(path: str | os.PathLike) -> str:
    """Why Pillow found no format, naming SVG, the usual surprise, when the file is one."""
    try:
        with open(path, "rb") as file:
            head = file.read(_SNIFF_BYTES).lower()
    except OSError:
        head = b""
    if b"<svg" in head:
        return "an SVG drawing: Pillow reads pixel images only (export it as PNG)"
    return "not an image Pillow can read"


def _orientation(image: Image.Image) -> int:
    """EXIF orientation (1..8) readable without decoding the pixels."""
    # PngImageFile.getexif() decodes the whole image to look for an eXIf chunk after the pixel
    # data; without one before them the header pass takes the PNG as stored.
    if image.format == "PNG" and "exif" not in image.info:
        return 1
    return image.getexif().get(ExifTags.Base.Orientation, 1)


def _draft(image: Image.Image, width: int, height: int) -> None:
    """Let a JPEG decode at the smallest scale (1, 1/2, 1/4, 1/8) not below the target size."""
    if image.format not in ("JPEG", "MPO"):
        return
    if _orientation(image) in _AXIS_SWAPPING_ORIENTATIONS:
        width, height = height, width
    image.draft(None, (width, height))


def _eight_bit(image: Image.Image) -> Image.Image:
    """``image`` as 'RGB', or as premultiplied 'RGBa' when it has transparency."""
    if image.mode in _HIGH_BIT_MODES:
        return Image.fromarray(_grey_levels(image)).convert("RGB")
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        return image.convert("RGBA").convert("RGBa")
    return image.convert("RGB")


def _grey_levels(image: Image.Image) -> np.ndarray:
    """(H, W) uint8 of an 'I;16*', 'I' or 'F' image, by the rules of the module docstring."""
    if image.mode == "F":
        values = np.array(image, dtype=np.float32)
        np.nan_to_num(values, copy=False, nan=0.0)
        if values.min() >= 0 and values.max() <= 1:
            values *= 255
        np.clip(values, 0, 255, out=values)
        return np.rint(values).astype(np.uint8)
    values = np.asarray(image)
    if image.mode == "I" and values.max() <= 255:
        return np.clip(values, 0, 255).astype(np.uint8)
    # Integer arithmetic rounds exactly: v·255 fits easily in 32 bits and no v lands on a tie.
    sixteen_bit = np.clip(values, 0, 65535).astype(np.uint32)
    return ((sixteen_bit * 255 + 32767) // 65535).astype(np.uint8)


def _on_white(premultiplied: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 of (H, W, 4) premultiplied RGBa composited onto white.

    With p = a·rgb already rounded, a·rgb + (1 − a)·255 is p + 255 − a exactly. Resizing the
    premultiplied image first is the same as resizing the composite (both are linear), and BOX
    weights are non-negative, so p ≤ a still holds and the uint8 sum cannot overflow.
    """
    alpha = premultiplied[..., 3:]
    return premultiplied[..., :3] + (255 - alpha)


# ---------------------------------------------------------------------------------------------
# Pixel statistics and scaling
# ---------------------------------------------------------------------------------------------


def pixel_statistics(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of images, on the 0..255 scale.

    Computed from a histogram of the 256 levels of each channel, so the sums are exact and no
    float copy of the images is made.

    Parameters
    ----------
    images : np.ndarray
        (N, 3, H, W) uint8.

    Returns
    -------
    mean, std : np.ndarray
        (3,) float64 each; ``std`` is the population standard deviation (ddof 0).
    """
    _check_images(images)
    levels = np.arange(256, dtype=np.float64)
    mean = np.empty(3)
    std = np.empty(3)
    for channel in range(3):
        counts = np.bincount(images[:, channel].ravel(), minlength=256)
        total = counts.sum()
        mean[channel] = counts @ levels / total
        std[channel] = np.sqrt(counts @ (levels - mean[channel]) ** 2 / total)
    return mean, std


def scale_pixels(
    images: np.ndarray,
    mode: str,
    dtype: DTypeLike,
    stats: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Images as floats for the network.

    Parameters
    ----------
    images : np.ndarray
        (N, 3, H, W) uint8.
    mode : {'raw', 'unit', 'standardize'}
        'raw' keeps 0..255; 'unit' divides by 255; 'standardize' maps channel c to
        (x − mean[c]) / std[c]. A channel with std 0 is divided by 1 instead: it holds one value
        everywhere, carries nothing to learn from, and dividing by zero would only make inf/NaN.
    dtype : np.float32 or np.float64 (or their names)
        dtype of the result.
    stats : (mean, std), optional
        (3,) each, on the 0..255 scale, for 'standardize' (e.g. the training set's); by default
        ``pixel_statistics(images)``. Ignored by the other modes.

    Returns
    -------
    np.ndarray
        (N, 3, H, W) in ``dtype``. Every value is the float64 result rounded once to ``dtype``:
        the 256 possible values of each channel are computed in float64, rounded, and looked
        up, so no float64 array the size of the images is made.
    """
    _check_images(images)
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    table = _level_table(images, mode, stats).astype(dtype)
    scaled = np.empty(images.shape, dtype=dtype)
    for channel in range(3):
        scaled[:, channel] = table[channel][images[:, channel]]
    return scaled


def _level_table(images: np.ndarray, mode: str, stats) -> np.ndarray:
    """(3, 256) float64: the scaled value of each level 0..255 in each channel."""
    levels = np.arange(256, dtype=np.float64)
    if mode == "raw":
        return np.tile(levels, (3, 1))
    if mode == "unit":
        return np.tile(levels / 255, (3, 1))
    if mode == "standardize":
        mean, std = _checked_stats(stats) if stats is not None else pixel_statistics(images)
        divisor = np.where(std == 0, 1.0, std)
        return (levels - mean[:, None]) / divisor[:, None]
    raise ValueError(f"mode must be 'raw', 'unit' or 'standardize', got {mode!r}")


def _checked_stats(stats) -> tuple[np.ndarray, np.ndarray]:
    mean, std = (np.asarray(values, dtype=np.float64) for values in stats)
    if mean.shape != (3,) or std.shape != (3,):
        raise ValueError(
            f"stats must be (mean, std) of shape (3,) each, got {mean.shape}, {std.shape}"
        )
    if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std >= 0).all()):
        raise ValueError(f"stats must be finite with std >= 0, got mean {mean}, std {std}")
    return mean, std


def _check_images(images: np.ndarray) -> None:
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
        raise ValueError(
            f"images must be a uint8 array, got {getattr(images, 'dtype', type(images))}"
        )
    if images.ndim != 4 or images.shape[1] != 3 or images.shape[2] < 1 or images.shape[3] < 1:
        raise ValueError(f"images must be (N, 3, H, W) with H, W >= 1, got shape {images.shape}")
    if images.shape[0] == 0:
        raise DatasetError("no images")


def _sealed(array: np.ndarray) -> np.ndarray:
    """A freshly made array, marked read-only so a Dataset can keep it without copying."""
    array.flags.writeable = False
    return array


def _owned_read_only(array: np.ndarray) -> np.ndarray:
    """``array`` if it is read-only, C-contiguous and owns its memory, else a read-only copy.

    A read-only view of a writable array could still change through its base.
    """
    if array.flags.writeable or array.base is not None or not array.flags.c_contiguous:
        array = _sealed(np.array(array, order="C"))
    return array


# ---------------------------------------------------------------------------------------------
# Bundled examples
# ---------------------------------------------------------------------------------------------


def example_path(name: str) -> Path:
    """Folder of a bundled example dataset, 'question' or 'shapes', as a real path.

    The examples are package data of the ``resources`` package, so this works from a source
    tree and after any installation that unpacks packages into folders.
    """
    if name not in EXAMPLES:
        raise ValueError(f"example must be one of {EXAMPLES}, got {name!r}")
    folder = importlib.resources.files("resources") / "examples" / name
    if not isinstance(folder, Path):
        raise DatasetError(f"the bundled examples are not in a folder: {folder}")
    return folder.resolve()


def load_example(name: str) -> Dataset:
    """The bundled example dataset ``name`` ('question' or 'shapes'), at its native size."""
    return load_dataset(example_path(name))

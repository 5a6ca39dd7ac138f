"""model.data: the folder convention, the Dataset operations, pixel scaling, the examples."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model import data
from model.data import Dataset, DatasetError, ImageError, LoadCancelled
from resources import make_examples


def _save(path: Path, pixels: np.ndarray) -> Path:
    """Write an (H, W, 3) uint8 array as a PNG, creating folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def _flat(colour, height: int = 4, width: int = 4) -> np.ndarray:
    return np.broadcast_to(np.array(colour, dtype=np.uint8), (height, width, 3)).copy()


def _dataset(labels, size=(2, 3), seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (len(labels), 3, *size), dtype=np.uint8)
    return Dataset(
        images=images,
        labels=np.array(labels),
        class_names=("a", "b"),
        paths=tuple(f"/images/{index}.png" for index in range(len(labels))),
    )


# ---------------------------------------------------------------------------------------------
# The folder convention
# ---------------------------------------------------------------------------------------------


def test_sorted_folder_names_give_the_labels_and_numeric_prefixes_are_dropped(tmp_path):
    _save(tmp_path / "1_zebra" / "z.png", _flat((0, 0, 200)))
    _save(tmp_path / "0_ant" / "a.png", _flat((200, 0, 0)))

    dataset = data.load_dataset(tmp_path)

    assert dataset.class_names == ("ant", "zebra")
    assert dataset.labels.tolist() == [0, 1]
    assert dataset.images[0, :, 0, 0].tolist() == [200, 0, 0]
    assert dataset.images[1, :, 0, 0].tolist() == [0, 0, 200]


def test_names_without_a_prefix_sort_as_python_strings(tmp_path):
    # Python string order puts upper case before lower case, whatever the locale says.
    _save(tmp_path / "dogs" / "d.png", _flat((1, 1, 1)))
    _save(tmp_path / "Cats" / "c.png", _flat((2, 2, 2)))

    dataset = data.load_dataset(tmp_path)

    assert dataset.class_names == ("Cats", "dogs")
    assert dataset.images[:, 0, 0, 0].tolist() == [2, 1]


def test_files_are_found_recursively_in_path_order_and_hidden_ones_ignored(tmp_path):
    _save(tmp_path / "a" / "b.png", _flat((2, 0, 0)))
    _save(tmp_path / "a" / "a" / "z.png", _flat((1, 0, 0)))
    _save(tmp_path / "a" / "c" / "deep" / "x.png", _flat((3, 0, 0)))
    _save(tmp_path / "a" / ".hidden.png", _flat((9, 9, 9)))
    _save(tmp_path / "a" / ".cache" / "x.png", _flat((9, 9, 9)))
    _save(tmp_path / "b" / "only.png", _flat((4, 0, 0)))
    _save(tmp_path / ".git" / "objects" / "x.png", _flat((9, 9, 9)))

    dataset = data.load_dataset(tmp_path)

    assert dataset.images[:, 0, 0, 0].tolist() == [1, 2, 3, 4]
    assert dataset.paths == tuple(
        str(tmp_path / relative)
        for relative in ("a/a/z.png", "a/b.png", "a/c/deep/x.png", "b/only.png")
    )
    assert dataset.skipped == ()


def test_files_directly_in_the_dataset_folder_are_skipped(tmp_path):
    _save(tmp_path / "a" / "x.png", _flat((1, 1, 1)))
    _save(tmp_path / "b" / "y.png", _flat((2, 2, 2)))
    _save(tmp_path / "loose.png", _flat((3, 3, 3)))

    dataset = data.load_dataset(tmp_path)

    assert len(dataset) == 2
    assert dataset.skipped == ((str(tmp_path / "loose.png"), "not inside a label folder"),)


def test_a_bad_file_is_skipped_with_its_reason_and_the_rest_loads(tmp_path):
    _save(tmp_path / "a" / "good.png", _flat((1, 1, 1)))
    (tmp_path / "a" / "notes.png").write_text("not a picture")
    (tmp_path / "a" / "empty.jpg").write_bytes(b"")
    _save(tmp_path / "b" / "good.png", _flat((2, 2, 2)))

    dataset = data.load_dataset(tmp_path)

    assert len(dataset) == 2
    assert dict(dataset.skipped) == {
        str(tmp_path / "a" / "empty.jpg"): "empty file (0 bytes)",
        str(tmp_path / "a" / "notes.png"): "not an image Pillow can read",
    }


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")
def test_a_broken_link_or_a_link_to_itself_is_skipped_as_such(tmp_path):
    """A review: a link to itself (ELOOP) failed the whole load."""
    _save(tmp_path / "a" / "good.png", _flat((1, 1, 1)))
    _save(tmp_path / "b" / "good.png", _flat((2, 2, 2)))
    os.symlink(tmp_path / "gone.png", tmp_path / "a" / "moved.png")
    os.symlink("loop", tmp_path / "a" / "loop")

    dataset = data.load_dataset(tmp_path)

    assert len(dataset) == 2
    skipped = dict(dataset.skipped)
    assert skipped[str(tmp_path / "a" / "moved.png")] == (
        "a broken link: what it points to is missing"
    )
    assert skipped[str(tmp_path / "a" / "loop")].startswith("a link that cannot be followed")


def test_paths_are_absolute_strings_even_for_a_relative_folder(tmp_path, monkeypatch):
    _save(tmp_path / "set" / "a" / "x.png", _flat((1, 1, 1)))
    _save(tmp_path / "set" / "b" / "y.png", _flat((2, 2, 2)))
    monkeypatch.chdir(tmp_path)

    dataset = data.load_dataset("set")

    assert dataset.paths == (str(tmp_path / "set/a/x.png"), str(tmp_path / "set/b/y.png"))


@pytest.mark.parametrize(
    ("folders", "files", "expected"),
    [
        (["only"], [], "expected exactly two label folders in {root}, found 1: only"),
        (["a", "b", "c"], [], "expected exactly two label folders in {root}, found 3: a, b, c"),
        ([], [], "expected exactly two label folders in {root}, found none; the folder is empty"),
        (
            [],
            ["x.png", "y.png"],
            "expected exactly two label folders in {root}, found none; "
            "files directly in the folder: x.png, y.png",
        ),
    ],
)
def test_a_folder_without_exactly_two_label_folders_is_refused_naming_what_it_holds(
    tmp_path, folders, files, expected
):
    for name in folders:
        _save(tmp_path / name / "x.png", _flat((1, 1, 1)))
    for name in files:
        _save(tmp_path / name, _flat((1, 1, 1)))

    with pytest.raises(DatasetError) as error:
        data.load_dataset(tmp_path)

    assert str(error.value) == expected.format(root=tmp_path)


def test_many_folders_are_listed_up_to_a_few_names(tmp_path):
    for index in range(8):
        (tmp_path / f"class{index}").mkdir()

    with pytest.raises(DatasetError, match=r"found 8: class0, .*, class4 and 3 more$"):
        data.load_dataset(tmp_path)


def test_a_missing_folder_or_a_file_is_refused(tmp_path):
    with pytest.raises(DatasetError, match="no such folder"):
        data.load_dataset(tmp_path / "missing")
    file = _save(tmp_path / "x.png", _flat((1, 1, 1)))
    with pytest.raises(DatasetError, match="not a folder"):
        data.load_dataset(file)


def test_no_usable_image_at_all_is_refused_with_the_reasons(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "one.txt").write_text("hello")
    (tmp_path / "a" / "two.txt").write_text("hello")
    (tmp_path / "b" / "three.png").write_bytes(b"")

    with pytest.raises(DatasetError) as error:
        data.load_dataset(tmp_path)

    assert str(error.value) == (
        f"no usable image in {tmp_path}: 2 files: not an image Pillow can read; "
        "1 file: empty file (0 bytes)"
    )


def test_a_label_without_usable_images_is_refused_naming_its_folder(tmp_path):
    _save(tmp_path / "0_cross" / "x.png", _flat((1, 1, 1)))
    (tmp_path / "1_circle").mkdir()
    (tmp_path / "1_circle" / "broken.png").write_text("text")

    with pytest.raises(DatasetError) as error:
        data.load_dataset(tmp_path)

    assert str(error.value) == (
        f"label 1 folder {tmp_path / '1_circle'} has no usable image: "
        "1 file: not an image Pillow can read"
    )


def test_an_empty_label_folder_is_refused(tmp_path):
    (tmp_path / "a").mkdir()
    _save(tmp_path / "b" / "x.png", _flat((1, 1, 1)))

    with pytest.raises(
        DatasetError, match=r"label 0 folder .*a has no usable image: it holds no files"
    ):
        data.load_dataset(tmp_path)


# ---------------------------------------------------------------------------------------------
# Sizes
# ---------------------------------------------------------------------------------------------


def test_the_default_size_is_the_most_common_one(tmp_path):
    for index in range(3):
        _save(tmp_path / "a" / f"{index}.png", _flat((10, 20, 30), height=20, width=30))
    _save(tmp_path / "b" / "small.png", _flat((40, 50, 60), height=10, width=10))

    dataset = data.load_dataset(tmp_path)

    assert dataset.size == (20, 30)
    assert dataset.images.shape == (4, 3, 20, 30)
    # The odd one out is resized; a flat colour stays exactly that colour.
    assert (dataset.images[3] == np.array([40, 50, 60])[:, None, None]).all()


def test_a_tie_goes_to_the_size_met_first(tmp_path):
    _save(tmp_path / "a" / "x.png", _flat((1, 1, 1), height=5, width=7))
    _save(tmp_path / "b" / "y.png", _flat((1, 1, 1), height=9, width=3))

    assert data.load_dataset(tmp_path).size == (5, 7)


def test_the_default_size_falls_back_when_the_common_size_is_large(tmp_path):
    for label in "ab":
        _save(tmp_path / label / "tall.png", _flat((1, 2, 3), height=200, width=10))

    dataset = data.load_dataset(tmp_path)

    assert dataset.size == data.DEFAULT_SIZE == (64, 64)


def test_the_largest_native_size_is_still_kept(tmp_path):
    side = data.MAX_NATIVE_SIDE
    for label in "ab":
        _save(tmp_path / label / "x.png", _flat((1, 2, 3), height=side, width=side))

    assert data.load_dataset(tmp_path).size == (side, side)


def test_an_explicit_size_resizes_every_image(tmp_path):
    left_right = np.zeros((8, 8, 3), dtype=np.uint8)
    left_right[:, 4:] = 200
    _save(tmp_path / "a" / "x.png", left_right)
    _save(tmp_path / "b" / "y.png", _flat((5, 6, 7), height=3, width=11))

    dataset = data.load_dataset(tmp_path, size=(4, 2))

    assert dataset.images.shape == (2, 3, 4, 2)
    assert (dataset.images[0, :, :, 0] == 0).all() and (dataset.images[0, :, :, 1] == 200).all()
    assert (dataset.images[1] == np.array([5, 6, 7])[:, None, None]).all()


def test_shrinking_averages_blocks_of_pixels(tmp_path):
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (8, 12, 3), dtype=np.uint8)
    path = _save(tmp_path / "x.png", pixels)

    loaded = data.load_image(path, (4, 3))

    block_means = pixels.reshape(4, 2, 3, 4, 3).mean(axis=(1, 3))
    # Pillow resizes one axis after the other, rounding to 8 bits in between.
    error = np.abs(loaded.transpose(1, 2, 0) - block_means)
    assert error.max() <= 1 and error.mean() < 0.5


def test_enlarging_repeats_pixels(tmp_path):
    pixels = np.array([[[10, 20, 30], [200, 100, 0]]], dtype=np.uint8)
    path = _save(tmp_path / "x.png", pixels)

    loaded = data.load_image(path, (2, 4))

    expected = np.repeat(np.repeat(pixels, 2, axis=0), 2, axis=1).transpose(2, 0, 1)
    np.testing.assert_array_equal(loaded, expected)


@pytest.mark.parametrize(
    "size", [(0, 4), (4, -1), (1025, 4), (4,), (4, 4, 4), (2.5, 3), "ab", None]
)
def test_an_invalid_size_is_refused(tmp_path, size):
    path = _save(tmp_path / "x.png", _flat((1, 1, 1)))
    with pytest.raises(ValueError, match="size"):
        data.load_image(path, size)


def test_the_largest_allowed_side_is_accepted(tmp_path):
    path = _save(tmp_path / "x.png", _flat((1, 2, 3)))
    assert data.load_image(path, (data.MAX_SIDE, 1)).shape == (3, data.MAX_SIDE, 1)


# ---------------------------------------------------------------------------------------------
# Progress, cancel, lists of files, single images
# ---------------------------------------------------------------------------------------------


def test_progress_counts_both_passes_with_the_default_size(tmp_path):
    for index in range(3):
        _save(tmp_path / "a" / f"{index}.png", _flat((1, 1, 1)))
    _save(tmp_path / "b" / "x.png", _flat((1, 1, 1)))
    calls = []

    data.load_dataset(tmp_path, progress=lambda done, total: calls.append((done, total)))

    assert calls == [(done, 8) for done in range(9)]


def test_progress_counts_one_pass_with_a_given_size(tmp_path):
    _save(tmp_path / "a" / "x.png", _flat((1, 1, 1)))
    _save(tmp_path / "b" / "x.png", _flat((1, 1, 1)))
    calls = []

    data.load_dataset(tmp_path, (4, 4), progress=lambda done, total: calls.append((done, total)))

    assert calls == [(0, 2), (1, 2), (2, 2)]


def test_cancel_stops_the_load_before_the_next_file(tmp_path):
    for index in range(5):
        _save(tmp_path / "a" / f"{index}.png", _flat((1, 1, 1)))
    _save(tmp_path / "b" / "x.png", _flat((1, 1, 1)))
    calls = []

    def cancel() -> bool:
        return len(calls) > 2

    with pytest.raises(LoadCancelled):
        data.load_dataset(tmp_path, progress=lambda done, total: calls.append(done), cancel=cancel)

    assert calls == [0, 1, 2]


def test_dataset_from_files_keeps_the_given_order_labels_and_names(tmp_path):
    red = _save(tmp_path / "red.png", _flat((255, 0, 0)))
    blue = _save(tmp_path / "blue.png", _flat((0, 0, 255)))
    bad = tmp_path / "bad.png"
    bad.write_text("no")

    dataset = data.dataset_from_files([(blue, 1), (bad, 0), (red, 1)], class_names=("no", "yes"))

    assert dataset.labels.tolist() == [1, 1]
    assert dataset.paths == (str(blue), str(red))
    assert dataset.class_names == ("no", "yes")
    assert dataset.skipped == ((str(bad), "not an image Pillow can read"),)
    assert dataset.label_counts() == (0, 2)


def test_dataset_from_files_refuses_a_bad_label_and_an_unusable_list(tmp_path):
    path = _save(tmp_path / "x.png", _flat((1, 1, 1)))
    with pytest.raises(ValueError, match="label must be 0 or 1"):
        data.dataset_from_files([(path, 2)])
    with pytest.raises(ValueError, match="label must be 0 or 1"):
        data.dataset_from_files([(path, 0.5)])
    missing = tmp_path / "missing.png"
    with pytest.raises(DatasetError, match="no usable image among 1 file: 1 file: cannot be read"):
        data.dataset_from_files([(missing, 0)])


def test_load_image_returns_channels_first_uint8(tmp_path):
    pixels = np.random.default_rng(2).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    path = _save(tmp_path / "x.png", pixels)

    loaded = data.load_image(path, (5, 7))

    assert loaded.dtype == np.uint8 and loaded.flags.c_contiguous
    np.testing.assert_array_equal(loaded, pixels.transpose(2, 0, 1))


def test_load_image_raises_image_error_with_a_reason(tmp_path):
    path = tmp_path / "x.png"
    path.write_text("<svg xmlns='http://www.w3.org/2000/svg'></svg>")

    with pytest.raises(ImageError) as error:
        data.load_image(path, (4, 4))

    assert "SVG" in error.value.reason


# ---------------------------------------------------------------------------------------------
# Dataset
# ---------------------------------------------------------------------------------------------


def test_a_dataset_is_read_only_and_independent_of_the_arrays_it_was_given():
    images = np.zeros((2, 3, 2, 2), dtype=np.uint8)
    labels = np.array([0, 1], dtype=np.int32)

    dataset = Dataset(images, labels, ("a", "b"), ("x", "y"))
    images[:] = 7
    labels[:] = 1

    assert (dataset.images == 0).all() and dataset.labels.tolist() == [0, 1]
    assert dataset.labels.dtype == np.int64
    assert not dataset.images.flags.writeable and not dataset.labels.flags.writeable
    assert dataset.images.flags.c_contiguous
    with pytest.raises(ValueError):
        dataset.images[0, 0, 0, 0] = 1


def test_a_read_only_view_is_copied_too():
    base = np.zeros((1, 3, 2, 2), dtype=np.uint8)
    view = base.view()
    view.flags.writeable = False

    dataset = Dataset(view, [0], ("a", "b"), ("x",))
    base[:] = 9

    assert (dataset.images == 0).all()


@pytest.mark.parametrize(
    ("images", "labels", "paths", "message"),
    [
        (np.zeros((1, 3, 2, 2), np.float32), [0], ["x"], "uint8"),
        (np.zeros((1, 1, 2, 2), np.uint8), [0], ["x"], r"\(N, 3, H, W\)"),
        (np.zeros((1, 3, 2, 2), np.uint8), [2], ["x"], "0 or 1"),
        (np.zeros((1, 3, 2, 2), np.uint8), [0.0], ["x"], "integers"),
        (np.zeros((1, 3, 2, 2), np.uint8), [0, 1], ["x"], "integers"),
        (np.zeros((1, 3, 2, 2), np.uint8), [0], [], "1 images but 0 paths"),
    ],
)
def test_an_inconsistent_dataset_is_refused(images, labels, paths, message):
    with pytest.raises(ValueError, match=message):
        Dataset(images, np.array(labels), ("a", "b"), tuple(paths))


def test_an_empty_dataset_is_refused():
    with pytest.raises(DatasetError):
        Dataset(np.zeros((0, 3, 2, 2), np.uint8), np.zeros(0, np.int64), ("a", "b"), ())


def test_len_size_label_counts_and_repr():
    dataset = _dataset([0, 1, 1], size=(4, 5))

    assert len(dataset) == 3
    assert dataset.size == (4, 5)
    assert dataset.label_counts() == (1, 2)
    assert repr(dataset) == (
        "Dataset(3 images of 4x5, labels 0/1: 1/2, class_names=('a', 'b'), 0 skipped)"
    )


def test_with_label_changes_one_label_in_a_new_dataset():
    dataset = _dataset([0, 0, 1])

    changed = dataset.with_label(1, 1)

    assert changed.labels.tolist() == [0, 1, 1]
    assert dataset.labels.tolist() == [0, 0, 1]
    assert changed.images is dataset.images
    assert not changed.labels.flags.writeable
    with pytest.raises(IndexError):
        dataset.with_label(3, 0)
    with pytest.raises(IndexError):
        dataset.with_label(-1, 0)
    with pytest.raises(ValueError):
        dataset.with_label(0, 2)


def test_without_removes_images_with_their_labels_and_paths():
    dataset = _dataset([0, 1, 0, 1])

    smaller = dataset.without([0, 2])

    np.testing.assert_array_equal(smaller.images, dataset.images[[1, 3]])
    assert smaller.labels.tolist() == [1, 1]
    assert smaller.paths == (dataset.paths[1], dataset.paths[3])
    assert len(dataset) == 4
    assert dataset.without([]).paths == dataset.paths


def test_without_refuses_to_remove_everything_or_an_unknown_index():
    dataset = _dataset([0, 1])
    with pytest.raises(DatasetError, match="cannot remove all 2 images"):
        dataset.without([1, 0])
    with pytest.raises(IndexError):
        dataset.without([2])


def test_extended_appends_images_labels_paths_and_skipped_lists():
    first = Dataset(
        np.zeros((1, 3, 2, 2), np.uint8), [0], ("a", "b"), ("one",), skipped=(("bad", "why"),)
    )
    second = Dataset(
        np.ones((2, 3, 2, 2), np.uint8), [1, 0], ("0", "1"), ("two", "three"), (("worse", "why"),)
    )

    both = first.extended(second)

    assert both.images[:, 0, 0, 0].tolist() == [0, 1, 1]
    assert both.labels.tolist() == [0, 1, 0]
    assert both.paths == ("one", "two", "three")
    assert both.skipped == (("bad", "why"), ("worse", "why"))
    assert both.class_names == ("a", "b")


def test_extended_refuses_another_size():
    with pytest.raises(DatasetError, match="cannot append images of 3x2 to a dataset of 2x3"):
        _dataset([0], size=(2, 3)).extended(_dataset([1], size=(3, 2)))


def test_the_digest_covers_pixels_labels_and_size_but_not_paths():
    dataset = _dataset([0, 1, 1])
    moved = Dataset(dataset.images, dataset.labels, ("x", "y"), ("p", "q", "r"))

    assert moved.digest() == dataset.digest()
    assert dataset.with_label(0, 1).digest() != dataset.digest()
    assert _dataset([0, 1, 1], seed=1).digest() != dataset.digest()
    reshaped = Dataset(dataset.images.reshape(3, 3, 3, 2), dataset.labels, ("a", "b"), "pqr")
    assert reshaped.digest() != dataset.digest()
    expected = hashlib.sha256(
        np.array([3, 2, 3], "<i8").tobytes()
        + dataset.images.tobytes()
        + np.array([0, 1, 1], "<i8").tobytes()
    ).hexdigest()
    assert dataset.digest() == expected


# ---------------------------------------------------------------------------------------------
# Pixel statistics and scaling
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def images() -> np.ndarray:
    return np.random.default_rng(3).integers(0, 256, (5, 3, 4, 6), dtype=np.uint8)


def test_pixel_statistics_match_numpy(images):
    mean, std = data.pixel_statistics(images)

    as_float = images.astype(np.float64)
    assert mean.dtype == std.dtype == np.float64
    np.testing.assert_allclose(mean, as_float.mean(axis=(0, 2, 3)), rtol=1e-13)
    np.testing.assert_allclose(std, as_float.std(axis=(0, 2, 3)), rtol=1e-13)


def test_pixel_statistics_of_a_constant_channel():
    images = np.full((2, 3, 2, 2), 9, dtype=np.uint8)
    images[:, 1] = [[0, 255], [255, 0]]

    mean, std = data.pixel_statistics(images)

    np.testing.assert_array_equal(mean, [9.0, 127.5, 9.0])
    np.testing.assert_array_equal(std, [0.0, 127.5, 0.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_raw_keeps_the_levels(images, dtype):
    scaled = data.scale_pixels(images, "raw", dtype)

    assert scaled.dtype == dtype and scaled.shape == images.shape
    np.testing.assert_array_equal(scaled, images)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unit_divides_by_255(images, dtype):
    scaled = data.scale_pixels(images, "unit", dtype)

    assert scaled.dtype == dtype
    np.testing.assert_array_equal(scaled, (images / 255.0).astype(dtype))
    assert scaled.min() >= 0 and scaled.max() <= 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_standardize_uses_the_images_own_statistics(images, dtype):
    scaled = data.scale_pixels(images, "standardize", dtype)

    as_float = images.astype(np.float64)
    mean = as_float.mean(axis=(0, 2, 3), keepdims=True)
    std = as_float.std(axis=(0, 2, 3), keepdims=True)
    reference = ((as_float - mean) / std).astype(dtype)
    assert scaled.dtype == dtype
    # Statistics from a histogram and from numpy may differ in the last bit of float64.
    np.testing.assert_allclose(scaled, reference, rtol=1e-6 if dtype == np.float32 else 1e-12)
    np.testing.assert_allclose(scaled.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(scaled.std(axis=(0, 2, 3)), 1, rtol=1e-5)


def test_float32_standardize_is_the_float64_result_rounded_once(images):
    stats = (np.array([100.3, 17.0, 250.9]), np.array([3.7, 60.1, 0.3]))

    single = data.scale_pixels(images, "standardize", np.float32, stats)
    double = data.scale_pixels(images, "standardize", np.float64, stats)

    reference = (images - stats[0][:, None, None]) / stats[1][:, None, None]
    np.testing.assert_array_equal(double, reference)
    np.testing.assert_array_equal(single, reference.astype(np.float32))


def test_standardize_with_given_statistics(images):
    mean, std = np.array([10.0, 20.0, 30.0]), np.array([2.0, 4.0, 8.0])

    scaled = data.scale_pixels(images, "standardize", "float64", (mean, std))

    np.testing.assert_array_equal(scaled[:, 2], (images[:, 2] - 30.0) / 8.0)


def test_a_constant_channel_is_centred_but_not_divided():
    images = np.full((2, 3, 2, 2), 40, dtype=np.uint8)
    images[0, 0] = 60

    scaled = data.scale_pixels(images, "standardize", np.float64)

    assert np.isfinite(scaled).all()
    assert (scaled[:, 1:] == 0).all()
    given = data.scale_pixels(images, "standardize", np.float64, ([0, 30, 0], [1, 0, 1]))
    assert (given[:, 1] == 10).all()


@pytest.mark.parametrize(
    ("mode", "dtype", "stats", "message"),
    [
        ("minmax", np.float64, None, "mode must be"),
        ("unit", np.int32, None, "dtype must be float32 or float64"),
        ("unit", np.float16, None, "dtype must be float32 or float64"),
        ("standardize", np.float64, ([1, 2], [1, 1]), "shape"),
        ("standardize", np.float64, ([1, 2, 3], [1, -1, 1]), "std >= 0"),
        ("standardize", np.float64, ([1, np.nan, 3], [1, 1, 1]), "finite"),
    ],
)
def test_scaling_refuses_bad_arguments(images, mode, dtype, stats, message):
    with pytest.raises(ValueError, match=message):
        data.scale_pixels(images, mode, dtype, stats)


def test_scaling_refuses_images_that_are_not_uint8_nchw():
    with pytest.raises(ValueError, match="uint8"):
        data.scale_pixels(np.zeros((1, 3, 2, 2)), "raw", np.float64)
    with pytest.raises(ValueError, match="H, W"):
        data.pixel_statistics(np.zeros((1, 4, 2, 2), np.uint8))


# ---------------------------------------------------------------------------------------------
# The bundled examples
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", data.EXAMPLES)
def test_example_path_is_an_existing_absolute_folder(name):
    folder = data.example_path(name)

    assert folder.is_absolute() and folder.is_dir()
    assert folder.parent.name == "examples"


def test_an_unknown_example_is_refused():
    with pytest.raises(ValueError, match="example must be one of"):
        data.example_path("mnist")


def test_the_question_example_is_a_cross_then_a_circle():
    dataset = data.load_example("question")

    assert len(dataset) == 2 and dataset.size == (32, 32)
    assert dataset.labels.tolist() == [0, 1]
    assert dataset.class_names == ("cross", "circle")
    assert Path(dataset.paths[0]).name == "cross.png"
    cross, circle = dataset.images.astype(int)
    white = np.array([255, 255, 255])
    # Both on white, corners untouched.
    assert (cross[:, 0, 0] == white).all() and (circle[:, 0, 0] == white).all()
    # The cross covers its centre; the ring leaves its centre white and covers a point on it.
    assert (cross[:, 16, 16] != white).all() and (circle[:, 16, 16] == white).all()
    assert (circle[:, 16, 16 + 9] != white).all()
    # One saturated colour, neither black, white nor grey.
    colours = {tuple(cross[:, 16, 16]), tuple(circle[:, 16, 16 + 9])}
    assert len(colours) == 1
    (colour,) = colours
    assert max(colour) - min(colour) > 100

    # Same size: both span the same columns of the middle row.
    def span(image):
        columns = np.flatnonzero((image[:, 16, :] != 255).any(axis=0))
        return columns[0], columns[-1]

    assert span(cross) == span(circle) == (5, 26)


def test_the_shapes_example_has_forty_varied_images_per_class():
    dataset = data.load_example("shapes")

    assert dataset.label_counts() == (40, 40)
    assert dataset.size == (32, 32)
    assert dataset.class_names == ("cross", "circle")
    assert dataset.skipped == ()
    corners = {tuple(image[:, 0, 0]) for image in dataset.images}
    assert (255, 255, 255) in corners and len(corners) > 20
    assert len({image.tobytes() for image in dataset.images}) == 80


def test_the_bundled_examples_are_what_the_generator_draws(tmp_path):
    written = make_examples.write_examples(tmp_path)

    bundled = sorted(
        path.relative_to(data.example_path("question").parent)
        for path in data.example_path("question").parent.rglob("*.png")
    )
    assert sorted(path.relative_to(tmp_path) for path in written) == bundled
    for relative in bundled:
        fresh = np.asarray(Image.open(tmp_path / relative))
        shipped = np.asarray(Image.open(data.example_path("question").parent / relative))
        np.testing.assert_array_equal(fresh, shipped, err_msg=str(relative))
        assert shipped.shape == (32, 32, 3)


# -- image lists ----------------------------------------------------------------------------------


def _list(folder: Path, text: str) -> Path:
    path = folder / "images.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_an_image_list_keeps_its_order_labels_and_class_names(tmp_path):
    red = _save(tmp_path / "imgs" / "red.png", _flat((255, 0, 0)))
    _save(tmp_path / "imgs" / "green.png", _flat((0, 255, 0)))
    _save(tmp_path / "blue.png", _flat((0, 0, 255)))
    listed = _list(
        tmp_path,
        "path,label,class_name\n"
        f'imgs/green.png,1,circle\n{red},0,"cross, red"\n\nblue.png,1,circle\n',
    )
    dataset = data.load_image_list(listed)
    assert dataset.labels.tolist() == [1, 0, 1]
    assert dataset.class_names == ("cross, red", "circle")
    assert [Path(p).name for p in dataset.paths] == ["green.png", "red.png", "blue.png"]
    assert dataset.images[:, :, 0, 0].tolist() == [[0, 255, 0], [255, 0, 0], [0, 0, 255]]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "first line must be 'path,label,class_name'"),
        ("file,label\na.png,0\n", "first line must be"),
        ("path,label,class_name\na.png,0\n", "line 2: expected 3 values, got 2"),
        ("path,label,class_name\na.png,2,x\n", "line 2: the label must be 0 or 1"),
        ("path,label,class_name\n,0,x\n", "line 2: the label must be 0 or 1 and the path given"),
        ("path,label,class_name\na.png,0,x\nb.png,0,y\n", "label 0 is named 'x' above, 'y'"),
        ("path,label,class_name\na.png,0,x\n", "both labels, 0 and 1; it has label 0"),
        ("path,label,class_name\na.png,0,x\nmissing.png,1,y\n", "no usable image of label 1"),
    ],
)
def test_a_bad_image_list_is_refused_naming_the_line(tmp_path, text, expected):
    _save(tmp_path / "a.png", _flat((1, 2, 3)))
    with pytest.raises(DatasetError, match=re.escape(expected)):
        data.load_image_list(_list(tmp_path, text))


def test_an_unreadable_image_list_is_a_dataset_error(tmp_path):
    (tmp_path / "images.csv").write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(DatasetError, match="cannot read the image list"):
        data.load_image_list(tmp_path / "images.csv")
    with pytest.raises(DatasetError, match="cannot read the image list"):
        data.load_image_list(tmp_path / "absent.csv")


def test_an_image_list_from_a_spreadsheet_loads(tmp_path):
    # Byte-order mark, Windows line ends, a quoted cell over two lines, spaces kept as written.
    _save(tmp_path / " a.png", _flat((9, 9, 9)))
    _save(tmp_path / "b.png", _flat((7, 7, 7)))
    text = 'path,label,class_name\r\n a.png, 0 ," x"\r\nb.png,1,"two\r\nlines"\r\n'
    path = tmp_path / "images.csv"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    dataset = data.load_image_list(path)
    assert dataset.class_names == (" x", "two\r\nlines")
    assert dataset.images[:, 0, 0, 0].tolist() == [9, 7]
    bad = tmp_path / "bad.csv"
    bad.write_text('path,label,class_name\na.png,0,"x\ny"\nb.png,3,z\n', encoding="utf-8")
    with pytest.raises(DatasetError, match="line 4: the label"):  # lines, not rows
        data.load_image_list(bad)


def test_each_image_keeps_the_size_of_its_file_and_which_were_resized(tmp_path):
    import pickle

    _save(tmp_path / "a" / "one.png", _flat((1, 1, 1)))
    _save(tmp_path / "a" / "wide.png", _flat((2, 2, 2), height=4, width=10))
    _save(tmp_path / "b" / "two.png", _flat((3, 3, 3)))
    dataset = data.load_dataset(tmp_path)
    assert dataset.size == (4, 4)
    assert dataset.native_sizes == ((4, 4), (4, 10), (4, 4))
    assert dataset.resized() == [1]
    assert dataset.without([0]).native_sizes == ((4, 10), (4, 4))
    assert dataset.extended(_dataset([0], size=(4, 4))).native_sizes[-1] is None
    assert pickle.loads(pickle.dumps(dataset)).native_sizes == dataset.native_sizes
    assert _dataset([0, 1]).native_sizes == (None, None) and _dataset([0, 1]).resized() == []
    with pytest.raises(ValueError, match="native sizes"):
        Dataset(dataset.images, dataset.labels, ("a", "b"), dataset.paths, (), ((4, 4),))

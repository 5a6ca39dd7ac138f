"""Filter snapshots: what the PNG shows, and what save_snapshot writes (or refuses to write)."""

import dataclasses
import errno
import json
import math
import os

import numpy as np
import pytest
from PIL import Image

from model import snapshot
from model.colormap import DIVERGING_LUT, diverging_rgb
from model.config import TrainingConfig
from model.data import load_example
from model.files import SaveError, stem_of
from model.presets import preset_config
from model.record import METRIC_NAMES
from model.session import TrainingSession
from model.snapshot import (
    SNAPSHOT_SUFFIXES,
    filter_layout,
    group_limits,
    render_filters,
    save_snapshot,
)


@pytest.fixture(scope="module")
def seed_session():
    """The question's setup: iteration 0 and the update that kills the filter."""
    session = TrainingSession(load_example("question"), preset_config("seed"))
    session.step()
    return session


@pytest.fixture(scope="module")
def initial(seed_session):
    return seed_session.record(0)


@pytest.fixture(scope="module")
def after_death(seed_session):
    return seed_session.record(1)


def _pixels(image):
    return np.asarray(image.convert("RGB")).astype(int)


def _cell(pixels, box):
    left, top, right, bottom = box
    return pixels[top:bottom, left:right]


def _blueish(rgb):
    return rgb[2] > rgb[0] + 40


def _redish(rgb):
    return rgb[0] > rgb[2] + 40


def _strict_json(path):
    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)


# ---------------------------------------------------------------------------------------------
# The picture
# ---------------------------------------------------------------------------------------------


def test_initial_snapshot_shows_weights_only(initial):
    layout = filter_layout(initial)
    image = render_filters(initial)
    assert image.mode == "RGB"
    assert layout.groups == ("weights",)
    assert image.size == layout.size
    width, height = image.size
    # One filter of 3 heatmaps of 3x3 cells of at least 40 px, plus labels and a colour bar.
    assert 3 * 3 * 40 < width < 1200
    assert 3 * 40 < height < 600


def test_after_an_update_three_groups_side_by_side(initial, after_death):
    layout = filter_layout(after_death)
    assert layout.groups == ("weights", "gradient", "update")
    assert render_filters(after_death).width > 2.5 * render_filters(initial).width


def test_cells_are_coloured_by_sign_on_the_group_scale(after_death):
    """After the fatal update every weight is tens of thousands negative (blue), the gradient
    that caused it positive (red) and the update negative (blue)."""
    layout = filter_layout(after_death)
    pixels = _pixels(render_filters(after_death))
    groups = snapshot.filter_groups(after_death)
    limits = group_limits(groups)
    for name, values in groups.items():
        for (f, channel, i, j), value in np.ndenumerate(values):
            left, top, _, _ = layout.cell_box(name, f, channel, i, j)
            # Near the cell's corner: inside the border, away from the number in the middle.
            sample = pixels[top + 2, left + 2]
            assert tuple(sample) == tuple(diverging_rgb(value, limits[name])), (name, f, i, j)
            assert _blueish(sample) if value < 0 else _redish(sample), (name, value, sample)
    assert np.all(groups["weights"] < -1000) and np.all(groups["gradient"] > 0)


def test_positive_initial_weights_are_red_and_cells_have_borders(initial):
    layout = filter_layout(initial)
    pixels = _pixels(render_filters(initial))
    weights = initial.params["conv.weight"]
    strong = np.argwhere(weights > 0.5)
    assert len(strong) > 0
    for f, channel, i, j in strong:
        left, top, _, _ = layout.cell_box("weights", f, channel, i, j)
        assert _redish(pixels[top + 2, left + 2])
        assert tuple(pixels[top - 1, left + 2]) == snapshot.BORDER
        assert tuple(pixels[top + 2, left - 1]) == snapshot.BORDER


def test_values_are_written_in_contrasting_ink(initial, after_death):
    for record in (initial, after_death):
        layout = filter_layout(record)
        assert layout.cell_font_size is not None
        pixels = _pixels(render_filters(record))
        for name, values in snapshot.filter_groups(record).items():
            for (f, channel, i, j), _ in np.ndenumerate(values):
                cell = _cell(pixels, layout.cell_box(name, f, channel, i, j))
                luminance = cell @ np.array([0.299, 0.587, 0.114])
                if luminance[1, 1] > 128:  # a light cell: dark digits
                    assert (luminance < 60).sum() >= 10, (name, f, channel, i, j)
                else:
                    assert (luminance > 200).sum() >= 10, (name, f, channel, i, j)


def test_no_text_in_cells_too_small_for_it():
    session = TrainingSession(
        load_example("question"), preset_config("recommended", kernel_size=13)
    )
    record = session.latest
    layout = filter_layout(record)
    assert layout.cell < 20 and layout.cell_font_size is None
    pixels = _pixels(render_filters(record))
    left, top, right, bottom = layout.cell_box("weights", 0, 0, 6, 6)
    assert len(np.unique(pixels[top:bottom, left:right].reshape(-1, 3), axis=0)) == 1


def test_colour_bar_runs_from_blue_through_white_to_red(after_death):
    layout = filter_layout(after_death)
    pixels = _pixels(render_filters(after_death))
    row = pixels[layout.bars_top + snapshot.BAR_HEIGHT // 2]
    for group in range(len(layout.groups)):
        left = layout.group_left(group)
        right = left + layout.group_width - 1
        # (the bar's first pixel column: the scale's end colour, give or take its neighbour)
        assert np.abs(row[left + 1].astype(int) - DIVERGING_LUT[0].astype(int)).max() <= 4
        assert _redish(row[right - 1])
        middle = row[(left + right) // 2]
        assert middle.min() > 230
    # Tick labels are drawn below the bar.
    below = pixels[layout.bars_top + snapshot.BAR_HEIGHT + snapshot.TICK :][:20]
    assert (below.sum(axis=2) < 200).sum() > 50


def test_fixed_limits_are_used_instead_of_the_data_range(after_death):
    layout = filter_layout(after_death)
    pixels = _pixels(render_filters(after_death, limits={"weights": 1e6}))
    value = after_death.params["conv.weight"][0, 0, 0, 0]
    left, top, _, _ = layout.cell_box("weights", 0, 0, 0, 0)
    sample = pixels[top + 2, left + 2]
    assert tuple(sample) == tuple(diverging_rgb(value, 1e6))
    # -6e4 on a ±1e6 scale is pale, not the dark blue of the automatic scale.
    assert sample.min() > 150


@pytest.mark.parametrize("limits", [{"weights": 0}, {"weights": math.nan}, {"bias": 1.0}])
def test_bad_limits_are_refused(initial, limits):
    with pytest.raises(ValueError):
        render_filters(initial, limits=limits)


def test_all_zero_gradient_still_renders():
    """After the filter died its gradient is exactly 0: the scale falls back to ±1."""
    session = TrainingSession(load_example("question"), preset_config("seed"))
    session.run(2, pause_on_findings=False)
    record = session.latest
    assert record.dead_filters == (0,) and not np.any(record.grads["conv.weight"])
    assert group_limits(snapshot.filter_groups(record))["gradient"] == 1.0
    assert render_filters(record).size == filter_layout(record).size


# ---------------------------------------------------------------------------------------------
# Saving
# ---------------------------------------------------------------------------------------------


def test_save_writes_png_npy_strict_json_and_npz(seed_session, after_death, tmp_path):
    config = seed_session.config
    paths = save_snapshot(after_death, config, after_death.findings, tmp_path)
    assert [p.name for p in paths] == [
        "filters-iter000001.png",
        "filters-iter000001.npy",
        "filters-iter000001.json",
        "filters-iter000001.npz",
    ]
    with Image.open(paths[0]) as image:
        caption = snapshot.snapshot_caption(after_death, config)
        assert image.size == filter_layout(after_death, caption).size
    weights = np.load(paths[1], allow_pickle=False)
    assert weights.dtype == after_death.params["conv.weight"].dtype
    assert np.array_equal(weights, after_death.params["conv.weight"])
    data = _strict_json(paths[2])
    assert data["iteration"] == 1
    assert data["seed"] == config.seed
    assert data["learning_rate"] == config.learning_rate
    assert TrainingConfig.from_dict(data["config"]) == config
    assert np.array_equal(np.array(data["conv_weight"]), weights)
    assert np.array_equal(np.array(data["conv_weight_update"]), after_death.update["conv.weight"])
    assert data["findings"] == [f.to_dict() for f in after_death.findings]
    assert any(f["code"] == "dead_filter" for f in data["findings"])
    assert list(data["metrics"]) == list(METRIC_NAMES)
    assert data["metrics"]["dead_fraction"] == 1.0


def test_the_npz_holds_every_array_of_the_iteration_as_trained(seed_session, after_death, tmp_path):
    """Both layers' parameters, gradient, update and momentum, each image's logit, probability
    and loss, the batch and the maps: bit for bit, in the run's dtype (for checking another
    implementation against this one)."""
    paths = save_snapshot(after_death, seed_session.config, (), tmp_path, "all")
    with np.load(paths[3], allow_pickle=False) as npz:
        arrays = dict(npz)
    record = after_death
    for name in ("conv.weight", "conv.bias", "classifier.weight", "classifier.bias"):
        assert arrays[name].dtype == record.params[name].dtype
        assert np.array_equal(arrays[name], record.params[name])
        assert np.array_equal(arrays[f"grad.{name}"], record.grads[name])
        assert np.array_equal(arrays[f"update.{name}"], record.update[name])
        assert np.array_equal(arrays[f"velocity.{name}"], record.velocity[name])
    for name in ("logits", "probabilities", "losses", "pre_activation", "activation"):
        assert np.array_equal(arrays[name], getattr(record, name))
    assert arrays["batch"].tolist() == list(record.batch) == [0]
    assert arrays["classifier.weight"].shape == (1 * 32 * 32,)
    described = _strict_json(paths[2])["npz"]
    assert described == {"arrays": sorted(arrays), "left_out": []}


def test_large_or_dropped_maps_are_left_out_of_the_npz_and_the_json_says_so(
    seed_session, after_death, tmp_path, monkeypatch
):
    monkeypatch.setattr(snapshot, "MAX_MAP_VALUES", 100)
    paths = save_snapshot(after_death, seed_session.config, (), tmp_path, "big")
    assert "activation" not in np.load(paths[3]).files
    assert _strict_json(paths[2])["npz"]["left_out"] == ["no maps: 2,048 values each, over 100"]
    dropped = dataclasses.replace(after_death, pre_activation=None, activation=None, velocity=None)
    paths = save_snapshot(dropped, seed_session.config, (), tmp_path, "dropped")
    assert "pre_activation" not in np.load(paths[3]).files
    assert _strict_json(paths[2])["npz"]["left_out"] == [
        "no momentum buffers: not kept for this iteration",
        "no maps: not kept for this iteration (the history drops them)",
    ]


def test_json_has_no_nan_tokens_at_iteration_zero(seed_session, initial, tmp_path):
    paths = save_snapshot(initial, seed_session.config, initial.findings, tmp_path)
    data = _strict_json(paths[2])
    assert data["conv_weight_gradient"] is None and data["conv_weight_update"] is None
    assert data["metrics"]["conv_grad_norm"] is None  # NaN at iteration 0


def test_non_finite_values_become_null_or_inf_strings(seed_session, after_death, tmp_path):
    metrics = dict(after_death.metrics, conv_update_ratio=math.inf, loss=-math.inf)
    record = dataclasses.replace(after_death, metrics=metrics)
    paths = save_snapshot(record, seed_session.config, (), tmp_path, "odd")
    data = _strict_json(paths[2])
    assert data["metrics"]["conv_update_ratio"] == "inf"
    assert data["metrics"]["loss"] == "-inf"
    assert snapshot.json_ready({"a": np.array([math.nan, 1.0])}) == {"a": [None, 1.0]}


def test_float32_weights_keep_their_dtype(tmp_path):
    session = TrainingSession(
        load_example("question"), preset_config("recommended", dtype="float32")
    )
    record = session.step()
    paths = save_snapshot(record, session.config, record.findings, tmp_path)
    weights = np.load(paths[1])
    assert weights.dtype == np.float32
    assert np.array_equal(weights, record.params["conv.weight"])
    assert _strict_json(paths[2])["dtype"] == "float32"


def test_extra_fields_are_merged_but_cannot_replace_standard_ones(seed_session, initial, tmp_path):
    extra = {"dataset": {"digest": "abc"}}
    paths = save_snapshot(initial, seed_session.config, (), tmp_path, extra=extra)
    assert _strict_json(paths[2])["dataset"] == {"digest": "abc"}
    with pytest.raises(ValueError, match="iteration"):
        save_snapshot(initial, seed_session.config, (), tmp_path, "other", extra={"iteration": 5})
    assert not list(tmp_path.glob("other*"))


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="Unix permissions")
def test_saved_files_are_readable_as_any_file_the_user_makes(seed_session, initial, tmp_path):
    """A save is written as a temporary file (owner-only, 0600) and moved into place; it then
    gets the permissions the user's umask gives new files, so a teacher can read it too."""
    umask = os.umask(0)
    os.umask(umask)
    paths = save_snapshot(initial, seed_session.config, initial.findings, tmp_path)
    for path in paths:
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_file_system_refusing_permissions_still_saves(
    seed_session, initial, tmp_path, monkeypatch
):
    """FAT or a network share may refuse chmod: the save goes on without it."""
    import errno

    from model import files

    def refuse(*_args):
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(files.os, "fchmod", refuse, raising=False)
    paths = save_snapshot(initial, seed_session.config, initial.findings, tmp_path)
    assert all(path.stat().st_size > 0 for path in paths)


def test_existing_files_refuse_the_save_and_nothing_is_written(
    seed_session, initial, after_death, tmp_path
):
    config = seed_session.config
    png, npy, json_path, npz = save_snapshot(after_death, config, (), tmp_path, "snap")
    npy.unlink()
    before = png.read_bytes()
    with pytest.raises(SaveError, match=r"snap\.png.*snap\.json.*snap\.npz"):
        save_snapshot(initial, config, (), tmp_path, "snap")
    assert not npy.exists()
    assert png.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snap.json", "snap.npz", "snap.png"]


def test_overwrite_replaces_all_four(seed_session, initial, after_death, tmp_path):
    config = seed_session.config
    save_snapshot(after_death, config, (), tmp_path, "snap")
    paths = save_snapshot(initial, config, (), tmp_path, "snap", overwrite=True)
    assert np.array_equal(np.load(paths[1]), initial.params["conv.weight"])
    assert _strict_json(paths[2])["iteration"] == 0
    assert np.load(paths[3])["batch"].size == 0
    names = ["snap.json", "snap.npy", "snap.npz", "snap.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == names


def test_a_failed_write_writes_nothing_and_replaces_nothing(
    seed_session, initial, after_death, tmp_path, monkeypatch
):
    """A review: replacing a snapshot on a disk that filled up said "not saved" but had
    already replaced the picture and the weights, leaving the old record beside them."""
    from model import files

    real_write = files._write_temporary

    def full_on_json(target, payload, temp_dir):
        if target.suffix == ".json":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(target, payload, temp_dir)

    monkeypatch.setattr(files, "_write_temporary", full_on_json)
    with pytest.raises(SaveError, match=r"snap\.json: the disk is full"):
        save_snapshot(initial, seed_session.config, (), tmp_path, "snap")
    assert list(tmp_path.iterdir()) == []

    monkeypatch.setattr(files, "_write_temporary", real_write)
    old = save_snapshot(after_death, seed_session.config, (), tmp_path, "snap")
    before = {path.name: path.read_bytes() for path in old}
    monkeypatch.setattr(files, "_write_temporary", full_on_json)
    with pytest.raises(SaveError, match="the disk is full"):
        save_snapshot(initial, seed_session.config, (), tmp_path, "snap", overwrite=True)
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == before


def test_a_replace_that_fails_half_way_puts_the_old_set_back(
    seed_session, initial, after_death, tmp_path, monkeypatch
):
    """A review: with the new .npz unable to take the old one's place (held open on Windows),
    the picture, weights and record were already the new ones."""
    from model import files

    old = save_snapshot(after_death, seed_session.config, (), tmp_path, "snap")
    before = {path.name: path.read_bytes() for path in old}
    real_replace = os.replace

    def held_open(src, dst):
        if str(dst).endswith("snap.npz") and str(src).endswith(".tmp"):
            raise PermissionError(errno.EACCES, "The process cannot access the file")
        return real_replace(src, dst)

    monkeypatch.setattr(files.os, "replace", held_open)
    with pytest.raises(SaveError, match=r"snap\.npz: permission denied"):
        save_snapshot(initial, seed_session.config, (), tmp_path, "snap", overwrite=True)
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == before  # no leftovers


def test_a_folder_where_a_snapshot_file_goes_refuses_the_save_untouched(
    seed_session, initial, after_death, tmp_path
):
    save_snapshot(after_death, seed_session.config, (), tmp_path, "snap")
    (tmp_path / "snap.npz").unlink()
    (tmp_path / "snap.npz").mkdir()
    (tmp_path / "snap.npz" / "mine.txt").write_text("keep")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    with pytest.raises(SaveError, match="a folder of that name is there"):
        save_snapshot(initial, seed_session.config, (), tmp_path, "snap", overwrite=True)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before
    assert (tmp_path / "snap.npz" / "mine.txt").read_text() == "keep"


def test_missing_folder_is_a_save_error(seed_session, initial, tmp_path):
    with pytest.raises(SaveError, match="folder does not exist"):
        save_snapshot(initial, seed_session.config, (), tmp_path / "missing" / "deeper")


def test_a_file_in_place_of_the_folder_is_a_save_error(seed_session, initial, tmp_path):
    # Works as root too, unlike a read-only folder (root writes into those regardless).
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with pytest.raises(SaveError, match="not a folder"):
        save_snapshot(initial, seed_session.config, (), blocker)


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0,
    reason="root can write into read-only folders; the two tests above cover failing writes",
)
def test_read_only_folder_is_a_save_error(seed_session, initial, tmp_path):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(SaveError, match="permission denied"):
            save_snapshot(initial, seed_session.config, (), folder)
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o700)


@pytest.mark.parametrize(
    ("chosen", "stem"),
    [("a/run.png", "run"), ("a/run.PNG", "run"), ("a/run.json", "run"), ("a/run.v2", "run.v2")],
)
def test_the_stem_of_a_chosen_name_drops_only_a_suffix_of_the_group(chosen, stem):
    assert stem_of(chosen, SNAPSHOT_SUFFIXES) == stem


# ---------------------------------------------------------------------------------------------
# Standing alone (a learner attaching a snapshot to a question)
# ---------------------------------------------------------------------------------------------


def test_the_picture_names_the_settings_and_the_image_of_the_update(after_death):
    """The title gave the learning rate only; the all-positive init and the raw pixels, the
    other two causes of the question's death, were in the JSON alone."""
    question = load_example("question")
    config = preset_config("seed")
    assert snapshot.snapshot_caption(after_death, config, question) == (
        "filters uniform(low=0, high=1), classifier uniform(low=0, high=1)",
        "pixels raw 0..255, one image at a time, seed 4",
        "update computed on image 1 'cross.png' (cross)",
    )
    assert snapshot.snapshot_caption(after_death, config)[-1] == "update computed on image 1"
    full = dataclasses.replace(after_death, batch=np.array([0, 1]))
    assert snapshot.snapshot_caption(full, config)[-1] == "update computed on all 2 images"
    caption = snapshot.snapshot_caption(after_death, config, question)
    assert filter_layout(after_death, caption).size[1] > filter_layout(after_death).size[1]
    assert (
        render_filters(after_death, caption=caption).size
        == filter_layout(after_death, caption).size
    )


def test_a_caption_wider_than_the_filters_widens_the_picture(initial):
    narrow = render_filters(initial)
    long_line = ("x" * 150,)
    wide = render_filters(initial, caption=long_line)
    assert wide.width > narrow.width
    # The filters stay at the left: the picture grows to the right.
    left = filter_layout(initial, long_line).cell_box("weights", 0, 0, 0, 0)[0]
    assert left == filter_layout(initial).cell_box("weights", 0, 0, 0, 0)[0]


def test_names_outside_the_fonts_glyphs_are_drawn_with_question_marks(after_death):
    from model.data import Dataset

    names = Dataset(
        np.zeros((2, 3, 4, 4), np.uint8), np.array([0, 1]), ("a", "b"), ("kreuz-✕.png", "o.png")
    )
    line = snapshot.snapshot_caption(after_death, preset_config("seed"), names)[-1]
    assert line == "update computed on image 1 'kreuz-?.png' (a)"


def test_the_json_lists_every_image_so_that_batch_can_be_read(seed_session, after_death, tmp_path):
    question = load_example("question")
    paths = save_snapshot(after_death, seed_session.config, (), tmp_path, dataset=question)
    data = _strict_json(paths[2])
    assert data["images"] == [
        {"file": "cross.png", "label": 0},
        {"file": "circle.png", "label": 1},
    ]
    assert np.load(paths[3])["batch"].tolist() == [0]

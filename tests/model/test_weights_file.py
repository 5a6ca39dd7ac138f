"""Starting a run from weights in a file (model.weights_file and TrainingConfig.initial_weights)."""

import json

import numpy as np
import pytest

from inspector import cli
from model.config import ConfigError, TrainingConfig
from model.presets import preset_config
from model.report import reproduce_arguments, write_report
from model.session import TrainingSession, init_params
from model.snapshot import save_snapshot
from model.sweep import SweepSpec
from model.weights_file import COPY_NAME, WeightsFileError, read_weights, whole_network_beside


def own_weights(rng, *, filters=2, kernel=3, side=32):
    """Weights an engineer's own code might start from, in the shapes it might keep them."""
    return {
        "conv.weight": rng.normal(0, 0.1, (filters, 3, kernel, kernel)),
        "conv.bias": rng.normal(0, 0.1, filters),
        "classifier.weight": rng.normal(0, 0.01, (filters, side, side)),  # (F, H', W')
        "classifier.bias": np.array([0.25]),  # one value, not a scalar
    }


def test_a_run_from_a_snapshots_npz_goes_on_as_the_run_did(question, tmp_path):
    """Per image, no momentum: from iteration 2 of two images the order starts again at the
    first image, so the new run repeats the old one's later updates exactly."""
    config = preset_config("recommended")
    first = TrainingSession(question, config)
    first.run(2, pause_on_findings=False)
    npz = save_snapshot(first.latest, config, (), tmp_path)[3]
    first.run(3, pause_on_findings=False)

    weights = read_weights(npz)
    second = TrainingSession(question, config.with_changes(initial_weights=weights))
    second.run(3, pause_on_findings=False)
    for key, values in first.latest.params.items():
        np.testing.assert_array_equal(second.latest.params[key], values, err_msg=key)


def test_what_the_file_gives_replaces_the_draws_and_the_rest_is_drawn_as_without_it(
    question, tmp_path, rng
):
    config = preset_config("recommended")
    path = tmp_path / "filters.npy"
    conv = rng.normal(0, 1, (1, 3, 3, 3))
    np.save(path, conv)
    drawn = init_params(config, question.size)
    params = init_params(config.with_changes(initial_weights=read_weights(path)), question.size)
    np.testing.assert_array_equal(params["conv.weight"], conv)
    for key in ("conv.bias", "classifier.weight", "classifier.bias"):
        np.testing.assert_array_equal(params[key], drawn[key], err_msg=key)


def test_an_engineers_npz_in_their_shapes_is_read_in_the_networks(question, tmp_path, rng):
    arrays = own_weights(rng)
    np.savez(tmp_path / "mine.npz", **arrays)
    weights = read_weights(tmp_path / "mine.npz")
    assert weights.describe() == (
        "mine.npz (2×3×3×3 filter weights, filter biases, 2,048 classifier weights, "
        "classifier bias)"
    )
    config = preset_config("recommended", num_filters=2, initial_weights=weights)
    params = init_params(config, question.size)
    np.testing.assert_array_equal(params["classifier.weight"], arrays["classifier.weight"].ravel())
    assert params["classifier.bias"].shape == () and params["classifier.bias"] == 0.25
    # The run trains copies; the file's arrays stay as read.
    assert params["conv.weight"].flags.writeable
    assert not weights.arrays["conv.weight"].flags.writeable
    float32 = init_params(config.with_changes(dtype="float32"), question.size)
    assert float32["conv.weight"].dtype == np.float32
    np.testing.assert_array_equal(float32["conv.weight"], arrays["conv.weight"].astype(np.float32))


@pytest.mark.parametrize(
    ("arrays", "words"),
    [
        ({"W": np.zeros((1, 3, 3, 3))}, "holds W; a weights file holds conv.weight (F, 3, K, K)"),
        ({"conv.weight": np.zeros((1, 1, 3, 3))}, "(1, 1, 3, 3); filters of RGB images are"),
        ({"conv.weight": np.zeros((1, 3, 3, 2))}, "(1, 3, 3, 2); filters of RGB images are"),
        (
            {"conv.weight": np.zeros((2, 3, 3, 3)), "conv.bias": np.zeros(3)},
            "conv.bias has shape (3,); 2 filters need (2,)",
        ),
        (
            {"conv.weight": np.zeros((2, 3, 3, 3)), "classifier.weight": np.zeros((3, 4, 4))},
            "classifier.weight has shape (3, 4, 4); it is (F·H'·W',) or (F, H', W') with F = 2",
        ),
        (
            {"conv.weight": np.zeros((1, 3, 3, 3)), "classifier.bias": np.zeros(2)},
            "classifier.bias has 2 values; it is one number",
        ),
        ({"conv.weight": np.full((1, 3, 3, 3), np.nan)}, "27 values that are not finite"),
        ({"conv.weight": np.zeros((1, 3, 3, 3), dtype=bool)}, "holds bool values, not numbers"),
    ],
)
def test_a_file_that_holds_no_weights_of_this_network_is_refused_saying_why(
    tmp_path, arrays, words
):
    np.savez(tmp_path / "w.npz", **arrays)
    with pytest.raises(WeightsFileError, match="w.npz: ") as caught:
        read_weights(tmp_path / "w.npz")
    assert words in str(caught.value)


def test_files_that_are_not_numpy_arrays_are_refused_in_words(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("conv.weight = [[1, 2, 3]]")
    with pytest.raises(WeightsFileError, match="is not a NumPy .npy or .npz file"):
        read_weights(text)
    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([{"w": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(WeightsFileError, match="holds Python objects, not arrays of numbers"):
        read_weights(objects)
    with pytest.raises(WeightsFileError, match="No such file"):
        read_weights(tmp_path / "missing.npz")
    with pytest.raises(WeightsFileError, match="is a folder"):
        read_weights(tmp_path)
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"PK\x03\x04" + b"\0" * 40)
    with pytest.raises(WeightsFileError, match="cannot be read as NumPy arrays"):
        read_weights(broken)


def test_the_file_decides_the_filters_and_the_images_decide_the_classifier(question, tmp_path, rng):
    np.savez(tmp_path / "mine.npz", **own_weights(rng, side=16))
    weights = read_weights(tmp_path / "mine.npz")
    with pytest.raises(ConfigError, match="mine.npz has 2 filters of 3×3; these settings have 1"):
        preset_config("recommended", initial_weights=weights)
    config = preset_config("recommended", num_filters=2, initial_weights=weights)
    with pytest.raises(ValueError) as caught:
        config.map_size(question.size)
    assert str(caught.value) == (
        "the weights file mine.npz has 512 classifier weights (made for 16×16 maps?); 2 filters "
        "× 32×32 outputs "
        "(32×32 images, 'same' padding) need 2,048"
    )
    with pytest.raises(ValueError, match="512 classifier weights"):
        TrainingSession(question, config)
    # 'valid' padding of 3×3 on 18×18 images would fit; the filters alone fit any images.
    assert config.with_changes(padding="valid").map_size((18, 18)) == (16, 16)


def test_a_config_names_its_file_and_reads_it_back_only_if_unchanged(tmp_path, rng):
    np.savez(tmp_path / "mine.npz", **own_weights(rng))
    config = preset_config(
        "recommended", num_filters=2, initial_weights=read_weights(tmp_path / "mine.npz")
    )
    data = json.loads(json.dumps(config.to_dict()))
    assert data["initial_weights"]["file"] == str(tmp_path / "mine.npz")
    assert TrainingConfig.from_dict(data) == config
    assert config != config.with_changes(initial_weights=None)
    assert config.needs_reset(config.with_changes(initial_weights=None))
    assert config.init_text("conv") == config.init_text("classifier") == "from mine.npz"

    relative = {**data, "initial_weights": {**data["initial_weights"], "file": "mine.npz"}}
    assert TrainingConfig.from_dict(relative, base=str(tmp_path)) == config

    np.savez(tmp_path / "mine.npz", **own_weights(rng))
    with pytest.raises(ConfigError, match="is not the file this config was written with"):
        TrainingConfig.from_dict(data)


def test_diagnostics_read_the_files_signs_and_their_fixes_draw_weights_again(question, tmp_path):
    np.save(tmp_path / "positive.npy", np.full((1, 3, 3, 3), 0.5))
    config = preset_config("seed", initial_weights=read_weights(tmp_path / "positive.npy"))
    assert not config.conv_can_start_negative()
    session = TrainingSession(question, config)
    finding = next(f for f in session.latest.findings if f.code == "init_all_positive")
    assert finding.title == "All conv weights start ≥ 0 (from positive.npy)"
    fix = next(f for f in finding.fixes if "conv_init" in f.changes)
    assert config.with_changes(**fix.changes).initial_weights is None

    np.save(tmp_path / "centred.npy", np.linspace(-1, 1, 27).reshape(1, 3, 3, 3))
    centred = config.with_changes(initial_weights=read_weights(tmp_path / "centred.npy"))
    assert centred.conv_can_start_negative()
    codes = {f.code for f in TrainingSession(question, centred).latest.findings}
    assert "init_all_positive" not in codes


def test_a_sweep_draws_every_cell_and_marks_no_run_from_a_file(tmp_path, rng):
    np.save(tmp_path / "filters.npy", rng.normal(0, 0.1, (1, 3, 3, 3)))
    config = preset_config("recommended", initial_weights=read_weights(tmp_path / "filters.npy"))
    spec = SweepSpec(config, learning_rates=(0.01, 0.1), init_scales=(0.02,))
    assert all(cell.config.initial_weights is None for cell in spec.cells())
    assert spec.marker(config) is None
    assert spec.marker(config.with_changes(initial_weights=None)) is not None


def test_a_report_carries_its_weights_and_repeats_its_run(question, tmp_path, rng, monkeypatch):
    np.savez(tmp_path / "mine.npz", **own_weights(rng, filters=1))
    weights = read_weights(tmp_path / "mine.npz")
    session = TrainingSession(question, preset_config("recommended", initial_weights=weights))
    session.run(4, pause_on_findings=False)
    folder = write_report(session, tmp_path / "report", source={"example": "question"})
    (tmp_path / "mine.npz").unlink()  # the report needs its own copy only

    config = json.loads((folder / "config.json").read_text())["config"]
    assert config["initial_weights"]["file"] == COPY_NAME
    assert config["initial_weights"]["copied_from"] == "mine.npz"  # (a name: reports are shared)
    copy = read_weights(folder / COPY_NAME)
    for key, values in weights.arrays.items():
        np.testing.assert_array_equal(copy.arrays[key], values)
    assert f"from mine.npz (copied as {COPY_NAME})" in (folder / "index.html").read_text(
        encoding="utf-8"
    )

    monkeypatch.chdir(folder)
    assert cli.main(reproduce_arguments(session)[1:]) == 0
    assert (folder / "reproduced" / "metrics.csv").read_bytes() == (
        folder / "metrics.csv"
    ).read_bytes()


def test_the_command_line_starts_from_a_file_and_its_command_repeats_it(tmp_path, rng, capsys):
    """The run keeps a copy of the weights, which its config.json and its command name: an
    engineer's file changed or moved afterwards, and the run could not be repeated."""
    np.save(tmp_path / "filters.npy", rng.normal(0, 0.1, (4, 3, 5, 5)))
    out = tmp_path / "run"
    argv = ["--headless", "--weights", str(tmp_path / "filters.npy"), "--iterations", "2"]
    assert cli.main([*argv, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "starting from the weights in filters.npy (4×3×5×5 filter weights)" in printed
    assert f"{COPY_NAME} (a copy of filters.npy)" in printed
    written = json.loads((out / "config.json").read_text())
    assert written["config"]["num_filters"] == 4 and written["config"]["kernel_size"] == 5
    assert written["config"]["initial_weights"]["file"] == COPY_NAME
    command = written["command"]
    assert command[command.index("--weights") + 1] == str(out / COPY_NAME)
    assert cli.main([*argv, "--filters", "2", "--out", str(tmp_path / "x")]) == 2
    assert "has 4 filters of 5×5; these settings have 2 filters of 5×5" in capsys.readouterr().err
    assert cli.main([*argv[:2], str(tmp_path), "--out", str(tmp_path / "y")]) == 2
    assert "--weights: " in capsys.readouterr().err

    (tmp_path / "filters.npy").unlink()
    again = tmp_path / "again"
    command[command.index("--out") + 1] = str(again)
    assert cli.main(command[1:]) == 0
    assert (again / "metrics.csv").read_bytes() == (out / "metrics.csv").read_bytes()
    from_config = ["--headless", "--config", str(out / "config.json"), "--iterations", "2"]
    assert cli.main([*from_config, "--out", str(tmp_path / "third")]) == 0
    assert (tmp_path / "third" / "metrics.csv").read_bytes() == (out / "metrics.csv").read_bytes()


def test_weights_given_with_a_config_replace_the_file_it_names(tmp_path, rng, capsys):
    """An engineer's --config C --weights F failed on C's own file (changed since)."""
    np.save(tmp_path / "first.npy", rng.normal(0, 0.1, (1, 3, 3, 3)))
    config = preset_config("recommended", initial_weights=read_weights(tmp_path / "first.npy"))
    (tmp_path / "config.json").write_text(json.dumps(config.to_dict()))
    np.save(tmp_path / "first.npy", rng.normal(0, 0.1, (1, 3, 3, 3)))  # changed since
    np.save(tmp_path / "second.npy", rng.normal(0, 0.1, (2, 3, 3, 3)))
    base = ["--headless", "--config", str(tmp_path / "config.json"), "--iterations", "1"]
    assert cli.main([*base, "--out", str(tmp_path / "a")]) == 2
    assert "is not the file this config was written with" in capsys.readouterr().err
    assert (
        cli.main([*base, "--weights", str(tmp_path / "second.npy"), "--out", str(tmp_path / "b")])
        == 0
    )
    used = json.loads((tmp_path / "b" / "config.json").read_text())["config"]
    assert used["num_filters"] == 2 and used["initial_weights"]["copied_from"] == "second.npy"


def test_weights_travel_to_other_processes_read_only(tmp_path, rng):
    """Configs are pickled to the training process and to trials."""
    import pickle

    np.savez(tmp_path / "mine.npz", **own_weights(rng))
    weights = read_weights(tmp_path / "mine.npz")
    copy = pickle.loads(pickle.dumps(weights))
    assert copy == weights and copy.path == weights.path
    for key, values in weights.arrays.items():
        np.testing.assert_array_equal(copy.arrays[key], values)
        assert not copy.arrays[key].flags.writeable
    with pytest.raises(TypeError):
        copy.arrays["conv.weight"] = np.zeros(1)


def _npy(array) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def test_a_file_declaring_more_values_than_a_run_has_is_refused_before_it_is_read(tmp_path):
    """A review: 200 bytes of .npz whose header declares 2**40 values ended in "unexpected
    MemoryError" (and a compressed file of zeros is small on disk, huge in memory)."""
    import io

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (2**40,)}
    )
    bomb = tmp_path / "bomb.npy"
    bomb.write_bytes(header.getvalue())  # (the magic string, then the header: no data)
    with pytest.raises(WeightsFileError, match="conv.weight has 1,099,511,627,776 values, more"):
        read_weights(bomb)
    import zipfile

    declared = io.BytesIO()  # (a header alone: a compressed member need be no larger on disk)
    np.lib.format.write_array_header_1_0(
        declared, {"descr": "<f8", "fortran_order": False, "shape": (70_000_000,)}
    )
    with zipfile.ZipFile(tmp_path / "zeros.npz", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("conv.weight.npy", _npy(np.zeros((1, 3, 3, 3))))
        archive.writestr("classifier.weight.npy", declared.getvalue())
    with pytest.raises(WeightsFileError, match="classifier.weight has 70,000,000 values"):
        read_weights(tmp_path / "zeros.npz")


def test_devices_and_pipes_are_refused_rather_than_read_for_ever(tmp_path):
    import os

    with pytest.raises(WeightsFileError, match="is not a regular file"):
        read_weights("/dev/zero")
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(WeightsFileError, match="is not a regular file"):
        read_weights(tmp_path / "pipe")


def test_a_pytorch_state_dict_saved_as_it_is_loads(question, tmp_path, rng):
    """nn.Linear(D, 1).weight is (1, D) and its bias (1,): PyTorch's flatten of NCHW is the
    app's order, so the arrays are the same numbers."""
    arrays = own_weights(rng, filters=1)
    linear = arrays["classifier.weight"].reshape(1, -1)
    np.savez(tmp_path / "torch.npz", **{**arrays, "classifier.weight": linear})
    params = init_params(
        preset_config("recommended", initial_weights=read_weights(tmp_path / "torch.npz")),
        question.size,
    )
    np.testing.assert_array_equal(params["classifier.weight"], linear[0])
    np.savez(tmp_path / "two.npz", **{**arrays, "classifier.weight": np.zeros((2, 512))})
    with pytest.raises(WeightsFileError, match=r"\(2, 512\); it is .* or either with a leading 1"):
        read_weights(tmp_path / "two.npz")


def test_values_beyond_float32_are_refused_for_a_float32_run(tmp_path):
    np.save(tmp_path / "huge.npy", np.full((1, 3, 3, 3), 1e39))
    weights = read_weights(tmp_path / "huge.npy")
    assert preset_config("recommended", initial_weights=weights).dtype == "float64"
    with pytest.raises(ConfigError, match="values up to 1e\\+39, beyond float32's range"):
        preset_config("recommended", initial_weights=weights, dtype="float32")
    np.save(tmp_path / "empty.npy", np.zeros((0, 3, 3, 3)))
    with pytest.raises(WeightsFileError, match="conv.weight has no values"):
        read_weights(tmp_path / "empty.npy")


def test_names_that_are_no_weights_are_refused_but_a_snapshots_other_arrays_are_not(tmp_path):
    """An engineer's 'conv.biases' was read past: the app drew that layer, their code did not."""
    conv = np.zeros((1, 3, 3, 3))
    np.savez(tmp_path / "typo.npz", **{"conv.weight": conv, "conv.biases": np.zeros(1)})
    with pytest.raises(WeightsFileError, match="holds conv.biases, which is none of conv.weight"):
        read_weights(tmp_path / "typo.npz")
    extras = {"grad.conv.weight": conv, "velocity.conv.bias": np.zeros(1), "logits": np.zeros(2)}
    np.savez(tmp_path / "snapshot.npz", **{"conv.weight": conv, **extras, "batch": np.zeros(1)})
    assert set(read_weights(tmp_path / "snapshot.npz").arrays) == {"conv.weight"}
    np.savez(tmp_path / "empty.npz")
    with pytest.raises(WeightsFileError, match="holds no arrays; a weights file holds conv.weight"):
        read_weights(tmp_path / "empty.npz")


def test_filters_the_app_cannot_take_are_refused_naming_the_file(tmp_path):
    np.save(tmp_path / "wide.npy", np.zeros((1, 3, 33, 33)))
    with pytest.raises(WeightsFileError, match="holds 1 filter of 33×33; the app takes at most"):
        read_weights(tmp_path / "wide.npy")
    np.save(tmp_path / "even.npy", np.zeros((2, 3, 4, 4)))
    even = read_weights(tmp_path / "even.npy")
    with pytest.raises(ConfigError, match="even.npy has filters of 4×4, and 'same' padding needs"):
        preset_config("recommended").with_weights(even)
    config = preset_config("recommended", padding="valid").with_weights(even)
    assert (config.num_filters, config.kernel_size) == (2, 4)
    assert config.with_weights(None).initial_weights is None


def test_a_snapshot_names_the_weights_file_without_its_folders(question, tmp_path, rng):
    np.save(tmp_path / "filters.npy", rng.normal(0, 0.1, (1, 3, 3, 3)))
    config = preset_config("recommended", initial_weights=read_weights(tmp_path / "filters.npy"))
    session = TrainingSession(question, config)
    paths = save_snapshot(session.latest, config, (), tmp_path)
    named = json.loads(paths[2].read_text())["config"]["initial_weights"]
    assert named["file"] == "filters.npy" and named["sha256"] == config.initial_weights.sha256


def test_members_under_plain_names_are_checked_and_must_be_numpy_arrays(tmp_path):
    """A review: 'classifier.weight' without '.npy' skipped the declared-size check (100,000,000
    values in a 778 KB file), and raw bytes under a weight's name gave 'unexpected
    AttributeError'."""
    import io
    import zipfile

    def npz(path, members):
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, payload in members.items():
                archive.writestr(name, payload)

    conv = _npy(np.zeros((1, 3, 3, 3)))
    header = io.BytesIO()  # (the header alone: the check reads no further)
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (7 << 24,)}
    )
    npz(tmp_path / "plain.npz", {"conv.weight": conv, "classifier.weight": header.getvalue()})
    with pytest.raises(WeightsFileError, match="classifier.weight has 117,440,512 values, more"):
        read_weights(tmp_path / "plain.npz")
    npz(tmp_path / "raw.npz", {"conv.weight.npy": conv, "conv.bias": b"\x00" * 8})
    with pytest.raises(WeightsFileError, match="conv.bias is not a NumPy array"):
        read_weights(tmp_path / "raw.npz")


def test_a_copy_missing_from_its_folder_is_said_to_be_the_runs_copy(tmp_path, rng, capsys):
    np.save(tmp_path / "filters.npy", rng.normal(0, 0.1, (1, 3, 3, 3)))
    out = tmp_path / "run"
    weights = ["--weights", str(tmp_path / "filters.npy")]
    assert cli.main(["--headless", *weights, "--iterations", "1", "--out", str(out)]) == 0
    (out / COPY_NAME).unlink()
    again = ["--headless", "--config", str(out / "config.json"), "--out", str(tmp_path / "b")]
    assert cli.main(again) == 2
    assert "is missing: it is the copy of filters.npy that the run started from" in (
        capsys.readouterr().err
    )


def test_a_run_without_weights_over_one_with_them_leaves_no_copy(tmp_path, rng):
    np.save(tmp_path / "filters.npy", rng.normal(0, 0.1, (1, 3, 3, 3)))
    out = tmp_path / "run"
    base = ["--headless", "--iterations", "1", "--out", str(out)]
    assert cli.main([*base, "--weights", str(tmp_path / "filters.npy")]) == 0
    assert (out / COPY_NAME).exists()
    assert cli.main([*base, "--overwrite"]) == 0
    assert not (out / COPY_NAME).exists()


def test_a_sweep_refuses_a_weights_file_its_cells_would_not_use(tmp_path, capsys):
    np.save(tmp_path / "filters.npy", np.zeros((1, 3, 3, 3)))
    argv = ["--headless", "--sweep", "--weights", str(tmp_path / "filters.npy")]
    assert cli.main([*argv, "--out", str(tmp_path / "map")]) == 2
    assert "--weights applies to a training run, not with --sweep" in capsys.readouterr().err


def test_a_snapshots_npy_points_to_the_npz_beside_it(question, tmp_path, capsys):
    """An engineer took a snapshot's .npy (filters only) for the network: the classifier was
    drawn, with nothing but "(1×3×3×3 filter weights)" to say so."""
    config = preset_config("recommended")
    session = TrainingSession(question, config)
    npy = save_snapshot(session.latest, config, (), tmp_path)[1]
    argv = ["--headless", "--weights", str(npy), "--iterations", "1"]
    assert cli.main([*argv, "--out", str(tmp_path / "run")]) == 0
    assert "(the classifier drawn: filters-iter000000.npz beside it holds the whole network)" in (
        capsys.readouterr().out
    )
    np.save(tmp_path / "alone.npy", np.zeros((1, 3, 3, 3)))
    assert whole_network_beside(read_weights(tmp_path / "alone.npy")) is None

"""The headless run and the command line: outputs, reproducibility, refusals, one-line errors."""

import csv
import io
import json
import math
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import inspector
from inspector import cli
from model.config import TrainingConfig
from model.data import example_path, load_example
from model.diagnostics import Finding, FindingLog
from model.files import SaveError
from model.formatting import format_share
from model.headless import OUTPUT_NAMES, check_output_folder, metrics_row, skipped_lines
from model.init import InitSpec
from model.presets import preset_config
from model.record import METRIC_NAMES
from model.session import TrainingSession
from model.sweep import MARKER_COLOUR

ROOT = Path(inspector.__file__).resolve().parent.parent
QT_PREFIXES = ("PySide6", "shiboken6", "pyqtgraph")


def run_cli(capsys, *argv):
    """``cli.main(argv)`` in this process: (exit status, stdout, stderr)."""
    status = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def read_metrics(folder):
    with open(folder / "metrics.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    return rows[0], [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


@pytest.fixture(scope="module")
def seed_run(tmp_path_factory):
    """The question's setup, 3 iterations."""
    out = tmp_path_factory.mktemp("seed-run")
    assert cli.main(["--headless", "--preset", "seed", "--iterations", "3", "--out", str(out)]) == 0
    return out


# ---------------------------------------------------------------------------------------------
# What a run writes
# ---------------------------------------------------------------------------------------------


def test_metrics_csv_has_one_row_per_iteration_from_zero(seed_run):
    header, rows = read_metrics(seed_run)
    assert tuple(header) == METRIC_NAMES
    assert [row["iteration"] for row in rows] == ["0", "1", "2", "3"]
    assert rows[0]["conv_grad_norm"] == ""  # NaN at iteration 0: no gradient yet
    assert float(rows[0]["conv_weight_min"]) >= 0  # uniform(0, 1)
    assert float(rows[1]["conv_weight_max"]) < -1000
    assert [float(row["dead_fraction"]) for row in rows] == [0.0, 1.0, 1.0, 1.0]


def test_metrics_are_written_at_full_precision(seed_run, tmp_path):
    _, rows = read_metrics(seed_run)
    config = json.loads((seed_run / "config.json").read_text(encoding="utf-8"))
    session = TrainingSession(load_example("question"), TrainingConfig.from_dict(config["config"]))
    session.run(3, pause_on_findings=False)
    for iteration, row in enumerate(rows):
        expected = session.record(iteration).metrics
        for name in METRIC_NAMES[1:]:
            value = expected[name]
            assert (row[name] == "") if math.isnan(value) else float(row[name]) == value, name


def test_snapshots_at_start_death_and_end(seed_run):
    names = sorted(p.name for p in seed_run.glob("filters-iter*"))
    stems = sorted({name.split(".")[0] for name in names})
    assert stems == ["filters-iter000000", "filters-iter000001", "filters-iter000003"]
    assert len(names) == 12  # .png, .npy, .json, .npz
    death = json.loads((seed_run / "filters-iter000001.json").read_text(encoding="utf-8"))
    assert death["dead_since"] == [1]
    assert death["dataset"]["source"] == {"example": "question"}


def test_snapshot_every(capsys, tmp_path):
    status, _, _ = run_cli(
        capsys, "--headless", "--iterations", "5", "--snapshot-every", "2", "--out", tmp_path
    )
    assert status == 0
    stems = sorted({p.name.split(".")[0] for p in tmp_path.glob("filters-iter*")})
    assert stems == [f"filters-iter{k:06d}" for k in (0, 2, 4, 5)]


def test_config_json_describes_the_run(seed_run):
    config = json.loads((seed_run / "config.json").read_text(encoding="utf-8"))
    assert config["preset"] == "seed"
    assert config["iterations"] == 3
    assert config["config"]["learning_rate"] == 0.5
    assert config["config"]["seed"] == preset_config("seed").seed
    dataset = config["dataset"]
    assert dataset["source"] == {"example": "question"}
    assert len(dataset["digest"]) == 64
    assert dataset["size"] == [32, 32] and dataset["images"] == 2
    assert dataset["label_counts"] == [1, 1] and dataset["class_names"] == ["cross", "circle"]
    assert len(dataset["pixel_mean"]) == 3 and len(dataset["pixel_std"]) == 3
    assert set(config["versions"]) == {"python", "numpy", "pillow"}
    assert config["command"][:2] == ["training-inspector", "--headless"]
    assert len(config["outputs"]["snapshots"]) == 12


def test_findings_name_the_death_once_with_the_iteration_it_happened(seed_run):
    text = (seed_run / "findings.txt").read_text(encoding="utf-8")
    assert "Findings at the last iteration (3)" in text
    data = json.loads((seed_run / "findings.json").read_text(encoding="utf-8"))
    deaths = [f for f in data["first_appeared"] if f["code"] == "dead_filter"]
    assert len(deaths) == 1
    assert deaths[0]["iteration"] == 1 and deaths[0]["since"] == 1
    assert any(f["code"] == "dead_filter" for f in data["final"])
    assert text.count("is dead (since iteration 1)") == 2  # last iteration + first appearance


def test_finding_log_keeps_first_appearance():
    log = FindingLog()
    first = Finding("dead_filter", "error", "t", "e", iteration=1, since=1, subject="filter 0")
    later = Finding("dead_filter", "error", "t", "e", iteration=2, since=1, subject="filter 0")
    other = Finding("dead_filter", "error", "t", "e", iteration=2, since=1, subject="filter 1")
    log.add([first])
    log.add([later, other])
    assert log.findings == (first, other)


def test_recommended_preset_learns_without_killing_the_filter(capsys, tmp_path):
    status, out, err = run_cli(capsys, "--headless", "--out", tmp_path)
    assert status == 0 and err == ""
    _, rows = read_metrics(tmp_path)
    assert len(rows) == 51
    assert float(rows[-1]["accuracy"]) == 1.0
    assert float(rows[-1]["dead_fraction"]) < 1.0
    assert "accuracy 100.0%" in out and str(tmp_path.resolve()) in out


def test_the_recorded_command_reproduces_the_run_byte_for_byte(seed_run, capsys, tmp_path):
    command = json.loads((seed_run / "config.json").read_text(encoding="utf-8"))["command"]
    arguments = command[1:]
    arguments[arguments.index("--out") + 1] = str(tmp_path)
    status, _, err = run_cli(capsys, *arguments)
    assert status == 0, err
    assert (tmp_path / "metrics.csv").read_bytes() == (seed_run / "metrics.csv").read_bytes()
    for name in ("filters-iter000001.npy", "findings.json"):
        assert (tmp_path / name).read_bytes() == (seed_run / name).read_bytes()


def test_every_option_reaches_the_config(capsys, tmp_path):
    status, _, err = run_cli(
        capsys, "--headless", "--example", "shapes", "--size", "12x10", "--iterations", "2",
        "--init", "uniform:-0.5,0.5", "--classifier-init", "constant:0.25", "--pixels",
        "standardize", "--update", "full_batch", "--shuffle", "--momentum", "0.5", "--clip",
        "2", "--filters", "2", "--kernel", "5", "--padding", "valid", "--activation",
        "leaky_relu", "--slope", "0.1", "--dtype", "float32", "--seed", "9", "--lr", "0.003",
        "--out", tmp_path,
    )  # fmt: skip
    assert status == 0, err
    written = json.loads((tmp_path / "config.json").read_text(encoding="utf-8"))
    config = TrainingConfig.from_dict(written["config"])
    assert config.conv_init == InitSpec("uniform", {"low": -0.5, "high": 0.5})
    assert config.classifier_init == InitSpec("constant", {"value": 0.25})
    assert (config.pixel_scaling, config.update_mode, config.shuffle) == (
        "standardize", "full_batch", True
    )  # fmt: skip
    assert (config.momentum, config.clip_norm, config.learning_rate) == (0.5, 2.0, 0.003)
    assert (config.num_filters, config.kernel_size, config.padding) == (2, 5, "valid")
    assert (config.activation, config.negative_slope) == ("leaky_relu", 0.1)
    assert (config.dtype, config.seed) == ("float32", 9)
    assert written["dataset"]["size"] == [12, 10]
    assert written["dataset"]["source"] == {"example": "shapes"}
    assert np.load(tmp_path / "filters-iter000002.npy").dtype == np.float32
    recorded = cli.build_parser().parse_args(written["command"][1:])
    assert cli.config_from_args(recorded, "seed") == config


def test_a_dataset_folder_and_clip_off(capsys, tmp_path):
    folder = example_path("question")
    out = tmp_path / "out"
    status, _, err = run_cli(
        capsys, "--headless", folder, "--clip", "off", "--iterations", "1", "--out", out
    )
    assert status == 0, err
    written = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert written["dataset"]["source"] == {"folder": str(folder.resolve())}
    assert written["config"]["clip_norm"] is None
    assert written["command"][written["command"].index("--clip") + 1] == "off"


@pytest.mark.parametrize(
    "spec", ["uniform:0,1", "normal:0.0,0.02", "he_normal", "xavier_uniform", "constant:-3"]
)
def test_init_spec_round_trips(spec):
    parsed = cli.parse_init_spec(spec)
    assert cli.parse_init_spec(cli.format_init_spec(parsed)) == parsed


def test_specific_init_overrides_init():
    args = cli.build_parser().parse_args(
        ["--headless", "--init", "he_normal", "--conv-init", "normal:0,0.5", "--out", "x"]
    )
    config = cli.config_from_args(args, "seed")
    assert config.conv_init == InitSpec("normal", {"mean": 0.0, "std": 0.5})
    assert config.classifier_init == InitSpec("he_normal")


def test_metrics_row_writes_nan_as_empty_and_iteration_as_integer():
    record = TrainingSession(load_example("question")).latest
    row = metrics_row(record)
    assert row[0] == "0" and len(row) == len(METRIC_NAMES)
    assert row[METRIC_NAMES.index("batch_loss")] == ""


@pytest.mark.parametrize(
    ("changes", "images"),
    [
        ({}, ["", "1", "2", "1", "2"]),  # one image per update, in order, counted from 1
        ({"update_mode": "full_batch"}, ["", "0", "0", "0", "0"]),  # 0: every image
    ],
)
def test_metrics_name_the_image_each_update_used(changes, images):
    """An engineer comparing update by update had to work the order out from the README."""
    session = TrainingSession(load_example("question"), preset_config("recommended", **changes))
    session.run(4, pause_on_findings=False)
    column = METRIC_NAMES.index("update_image")
    assert [metrics_row(session.record(k))[column] for k in range(5)] == images


def test_a_shuffled_runs_images_are_its_batches():
    session = TrainingSession(load_example("shapes"), preset_config("recommended", shuffle=True))
    session.run(6, pause_on_findings=False)
    column = METRIC_NAMES.index("update_image")
    for k in range(1, 7):
        record = session.record(k)
        assert metrics_row(record)[column] == str(record.batch[0] + 1)


# ---------------------------------------------------------------------------------------------
# What the console says
# ---------------------------------------------------------------------------------------------

DEAD_FILTER_MEANING = "(a filter is dead when its output is zero at every position of every image)"


def folder_with_unusable_files(folder):
    """A dataset folder with two usable 8x8 PNGs per label, and a truncated PNG, a corrupt PNG
    and a text file among them."""
    for label, colour in (("0_red", (200, 30, 30)), ("1_blue", (30, 30, 200))):
        (folder / label).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (8, 8), colour).save(folder / label / f"img{i}.png")
    png = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(noise).save(png, "PNG")  # so that its first half ends inside the pixels
    (folder / "1_blue" / "truncated.png").write_bytes(png.getvalue()[: len(png.getvalue()) // 2])
    (folder / "1_blue" / "corrupt.png").write_bytes(png.getvalue()[:8] + b"\x00garbage" * 20)
    (folder / "0_red" / "notes.txt").write_text("not an image", encoding="utf-8")
    return folder


def test_the_summary_lists_every_refused_file_with_its_reason(capsys, tmp_path):
    data = folder_with_unusable_files(tmp_path / "data")
    out = tmp_path / "out"
    status, printed, err = run_cli(
        capsys, "--headless", "--data", data, "--iterations", "1", "--out", out
    )
    assert status == 0, err
    lines = printed.splitlines()
    assert "(4 images of 8x8)" in lines[0]
    assert lines[1] == "Skipped 3 files that could not be used:"
    skipped = json.loads((out / "config.json").read_text(encoding="utf-8"))["dataset"]["skipped"]
    assert sorted(Path(entry["path"]).name for entry in skipped) == [
        "corrupt.png", "notes.txt", "truncated.png"
    ]  # fmt: skip
    assert lines[2:5] == [f"  {entry['path']}: {entry['reason']}" for entry in skipped]
    reasons = {Path(entry["path"]).name: entry["reason"] for entry in skipped}
    assert reasons["notes.txt"] == "not an image Pillow can read"
    assert "truncated" in reasons["truncated.png"]


def test_a_summary_without_refused_files_says_nothing_about_them(capsys, tmp_path):
    status, printed, err = run_cli(capsys, "--headless", "--iterations", "1", "--out", tmp_path)
    assert status == 0, err
    assert "Skipped" not in printed


def test_the_summary_names_ten_refused_files_and_counts_the_rest():
    skipped = tuple((f"/data/0_a/bad{i:02}.txt", "not an image Pillow can read") for i in range(13))
    assert skipped_lines(skipped) == [
        "Skipped 13 files that could not be used:",
        *(f"  /data/0_a/bad{i:02}.txt: not an image Pillow can read" for i in range(10)),
        "  and 3 more, all listed in config.json",
    ]
    assert skipped_lines(skipped[:1]) == [
        "Skipped 1 file that could not be used:",
        "  /data/0_a/bad00.txt: not an image Pillow can read",
    ]
    assert skipped_lines(()) == []


def test_the_summary_says_what_share_of_relu_outputs_is_zero_and_what_dead_means(capsys, tmp_path):
    """The question's filter dies at the first update: every output is zero and it is dead.
    With the fix most outputs are zero at the start, yet no filter is dead: the summary must
    say both without reading as a contradiction."""
    status, printed, err = run_cli(
        capsys, "--headless", "--preset", "seed", "--iterations", "1", "--out", tmp_path / "seed"
    )
    assert status == 0, err
    assert f"100.0% of ReLU outputs are zero; 1 of 1 filter dead {DEAD_FILTER_MEANING}." in printed
    assert "dead fraction" not in printed

    out = tmp_path / "recommended"
    status, printed, err = run_cli(
        capsys, "--headless", "--preset", "recommended", "--iterations", "1", "--out", out
    )
    assert status == 0, err
    _, rows = read_metrics(out)
    share = format_share(float(rows[-1]["dead_fraction"]), 1)
    assert 0.5 < float(rows[-1]["dead_fraction"]) < 1.0
    assert f"{share} of ReLU outputs are zero; 0 of 1 filter dead {DEAD_FILTER_MEANING}." in printed


def test_the_summary_counts_zero_outputs_for_relu_only(capsys, tmp_path):
    status, printed, err = run_cli(
        capsys, "--headless", "--activation", "leaky_relu", "--iterations", "1", "--out", tmp_path
    )
    assert status == 0, err
    assert "Zero outputs and dead filters are counted for ReLU only; this run used leaky_relu." in (
        printed
    )
    assert "of ReLU outputs are zero" not in printed


# ---------------------------------------------------------------------------------------------
# Never overwrite silently
# ---------------------------------------------------------------------------------------------


def test_a_second_run_into_the_same_folder_is_refused_until_overwrite(capsys, tmp_path):
    args = ("--headless", "--preset", "seed", "--iterations", "2", "--out", tmp_path)
    assert run_cli(capsys, *args)[0] == 0
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    status, out, err = run_cli(capsys, *args[:-3], "3", "--out", tmp_path)
    assert status != 0 and out == ""
    assert err.count("\n") == 1 and "metrics.csv" in err and "overwrite" in err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    status, _, err = run_cli(capsys, *args[:-3], "3", "--out", tmp_path, "--overwrite")
    assert status == 0, err
    assert len(read_metrics(tmp_path)[1]) == 4


def test_a_snapshot_of_an_earlier_run_also_refuses(tmp_path):
    (tmp_path / "filters-iter000007.png").write_bytes(b"")
    with pytest.raises(SaveError, match="filters-iter000007.png"):
        check_output_folder(tmp_path)
    check_output_folder(tmp_path, overwrite=True)
    (tmp_path / "notes.txt").write_text("unrelated files are fine")
    (tmp_path / "filters-iter000007.png").unlink()
    check_output_folder(tmp_path)


def test_each_output_name_refuses(tmp_path):
    for name in OUTPUT_NAMES:
        folder = tmp_path / name.replace(".", "-")
        folder.mkdir()
        (folder / name).write_text("")
        with pytest.raises(SaveError, match=name):
            check_output_folder(folder)


# ---------------------------------------------------------------------------------------------
# Refused arguments: one line, no traceback
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["--lr", "-1"], "learning_rate: must be greater than 0"),
        (["--lr", "nan"], "learning_rate: must be a finite number"),
        (["--lr", "abc"], "learning_rate: must be a number"),
        (["--momentum", "1"], "momentum"),
        (["--filters", "0"], "num_filters"),
        (["--kernel", "4"], "kernel_size"),
        (["--iterations", "0"], "--iterations"),
        (["--iterations", "-5"], "--iterations"),
        (["--iterations", "two"], "--iterations"),
        (["--init", "bogus"], "unknown initialiser"),
        (["--init", "uniform:1"], "uniform takes 2"),
        (["--init", "uniform:1,0"], "must not exceed"),
        (["--conv-init", "normal:0,x"], "--conv-init"),
        (["--size", "0x5"], "--size"),
        (["--size", "big"], "--size"),
        (["--size", "5000x5000"], "at most 1024"),
        (["--data", "/nonexistent"], "no such folder"),
        (["--preset", "bogus"], "--preset"),
        (["--example", "bogus"], "--example"),
        (["--padding", "round"], "--padding"),
        (["--frobnicate"], "unrecognized arguments"),
        (["--data", "/tmp", "--example", "question"], "not allowed with"),
        (["--sweep", "--sweep-lr", "1:2:0"], "COUNT must be between 1 and 100"),
        (["--sweep", "--sweep-lr", "a:b:c"], "START:STOP:COUNT"),
        (["--sweep", "--sweep-lr", "1:2"], "START:STOP:COUNT"),
        (["--sweep", "--sweep-lr=-1:2:3"], "start must be a positive number"),
        (["--sweep", "--sweep-scale", "0,1"], "positive"),
        (["--sweep", "--sweep-scale", "nan"], "positive"),
        (["--sweep", "--sweep-lr", "1e13"], "learning_rate: must be greater than 0"),
        (["--sweep", "--sweep-pixels", "raw,foo"], "unknown pixel scaling 'foo'"),
        (["--sweep", "--sweep-init", "he_normal"], "--sweep-init"),
        (["--sweep", "--workers", "0"], "--workers"),
        (["--sweep-lr", "1:2:3"], "--sweep-lr applies only to --sweep"),
        (["--workers", "2"], "--workers applies only to --sweep"),
        (["--sweep", "--snapshot-every", "2"], "not with --sweep"),
        (["--sweep", "--settings-log", "log.json"], "not with --sweep"),
        (["--sweep", "--threads", "2"], "not with --sweep"),
        (["--threads", "0"], "--threads"),
        (["--config", "/nonexistent/config.json"], "--config"),
        (["--preset", "seed", "--config", "config.json"], "either --preset or --config"),
        (["--settings-log", "/nonexistent/log.json"], "--settings-log"),
        (
            ["--size", "2x2", "--padding", "valid"],
            "a 3x3 kernel with 'valid' padding does not fit a 2x2 image: use a kernel of at "
            "most 2, or 'same' padding",
        ),
    ],
)
def test_bad_arguments_fail_in_one_line(capsys, tmp_path, arguments, expected):
    out = tmp_path / "out"
    status, stdout, err = run_cli(capsys, "--headless", *arguments, "--out", out)
    assert status != 0
    if "--padding" in arguments:  # a usage error, not "unexpected ValueError" (status 1)
        assert status == 2
    assert err.count("\n") == 1 and err.startswith("training-inspector: error: ")
    assert expected in err and "Traceback" not in err
    assert stdout == ""
    assert not out.exists()  # nothing is created for a refused run


def test_out_pointing_at_a_file_fails_in_one_line(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("keep me")
    status, _, err = run_cli(capsys, "--headless", "--iterations", "1", "--out", blocker)
    assert status != 0 and err.count("\n") == 1 and "Not a folder" in err
    assert blocker.read_text() == "keep me"


def test_a_value_gone_nan_reads_nan_and_only_what_iteration_0_lacks_is_empty(tmp_path):
    """A review: NaN was an empty cell everywhere, so a loss gone NaN read like the gradient
    norm of iteration 0, which has no update to measure."""
    arguments = [
        "--headless", "--preset", "seed", "--activation", "identity", "--dtype", "float32",
        "--lr", "1e12", "--iterations", "8", "--out", str(tmp_path),
    ]  # fmt: skip
    assert cli.main(arguments) == 0
    _, rows = read_metrics(tmp_path)
    assert rows[0]["conv_grad_norm"] == "" and rows[0]["batch_loss"] == ""
    assert rows[0]["loss"] not in ("", "nan")
    assert rows[-1]["loss"] == "nan" and rows[-1]["accuracy"] == "0.0"
    assert all(cell != "" for row in rows[1:] for cell in row.values())


def test_headless_needs_out(capsys):
    status, _, err = run_cli(capsys, "--headless")
    assert status == 2 and err.count("\n") == 1 and "--out" in err


def test_headless_options_without_headless_are_refused(capsys):
    status, _, err = run_cli(capsys, "--out", "somewhere")
    assert status == 2 and err.count("\n") == 1 and "--out applies only with --headless" in err


def test_help_exits_zero(capsys):
    status, out, err = run_cli(capsys, "--help")
    assert status == 0 and err == ""
    assert "--headless" in out and "INIT SPEC" in out
    for text in ("--sweep-lr RANGE", "START:STOP:COUNT", "log-spaced", "--config FILE"):
        assert text in out
    assert "--settings-log FILE" in out


# ---------------------------------------------------------------------------------------------
# --config and --settings-log
# ---------------------------------------------------------------------------------------------


def test_a_runs_config_json_starts_the_same_run(seed_run, capsys, tmp_path):
    status, out, err = run_cli(
        capsys, "--headless", "--config", seed_run / "config.json", "--iterations", "3",
        "--out", tmp_path,
    )  # fmt: skip
    assert status == 0, err
    assert "settings from a config file" in out
    assert (tmp_path / "metrics.csv").read_bytes() == (seed_run / "metrics.csv").read_bytes()
    written = json.loads((tmp_path / "config.json").read_text(encoding="utf-8"))
    assert written["preset"] is None and "--preset" not in written["command"]


def test_options_override_the_config_file(seed_run, capsys, tmp_path):
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(preset_config("seed").to_dict()))
    out = tmp_path / "out"
    status, _, err = run_cli(
        capsys, "--headless", "--config", bare, "--lr", "0.1", "--iterations", "1", "--out", out
    )
    assert status == 0, err
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))["config"]
    assert config["learning_rate"] == 0.1
    assert config["conv_init"] == preset_config("seed").conv_init.to_dict()


@pytest.mark.parametrize(
    ("content", "status", "expected"),
    [
        ('{"config": {"bogus": 1}}', 2, "bogus: is not a setting"),
        ('{"learning_rate": -1}', 2, "learning_rate: must be greater than 0"),
        ("[1, 2]", 2, "config: must be a mapping"),
        ("{not json", 1, "is not valid JSON"),
    ],
)
def test_a_bad_config_file_fails_in_one_line(capsys, tmp_path, content, status, expected):
    path = tmp_path / "config.json"
    path.write_text(content)
    out = tmp_path / "out"
    result, stdout, err = run_cli(capsys, "--headless", "--config", path, "--out", out)
    assert (result, stdout) == (status, "")
    assert err.count("\n") == 1 and expected in err
    assert not out.exists()


def write_log(folder, entries):
    path = folder / "settings_log.json"
    path.write_text(json.dumps(entries))
    return path


def test_a_settings_log_changes_the_learning_rate_at_its_iterations(capsys, tmp_path):
    log = write_log(
        tmp_path, [{"iteration": 1, "learning_rate": 1e-6}, {"iteration": 3, "learning_rate": 0.5}]
    )
    out = tmp_path / "out"
    status, stdout, err = run_cli(
        capsys, "--headless", "--preset", "seed", "--settings-log", log, "--iterations", "4",
        "--out", out,
    )  # fmt: skip
    assert status == 0, err
    assert "following a settings log of 2 entries" in stdout
    _, rows = read_metrics(out)
    assert [float(row["learning_rate"]) for row in rows] == [0.5, 1e-6, 1e-6, 0.5, 0.5]
    assert [float(row["dead_fraction"]) for row in rows][:3] == [0.0, 0.0, 0.0]
    written = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert [entry["iteration"] for entry in written["settings_log"]] == [1, 3]
    command = written["command"]
    assert command[command.index("--settings-log") + 1] == str(log.resolve())
    # The recorded command repeats the run exactly.
    command[command.index("--out") + 1] = str(tmp_path / "again")
    assert run_cli(capsys, *command[1:])[0] == 0
    assert (tmp_path / "again" / "metrics.csv").read_bytes() == (out / "metrics.csv").read_bytes()


@pytest.mark.parametrize("sharing", ["threads", "processes"])
def test_threads_share_the_batch_and_the_command_repeats_the_run(
    capsys, tmp_path, monkeypatch, request, sharing
):
    from model import network, parallel, session

    parts = []
    if sharing == "threads":
        request.getfixturevalue("share_every_batch")
        split = network._parts
        monkeypatch.setattr(
            network, "_parts", lambda *args: parts.append(len(split(*args))) or split(*args)
        )
    else:  # both images in each update, not the measuring pass's maps reused
        request.getfixturevalue("share_between_processes")
        monkeypatch.setattr(session, "REUSE_FORWARD_MAX_BYTES", 0)
        by_images = parallel._by_images
        monkeypatch.setattr(
            parallel, "_by_images", lambda *args: parts.append(args[3]) or by_images(*args)
        )
    shared_out, alone_out = tmp_path / "shared", tmp_path / "alone"
    base = ("--headless", "--iterations", "6")
    if sharing == "processes":
        base += ("--update", "full_batch")
    assert run_cli(capsys, *base, "--threads", "2", "--out", shared_out)[0] == 0
    assert 2 in parts  # (threads: batches of one image cannot be shared)
    parts.clear()
    assert run_cli(capsys, *base, "--out", alone_out)[0] == 0
    assert not parts  # one thread: no batch is even considered for sharing
    _, shared = read_metrics(shared_out)
    _, alone = read_metrics(alone_out)
    for mine, theirs in zip(shared, alone, strict=True):
        for name in ("loss", "accuracy", "dead_fraction", "conv_weight_max", "conv_grad_norm"):
            if mine[name] != theirs[name]:  # rounding only
                assert float(mine[name]) == pytest.approx(float(theirs[name]), rel=1e-9), name
    command = json.loads((shared_out / "config.json").read_text(encoding="utf-8"))["command"]
    assert command[command.index("--threads") + 1] == "2"
    alone_command = json.loads((alone_out / "config.json").read_text(encoding="utf-8"))["command"]
    assert "--threads" not in alone_command
    command[command.index("--out") + 1] = str(tmp_path / "again")
    assert run_cli(capsys, *command[1:])[0] == 0
    again = (tmp_path / "again" / "metrics.csv").read_bytes()
    assert again == (shared_out / "metrics.csv").read_bytes()


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ({"iteration": 1}, "must be a list"),
        ([{"iteration": 1}], "needs at least 'iteration' and 'learning_rate'"),
        ([{"iteration": 0, "learning_rate": 0.1}], "iteration must be a whole number >= 1"),
        ([{"iteration": 2.5, "learning_rate": 0.1}], "iteration must be a whole number"),
        (
            [{"iteration": 3, "learning_rate": 0.1}, {"iteration": 2, "learning_rate": 0.1}],
            "does not follow 3",
        ),
        ([{"iteration": 1, "learning_rate": -1}], "learning_rate: must be greater than 0"),
        ([{"iteration": 1, "learning_rate": 0.1, "momentum": 2}], "momentum"),
        ([{"iteration": 1, "learning_rate": 0.1, "seed": 3}], "seed is not a live setting"),
        (["x"], "must be an object"),
    ],
)
def test_a_bad_settings_log_fails_in_one_line(capsys, tmp_path, entries, expected):
    log = write_log(tmp_path, entries)
    out = tmp_path / "out"
    status, stdout, err = run_cli(capsys, "--headless", "--settings-log", log, "--out", out)
    assert (status, stdout) == (2, "")
    assert err.count("\n") == 1 and expected in err and "settings log" in err
    assert not out.exists()


# ---------------------------------------------------------------------------------------------
# --sweep
# ---------------------------------------------------------------------------------------------


def test_a_sweep_writes_its_table_map_and_spec(capsys, tmp_path):
    out = tmp_path / "map"
    arguments = (
        "--headless", "--sweep", "--preset", "seed", "--sweep-lr", "1e-9,0.5", "--sweep-scale",
        "0.001:1:2", "--iterations", "5", "--workers", "1", "--out", out,
    )  # fmt: skip
    status, stdout, err = run_cli(capsys, *arguments)
    assert status == 0 and err == ""
    assert "Swept 4 cells" in stdout and "dead filter 2" in stdout
    assert sorted(p.name for p in out.iterdir()) == ["sweep.csv", "sweep.json", "sweep.png"]
    with open(out / "sweep.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["init_scale"], r["learning_rate"], r["outcome"]) for r in rows] == [
        ("0.001", "1e-09", "stuck"),
        ("0.001", "0.5", "dead filter"),
        ("1.0", "1e-09", "stuck"),
        ("1.0", "0.5", "dead filter"),
    ]
    assert {r["init_family"] for r in rows} == {"uniform"}  # the seed preset's family
    described = json.loads((out / "sweep.json").read_text(encoding="utf-8"))
    assert described["spec"]["iterations"] == 5
    assert described["spec"]["init_scales"] == [0.001, 1.0]
    assert described["marker"] == {"learning_rate": 0.5, "init_scale": 1.0}
    assert described["source"] == {"example": "question"}
    assert described["counts"]["dead filter"] == 2
    picture = np.asarray(Image.open(out / "sweep.png").convert("RGB"))
    assert np.all(picture == MARKER_COLOUR, axis=-1).sum() > 100  # the seed setting is ringed
    # The recorded command repeats the sweep.
    command = described["command"]
    command[command.index("--out") + 1] = str(tmp_path / "again")
    assert run_cli(capsys, *command[1:])[0] == 0
    assert (tmp_path / "again" / "sweep.csv").read_bytes() == (out / "sweep.csv").read_bytes()
    # Never over earlier outputs without --overwrite.
    status, stdout, err = run_cli(capsys, *arguments)
    assert status == 1 and stdout == "" and err.count("\n") == 1 and "sweep.csv" in err
    assert run_cli(capsys, *arguments, "--overwrite")[0] == 0


def test_a_sweep_without_the_settings_family_has_no_marker(capsys, tmp_path):
    status, _, err = run_cli(
        capsys, "--headless", "--sweep", "--preset", "seed", "--sweep-init", "normal",
        "--sweep-lr", "0.5", "--sweep-scale", "1", "--sweep-pixels", "raw,unit", "--iterations",
        "2", "--workers", "1", "--out", tmp_path,
    )  # fmt: skip
    assert status == 0, err
    described = json.loads((tmp_path / "sweep.json").read_text(encoding="utf-8"))
    assert described["marker"] is None
    assert described["spec"]["pixel_scalings"] == ["raw", "unit"]
    with open(tmp_path / "sweep.csv", newline="", encoding="utf-8") as handle:
        assert [r["pixel_scaling"] for r in csv.DictReader(handle)] == ["raw", "unit"]


def test_without_headless_the_app_is_opened_lazily(capsys, monkeypatch):
    calls = []
    fake = types.ModuleType("inspector.app")
    fake.run_app = lambda data_dir, preset, **kw: calls.append((data_dir, preset, kw)) or 7
    monkeypatch.setitem(sys.modules, "inspector.app", fake)
    assert run_cli(capsys, "some/folder", "--preset", "seed")[0] == 7
    assert run_cli(capsys)[0] == 7
    assert calls == [("some/folder", "seed", {}), (None, None, {})]


def test_the_window_opens_with_settings_and_a_runs_config(capsys, monkeypatch, tmp_path):
    """--lr, --seed, --init... and --config (a report's config.json) open the window with those
    settings, over the window's preset (seed) or the one named; data and output options stay
    headless-only."""
    calls = []
    fake = types.ModuleType("inspector.app")
    fake.run_app = lambda data_dir, preset, **kw: calls.append((data_dir, preset, kw)) or 0
    monkeypatch.setitem(sys.modules, "inspector.app", fake)

    assert run_cli(capsys, "--lr", "0.01", "--seed", "5", "--init", "normal:0,0.02")[0] == 0
    normal = cli.parse_init_spec("normal:0,0.02")
    assert calls[-1][2]["config"] == preset_config("seed", learning_rate=0.01, seed=5).with_changes(
        conv_init=normal, classifier_init=normal
    )
    assert run_cli(capsys, "--preset", "recommended", "--momentum", "0.9")[0] == 0
    assert calls[-1][2]["config"] == preset_config("recommended", momentum=0.9)

    out = tmp_path / "run"
    status, _, err = run_cli(
        capsys, "--headless", "--preset", "seed", "--lr", "0.003", "--iterations", "1",
        "--out", out,
    )  # fmt: skip
    assert status == 0, err
    assert run_cli(capsys, "--config", str(out / "config.json"))[0] == 0
    assert calls[-1][2]["config"] == preset_config("seed", learning_rate=0.003)

    status, _, err = run_cli(capsys, "--lr", "fast")
    assert status == 2 and "learning" in err.lower()
    status, _, err = run_cli(capsys, "--iterations", "3")
    assert status == 2 and "--iterations applies only with --headless" in err
    status, _, err = run_cli(capsys, "--preset", "shapes", "--config", str(out / "config.json"))
    assert status == 2 and "either --preset or --config" in err
    assert len(calls) == 3


# ---------------------------------------------------------------------------------------------
# Console wiring, in a fresh interpreter
# ---------------------------------------------------------------------------------------------


def test_python_m_inspector_runs_headless_without_importing_qt(tmp_path):
    """``python -m inspector`` (the module the console script shares) runs a headless run and
    leaves no Qt module loaded; importing inspector.cli alone loads none either."""
    script = (
        "import runpy, sys\n"
        "import inspector.cli\n"
        f"assert not [m for m in sys.modules if m.startswith({QT_PREFIXES!r})]\n"
        f"sys.argv = ['inspector', '--headless', '--preset', 'seed', '--iterations', '2',"
        f" '--out', {str(tmp_path)!r}]\n"
        "try:\n"
        "    runpy.run_module('inspector', run_name='__main__', alter_sys=True)\n"
        "except SystemExit as exc:\n"
        "    status = exc.code\n"
        f"loaded = [m for m in sys.modules if m.startswith({QT_PREFIXES!r})]\n"
        "print('QT:' + ','.join(loaded))\n"
        "sys.exit(status)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.rstrip().endswith("QT:")
    assert "Trained 2 iterations" in result.stdout
    assert len(read_metrics(tmp_path)[1]) == 3


def test_console_script_points_at_cli_main():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["scripts"]["training-inspector"] == "inspector.cli:main"


def test_ctrl_c_writes_what_was_trained_as_a_run_of_that_many_iterations(
    capsys, tmp_path, monkeypatch
):
    """A robustness pass: Ctrl+C left only iteration 0's snapshot, lost every iteration
    trained, and the folder was refused for the next run without --overwrite."""
    from model.session import TrainingSession

    step = TrainingSession.step

    def interrupted(self, *args, **kwargs):
        if self.iteration == 4:
            raise KeyboardInterrupt
        return step(self, *args, **kwargs)

    monkeypatch.setattr(TrainingSession, "step", interrupted)
    out = tmp_path / "out"
    status, stdout, err = run_cli(capsys, "--headless", "--iterations", "50", "--out", out)
    monkeypatch.undo()
    assert status == 130
    assert "Interrupted at iteration 4 (Ctrl+C): the files hold iterations 0-4" in err
    assert stdout.startswith("Trained 4 iterations")
    _, rows = read_metrics(out)
    assert [int(float(row["iteration"])) for row in rows] == [0, 1, 2, 3, 4]
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config["iterations"] == 4
    assert (out / "filters-iter000004.json").exists()
    command = config["command"]
    assert command[command.index("--iterations") + 1] == "4"
    command[command.index("--out") + 1] = str(tmp_path / "again")
    assert run_cli(capsys, *command[1:])[0] == 0
    assert (tmp_path / "again" / "metrics.csv").read_bytes() == (out / "metrics.csv").read_bytes()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left


@pytest.mark.parametrize("where", ["metrics row", "snapshot"])
def test_ctrl_c_inside_the_recording_of_an_iteration_still_writes_it_whole(
    capsys, tmp_path, monkeypatch, where
):
    """A review: Ctrl+C between a step and its metrics row gave rows 0-3 with a config of 4
    iterations; Ctrl+C while a snapshot was written lost the whole run to a SaveError."""
    from model import headless

    real = {"metrics row": headless.metrics_row, "snapshot": headless.save_snapshot}[where]
    cut = []

    def cut_short(*args, **kwargs):
        record = args[0]
        if record.iteration == 4 and not cut:
            cut.append(True)
            if where == "snapshot":
                real(*args, **kwargs)  # written, then interrupted: saving it again refuses
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    name = {"metrics row": "metrics_row", "snapshot": "save_snapshot"}[where]
    monkeypatch.setattr(headless, name, cut_short)
    out = tmp_path / "out"
    arguments = ("--headless", "--iterations", "50", "--snapshot-every", "2", "--out", out)
    status, _, err = run_cli(capsys, *arguments)
    monkeypatch.undo()
    assert status == 130 and "Interrupted at iteration 4" in err
    _, rows = read_metrics(out)
    assert [int(float(row["iteration"])) for row in rows] == [0, 1, 2, 3, 4]
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config["iterations"] == 4
    assert (out / "filters-iter000004.json").exists()


def test_ctrl_c_while_the_files_are_written_waits_for_them(capsys, tmp_path, monkeypatch):
    """A review: Ctrl+C during the final writes (seconds for 100,000 iterations) left no
    config.json, and the folder was refused for the next run without --overwrite."""
    import os
    import signal

    from model import headless

    write = headless.write_atomic

    def interrupted_while_writing(path, *args, **kwargs):
        if path.name == "metrics.csv":
            os.kill(os.getpid(), signal.SIGINT)  # (Ctrl+C, delivered between two bytecodes)
        return write(path, *args, **kwargs)

    monkeypatch.setattr(headless, "write_atomic", interrupted_while_writing)
    out = tmp_path / "out"
    # Python's own handler, as in a terminal (pytest started in the background by a shell
    # without job control has SIGINT ignored: see the next test)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        status, _, _ = run_cli(capsys, "--headless", "--iterations", "3", "--out", out)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # (put back)
    finally:
        signal.signal(signal.SIGINT, before)
    assert status == 130
    for name in ("metrics.csv", "config.json", "findings.txt", "findings.json"):
        assert (out / name).exists(), name
    _, rows = read_metrics(out)
    assert len(rows) == 4


def test_a_run_started_with_ctrl_c_ignored_ignores_it_during_its_final_writes(
    capsys, tmp_path, monkeypatch
):
    """A review: started so (in the background by a shell without job control), a run still
    ended 'Interrupted' (130) when SIGINT came during its final writes."""
    import os
    import signal

    from model import headless

    write = headless.write_atomic

    def signalled_while_writing(path, *args, **kwargs):
        if path.name == "metrics.csv":
            os.kill(os.getpid(), signal.SIGINT)
        return write(path, *args, **kwargs)

    monkeypatch.setattr(headless, "write_atomic", signalled_while_writing)
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        status, out, _ = run_cli(capsys, "--headless", "--iterations", "3", "--out", tmp_path)
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)
    assert status == 0 and out.startswith("Trained 3 iterations")


def test_on_a_terminal_a_run_shows_its_progress_on_one_line(capsys, tmp_path, monkeypatch):
    """A run of a million iterations said nothing until it ended. On a terminal it now
    rewrites one line of stderr a few times a second; piped, stderr stays empty (above)."""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(cli._RunProgress, "INTERVAL", 0.0)
    status, out, err = run_cli(capsys, "--headless", "--iterations", "5", "--out", tmp_path)
    assert status == 0
    lines = err.split("\r")[1:]
    assert len(lines) == 6  # iterations 0..5
    assert lines[0].startswith("iteration 0 of 5 (0%) · loss 0.6931")
    assert lines[-1].startswith("iteration 5 of 5 (100%) · ") and " it/s · loss " in lines[-1]
    assert "left" not in lines[-1] and err.endswith("\n")
    assert " of 5 (" in lines[3] and " s left · loss " in lines[3]
    assert out.startswith("Trained 5 iterations")
    # Without --iterations (a review: the line was built from the option, None, and the run
    # died at iteration 0), and on a narrow terminal, where a line that wraps would leave its
    # first part behind at every rewrite.
    monkeypatch.setattr(
        cli.shutil, "get_terminal_size", lambda *_args, **_kwargs: os.terminal_size((40, 24))
    )
    status, out, err = run_cli(capsys, "--headless", "--out", tmp_path / "default")
    assert status == 0 and out.startswith("Trained 50 iterations")
    lines = err.split("\r")[1:]
    assert lines[0].startswith("iteration 0 of 50 (0%)")
    assert all(len(line.removesuffix("\033[K\n").removesuffix("\033[K")) <= 39 for line in lines)


def test_a_slow_run_reads_its_rate_in_significant_digits(capsys, monkeypatch):
    class Record:
        iteration, loss = 3, 0.5

    clock = iter([0.0, 10.0])
    monkeypatch.setattr(cli.time, "monotonic", lambda: next(clock))
    cli._RunProgress(10)(Record())
    assert "0.3 it/s · 23 s left · loss 0.5000" in capsys.readouterr().err


def test_progress_estimates_read_as_durations():
    assert [cli._duration(s) for s in (0.2, 45, 600, 7200, 5 * 86400)] == [
        "1 s",
        "45 s",
        "10 min",
        "2.0 h",
        "5 days",
    ]

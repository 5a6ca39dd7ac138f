"""Shareable report: its files, links, data that reloads exactly, and the one-command reproduce."""

import errno
import html
import json
import os
import re
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inspector import cli
from model import report as report_module
from model.data import Dataset, load_dataset, load_example, load_image_list
from model.diagnostics import FindingLog
from model.files import SaveError
from model.formatting import format_share
from model.headless import FINDINGS_JSON_NAME
from model.presets import preset_config
from model.report import (
    RunSnapshot,
    data_files,
    default_snapshot_iterations,
    new_work_folder,
    page_metric_rows,
    reproduce_arguments,
    start_config,
    write_report,
)
from model.session import TrainingSession


def changed_mid_run(dataset):
    """The question's setup with a safe learning rate, raised to the question's at iteration 4:
    the filter dies on the cross at iteration 5."""
    session = TrainingSession(dataset, preset_config("seed", learning_rate=1e-6))
    session.run(3, pause_on_findings=False)
    session.update_settings(learning_rate=0.5)
    session.run(4, pause_on_findings=False)
    return session


@pytest.fixture(scope="module")
def report(question, tmp_path_factory):
    session = changed_mid_run(question)
    folder = tmp_path_factory.mktemp("reports") / "question-report"
    plot = Image.new("RGB", (40, 20), (200, 30, 30))
    png = tmp_path_factory.mktemp("plot") / "loss.png"
    plot.save(png)
    written = write_report(
        session,
        folder,
        plot_pngs={"loss curve": png.read_bytes()},
        preset="seed",
        source={"example": "question"},
    )
    assert written == folder
    return session, folder


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.targets = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("href", "src"):
                self.targets.append(value)


def test_every_file_is_written(report):
    session, folder = report
    for name in (
        "index.html",
        "REPRODUCE.txt",
        "config.json",
        "dataset.json",
        "settings_log.json",
        "metrics.csv",
        "findings.txt",
        "findings.json",
        "data/0_cross/0000_cross.png",  # (numbered in dataset order, with their names)
        "data/1_circle/0000_circle.png",
        "plots/loss curve.png",
    ):
        assert (folder / name).is_file(), name
    snapshots = sorted(p.name for p in (folder / "snapshots").iterdir())
    assert snapshots == [
        f"filters-iter{k:06d}{s}" for k in (0, 5, 7) for s in (".json", ".npy", ".npz", ".png")
    ]
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temporaries


def test_every_link_of_the_page_resolves_inside_the_report(report):
    _, folder = report
    page = (folder / "index.html").read_text(encoding="utf-8")
    parser = Links()
    parser.feed(page)
    assert len(parser.targets) > 15
    for target in parser.targets:
        assert not re.match(r"^[a-z]+:", target) and not target.startswith("/"), target
        assert (folder / target).exists(), target
    for shown in ("snapshots/filters-iter000005.png", "plots/loss curve.png", "data/0_cross/"):
        assert shown in page
    assert "Filter 0 is dead (since iteration 5)" in page
    assert "<h2>Reproduce</h2>" in page and "--settings-log settings_log.json" in page


def test_the_page_reads_filters_dead_in_one_update_as_one_finding(question, tmp_path):
    session = TrainingSession(question, preset_config("seed", num_filters=3))
    session.step()
    folder = write_report(session, tmp_path / "three")
    page = (folder / "index.html").read_text(encoding="utf-8")
    # At the last iteration, with a line per filter; not again as first seen, which was then
    # (a teacher's report of one Step repeated every card word for word).
    assert page.count("Filters 0–2 are dead (since iteration 1)") == 1
    assert page.count("<br>• Filter 2: largest pre-activation") == 1
    assert "Filter 1 is dead" not in page
    earlier = page.split("<h2>Findings as they first appeared, before it</h2>")[1]
    earlier = earlier.split("<h2>")[0]
    assert "All conv weights start ≥ 0" in earlier  # (iteration 0's, before the Step)
    assert "are dead (since" not in earlier
    # The files for programs keep a finding per filter.
    assert (folder / "findings.txt").read_text(encoding="utf-8").count("Filter 1 is dead") == 2


def test_a_rate_changed_before_the_first_update_is_the_one_the_run_started_with(question, tmp_path):
    """A teacher's report said "learning rate at the start 0.5" of a run whose every update
    used 0.01, typed in before the first Step."""
    session = TrainingSession(question, preset_config("recommended", learning_rate=0.5))
    session.update_settings(learning_rate=0.01)
    session.run(3, pause_on_findings=False)
    folder = write_report(session, tmp_path / "report", preset="recommended")
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    assert config["config"]["learning_rate"] == 0.01
    page = (folder / "index.html").read_text(encoding="utf-8")
    assert "<td>The answer&#x27;s fix (learns) (--preset recommended)</td>" in page
    assert "<th>learning rate at the start</th><td>0.01000</td>" in page
    # Started from the preset, the rate changed since: the window names no preset, the page
    # still the one it started from.
    session.update_settings(learning_rate=0.2)
    again = write_report(session, tmp_path / "again", preset=None)
    assert "(--preset recommended)</td>" in (again / "index.html").read_text(encoding="utf-8")
    assert "1 filter 3x3x3" in page
    assert "<p>3 SGD updates of a small" in page
    # Iteration 0's snapshot, and its metrics row, go on with the rate too (a review found
    # 0.5 in filters-iter000000.json).
    snapshot = json.loads((folder / "snapshots" / "filters-iter000000.json").read_text("utf-8"))
    assert snapshot["config"]["learning_rate"] == 0.01
    assert session.history.metrics.column("learning_rate")[0] == 0.01


def test_iteration_0_goes_on_with_every_live_change_made_before_the_first_step(question):
    session = TrainingSession(question, preset_config("recommended"))
    session.update_settings(momentum=0.9)  # (makes no new prediction: no velocity yet)
    session.update_settings(clip_norm=2.0)
    record = session.record(0)
    assert (record.settings.momentum, record.settings.clip_norm) == (0.9, 2.0)
    with pytest.raises(TypeError):  # frozen, as every record is
        record.metrics["loss"] = 123.0
    assert start_config(session).momentum == 0.9
    session.step()
    session.update_settings(learning_rate=0.5)  # from the next update on: 0 stays as it was
    assert session.record(0).settings.learning_rate == 0.01


def test_config_is_the_start_and_the_log_holds_the_change(report):
    session, folder = report
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    assert config["preset"] == "seed" and config["seed"] == 4 and config["iterations"] == 7
    # The page says it started from the preset with another rate.
    page = (folder / "index.html").read_text(encoding="utf-8")
    assert (
        "<td>The question&#x27;s setup (fails) (--preset seed), started with learning rate "
        "1.000e-06</td>" in page
    )
    assert config["config"]["learning_rate"] == 1e-6  # as at iteration 0, not the current 0.5
    assert session.config.learning_rate == 0.5
    log = json.loads((folder / "settings_log.json").read_text(encoding="utf-8"))
    assert [(entry["iteration"], entry["learning_rate"]) for entry in log] == [(1, 1e-6), (4, 0.5)]


def test_data_reloads_to_the_same_arrays(report, question):
    _, folder = report
    reloaded = load_dataset(folder / "data")
    assert reloaded.digest() == question.digest()
    assert reloaded.class_names == question.class_names
    description = json.loads((folder / "dataset.json").read_text(encoding="utf-8"))
    assert description["digest"] == question.digest()
    assert description["label_counts"] == [1, 1] and description["size"] == [32, 32]
    assert description["source"] == {"example": "question"}
    assert description["order_survives_reload"] is True


def test_metrics_csv_has_every_iteration_in_the_headless_format(report):
    session, folder = report
    lines = (folder / "metrics.csv").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 9 and lines[0].startswith("iteration,loss,accuracy")
    assert [line.split(",")[0] for line in lines[1:]] == [str(k) for k in range(8)]


def metrics_table(page):
    """The page's metrics table as {heading: {iteration: cell text}}, and the paragraphs that
    follow it up to the next section."""
    section = page[page.index("<h2>Metrics</h2>") :]
    table, after = section.split("</table>", 1)
    rows = [
        [html.unescape(cell) for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row)]
        for row in re.findall(r"<tr>(.*?)</tr>", table)
    ]
    headings, body = rows[0], rows[1:]
    columns = {
        heading: {int(row[0]): row[column] for row in body}
        for column, heading in enumerate(headings)
    }
    notes = [html.unescape(p) for p in re.findall(r"<p>(.*?)</p>", after.split("<h2>", 1)[0])]
    return columns, notes


def test_iteration_0_shows_no_update_as_a_dash_not_as_nan(report):
    """Iteration 0 is the initial state: it has no update, so no update / weight ratio (an
    empty cell in metrics.csv). NaN would read as divergence."""
    _, folder = report
    columns, notes = metrics_table((folder / "index.html").read_text(encoding="utf-8"))
    assert columns["update / weight"][0] == "–"
    assert "NaN" not in [column[0] for column in columns.values()]
    ratios = [float(columns["update / weight"][k].replace(",", "")) for k in range(1, 8)]
    assert np.isfinite(ratios).all()
    assert notes == ["–: no value; iteration 0 is the initial state, before any update."]
    metrics = (folder / "metrics.csv").read_text(encoding="utf-8").splitlines()
    header, first = metrics[0].split(","), metrics[1].split(",")
    assert first[header.index("conv_update_ratio")] == ""
    # Shares are written as the window writes them: a percentage, not 0.9795.
    zero = columns["zero ReLU outputs"]
    assert all(text.endswith("%") for text in zero.values())
    share = float(first[header.index("dead_fraction")])
    assert zero[0] == format_share(share)


def test_a_run_that_really_diverged_still_shows_nan(tmp_path):
    """Identity activation, float32 and a learning rate of 1e12: the loss overflows to NaN at
    the first update and the weights a few updates later. Those NaNs are real and stay NaN."""
    config = preset_config("seed", activation="identity", dtype="float32", learning_rate=1e12)
    session = TrainingSession(load_example("question"), config)
    session.run(7, pause_on_findings=False)
    table = session.history.metrics
    folder = write_report(session, tmp_path / "r")
    columns, notes = metrics_table((folder / "index.html").read_text(encoding="utf-8"))
    for heading, name in (("loss", "loss"), ("update / weight", "conv_update_ratio")):
        nan_at = table.iterations[np.isnan(table.column(name))].astype(int).tolist()
        diverged = [k for k in nan_at if k > 0]  # at 0 the ratio is NaN for want of an update
        assert diverged, name
        assert [k for k, text in columns[heading].items() if text == "NaN"] == diverged
    assert columns["loss"][0] == "947,260.6" and columns["update / weight"][0] == "–"
    assert "NaN: the value is not a number; the run diverged." in notes


def test_the_reproduce_command_repeats_metrics_byte_for_byte(report, capsys, monkeypatch):
    session, folder = report
    command = reproduce_arguments(session)
    assert " ".join(command) in (folder / "REPRODUCE.txt").read_text(encoding="utf-8")
    monkeypatch.chdir(folder)
    assert cli.main(command[1:]) == 0, capsys.readouterr().err
    reproduced = folder / "reproduced" / "metrics.csv"
    assert reproduced.read_bytes() == (folder / "metrics.csv").read_bytes()
    # Without the settings log the run never raises its learning rate, and the metrics differ.
    without = [a for a in command[1:] if a not in ("--settings-log", "settings_log.json")]
    without[without.index("--out") + 1] = "without-log"
    assert cli.main(without) == 0
    assert (folder / "without-log" / "metrics.csv").read_bytes() != reproduced.read_bytes()


def test_a_report_is_never_overwritten_by_accident(report, question, tmp_path):
    session, _ = report
    folder = tmp_path / "r"
    write_report(session, folder)
    first = (folder / "index.html").read_bytes()
    with pytest.raises(SaveError, match="not empty"):
        write_report(session, folder)
    session_later = changed_mid_run(question)
    session_later.run(1, pause_on_findings=False)
    write_report(session_later, folder, overwrite=True)
    assert (folder / "index.html").read_bytes() != first
    assert not (folder / "snapshots" / "filters-iter000007.png").exists()  # old files gone
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_folder_that_is_not_a_report_is_never_replaced(report, tmp_path):
    session, _ = report
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(SaveError, match="not a report"):
        write_report(session, tmp_path, overwrite=True)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert write_report(session, empty) == empty and (empty / "index.html").exists()


def test_zip(report, tmp_path):
    session, folder = report
    archive = write_report(session, tmp_path / "shared", as_zip=True)
    assert archive == tmp_path / "shared.zip"
    with zipfile.ZipFile(archive) as opened:
        names = set(opened.namelist())
    expected = {
        f"shared/{p.relative_to(folder).as_posix()}"
        for p in folder.rglob("*")
        if p.is_file()
        and not p.relative_to(folder).as_posix().startswith(("reproduced", "without"))
    }
    assert expected - {"shared/plots/loss curve.png"} == names
    with pytest.raises(SaveError, match="already exists"):
        write_report(session, tmp_path / "shared.zip", as_zip=True)
    assert write_report(session, tmp_path / "shared.zip", as_zip=True, overwrite=True) == archive
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared.zip"]


@pytest.mark.parametrize("as_zip", [False, True])
def test_a_report_builds_in_the_work_folder_it_is_given_and_leaves_it_empty(
    report, tmp_path, monkeypatch, as_zip
):
    # The window makes the folder, so that it can remove what a killed writer left there.
    session, _ = report
    work = new_work_folder(tmp_path / "r")
    assert work.parent == tmp_path and work.name.startswith(".r.") and not any(work.iterdir())
    seen = []
    build = report_module._build

    def watched(built, *args):
        seen.append(built)
        return build(built, *args)

    monkeypatch.setattr(report_module, "_build", watched)
    written = write_report(session, tmp_path / "r", as_zip=as_zip, work_folder=work)
    assert seen == [work / "r"]
    assert written == tmp_path / ("r.zip" if as_zip else "r")
    assert zipfile.is_zipfile(written) if as_zip else (written / "index.html").is_file()
    assert list(work.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([work.name, written.name])


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_folder_filled_while_the_report_is_built_is_never_replaced(
    report, tmp_path, monkeypatch, overwrite
):
    # Chosen empty, but a plot was saved into it (or another window wrote a report of the same
    # name) before this report was moved into place: the move refuses, nothing is deleted.
    session, _ = report
    target = tmp_path / "r"
    target.mkdir()
    build = report_module._build

    def meanwhile(built, *args):
        build(built, *args)
        (target / "plots.png").write_bytes(b"the user's")

    monkeypatch.setattr(report_module, "_build", meanwhile)
    with pytest.raises(SaveError, match="no longer empty"):
        write_report(session, target, overwrite=overwrite)  # (overwrite: of a report only)
    assert [p.name for p in target.iterdir()] == ["plots.png"]
    assert (target / "plots.png").read_bytes() == b"the user's"
    assert [p.name for p in tmp_path.iterdir()] == ["r"]  # no hidden folder left either


def test_a_failed_move_leaves_the_chosen_empty_folder(report, tmp_path, monkeypatch):
    # e.g. a work folder on another file system: the error is reported, the folder stays
    session, _ = report
    (tmp_path / "r").mkdir()

    def cross_device(source, target):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(report_module.os, "rename", cross_device)
    with pytest.raises(SaveError, match="cross-device"):
        write_report(session, tmp_path / "r")
    assert (tmp_path / "r").is_dir()


def test_an_empty_folder_is_filled_by_the_report(report, tmp_path):
    session, _ = report
    (tmp_path / "r").mkdir()
    assert write_report(session, tmp_path / "r") == tmp_path / "r"
    assert (tmp_path / "r" / "index.html").is_file()


def test_snapshot_iterations_can_be_chosen(report, tmp_path):
    session, _ = report
    folder = write_report(session, tmp_path / "r", snapshot_iterations=[2, 2, 6])
    names = sorted(p.stem for p in (folder / "snapshots").glob("*.png"))
    assert names == ["filters-iter000002", "filters-iter000006"]
    for bad in ([8], [-1], [1.5]):
        with pytest.raises(ValueError, match="snapshot iteration"):
            write_report(session, tmp_path / "bad", snapshot_iterations=bad)
    assert not (tmp_path / "bad").exists()


def test_plots_must_be_png(report, tmp_path):
    session, _ = report
    with pytest.raises(ValueError, match="not PNG"):
        write_report(session, tmp_path / "r", plot_pngs={"curve": b"GIF89a..."})
    assert not list(tmp_path.iterdir())


def test_default_snapshots_are_start_deaths_and_end(report):
    session, _ = report
    assert default_snapshot_iterations(session, session.history.findings) == [0, 5, 7]


def test_findings_of_a_thinned_history_are_all_there(tmp_path, monkeypatch):
    """With a tiny history budget the records of old iterations are dropped; their findings, as
    they first appeared, are still in the report, without repeating the run."""
    shapes = load_example("shapes")
    thin = TrainingSession(shapes, preset_config("seed", history_budget_mb=1))
    full = TrainingSession(shapes, preset_config("seed"))
    for session in (thin, full):
        session.run(12, pause_on_findings=False)
    assert any(thin.history.stored(k) is None for k in range(13))
    expected = FindingLog()
    for k in range(13):
        expected.add(full.history.stored(k).findings)
    monkeypatch.setattr(TrainingSession, "step", lambda self: pytest.fail("the run was repeated"))
    write_report(thin, tmp_path / "r", snapshot_iterations=[0])
    written = json.loads((tmp_path / "r" / FINDINGS_JSON_NAME).read_text(encoding="utf-8"))
    assert written["first_appeared"] == [f.to_dict() for f in expected.findings]
    assert start_config(thin) == thin.config


@pytest.mark.parametrize("chosen", [None, [3, 1]], ids=["default snapshots", "chosen"])
def test_a_run_snapshot_writes_the_report_of_its_moment_while_the_session_goes_on(
    question, tmp_path, chosen
):
    session = changed_mid_run(question)
    write_report(session, tmp_path / "direct", snapshot_iterations=chosen, preset="seed")
    run = RunSnapshot(session, chosen)
    session.update_settings(learning_rate=0.01)
    session.run(5, pause_on_findings=False)  # the session goes on; the snapshot does not
    write_report(run, tmp_path / "snapshot", preset="seed")
    direct = sorted(p.relative_to(tmp_path / "direct") for p in (tmp_path / "direct").rglob("*"))
    later = sorted(p.relative_to(tmp_path / "snapshot") for p in (tmp_path / "snapshot").rglob("*"))
    assert direct == later
    for relative in direct:
        a, b = tmp_path / "direct" / relative, tmp_path / "snapshot" / relative
        if a.is_file():
            assert a.read_bytes() == b.read_bytes(), relative
    with pytest.raises(ValueError, match="snapshot iteration"):
        RunSnapshot(session, [session.iteration + 1])


def test_metrics_csv_in_blocks_is_every_row_as_formatted_one_by_one(tmp_path):
    from model.headless import metrics_cells, metrics_writer
    from model.history import MetricsTable
    from model.record import METRIC_NAMES
    from model.report import METRICS_ROWS_PER_WRITE, _write_metrics

    rows = 2 * METRICS_ROWS_PER_WRITE + 501
    rng = np.random.default_rng(1)
    scales = 10.0 ** rng.integers(-9, 9, rows)[:, None]
    scalars = rng.standard_normal((rows, len(METRIC_NAMES))) * scales
    scalars[:, 0] = np.arange(rows)
    scalars[::7, 3] = np.nan
    table = MetricsTable(2)
    table.extend(scalars, np.zeros((rows, 2)), np.zeros((rows, 2)))
    _write_metrics(tmp_path / "blocks.csv", table)
    with open(tmp_path / "one.csv", "w", newline="", encoding="utf-8") as handle:
        writer = metrics_writer(handle)
        for row in scalars:
            writer.writerow(metrics_cells(dict(zip(METRIC_NAMES, row, strict=True))))
    assert (tmp_path / "blocks.csv").read_bytes() == (tmp_path / "one.csv").read_bytes()


def test_odd_class_names_and_an_unsorted_dataset_reproduce_exactly(tmp_path, capsys, monkeypatch):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(3, 3, 5, 4), dtype=np.uint8)
    dataset = Dataset(images, np.array([1, 0, 1]), ("a,b", ".hidden"), ("x", "y", "z"))
    session = TrainingSession(dataset, preset_config("recommended"))
    session.run(6, pause_on_findings=False)
    folder = write_report(session, tmp_path / "r")
    assert sorted(p.name for p in (folder / "data").iterdir()) == ["0_a_b", "1_hidden"]
    reloaded = load_dataset(folder / "data")
    assert reloaded.class_names == ("a_b", "hidden")
    order = [1, 0, 2]  # the folder convention puts label 0 first
    assert np.array_equal(reloaded.images, images[order])
    description = json.loads((folder / "dataset.json").read_text(encoding="utf-8"))
    assert description["order_survives_reload"] is False
    assert description["files"][0] == "data/1_hidden/0000_x.png"
    # The image list keeps the run's order and class names, so the run repeats exactly.
    listed = load_image_list(folder / "images.csv")
    assert listed.digest() == dataset.digest() and listed.class_names == ("a,b", ".hidden")
    monkeypatch.chdir(folder)
    assert cli.main(reproduce_arguments(session)[1:]) == 0, capsys.readouterr().err
    reproduced = (folder / "reproduced" / "metrics.csv").read_bytes()
    assert reproduced == (folder / "metrics.csv").read_bytes()


def test_an_unwritable_parent_is_a_save_error(report, tmp_path):
    session, _ = report
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SaveError):
        write_report(session, blocker / "r")
    assert Path(blocker).read_text() == ""


def test_a_report_before_the_first_step_reproduces_its_one_row(question, tmp_path, monkeypatch):
    session = TrainingSession(question, preset_config("seed"))
    folder = write_report(session, tmp_path / "r")
    assert sorted(p.stem for p in (folder / "snapshots").glob("*.png")) == ["filters-iter000000"]
    assert "Pressing Step now will kill the filter" in (folder / "index.html").read_text("utf-8")
    monkeypatch.chdir(folder)
    assert cli.main(reproduce_arguments(session)[1:]) == 0
    ours = (folder / "metrics.csv").read_text(encoding="utf-8").splitlines()
    theirs = (folder / "reproduced" / "metrics.csv").read_text(encoding="utf-8").splitlines()
    assert len(ours) == 2 and theirs[:2] == ours and len(theirs) == 3


def test_the_page_says_what_each_plot_shows(question, tmp_path):
    """A learner's review: each plot was captioned with its file name, and an outcome map swept
    with other settings read as one of this run."""
    session = TrainingSession(question, preset_config("recommended"))
    session.run(2, pause_on_findings=False)
    picture = Path(__file__).resolve().parents[2] / "docs" / "screenshot.png"
    plots = {name: picture.read_bytes() for name in ("curve-loss", "outcome-map", "own plot")}
    folder = report_module.write_report(session, tmp_path / "r", plot_pngs=plots)
    page = html.unescape((folder / "index.html").read_text(encoding="utf-8"))
    assert "<figcaption>Loss (binary cross-entropy) over the iterations" in page
    assert "Its title gives the settings it held fixed, which may not be this run's." in page
    assert "<figcaption>own plot</figcaption>" in page  # (a name without a caption: itself)


def test_the_images_keep_their_names_after_their_numbers():
    """A teacher's images came back as img_0000.png…: the names were lost. The numbers stay
    first, so that loading data/ keeps the run's order."""
    images = np.zeros((5, 3, 2, 2), dtype=np.uint8)
    names = ("/home/t/cats/cat (1).PNG", "dogs/dog.jpg", "cats/.png", "cats/猫ä.png", "x" * 300)
    dataset = Dataset(images, np.array([0, 1, 0, 0, 1]), ("cats", "dogs"), names)
    assert data_files(dataset) == [
        "data/0_cats/0000_cat _1.png",
        "data/1_dogs/0000_dog.png",
        "data/0_cats/0001_png.png",
        "data/0_cats/0002_猫ä.png",
        f"data/1_dogs/0001_{'x' * 60}.png",  # (a long name made the path too long to write)
    ]


@pytest.fixture
def undecodable_folder(tmp_path):
    """A dataset whose folder, a class folder and a file have names with a byte that is no
    UTF-8 (a legacy-encoded name on Linux), or a skip where the file system refuses them."""
    root = os.fsencode(tmp_path) + b"/d\xffata"
    try:
        for label, name in ((0, b"0_cr\xfess"), (1, b"1_circle")):
            os.makedirs(root + b"/" + name)
            for i in range(2):
                image = Image.new("RGB", (8, 8), (100 * i, 50 * label, 0))
                image.save(os.fsdecode(root + b"/" + name + b"/im\xfd%d.png" % i), "PNG")
    except (OSError, UnicodeError):
        pytest.skip("this file system takes only UTF-8 names")
    return os.fsdecode(root)


def test_names_that_are_no_utf8_do_not_fail_a_report_or_a_headless_run(
    undecodable_folder, tmp_path, capsys
):
    """A review: such a name failed Save report and a headless run with a raw
    UnicodeEncodeError. JSON keeps the name exactly (escaped); text for people shows U+FFFD."""
    dataset = load_dataset(undecodable_folder)
    session = TrainingSession(dataset, preset_config("recommended"))
    session.run(2, pause_on_findings=False)
    folder = tmp_path / "report"
    write_report(session, folder, preset="recommended", source={"folder": undecodable_folder})
    described = json.loads((folder / "dataset.json").read_text(encoding="utf-8"))
    assert described["source"]["folder"] == undecodable_folder  # the same bytes, read back
    assert "d\ufffdata" in (folder / "index.html").read_text(encoding="utf-8")
    reloaded = load_image_list(folder / "images.csv")
    assert np.array_equal(reloaded.images, dataset.images)
    assert reloaded.class_names == ("cr\ufffdss", "circle")

    out = tmp_path / "headless"
    status = cli.main(["--headless", "--data", undecodable_folder, "--iterations", "2",
                       "--out", str(out)])  # fmt: skip
    assert status == 0, capsys.readouterr().err
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert undecodable_folder in config["command"]


def test_the_report_says_which_files_were_skipped_and_which_resized(tmp_path):
    """A learner's report named neither the two files the loader refused nor the 48×48 image
    it squashed to 32×32, though the window had shown both."""
    for label, name in ((0, "cross"), (1, "circle")):
        folder = tmp_path / "data" / f"{label}_{name}"
        folder.mkdir(parents=True)
        for index in range(2):
            Image.new("RGB", (32, 32), (200, 30 * index, 30)).save(folder / f"{name}{index}.png")
    Image.new("RGB", (48, 48), (10, 200, 30)).save(tmp_path / "data" / "1_circle" / "big.png")
    (tmp_path / "data" / "0_cross" / "notes.txt").write_text("not an image")
    dataset = load_dataset(tmp_path / "data")
    session = TrainingSession(dataset, preset_config("recommended"))
    folder = write_report(session, tmp_path / "report", source={"folder": "data"})

    described = json.loads((folder / "dataset.json").read_text())
    assert [entry["file"] for entry in described["skipped"]] == ["notes.txt"]
    big = dataset.paths.index(str(tmp_path / "data" / "1_circle" / "big.png"))
    assert described["resized"] == [{"image": big + 1, "file": "big.png", "file_size": [48, 48]}]
    page = (folder / "index.html").read_text(encoding="utf-8")
    assert "Skipped 1 file that could not be used: notes.txt (" in page
    assert (
        "1 image resized to 32x32 from another size (the aspect ratio is not kept): "
        f"#{big + 1} big.png from 48x48." in page
    )
    assert "<figcaption>#1 cross<br>cross0.png</figcaption>" in page


@pytest.mark.parametrize(
    ("iterations", "shown"),
    [
        (np.arange(142), [0, 20, 40, 60, 80, 100, 120, 140, 141]),
        (np.arange(12), list(range(12))),
        (np.arange(1001), list(range(0, 1001, 100))),
        (np.array([0, 32, 64, 96, 100]), [0, 32, 64, 96, 100]),  # thinned: every row kept
    ],
)
def test_the_page_shows_metrics_at_round_iterations_and_the_last(iterations, shown):
    """Spread evenly, a learner's 142 rows were shown at 0, 10, ..., 70, 81, 91, ..."""
    assert iterations[page_metric_rows(iterations)].tolist() == shown

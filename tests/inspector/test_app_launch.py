"""Launching: a machine that cannot open a window gets one line saying why, never an abort."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from inspector.app import display_problem, package_for, run_app, x_display_reachable
from model.presets import preset_config

ROOT = Path(__file__).resolve().parents[2]


def no_libraries_missing():
    return []


def test_no_display_suggests_xvfb_or_headless():
    problem = display_problem({}, "linux", no_libraries_missing)
    assert "DISPLAY is not set" in problem and "--headless" in problem


def test_missing_xcb_libraries_are_named_with_their_packages():
    missing = lambda: ["libxcb-cursor.so.0", "libxkbcommon-x11.so.0"]  # noqa: E731
    problem = display_problem({"DISPLAY": ":0"}, "linux", missing)
    assert "libxcb-cursor.so.0" in problem
    assert "sudo apt-get install libxcb-cursor0 libxkbcommon-x11-0" in problem
    assert "\n" not in problem


def answers(display):
    return True


@pytest.mark.parametrize(
    "environ,platform",
    [
        ({"QT_QPA_PLATFORM": "offscreen"}, "linux"),
        ({"WAYLAND_DISPLAY": "wayland-0"}, "linux"),
        ({"DISPLAY": ":0"}, "linux"),
        ({}, "darwin"),
        ({}, "win32"),
    ],
)
def test_no_problem_where_a_window_can_open(environ, platform, tmp_path):
    if "WAYLAND_DISPLAY" in environ:
        (tmp_path / "wayland-0").touch()  # the compositor's socket
        environ = {**environ, "XDG_RUNTIME_DIR": str(tmp_path)}
    assert display_problem(environ, platform, no_libraries_missing, answers) is None


def test_a_display_nobody_answers_is_said_instead_of_aborting(tmp_path):
    """DISPLAY=:99 with nothing there made Qt abort (exit 134) blaming libxcb-cursor0."""
    problem = display_problem({"DISPLAY": ":99"}, "linux", no_libraries_missing, lambda d: False)
    assert problem.startswith("cannot reach the display ':99'") and "--headless" in problem
    # A stale WAYLAND_DISPLAY (no socket) falls back to X11, as Qt does.
    stale = {"WAYLAND_DISPLAY": "wayland-9", "XDG_RUNTIME_DIR": str(tmp_path)}
    assert "DISPLAY is not set" in display_problem(stale, "linux", no_libraries_missing, answers)


def test_an_x_server_is_found_by_connecting_to_it():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        port = server.getsockname()[1]
        if port <= 6000:
            pytest.skip("the system gave a port below X's range")
        server.listen()
        assert x_display_reachable(f"127.0.0.1:{port - 6000}")
    assert not x_display_reachable(f"127.0.0.1:{port - 6000}")  # closed now
    assert x_display_reachable("odd-address")  # unreadable: left to Qt
    assert x_display_reachable("far-away.example:0")  # not looked up: left to Qt


def test_package_names_follow_debian_conventions():
    assert package_for("libxcb-icccm.so.4") == "libxcb-icccm4"
    assert package_for("libxkbcommon-x11.so.0") == "libxkbcommon-x11-0"
    assert package_for("libEGL.so.1") == "libegl1"


def test_launch_without_display_is_one_line_and_exit_2():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.pop("QT_QPA_PLATFORM", None)
    result = subprocess.run(
        [sys.executable, "-m", "inspector"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("training-inspector: no display found")


def test_bad_folder_is_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert run_app(str(tmp_path / "missing")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("training-inspector: error:")


def test_settings_that_do_not_fit_the_images_are_one_line(capsys, monkeypatch, tmp_path):
    """A review: --kernel 11 --padding valid on small images crashed the training process
    with a traceback (headless said it in one line)."""
    from PIL import Image

    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    for label in ("0_a", "1_b"):
        (tmp_path / label).mkdir()
        Image.new("RGB", (8, 8)).save(tmp_path / label / "x.png")
    config = preset_config("seed", kernel_size=11, padding="valid")
    assert run_app(str(tmp_path), config=config) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "training-inspector: error: a 11x11 kernel with 'valid' padding does not fit a 8x8 "
        "image: use a kernel of at most 8, or 'same' padding"
    ]


def test_the_app_starts_on_a_folder_with_a_preset_and_stays_up(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path))
    shapes = ROOT / "resources" / "examples" / "shapes"
    process = subprocess.Popen(
        [sys.executable, "-m", "inspector", str(shapes), "--preset", "recommended"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            process.wait(timeout=6)  # still running: the window is up
    finally:
        process.terminate()
        _, err = process.communicate(timeout=10)
    assert "Traceback" not in err


def test_an_image_list_opens_in_its_order_and_is_named_as_a_list(qtbot, tmp_path):
    from PySide6.QtWidgets import QLabel

    from inspector.app import _initial_dataset
    from inspector.controller import SessionController
    from inspector.views.data import DataView
    from model.data import load_example
    from model.presets import preset_config

    question = load_example("question")
    listed = tmp_path / "images.csv"
    lines = ["path,label,class_name"]
    for path, label in reversed(list(zip(question.paths, question.labels, strict=True))):
        lines.append(f"{path},{label},{question.class_names[label]}")
    listed.write_text("\n".join(lines) + "\n", encoding="utf-8")
    dataset, source = _initial_dataset(str(listed))
    assert dataset.labels.tolist() == [1, 0]  # the list's order, not the folder's
    assert source == str(listed)
    controller = SessionController(dataset, preset_config("seed"), backend="thread", source=source)
    try:
        view = DataView(controller)
        qtbot.addWidget(view)
        assert view.findChild(QLabel, "dataSource").text() == "Image list: images.csv"
        assert controller._source_description() == {"list": str(listed)}  # noqa: SLF001
    finally:
        controller.shutdown()


def test_without_a_folder_a_preset_opens_its_own_example():
    from inspector.app import _initial_dataset
    from model.presets import PRESETS

    for name, preset in PRESETS.items():
        dataset, source = _initial_dataset(None, preset.example)
        assert source == f"example:{preset.example}", name
    assert len(_initial_dataset(None, PRESETS["shapes"].example)[0]) == 80

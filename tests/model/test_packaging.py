"""The installed package (as ``pip install .`` leaves it) finds its bundled examples."""

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import pytest


def _installed_non_editable() -> bool:
    # pip writes direct_url.json for what it installs; the egg-info a local build leaves in the
    # source tree (found first when tests run from there) has none and does not count.
    for dist in importlib.metadata.distributions(name="training-inspector"):
        direct_url = dist.read_text("direct_url.json")
        if direct_url and not json.loads(direct_url).get("dir_info", {}).get("editable", False):
            return True
    return False


@pytest.mark.skipif(not _installed_non_editable(), reason="needs a non-editable install (CI)")
def test_installed_package_finds_examples_outside_the_source_tree(tmp_path):
    script = (
        "import model.data as d, json\n"
        "q = d.load_example('question'); s = d.load_example('shapes')\n"
        "print(json.dumps([d.__file__, str(d.example_path('question')), len(q), len(s)]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    module_file, example, n_question, n_shapes = json.loads(result.stdout)
    assert "site-packages" in module_file
    assert "site-packages" in example
    assert (n_question, n_shapes) == (2, 80)


@pytest.mark.skipif(not _installed_non_editable(), reason="needs a non-editable install (CI)")
def test_console_script_runs_headless(tmp_path):
    command = Path(sys.executable).with_name("training-inspector")
    out = tmp_path / "out"
    result = subprocess.run(
        [str(command), "--headless", "--preset", "seed", "--iterations", "2", "--out", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert (out / "metrics.csv").read_text().count("\n") == 4  # header + iterations 0, 1, 2

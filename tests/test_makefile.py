"""The Makefile on a fresh clone: every notebook target runs its notebook, even with outputs already committed."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
REPO = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    if shutil.which("git") is None or shutil.which("make") is None or not (REPO / ".git").exists():
        pytest.skip("needs git, make and a git checkout")
    dest = tmp_path_factory.mktemp("clone") / "repo"
    subprocess.run(["git", "clone", "-q", str(REPO), str(dest)], check=True)
    return dest


@pytest.mark.parametrize("target,notebook", [("figure3", "figure3_manmade_natural"), ("figure5", "figure5_resnet_depth"),
                                             ("study", "study_budget")])
def test_notebook_targets_always_run(clone, target, notebook):
    # a clone gives every file the same time, so file targets would count as up to date: the targets are phony
    for _ in range(2):
        out = subprocess.run(["make", "-n", target, "PROFILE=quick"], cwd=clone, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert "mkf profile quick" in out.stdout
        assert f"papermill -k python3" in out.stdout and f"notebooks/{notebook}.ipynb" in out.stdout
        assert "-p profile quick -p out_dir ../paper_figures/quick" in out.stdout

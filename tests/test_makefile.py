"""The Makefile on a fresh clone: every notebook target runs its notebook, even with outputs already committed."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
REPO = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """The working tree's tracked files as a fresh clone has them: every file with the same time."""
    if shutil.which("git") is None or shutil.which("make") is None or not (REPO / ".git").exists():
        pytest.skip("needs git, make and a git checkout")
    dest = tmp_path_factory.mktemp("clone") / "repo"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    for name in filter(None, files.split("\0")):
        if (REPO / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(REPO / name, dest / name)
            os.utime(dest / name, (1e9, 1e9))
    return dest


@pytest.mark.parametrize("target,notebook", [("figure3", "figure3_manmade_natural"), ("figure5", "figure5_resnet_depth"),
                                             ("controls", "controls_depthwise")])
def test_notebook_targets_always_run(clone, target, notebook):
    """A file named like the target (a clone gives every file one time) would make a file target up to date; a
    notebook target runs its notebook all the same."""
    (clone / target).write_text("")
    try:
        out = subprocess.run(["make", "-n", target, "PROFILE=quick"], cwd=clone, capture_output=True, text=True)
    finally:
        (clone / target).unlink()
    assert out.returncode == 0, out.stderr
    assert "mkf profile quick" in out.stdout
    assert "papermill -k python3" in out.stdout and f"notebooks/{notebook}.ipynb" in out.stdout
    assert "-p profile quick -p out_dir " in out.stdout and f"mv -f build/quick/{target}/out/* paper_figures/quick/" in out.stdout


def test_two_notebooks_for_one_target_are_refused(clone):
    extra = clone / "notebooks" / "figure3_copy.ipynb"
    shutil.copyfile(clone / "notebooks" / "figure3_manmade_natural.ipynb", extra)
    try:
        out = subprocess.run(["make", "-n", "figure5"], cwd=clone, capture_output=True, text=True)
    finally:
        extra.unlink()
    assert out.returncode != 0 and "two notebooks for target figure3" in out.stderr


def test_a_failed_build_leaves_the_previous_figure_intact(tmp_path):
    """The notebook fails halfway (its profile names a split that does not exist): make fails, and the figure
    already in the output folder is untouched."""
    profile = tmp_path / "broken.yaml"
    smoke = (REPO / "configs" / "profiles" / "smoke.yaml").read_text()
    profile.write_text(smoke.replace("man-made: cifar10-manmade", "man-made: no-such-split"))
    out = tmp_path / "out"
    out.mkdir()
    (out / "figure3.png").write_bytes(b"previous figure")
    run = subprocess.run(["make", "figure3", f"PROFILE={profile}", f"OUT={out}", f"BUILD={tmp_path / 'build'}"],
                         cwd=REPO, capture_output=True, text=True)
    assert run.returncode != 0 and "no-such-split" in run.stdout + run.stderr
    assert [p.name for p in out.iterdir()] == ["figure3.png"] and (out / "figure3.png").read_bytes() == b"previous figure"


def test_records_stages_finished_runs_records_only(tmp_path):
    if shutil.which("git") is None or shutil.which("make") is None:
        pytest.skip("needs git and make")
    shutil.copyfile(REPO / "Makefile", tmp_path / "Makefile")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], cwd=tmp_path, check=True)
    files = {"done/config.yaml", "done/metrics.csv", "done/result.json", "done/reproductions.csv", "done/model.pt",
             "checked/config.yaml", "checked/metrics.csv", "checked/result.json",
             "running/config.yaml", "running/metrics.csv", "running/checkpoint.pt"}
    for f in files:
        (tmp_path / "runs" / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "runs" / f).write_text("x")
    out = subprocess.run(["make", "records", f"BIN={REPO / '.venv' / 'bin'}", "STAMP="], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    staged = subprocess.run(["git", "diff", "--cached", "--name-only"], cwd=tmp_path, capture_output=True, text=True,
                            check=True).stdout.split()
    # a finished run's record and its reproduction log, and the index; never weights, checkpoints or an unfinished run
    assert sorted(staged) == sorted([f"runs/{f}" for f in files if f.split("/")[0] != "running" and not f.endswith(".pt")]
                                    + ["runs/INDEX.csv"])
    assert "8 record files staged" in out.stdout


def test_executor_makes_a_notebook_submit_its_runs_and_tables_run_every_table(clone):
    """EXECUTOR / GPUS reach the notebook as the profile's submit key (parsed as papermill parses it); `make tables`
    runs every *_table notebook."""
    import shlex

    import yaml

    out = subprocess.run(["make", "-n", "crossdataset", "EXECUTOR=slurm", "GPUS=8"], cwd=clone, capture_output=True,
                         text=True)
    words = shlex.split(out.stdout.replace("\\\n", " "))
    assert yaml.safe_load(words[words.index("-y") + 1]) == {"overrides": {"submit": {"executor": "slurm", "gpus": 8}}}
    plain = subprocess.run(["make", "-n", "crossdataset"], cwd=clone, capture_output=True, text=True).stdout
    assert "submit" not in plain
    tables = subprocess.run(["make", "-n", "tables"], cwd=clone, capture_output=True, text=True).stdout
    assert {f"notebooks/{t}_table.ipynb" for t in ("crossdataset", "sourcesize", "crossarch", "pointwise")} <= set(
        tables.split())

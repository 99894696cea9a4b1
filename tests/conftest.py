"""Shared helpers: tiny configs on the synthetic dataset, notebooks executed at their defaults (the smoke profile)
in place of their nbval pass, records made without training, and a run store per test session (shared with the
nbval pass under `make test`)."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import papermill as pm
import pytest
from omegaconf import OmegaConf

from mkf_utils.config import load_config, run_id
from mkf_utils.runfolder import RunFolder
from mkf_utils.runs import RunStore

NOTEBOOKS = Path(__file__).parents[1] / "notebooks"
AT_DEFAULTS = {  # fixture name -> the notebook it executes at its defaults, as nbval would (see notebook_fixture)
    "figure2": "figure2_setup.ipynb", "figure3": "figure3_manmade_natural.ipynb",
    "figure4": "figure4_reverse_freezing.ipynb", "figure5": "figure5_resnet_depth.ipynb",
    "generality": "generality_filters.ipynb", "controls": "controls_depthwise.ipynb", "study": "study_budget.ipynb",
}
TINY = ["data.name=synthetic", "model.name=convnext_atto", "model.stem_stride=2", "data.batch_size=32", "data.per_class=32",
        "optim.epochs=2", "optim.warmup_epochs=0.5", "optim.lr=0.05", "runtime.deterministic=true"]


def tiny_config(*overrides: str):
    """A 2-epoch convnext_atto run on synthetic data (10 steps per epoch, about a second each on 2 cores)."""
    return load_config(overrides=TINY + list(overrides))


def notebook_fixture(name: str):
    """A module-scoped fixture ``name`` that executes :data:`AT_DEFAULTS`'s notebook through papermill at its
    defaults (the smoke profile, what nbval runs) on the session's :func:`store`, into a folder of its own
    (``executed.ipynb`` and the files the notebook writes), and returns that folder. A test using it stands in for
    the notebook's nbval pass: nbval skips a notebook a selected test executes, so each executes once per run."""
    @pytest.fixture(scope="module", name=name)
    def executed(tmp_path_factory, store: RunStore) -> Path:
        out = tmp_path_factory.mktemp(name)
        pm.execute_notebook(NOTEBOOKS / AT_DEFAULTS[name], out / "executed.ipynb", kernel_name="python3",
                            cwd=str(NOTEBOOKS), parameters={"store": str(store.root), "out_dir": str(out)})
        return out
    return executed


def records_copy(src: Path, dst: Path) -> Path:
    """What a fresh clone has of the run store ``src``: each finished run's record (:attr:`RunFolder.RECORD`), no
    weights, under ``dst``."""
    for run in (d for d in src.iterdir() if d.is_dir()):
        for f in RunFolder(run).record_files():
            (dst / run.name).mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, dst / run.name / f.name)
    return dst


def fake_record(store: RunStore, cfg, **result) -> str:
    """A finished run's record of ``cfg`` in ``store`` (its config and a result of ``result``), without training;
    returns the run's id."""
    folder = store.folder(run_id(cfg))
    folder.path.mkdir()
    folder.config_file.write_text(OmegaConf.to_yaml(cfg))
    folder.result_file.write_text(json.dumps(result))
    return folder.path.name


def pytest_itemcollected(item):
    """The package's doctests are unit tests (constructed inputs, no training): `make test-unit` runs them too."""
    if isinstance(item, pytest.DoctestItem):
        item.add_marker(pytest.mark.unit)


@pytest.hookimpl(trylast=True)  # after -m and -k have deselected theirs
def pytest_collection_modifyitems(config, items):
    """nbval's cells of a notebook that a selected test executes at its defaults (:func:`notebook_fixture`) are
    deselected: the test's execution is the same check (every cell runs at the defaults), with assertions on top."""
    executed = {AT_DEFAULTS[f] for item in items for f in getattr(item, "fixturenames", ()) if f in AT_DEFAULTS}
    twice = [item for item in items if item.path.suffix == ".ipynb" and item.path.name in executed]
    if twice:
        config.hook.pytest_deselected(items=twice)
        items[:] = [item for item in items if item not in twice]


@pytest.fixture(scope="session")
def store(tmp_path_factory) -> RunStore:
    """The session's run store: `make test`'s ``$MKF_STORE``, which the nbval pass uses too, so a run that a
    notebook's test and its nbval execution both plan trains once (the later one finds it, or waits on its lock);
    without ``$MKF_STORE``, a temporary one."""
    root = os.environ.get("MKF_STORE")
    return RunStore(root if root else tmp_path_factory.mktemp("runs"))

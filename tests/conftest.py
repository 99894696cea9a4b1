"""Shared helpers: tiny configs on the synthetic dataset, notebooks run at the smoke profile, records made without
training, and a run store per test session (shared with the nbval pass under `make test`)."""
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
FIGURE3_CURVE = {  # over the smoke profile (what nbval runs): Figure 3's curve at two depths, as the figure has it
    "figure3": {"treatments": {"AnB": [0.5, 1.0], "BnB": [1.0], "random-frozen": [1.0]}},
}
TINY = ["data.name=synthetic", "model.name=convnext_atto", "model.stem_stride=2", "data.batch_size=32", "data.per_class=32",
        "optim.epochs=2", "optim.warmup_epochs=0.5", "optim.lr=0.05", "runtime.deterministic=true"]


def tiny_config(*overrides: str):
    """A 2-epoch convnext_atto run on synthetic data (10 steps per epoch, about a second each on 2 cores)."""
    return load_config(overrides=TINY + list(overrides))


def execute(notebook: str, out: Path, store: RunStore, params: dict | None = None, **overrides) -> Path:
    """Run ``notebook`` through papermill at the smoke profile (the defaults nbval runs) with
    :data:`FIGURE3_CURVE` and ``overrides`` over it, and notebook ``params``, into ``out`` (``executed.ipynb`` and the
    files it writes); returns ``out``. On the session's :func:`store` a run the nbval pass also plans trains once."""
    pm.execute_notebook(NOTEBOOKS / notebook, out / "executed.ipynb", kernel_name="python3", cwd=str(NOTEBOOKS),
                        parameters={"profile": "smoke", "overrides": {**FIGURE3_CURVE, **overrides},
                                    "store": str(store.root), "out_dir": str(out), **(params or {})})
    return out


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


def pytest_collection_modifyitems(items):
    """The package's doctests are unit tests (constructed inputs, no training): `make test-unit` runs them too."""
    for item in items:
        if isinstance(item, pytest.DoctestItem):
            item.add_marker(pytest.mark.unit)


@pytest.fixture(scope="session")
def store(tmp_path_factory) -> RunStore:
    """The session's run store: `make test`'s ``$MKF_STORE``, which the nbval pass uses too, so a run that a
    notebook's test and its nbval execution both plan trains once (the later one finds it, or waits on its lock);
    without ``$MKF_STORE``, a temporary one."""
    root = os.environ.get("MKF_STORE")
    return RunStore(root if root else tmp_path_factory.mktemp("runs"))

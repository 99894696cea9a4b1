"""Shared fixtures: tiny configs on the synthetic dataset, and a run store per test session."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mkf_utils.config import load_config
from mkf_utils.runfolder import RunFolder
from mkf_utils.runs import RunStore

TINY = ["data.name=synthetic", "model.name=convnext_atto", "model.stem_stride=2", "data.batch_size=32", "data.per_class=32",
        "optim.epochs=2", "optim.warmup_epochs=0.5", "optim.lr=0.05", "runtime.deterministic=true"]


def tiny_config(*overrides: str):
    """A 2-epoch convnext_atto run on synthetic data (10 steps per epoch, about a second each on 2 cores)."""
    return load_config(overrides=TINY + list(overrides))


def records_copy(src: Path, dst: Path) -> Path:
    """What a fresh clone has of the run store ``src``: each finished run's record (:attr:`RunFolder.RECORD`), no
    weights, under ``dst``."""
    for run in (d for d in src.iterdir() if d.is_dir()):
        for f in RunFolder(run).record_files():
            (dst / run.name).mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, dst / run.name / f.name)
    return dst


def pytest_collection_modifyitems(items):
    """The package's doctests are unit tests (constructed inputs, no training): `make test-unit` runs them too."""
    for item in items:
        if isinstance(item, pytest.DoctestItem):
            item.add_marker(pytest.mark.unit)


@pytest.fixture(scope="session")
def store(tmp_path_factory) -> RunStore:
    return RunStore(tmp_path_factory.mktemp("runs"))

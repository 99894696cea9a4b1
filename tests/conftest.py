"""Shared fixtures: tiny configs on the synthetic dataset, and a run store per test session."""
from __future__ import annotations

import pytest

from mkf_utils.config import load_config
from mkf_utils.runs import RunStore

TINY = ["data.name=synthetic", "model.name=convnext_atto", "model.stem_stride=2", "data.batch_size=32", "data.per_class=32",
        "optim.epochs=2", "optim.warmup_epochs=0.5", "optim.lr=0.05", "runtime.deterministic=true"]


def tiny_config(*overrides: str):
    """A 2-epoch convnext_atto run on synthetic data (10 steps per epoch, about a second each on 2 cores)."""
    return load_config(overrides=TINY + list(overrides))


@pytest.fixture(scope="session")
def store(tmp_path_factory) -> RunStore:
    return RunStore(tmp_path_factory.mktemp("runs"))

"""Smoke tier: figure notebooks through papermill at tiny parameters, then their recorded numbers checked."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import papermill as pm
import pytest

pytestmark = pytest.mark.smoke
NOTEBOOKS = Path(__file__).parents[1] / "notebooks"
TINY = {
    "profile": "test",
    "data": {"name": "synthetic", "root": None, "per_class": 16, "test_per_class": 8},
    "halves": {"man-made": "random-a:0", "natural": "random-b:0"},
    "treatments": {"AnB": [0.5, 1.0], "BnB": [1.0], "random-frozen": [1.0]},
    "seeds": [0],
    "batch_size": 16,
}
COLUMNS = ["architecture", "direction", "target", "n", "n_units", "treatment", "seed", "top1", "base_top1",
           "rel_ratio", "rel_diff", "frozen_fraction", "epochs", "data", "profile", "run_id"]


@pytest.fixture(scope="module")
def figure3(tmp_path_factory):
    out = tmp_path_factory.mktemp("figure3")
    pm.execute_notebook(NOTEBOOKS / "figure3_manmade_natural.ipynb", out / "executed.ipynb", kernel_name="python3",
                        cwd=str(NOTEBOOKS), parameters={**TINY, "store": str(out / "runs"), "out_dir": str(out)})
    return out


def test_figure3_table(figure3):
    df = pd.read_csv(figure3 / "figure3.csv")
    assert list(df.columns) == COLUMNS
    units = {"ResNet-18": 17, "ConvNeXt-atto": 12}
    expected = {(a, d, n, 0) for a, total in units.items() for d in ("man-made→natural", "natural→man-made")
                for n in (round(total / 2), total)}
    got = {(r.architecture, r.direction, r.n, r.seed) for r in df[df.treatment == "AnB"].itertuples()}
    assert got == expected
    assert len(df[df.treatment == "base"]) == 4 and (df[df.treatment == "base"].rel_ratio == 1).all()
    assert len(df[df.treatment.isin(["BnB", "random-frozen"])]) == 8
    assert (df.rel_ratio - df.top1 / df.base_top1).abs().max() < 1e-12
    assert (df.rel_diff - (df.top1 - df.base_top1)).abs().max() < 1e-12
    base = df[df.treatment == "base"].set_index(["architecture", "target"]).top1
    for r in df.itertuples():
        assert r.base_top1 == base[r.architecture, r.target]
    full = df[(df.treatment == "AnB") & (df.n == df.n_units)].groupby("architecture").frozen_fraction.mean()
    assert full["ConvNeXt-atto"] < 0.05 < 0.9 < full["ResNet-18"]


def test_figure3_files(figure3):
    for ext in ("png", "svg", "html", "vl.json"):
        assert (figure3 / f"figure3.{ext}").stat().st_size > 1000
    assert "hconcat" in json.loads((figure3 / "figure3.vl.json").read_text())
    html = (figure3 / "figure3.html").read_text()
    assert "cdn.jsdelivr" not in html  # self-contained: works offline

"""Smoke tier, the notebooks that need no other's runs: the controls, the budget study and Figure 2 executed at
their defaults (the smoke profile), then what they record checked; the cross-dataset table through the package
calls its notebook makes."""
from __future__ import annotations

import nbformat
import pandas as pd
import pytest

from conftest import notebook_fixture

pytestmark = pytest.mark.smoke
controls, study, figure2 = (notebook_fixture(n) for n in ("controls", "study", "figure2"))


def test_controls_reads_each_lever_from_paired_runs(controls):
    out = controls
    table, summary = pd.read_csv(out / "controls.csv"), pd.read_csv(out / "controls_summary.csv")
    assert {"identity", "A-centres k=2", "B-centres k=2", "permuted AnB", "radial random"} <= set(table.treatment)
    assert set(summary.lever) == {"identity floor", "few distinct filters", "which part of a filter", "copied or random"}
    paired = pd.read_csv(out / "controls_paired.csv")
    assert {"identity − base", "A-centres k=2 − random k=2", "A-centres k=2 − B-centres k=2"} <= set(paired.comparison)
    readings = [o["data"]["text/markdown"] for c in nbformat.read(out / "executed.ipynb", 4).cells
                if c.cell_type == "code" for o in c.outputs if "text/markdown" in o.get("data", {})]
    assert "**Verdict, ConvNeXt-atto, man-made→natural:**" in readings[0]
    assert "- **ConvNeXt-atto:** copied filters beat random ones with" in readings[1]
    low = pd.read_csv(out / "controls_lowdata.csv")  # the smoke profile's targets with 8 and 12 images per class
    assert set(low.per_class) == {8, 12} and "source" not in set(low.treatment)
    assert set(low[low.treatment == "identity"].architecture) == {"ConvNeXt-atto"}
    assert (low[low.treatment == "base"].rel_ratio == 1).all()
    curves = pd.read_csv(out / "controls_lowdata_curves.csv")  # each base's evaluations, from its metrics.csv
    bases = low[low.treatment == "base"]
    last = curves.groupby(["architecture", "per_class", "seed"]).epoch.max()
    assert last.to_dict() == bases.set_index(["architecture", "per_class", "seed"]).epochs.to_dict()
    assert any(line.startswith("- ConvNeXt-atto, 8 images per class: base top-1 ") for line in readings[1].splitlines())
    depth = pd.read_csv(out / "controls_depth.csv")  # the bankdepth section: a bank of 2 in the first 6 or all 12 units
    mobile = depth[depth.architecture == "MobileNetV2-0.5"]  # 3x3 kernels: every bank but the 7x7 master key filters
    assert set(mobile.treatment) == {"base", "identity", "random k=2", "AnB", "random-frozen"}
    assert set(mobile[mobile.treatment == "random k=2"].n) == {8, 17}
    depth = depth[depth.architecture == "ConvNeXt-atto"]
    banks = depth[depth.treatment.isin(["master-key k=2", "random k=2"])]
    assert set(zip(banks.treatment, banks.n)) == {(t, n) for t in ("master-key k=2", "random k=2") for n in (6, 12)}
    frozen = banks.groupby("n").frozen_fraction.mean()
    assert 0 < frozen[6] < frozen[12]
    depth_paired = pd.read_csv(out / "controls_depth_paired.csv")
    at = depth_paired[depth_paired.comparison == "master-key k=2 − random k=2"]
    assert sorted(at.n) == [6, 12] and (at.pairs == 1).all()  # one seed in the smoke profile
    assert readings[2].startswith("- **ConvNeXt-atto, man-made→natural** (the first n of 12 units frozen):")
    assert "- **MobileNetV2-0.5, man-made→natural** (the first n of 17 units frozen):" in readings[2]
    assert ("MobileNetV2-0.5", 17, "identity − base") in set(zip(depth_paired.architecture, depth_paired.n,
                                                                 depth_paired.comparison))


def test_study_pairs_each_budget_with_its_own_bases(study):
    """Each budget, and a recipe change at one of them for one architecture (the smoke profile has one), pairs
    with its own bases."""
    df = pd.read_csv(study / "study.csv")
    assert set(df.per_class) == {8, 16} and set(df.target[df.treatment != "base"]) == {"natural"}
    assert len(df[df.treatment == "base"]) == 2 * 2 * 2 + 2  # 2 budgets x 2 architectures x 2 halves, + recipe
    assert set(df[df.recipe == "lr 0.01"].architecture) == {"ConvNeXt-atto"}
    bases = df[df.treatment == "base"].set_index(["architecture", "target", "per_class", "recipe"]).top1
    for r in df.itertuples():
        assert r.base_top1 == bases[r.architecture, r.target, r.per_class, r.recipe]
    default = df[(df.recipe == "default") & (df.per_class == 8) & (df.architecture == "ConvNeXt-atto")]
    assert not set(default.run_id) & set(df[df.recipe == "lr 0.01"].run_id)  # another lr: other runs


def test_figure2_is_drawn_from_the_models_units(figure2):
    """At its defaults: Figure 3's first DS-CNN, half of its units (rounded) copied and frozen."""
    from mkf_utils.models import create_model
    from mkf_utils.units import transfer_units

    df = pd.read_csv(figure2 / "figure2.csv")
    units = transfer_units(create_model("convnext_atto", 10, 2), "depthwise")
    assert set(df.architecture) == {"ConvNeXt-atto"} and df[df.net == "AnB"].unit.tolist() == units + ["head"]
    anb = df[df.net == "AnB"].state.tolist()
    assert anb == ["copied from A, frozen"] * 6 + ["trained on B"] * (len(units) - 6 + 1)
    assert set(df[df.net == "base A"].state) == {"trained on A"}


def test_a_transfer_table_runs_what_the_machine_has_and_names_what_it_lacks(tmp_path, store, capsys):
    """The cross-dataset notebook's calls on synthetic data: a source this machine lacks (an ImageFolder at a path
    that does not exist) is named with its fix and left out; the rest runs, each source its own column, paired
    with the target's controls."""
    from mkf_utils import tables
    from mkf_utils.experiments import save_table
    from mkf_utils.figures import available_datasets, section_runs
    from mkf_utils.profiles import load_profile

    P = load_profile("smoke", {"crossdataset": {
        "datasets": {"A": {"name": "synthetic", "split": "random-a:0"}, "B": {"name": "synthetic", "split": "random-b:0"},
                     "photos": {"name": "imagefolder", "root": "/nonexistent/photos"}},
        "sources": ["A", "photos"], "targets": ["B"]}})
    datasets, missing = available_datasets(P, "crossdataset")
    assert "photos" in missing and "left out: photos (data root /nonexistent/photos does not exist" in capsys.readouterr().out
    runs, *_ = section_runs(P, "crossdataset", store, skip=missing)
    _, paired, matrix = tables.save(save_table(runs, tmp_path, "crossdataset"), datasets, tmp_path, "crossdataset")
    assert list(matrix.index) == ["base", "AnB from A", "random-frozen", "identity"] and list(matrix.columns) == ["B"]
    assert {"identity − base", "AnB from A − random-frozen", "AnB from A − base"} <= set(paired.comparison)

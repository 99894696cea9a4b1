"""Smoke tier, Figure 3's family: Figures 3, 4, 5 and the generality notebook executed at their defaults (the
smoke profile) on the session's run store (they reuse Figure 3's runs, as in `make figures`), then their recorded
numbers checked; Figure 1's gallery and the rebuilds from records through the package calls their notebooks make.
The notebooks that need no other's runs are in test_notebook_tables.py, so pytest-xdist runs the two modules side
by side."""
from __future__ import annotations

import base64
import json

import nbformat
import pandas as pd
import pytest

from conftest import notebook_fixture, records_copy
from mkf_utils.experiments import TABLE_COLUMNS, save_table
from mkf_utils.figures import base_runs, section_runs
from mkf_utils.profiles import load_profile
from mkf_utils.runs import RunStore

pytestmark = pytest.mark.smoke


figure3, figure4, figure5, generality = (notebook_fixture(n) for n in ("figure3", "figure4", "figure5", "generality"))


def test_figure3_table(figure3, store):
    df = pd.read_csv(figure3 / "figure3.csv")
    assert list(df.columns[:len(TABLE_COLUMNS)]) == TABLE_COLUMNS
    assert {"source", "end", "train_time_s"} <= set(df.columns)
    units = {"ResNet-18": 17, "ConvNeXt-atto": 12}
    expected = {(a, d, n, s) for a, total in units.items() for d in ("man-made→natural", "natural→man-made")
                for n in (round(total / 2), total) for s in (0, 1)}
    got = {(r.architecture, r.direction, r.n, r.seed) for r in df[df.treatment == "AnB"].itertuples()}
    assert got == expected
    assert len(df[df.treatment == "base"]) == 8 and (df[df.treatment == "base"].rel_ratio == 1).all()
    assert len(df[df.treatment.isin(["BnB", "random-frozen"])]) == 16
    # each run against the base of its own seed and target, looked up in the run store's records
    records = store.collect().set_index("run_id")
    base_ids = df[df.treatment == "base"].set_index(["architecture", "target", "seed"]).run_id
    for r in df.itertuples():
        base = records.loc[base_ids[r.architecture, r.target, r.seed]]
        assert base["seed"] == r.seed and r.base_top1 == base["top1"]
        assert r.rel_ratio == pytest.approx(records.loc[r.run_id, "top1"] / base["top1"], abs=1e-12)
    full = df[(df.treatment == "AnB") & (df.n == df.n_units)].groupby("architecture").frozen_fraction.mean()
    assert full["ConvNeXt-atto"] < 0.05 < 0.9 < full["ResNet-18"]


@pytest.mark.usefixtures("figure3", "figure4", "figure5")  # named, so nbval skips them under any -k
@pytest.mark.parametrize("name", ["figure3", "figure4", "figure5"])
def test_an_executed_notebook_reads_without_running(name, request):
    """The executed notebook shows each chart both ways: altair's interactive output and the saved PNG (what a
    viewer that runs no script, or JupyterLab on an untrusted notebook, shows); the HTML figure works offline."""
    out = request.getfixturevalue(name)
    shown = [o["data"] for c in nbformat.read(out / "executed.ipynb", 4).cells if c.cell_type == "code"
             for o in c.outputs if o.get("output_type") == "execute_result" and "image/png" in o.get("data", {})]
    assert len(shown) == 1 and set(shown[0]) - {"image/png", "text/plain"}
    assert base64.b64decode(shown[0]["image/png"]) == (out / f"{name}.png").read_bytes()
    assert "cdn.jsdelivr" not in (out / f"{name}.html").read_text()  # self-contained: works offline


def test_figure3_chart_shows_the_table(figure3):
    """The points drawn are the table's means per direction, and the paired panel is the paired CSV."""
    table = pd.read_csv(figure3 / "figure3.csv")
    spec = json.loads((figure3 / "figure3.vl.json").read_text())
    drawn = [row for rows in spec["datasets"].values() for row in rows]
    points = {(r["architecture"], r["treatment"], r["n"], r["direction"], round(r["rel_ratio"], 9))
              for r in drawn if "rel_ratio" in r and "direction" in r}
    anb = table[table.treatment == "AnB"].groupby(["architecture", "n", "direction"]).rel_ratio.mean()
    assert {(a, "AnB", n, d, round(v, 9)) for (a, n, d), v in anb.items()} <= points
    paired = pd.read_csv(figure3 / "figure3_paired.csv")
    shown = {(r["architecture"], r["comparison"], r["n"], r["direction"]) for r in drawn if "comparison" in r}
    assert shown == set(zip(paired.architecture, paired.comparison, paired.n, paired.direction))


def test_figure4_reverse_freezes_the_last_units_and_reuses_bases(figure3, figure4):
    f3, f4 = pd.read_csv(figure3 / "figure3.csv"), pd.read_csv(figure4 / "figure4.csv")
    assert set(f4[f4.treatment == "base"].run_id) <= set(f3[f3.treatment == "base"].run_id)
    anb = f4[f4.treatment == "AnB"]
    assert {(a, n) for a, n in zip(anb.architecture, anb.n)} == {("ResNet-18", 8), ("ResNet-18", 17),
                                                                  ("ConvNeXt-atto", 6), ("ConvNeXt-atto", 12)}
    assert (anb.first_frozen == anb.n_units - anb.n + 1).all()
    full = anb[anb.n == anb.n_units]  # all units from either end: Figure 3's very runs
    assert set(full.run_id) <= set(f3.run_id)
    half = anb[(anb.architecture == "ResNet-18") & (anb.n == 8)].frozen_fraction.iloc[0]
    assert half > 0.9  # ResNet-18's last 8 convs hold most of its weights


def test_figure5_depths_share_an_axis(figure3, figure5):
    f5 = pd.read_csv(figure5 / "figure5.csv")
    assert set(f5.target) == {"natural"} and set(f5.architecture) == {"ResNet-18", "ResNet-34"}
    units = f5.groupby("architecture").n_units.first()
    assert units["ResNet-18"] == 17 and units["ResNet-34"] == 33
    assert sorted(f5[(f5.architecture == "ResNet-34") & (f5.treatment == "AnB")].n) == [16, 33]
    f3 = pd.read_csv(figure3 / "figure3.csv")
    shared = f5[f5.architecture == "ResNet-18"].run_id
    assert set(shared) <= set(f3.run_id)  # ResNet-18's runs are Figure 3's


def test_figure3_rebuilds_from_records_alone(figure3, store, tmp_path):
    """A fresh clone has the records (config, metrics, result) but no weights: the notebook's table and paired
    differences come out the same, and nothing trains."""
    from mkf_utils.stats import paired_differences

    records = RunStore(records_copy(store.root, tmp_path / "records"))
    runs, shown, planned = section_runs(load_profile("smoke"), "figure3", records)
    table = save_table(runs, tmp_path, "figure3", data="cifar10-mini", profile="smoke")
    pd.testing.assert_frame_equal(pd.read_csv(figure3 / "figure3.csv"), pd.read_csv(tmp_path / "figure3.csv"))
    paired_differences(table).to_csv(tmp_path / "figure3_paired.csv", index=False)
    assert (figure3 / "figure3_paired.csv").read_text() == (tmp_path / "figure3_paired.csv").read_text()
    assert shown == planned and not list(records.root.glob("*/model.pt"))


def test_figure1_gallery_rows_columns_and_a_users_checkpoint(tmp_path, store, figure3):
    """Figure 1's notebook's calls: rows, the DS-CNN bases of one seed, their random init and a checkpoint file given
    by path; columns, the first, middle and last depthwise unit; the ResNet bases' conv filters below."""
    import torch

    from mkf_utils.filters import checkpoint_model, first_middle_last, galleries, unit_filters
    from mkf_utils.generality import gallery_nets
    from mkf_utils.models import create_model

    ckpt = tmp_path / "convnext_atto.pt"
    torch.manual_seed(7)
    net = create_model("convnext_atto", 5)
    torch.save(net.state_dict(), ckpt)
    nets = gallery_nets(base_runs(load_profile("smoke"), store, [0]), store, 0)
    nets["depthwise"][f"convnext_atto from {ckpt}"] = checkpoint_model(str(ckpt), "convnext_atto")
    df = galleries(nets, 8, 0)
    dw = df[df.units == "depthwise"]
    assert set(dw.model) == {"ConvNeXt-atto, trained on man-made", "ConvNeXt-atto, trained on natural",
                             "ConvNeXt-atto, random init (seed 0)", f"convnext_atto from {ckpt}"}
    assert set(df[df.units == "conv"].model) == {"ResNet-18, trained on man-made", "ResNet-18, trained on natural",
                                                  "ResNet-18, random init (seed 0)"}
    units = first_middle_last(list(unit_filters(net)))
    assert dict(zip(dw.position, dw.unit)) == units
    assert (dw.groupby(["model", "position"])["filter"].nunique() == 8).all()
    assert dw.value.abs().max() <= 1.0 and (dw.groupby(["model", "position", "filter"]).value.max() == 1.0).all()
    resnet = df[(df.units == "conv") & (df.position == "first")]
    assert set(resnet.row) == set(range(7))  # the stem's 7x7 filters, 3x3 deeper
    assert set(df[(df.units == "conv") & (df.position == "last")].row) == set(range(3))


def test_generality_pairs_and_master_key_fit(figure3, generality):
    out = generality
    sims = pd.read_csv(out / "generality.csv")
    assert set(sims.pair) == {"other half", "same half, other seed", "trained vs its init", "random vs random"}
    assert sims.groupby(["architecture", "pair"]).size().to_dict() == {
        (a, p): n for a, n in (("ConvNeXt-atto", 12), ("ResNet-18", 17)) for p in set(sims.pair)}
    assert sims.similarity.between(0, 1).all()
    wide = sims.pivot_table(index=["architecture", "unit"], columns="pair", values="similarity")
    # one epoch on 16 images per class barely moves a filter: a base is far closer to its own init than chance
    assert (wide["trained vs its init"] > wide["random vs random"]).all()
    fits = pd.read_csv(out / "generality_master_key.csv")
    assert set(fits.model) == {"trained on man-made", "trained on natural", "random init"}
    assert len(fits) == 3 * 12 and fits.explained.between(0, 1).all()
    clusters = pd.read_csv(out / "generality_clusters.csv")
    assert len(clusters) == 3 * 12 and clusters.share_close.between(0, 1).all()
    scales = pd.read_csv(out / "generality_layer_scale.csv")
    assert len(scales) == 3 * 12 and (scales[scales.model == "random init"].layer_scale == 1e-6).all()
    mk = pd.read_csv(out / "generality_masterkey_runs.csv")  # the smoke profile's masterkey section
    assert set(mk.treatment) == {"base", "AnB", "random-frozen", "master-key", "master-key AnB"}
    assert set(mk.architecture) == {"ConvNeXt-atto"} and (mk[mk.treatment != "base"].n == 12).all()
    paired = pd.read_csv(out / "generality_masterkey_paired.csv")
    assert set(paired.comparison) == {"master-key − random-frozen", "master-key − base", "master-key AnB − master-key",
                                      "AnB − master-key"}


def test_generality_recorded_only_trains_no_masterkey_run(store, figure3):
    """The generality notebook's panel d with ``recorded_only``: no masterkey run recorded, none shown or trained."""
    from mkf_utils.config import run_id
    from mkf_utils.profiles import section_plan

    seven = load_profile("smoke", {"masterkey": {"seeds": [7]}})  # seed 7: no masterkey run recorded
    runs, shown, planned = section_runs(seven, "masterkey", store, recorded_only=True)
    assert runs.empty and shown == 0 and planned > 0
    assert not any(store.path(run_id(p.config)).exists() for p in section_plan(seven, "masterkey"))

"""The figures' charts (mkf_utils.plots) on constructed run tables: each panel draws what its table says."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mkf_utils.experiments import relative_accuracy
from mkf_utils.controls import lowdata_summary
from mkf_utils.plots import (depth_chart, figure1_chart, figure3_chart, figure4_chart, figure5_chart, lowdata_chart,
                             pointwise_chart, source_size_panel, summarize, yosinski_reference)
from mkf_utils.retention import ALEXNET, retention_areas
from mkf_utils.stats import paired_differences

pytestmark = pytest.mark.unit
HALVES = ["man-made", "natural"]


def _table(nets: tuple[str, ...] = ("a",), units: int = 4) -> pd.DataFrame:
    """Bases, AnB at n = 2 and 4 and random-frozen at 4, into both halves, 3 seeds, made-up top-1."""
    rng, rows = np.random.default_rng(0), []
    for net in nets:
        for target, source in zip(HALVES, HALVES[::-1]):
            for seed in range(3):
                for treatment, n in (("base", 0), ("AnB", 2), ("AnB", units), ("random-frozen", units)):
                    rows.append({"architecture": net, "target": target, "seed": seed, "treatment": treatment,
                                 "n": n, "n_units": units, "top1": rng.uniform(0.4, 0.6), "frozen_fraction": n / units,
                                 "direction": target if n == 0 else f"{source}→{target}"})
    return relative_accuracy(pd.DataFrame(rows))


def _panels(spec: dict) -> list[dict]:
    """The panels of a concatenated chart's spec, in reading order."""
    key = next(k for k in ("vconcat", "hconcat") if k in spec)
    return [q for p in spec[key] for q in (_panels(p) if "vconcat" in p or "hconcat" in p else [p])]


def _rows(spec: dict, panel: dict) -> list[dict]:
    """The rows a panel draws (its first layer's data, or the facet's)."""
    data = panel.get("data") or panel.get("layer", [{}])[0].get("data") or panel["spec"]["layer"][0].get("data")
    return spec["datasets"][data["name"]]


def test_figure3_draws_each_direction_its_share_frozen_and_the_paired_differences():
    table = _table()
    paired = paired_differences(table)
    spec = figure3_chart(table, paired, HALVES, ["a profile line"]).to_dict()
    panels = _panels(spec)
    assert [p["title"] for p in panels] == ["a. natural → man-made", "b. man-made → natural", "c. parameters frozen",
                                           "d. paired differences (same seed)"]
    for panel, target in zip(panels, HALVES):
        drawn = {(r["treatment"], r["n"], round(r["rel_ratio"], 9)) for r in _rows(spec, panel)}
        means = table[(table.target == target) & (table.treatment != "base")].groupby(["treatment", "n"]).rel_ratio.mean()
        assert drawn >= {(t, n, round(v, 9)) for (t, n), v in means.items()}
    assert {r["treatment"] for r in _rows(spec, panels[2])} == {"AnB"}
    assert len(_rows(spec, panels[3])) == len(paired)
    assert spec["title"]["subtitle"][0] == "a profile line" and spec["title"]["subtitle"][-1].startswith("Mean ± sd")


def test_figure4_plots_ratio_difference_and_share_over_both_directions():
    table = _table()
    spec = figure4_chart(table, []).to_dict()
    panels = _panels(spec)
    assert [p["title"] for p in panels] == ["a. relative top-1 (ratio)", "b. relative top-1 (difference)",
                                           "c. parameters frozen"]
    means = table[table.treatment == "AnB"].groupby("n").rel_diff.mean()  # over seeds and both directions
    drawn = {r["n"]: r["rel_diff"] for r in _rows(spec, panels[1]) if r["treatment"] == "AnB" and r["n"] > 0}
    assert drawn == pytest.approx(means.to_dict())
    assert spec["title"]["subtitle"][-1] == "Mean ± sd over seeds and both directions."


def test_figure5_bars_follow_the_nets_depth_and_name_their_measured_depths():
    table = _table(("ResNet-18", "ResNet-34"))
    table = table[table.target == "natural"]
    summary = summarize(table)
    areas = retention_areas(summary, yosinski_reference("natural"))
    spec = figure5_chart(summary, areas, "man-made", "natural", ["ResNet-18", "ResNet-34", ALEXNET], []).to_dict()
    panels = _panels(spec)
    assert panels[0]["title"] == "a. relative top-1, man-made → natural"
    assert {r["architecture"] for r in _rows(spec, panels[1])} == {"ResNet-18", "ResNet-34", ALEXNET}
    assert "ResNet-18: 3; ResNet-34: 3" in spec["title"]["subtitle"][-1]  # n = 0, 2, 4 of AnB
    assert panels[2]["title"] == "c. top-1: base, and all units frozen"
    drawn = {(r["architecture"], r["run"]): r["top1"] for r in _rows(spec, panels[2])}
    full = table[table.n.isin([0, 4])].groupby(["architecture", "treatment"]).top1.mean()
    assert drawn == pytest.approx({k: full[k] for k in full.index})  # the base, AnB and random-frozen, each net
    assert spec["hconcat"][0]["layer"][0]["encoding"]["color"]["sort"][:2] == ["ResNet-18", "ResNet-34"]


def test_pointwise_chart_shows_the_curve_and_every_paired_difference():
    table = _table()
    paired = paired_differences(table)
    spec = pointwise_chart(table, paired, ["x"]).to_dict()
    panels = _panels(spec)
    assert [p["title"] for p in panels] == ["a. top-1 / base against the units frozen",
                                           "b. paired differences (same seed)"]
    assert len(_rows(spec, panels[1])) == len(paired)


def test_pointwise_chart_with_curves_draws_the_training_loss_of_the_transfers_targets_only():
    table = _table().assign(run_id=lambda d: [f"r{i}" for i in range(len(d))])
    curves = pd.concat([table.assign(epoch=e, train_loss=2.0 / e) for e in (1, 2)])[
        ["run_id", "architecture", "target", "treatment", "n", "n_units", "seed", "epoch", "train_loss"]]
    spec = pointwise_chart(table, paired_differences(table), ["x"], curves, paired_differences(table)).to_dict()
    panels = _panels(spec)
    assert [p["title"] for p in panels[2:]] == ["c. training loss during training",
                                               "d. paired differences of the final training loss (same seed)"]
    drawn = pd.DataFrame(_rows(spec, panels[2]))
    assert set(drawn.target) == {"man-made", "natural"} and len(drawn) == len(curves)  # both halves are targets
    assert set(zip(drawn.treatment, drawn.depth)) == {("base", "none"), ("AnB", "2/4"), ("AnB", "4/4"),
                                                      ("random-frozen", "4/4")}
    only_natural = table[(table.target == "natural") | (table.treatment == "base")]
    spec = pointwise_chart(only_natural, paired_differences(only_natural), ["x"], curves).to_dict()
    assert set(pd.DataFrame(_rows(spec, _panels(spec)[2])).target) == {"natural"}  # no source's base curve


def test_loss_curves_list_the_depths_by_share_frozen_not_as_text():
    """"12/12" sorts before "4/12" as text; the legend goes none, 4/12, 8/24, 16/24, 12/12, 24/24, drawn as dashes."""
    from mkf_utils.plots import loss_curves_panel

    depths = [(0, 12), (12, 12), (16, 24), (24, 24), (4, 12), (8, 24), (0, 24)]
    curves = pd.DataFrame([{"architecture": "a", "target": "natural", "treatment": "AnB", "n": n, "n_units": u,
                            "epoch": 1, "train_loss": 1.0} for n, u in depths])
    line, points = loss_curves_panel(curves, "c").to_dict()["spec"]["layer"]
    assert line["mark"]["type"] == "line"  # no point=True: its legend would draw the dashes as dots
    assert line["encoding"]["strokeDash"]["sort"] == ["none", "4/12", "8/24", "16/24", "12/12", "24/24"]
    assert "depth" in [d["field"] for d in points["encoding"]["detail"]]  # each depth's mean loss, on its own line


def test_depth_chart_draws_each_treatment_by_depth_per_net_and_direction():
    table = _table(("a", "b"))
    paired = paired_differences(table)
    spec = depth_chart(summarize(table, by_target=True), paired, "t", ["x"]).to_dict()
    panels = _panels(spec)
    assert [p["title"] for p in panels] == ["a. a, natural→man-made", "b. b, natural→man-made",
                                           "c. a, man-made→natural", "d. b, man-made→natural",
                                           "e. paired differences (same seed)"]
    for panel, net in zip(panels[2:4], ("a", "b")):
        drawn = {(r["architecture"], r["treatment"], r["n"]) for r in _rows(spec, panel)}
        assert drawn >= {(net, t, n) for t, n in (("AnB", 2), ("AnB", 4), ("random-frozen", 4))}
        assert {r["architecture"] for r in _rows(spec, panel)} == {net}
    assert len(_rows(spec, panels[4])) == len(paired)


def test_source_size_panel_draws_one_line_per_net_and_comparison():
    sized = pd.DataFrame([{"architecture": net, "direction": "B", "source": src, "images": images, "against": against,
                           "comparison": f"AnB from {src} − {against}", "mean": 0.01, "low": -0.01, "high": 0.03,
                           "pairs": 3} for net in ("a", "b") for src, images in (("A 10", 10), ("A", 100))
                          for against in ("base", "random-frozen")])
    spec = source_size_panel(sized, "t").to_dict()
    enc = spec["layer"][1]["encoding"]
    assert (enc["color"]["field"], enc["strokeDash"]["field"], enc["detail"]["field"]) == (
        "against", "architecture", "direction")
    assert len(spec["datasets"][spec["data"]["name"]]) == len(sized)


def test_lowdata_chart_draws_each_size_and_the_bases_curves():
    table = pd.concat([_table().assign(per_class=k) for k in (8, 16)])
    curves = pd.DataFrame({"architecture": "a", "per_class": [8, 8, 16, 16], "seed": 0, "epoch": [1, 2, 1, 2],
                           "top1": [0.3, 0.4, 0.35, 0.5]})
    spec = lowdata_chart(lowdata_summary(table), curves, ["x"]).to_dict()
    low, curve = spec["vconcat"]
    assert low["title"] == {"text": "Little target data: sources trained on a whole half", "subtitle": ["x"]}
    assert {r["per_class"] for r in _rows(spec, low)} == {8, 16}
    assert "base" not in {r["treatment"] for r in _rows(spec, low)}  # the base is the dotted line at 1
    assert _rows(spec, curve) == curves.to_dict("records")


def test_figure1_draws_one_gallery_per_unit_kind_in_order():
    taps = pd.DataFrame({"model": "m", "position": "first", "unit": "u", "filter": 0, "row": [0, 0, 1, 1],
                         "col": [0, 1, 0, 1], "value": [1.0, -0.5, 0.2, 0.0]})
    table = pd.concat([taps.assign(units="depthwise"), taps.assign(units="conv", value=-taps.value)])
    spec = figure1_chart(table, ["seed 0"]).to_dict()
    assert [p["title"] for p in spec["vconcat"]] == ["a. depthwise filters (DS-CNN)", "b. conv filters (ResNet)"]
    assert [r["value"] for r in _rows(spec, spec["vconcat"][1])] == [-1.0, 0.5, -0.2, 0.0]

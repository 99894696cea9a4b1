"""The A/B plan, relative accuracy, Yosinski's reference and chart saving."""
from __future__ import annotations

import pandas as pd
import pytest

from mkf_utils.config import run_id
from mkf_utils.errors import MKFError
from mkf_utils.experiments import estimate_minutes, relative_accuracy
from mkf_utils.plans import ab_plan, budget_plan, depth_to_n, matrix_plan
from mkf_utils.plots import summarize, yosinski_reference

pytestmark = pytest.mark.unit

ARCHS = {"ResNet-18": {"model": {"name": "resnet18", "stem_stride": 2}, "units": "conv"},
         "ConvNeXt-atto": {"model": {"name": "convnext_atto", "stem_stride": 2}, "units": "depthwise"}}
HALVES = {"man-made": "cifar10-manmade", "natural": "cifar10-natural"}


def test_plan_wires_sources_to_the_right_bases():
    plan = ab_plan(ARCHS, HALVES, {"AnB": [1 / 3, 1.0], "BnB": [1.0], "random-frozen": [1.0]}, seeds=[0, 1])
    assert len(plan) == 2 * (4 + 2 * 4 * 2)
    bases = {(p.labels["architecture"], p.labels["target"], p.labels["seed"]): run_id(p.config)
             for p in plan if p.labels["treatment"] == "base"}
    for p in plan:
        lab, t = p.labels, p.config.transfer
        if lab["treatment"] == "base":
            assert t.n == 0 and p.config.data.split == HALVES[lab["target"]]
            continue
        expected = {"AnB": "natural" if lab["target"] == "man-made" else "man-made", "BnB": lab["target"],
                    "random-frozen": None}[lab["treatment"]]
        assert t.source == (bases[lab["architecture"], expected, lab["seed"]] if expected else None)
        assert t.units == ("conv" if lab["architecture"] == "ResNet-18" else "depthwise")
    ns = sorted({p.labels["n"] for p in plan if p.labels["architecture"] == "ResNet-18"})
    assert ns == [0, 6, 17]


def test_estimate_uses_the_median_of_like_runs_with_fallbacks():
    plan = ab_plan(ARCHS, HALVES, {"AnB": [1 / 3, 1.0]}, seeds=[0, 1])
    resnet = [p for p in plan if p.labels["architecture"] == "ResNet-18"]
    seconds = {}  # recorded: ResNet-18's seed-0 bases (600 s man-made, 1200 s natural) and full depths (300 s), its
    for p in resnet:  # seed-1 man-made base (600 s)
        lab = p.labels
        if lab["treatment"] == "base" and (lab["seed"] == 0 or lab["target"] == "man-made"):
            seconds[run_id(p.config)] = {"man-made": 600.0, "natural": 1200.0}[lab["target"]]
        elif lab["seed"] == 0 and lab["n"] == lab["n_units"]:
            seconds[run_id(p.config)] = 300.0

    # missing: seed 1's natural base (1200: like target), its full depths (2 x 300) and four partial depths
    # (seeds 0 and 1, both directions): none recorded, so each costs the architecture's median, 600
    minutes, unknown = estimate_minutes(plan, [{"train_time_s": seconds[run_id(p.config)]} if run_id(p.config) in seconds
                                                else None for p in plan], workers=2)
    assert unknown == len(plan) - len(resnet)  # no ConvNeXt-atto run is recorded
    assert minutes == pytest.approx((1200 + 600 + 4 * 600) / 60 / 2)


def test_depths_and_bad_plans():
    assert [depth_to_n(f, 12) for f in (0.01, 0.5, 1.0)] == [1, 6, 12]
    with pytest.raises(MKFError, match="not in"):
        depth_to_n(1.5, 12)
    with pytest.raises(MKFError, match="unknown treatment"):
        ab_plan(ARCHS, HALVES, {"AnA": [1.0]}, seeds=[0])


def test_relative_accuracy_uses_the_base_of_the_same_target_and_seed():
    df = pd.DataFrame({"architecture": "a", "target": ["A", "B", "A", "A"], "seed": [0, 0, 1, 0],
                       "treatment": ["base", "base", "base", "AnB"], "top1": [0.5, 0.8, 0.4, 0.45]})
    out = relative_accuracy(df)
    assert out.base_top1.tolist() == [0.5, 0.8, 0.4, 0.5]
    assert out.rel_ratio.iloc[3] == pytest.approx(0.9) and out.rel_diff.iloc[3] == pytest.approx(-0.05)


def test_yosinski_reference_matches_their_numbers():
    ref = yosinski_reference().set_index("n")
    # n = 7, by hand from their CSV: man-made 0.291372 / 0.537244, natural 0.399026 / 0.6533991
    assert ref.loc[7.0, "rel_ratio"] == pytest.approx((0.291372 / 0.537244 + 0.399026 / 0.6533991) / 2)
    assert ref.loc[7.0, "rel_diff"] == pytest.approx((0.291372 + 0.399026 - 0.537244 - 0.6533991) / 2)
    assert ref.loc[0.0, "rel_ratio"] == 1.0 and ref.rel_depth.max() == 1.0


def test_summary_puts_bases_at_zero_on_every_curve():
    table = pd.DataFrame({"architecture": "a", "treatment": ["base", "base", "AnB", "AnB", "random-frozen"],
                          "n": [0, 0, 4, 4, 4], "n_units": 4, "top1": [0.5, 0.6, 0.4, 0.6, 0.3],
                          "rel_ratio": [1, 1, 0.8, 1.0, 0.6], "rel_diff": [0, 0, -0.1, 0.0, -0.2],
                          "frozen_fraction": [0, 0, 0.1, 0.1, 0.1]})
    s = summarize(table)
    assert sorted(s.treatment.unique()) == ["AnB", "random-frozen"]
    anb = s[s.treatment == "AnB"].set_index("n")
    assert anb.loc[0, "rel_ratio"] == 1 and anb.loc[4, "rel_ratio"] == pytest.approx(0.9)
    assert anb.loc[4, "rel_ratio_sd"] == pytest.approx(0.1414, abs=1e-4) and anb.loc[4, "rel_depth"] == 1.0


def test_pending_runs_are_exported_for_torchrun(tmp_path):
    from mkf_utils.experiments import run_plan
    from mkf_utils.runs import RunStore

    plan = ab_plan(ARCHS, HALVES, {"AnB": [1.0]}, seeds=[0], common={"data": {"name": "synthetic"}})
    with pytest.raises(MKFError, match="8 planned runs are not finished.*run_all.sh"):
        run_plan(plan, RunStore(tmp_path), execute=False)
    script = (tmp_path / "pending" / "run_all.sh").read_text().splitlines()
    assert sum("torchrun" in line for line in script) == 8
    first = sorted((tmp_path / "pending").glob("*.yaml"))[0]
    assert first.name.endswith(f"{run_id(plan[0].config)}.yaml")  # a base comes first



def test_low_data_targets_copy_from_sources_trained_on_the_whole_half():
    """A budget with ``sources: common``: the target's runs (its base too) train on the budget's images, the
    nets they copy from on the profile's, and those are Figure 3's bases; controls of depthwise filters are
    planned only for the net whose units are depthwise."""
    from mkf_utils.profiles import load_profile, section_plan

    P = load_profile("smoke")
    plan = section_plan(P, "lowdata")
    figure3_bases = {run_id(p.config) for p in section_plan(P, "figure3") if p.labels["treatment"] == "base"}
    sources = {run_id(p.config) for p in plan if p.labels["treatment"] == "source"}
    assert sources and sources <= figure3_bases
    for p in plan:
        if p.labels["treatment"] == "source":
            assert p.config.data.per_class == P.data.per_class and p.config.optim.epochs == P.optim.epochs
        else:
            assert p.config.data.per_class == p.labels["per_class"] and p.config.optim.epochs == p.labels["epochs"]
        if p.labels["treatment"] == "AnB":
            assert p.config.transfer.source in sources
    assert {p.labels["architecture"] for p in plan if p.labels["treatment"] == "identity"} == {"ConvNeXt-atto"}
    with pytest.raises(MKFError, match="sources='half'"):
        budget_plan({"R": {"model": {"name": "resnet18"}, "units": "conv"}}, {"A": "random-a:0", "B": "random-b:0"},
                    [{"per_class": 8, "epochs": 2, "sources": "half"}], {"AnB": [1.0]}, [0])


DATASETS = {"man-made": {"split": "cifar10-manmade"}, "natural": {"split": "cifar10-natural"},
            "cifar10": {"split": "all"}}


def test_a_transfer_table_copies_from_each_source_and_shares_figure3s_runs():
    """The cross-dataset matrix: one copy per source, the selffer from the target's own base, controls once per
    target; a source shared by two target nets is planned once; man-made → natural is Figure 3's AnB run."""
    atto = {"ConvNeXt-atto": ARCHS["ConvNeXt-atto"]}
    plan = matrix_plan(atto, DATASETS, ["man-made", "cifar10"], ["natural"],
                       {"AnB": [1.0], "BnB": [1.0], "random-frozen": [1.0], "identity": [1.0]}, [0, 1])
    ids = {(p.labels["treatment"], p.labels["target"], p.labels["seed"]): run_id(p.config)
           for p in plan if p.labels["n"] == 0}
    assert sorted(set(t for t, *_ in ids)) == ["base", "source"] and len(ids) == 6
    for p in plan:
        lab, t = p.labels, p.config.transfer
        if lab["treatment"] == "AnB":
            assert t.source == ids["base" if lab["source"] == "natural" else "source", lab["source"], lab["seed"]]
            assert p.config.data.split == "cifar10-natural" and t.n == 12
        if lab["treatment"] == "BnB":
            assert t.source == ids["base", "natural", lab["seed"]] and lab["direction"] == "natural→natural"
    assert sum(p.labels["treatment"] == "AnB" for p in plan) == 4
    figure3 = {run_id(p.config) for p in ab_plan(atto, HALVES, {"AnB": [1.0]}, [0, 1], targets=["natural"])}
    assert figure3 <= {run_id(p.config) for p in plan}
    nets = {**atto, "ConvNeXt-nano": {"model": {"name": "convnext_nano", "stem_stride": 2}, "units": "depthwise"}}
    two = matrix_plan(nets, DATASETS, ["man-made"], ["natural"], {"AnB": [1.0]}, [0], source_architectures=atto)
    sources = [p for p in two if p.labels["treatment"] == "source"]
    assert len(sources) == 1 and sources[0].labels["architecture"] == "ConvNeXt-atto"
    nano = [p for p in two if p.labels["architecture"] == "ConvNeXt-nano" and p.labels["treatment"] == "AnB"]
    assert nano[0].config.transfer.source == run_id(sources[0].config) and nano[0].labels["n"] == 14
    with pytest.raises(MKFError, match=r"datasets \['plants'\]"):
        matrix_plan(atto, DATASETS, ["plants"], ["natural"], {"AnB": [1.0]}, [0])
    with pytest.raises(MKFError, match="only depthwise filters map"):
        matrix_plan({"ResNet-18": ARCHS["ResNet-18"]}, DATASETS, ["man-made"], ["natural"], {"AnB": [1.0]}, [0],
                    source_architectures=atto)


def test_master_key_filters_are_planned_only_for_7x7_depthwise_kernels():
    """MobileNetV2's depthwise convs are 3x3: its controls are planned, but not the master key bank (7x7 filters)."""
    nets = {"ConvNeXt-atto": ARCHS["ConvNeXt-atto"],
            "MobileNetV2": {"model": {"name": "mobilenetv2_050", "stem_stride": 2}, "units": "depthwise"},
            "ResNet-18": ARCHS["ResNet-18"]}
    plan = ab_plan(nets, HALVES, {"master-key k=2": [1.0], "random k=2": [1.0], "random-frozen": [1.0]}, [0],
                   targets=["natural"])
    got = {(p.labels["architecture"], p.labels["treatment"]) for p in plan if p.labels["n"]}
    assert got == {("ConvNeXt-atto", "master-key k=2"), ("ConvNeXt-atto", "random k=2"), ("ConvNeXt-atto", "random-frozen"),
                   ("MobileNetV2", "random k=2"), ("MobileNetV2", "random-frozen"), ("ResNet-18", "random-frozen")}


def test_estimate_scales_like_runs_to_the_images_and_epochs_planned():
    """A run on 100 of 1,000 images per class for 40 epochs costs a like run's time x (100 x 40) / (1,000 x 20)."""
    plan = budget_plan({"ResNet-18": ARCHS["ResNet-18"]}, HALVES, [{"per_class": 100, "epochs": 40}], {}, [0, 1],
                       {"data": {"per_class": 1000}, "optim": {"epochs": 20}}, targets=["natural"])
    recorded = {"train_time_s": 1000.0, "train_images": 6000, "epochs": 20, "num_classes": 6}
    minutes, unknown = estimate_minutes(plan, [recorded if p.labels["seed"] == 0 else None for p in plan])
    assert unknown == 0 and minutes == pytest.approx(2 * 1000 * (600 * 40) / (6000 * 20) / 60)

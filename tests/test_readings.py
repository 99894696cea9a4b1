"""The notebooks' computations, moved into the package, on constructed tables: Figure 5's retention, the study,
the generality measures' reading and the master key summary."""
from __future__ import annotations

import pandas as pd
import pytest

from mkf_utils import generality, retention, study
from mkf_utils.plots import yosinski_reference

pytestmark = pytest.mark.unit


def test_each_deeper_net_is_read_against_the_shallowest_and_the_ordering_from_all():
    values = {"a": [0.80, 0.82, 0.84], "b": [0.90, 0.92, 0.94], "c": [0.70, 0.72, 0.74], "d": [0.81, 0.80, 0.84],
              "e": []}
    t = pd.DataFrame([{"architecture": a, "treatment": "AnB", "n": 4, "n_units": 4, "rel_ratio": v}
                      for a, vs in values.items() for v in vs])
    lines = retention.reading(t, ["a", "b", "c", "d"])
    assert [line.split("**")[1] for line in lines[-4:-1]] == ["b retains more than a", "c retains less than a",
                                                             "d cannot be told from a"]
    assert lines[-1] == ("- The paper's ordering, deeper nets retaining more than a: not shown here (c retains less; d "
                         "cannot be told from it; b retains more).")
    assert retention.reading(t, ["a", "e"])[0:2] == ["- a, all units, per seed: 0.800, 0.820, 0.840; mean 0.820 "
                                                    "[0.770, 0.870].", "- e, all units: no run recorded yet."]


def test_retention_areas_put_alexnet_beside_the_nets_and_read_each_deeper_net():
    summary = pd.DataFrame({"series": ["a AnB"] * 3 + ["b AnB"] * 3, "architecture": ["a"] * 3 + ["b"] * 3,
                            "rel_depth": [0, 0.5, 1] * 2, "rel_ratio": [1, 0.9, 0.8, 1, 0.95, 0.9]})
    areas = retention.retention_areas(summary, yosinski_reference("natural")).set_index("architecture")
    assert areas.loc["a", "auc"] == pytest.approx(0.9) and areas.loc["b", "deepest"] == pytest.approx(0.9)
    assert areas.loc[retention.ALEXNET, "depths"] == 8  # n = 0..7
    lines = retention.area_lines(areas.reset_index(), ["a", "b"])
    assert retention.area_lines(areas.reset_index(), ["a", "b", "none yet"]) == lines  # a net with no runs: no line
    assert lines[0].startswith("- **a**: 0.800 of base at n / N = 1.00, area under the curve 0.900")
    one_seed = pd.DataFrame({"architecture": ["a", "b"], "treatment": "AnB", "n": 4, "n_units": 4, "rel_ratio": [0.8, 0.9]})
    assert retention.reading(one_seed, ["a", "b"])[-2].startswith("- **b has no interval against a**")
    assert retention.reading(one_seed, ["a", "b"])[-1].endswith("not shown here (b too few seeds).")
    rows = [dict(architecture=a, treatment=t, direction="A→B", target="B", n=4, n_units=4, seed=s,
                 top1=0.5 + 0.01 * s + (0.05 if t == "AnB" and a == "a" else 0), rel_ratio=0.9, base_top1=0.6)
            for a in ("a", "b") for t in ("AnB", "random-frozen") for s in range(3)]
    lines = retention.reading(pd.DataFrame(rows), ["a", "b"])
    assert lines[0] == ("- a, all units, per seed: 0.900, 0.900, 0.900; mean 0.900 [0.900, 0.900]; its base's top-1 "
                        "0.600; random-frozen keeps 0.900.")
    assert lines[-1].startswith("- Retention measures transfer only where copied filters beat random-frozen ones: a; "
                                "for b a higher or lower retention")
    assert retention.reading(pd.DataFrame(rows[:6]), ["a", "c"])[-1] == (
        "- Retention measures transfer only where copied filters beat random-frozen ones: a; c without the control yet.")
    assert "- a, all units: AnB − random-frozen +0.050 [+0.050, +0.050] (3 pairs): the copied filters beat random " \
           "ones, so its retention measures transfer." in lines
    assert any(line.startswith("- b, all units: AnB − random-frozen +0.000") and "cannot be told apart" in line
               for line in lines)


def test_study_reading_per_budget_and_paired_by_seed():
    rows = [dict(architecture="a", per_class=p, epochs=2, recipe="default", target="B", seed=s, treatment=t, n=4,
                 n_units=4, direction="A→B" if t != "base" else "B", top1=top1, rel_ratio=top1 / 0.5, minutes=1.0)
            for p in (10, 20) for s in (0, 1, 2) for t, top1 in (("base", 0.5), ("AnB", 0.45 + 0.01 * s),
                                                                  ("random-frozen", 0.40 + 0.01 * s))]
    lines = study.reading(pd.DataFrame(rows), "B")
    assert lines[0] == ("- **a**, 10 images per class × 2 epochs (default): base top-1 B 0.500; relative top-1 into "
                        "B: AnB 0.920, random-frozen 0.820 (AnB − random-frozen +0.100 of the base's top-1); 9.0 min "
                        "of training for these 9 runs.")
    assert lines[-1] == "- a, 20 × 2 (default): AnB − random-frozen top-1 +0.050 [+0.050, +0.050] (3 pairs): above."


def test_generality_reading_and_masterkey_summary():
    sims = pd.DataFrame({"architecture": "C", "pair": "other half", "rel_depth": [0.25, 0.5, 1.0],
                         "similarity": [0.9, 0.6, 0.3]})
    fits = pd.DataFrame({"architecture": "C", "model": "trained on A", "explained": [0.5, 0.3]})
    scales = pd.DataFrame({"model": "trained on A", "layer_scale": [1e-6, 0.01]})
    lines = generality.reading(sims, fits, scales, None)
    assert lines == ["- C, other half: 0.900, 0.600, 0.300 (first, middle, last third)",
                     "- C, trained on A: master key fit explains 0.400 of a filter's variance on average (0.500 first "
                     "unit, 0.300 last)",
                     "- ConvNeXt block layer scale, trained on A: 1e-06 (first unit) to 0.01 (last); at 1e-6 a "
                     "block's depthwise filter cannot matter"]
    mk = pd.DataFrame({"direction": "A→B", "treatment": ["base", "master-key", "master-key"], "rel_ratio": [1, 0.9, 1.1]})
    s = generality.masterkey_summary(mk)
    assert s[["treatment", "mean", "lo", "hi"]].round(6).values.tolist() == [["master-key", 1.0, 0.858579, 1.141421]]


def test_norm_frozen_anb_says_what_trained_norms_add_and_reads_the_ordering_again():
    rows = [dict(architecture=a, treatment=t, direction="A→B", target="B", n=4, n_units=4, seed=s,
                 top1=0.5 + 0.01 * s - (0.1 if t == retention.NORM_FROZEN and a == "b" else 0),
                 rel_ratio={"a": 0.8, "b": 0.9}[a] + 0.01 * s - (0.2 if t == retention.NORM_FROZEN and a == "b" else 0))
            for a in ("a", "b") for t in ("AnB", "random-frozen", retention.NORM_FROZEN) for s in range(3)]
    lines = retention.reading(pd.DataFrame(rows), ["a", "b"])
    assert "- b, all units: AnB − AnB norm-frozen +0.100 [+0.100, +0.100] (3 pairs): training the frozen units' " \
           "norms adds to its retention." in lines
    assert any(line.startswith("- a, all units: AnB − AnB norm-frozen +0.000") for line in lines)
    assert "- **b retains more than a** at full depth: difference +0.100" in "\n".join(lines)
    assert "- **b retains less than a** at full depth with norms frozen: difference -0.100" in "\n".join(lines)
    assert "- The paper's ordering, deeper nets retaining more than a with norms frozen: not shown here (b retains " \
           "less)." in lines
    assert lines[1].endswith("; random-frozen keeps 0.910; AnB norm-frozen keeps 0.710.")

"""The controls notebook's analysis (mkf_utils.controls) on constructed tables."""
from __future__ import annotations

import pandas as pd
import pytest

from mkf_utils import controls
from mkf_utils.experiments import relative_accuracy
from mkf_utils.stats import paired_differences

pytestmark = pytest.mark.unit


def _table(gains: dict[str, list[float]]) -> pd.DataFrame:
    """Three seeds on the natural half: a base at 0.50, 0.52, 0.54 and each treatment at base + gain."""
    rows = [{"architecture": "C", "treatment": "base", "direction": "natural", "target": "natural", "n": 0,
             "n_units": 12, "seed": s, "top1": 0.50 + 0.02 * s} for s in range(3)]
    rows += [{"architecture": "C", "treatment": t, "direction": "man-made→natural", "target": "natural", "n": 12,
              "n_units": 12, "seed": s, "top1": 0.50 + 0.02 * s + g[s]} for t, g in gains.items() for s in range(3)]
    return relative_accuracy(pd.DataFrame(rows))


def _reading(gains):
    t = _table(gains)
    return controls.reading(paired_differences(t, controls.comparisons(t.treatment)))


def test_a_bank_that_beats_random_with_a_floor_below_base_is_read_as_general():
    lines = _reading({"identity": [-0.06, -0.05, -0.07], "random k=2": [-0.10, -0.09, -0.11],
                      "A-centres k=2": [-0.02, -0.03, -0.01], "B-centres k=2": [-0.02, -0.02, -0.01]})
    assert "the filters are needed here" in lines[0]
    assert "**above zero**" in lines[1] and "cannot be told apart" in lines[1]
    assert lines[-1].endswith("at k = 2: general filters, measured.")


def test_no_reading_without_a_floor_below_the_base():
    lines = _reading({"identity": [0.01, -0.01, 0.0], "random k=2": [-0.10, -0.09, -0.11],
                      "A-centres k=2": [-0.02, -0.03, -0.01]})
    assert "no reading about generality is made" in lines[0]
    assert lines[-1].endswith("no reading: the identity floor is not below the base.")


def test_banks_that_tie_random_say_so_with_the_detectable_size():
    lines = _reading({"identity": [-0.06, -0.05, -0.07], "random k=4": [0.0, 0.01, -0.01],
                      "A-centres k=4": [0.01, 0.0, -0.01]})
    assert "cannot be told apart (smallest detectable difference ±" in lines[1]
    assert lines[-1].endswith("no bank size tells the other half's filters above random ones: generality across "
                              "the halves is not shown here.")


def test_the_verdict_names_master_key_gains_and_banks_worse_than_random():
    lines = _reading({"identity": [-0.06, -0.05, -0.07], "random k=1": [-0.03, -0.02, -0.04],
                      "A-centres k=1": [-0.08, -0.08, -0.09], "master-key k=1": [0.0, 0.01, -0.01]})
    assert "master key filters − random +0.030 [" in lines[1] and "**above zero**" in lines[1]
    assert lines[-1] == ("- **Verdict, C, man-made→natural:** the master key filters (extracted from other trained "
                         "DS-CNNs) beat random ones at k = 1: filters from other data carry over; the other half's "
                         "k-means centres do worse than random ones at k = 1; no bank size tells the other half's "
                         "filters above random ones: generality across the halves is not shown here.")



def test_a_direction_with_master_key_and_random_banks_only_is_read():
    """The reverse direction plans the master key and random banks without the halves' banks: still read."""
    lines = _reading({"identity": [-0.06, -0.05, -0.07], "random k=4": [-0.03, -0.02, -0.04],
                      "master-key k=4": [0.0, 0.01, -0.01]})
    assert lines[1].startswith("- k = 4: master key filters − random +0.030 [") and "**above zero**" in lines[1]
    assert lines[-1].endswith("beat random ones at k = 4: filters from other data carry over.")


def test_a_master_key_bank_above_the_trained_base_is_said():
    lines = _reading({"identity": [-0.06, -0.05, -0.07], "random k=4": [-0.01, 0.0, -0.02],
                      "master-key k=4": [0.03, 0.04, 0.035]})
    assert "master key filters − the trained base +0.035 [" in lines[1]
    assert lines[-1].endswith("beat random ones at k = 4: filters from other data carry over; the master key filters "
                              "beat the net's own trained filters at k = 4.")

def test_summary_names_levers_banks_and_sizes():
    s = controls.summary(_table({"A-centres k=4": [0.0] * 3, "permuted AnB": [0.0] * 3}))
    row = s[s.treatment == "A-centres k=4"].iloc[0]
    assert (row.lever, row.bank, row.k, row.runs) == ("few distinct filters", "A-centres", 4, 3)
    assert s[s.treatment == "base"].direction.iloc[0] == "man-made→natural"
    assert s[s.treatment == "permuted AnB"].lever.iloc[0] == "which part of a filter"


def test_one_seed_reads_as_not_yet():
    t = _table({"identity": [-0.06] * 3, "random k=2": [-0.1] * 3, "A-centres k=2": [-0.02] * 3})
    t = t[t.seed == 0]
    lines = controls.reading(paired_differences(t, controls.comparisons(t.treatment)))
    assert "one seed so far, no interval: no reading about generality is made yet." in lines[0]
    assert lines[-1].endswith("no reading yet: one seed, no intervals.")


def test_a_selffer_bank_no_better_than_random_says_the_comparison_cannot_show_generality():
    lines = _reading({"identity": [-0.06, -0.05, -0.07], "random k=4": [0.0, 0.01, -0.01],
                      "A-centres k=4": [-0.04, -0.03, -0.05], "B-centres k=4": [0.0, 0.02, -0.01]})
    assert "same-half (B) centres − random" in lines[1] and "against the same half's (B) centres -0.0" in lines[1]
    assert lines[-1].endswith("the other half's k-means centres do worse than random ones at k = 4; the other half's "
                              "centres do worse than the same half's at k = 4: a sign of specificity; no bank size "
                              "tells the other half's filters above random ones: generality across the halves is not "
                              "shown here (nor could it be: the same half's centres, the selffer, beat random ones "
                              "at no bank size either).")


def test_exemplar_banks_are_read_beside_the_centres():
    t = {"identity": [-0.06, -0.05, -0.07], "random k=4": [0.0, 0.01, -0.01], "A-centres k=4": [-0.04, -0.03, -0.05],
         "B-centres k=4": [0.0, 0.02, -0.01], "A-exemplars k=4": [0.03, 0.04, 0.02], "B-exemplars k=4": [0.03, 0.05, 0.03]}
    assert ("A-exemplars k=4", "B-exemplars k=4") in controls.comparisons(list(t) + ["base"])
    lines = _reading(t)
    assert "other-half (A) exemplars − random +0.030 [" in lines[1] and "same-half (B) exemplars − random" in lines[1]
    assert lines[-1].startswith("- **Verdict, C, man-made→natural:** the other half's exemplar filters beat random ones "
                                "at k = 4: general filters, measured; the other half's k-means centres do worse")
    assert "generality across the halves is not shown" not in lines[-1]


def test_save_writes_the_summary_and_paired_differences_it_returns(tmp_path):
    t = _table({"identity": [-0.06, -0.05, -0.07], "random k=2": [0.0, 0.01, -0.01]})
    summary, paired = controls.save(t, tmp_path, "c")
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "c_summary.csv"), summary, check_dtype=False)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "c_paired.csv"), paired, check_dtype=False)
    assert set(summary.treatment) == {"base", "identity", "random k=2"}
    assert paired.set_index("comparison").loc["identity − base", "mean"] == pytest.approx(-0.06)


def test_copied_filters_are_read_against_random_and_the_target_halfs_own():
    """Yosinski's comparison beside the control: AnB − BnB as well as AnB − random-frozen, and Figure 3's retention
    (AnB − base), each with its line."""
    t = {"identity": [-0.2, -0.19, -0.21], "random-frozen": [-0.04, -0.05, -0.03], "AnB": [0.0, -0.01, 0.01],
         "BnB": [0.0, 0.01, 0.0]}
    assert [("AnB", "base"), ("AnB", "random-frozen"), ("BnB", "random-frozen"), ("AnB", "BnB")] == [
        c for c in controls.comparisons(list(t) + ["base"]) if c[0] in ("AnB", "BnB")]
    lines = _reading(t)
    assert any(line.startswith("- copied − the trained base (all distinct): +0.000 [") for line in lines)
    assert any(line.startswith("- copied − random (all distinct): +0.040 [") for line in lines)
    assert any(line.startswith("- copied − the target half's own (all distinct): -0.003 [") for line in lines)
    p = paired_differences(_table(t), [("identity", "base"), ("AnB", "BnB")])
    p.loc[p.comparison == "AnB − BnB", ["mean", "low", "high", "pairs"]] = [float("nan")] * 3 + [0]
    assert not any("half's own" in line for line in controls.reading(p))  # no pairs in a direction: no line

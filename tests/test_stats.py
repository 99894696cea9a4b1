"""Paired statistics against constructed tables whose answers are known by hand."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from mkf_utils.stats import difference_interval, mean_interval, paired_differences, reading, t_quantile, verdict

pytestmark = pytest.mark.unit


def run(treatment, seed, top1, target="B", n=4, direction=None, arch="net"):
    return {"architecture": arch, "treatment": treatment, "seed": seed, "top1": top1, "target": target,
            "n": 0 if treatment == "base" else n, "n_units": 4, "end": "first",
            "direction": target if treatment == "base" else direction or f"{'A' if target == 'B' else 'B'}→{target}"}


@pytest.mark.parametrize("df,expected", [(1, 12.7062), (2, 4.3027), (3, 3.1824), (5, 2.5706), (9, 2.2622),
                                         (29, 2.0452), (200, 1.9719)])
def test_t_quantile_matches_tables(df, expected):
    assert t_quantile(0.975, df) == pytest.approx(expected, abs=1e-4)


def test_interval_by_hand():
    mean, low, high = mean_interval([0.1, 0.2, 0.3])  # sd 0.1, k 3: half-width 4.3027 * 0.1 / sqrt(3)
    assert mean == pytest.approx(0.2) and high - mean == pytest.approx(4.302653 * 0.1 / math.sqrt(3), rel=1e-5)
    assert low == pytest.approx(2 * mean - high)


def test_pairs_by_seed_not_by_row_order():
    # AnB beats random-frozen by exactly 0.05 in every seed; a pairing by row order would see spread.
    rows = [run("AnB", s, v + 0.05) for s, v in [(2, 0.50), (0, 0.70), (1, 0.60)]]
    rows += [run("random-frozen", s, v) for s, v in [(0, 0.70), (1, 0.60), (2, 0.50)]]
    d = paired_differences(pd.DataFrame(rows), [("AnB", "random-frozen")]).iloc[0]
    assert d["pairs"] == 3 and d["unpaired"] == 0
    assert d["mean"] == pytest.approx(0.05) and d["low"] == pytest.approx(0.05) and d["high"] == pytest.approx(0.05)
    assert verdict(d) == "above"


def test_seeds_that_do_not_pair_are_counted_not_used():
    rows = [run("AnB", s, 0.6) for s in (0, 1, 2)] + [run("random-frozen", s, 0.5) for s in (1, 2, 3)]
    d = paired_differences(pd.DataFrame(rows), [("AnB", "random-frozen")]).iloc[0]
    assert (d["pairs"], d["unpaired"]) == (2, 1)
    assert d["mean"] == pytest.approx(0.1)


def test_base_pairs_with_the_target_half_and_directions_stay_apart():
    rows = [run("base", 0, 0.80, target="A"), run("base", 0, 0.60, target="B"),
            run("base", 1, 0.82, target="A"), run("base", 1, 0.64, target="B"),
            run("AnB", 0, 0.50, target="B"), run("AnB", 1, 0.56, target="B"),   # A→B: -0.10, -0.08
            run("AnB", 0, 0.78, target="A"), run("AnB", 1, 0.79, target="A")]   # B→A: -0.02, -0.03
    d = paired_differences(pd.DataFrame(rows), [("AnB", "base")]).set_index("direction")
    assert d.loc["A→B", "mean"] == pytest.approx(-0.09) and d.loc["B→A", "mean"] == pytest.approx(-0.025)
    assert (d.pairs == 2).all()


def test_depths_are_separate_and_one_pair_has_no_interval():
    rows = [run("AnB", 0, 0.6, n=2), run("AnB", 0, 0.5, n=4), run("random-frozen", 0, 0.55, n=4),
            run("AnB", 0, 0.7, n=4, target="A")]  # B→A: random-frozen not recorded in this direction (yet)
    d = paired_differences(pd.DataFrame(rows), [("AnB", "random-frozen")])
    assert len(d) == 2 and (d.n == 4).all()  # n = 2: no random-frozen run at that depth, nothing to compare
    deep = d.set_index("direction").loc["A→B"]
    assert deep["pairs"] == 1 and math.isnan(deep["low"]) and verdict(deep) == "one pair"
    other = d.set_index("direction").loc["B→A"]
    assert other["pairs"] == 0 and other["unpaired"] == 1 and verdict(other) == "no pairs"


def test_reading_sums_up_each_net_from_its_control():
    rows = [run("AnB", s, 0.6 + s / 100) for s in range(3)] + [run("random-frozen", s, 0.5) for s in range(3)]
    one_way = pd.DataFrame(rows + [run("AnB", 0, 0.7, target="A")])
    assert "can tell transferred filters" in reading(paired_differences(pd.DataFrame(rows)), False)[-1]
    assert "cannot tell" in reading(paired_differences(one_way), False)[-1]  # B→A has no pair yet
    worse = pd.DataFrame([{**r, "top1": 0.4 + r["seed"] / 100} if r["treatment"] == "AnB" else r for r in rows])
    assert "specific to the half" in reading(paired_differences(worse), False)[-1]
    no_control = pd.DataFrame([r for r in rows if r["treatment"] == "AnB"])
    assert "no random-frozen run recorded" in reading(paired_differences(no_control), False)[-1]


def test_verdict_moves_with_the_interval():
    noisy = [run("AnB", s, 0.6 + dv) for s, dv in enumerate([0.10, -0.08, 0.05])]
    noisy += [run("random-frozen", s, 0.6) for s in range(3)]
    assert verdict(paired_differences(pd.DataFrame(noisy), [("AnB", "random-frozen")]).iloc[0]) == "unclear"
    worse = [run("AnB", s, 0.5 - 0.01 * s) for s in range(3)] + [run("random-frozen", s, 0.6) for s in range(3)]
    assert verdict(paired_differences(pd.DataFrame(worse), [("AnB", "random-frozen")]).iloc[0]) == "below"


def test_equal_differences_are_not_certain():
    """Two seeds whose differences are both one test image (1/600): the sd is 0, but the interval is floored
    at one test image's step, so the verdict is 'unclear', not 'below'."""
    rows = [run("AnB", s, 0.5 - 1 / 600) for s in range(2)] + [run("random-frozen", s, 0.5) for s in range(2)]
    bare = paired_differences(pd.DataFrame(rows), [("AnB", "random-frozen")]).iloc[0]
    assert bare["low"] == bare["high"] and verdict(bare) == "below"  # what the floor is there to prevent
    floored = paired_differences(pd.DataFrame(rows).assign(test_images=600), [("AnB", "random-frozen")]).iloc[0]
    assert floored["low"] < 0 < floored["high"] and verdict(floored) == "unclear"
    # a clear effect stays clear under the floor
    big = [run("AnB", s, 0.4 + 0.01 * s) for s in range(3)] + [run("random-frozen", s, 0.6) for s in range(3)]
    assert verdict(paired_differences(pd.DataFrame(big).assign(test_images=600),
                                      [("AnB", "random-frozen")]).iloc[0]) == "below"


def test_difference_interval_is_welchs():
    # a: mean 2, variance 2 over 2 values (se^2 1); b: no spread; so df = 1 and the half-width is t(0.975, 1)
    mean, low, high = difference_interval([1.0, 3.0], [2.0, 2.0, 2.0, 2.0])
    assert (mean, round(low, 4), round(high, 4)) == (0.0, -12.7062, 12.7062)
    mean, low, high = difference_interval([0.90, 0.88, 0.92], [0.80, 0.81, 0.79])
    assert low > 0 and mean == pytest.approx(0.10)
    assert difference_interval([0.80, 0.81, 0.79], [0.90, 0.88, 0.92])[1] == pytest.approx(-high)
    assert all(math.isnan(v) for v in difference_interval([0.9], [0.8, 0.7])[1:])
    assert all(math.isnan(v) for v in difference_interval([0.9, 0.9], [0.8, 0.8])[1:])

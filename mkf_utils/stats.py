"""Paired statistics of transfer tables: differences between treatments, paired by seed, with t intervals.

Runs of one seed trained on one half start from the same random net (the seed is set before the model is
built; :func:`mkf_utils.train.setup`), so AnB, BnB, random-frozen and the base of one seed and target differ
only in what was copied or trained. Pairing by seed removes that shared variation. :func:`paired_differences` reports,
per architecture, direction and depth n, the mean of the paired differences, its 95% t interval and the
number of pairs; :func:`verdict` reads an interval (never a pooled sd).

>>> t = pd.DataFrame({"architecture": "a", "direction": "A→B", "target": "B", "n_units": 2,
...                   "treatment": ["base"] * 3 + ["AnB"] * 3, "n": [0] * 3 + [2] * 3, "seed": [0, 1, 2] * 2,
...                   "top1": [0.70, 0.72, 0.74, 0.60, 0.63, 0.62]})
>>> d = paired_differences(t, [("AnB", "base")])
>>> d[["comparison", "pairs"]].values.tolist(), round(float(d["mean"].iloc[0]), 4)
([['AnB − base', 3]], -0.1033)
>>> verdict(d.iloc[0])
'below'
"""
from __future__ import annotations

import math

import pandas as pd

# The comparisons of the evidence issue: does transfer beat random filters, and what does it cost against the base?
COMPARISONS = [("AnB", "random-frozen"), ("AnB", "base"), ("BnB", "base")]


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularised incomplete beta function (Lentz's method)."""
    tiny, c, d = 1e-300, 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        for num in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                    -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0 or x >= 1.0:
        return 0.0 if x <= 0.0 else 1.0
    lnf = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(lnf) * _betacf(a, b, x) / a
    return 1.0 - math.exp(lnf) * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom.

    >>> round(t_cdf(12.706204736, 1), 6), round(t_cdf(0.0, 5), 6)
    (0.975, 0.5)
    """
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t (bisection on :func:`t_cdf`; 1e-10 accurate).

    >>> [round(t_quantile(0.975, k), 3) for k in (1, 2, 4, 10, 30)]
    [12.706, 4.303, 2.776, 2.228, 2.042]
    """
    if not 0.0 < p < 1.0 or df <= 0:
        raise ValueError(f"t_quantile needs 0 < p < 1 and df > 0, got p={p}, df={df}")
    lo, hi = -1e4, 1e4
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
        if hi - lo < 1e-10:
            break
    return (lo + hi) / 2


def mean_interval(values: list[float] | pd.Series, level: float = 0.95,
                  sd_floor: float = 0.0) -> tuple[float, float, float]:
    """(mean, low, high): the mean of ``values`` and its two-sided t interval; (mean, nan, nan) for one value.

    ``sd_floor`` bounds the sd from below: a top-1 moves in steps of one test image, so equal differences
    (sd 0, seen with two pairs) must not give an interval of zero width.

    >>> [round(v, 4) for v in mean_interval([1.0, 2.0, 3.0])]
    [2.0, -0.4841, 4.4841]
    >>> [round(v, 4) for v in mean_interval([0.01, 0.01], sd_floor=0.01)]
    [0.01, -0.0798, 0.0998]
    """
    x = pd.Series(values, dtype=float).dropna()
    k, mean = len(x), float(x.mean())
    if k < 2:
        return mean, math.nan, math.nan
    half = t_quantile(0.5 + level / 2, k - 1) * max(float(x.std(ddof=1)), sd_floor) / math.sqrt(k)
    return mean, mean - half, mean + half


def difference_interval(a: list[float] | pd.Series, b: list[float] | pd.Series,
                        level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) of mean(a) - mean(b) for two unpaired samples (say, two architectures' per-seed
    retention): Welch's t interval; (difference, nan, nan) when either sample has fewer than two values or
    neither varies.

    >>> [round(v, 4) for v in difference_interval([1.0, 2.0, 3.0], [2.0, 3.0, 4.0])]
    [-1.0, -3.267, 1.267]
    """
    x, y = (pd.Series(v, dtype=float).dropna() for v in (a, b))
    diff = float(x.mean() - y.mean())
    vx, vy = (float(v.var(ddof=1)) / len(v) if len(v) > 1 else math.nan for v in (x, y))
    if not vx + vy > 0:
        return diff, math.nan, math.nan
    df = (vx + vy) ** 2 / (vx ** 2 / (len(x) - 1) + vy ** 2 / (len(y) - 1))
    half = t_quantile(0.5 + level / 2, df) * math.sqrt(vx + vy)
    return diff, diff - half, diff + half


def paired_differences(table: pd.DataFrame, comparisons: list[tuple[str, str]] | None = None,
                       metric: str = "top1", level: float = 0.95) -> pd.DataFrame:
    """Per architecture, direction, depth and comparison ``(a, b)``: ``metric`` of ``a`` minus that of ``b``,
    paired by seed (and by budget columns ``per_class``/``epochs``/``recipe`` when present).

    ``b == "base"`` pairs with the base trained on the same target half (n = 0); any other ``b`` with the run
    of the same depth n and end, at the depths where ``b`` was run for that architecture (in either direction;
    elsewhere there is nothing to compare with, and no row). Seeds present on one side only are counted in
    ``unpaired``, not used. With a ``test_images`` column, the sd of a group's differences is at least one test
    image's step (1 / test images; :func:`mean_interval`).

    Returns columns ``architecture, direction, n, n_units, comparison, mean, low, high, pairs, unpaired, level``
    (and the budget columns), ``low``/``high`` NaN when fewer than two pairs.
    """
    comparisons = comparisons or COMPARISONS
    if "end" not in table:
        table = table.assign(end="first")
    budget = [c for c in ("per_class", "epochs", "recipe") if c in table]
    rows = []
    for a, b in comparisons:
        left = table[table.treatment == a]
        if left.empty:
            continue
        if b == "base":
            right = table[table.treatment == "base"][["architecture", "target", "seed", *budget, metric]]
            on = ["architecture", "target", "seed", *budget]
        else:
            right = table[table.treatment == b][["architecture", "direction", "n", "end", "seed", *budget, metric]]
            on = ["architecture", "direction", "n", "end", "seed", *budget]
            measured = right[["architecture", "n", "end", *budget]].drop_duplicates()
            left = left.merge(measured, on=list(measured.columns))
        merged = left.merge(right, on=on, how="left", suffixes=("", "_other"), validate="many_to_one")
        keys = ["architecture", "direction", "n", "n_units", "end", *budget]
        for key, g in merged.groupby(keys, sort=False, dropna=False):
            diffs = (g[metric] - g[f"{metric}_other"]).dropna()
            step = 1 / g["test_images"].min() if "test_images" in g and g["test_images"].notna().any() else 0.0
            mean, low, high = mean_interval(diffs, level, step)
            rows.append({**dict(zip(keys, key)), "comparison": f"{a} − {b}", "mean": mean, "low": low, "high": high,
                         "pairs": len(diffs), "unpaired": int(len(g) - len(diffs)), "level": level})
    cols = ["architecture", "direction", "n", "n_units", "end", *budget, "comparison", "mean", "low", "high", "pairs",
            "unpaired", "level"]
    return pd.DataFrame(rows, columns=cols)


def verdict(row: pd.Series | dict) -> str:
    """``above`` / ``below`` when the interval excludes 0, ``unclear`` when it holds 0, ``one pair`` without one."""
    low, high = row["low"], row["high"]
    if pd.isna(low) or pd.isna(high):
        return "one pair" if row["pairs"] == 1 else "no pairs"
    return "above" if low > 0 else "below" if high < 0 else "unclear"


def interval_text(row: pd.Series | dict) -> str:
    """A paired difference as text: mean, its interval where there is one, and the number of pairs.

    >>> interval_text({"mean": 0.05, "low": 0.01, "high": 0.09, "pairs": 3})
    '+0.050 [+0.010, +0.090] (3 pairs)'
    """
    ci = "" if pd.isna(row["low"]) or pd.isna(row["high"]) else f" [{row['low']:+.3f}, {row['high']:+.3f}]"
    return f"{row['mean']:+.3f}{ci} ({row['pairs']} pair{'s' if row['pairs'] != 1 else ''})"


def reading(paired: pd.DataFrame, at_full_depth: bool = True) -> list[str]:
    """Markdown lines reading ``paired`` (from :func:`paired_differences`): each comparison with its interval
    and verdict, and whether the setting can tell copied filters from random ones at all.

    >>> p = pd.DataFrame({"architecture": "a", "direction": "A→B", "n": 4, "n_units": 4,
    ...                   "comparison": "AnB − random-frozen", "mean": 0.05, "low": 0.01, "high": 0.09, "pairs": 3, "unpaired": 0, "level": 0.95}, index=[0])
    >>> reading(p)[0]
    '- a, A→B, all 4 units: AnB − random-frozen +0.050 [+0.010, +0.090] (3 pairs): above zero.'
    """
    rows = paired[paired.n == paired.n_units] if at_full_depth else paired
    words = {"above": "above zero", "below": "below zero", "unclear": "the interval holds zero",
             "one pair": "one pair, no interval", "no pairs": "no pairs"}
    lines = []
    for r in rows.itertuples():
        depth = f"all {r.n} units" if r.n == r.n_units else f"{r.n} of {r.n_units} units"
        lines.append(f"- {r.architecture}, {r.direction}, {depth}: {r.comparison} {interval_text(r._asdict())}: "
                     f"{words[verdict(r._asdict())]}.")
    control = rows[rows.comparison == "AnB − random-frozen"]
    for arch in rows.architecture[rows.comparison.str.startswith("AnB")].unique():
        g = control[control.architecture == arch]
        verdicts = {verdict(r) for _, r in g.iterrows()}
        if not verdicts:
            lines.append(f"- **{arch}**: no random-frozen run recorded at these depths, so nothing here tells its "
                         "copied filters from filters that do not matter.")
        elif verdicts == {"above"}:
            lines.append(f"- **{arch}**: copied filters beat random-frozen ones in every direction, so this "
                         "setting can tell transferred filters from irrelevant ones.")
        elif verdicts == {"below"}:
            lines.append(f"- **{arch}**: copied filters do worse than random-frozen ones in every direction: they "
                         "are specific to the half they were trained on, and random ones serve the target better.")
        else:
            lines.append(f"- **{arch}**: copied filters do not beat random-frozen ones in every direction "
                         f"({', '.join(sorted(verdicts))}): for this net the setting cannot tell general filters "
                         "from filters that do not matter; read its AnB curve as a demo, not as evidence.")
    return lines

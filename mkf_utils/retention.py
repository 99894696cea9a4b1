"""Figure 5's numbers: how much of its base each net keeps after transfer, summarised and read.

:func:`retention_areas` gives each curve's value at its deepest unit and its area under the curve (with
Yosinski's AlexNet beside the nets); :func:`reading` says, per net, the retention at full depth per seed with its
95% interval, AnB against random-frozen filters at full depth (paired by seed: whether the copied filters matter),
whether each deeper net retains more than the shallowest (Welch's interval: different nets do not pair by seed), and
whether the paper's ordering (deeper nets retain more) holds.

>>> t = pd.DataFrame({"architecture": ["a"] * 3 + ["b"] * 3, "treatment": "AnB", "n": 4, "n_units": 4,
...                   "rel_ratio": [0.80, 0.82, 0.84, 0.90, 0.92, 0.94]})
>>> for line in reading(t, ["a", "b"])[-2:]:
...     print(line)
- **b retains more than a** at full depth: difference +0.100 [+0.055, +0.145] (Welch's 95% interval).
- The paper's ordering, deeper nets retaining more than a: holds here for every deeper net (b).
"""
from __future__ import annotations

import pandas as pd

from .plots import area_under_curve
from .stats import difference_interval, interval_text, mean_interval, paired_differences, verdict

ALEXNET = "AlexNet (Yosinski 2014)"


def retention_areas(summary: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """:func:`~mkf_utils.plots.area_under_curve` of each net's AnB curve in ``summary`` (its ``architecture``
    named; the controls are single points, not curves) and of Yosinski's ``reference`` curve (as :data:`ALEXNET`)."""
    if "treatment" in summary:
        summary = summary[summary.treatment == "AnB"]
    areas = area_under_curve(summary).merge(summary[["series", "architecture"]].drop_duplicates(), on="series")
    return pd.concat([areas, area_under_curve(reference).assign(architecture=ALEXNET)], ignore_index=True)


def area_lines(areas: pd.DataFrame, architectures: list[str]) -> list[str]:
    """Markdown lines: each net's retention at its deepest unit and its area, then AlexNet's."""
    ours = areas[areas.architecture.isin(architectures)].set_index("architecture").loc[architectures]
    lines = [f"- **{a}**: {r.deepest:.3f} of base at n / N = {r.max_depth:.2f}, area under the curve {r.auc:.3f} "
             f"(trapezoids over {r.depths} measured depths)." for a, r in ours.iterrows()]
    alex = areas.set_index("architecture").loc[ALEXNET]
    lines.append(f"- Yosinski's AlexNet: {alex.deepest:.3f} at n = 7, area {alex.auc:.3f} (over {alex.depths} depths). "
                 "An area over fewer depths assumes a straight line between them: compare areas over the same depths.")
    return lines


def reading(table: pd.DataFrame, architectures: list[str]) -> list[str]:
    """Markdown lines from Figure 5's run table: per net, AnB with all units frozen per seed, its mean and 95%
    interval; where random-frozen was run at full depth, AnB against it, paired by seed; then each deeper net
    against the one before it (``architectures`` in order of depth)."""
    full = table[(table.treatment == "AnB") & (table.n == table.n_units)]
    per_seed = {a: full[full.architecture == a].rel_ratio for a in architectures}
    lines = []
    for a, v in per_seed.items():
        if v.empty:
            lines.append(f"- {a}, all units: no run recorded yet.")
            continue
        mean, low, high = mean_interval(v)
        lines.append(f"- {a}, all units, per seed: {', '.join(f'{x:.3f}' for x in v)}; mean {mean:.3f}"
                     + (f" [{low:.3f}, {high:.3f}]" if len(v) > 1 else " (one seed, no interval)") + ".")
    control = paired_differences(table, [("AnB", "random-frozen")]) if (table.treatment == "random-frozen").any() \
        else pd.DataFrame(columns=["n", "n_units"])
    for r in control[control.n == control.n_units].itertuples():
        r = pd.Series(r._asdict())
        lines.append(f"- {r.architecture}, all units: AnB − random-frozen {interval_text(r)}: "
                     + {"above": "the copied filters beat random ones, so its retention measures transfer",
                        "below": "random filters do better than the copied ones",
                        "unclear": "copied and random filters cannot be told apart"}.get(verdict(r), "no interval")
                     + ".")
    return lines + _against_shallowest(per_seed, architectures)


def _against_shallowest(per_seed: dict[str, pd.Series], architectures: list[str]) -> list[str]:
    """Each deeper net against the shallowest (Welch), then whether every deeper net retains more."""
    words = {"above": "retains more than", "below": "retains less than", "unclear": "cannot be told from",
             "one pair": "has no interval against", "no pairs": "has no runs to compare with"}
    shallow, lines, verdicts = architectures[0], [], {}
    for deep in architectures[1:]:
        diff, low, high = difference_interval(per_seed[deep], per_seed[shallow])
        v = verdicts[deep] = verdict({"low": low, "high": high,
                                      "pairs": min(len(per_seed[deep]), len(per_seed[shallow]))})
        ci = f" [{low:+.3f}, {high:+.3f}]" if v in ("above", "below", "unclear") else ""
        lines.append(f"- **{deep} {words[v]} {shallow}** at full depth: difference {diff:+.3f}{ci} (Welch's 95% interval).")
    if not verdicts:
        return lines
    head = f"- The paper's ordering, deeper nets retaining more than {shallow}: "
    if all(v == "above" for v in verdicts.values()):
        return lines + [head + f"holds here for every deeper net ({', '.join(verdicts)})."]
    missing = [d for d, v in verdicts.items() if v in ("one pair", "no pairs")]
    said = {"below": "retain{} less", "unclear": "cannot be told from it", "above": "retain{} more"}
    groups = {k: [d for d, v in verdicts.items() if v == k] for k in said}
    parts = [f"{', '.join(nets)} {said[k].format('s' if len(nets) == 1 else '')}" for k, nets in groups.items() if nets]
    return lines + [head + "not shown here (" + "; ".join(parts + ([f"{', '.join(missing)} too few seeds"]
                                                                     if missing else [])) + ")."]

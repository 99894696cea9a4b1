"""Figure 5's numbers: how much of its base each net keeps after transfer, summarised and read.

:func:`retention_areas` gives each curve's value at its deepest unit and its area under the curve (with
Yosinski's AlexNet beside the nets); :func:`reading` says, per net, the retention at full depth per seed with its
95% interval, AnB against random-frozen filters at full depth (paired by seed: whether the copied filters matter),
whether each deeper net retains more than the shallowest (Welch's interval: different nets do not pair by seed),
whether the paper's ordering (deeper nets retain more) holds, and for which nets retention measures transfer at all
(those whose copied filters beat random-frozen ones). Where the frozen units' norms were copied and frozen too
(:data:`NORM_FROZEN`, as in Yosinski's AlexNet, which had none to retrain), it says what training them adds and reads
the ordering again without it: trained BatchNorms alone make random features work, more so in deeper ResNets
(Frankle, Schwab & Morcos, ICLR 2021).

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
    """Markdown lines: each net's retention at its deepest unit and its area (nets without runs left out: the
    reading names them), then AlexNet's."""
    ours = areas.set_index("architecture").loc[[a for a in architectures if a in set(areas.architecture)]]
    lines = [f"- **{a}**: {r.deepest:.3f} of base at n / N = {r.max_depth:.2f}, area under the curve {r.auc:.3f} "
             f"(trapezoids over {r.depths} measured depths)." for a, r in ours.iterrows()]
    alex = areas.set_index("architecture").loc[ALEXNET]
    lines.append(f"- Yosinski's AlexNet: {alex.deepest:.3f} at n = 7, area {alex.auc:.3f} (over {alex.depths} depths). "
                 "An area over fewer depths assumes a straight line between them: compare areas over the same depths.")
    return lines


NORM_FROZEN = "AnB norm-frozen"  # AnB with the frozen units' norms copied and frozen too (Yosinski's setting)
CONTROLS = {  # comparison at full depth, paired by seed -> what each verdict says
    ("AnB", "random-frozen"): {"above": "the copied filters beat random ones, so its retention measures transfer",
                               "below": "random filters do better than the copied ones",
                               "unclear": "copied and random filters cannot be told apart"},
    ("AnB", NORM_FROZEN): {"above": "training the frozen units' norms adds to its retention",
                           "below": "training the frozen units' norms costs accuracy",
                           "unclear": "training the frozen units' norms adds nothing that can be told"},
}


def reading(table: pd.DataFrame, architectures: list[str]) -> list[str]:
    """Markdown lines from Figure 5's run table: per net, AnB with all units frozen per seed, its mean and 95%
    interval (with its base's top-1 and what random-frozen and norm-frozen AnB keep, where the table has them);
    at full depth, AnB against random-frozen and against :data:`NORM_FROZEN`, paired by seed (:data:`CONTROLS`);
    then each deeper net against the shallowest (``architectures`` in order of depth), with trained norms and, where
    run, with frozen ones; and for which nets retention measures transfer."""
    full = table[table.n == table.n_units]
    anb = full[full.treatment == "AnB"]
    lines = [_net_line(a, anb[anb.architecture == a], full[full.architecture == a]) for a in architectures]
    present = [c for c in CONTROLS if (table.treatment == c[1]).any()]
    control = paired_differences(table, present) if present else pd.DataFrame(columns=["n", "n_units"])
    transfer = {}
    words = {f"{a} − {b}": said for (a, b), said in CONTROLS.items()}
    for r in control[control.n == control.n_units].itertuples():
        r = pd.Series(r._asdict())
        if r.comparison == "AnB − random-frozen":
            transfer[r.architecture] = verdict(r)
        lines.append(f"- {r.architecture}, all units: {r.comparison} {interval_text(r)}: "
                     f"{words[r.comparison].get(verdict(r), 'no interval')}.")
    lines += _against_shallowest({a: anb[anb.architecture == a].rel_ratio for a in architectures}, architectures)
    frozen = full[full.treatment == NORM_FROZEN]
    if len(frozen):
        lines += _against_shallowest({a: frozen[frozen.architecture == a].rel_ratio for a in architectures},
                                     architectures, "with norms frozen")
    return lines + _transfer_line(transfer, architectures)


def _net_line(name: str, anb: pd.DataFrame, full: pd.DataFrame) -> str:
    """One net's line: its AnB runs with all units frozen (``anb``) per seed, their mean and interval, its base's
    top-1 and what the controls among its full-depth runs (``full``) keep."""
    if anb.empty:
        return f"- {name}, all units: no run recorded yet."
    mean, low, high = mean_interval(anb.rel_ratio)
    kept = "".join(f"; {t} keeps {full[full.treatment == t].rel_ratio.mean():.3f}"
                   for _, t in CONTROLS if (full.treatment == t).any())
    return (f"- {name}, all units, per seed: {', '.join(f'{x:.3f}' for x in anb.rel_ratio)}; mean {mean:.3f}"
            + (f" [{low:.3f}, {high:.3f}]" if len(anb) > 1 else " (one seed, no interval)")
            + (f"; its base's top-1 {anb.base_top1.mean():.3f}" if "base_top1" in anb else "") + kept + ".")


def _transfer_line(transfer: dict[str, str], architectures: list[str]) -> list[str]:
    """Whether the retention compared above is transfer: only for the nets whose copied filters beat random-frozen
    ones (``transfer``: each net's verdict on AnB − random-frozen at full depth; a net without it is named)."""
    if not transfer:
        return []
    shown = [a for a in architectures if transfer.get(a) == "above"]
    rest = [a for a in architectures if a in transfer and a not in shown]
    untested = [a for a in architectures if a not in transfer]
    line = "- Retention measures transfer only where copied filters beat random-frozen ones: " \
        + (", ".join(shown) if shown else "no net here")
    if rest:
        line += (f"; for {', '.join(rest)} a higher or lower retention says how well the net does with any frozen "
                 "filters, not how general its filters are")
    return [line + (f"; {', '.join(untested)} without the control yet" if untested else "") + "."]


def _against_shallowest(per_seed: dict[str, pd.Series], architectures: list[str], label: str = "") -> list[str]:
    """Each deeper net against the shallowest (Welch), then whether every deeper net retains more (``label``:
    which retention, when not AnB's)."""
    words = {"above": "retains more than", "below": "retains less than", "unclear": "cannot be told from",
             "one pair": "has no interval against", "no pairs": "has no runs to compare with"}
    shallow, lines, verdicts = architectures[0], [], {}
    for deep in architectures[1:]:
        diff, low, high = difference_interval(per_seed[deep], per_seed[shallow])
        v = verdicts[deep] = verdict({"low": low, "high": high,
                                      "pairs": min(len(per_seed[deep]), len(per_seed[shallow]))})
        ci = f" [{low:+.3f}, {high:+.3f}]" if v in ("above", "below", "unclear") else ""
        lines.append(f"- **{deep} {words[v]} {shallow}** at full depth{' ' + label if label else ''}: "
                     f"difference {diff:+.3f}{ci} (Welch's 95% interval).")
    if not verdicts:
        return lines
    head = f"- The paper's ordering, deeper nets retaining more than {shallow}{' ' + label if label else ''}: "
    if all(v == "above" for v in verdicts.values()):
        return lines + [head + f"holds here for every deeper net ({', '.join(verdicts)})."]
    missing = [d for d, v in verdicts.items() if v in ("one pair", "no pairs")]
    said = {"below": "retain{} less", "unclear": "cannot be told from it", "above": "retain{} more"}
    groups = {k: [d for d, v in verdicts.items() if v == k] for k in said}
    parts = [f"{', '.join(nets)} {said[k].format('s' if len(nets) == 1 else '')}" for k, nets in groups.items() if nets]
    return lines + [head + "not shown here (" + "; ".join(parts + ([f"{', '.join(missing)} too few seeds"]
                                                                     if missing else [])) + ")."]

"""Controls for depthwise filters, read from a transfer table: is it the filters' content that matters?

The controls notebook trains every depthwise unit frozen to: the identity (centre tap: no spatial filtering),
a bank of k filters cycled over the channels (``<bank> k=<k>``: the master key filters, random init filters,
k-means centres of the other half's base, A, or of the same half's, B), base A's filters with their channels
shuffled (``permuted AnB``), and Gaussian filters with base A's energy per ring (``radial random``); beside
Figure 3's base, AnB, BnB and random-frozen. This module names each treatment's lever, lists the paired
comparisons that answer each lever's question (:func:`comparisons`), summarises the table per treatment and
writes the reading (:func:`reading`), each verdict from a 95% interval paired by seed
(:mod:`mkf_utils.stats`).

>>> lever("A-centres k=4"), lever("identity"), lever("AnB")
(('few distinct filters', 'A-centres', 4), ('identity floor', 'identity', 1), ('copied or random', 'AnB', None))
"""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from .stats import interval_text, paired_differences, verdict
from .treatments import BANK_TREATMENT

BANK_ORDER = ["random", "master-key", "A-centres", "B-centres", "A-exemplars", "B-exemplars"]  # drawn and read so
FROM_HALVES = ("centres", "exemplars")  # banks built from a base's filters: A-<kind> (other half), B-<kind> (same)


def lever(treatment: str) -> tuple[str, str, int | None]:
    """(lever, bank or treatment, k) of a treatment name; k is None where there is no bank."""
    m = BANK_TREATMENT.fullmatch(treatment)
    if m:
        return "few distinct filters", m.group(1), int(m.group(2))
    if treatment == "identity":
        return "identity floor", "identity", 1
    if treatment in ("permuted AnB", "radial random"):
        return "which part of a filter", treatment, None
    return "copied or random", treatment, None


def comparisons(treatments: list[str] | pd.Series) -> list[tuple[str, str]]:
    """The paired comparisons that answer each lever's question, for the treatments present.

    >>> comparisons(["base", "identity", "random k=2", "A-centres k=2", "B-centres k=2", "AnB", "random-frozen"])
    ... # doctest: +NORMALIZE_WHITESPACE
    [('identity', 'base'), ('random-frozen', 'base'), ('AnB', 'base'), ('AnB', 'random-frozen'),
     ('A-centres k=2', 'random k=2'), ('B-centres k=2', 'random k=2'), ('A-centres k=2', 'B-centres k=2')]
    """
    have = set(treatments)
    ks = sorted({lever(t)[2] for t in have if lever(t)[0] == "few distinct filters"})
    wanted = [("identity", "base"), ("random-frozen", "base"), ("AnB", "base"),  # Figure 3's retention, as a difference
              ("AnB", "random-frozen"), ("BnB", "random-frozen"),
              ("AnB", "BnB")]  # Yosinski's test: copied filters against the target half's own
    for k in ks:
        wanted += [(f"{b} k={k}", f"random k={k}") for b in ("master-key", "A-centres", "B-centres")]
        wanted.append((f"master-key k={k}", "base"))  # does a bank of k master key filters match trained filters?
        wanted.append((f"A-centres k={k}", f"B-centres k={k}"))
        wanted += [(f"{b} k={k}", f"random k={k}") for b in ("A-exemplars", "B-exemplars")]
        wanted.append((f"A-exemplars k={k}", f"B-exemplars k={k}"))
    wanted += [("permuted AnB", "AnB"), ("permuted AnB", "random-frozen"), ("radial random", "random-frozen"),
               ("AnB", "radial random")]
    return [(a, b) for a, b in wanted if a in have and b in have]


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per architecture, direction and treatment (the bases under their target's direction): mean and sd of
    top-1 and of top-1 / base top-1 over seeds, the run count, and the treatment's lever, bank and k."""
    t = table.copy()
    names = t[t.treatment != "base"].groupby("target").direction.first()
    t["direction"] = t.target.map(names).fillna(t.direction)
    out = t.groupby(["architecture", "direction", "treatment"], as_index=False, sort=False).agg(
        top1=("top1", "mean"), top1_sd=("top1", "std"), rel_ratio=("rel_ratio", "mean"),
        rel_ratio_sd=("rel_ratio", "std"), runs=("top1", "size"))
    levers = out.treatment.map(lever)
    out["lever"], out["bank"], out["k"] = levers.str[0], levers.str[1], levers.str[2]
    return out.fillna({"top1_sd": 0.0, "rel_ratio_sd": 0.0})


def save_paired(table: pd.DataFrame, pairs: list[tuple[str, str]], out_dir: str | Path, name: str) -> pd.DataFrame:
    """The paired differences of ``pairs`` in ``table`` (:func:`mkf_utils.stats.paired_differences`), written
    beside its run table as ``out_dir/name_paired.csv`` and returned."""
    paired = paired_differences(table, pairs)
    paired.to_csv(Path(out_dir) / f"{name}_paired.csv", index=False)
    return paired


def save(table: pd.DataFrame, out_dir: str | Path, name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The all-units controls' :func:`summary` and the paired differences of their :func:`comparisons`, written
    beside the run table as ``name_summary.csv`` and ``name_paired.csv``; returns both."""
    means = summary(table)
    means.to_csv(Path(out_dir) / f"{name}_summary.csv", index=False)
    return means, save_paired(table, comparisons(table.treatment), out_dir, name)


def detectable(row: pd.Series | dict) -> float:
    """The smallest mean difference this comparison's pairs could have told from zero: its interval's half width
    (NaN without an interval)."""
    return (row["high"] - row["low"]) / 2 if not (pd.isna(row["low"]) or pd.isna(row["high"])) else math.nan


WORDS = {"above": "above zero", "below": "below zero", "unclear": "cannot be told apart",
         "one pair": "one pair, no interval", "no pairs": "no pairs"}


def _said(row: pd.Series, bold: bool = False) -> str:
    """A comparison with its interval and verdict; where the interval holds zero, the smallest difference it
    could have detected."""
    v = verdict(row)
    word = f"**{WORDS[v]}**" if bold and v == "above" else WORDS[v]
    size = f" (smallest detectable difference ±{detectable(row):.3f})" if v == "unclear" else ""
    return f"{interval_text(row)}: {word}{size}"


def reading(paired: pd.DataFrame) -> list[str]:
    """Markdown lines, per architecture and direction: whether the filters are needed (identity floor), then per
    bank size whether the other half's filters beat random ones and come close to the same half's (and whether
    the same half's beat random ones at all: else the comparison cannot show generality), then what a
    copied filter's channel and shape carry; each with its interval and the smallest effect it could detect.

    >>> p = pd.DataFrame({"architecture": "a", "direction": "A→B", "comparison": ["identity − base",
    ...     "A-centres k=2 − random k=2", "A-centres k=2 − B-centres k=2"], "mean": [-0.06, 0.03, -0.01],
    ...     "low": [-0.08, 0.01, -0.03], "high": [-0.04, 0.05, 0.01], "pairs": 3})
    >>> print("\\n".join(reading(p)))  # doctest: +NORMALIZE_WHITESPACE
    - **a, A→B.** Identity filters cost -0.060 [-0.080, -0.040] (3 pairs) against the base: the filters are
      needed here, so the readings below can tell something.
    - k = 2: other-half (A) centres − random +0.030 [+0.010, +0.050] (3 pairs): **above zero**; against the same
      half's (B) centres -0.010 [-0.030, +0.010] (3 pairs): cannot be told apart (smallest detectable difference
      ±0.020).
    - **Verdict, a, A→B:** the other half's filters beat random ones at k = 2: general filters, measured.
    """
    lines: list[str] = []
    paired = paired[paired.pairs > 0]  # a comparison one direction lacks a side of says nothing there
    for (arch, direction), g in paired.groupby(["architecture", "direction"], sort=False):
        rows = {r.comparison: r for _, r in g.iterrows()}
        floor = rows.get("identity − base")
        head = f"- **{arch}, {direction}.**"
        if floor is None:
            lines.append(f"{head} No identity run recorded: nothing says whether the filters are needed at all.")
            needed = False
        else:
            v = verdict(floor)
            needed = v == "below"
            lines.append(f"{head} Identity filters cost {interval_text(floor)} against the base: " + (
                "the filters are needed here, so the readings below can tell something." if needed else
                "one seed so far, no interval: no reading about generality is made yet." if v == "one pair" else
                "the base does not clearly need its spatial filters here, so no reading about generality is made "
                f"(smallest detectable cost ±{detectable(floor):.3f})."))
        told: dict[tuple[str, str], list[int]] = {}  # (comparison, above | below) -> the bank sizes where it is so
        kinds = [kind for kind in FROM_HALVES if any(c.startswith(f"A-{kind} k=") for c in rows)]
        for k in sorted({int(c.split("k=")[1].split()[0]) for c in rows if c.startswith(("A-centres k=", "A-exemplars k=", "master-key k="))}):
            compared = {}  # short name -> (label, paired row)
            for kind in kinds:
                for short, c, label in ((f"A-{kind}", f"A-{kind} k={k} − random k={k}", f"other-half (A) {kind} − random"),
                                        (f"B-{kind}", f"B-{kind} k={k} − random k={k}", f"same-half (B) {kind} − random"),
                                        (f"A-B {kind}", f"A-{kind} k={k} − B-{kind} k={k}",
                                         f"against the same half's (B) {kind}")):
                    if c in rows:
                        compared[short] = label, rows[c]
            if f"master-key k={k} − random k={k}" in rows:
                compared["master-key"] = "master key filters − random", rows[f"master-key k={k} − random k={k}"]
            if f"master-key k={k} − base" in rows:
                compared["master-key − base"] = "master key filters − the trained base", rows[f"master-key k={k} − base"]
            lines.append(f"- k = {k}: " + "; ".join(f"{label} {_said(row, bold=True)}" for label, row in compared.values())
                         + ".")
            for short, (_, row) in compared.items():
                if verdict(row) in ("above", "below"):
                    told.setdefault((short, verdict(row)), []).append(k)
        for a, b, what in (("permuted AnB", "AnB", "copied filters in shuffled channels − copied"),
                           ("radial random", "random-frozen", "random filters with A's radial profile − random"),
                           ("AnB", "base", "copied − the trained base (all distinct)"),
                           ("AnB", "random-frozen", "copied − random (all distinct)"),
                           ("AnB", "BnB", "copied − the target half's own (all distinct)")):
            if f"{a} − {b}" in rows:
                lines.append(f"- {what}: {_said(rows[f'{a} − {b}'])}.")
        ks = lambda short, v: ", ".join(map(str, told.get((short, v), [])))  # noqa: E731
        if floor is not None and verdict(floor) == "one pair":
            verdict_line = "no reading yet: one seed, no intervals."
        elif not needed:
            verdict_line = "no reading: the identity floor is not below the base."
        else:
            said = []
            for kind in kinds:
                if ks(f"A-{kind}", "above"):
                    said.append(f"the other half's {'filters' if kind == 'centres' else 'exemplar filters'} beat random "
                                f"ones at k = {ks(f'A-{kind}', 'above')}: general filters, measured")
            if ks("master-key", "above"):
                said.append(f"the master key filters (extracted from other trained DS-CNNs) beat random ones at k = "
                            f"{ks('master-key', 'above')}: filters from other data carry over")
            for v, said_v in (("above", "beat"), ("below", "fall short of")):
                if ks("master-key − base", v):
                    said.append(f"the master key filters {said_v} the net's own trained filters at k = "
                                f"{ks('master-key − base', v)}")
            names = [(f"{h}-{kind}", f"the {half} half's {'k-means centres' if kind == 'centres' else kind}")
                     for kind in kinds for h, half in (("A", "other"), ("B", "same"))]
            for short, name in names + [("master-key", "the master key filters")]:
                if ks(short, "below"):
                    said.append(f"{name} do worse than random ones at k = {ks(short, 'below')}")
            for kind in kinds:
                if ks(f"A-B {kind}", "below"):
                    said.append(f"the other half's {kind} do worse than the same half's at k = "
                                f"{ks(f'A-B {kind}', 'below')}: a sign of specificity")
            if kinds and not any(ks(f"A-{kind}", "above") for kind in kinds):
                selffers = [kind for kind in kinds if any(c.startswith(f"B-{kind} k=") and "random" in c for c in rows)]
                said.append("no bank size tells the other half's filters above random ones: generality across the "
                            "halves is not shown here" + (
                                f" (nor could it be: the same half's {' or '.join(selffers)}, the selffer, beat random "
                                "ones at no bank size either)" if selffers and not any(
                                    ks(f"B-{kind}", "above") for kind in selffers) else ""))
            verdict_line = "; ".join(said) + "." if said else "no bank of few filters recorded yet."
        lines.append(f"- **Verdict, {arch}, {direction}:** {verdict_line}")
    return lines


def depth_reading(paired: pd.DataFrame) -> list[str]:
    """Markdown lines for Figure 3's protocol with banks of few filters (the ``bankdepth`` section): per
    architecture, direction and comparison (:func:`comparisons`), the difference at each depth n with its interval,
    then the depths where it lies above and below zero.

    >>> p = pd.DataFrame({"architecture": "a", "direction": "A→B", "n_units": 4, "n": [2, 4],
    ...                   "comparison": "master-key k=4 − random k=4", "mean": [0.0, 0.04], "low": [-0.02, 0.01],
    ...                   "high": [0.02, 0.07], "pairs": 3})
    >>> print("\\n".join(depth_reading(p)))  # doctest: +NORMALIZE_WHITESPACE
    - **a, A→B** (the first n of 4 units frozen):
      - master-key k=4 − random k=4: n = 2 +0.000 [-0.020, +0.020] (3 pairs): cannot be told apart (smallest
        detectable difference ±0.020); n = 4 +0.040 [+0.010, +0.070] (3 pairs): above zero. Above zero at n = 4.
    """
    lines = []
    for (arch, direction), g in paired.groupby(["architecture", "direction"], sort=False):
        lines.append(f"- **{arch}, {direction}** (the first n of {g.n_units.iloc[0]} units frozen):")
        for comparison, h in g.groupby("comparison", sort=False):
            h = h.sort_values("n")
            said = "; ".join(f"n = {r.n} {_said(r)}" for _, r in h.iterrows())
            where = {v: ", ".join(str(r.n) for _, r in h.iterrows() if verdict(r) == v) for v in ("above", "below")}
            told = [f"{word} zero at n = {where[v]}" for v, word in (("above", "Above"), ("below", "Below")) if where[v]]
            lines.append(f"  - {comparison}: {said}." + ("".join(f" {t}." for t in told)))
    return lines


LOWDATA_COMPARISONS = [("AnB", "random-frozen"), ("AnB", "base"), ("random-frozen", "base"), ("identity", "base")]


def lowdata_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per architecture, target images per class and treatment: mean and sd over seeds of top-1 / base top-1 (the
    base trained on as few images), at each depth n; the runs the transfers copy from (``source``) left out."""
    t = table[table.treatment != "source"]
    out = t.groupby(["architecture", "per_class", "treatment", "n", "n_units"], as_index=False).agg(
        rel_ratio=("rel_ratio", "mean"), rel_ratio_sd=("rel_ratio", "std"), top1=("top1", "mean"),
        runs=("top1", "size"))
    out["series"] = out.treatment + [f" (n = {n} of {u})" if 0 < n < u else "" for n, u in zip(out.n, out.n_units)]
    return out.fillna({"rel_ratio_sd": 0.0})


def convergence(curves: pd.DataFrame, by: list[str], tail: float = 0.25) -> pd.DataFrame:
    """Whether runs still improved at the end: per group ``by`` (mean over seeds), the test top-1 at the last
    evaluation and its gain over the evaluations in the last ``tail`` of the epochs (a base that converged
    gains about nothing there), from ``curves`` (:func:`mkf_utils.study.curves`).

    >>> c = pd.DataFrame({"per_class": 25, "seed": 0, "epoch": [10, 20, 30, 40], "top1": [0.2, 0.3, 0.36, 0.4]})
    >>> convergence(c, ["per_class"]).round(3).to_dict("records")
    [{'per_class': 25, 'epochs': 40, 'final_top1': 0.4, 'tail_gain': 0.04}]
    """
    def one(g: pd.DataFrame) -> pd.Series:
        g = g.sort_values("epoch")
        last = g.epoch.max()
        start = g[g.epoch <= last - tail * last].top1  # up to the evaluation where the tail begins
        ref = start.iloc[-1] if len(start) else g.top1.iloc[0]
        return pd.Series({"epochs": last, "final_top1": g.top1.iloc[-1], "tail_gain": g.top1.iloc[-1] - ref})

    per_seed = curves.groupby([*by, "seed"]).apply(one, include_groups=False).reset_index()
    out = per_seed.groupby(by, as_index=False).agg(epochs=("epochs", "max"), final_top1=("final_top1", "mean"),
                                                   tail_gain=("tail_gain", "mean"))
    out["epochs"] = out.epochs.astype(int)
    return out


def convergence_reading(conv: pd.DataFrame, tail: float = 0.25) -> list[str]:
    """Markdown lines from :func:`convergence` (grouped by architecture and images per class).

    >>> convergence_reading(pd.DataFrame({"architecture": "a", "per_class": [25], "epochs": 120, "final_top1": 0.31,
    ...                                   "tail_gain": 0.004}))
    ['- a, 25 images per class: base top-1 0.310 after 120 epochs, +0.004 over the last 25% of them.']
    """
    return [f"- {r.architecture}, {r.per_class} images per class: base top-1 {r.final_top1:.3f} after {r.epochs} "
            f"epochs, {r.tail_gain:+.3f} over the last {tail:.0%} of them." for r in conv.itertuples()]


def lowdata_reading(paired: pd.DataFrame) -> list[str]:
    """Markdown lines: per architecture and target size, whether copied filters (all units) beat random ones, what
    the identity floor costs and what copied filters in the first n units only (a middle depth) cost against the
    base, each with its interval; then whether copied filters pull away from random ones as the target shrinks
    (the target sizes, in images per class, where the interval of AnB - random-frozen lies above zero).

    >>> p = pd.DataFrame({"architecture": "a", "per_class": [25, 250, 25], "n": [4, 4, 2], "n_units": 4,
    ...                   "comparison": ["AnB − random-frozen"] * 2 + ["AnB − base"], "mean": [0.05, 0.0, 0.03],
    ...                   "low": [0.02, -0.02, 0.01], "high": [0.08, 0.02, 0.05], "pairs": 3})
    >>> lowdata_reading(p)[0]
    '- a, 25 images per class: copied − random +0.050 [+0.020, +0.080] (3 pairs): above zero; copied in the first 2 of 4 units − base +0.030 [+0.010, +0.050] (3 pairs): above zero.'
    >>> lowdata_reading(p)[-1]
    '- **a:** copied filters beat random ones with 25; not with 250.'
    """
    lines = []
    for arch, g in paired.groupby("architecture", sort=False):
        told: dict[str, list[str]] = {"above": [], "not": [], "untold": []}
        for size, h in g.groupby("per_class"):
            rows = {r.comparison: r for _, r in h[h.n == h.n_units].iterrows()}
            parts = [f"{label} {_said(rows[c])}" for c, label in
                     (("AnB − random-frozen", "copied − random"), ("identity − base", "identity − base"))
                     if c in rows]
            parts += [f"copied in the first {r.n} of {r.n_units} units − base {_said(r)}" for _, r in
                      h[(h.n < h.n_units) & (h.comparison == "AnB − base")].sort_values("n").iterrows()]
            if parts:
                lines.append(f"- {arch}, {size} images per class: " + "; ".join(parts) + ".")
            if "AnB − random-frozen" in rows:
                v = verdict(rows["AnB − random-frozen"])
                told["above" if v == "above" else "untold" if v in ("one pair", "no pairs") else "not"].append(str(size))
        if any(told.values()):
            parts = [f"{', '.join(told['above']) or 'no target size'}"]
            parts += [f"not with {', '.join(told['not'])}"] if told["not"] else []
            parts += [f"no interval (one seed) with {', '.join(told['untold'])}"] if told["untold"] else []
            lines.append(f"- **{arch}:** copied filters beat random ones with " + "; ".join(parts) + ".")
    return lines

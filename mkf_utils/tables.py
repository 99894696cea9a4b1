"""The transfer tables, read from a :func:`~mkf_utils.plans.matrix_plan` run table: which filters serve a target.

A table's runs copy frozen filters from nets trained on source datasets (and source architectures) into a target
net trained on a target dataset. Each copied source becomes a column of its own (``AnB from man-made``), beside the
controls every table carries: the base trained from scratch on the target, random-frozen filters in the same units
(do the filters' contents matter at all?) and, for depthwise units, identity filters (are spatial filters needed at
all?). Every comparison is a paired difference of top-1 by seed (:mod:`mkf_utils.stats`); the reading says per
target which of "general", "any filters would do" and "no filters are needed" the intervals support.

>>> t = pd.DataFrame({"architecture": "a", "treatment": ["base", "AnB", "AnB", "random-frozen"], "n": [0, 4, 4, 4],
...                   "source": [None, "A", "C", None], "source_architecture": [None, "a", "a", None],
...                   "target": "B", "direction": ["B", "A→B", "C→B", "B"], "seed": 0, "top1": .5})
>>> list(columns(t).treatment)
['base', 'AnB from A', 'AnB from C', 'random-frozen']
>>> comparisons(columns(t).treatment)  # doctest: +NORMALIZE_WHITESPACE
[('random-frozen', 'base'), ('AnB from A', 'base'), ('AnB from A', 'random-frozen'), ('AnB from C', 'base'),
 ('AnB from C', 'random-frozen')]
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .controls import WORDS, detectable, save_paired
from .stats import interval_text, verdict
from .treatments import BANK_TREATMENT, treatment_spec


def copied_from(treatment: str) -> bool:
    """Whether a treatment copies from the source side (one column per source), not from the target's own net."""
    return treatment not in ("base", "source") and treatment_spec(treatment)[1] == "other"


def columns(table: pd.DataFrame) -> pd.DataFrame:
    """The table with one treatment per column of the transfer table: a copied treatment is named with its source
    (``AnB from man-made``), and every run's direction is
    its target, so that :func:`~mkf_utils.stats.paired_differences` pairs each column with the target's controls.
    In a table with other architectures as sources, every copied column names its net (``AnB from ConvNeXt-atto on
    man-made``), so that the columns read as source nets. The nets copied from (``source`` rows) are left out."""
    t = table[table.treatment != "source"].copy()
    cross = "source_architecture" in t and (t.source_architecture.notna()
                                            & (t.source_architecture != t.architecture)).any()

    def name(r: pd.Series) -> str:
        if not copied_from(r.treatment):
            return r.treatment
        return f"{r.treatment} from {r.source_architecture} on {r.source}" if cross else f"{r.treatment} from {r.source}"

    t["column"] = t.apply(name, axis=1) if len(t) else []
    return t.assign(treatment=t.column, direction=t.target).drop(columns="column")


def comparisons(treatments: list[str] | pd.Series) -> list[tuple[str, str]]:
    """The paired comparisons of a table, for the columns present: the controls against the base, then each
    copied column against the base and random-frozen (and a bank of k copied filters against k random ones; the
    k master key filters, which no source of the table gave, against k random ones).

    >>> comparisons(["base", "random-frozen", "random k=4", "master-key k=4", "A-exemplars k=4 from C"])
    ... # doctest: +NORMALIZE_WHITESPACE
    [('random-frozen', 'base'), ('master-key k=4', 'random k=4'), ('A-exemplars k=4 from C', 'base'),
     ('A-exemplars k=4 from C', 'random-frozen'), ('A-exemplars k=4 from C', 'random k=4')]
    """
    have = list(dict.fromkeys(treatments))
    wanted = [("identity", "base"), ("random-frozen", "base"), ("BnB", "base"), ("BnB", "random-frozen")]
    for c in have:
        first = c.split(" from ")[0]
        m = BANK_TREATMENT.fullmatch(first)
        if c != first:
            wanted += [(c, "base"), (c, "random-frozen")] + ([(c, f"random k={m.group(2)}")] if m else [])
        elif m and m.group(1) == "master-key":
            wanted += [(c, f"random k={m.group(2)}")]
    return [(a, b) for a, b in wanted if a in have and b in have and a != b]


def summary(cols: pd.DataFrame) -> pd.DataFrame:
    """Per architecture, target, column and depth: mean and sd of top-1 and of top-1 / base over seeds, and runs."""
    out = cols.groupby(["architecture", "target", "treatment", "n", "n_units"], as_index=False, sort=False).agg(
        top1=("top1", "mean"), top1_sd=("top1", "std"), rel_ratio=("rel_ratio", "mean"),
        rel_ratio_sd=("rel_ratio", "std"), runs=("top1", "size"))
    return out.fillna({"top1_sd": 0.0, "rel_ratio_sd": 0.0})


def matrix(summary: pd.DataFrame, value: str = "top1") -> pd.DataFrame:
    """``value`` as a table: one row per column of the transfer table (in run order), one column per target (and
    architecture when the table has several), full depth only for copied columns at several depths.

    >>> s = pd.DataFrame({"architecture": "a", "target": ["B", "B"], "treatment": ["base", "AnB from A"],
    ...                   "n": [0, 4], "n_units": 4, "top1": [0.5, 0.6]})
    >>> matrix(s).to_dict()
    {'B': {'base': 0.5, 'AnB from A': 0.6}}
    """
    s = summary[(summary.n == 0) | (summary.n == summary.n_units)]
    many = s.architecture.nunique() > 1
    s = s.assign(into=s.architecture + " on " + s.target if many else s.target)
    out = s.pivot_table(index="treatment", columns="into", values=value, sort=False)
    out.columns.name, out.index.name = None, None
    return out


def _line(r: pd.Series) -> str:
    smallest = detectable(r)
    floor = "" if pd.isna(smallest) else f"; the smallest difference these pairs could detect: ±{smallest:.3f}"
    return f"  - {r.comparison}: {interval_text(r)}: {WORDS[verdict(r)]}{floor}"


def reading(paired: pd.DataFrame) -> list[str]:
    """Markdown lines per architecture and target: the identity floor first (where identity filters cost nothing,
    spatial filters are not needed there and no reading about generality is made), then each copied column against
    random-frozen filters and the base, each verdict from its 95% interval.

    >>> p = pd.DataFrame({"architecture": "a", "direction": "B", "n": 4, "n_units": 4, "pairs": 3, "unpaired": 0,
    ...                   "comparison": ["identity − base", "AnB from A − random-frozen"], "mean": [-0.06, 0.03],
    ...                   "low": [-0.08, 0.01], "high": [-0.04, 0.05], "level": 0.95})
    >>> print("\\n".join(reading(p)[:2]))
    - **a into B**: identity filters cost -0.060 [-0.080, -0.040] (3 pairs): the filters are needed here.
      - AnB from A beats random-frozen filters: +0.030 [+0.010, +0.050] (3 pairs): its filters carry what the target needs.
    """
    lines = []
    for (arch, target), g in paired.groupby(["architecture", "direction"], sort=False):
        g = g[g.n == g.n_units] if (g.n == g.n_units).any() else g
        floor = g[g.comparison == "identity − base"]
        needed = not floor.empty and verdict(floor.iloc[0]) == "below"
        head = f"- **{arch} into {target}**: "
        if floor.empty:
            lines.append(head + "no identity control here, so nothing says whether the filters are needed at all.")
        elif needed:
            lines.append(head + f"identity filters cost {interval_text(floor.iloc[0])}: the filters are needed here.")
        else:
            lines.append(head + f"identity filters cost {interval_text(floor.iloc[0])} "
                         f"({WORDS[verdict(floor.iloc[0])]}): spatial filters are not shown to be needed for this "
                         "target, so no reading about generality is made here.")
        for r in g[g.comparison.str.endswith(" − random-frozen")].itertuples():
            r = pd.Series(r._asdict())
            name = r.comparison.removesuffix(" − random-frozen")
            v = verdict(r)
            if needed and v == "above":
                lines.append(f"  - {name} beats random-frozen filters: {interval_text(r)}: its filters carry what "
                             "the target needs.")
            elif v == "below":
                lines.append(f"  - {name} does worse than random-frozen filters: {interval_text(r)}: its filters are "
                             "specific to their source.")
            else:
                lines.append(f"  - {name} against random-frozen filters: {interval_text(r)}: {WORDS[v]}"
                             + ("" if not needed else ": copied filters cannot be told from random ones here"))
        rest = ~g.comparison.str.endswith(" − random-frozen") & (g.comparison != "identity − base") \
            & ~g.comparison.str.contains(" from .* − .* from ")  # copied against copied: size_ or floor_reading's
        lines += [_line(pd.Series(r._asdict())) for r in g[rest].itertuples()]
    return lines


def by_source(paired: pd.DataFrame, datasets: pd.DataFrame) -> pd.DataFrame:
    """The paired differences of the copied columns (``AnB from S − random-frozen``, ...) with their ``source``
    S, what they are compared with (``against``) and the source's training ``images`` (from
    :func:`mkf_utils.figures.table_datasets`).

    >>> p = pd.DataFrame({"comparison": ["AnB from A − base", "random-frozen − base"], "mean": [0.1, 0.0]})
    >>> by_source(p, pd.DataFrame({"dataset": ["A"], "images": [400]}))[["source", "against", "images"]].values.tolist()
    [['A', 'base', 400]]
    """
    rows = paired[paired.comparison.str.contains(" from ")].copy()
    left = rows.comparison.str.split(" − ").str[0]
    rows["against"] = rows.comparison.str.split(" − ").str[1]
    rows["source"] = left.str.split(" from ").str[1]
    return rows.merge(datasets[["dataset", "images"]].rename(columns={"dataset": "source"}), on="source", how="left")


def source_comparisons(treatment: str, sources: list[str], reference: str | None = None) -> list[tuple[str, str]]:
    """``treatment`` copied from each source against it copied from ``reference`` (None: the first source, e.g. the
    smallest), in order.

    >>> source_comparisons("AnB", ["A 10%", "A", "all"])
    [('AnB from A', 'AnB from A 10%'), ('AnB from all', 'AnB from A 10%')]
    >>> source_comparisons("AnB", ["A", "noise", "all"], "noise")
    [('AnB from A', 'AnB from noise'), ('AnB from all', 'AnB from noise')]
    """
    ref = sources[0] if reference is None and sources else reference
    return [(f"{treatment} from {s}", f"{treatment} from {ref}") for s in sources if s != ref]


def size_reading(paired: pd.DataFrame, treatment: str, sources: list[str]) -> list[str]:
    """Markdown lines: does a larger source give better filters? ``treatment`` copied from the largest source
    against the smallest (``sources`` ordered by size), per net and target, and each step between."""
    lines = []
    wanted = {f"{a} − {b}" for a, b in source_comparisons(treatment, sources)}
    for (arch, target), g in paired.groupby(["architecture", "direction"], sort=False):
        g = g[g.comparison.isin(wanted)]
        if g.empty:
            continue
        last = g[g.comparison == f"{treatment} from {sources[-1]} − {treatment} from {sources[0]}"]  # g: 2+ sources
        lines.append(f"- **{arch} into {target}**: filters from the largest source ({sources[-1]}) against the "
                     f"smallest ({sources[0]}):" + (" not measured" if last.empty else ""))
        lines += [_line(pd.Series(r._asdict())) for r in g.itertuples()]
        if not last.empty:
            v = verdict(last.iloc[0])
            lines.append("  - so here " + {"above": "a larger source gives better filters",
                                           "below": "a larger source gives worse filters"}.get(
                v, "a larger source cannot be told from a smaller one") + ".")
    return lines


def sources_by_size(datasets: pd.DataFrame) -> list[str]:
    """The sources of :func:`mkf_utils.figures.table_datasets` that this machine has, smallest first (training
    images): the order :func:`source_comparisons` and :func:`size_reading` take.

    >>> d = pd.DataFrame({"dataset": ["all", "A", "B"], "source": [True, True, False], "missing": "",
    ...                   "images": [900, 300, 100]})
    >>> sources_by_size(d)
    ['A', 'all']
    """
    return list(datasets[datasets.source & (datasets.missing == "")].sort_values("images").dataset)


_FLOOR_WORDS = {"above": "filters from {} beat those trained on {}",
                "below": "filters from {} do worse than those trained on {}",
                "unclear": "filters from {} cannot be told from those trained on {}",
                "one pair": "filters from {}: one pair, no interval"}


def floor_reading(paired: pd.DataFrame, treatment: str = "AnB") -> list[str]:
    """Markdown lines: do filters trained on real data beat filters trained on the floor (synthetic patterns)?
    ``treatment`` copied from each source against it copied from the floor source (the comparisons :func:`save`
    makes with ``floor``; the floor is read from them), per net and target, at full depth; a comparison without a
    pair (the floor not yet trained into that target) is left out.

    >>> p = pd.DataFrame({"architecture": "a", "direction": "B", "n": 4, "n_units": 4, "pairs": 5, "unpaired": 0,
    ...                   "comparison": ["AnB from A − AnB from noise", "AnB from C − AnB from noise"],
    ...                   "mean": [0.03, 0.01], "low": [0.01, -0.01], "high": [0.05, 0.03], "level": 0.95})
    >>> floor_reading(p)[-1]
    '  - so here filters from A beat those trained on noise; filters from C cannot be told from those trained on noise.'
    """
    sides = paired.comparison.str.extract(rf"^{treatment} from (?P<left>.+) − {treatment} from (?P<floor>.+)$")
    lines = []
    found = paired.join(sides).dropna(subset=["floor"])
    for (arch, target), g in found[found.pairs > 0].groupby(["architecture", "direction"], sort=False):
        g = g[g.n == g.n_units] if (g.n == g.n_units).any() else g
        floor, verdicts = g.floor.iloc[0], [verdict(r) for _, r in g.iterrows()]
        lines.append(f"- **{arch} into {target}**: filters from each source against filters trained on {floor} "
                     "(the floor):")
        lines += [_line(r) for _, r in g.iterrows()]
        parts = [words.format(", ".join(g.left[[v == kind for v in verdicts]]), floor)
                 for kind, words in _FLOOR_WORDS.items() if kind in verdicts]
        lines.append("  - so here " + "; ".join(parts) + ".")
    return lines


def save(table: pd.DataFrame, datasets: pd.DataFrame, out_dir: str | Path, name: str,
         size_sources: list[str] = (), floor: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """A table's files beside its run table (``out_dir/name.csv``): its ``datasets``, the paired differences of
    its :func:`columns` (:func:`comparisons`; with ``size_sources``, AnB from each against the smallest; with
    ``floor``, a source of ``datasets``, AnB from each source against AnB from the floor: :func:`source_comparisons`)
    and the top-1 :func:`matrix`, as ``name_datasets.csv``, ``name_paired.csv`` and ``name_matrix.csv``. Returns
    the :func:`summary`, the paired differences and the matrix."""
    out = Path(out_dir)
    datasets.to_csv(out / f"{name}_datasets.csv", index=False)
    cols = columns(table)
    means = summary(cols)
    sources = sources_by_size(datasets)
    wanted = comparisons(cols.treatment) + source_comparisons("AnB", list(size_sources)) \
        + (source_comparisons("AnB", sources, floor) if floor in sources else [])
    paired = save_paired(cols, wanted, out, name)
    top1 = matrix(means)
    top1.to_csv(out / f"{name}_matrix.csv")
    return means, paired, top1


POINTWISE_COMPARISONS = [("BnB", "base"), ("AnB", "BnB"), ("AnB+", "AnB"), ("AnB", "random-frozen"), ("AnB", "base"),
                         ("random-frozen", "base")]
_POINTWISE_WORDS = {  # comparison -> (what "below" means, what "above" means)
    "BnB − base": ("freezing the net's own filters costs accuracy: an optimisation cost (Yosinski's "
                   "fragile co-adaptation), not specificity", "freezing the net's own filters helps"),
    "AnB − BnB": ("the other half's filters cost more than the net's own: specificity beyond the optimisation cost",
                  "the other half's filters do better than the net's own"),
    "AnB+ − AnB": ("fine-tuning the copied filters does worse than freezing them",
                   "fine-tuning the copied filters recovers what freezing them cost"),
    "AnB − random-frozen": ("copied filters do worse than random ones",
                            "copied filters beat random ones: their content matters"),
}


_LOSS_WORDS = {"above": "higher: the training set is harder to fit (an optimisation or capacity cost)",
               "below": "lower: the training set is easier to fit"}


def final_train_loss(table: pd.DataFrame, curves: pd.DataFrame) -> pd.DataFrame:
    """``table`` with a ``train_loss`` column: each run's training loss in its last epoch, from ``curves`` (the
    runs' per-epoch metrics with their ``run_id``, :func:`mkf_utils.study.curves`).

    >>> t = pd.DataFrame({"run_id": ["a", "b"]})
    >>> c = pd.DataFrame({"run_id": ["a", "a", "b"], "epoch": [2, 1, 1], "train_loss": [0.5, 0.9, 0.7]})
    >>> final_train_loss(t, c).train_loss.tolist()
    [0.5, 0.7]
    """
    last = curves.sort_values("epoch").groupby("run_id").train_loss.last()
    return table.assign(train_loss=table.run_id.map(last))


def pointwise_reading(paired: pd.DataFrame, loss_paired: pd.DataFrame | None = None) -> list[str]:
    """Markdown lines for the pointwise table, per net, direction and depth: each comparison of
    :data:`POINTWISE_COMPARISONS` with its interval and what its verdict means, and under it the same comparison
    of the final training loss where ``loss_paired`` has it (:func:`final_train_loss`).

    >>> p = pd.DataFrame({"architecture": "a", "direction": "A→B", "n": 4, "n_units": 4, "pairs": 3, "unpaired": 0,
    ...                   "comparison": "BnB − base", "mean": -0.05, "low": -0.08, "high": -0.02, "level": 0.95},
    ...                  index=[0])
    >>> pointwise_reading(p)[1].split(":")[0]
    '  - BnB − base'
    >>> pointwise_reading(p, p.assign(mean=0.1, low=0.05, high=0.15))[2]
    '    - final training loss +0.100 [+0.050, +0.150] (3 pairs): higher: the training set is harder to fit (an optimisation or capacity cost)'
    """
    keys = ["architecture", "direction", "n", "comparison"]
    losses = {} if loss_paired is None else {tuple(r[k] for k in keys): r for _, r in loss_paired.iterrows()}
    lines = []
    for (arch, direction, n, total), g in paired.groupby(["architecture", "direction", "n", "n_units"], sort=False):
        lines.append(f"- **{arch}, {direction}, {'all' if n == total else n} of {total} units frozen**:")
        for _, r in g.iterrows():
            v = verdict(r)
            meaning = dict(zip(("below", "above"), _POINTWISE_WORDS.get(r.comparison, ("", "")))).get(v, "")
            lines.append(_line(r) + (f": {meaning}" if meaning else ""))
            loss = losses.get(tuple(r[k] for k in keys))
            if loss is not None:
                lines.append(f"    - final training loss {interval_text(loss)}: "
                             f"{_LOSS_WORDS.get(verdict(loss), WORDS[verdict(loss)])}")
    return lines

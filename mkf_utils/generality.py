"""The generality notebook's numbers: how alike two nets' filters are, how well the master key filters fit them,
and what the master key treatments do, read from a profile's bases and its ``masterkey`` section.

:func:`compare_bases` measures best-match similarity per unit for four pairs of nets (the other half, the same half
with another seed, a net against its own init, two random inits); :func:`measures` fits the master key filters,
clusters and reads the layer scales of the DS-CNN bases; :func:`masterkey_paired` pairs the master key runs by seed;
:func:`reading` writes the lines the notebook prints.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
from torch import nn

from .filters import clusters_by_depth, layer_scales, master_key_by_depth, similarity_by_depth
from .runs import RunStore
from .stats import interval_text, paired_differences, verdict

PAIRS = ["same half, other seed", "other half", "trained vs its init", "random vs random"]  # the chart's order
MK_TREATMENTS = ["AnB", "master-key AnB", "master-key", "random-frozen"]
MK_COMPARISONS = [("master-key", "random-frozen"), ("master-key", "base"), ("master-key AnB", "master-key"),
                  ("AnB", "master-key")]


def compare_bases(bases: pd.DataFrame, store: RunStore, halves: list[str], seeds: list[int], max_filters: int = 512,
                  sample_seed: int = 0) -> tuple[pd.DataFrame, dict[str, dict[str, nn.Module]]]:
    """Per architecture of ``bases`` (:func:`mkf_utils.figures.base_runs`), :func:`similarity_by_depth` of its
    filters for the pairs in :data:`PAIRS` (seed ``seeds[0]``'s bases on both halves, and on the first half with
    ``seeds[1]``); with the DS-CNNs' nets to measure further (trained on each half, and the first one's init)."""
    s0, s1 = seeds[:2]

    def base(arch: str, half: str, seed: int) -> str:
        return bases[(bases.architecture == arch) & (bases.target == half) & (bases.seed == seed)].run_id.iloc[0]

    sims, nets = [], {}
    for arch, kind in bases.groupby("architecture", sort=False).units.first().items():
        a, b, a1 = base(arch, halves[0], s0), base(arch, halves[1], s0), base(arch, halves[0], s1)
        ta, tb, ta1 = store.model(a), store.model(b), store.model(a1)
        ia, ia1 = store.model(a, initial=True), store.model(a1, initial=True)
        pairs = {"other half": (ta, tb), "same half, other seed": (ta, ta1), "trained vs its init": (ta, ia),
                 "random vs random": (ia, ia1)}
        sims.append(similarity_by_depth(pairs, kind, max_filters, sample_seed).assign(architecture=arch, units=kind))
        if kind == "depthwise":
            nets[arch] = {f"trained on {halves[0]}": ta, f"trained on {halves[1]}": tb, "random init": ia}
    return pd.concat(sims), nets


def gallery_nets(bases: pd.DataFrame, store: RunStore, seed: int) -> dict[str, dict[str, nn.Module]]:
    """Figure 1's nets per unit kind (``depthwise``, ``conv``): each base of ``bases`` (trained on its half) and
    the random net the first base of each kind started from."""
    nets: dict[str, dict[str, nn.Module]] = {}
    for kind in ("depthwise", "conv"):
        of_kind = bases[bases.units == kind]
        nets[kind] = {f"{r.architecture}, trained on {r.target}": store.model(r.run_id) for r in of_kind.itertuples()}
        for r in of_kind.iloc[:1].itertuples():  # the net the first base started from
            nets[kind][f"{r.architecture}, random init (seed {seed})"] = store.model(r.run_id, initial=True)
    return nets


def measures(nets: dict[str, dict[str, nn.Module]], k: int = 8, close: float = 0.8,
             sample_seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(master key fit, k-means clusters, layer scales) per unit of each architecture's nets (empty tables
    without DS-CNNs)."""
    if not nets:
        return pd.DataFrame(), pd.DataFrame(), pd.DataFrame()
    per = lambda f: pd.concat([f(m).assign(architecture=arch) for arch, m in nets.items()])  # noqa: E731
    return (per(lambda m: master_key_by_depth(m, close)), per(lambda m: clusters_by_depth(m, k, close, sample_seed)),
            per(layer_scales))


def save_measures(out_dir: str | Path, name: str, sims: pd.DataFrame, fits: pd.DataFrame, clusters: pd.DataFrame,
                  scales: pd.DataFrame) -> None:
    """Write the measures as ``name.csv`` (similarity), ``name_master_key.csv``, ``name_clusters.csv`` and
    ``name_layer_scale.csv`` under ``out_dir``."""
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    for table, suffix in ((scales, "_layer_scale"), (sims, ""), (fits, "_master_key"), (clusters, "_clusters")):
        table.to_csv(Path(out_dir) / f"{name}{suffix}.csv", index=False)


def masterkey_paired(mk: pd.DataFrame) -> pd.DataFrame:
    """The master key treatments' paired differences (:data:`MK_COMPARISONS`) of the ``masterkey`` run table."""
    return paired_differences(mk, MK_COMPARISONS)


def masterkey_summary(mk: pd.DataFrame) -> pd.DataFrame:
    """Mean and sd over seeds of top-1 / base top-1 per direction and frozen treatment, with ``lo``/``hi`` = mean
    -/+ sd."""
    return (mk[mk.treatment != "base"].groupby(["direction", "treatment"]).rel_ratio.agg(["mean", "std"]).fillna(0)
            .reset_index().assign(lo=lambda t: t["mean"] - t["std"], hi=lambda t: t["mean"] + t["std"]))


def reading(sims: pd.DataFrame, fits: pd.DataFrame | None, scales: pd.DataFrame | None,
            mk_paired: pd.DataFrame | None) -> list[str]:
    """Markdown lines: mean similarity per third of the depth for each pair, the master key fit per net, the
    layer scales, and the master key comparisons with their intervals."""
    out = []
    for (arch, pair), g in sims.groupby(["architecture", "pair"], sort=False):
        thirds = g.groupby(pd.cut(g.rel_depth, [0, 1 / 3, 2 / 3, 1]), observed=True).similarity.mean()
        out.append(f"- {arch}, {pair}: " + ", ".join(f"{v:.3f}" for v in thirds) + " (first, middle, last third)")
    for (arch, model), g in fits.groupby(["architecture", "model"], sort=False) if fits is not None and len(fits) else []:
        out.append(f"- {arch}, {model}: master key fit explains {g.explained.mean():.3f} of a filter's variance on "
                   f"average ({g.explained.iloc[0]:.3f} first unit, {g.explained.iloc[-1]:.3f} last)")
    for model, g in (scales.groupby("model", sort=False) if scales is not None and len(scales) else []):
        out.append(f"- ConvNeXt block layer scale, {model}: {g.layer_scale.iloc[0]:.2g} (first unit) to "
                   f"{g.layer_scale.iloc[-1]:.2g} (last); at 1e-6 a block's depthwise filter cannot matter")
    for r in (mk_paired.itertuples() if mk_paired is not None else []):
        out.append(f"- {r.architecture}, {r.direction}: {r.comparison} top-1 {interval_text(r._asdict())}: "
                   f"{verdict(r._asdict())}")
    return out

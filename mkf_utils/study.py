"""The budget study's numbers: what each training budget costs and gives, read from the study's run table.

:func:`add_minutes` puts each run's wall time on the table, :func:`series` arranges it into the curves the study
draws (a recipe change, or fewer images per class at fixed epochs, is a series of its own), :func:`curves` reads
the largest budget's per-epoch test top-1 from the store, and :func:`reading` writes the study's lines.
"""
from __future__ import annotations

import pandas as pd

from .runs import RunStore
from .stats import interval_text, paired_differences, verdict


def add_minutes(runs: pd.DataFrame, store: RunStore) -> pd.DataFrame:
    """``runs`` with ``minutes``: epochs x the run's median epoch time (train and test), robust to a run paused or
    slowed for a while."""
    return runs.assign(minutes=[r.epochs * store.metrics(r.run_id).epoch_time_s.median() / 60
                                for r in runs.itertuples()])


def series(table: pd.DataFrame) -> pd.DataFrame:
    """The rows the study plots, each with its ``net`` series: a recipe change is a series of its own, never
    averaged with the default recipe at the same budget; so are fewer images per class at a fixed number of
    epochs, joined to the run on all images with those epochs.

    >>> t = pd.DataFrame({"architecture": "a", "recipe": "default", "per_class": [10, 20, 20], "epochs": [2, 2, 4]})
    >>> series(t).net.tolist()
    ['a', 'a', 'a, 2 epochs, images per class varied', 'a, 2 epochs, images per class varied']
    """
    table = table.assign(net=table.architecture.where(table.recipe == "default",
                                                      table.architecture + ", " + table.recipe))
    most = table.per_class.max()
    fewer = table[table.per_class < most]
    by_data = pd.concat([fewer, table[table.per_class == most].merge(fewer[["net", "epochs"]].drop_duplicates())])
    by_data["net"] = [f"{r.net}, {r.epochs} epoch{'s' if r.epochs > 1 else ''}, images per class varied"
                      for r in by_data.itertuples()]
    return pd.concat([table[table.per_class == most], by_data])


def largest_budget(table: pd.DataFrame, target: str) -> pd.DataFrame:
    """The default recipe's runs into ``target`` at the largest budget (images per class x epochs)."""
    return table[(table.image_epochs == table.image_epochs.max()) & (table.target == target)
                 & (table.recipe == "default")]


def curves(runs: pd.DataFrame, store: RunStore,
           labels: tuple[str, ...] = ("architecture", "treatment", "seed"), require: str | None = "top1") -> pd.DataFrame:
    """Per-epoch metrics of ``runs`` from the store, labelled with their columns ``labels``; epochs without a value
    of ``require`` (default: a test evaluation) left out (None: every epoch)."""
    out = pd.concat([store.metrics(r["run_id"]).assign(**{c: r[c] for c in labels}) for _, r in runs.iterrows()])
    return out if require is None else out.dropna(subset=[require])


def reading(table: pd.DataFrame, target: str) -> list[str]:
    """Markdown lines: per net and budget, base top-1 per half, relative top-1 of each treatment into ``target``
    and the training minutes; then AnB - random-frozen paired by seed, with its interval."""
    lines = []
    for k, g in table.groupby(["architecture", "per_class", "epochs", "recipe"], sort=False):
        base = g[g.treatment == "base"].groupby("target").top1.mean()
        rel = g[g.treatment != "base"].groupby("treatment").rel_ratio.mean()
        lines.append(f"- **{k[0]}**, {k[1]} images per class × {k[2]} epoch{'s' if k[2] > 1 else ''} ({k[3]}): base "
                     "top-1 " + ", ".join(f"{h} {v:.3f}" for h, v in base.items()) + f"; relative top-1 into {target}: "
                     + ", ".join(f"{t} {v:.3f}" for t, v in rel.items())
                     + (f" (AnB − random-frozen {rel['AnB'] - rel['random-frozen']:+.3f} of the base's top-1)"
                        if {"AnB", "random-frozen"} <= set(rel.index) else "")
                     + f"; {g.minutes.sum():.1f} min of training for these {len(g)} runs.")
    for r in paired_differences(table, [("AnB", "random-frozen")]).itertuples():
        lines.append(f"- {r.architecture}, {r.per_class} × {r.epochs} ({r.recipe}): AnB − random-frozen top-1 "
                     f"{interval_text(r._asdict())}: {verdict(r._asdict())}.")
    return lines

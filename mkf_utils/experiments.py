"""Plans run through the store (or exported for torchrun), their time estimated, and the relative-accuracy table.

The plans themselves (which runs an experiment has) are :mod:`mkf_utils.plans`.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import pandas as pd
from omegaconf import OmegaConf

from .config import run_id
from .errors import MKFError
from .executor import run_parallel
from .plans import BUDGET_KEYS, Planned, describe, distinct
from .runs import RunStore


def export_pending(plan: list[Planned], store: RunStore) -> Path | None:
    """Write the config of every unfinished run to ``<store>/pending/NNN-<id>.yaml`` (plan order: bases
    first) and a ``run_all.sh`` that trains them one after another with torchrun; None if all are done."""
    todo = [p for p in plan if store.result(run_id(p.config)) is None]
    if not todo:
        return None
    folder = store.root / "pending"
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["#!/usr/bin/env bash", "# Trains the pending runs in order (bases first); NPROC GPUs per run.",
             "set -euo pipefail", f"cd {Path.cwd().resolve()}"]
    for i, p in enumerate(todo):
        path = folder / f"{i:03d}-{run_id(p.config)}.yaml"
        path.write_text(OmegaConf.to_yaml(p.config))
        lines.append(f"torchrun --nproc_per_node ${{NPROC:-8}} -m mkf_utils.cli train {path.resolve()} "
                     f"--store {store.root.resolve()}")
    (folder / "run_all.sh").write_text("\n".join(lines) + "\n")
    return folder


def estimate_minutes(plan: list[Planned], results: list[dict | None], workers: int = 1) -> tuple[float, int]:
    """A rough wall time for ``plan``'s unfinished runs with ``workers`` at once, from its finished ones
    (``results``: each planned run's recorded result, None if unfinished, e.g. from :meth:`RunStore.result`).

    Each unfinished run costs the median over the finished runs most like it (same architecture, kind (base,
    partial or full depth), target half and end; failing that, same architecture and kind; failing that, same
    architecture) of their ``train_time_s``, scaled to the run's training images x epochs where the records say
    theirs (a run on a quarter of the images costs a quarter). Returns (minutes, runs with no like run recorded,
    not counted).

    >>> estimate_minutes([], [])
    (0.0, 0)
    """
    def keys(lab: dict) -> list[tuple]:
        kind = "base" if lab["n"] == 0 else "full" if lab["n"] == lab["n_units"] else "partial"  # a source is a base
        return [(lab["architecture"], kind, lab["target"], lab["end"]), (lab["architecture"], kind),
                (lab["architecture"],)]

    def cost(done: dict, p: Planned) -> float:
        if not {"train_images", "epochs", "num_classes"} <= set(done):
            return done["train_time_s"]
        per_class = p.config.data.per_class
        images = per_class * done["num_classes"] if per_class is not None else done["train_images"]
        return done["train_time_s"] * images * p.config.optim.epochs / (done["train_images"] * done["epochs"])

    like: dict[tuple, list[dict]] = {}
    todo = []
    for p, result in zip(plan, results):
        if result is None:
            todo.append(p)
        else:
            for k in keys(p.labels):
                like.setdefault(k, []).append(result)
    seconds, unknown = 0.0, 0
    for p in todo:
        found = next((like[k] for k in keys(p.labels) if k in like), None)
        if found is None:
            unknown += 1
        else:
            seconds += float(pd.Series([cost(r, p) for r in found]).median())
    return seconds / 60 / max(1, workers), unknown


def run_plan(plan: list[Planned], store: RunStore, log: Callable[[str], None] | None = print,
             execute: bool = True, workers: int | None = 1, threads: int | None = None,
             deadline: float | None = None) -> pd.DataFrame:
    """Run (or find) every planned run; one row per run: its labels, result and ``run_id``.

    With ``workers`` None (one per core) or above 1, independent runs train in that many processes
    (:func:`mkf_utils.executor.run_parallel`, which also takes a ``deadline``; the table is the same, run by
    run). With ``execute=False``
    nothing is trained here: unfinished runs are exported (:func:`export_pending`) for torchrun on GPU machines, and an :class:`MKFError` says how to
    launch them.
    """
    if not execute:
        folder = export_pending(plan, store)
        if folder is not None:
            raise MKFError(f"{len(list(folder.glob('*.yaml')))} planned runs are not finished; their configs are "
                           f"in {folder}", f"run `bash {folder / 'run_all.sh'}` (NPROC GPUs per run, default 8), "
                           "then run this notebook again")
    tic = time.perf_counter()
    runs = distinct(plan)  # a run two rows share trains once

    def report(i: int, result: dict, trained: bool) -> None:
        if log is not None:
            log(f"[{i + 1}/{len(runs)}] {describe(runs[i])}: top-1 {result['top1']:.3f} "
                f"({f'trained, {time.perf_counter() - tic:.0f} s since start' if trained else 'found'})")

    configs = [p.config for p in runs]
    if workers is None or workers > 1 or deadline is not None:
        done = run_parallel(configs, store.root, workers, threads, report, deadline)
    else:
        done = []
        for i, cfg in enumerate(configs):
            found = store.result(run_id(cfg)) is not None
            done.append(store.run(cfg))
            report(i, done[-1], not found)
    by_id = {run_id(c): r for c, r in zip(configs, done)}
    results = [by_id[run_id(p.config)] for p in plan]
    return pd.DataFrame([{**p.labels, "top1": r["top1"], "top1_flip": r.get("top1_flip"),
                          "frozen_fraction": r["frozen_fraction"], "epochs": r["epochs"], "test_images": r.get("test_images"),
                          "train_time_s": r["train_time_s"], "run_id": r["run_id"],
                          "code_revision": r.get("provenance", {}).get("code_revision")}
                         for p, r in zip(plan, results)])


TABLE_COLUMNS = ["architecture", "direction", "target", "n", "n_units", "treatment", "seed", "top1", "base_top1",
                 "rel_ratio", "rel_diff", "frozen_fraction", "epochs", "data", "profile", "run_id"]


def save_table(runs: pd.DataFrame, out_dir: str | Path, name: str, **labels: str) -> pd.DataFrame:
    """:func:`relative_accuracy` of ``runs`` with ``labels`` (``data=``, ``profile=``) as columns, written to
    ``out_dir/name.csv`` in the column order of :data:`TABLE_COLUMNS` (extra columns last)."""
    table = relative_accuracy(runs).assign(**labels)
    table = table[[c for c in TABLE_COLUMNS if c in table] + [c for c in table if c not in TABLE_COLUMNS]]
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    table.to_csv(Path(out_dir) / f"{name}.csv", index=False)
    return table


def first_frozen(runs: pd.DataFrame) -> pd.Series:
    """Reverse freezing's first frozen unit (1-based) where the last ``n`` of ``n_units`` are frozen; NA for n = 0.

    >>> first_frozen(pd.DataFrame({"n": [0, 1, 12], "n_units": 12})).tolist()
    [nan, 12.0, 1.0]
    """
    return (runs.n_units - runs.n + 1).where(runs.n > 0)


def relative_accuracy(df: pd.DataFrame) -> pd.DataFrame:
    """Add ``base_top1`` (the base on the same target half and seed, and budget when the table has
    :data:`BUDGET_KEYS`), ``rel_ratio`` and ``rel_diff``.

    >>> df = pd.DataFrame({"architecture": "a", "treatment": ["base", "AnB"], "target": "B", "seed": 0,
    ...                    "top1": [0.8, 0.6]})
    >>> relative_accuracy(df)[["rel_ratio", "rel_diff"]].round(2).values.tolist()
    [[1.0, 0.0], [0.75, -0.2]]
    """
    keys = ["architecture", "target", "seed"] + [k for k in BUDGET_KEYS if k in df]
    base = df[df.treatment == "base"][keys + ["top1"]].rename(columns={"top1": "base_top1"})
    out = df.merge(base, on=keys, how="left", validate="many_to_one")
    out["rel_ratio"] = out.top1 / out.base_top1
    out["rel_diff"] = out.top1 - out.base_top1
    return out

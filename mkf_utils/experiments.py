"""Yosinski's A/B transfer protocol as a list of runs, run through the store, and its relative-accuracy table.

Treatments (A = the source half, B = the target half):

- ``base``: trained from scratch on B (n = 0);
- ``AnB``: the first (or last) n units copied from the base trained on A and frozen;
- ``BnB``: the selffer, copied from the base trained on B itself and frozen;
- ``AnB+``: copied from A and fine-tuned;
- ``random-frozen``: the same units frozen at their random init;
- the controls for depthwise filters (identity, banks of k filters, permuted, radial): :mod:`mkf_utils.treatments`.

>>> archs = {"ConvNeXt-atto": {"model": {"name": "convnext_atto", "stem_stride": 2}, "units": "depthwise"}}
>>> plan = ab_plan(archs, {"man-made": "random-a:0", "natural": "random-b:0"}, {"AnB": [0.5, 1.0]},
...                seeds=[0], common={"data": {"name": "synthetic"}})
>>> [(p.labels["treatment"], p.labels["direction"], p.labels["n"]) for p in plan][:3]
[('base', 'man-made', 0), ('base', 'natural', 0), ('AnB', 'natural→man-made', 6)]
"""
from __future__ import annotations

import copy
import functools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from .config import load_config, run_id
from .errors import MKFError
from .executor import run_parallel
from .models import create_model
from .runs import RunStore
from .transfer import DEPTHWISE_MODES
from .treatments import treatment_spec
from .units import transfer_units

@dataclass
class Planned:
    """One run of a plan: what it means (``labels``) and what it computes (``config``)."""

    labels: dict
    config: DictConfig


@functools.lru_cache(maxsize=32)
def count_units(model_name: str, kind: str, stem_stride: int | None = None) -> int:
    """How many ``kind`` units model ``model_name`` has."""
    return len(transfer_units(create_model(model_name, 10, stem_stride), kind))


def depth_to_n(fraction: float, total: int) -> int:
    """The unit count for a relative depth: ``round(fraction * total)``, at least 1.

    >>> [depth_to_n(f, 17) for f in (1 / 3, 2 / 3, 1.0)]
    [6, 11, 17]
    """
    if not 0 < fraction <= 1:
        raise MKFError(f"relative depth {fraction} is not in (0, 1]", "give fractions of the units, e.g. [0.5, 1.0]")
    return max(1, round(fraction * total))


def _merge(*dicts: dict) -> dict:
    out: dict = {}
    for d in dicts:
        for k, v in d.items():
            out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def ab_plan(architectures: dict[str, dict], halves: dict[str, str], treatments: dict[str, list[float]],
            seeds: list[int], common: dict | None = None, end: str = "first",
            targets: list[str] | None = None, source_common: dict | None = None) -> list[Planned]:
    """All runs of the A/B protocol, bases first.

    Args:
        architectures: label -> ``{"model": {...}, "units": kind, ...}``; other keys (``optim``, ``data``)
            are merged over ``common``.
        halves: label -> split name, exactly two (e.g. ``{"man-made": "cifar10-manmade", ...}``).
        treatments: name (:func:`~mkf_utils.treatments.treatment_spec`; the controls of depthwise filters are
            planned only for architectures whose units are depthwise) -> relative transfer depths n / N in (0, 1], where N is
            the architecture's unit count (e.g. ``{"AnB": [1/3, 2/3, 1], "random-frozen": [1]}``).
        seeds: one base per half and seed; a transfer uses the base of the same seed.
        common: config shared by every run (data, optim, runtime ...).
        end: ``first`` (Yosinski) or ``last`` (reverse freezing).
        targets: the halves to transfer into (default: both directions).
        source_common: if given, the nets copied from are bases trained with this config instead of ``common``
            (planned as treatment ``source``, before the transfers): for example sources on all the images of a
            half and targets (their bases included) on a few per class.
    """
    if len(halves) != 2:
        raise MKFError(f"the A/B protocol needs two halves, got {list(halves)}", "give exactly two splits")
    for t in treatments:
        treatment_spec(t)
    names = list(halves)
    plan: list[Planned] = []
    for arch, spec in architectures.items():
        spec = dict(spec)
        kind = spec.pop("units")
        cfg0 = _merge(common or {}, spec)
        model = cfg0.get("model", {})
        total = count_units(model.get("name", "resnet18"), kind, model.get("stem_stride"))
        base_ids: dict[tuple[str, int], str] = {}
        src0 = _merge(source_common, spec) if source_common is not None else None
        for seed in seeds:
            for half in names:
                cfg = load_config(overrides=_merge(cfg0, {"seed": seed, "data": {"split": halves[half]}}))
                base_ids[half, seed] = run_id(cfg)
                plan.append(Planned(dict(architecture=arch, treatment="base", direction=half, target=half,
                                         source=None, n=0, n_units=total, seed=seed, end=end), cfg))
                if src0 is not None:
                    cfg = load_config(overrides=_merge(src0, {"seed": seed, "data": {"split": halves[half]}}))
                    base_ids[half, seed] = run_id(cfg)
                    plan.append(Planned(dict(architecture=arch, treatment="source", direction=half, target=half,
                                             source=None, n=0, n_units=total, seed=seed, end=end), cfg))
        for target in targets or names:
            other = names[1 - names.index(target)]
            for treatment, fractions in treatments.items():
                fields, src = treatment_spec(treatment)
                if fields["mode"] in DEPTHWISE_MODES and kind != "depthwise":
                    continue  # a control of depthwise filters: planned for the nets whose units are depthwise
                for frac in fractions:
                    n = depth_to_n(frac, total)
                    for seed in seeds:
                        source_half = {"other": other, "self": target, None: None}[src]
                        # all units from either end are the same run: share it with the forward curve
                        transfer = dict(units=kind, n=n, end="first" if n == total else end, **fields,
                                        source=base_ids[source_half, seed] if source_half else None)
                        cfg = load_config(overrides=_merge(cfg0, {"seed": seed, "data": {"split": halves[target]},
                                                                  "transfer": transfer}))
                        plan.append(Planned(dict(architecture=arch, treatment=treatment,
                                                 direction=f"{other}→{target}", target=target, source=source_half,
                                                 n=n, n_units=total, seed=seed, end=end), cfg))
    return plan


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

    Each unfinished run costs the median recorded ``train_time_s`` of the finished runs most like it: same
    architecture, kind (base, partial or full depth), target half and end; failing that, same architecture
    and kind; failing that, same architecture. Returns (minutes, runs with no like run recorded, not counted).

    >>> estimate_minutes([], [])
    (0.0, 0)
    """
    def keys(lab: dict) -> list[tuple]:
        kind = "base" if lab["n"] == 0 else "full" if lab["n"] == lab["n_units"] else "partial"  # a source is a base
        return [(lab["architecture"], kind, lab["target"], lab["end"]), (lab["architecture"], kind),
                (lab["architecture"],)]

    done: dict[tuple, list[float]] = {}
    todo = []
    for p, result in zip(plan, results):
        if result is None:
            todo.append(p)
        else:
            for k in keys(p.labels):
                done.setdefault(k, []).append(result["train_time_s"])
    seconds, unknown = 0.0, 0
    for p in todo:
        like = next((done[k] for k in keys(p.labels) if k in done), None)
        if like is None:
            unknown += 1
        else:
            seconds += float(pd.Series(like).median())
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

    def report(i: int, result: dict, trained: bool) -> None:
        if log is not None:
            lab = plan[i].labels
            log(f"[{i + 1}/{len(plan)}] {lab['architecture']} {lab['treatment']} {lab['direction']} n={lab['n']} "
                f"seed={lab['seed']}: top-1 {result['top1']:.3f} "
                f"({f'trained, {time.perf_counter() - tic:.0f} s since start' if trained else 'found'})")

    configs = [p.config for p in plan]
    if workers is None or workers > 1 or deadline is not None:
        results = run_parallel(configs, store.root, workers, threads, report, deadline)
    else:
        results = []
        for i, cfg in enumerate(configs):
            found = store.result(run_id(cfg)) is not None
            results.append(store.run(cfg))
            report(i, results[-1], not found)
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


BUDGET_KEYS = ["per_class", "epochs", "recipe"]  # a study's runs pair with the base of the same budget


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



def budget_plan(architectures: dict[str, dict], halves: dict[str, str], budgets: list[dict],
                treatments: dict[str, list[float]], seeds: list[int], common: dict | None = None,
                targets: list[str] | None = None) -> list[Planned]:
    """:func:`ab_plan` once per training budget, for the study of how transfer results move with training.

    Args:
        budgets: each ``{"per_class": images per class, "epochs": E}``, optionally with ``"recipe"`` (a label),
            ``"overrides"`` (config merged over the architecture's), ``"architectures"`` (the labels that
            train it; default all), ``"seeds"`` (default ``seeds``) and ``"sources": "common"`` (the nets
            copied from train on ``common``'s data and epochs, not the budget's: a target with little data
            gets filters learned on a whole half); labelled ``per_class``, ``epochs``, ``image_epochs`` (images
            per class x epochs) and ``recipe`` in each run's labels.
        the rest: as in :func:`ab_plan`.

    >>> archs = {"ResNet-18": {"model": {"name": "resnet18"}, "units": "conv"}}
    >>> plan = budget_plan(archs, {"A": "random-a:0", "B": "random-b:0"}, [{"per_class": 8, "epochs": 2}],
    ...                    {"random-frozen": [1.0]}, [0], {"data": {"name": "synthetic"}}, targets=["B"])
    >>> [(p.labels["treatment"], p.labels["image_epochs"]) for p in plan]
    [('base', 16), ('base', 16), ('random-frozen', 16)]
    >>> two_seeds = [{"per_class": 8, "epochs": 2, "seeds": [0, 1]}]
    >>> len(budget_plan(archs, {"A": "random-a:0", "B": "random-b:0"}, two_seeds, {"random-frozen": [1.0]}, [0],
    ...                 {"data": {"name": "synthetic"}}, targets=["B"]))
    6
    """
    plan: list[Planned] = []
    for b in budgets:
        b = {k: v for k, v in b.items() if v is not None}  # unset schema keys
        unknown = set(b) - {"per_class", "epochs", "recipe", "overrides", "architectures", "seeds", "sources"}
        if unknown or not {"per_class", "epochs"} <= set(b):
            raise MKFError(f"budget {b} is malformed",
                           "give per_class and epochs (and optionally recipe, overrides, architectures, seeds, "
                           "sources)")
        if b.get("sources", "budget") not in ("budget", "common"):
            raise MKFError(f"budget {b} has sources={b['sources']!r}", "use sources: budget (default) or common")
        names = b.get("architectures") or list(architectures)
        if set(names) - set(architectures):
            raise MKFError(f"budget {b} names architectures {sorted(set(names) - set(architectures))} that the study "
                           "does not train", f"use some of: {', '.join(architectures)}")
        over = _merge(common or {}, {"data": {"per_class": b["per_class"]}, "optim": {"epochs": b["epochs"]}})
        archs = {a: _merge(architectures[a], b.get("overrides", {})) for a in names}
        labels = dict(per_class=b["per_class"], epochs=b["epochs"], image_epochs=b["per_class"] * b["epochs"],
                      recipe=b.get("recipe", "default"))
        sources = (common or {}) if b.get("sources") == "common" else None
        for p in ab_plan(archs, halves, treatments, b.get("seeds", seeds), over, targets=targets,
                         source_common=sources):
            plan.append(Planned({**p.labels, **labels}, p.config))
    return plan

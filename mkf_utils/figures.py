"""What a figure or table notebook shows of a profile section: its runs (trained where missing, within the
profile's limits), its bases, a table's datasets, and the subtitle that says how it was computed.

>>> progress(27, 72)
'In progress: the 27 of 72 planned runs recorded so far; the rest are not shown.'
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from .config import load_config, run_id
from .data import load_dataset
from .errors import MKFError
from .executor import available_cores
from .experiments import estimate_minutes, run_plan
from .plans import BUDGET_KEYS, Planned, distinct
from .profiles import TABLES, common, more_seeds, section, section_plan
from .slurm import log_dir as slurm_logs, submit
from .train import resolve_device

if TYPE_CHECKING:
    from .runs import RunStore


def recorded(plan: list[Planned], store: RunStore) -> list[Planned]:
    """The runs of ``plan`` recorded in ``store`` whose base on the target half is recorded too (what a figure
    in progress can show: every run beside the base it is measured against), and the recorded sources (the runs
    a section copies from, measured against nothing)."""
    done = [p for p in plan if store.result(run_id(p.config)) is not None]
    key = lambda lab: (lab["architecture"], lab["target"], lab["seed"], *(lab.get(k) for k in BUDGET_KEYS))
    bases = {key(p.labels) for p in done if p.labels["treatment"] == "base"}
    return [p for p in done if p.labels["treatment"] == "source" or key(p.labels) in bases]


def check_training(P: DictConfig, plan: list[Planned], store: RunStore, section: str, what: str) -> None:
    """Say what ``plan`` would train here and about how long it takes (from the recorded times of like runs), and
    refuse with an :class:`MKFError` naming the fix when that is beyond ``P.train_limit_minutes`` or when the
    plan's records were trained on another device type (a GPU profile on a CPU) unless ``P.allow_other_device``."""
    plan = distinct(plan)
    results = [store.result(run_id(p.config)) for p in plan]
    missing = sum(r is None for r in results)
    if not missing:
        print(f"{what}: all {len(plan)} runs recorded; nothing to train")
        return
    workers = P.run_workers or available_cores()
    minutes, unknown = estimate_minutes(plan, results, workers)
    guess = ("no estimate (no like run recorded)" if unknown == missing else f"about {minutes:.0f} min with {workers} "
             f"worker{'s' if workers > 1 else ''}" + (f" plus {unknown} runs with no estimate" if unknown else ""))
    print(f"{what}: {len(plan) - missing} of {len(plan)} runs recorded; {missing} to train here, {guess}", flush=True)
    if not P.execute or P.submit is not None:
        return  # exported for torchrun or submitted as jobs, not trained here
    fix = (f"train them in the background (`make plan PROFILE=<profile> SECTION={section}`), plot what is recorded "
           f"(NB_ARGS=\"-p recorded_only True\"), or allow it (NB_ARGS='-y \"overrides: {{train_limit_minutes: null, "
           f"allow_other_device: true}}\"')")
    here = resolve_device(str(P.runtime.get("device", "auto"))).type
    there = {str(r.get("device", "cpu")).split(":")[0] for r in results if r is not None}
    if there and here not in there and not P.allow_other_device:
        raise MKFError(f"{what}: its records were trained on {', '.join(sorted(there))}, this machine trains on "
                       f"{here}", fix)
    if P.train_limit_minutes is not None and unknown < missing and minutes > P.train_limit_minutes:
        raise MKFError(f"{what}: training its {missing} missing runs takes about {minutes:.0f} min, above the "
                       f"profile's train_limit_minutes={P.train_limit_minutes:g}", fix)


def section_runs(P: DictConfig, name: str, store: RunStore, recorded_only: bool = False,
                 skip: list[str] | tuple = ()) -> tuple[pd.DataFrame, int, int]:
    """What a figure notebook plots: section ``name``'s runs, trained where missing (``recorded_only``: only the
    :func:`recorded` ones, nothing trained), as :func:`~mkf_utils.experiments.run_plan`'s table; with the
    number of runs shown and planned (for :func:`subtitle`). What would train is checked first
    (:func:`check_training`). A table's runs on the datasets ``skip`` (labels; e.g. those this machine lacks,
    :func:`table_datasets`) are left out of the plan."""
    plan = [p for p in section_plan(P, name) if not {p.labels["target"], p.labels.get("source")} & set(skip)]
    shown = recorded(plan, store) if recorded_only else plan
    counts = len(distinct(shown)), len(distinct(plan))  # runs, not rows: a shared base counts once
    print(f"{counts[0]} of {counts[1]} planned runs")
    check_training(P, shown, store, name, f"section {name}")
    return _runs(P, shown, store), *counts


def optional_section_runs(P: DictConfig, name: str, store: RunStore,
                          recorded_only: bool = False) -> tuple[pd.DataFrame, int, int] | None:
    """:func:`section_runs` of a section a profile may lack (a notebook's optional part); ``None``, saying why, where
    the profile has no section ``name`` or, with ``recorded_only``, none of its planned runs is recorded yet."""
    if P.get(name) is None:
        print(f"this profile has no {name} section")
        return None
    runs, shown, planned = section_runs(P, name, store, recorded_only)
    if not shown:
        print(f"{name}: none of its {planned} planned runs is recorded with its base yet")
        return None
    return runs, shown, planned


def _runs(P: DictConfig, plan: list[Planned], store: RunStore) -> pd.DataFrame:
    """:func:`~mkf_utils.experiments.run_plan` of ``plan``; with the profile's ``submit`` set, its missing runs are
    first submitted as jobs (:func:`mkf_utils.slurm.submit`), and unless the executor waited for them (local) an
    :class:`MKFError` says to come back when they have finished."""
    if P.submit is not None and any(store.result(run_id(p.config)) is None for p in plan):
        jobs = submit([p.config for p in distinct(plan)], store, **OmegaConf.to_container(P.submit))
        if any(store.result(run_id(p.config)) is None for p in plan):
            raise MKFError(f"{len(jobs)} missing runs submitted as {P.submit.executor} jobs (logs in "
                           f"{slurm_logs(store)})", "run this notebook again when they have finished")
    return run_plan(plan, store, execute=P.execute, workers=P.run_workers)


def table_datasets(P: DictConfig, name: str) -> pd.DataFrame:
    """The datasets of table section ``name``, one row per label: whether it is a source and a target, dataset name,
    split, training images per class asked for, training images and classes found here, and ``missing`` (what is
    wrong and how to get it, where this machine cannot load it; '' where it can)."""
    rows, s = [], section(P, name)
    for label, keys in s.datasets.items():
        d = load_config(overrides=OmegaConf.to_container(OmegaConf.merge(common(P), {"data": keys}))).data
        row = {"dataset": label, "source": label in s.sources, "target": label in s.targets, "name": d.name,
               "split": d.split, "per_class": d.per_class, "missing": ""}
        try:
            data = load_dataset(d.name, True, d.split, d.root, False, d.per_class)
            row.update(images=len(data), classes=len(data.classes))
        except MKFError as e:
            row.update(images=None, classes=None, missing=f"{e.problem}: {e.fix}")
        rows.append(row)
    return pd.DataFrame(rows).astype({"images": "Int64", "classes": "Int64", "per_class": "Int64"})


def available_datasets(P: DictConfig, name: str) -> tuple[pd.DataFrame, list[str]]:
    """:func:`table_datasets` of table section ``name``, and the labels of those this machine lacks (the ``skip`` of
    :func:`section_runs`), each printed with what is wrong and how to get it."""
    datasets = table_datasets(P, name)
    lacking = datasets[datasets.missing != ""]
    for r in lacking.itertuples():
        print(f"left out: {r.dataset} ({r.missing})")
    return datasets, list(lacking.dataset)


def base_runs(P: DictConfig, store: RunStore, seeds: list[int] | None = None, name: str = "figure3") -> pd.DataFrame:
    """The bases of section ``name`` (every architecture, both halves) for ``seeds`` (default: the section's),
    trained where missing: :func:`~mkf_utils.experiments.run_plan`'s table, with ``units`` (the transfer
    unit kind) per architecture."""
    if seeds is not None:
        P = OmegaConf.merge(P, {name: {"seeds": list(seeds)}})
    plan = [p for p in section_plan(P, name) if p.labels["treatment"] == "base"]
    check_training(P, plan, store, name, f"the bases of section {name}")
    runs = _runs(P, plan, store)
    return runs.assign(units=[P.architectures[a].units for a in runs.architecture])


def progress(shown: int, planned: int) -> str:
    """A line for a figure that shows only part of its plan ('' when it shows all of it)."""
    return "" if shown >= planned else (f"In progress: the {shown} of {planned} planned runs recorded so far; "
                                        "the rest are not shown.")


def _arch_label(name: str, spec: DictConfig) -> str:
    m = spec.model
    stem = "stock stem" if m.stem_stride is None else f"stem stride {m.stem_stride}"
    return f"{name} ({m.name}, {stem}{', ' + spec.note if spec.note else ''}, {spec.units} units)"


def subtitle(P: DictConfig, name: str, shown: int | None = None, planned: int | None = None) -> list[str]:
    """Lines describing what section ``name`` of ``P`` computed, built from the settings themselves; with
    ``shown`` of ``planned`` runs, a last line says the figure is in progress (:func:`progress`)."""
    s = section(P, name)
    cfg = load_config(overrides=common(P))
    d, o = cfg.data, cfg.optim
    note = progress(shown, planned) if shown is not None and planned is not None else ""
    train = "all" if d.per_class is None else str(d.per_class)
    test = "all" if d.test_per_class is None else str(d.test_per_class)
    seeds = list(s.seeds if s.seeds is not None else P.seeds)
    budgets = s.get("budgets") or []  # a table has none
    sources_here = bool(budgets) and all(b.sources == "common" for b in budgets)  # targets at budgets, sources here
    budget = f"{o.epochs} epoch{'s' if o.epochs > 1 else ''}" if not budgets or sources_here else "budgets below"
    more = [f"{b.recipe} {b.per_class} x {b.epochs}: seeds {', '.join(map(str, b.seeds))}"
            for b in budgets if b.seeds is not None]
    for a, v in (s.get("more_seeds") or {}).items():
        for at, treats, deep in more_seeds(v, list(s.treatments)):
            every = len(treats) == len(s.treatments)
            runs = ["bases"] + ([f"{'all' if deep else 'all-units'} runs"] if every else treats)
            scope = "" if every else f" ({'every depth' if deep else 'all units'})"
            what = ", ".join(runs[:-1]) + " and " + runs[-1] + scope
            more.append(f"{a}: {what} also at seeds {', '.join(map(str, at))}")
    if sources_here:
        more.append("targets (their bases too) on " + ", ".join(f"{b.per_class} x {b.epochs}" for b in budgets)
                    + " images per class x epochs, the nets copied from on the data above")
    return [f"Profile: {P.description}.",
            f"Data: {d.name}, {train} train / {test} test images per class; {budget}, batch {d.batch_size}; "
            f"{len(seeds)} seed{'s' if len(seeds) > 1 else ''} ({', '.join(map(str, seeds))})"
            + (f"; {'; '.join(more)}." if more else "."),
            "Nets: " + "; ".join(_arch_label(a, P.architectures[a]) for a in s.architectures) + "."
            ] + (_table_lines(s) if name in TABLES else []) + ([note] if note else [])


def _table_lines(s: DictConfig) -> list[str]:
    """A table's datasets (what each label changes in the data above) and source nets, for its subtitle."""
    data = "; ".join(f"{k} = " + ", ".join(f"{a} {b}" for a, b in v.items()) for k, v in s.datasets.items())
    nets = ", ".join(s.source_architectures) if s.source_architectures else "each net's own architecture"
    some = s.get("targets_by_architecture") or {}
    into = "; ".join(f"{a} into {', '.join(some.get(a, s.targets))}" for a in s.architectures) if some \
        else f"into {', '.join(s.targets)}"
    return [f"Datasets: {data}.", f"Filters copied from: {nets}, trained on {', '.join(s.sources)}; {into}."]

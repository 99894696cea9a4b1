"""Profiles: one typed schema for the settings every notebook reads (``configs/profiles/<name>.yaml``).

A profile defines each architecture once (``architectures``) and the runs of each figure in its own
section (``figure3``, ``figure4``, ``figure5``, ``study``, ``masterkey``, ``controls``, ``lowdata``,
``pointwise``), which names the architectures it uses; a transfer table's section (``crossdataset``,
``sourcesize``, ``crossarch``: :class:`Table`) names its datasets, sources and targets too. A misspelt key
or a wrong type is a one-line :class:`~mkf_utils.errors.MKFError`, raised before anything trains (``mkf profile NAME`` checks a profile, and every notebook target runs that check first).

>>> P = load_profile("smoke")
>>> list(P.architectures)[:3], list(P.figure5.architectures)
(['ResNet-18', 'ResNet-34', 'ConvNeXt-atto'], ['ResNet-18', 'ResNet-34'])
>>> len(section_plan(P, "figure3"))  # 2 nets x (2 bases + 3 treatments x 2 directions)
16
>>> load_profile("smoke", {"figure3": {"treatment": {}}})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
mkf_utils.errors.MKFError: malformed profile smoke: Key 'treatment' not in 'Section'. Did you mean: 'treatments'? ...
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .config import ModelConfig, load_config, run_id
from .data import load_dataset
from .errors import MKFError
from .executor import available_cores
from .experiments import estimate_minutes, run_plan
from .plans import BUDGET_KEYS, Planned, ab_plan, budget_plan, matrix_plan
from .provenance import REPO
from .train import resolve_device
from .treatments import treatment_spec

if TYPE_CHECKING:
    import pandas as pd

    from .runs import RunStore

PROFILES = REPO / "configs" / "profiles"
TABLES = ("crossdataset", "sourcesize", "crossarch")  # the transfer tables: sections of type Table
SECTIONS = ("figure3", "figure4", "figure5", "study", "masterkey", "controls", "lowdata", "pointwise") + TABLES


@dataclass
class Architecture:
    """A net and what its transfer units are; ``optim`` overrides the profile's ``optim`` for it."""

    model: ModelConfig = field(default_factory=ModelConfig)
    units: str = MISSING
    optim: dict[str, Any] = field(default_factory=dict)
    note: Optional[str] = None  # shown in subtitles, e.g. "half width"


@dataclass
class Budget:
    """One training budget of the study: images per class x epochs, optionally a named recipe change."""

    per_class: int = MISSING
    epochs: int = MISSING
    recipe: str = "default"
    overrides: dict[str, Any] = field(default_factory=dict)
    architectures: Optional[list[str]] = None  # the study's architectures that train this budget (None: all)
    seeds: Optional[list[int]] = None  # None: the study's seeds (a cheap budget can afford more)
    sources: str = "budget"  # "common": the nets copied from train on the profile's data and epochs, not the budget's


@dataclass
class Section:
    """The runs of one figure: which architectures, treatments (name -> depths n / N), seeds and direction."""

    architectures: list[str] = MISSING
    treatments: dict[str, list[float]] = MISSING
    seeds: Optional[list[int]] = None  # None: the profile's seeds
    target: Optional[str] = None  # None: both directions
    end: str = "first"  # "last": reverse freezing (Figure 4)
    budgets: list[Budget] = field(default_factory=list)  # the study and lowdata: runs per training budget


@dataclass
class Table:
    """The runs of a transfer table (:func:`~mkf_utils.plans.matrix_plan`): target nets trained on target datasets,
    copying from nets trained on source datasets (and, given ``source_architectures``, from other nets)."""

    architectures: list[str] = MISSING
    datasets: dict[str, dict[str, Any]] = MISSING  # label -> data keys over the profile's data (name, split, per_class)
    sources: list[str] = MISSING  # dataset labels the copied filters were trained on
    targets: list[str] = MISSING  # dataset labels transferred into
    treatments: dict[str, list[float]] = MISSING
    source_architectures: Optional[list[str]] = None  # None: each net copies from its own architecture
    seeds: Optional[list[int]] = None  # None: the profile's seeds


@dataclass
class Profile:
    description: str = MISSING
    data: dict[str, Any] = MISSING  # DataConfig keys (see mkf_utils/config.py)
    halves: dict[str, str] = MISSING  # label -> split, exactly two
    architectures: dict[str, Architecture] = MISSING
    optim: dict[str, Any] = field(default_factory=dict)  # OptimConfig keys shared by every run
    batch_size: int = 128
    runtime: dict[str, Any] = field(default_factory=dict)  # RuntimeConfig keys (not part of a run's identity)
    seeds: list[int] = field(default_factory=lambda: [0])
    run_workers: Optional[int] = None  # runs trained at once on this machine (None: one per core)
    execute: bool = True  # False: export unfinished runs for torchrun instead of training them here
    train_limit_minutes: Optional[float] = 30.0  # a notebook refuses to train more (estimated) than this; null: no limit
    allow_other_device: bool = False  # train runs of a section whose records were trained on another device type
    figure3: Optional[Section] = None
    figure4: Optional[Section] = None
    figure5: Optional[Section] = None
    study: Optional[Section] = None
    masterkey: Optional[Section] = None  # DS-CNN depthwise units frozen to the master key filters (generality notebook)
    controls: Optional[Section] = None  # controls for depthwise filters: banks of k filters, identity, ... (controls notebook)
    lowdata: Optional[Section] = None  # the controls notebook's targets with few images per class (budgets)
    pointwise: Optional[Section] = None  # pointwise (1x1) units transferred (the pointwise table)
    crossdataset: Optional[Table] = None  # depthwise filters from other datasets (the cross-dataset table)
    sourcesize: Optional[Table] = None  # ... from sources of growing size (the source-size table)
    crossarch: Optional[Table] = None  # ... from other architectures (the cross-architecture table)


def profile_path(name: str | Path) -> Path:
    """``configs/profiles/<name>.yaml`` for a name, else ``name`` as a path."""
    p = Path(name)
    if p.suffix in (".yaml", ".yml"):
        return p
    return PROFILES / f"{name}.yaml"


def load_profile(name: str | Path, overrides: dict | None = None) -> DictConfig:
    """The profile ``name`` (or a YAML path) with ``overrides`` (a nested dict) merged over it, checked."""
    path = profile_path(name)
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in PROFILES.glob("*.yaml")))
        raise MKFError(f"profile '{name}' not found ({path})", f"use one of: {known}, or the path of a YAML file")
    label = Path(name).stem
    try:
        P = OmegaConf.merge(OmegaConf.structured(Profile), OmegaConf.load(path), overrides or {})
        OmegaConf.to_container(P, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException as e:
        raise MKFError(f"malformed profile {label}: {str(e).splitlines()[0]} (key {getattr(e, 'full_key', '?')})",
                       "fix the key or value; the schema is mkf_utils/profiles.py, the profiles are in "
                       "configs/profiles/") from None
    if len(P.halves) != 2:
        raise MKFError(f"malformed profile {label}: halves has {len(P.halves)} entries", "give exactly two halves")
    for sec in SECTIONS:
        s = P[sec]
        if s is None:
            continue
        for key in ("architectures", "source_architectures"):
            unknown = [a for a in (s.get(key) or []) if a not in P.architectures]
            if unknown:
                raise MKFError(f"malformed profile {label}: {sec}.{key} names {unknown}, which are not defined",
                               f"define them under architectures or use some of: {', '.join(P.architectures)}")
        if sec in TABLES:
            unknown = [d for d in [*s.sources, *s.targets] if d not in s.datasets]
            if unknown:
                raise MKFError(f"malformed profile {label}: {sec} names datasets {unknown}, which are not defined",
                               f"define them under {sec}.datasets or use some of: {', '.join(s.datasets)}")
        for t in s.treatments:
            try:
                treatment_spec(t)
            except MKFError as e:
                raise MKFError(f"malformed profile {label}: {sec}.treatments has {e.problem}", e.fix) from None
        if s.get("target") is not None and s.target not in P.halves:
            raise MKFError(f"malformed profile {label}: {sec}.target '{s.target}' is not a half",
                           f"use one of: {', '.join(P.halves)}")
    return P


def common(P: DictConfig) -> dict:
    """The run config shared by every run of profile ``P`` (data, batch size, optimiser, runtime)."""
    c = OmegaConf.to_container(P, resolve=True)
    return {"data": {**c["data"], "batch_size": c["batch_size"]}, "optim": c["optim"], "runtime": c["runtime"]}


def architectures(P: DictConfig, section: str, key: str = "architectures") -> dict[str, dict]:
    """The architecture specs a section uses (its ``key`` list), in its order, as :func:`mkf_utils.plans.ab_plan`
    wants them."""
    archs = OmegaConf.to_container(P.architectures, resolve=True)
    return {a: {k: v for k, v in archs[a].items() if k != "note"} for a in P[section][key]}


def section(P: DictConfig, name: str) -> DictConfig:
    if name not in SECTIONS:
        raise MKFError(f"unknown profile section '{name}'", f"use one of: {', '.join(SECTIONS)}")
    if P[name] is None:
        raise MKFError(f"profile '{P.description}' has no {name} section", f"add {name}: to the profile")
    return P[name]


def section_plan(P: DictConfig, name: str) -> list[Planned]:
    """Every run of section ``name`` (bases first): :func:`ab_plan`, :func:`budget_plan` for a section with
    budgets, :func:`matrix_plan` for a table."""
    s = section(P, name)
    treatments = OmegaConf.to_container(s.treatments)
    seeds = list(s.seeds if s.seeds is not None else P.seeds)
    if name in TABLES:
        sources = architectures(P, name, "source_architectures") if s.source_architectures else None
        return matrix_plan(architectures(P, name), OmegaConf.to_container(s.datasets), list(s.sources),
                           list(s.targets), treatments, seeds, common(P), sources)
    targets = [s.target] if s.target else None
    halves = dict(P.halves)
    if s.budgets:
        budgets = OmegaConf.to_container(s.budgets)
        return budget_plan(architectures(P, name), halves, budgets, treatments, seeds, common(P), targets=targets)
    return ab_plan(architectures(P, name), halves, treatments, seeds, common(P), end=s.end, targets=targets)


def training_order(P: DictConfig, sections: list[str]) -> list[Planned]:
    """The runs of ``sections`` in the order `mkf plan` trains them: the runs that decide the paired comparisons
    first (bases and all units frozen), seed by seed; then the partial depths, section by section, seed by seed (a
    stable sort: bases stay before their transfers). A run two sections share is planned once."""
    plan, seen = [], set()
    for k, sec in enumerate(sections):
        for p in section_plan(P, sec):
            if run_id(p.config) not in seen:
                seen.add(run_id(p.config))
                partial = 0 < p.labels["n"] < p.labels["n_units"]
                plan.append((partial, k if partial else 0, p.labels["seed"], p))
    return [p for *_, p in sorted(plan, key=lambda t: t[:3])]


def recorded(plan: list[Planned], store: RunStore) -> list[Planned]:
    """The runs of ``plan`` recorded in ``store`` whose base on the target half is recorded too (what a figure
    in progress can show: every run beside the base it is measured against)."""
    done = [p for p in plan if store.result(run_id(p.config)) is not None]
    key = lambda lab: (lab["architecture"], lab["target"], lab["seed"], *(lab.get(k) for k in BUDGET_KEYS))
    bases = {key(p.labels) for p in done if p.labels["treatment"] == "base"}
    return [p for p in done if key(p.labels) in bases]


def check_training(P: DictConfig, plan: list[Planned], store: RunStore, section: str, what: str) -> None:
    """Say what ``plan`` would train here and about how long it takes (from the recorded times of like runs), and
    refuse with an :class:`MKFError` naming the fix when that is beyond ``P.train_limit_minutes`` or when the
    plan's records were trained on another device type (a GPU profile on a CPU) unless ``P.allow_other_device``."""
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
    if not P.execute:
        return  # exported for torchrun, not trained here
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
    print(f"{len(shown)} of {len(plan)} planned runs")
    check_training(P, shown, store, name, f"section {name}")
    return run_plan(shown, store, execute=P.execute, workers=P.run_workers), len(shown), len(plan)


def table_datasets(P: DictConfig, name: str) -> pd.DataFrame:
    """The datasets of table section ``name``, one row per label: whether it is a source and a target, dataset name,
    split, training images per class asked for, training images and classes found here, and ``missing`` (what is
    wrong and how to get it, where this machine cannot load it; '' where it can)."""
    import pandas as pd

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


def base_runs(P: DictConfig, store: RunStore, seeds: list[int] | None = None, name: str = "figure3") -> pd.DataFrame:
    """The bases of section ``name`` (every architecture, both halves) for ``seeds`` (default: the section's),
    trained where missing: :func:`~mkf_utils.experiments.run_plan`'s table, with ``units`` (the transfer
    unit kind) per architecture."""
    if seeds is not None:
        P = OmegaConf.merge(P, {name: {"seeds": list(seeds)}})
    plan = [p for p in section_plan(P, name) if p.labels["treatment"] == "base"]
    check_training(P, plan, store, name, f"the bases of section {name}")
    runs = run_plan(plan, store, execute=P.execute, workers=P.run_workers)
    return runs.assign(units=[P.architectures[a].units for a in runs.architecture])


def progress(shown: int, planned: int) -> str:
    """A line for a figure that shows only part of its plan ('' when it shows all of it).

    >>> progress(27, 72)
    'In progress: the 27 of 72 planned runs recorded so far; the rest are not shown.'
    """
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
    return [f"Datasets: {data}.", f"Filters copied from: {nets}, trained on {', '.join(s.sources)}; "
            f"into {', '.join(s.targets)}."]


def check(name: str | Path) -> dict[str, int]:
    """Load profile ``name`` and build every section's runs (this validates every run config); the run
    count per section."""
    P = load_profile(name)
    return {sec: len(section_plan(P, sec)) for sec in SECTIONS if P[sec] is not None}


INDEX_COLUMNS = ["run_id", "profile", "section", "architecture", "treatment", "direction", "n", "n_units", "seed",
                 "per_class", "epochs", "recipe", "top1"]


def index(store: RunStore) -> pd.DataFrame:
    """One row per recorded run of ``store`` and per profile section that plans it (a run shared by two sections
    has two rows): what it is (:data:`INDEX_COLUMNS`) and its top-1. A recorded run that no profile plans any more
    (an orphan) has one row with only its id and top-1. This is ``runs/INDEX.csv``, written by `make records`."""
    import pandas as pd

    rows, seen = [], set()
    for path in sorted(PROFILES.glob("*.yaml")):
        P = load_profile(path.stem)
        for sec in SECTIONS:
            for p in (section_plan(P, sec) if P[sec] is not None else []):
                rid = run_id(p.config)
                result = store.result(rid)
                if result is not None:
                    seen.add(rid)
                    rows.append({**p.labels, "run_id": rid, "profile": path.stem, "section": sec,
                                 "top1": result["top1"]})
    for rid, _ in store.configs():
        if rid not in seen:
            rows.append({"run_id": rid, "top1": store.result(rid)["top1"]})
    table = pd.DataFrame(rows, columns=INDEX_COLUMNS)
    return table.astype({c: "Int64" for c in ("n", "n_units", "seed", "per_class", "epochs")})


def planned_ids() -> dict[str, list[str]]:
    """Every run id that some section of some profile in ``configs/profiles/`` plans, with ``profile:section``
    labels: a record in ``runs/`` whose id is not here is orphaned (its profile changed since it was trained)."""
    planned: dict[str, list[str]] = {}
    for path in sorted(PROFILES.glob("*.yaml")):
        P = load_profile(path.stem)
        for sec in SECTIONS:
            if P[sec] is not None:
                for p in section_plan(P, sec):
                    planned.setdefault(run_id(p.config), []).append(f"{path.stem}:{sec}")
    return planned


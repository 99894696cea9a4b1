"""Profiles: one typed schema for the settings every notebook reads (``configs/profiles/<name>.yaml``).

A profile defines each architecture once (``architectures``) and the runs of each figure in its own
section (``figure3``, ``figure4``, ``figure5``, ``study``, ``masterkey``, ``controls``, ``lowdata``, ``bankdepth``,
``pointwise``), which names the architectures it uses; a transfer table's section (``crossdataset``,
``sourcesize``, ``crossarch``: :class:`Table`) names its datasets, sources and targets too. A misspelt key
or a wrong type is a one-line :class:`~mkf_utils.errors.MKFError`, raised before anything trains (``mkf profile
NAME`` checks a profile, and every notebook target runs that check first). What a notebook shows of a section is
:mod:`mkf_utils.figures`; which section plans each recorded run, :mod:`mkf_utils.runindex`.

>>> P = load_profile("smoke")
>>> list(P.architectures)[:3], list(P.figure5.architectures)
(['ResNet-18', 'ResNet-34', 'ConvNeXt-atto'], ['ResNet-18', 'ResNet-34'])
>>> len(section_plan(P, "figure3"))  # 2 nets x 2 seeds x (2 bases + 2 directions x (AnB at 2 depths, BnB, RF))
40
>>> load_profile("smoke", {"figure3": {"treatment": {}}})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
mkf_utils.errors.MKFError: malformed profile smoke: Key 'treatment' not in 'Section'. Did you mean: 'treatments'? ...
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .config import ModelConfig, run_id
from .errors import MKFError
from .plans import Planned, ab_plan, budget_plan, describe, distinct, matrix_plan
from .provenance import REPO
from .treatments import treatment_spec

PROFILES = REPO / "configs" / "profiles"
TABLES = ("crossdataset", "sourcesize", "crossarch")  # the transfer tables: sections of type Table
SECTIONS = ("figure3", "figure4", "figure5", "study", "masterkey", "controls", "lowdata", "bankdepth", "pointwise") + TABLES


@dataclass
class Architecture:
    """A net and what its transfer units are; ``optim`` and ``data`` override the profile's for it (e.g. its own
    schedule, or its global batch size)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    units: str = MISSING
    optim: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
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
    reverse: list[str] = field(default_factory=list)  # with a target: treatments also planned into the other half,
    # all units only (the deciding runs of that direction)
    more_seeds: dict[str, Any] = field(default_factory=dict)  # architecture -> seeds of its deciding runs (bases
    # and all units, reverse included) beyond the section's: more pairs where one net's runs are cheap or noisy; or
    # -> {seeds: [...], treatments: [...]} (or a list of those): only those treatments' deciding runs and the bases
    # (with all_depths: true, those treatments at every depth of the section)
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
    targets_by_architecture: dict[str, list[str]] = field(default_factory=dict)  # a net that trains into some of
    # the targets only (e.g. the one where its filters' content was seen to matter); the rest: all targets
    more_seeds: dict[str, Any] = field(default_factory=dict)  # as a Section's: a net's cells at more seeds (its
    # bases, the sources its copies need, and the named treatments into its targets)


@dataclass
class Submit:
    """Where a notebook's missing runs go instead of training in the notebook: cluster jobs through submitit
    (:func:`mkf_utils.slurm.submit`)."""

    executor: str = "slurm"  # slurm, local (processes on this machine) or auto (SLURM where it is, else local)
    gpus: int = 0  # per job: one task per GPU, which train the run together as torchrun would
    partition: Optional[str] = None
    timeout_min: int = 24 * 60


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
    submit: Optional[Submit] = None  # set: a notebook submits its missing runs as cluster jobs instead of training
    train_limit_minutes: Optional[float] = 30.0  # a notebook refuses to train more (estimated) than this; null: no limit
    allow_other_device: bool = False  # train runs of a section whose records were trained on another device type
    figure3: Optional[Section] = None
    figure4: Optional[Section] = None
    figure5: Optional[Section] = None
    study: Optional[Section] = None
    masterkey: Optional[Section] = None  # DS-CNN depthwise units frozen to the master key filters (generality notebook)
    controls: Optional[Section] = None  # controls for depthwise filters: banks of k filters, identity, ... (controls notebook)
    lowdata: Optional[Section] = None  # the controls notebook's targets with few images per class (budgets)
    bankdepth: Optional[Section] = None  # the controls notebook's Figure 3 protocol with banks of few filters, by depth
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
            for arch, targets in s.targets_by_architecture.items():
                if arch not in s.architectures or not targets or set(targets) - set(s.targets):
                    raise MKFError(f"malformed profile {label}: {sec}.targets_by_architecture.{arch}: {list(targets)}",
                                   f"name one of {sec}.architectures ({', '.join(s.architectures)}) and some of "
                                   f"its targets ({', '.join(s.targets)})")
        for t in s.treatments:
            try:
                treatment_spec(t)
            except MKFError as e:
                raise MKFError(f"malformed profile {label}: {sec}.treatments has {e.problem}", e.fix) from None
        if s.get("target") is not None and s.target not in P.halves:
            raise MKFError(f"malformed profile {label}: {sec}.target '{s.target}' is not a half",
                           f"use one of: {', '.join(P.halves)}")
        if s.get("reverse") and (s.get("target") is None or set(s.reverse) - set(s.treatments)):
            raise MKFError(f"malformed profile {label}: {sec}.reverse {list(s.reverse)} needs a target and names "
                           f"treatments of the section", f"set {sec}.target and list some of its treatments")
        for arch, more in (s.get("more_seeds") or {}).items():
            if arch not in s.architectures:
                raise MKFError(f"malformed profile {label}: {sec}.more_seeds names {arch}, not among its "
                               "architectures", f"use some of: {', '.join(s.architectures)}")
            try:
                more_seeds(more, list(s.treatments))
            except (TypeError, ValueError, KeyError) as e:
                raise MKFError(f"malformed profile {label}: {sec}.more_seeds.{arch} {e}",
                               "give a list of seeds, or {seeds: [...], treatments: [...], all_depths: false} (or a "
                               "list of those) naming treatments of the section") from None
    return P


def more_seeds(more: Any, treatments: list[str]) -> list[tuple[list[int], list[str], bool]]:
    """One architecture's ``more_seeds`` entry as groups of (seeds, treatments, all depths): a list of seeds takes
    every treatment of the section; a mapping ``{seeds: [...], treatments: [...]}`` names its own (some of the
    section's), and with ``all_depths: true`` plans them at every depth of the section, not only with all units
    frozen; a list of such mappings, several groups.

    >>> more_seeds([3, 4], ["AnB", "BnB"])
    [([3, 4], ['AnB', 'BnB'], False)]
    >>> more_seeds([{"seeds": [3]}, {"seeds": [5, 6], "treatments": ["AnB"], "all_depths": True}], ["AnB", "BnB"])
    [([3], ['AnB', 'BnB'], False), ([5, 6], ['AnB'], True)]
    """
    mapping = (dict, DictConfig)
    several = isinstance(more, (list, ListConfig)) and len(more) > 0 and all(isinstance(g, mapping) for g in more)
    out = []
    for g in more if several else [more]:
        if isinstance(g, mapping):
            seeds, treats, deep = list(g["seeds"]), list(g.get("treatments") or treatments), g.get("all_depths", False)
            extra, unknown = set(g) - {"seeds", "treatments", "all_depths"}, set(treats) - set(treatments)
            if extra or unknown or not isinstance(deep, bool):
                raise ValueError(f"has keys {sorted(extra)} besides seeds, treatments and all_depths" if extra else
                                 f"names treatments {sorted(unknown)} that the section lacks" if unknown else
                                 f"has all_depths {deep!r}, not true or false")
        else:
            seeds, treats, deep = list(g), list(treatments), False
        if not all(isinstance(x, int) for x in seeds):
            raise ValueError(f"has seeds {seeds} that are not integers")
        out.append((seeds, treats, deep))
    return out


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
    archs = architectures(P, name)
    halves, targets = dict(P.halves), [s.target] if s.get("target") else None
    if name in TABLES:
        sources = architectures(P, name, "source_architectures") if s.source_architectures else None
        datasets, into = OmegaConf.to_container(s.datasets), OmegaConf.to_container(s.targets_by_architecture)

        def runs(nets: dict[str, dict], at: list[int], treats: dict[str, list[float]]) -> list[Planned]:
            return matrix_plan(nets, datasets, list(s.sources), list(s.targets), treats, at, common(P), sources, into)
    elif s.budgets:
        return budget_plan(archs, halves, OmegaConf.to_container(s.budgets), treatments, seeds, common(P),
                           targets=targets)
    else:
        def runs(nets: dict[str, dict], at: list[int], treats: dict[str, list[float]]) -> list[Planned]:
            plan = ab_plan(nets, halves, treats, at, common(P), end=s.end, targets=targets)
            if s.get("reverse"):  # the deciding runs (all units) in the other direction too; the same bases
                other = next(h for h in halves if h != s.target)
                plan += ab_plan(nets, halves, {t: [1.0] for t in s.reverse if t in treats}, at, common(P),
                                end=s.end, targets=[other])
            return plan

    plan = runs(archs, seeds, treatments)
    for arch, more in (s.get("more_seeds") or {}).items():  # deciding runs (or, all_depths, every depth)
        for at, treats, deep in more_seeds(more, list(treatments)):
            plan += runs({arch: archs[arch]}, at, {t: treatments[t] if deep else [1.0] for t in treats})
    # a run two architectures share (a base) is a row of each
    return distinct(plan, lambda p: (run_id(p.config), p.labels["architecture"]))


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


def only(plan: list[Planned], pattern: str) -> list[Planned]:
    """The runs of ``plan`` whose :func:`describe` line matches regular expression ``pattern``, with the runs they
    copy from (a source is trained before its transfers), in plan order. An invalid pattern, or one that matches
    nothing, is an :class:`MKFError`.

    >>> plan = training_order(load_profile("smoke"), ["figure3"])
    >>> [describe(p) for p in only(plan, "ConvNeXt.*AnB man-made.* seed=0")]  # doctest: +NORMALIZE_WHITESPACE
    ['ConvNeXt-atto base man-made n=0 seed=0', 'ConvNeXt-atto AnB man-made→natural n=12 seed=0',
     'ConvNeXt-atto AnB man-made→natural n=6 seed=0']
    """
    try:
        rx = re.compile(pattern)
    except re.error as e:
        raise MKFError(f"--only '{pattern}' is not a regular expression: {e}", "quote it, e.g. --only 'k=1 |identity'")
    keep = {run_id(p.config) for p in plan if rx.search(describe(p))}
    if not keep:
        raise MKFError(f"--only '{pattern}' matches none of the {len(plan)} planned runs",
                       "see their lines with `mkf plan PROFILE SECTION --list`")
    keep |= {str(p.config.transfer.source) for p in plan if run_id(p.config) in keep and p.config.transfer.source}
    return [p for p in plan if run_id(p.config) in keep]


def check(name: str | Path) -> dict[str, int]:
    """Load profile ``name`` and build every section's runs (this validates every run config); the run
    count per section."""
    P = load_profile(name)
    return {sec: len(distinct(section_plan(P, sec))) for sec in SECTIONS if P[sec] is not None}

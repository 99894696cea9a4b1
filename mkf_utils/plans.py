"""Plans: the runs of an experiment as a list of configs with labels, bases first (nothing is trained here).

- :func:`ab_plan`: Yosinski's A/B transfer protocol between two halves of one dataset;
- :func:`budget_plan`: the A/B protocol once per training budget (the study; little target data);
- :func:`matrix_plan`: transfer from source datasets (and source architectures) into target datasets, the
  transfer tables.

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
from dataclasses import dataclass
from typing import Callable, Hashable

import torch
from omegaconf import DictConfig

from .config import load_config, run_id
from .errors import MKFError
from .models import create_model
from .transfer import DEPTHWISE_MODES
from .treatments import treatment_spec
from .units import UNIT_KINDS, trace, transfer_units


@dataclass
class Planned:
    """One run of a plan: what it means (``labels``) and what it computes (``config``)."""

    labels: dict
    config: DictConfig


def distinct(plan: list[Planned], key: Callable[[Planned], Hashable] = lambda p: run_id(p.config)) -> list[Planned]:
    """``plan`` with one entry per ``key`` (the first; default: per run id): what trains, once, where a section's
    architectures share a run (a base) and plan it each under its own label.

    >>> from mkf_utils.config import load_config
    >>> cfg = load_config(None, ["model.name=resnet18"])
    >>> [p.labels["architecture"] for p in distinct([Planned({"architecture": a}, cfg) for a in "ab"])]
    ['a']
    """
    seen: set[Hashable] = set()
    keys = [key(p) for p in plan]
    return [p for p, k in zip(plan, keys) if not (k in seen or seen.add(k))]


def describe(p: Planned) -> str:
    """A planned run in one line, as `mkf plan --list` prints it and ``--only`` matches it.

    >>> describe(Planned({"architecture": "a", "treatment": "AnB", "direction": "A→B", "n": 2, "seed": 0}, None))
    'a AnB A→B n=2 seed=0'
    """
    lab = p.labels
    size = f" {lab['per_class']}/class" if lab.get("per_class") is not None else ""
    return f"{lab['architecture']} {lab['treatment']} {lab['direction']}{size} n={lab['n']} seed={lab['seed']}"


@functools.lru_cache(maxsize=64)
def _units(model_name: str, stem_stride: int | None) -> tuple[dict[str, int], frozenset[tuple[int, ...]]]:
    """Model ``model_name``'s unit count per kind and its depthwise kernel sizes, from one model built once, on the
    meta device (shapes only: no weights are initialised, a ConvNeXt-Base builds in about a second)."""
    with torch.device("meta"):
        model = create_model(model_name, 10, stem_stride)
    calls, modules = trace(model), dict(model.named_modules())
    counts = {kind: len(transfer_units(model, kind, calls)) for kind in UNIT_KINDS}
    kernels = frozenset(tuple(modules[u].kernel_size) for u in transfer_units(model, "depthwise", calls))
    return counts, kernels


def count_units(model_name: str, kind: str, stem_stride: int | None = None) -> int:
    """How many ``kind`` units model ``model_name`` has."""
    if kind not in UNIT_KINDS:
        raise MKFError(f"unknown unit kind '{kind}'", f"use one of: {', '.join(UNIT_KINDS)}")
    return _units(model_name, stem_stride)[0][kind]


def depthwise_kernels(model_name: str, stem_stride: int | None = None) -> frozenset[tuple[int, ...]]:
    """The kernel sizes of model ``model_name``'s depthwise units (empty for a net without any).

    >>> sorted(depthwise_kernels("convnext_atto")), sorted(depthwise_kernels("mobilenetv2_050"))
    ([(7, 7)], [(3, 3)])
    """
    return _units(model_name, stem_stride)[1]


def applies(fields: dict, kind: str, model: dict) -> bool:
    """Whether a treatment (its ``cfg.transfer`` fields, :func:`~mkf_utils.treatments.treatment_spec`) is planned for
    a net with ``kind`` units and ``model`` config: a control of depthwise filters only where the units are
    depthwise, and the master key bank (7x7 filters) only where every depthwise kernel is 7x7."""
    if fields["mode"] not in DEPTHWISE_MODES:
        return True
    if kind != "depthwise":
        return False
    master_key = fields["mode"] == "bank-freeze" and fields.get("bank", "master-key") == "master-key"
    return not master_key or depthwise_kernels(model.get("name", "resnet18"), model.get("stem_stride")) == {(7, 7)}


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
                if src0 is None or half in (targets or names):  # with sources apart, a base only where it is a target
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
                if not applies(fields, kind, model):
                    continue
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



BUDGET_KEYS = ["per_class", "epochs", "recipe"]  # a study's runs pair with the base of the same budget



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
    sources_planned: set[str] = set()
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
            if p.labels["treatment"] != "source" or run_id(p.config) not in sources_planned:  # budgets share them
                sources_planned.add(run_id(p.config))
                plan.append(Planned({**p.labels, **labels}, p.config))
    return plan


def matrix_plan(architectures: dict[str, dict], datasets: dict[str, dict], sources: list[str], targets: list[str],
                treatments: dict[str, list[float]], seeds: list[int], common: dict | None = None,
                source_architectures: dict[str, dict] | None = None,
                targets_by_architecture: dict[str, list[str]] | None = None) -> list[Planned]:
    """Transfer from source datasets (and source architectures) into target datasets: the transfer tables.

    For each target net Y, target dataset T and seed: Y's base on T (treatment ``base``), then each treatment
    at each relative depth. A treatment that copies from the other side (``AnB``, ``A-centres k=4``, ...) is
    planned once per source dataset S and source net X, copying from X's base trained on S with the same seed
    (treatment ``source`` where that is not also a base of the plan); one that copies from the same side
    (``BnB``) copies from Y's base on T; the rest (``random-frozen``, ``identity``) copy nothing.

    Args:
        architectures: the target nets, as in :func:`ab_plan`.
        datasets: label -> data config keys merged over ``common["data"]`` (e.g. ``{"split": "cifar10-manmade"}``
            or ``{"name": "fashion-mnist", "per_class": 400}``).
        sources, targets: labels of ``datasets``.
        source_architectures: the nets copied from (label -> spec); None: each target net copies from its own
            architecture. Another architecture's depthwise filters are mapped onto the target's units and channels
            when the run loads its source (:func:`mkf_utils.crossarch.map_depthwise`).
        targets_by_architecture: target net -> the targets it trains into (some of ``targets``); the rest: all.
        the rest: as in :func:`ab_plan`.

    Each run is labelled with ``architecture`` (Y), ``source_architecture`` (X, or None), ``source`` (S, or the
    target for ``self``), ``target`` (T) and ``direction`` (``S→T``).

    >>> archs = {"ConvNeXt-atto": {"model": {"name": "convnext_atto", "stem_stride": 2}, "units": "depthwise"}}
    >>> data = {"A": {"split": "random-a:0"}, "B": {"split": "random-b:0"}, "all": {"split": "all"}}
    >>> plan = matrix_plan(archs, data, ["A", "all"], ["B"], {"AnB": [1.0], "identity": [1.0]}, [0],
    ...                    {"data": {"name": "synthetic"}})
    >>> [(p.labels["treatment"], p.labels["direction"]) for p in plan]
    [('base', 'B'), ('source', 'A'), ('source', 'all'), ('AnB', 'A→B'), ('AnB', 'all→B'), ('identity', 'B')]
    >>> nano = {"ConvNeXt-nano": {"model": {"name": "convnext_nano", "stem_stride": 2}, "units": "depthwise"}}
    >>> plan = matrix_plan(archs, data, ["A"], ["B"], {"AnB": [1.0]}, [0], {"data": {"name": "synthetic"}},
    ...                    {**archs, **nano})
    >>> [(p.labels["treatment"], p.labels["architecture"], p.labels["direction"]) for p in plan][-2:]
    [('AnB', 'ConvNeXt-atto', 'A→B'), ('AnB', 'ConvNeXt-atto', 'ConvNeXt-nano A→B')]
    """
    unknown = sorted((set(sources) | set(targets)) - set(datasets))
    if unknown:
        raise MKFError(f"sources/targets name datasets {unknown} that are not defined",
                       f"define them under datasets or use some of: {', '.join(datasets)}")
    for t in treatments:
        treatment_spec(t)
    specs = {**architectures, **(source_architectures or {})}
    cfg_of = lambda arch, label, seed, extra=None: load_config(overrides=_merge(  # noqa: E731
        common or {}, {k: v for k, v in specs[arch].items() if k != "units"},
        {"seed": seed, "data": datasets[label]}, extra or {}))
    def units(arch: str) -> int:
        model = _merge((common or {}).get("model", {}), specs[arch].get("model", {}))
        return count_units(model.get("name", "resnet18"), specs[arch]["units"], model.get("stem_stride"))

    plan: list[Planned] = []
    planned: set[str] = set()  # a base or source planned once, however many nets copy from it
    copies = any(treatment_spec(t)[1] == "other" for t in treatments)  # no treatment copies: no source is planned
    for arch, spec in architectures.items():
        kind, total = spec["units"], units(arch)
        from_archs = list(source_architectures) if source_architectures else [arch]
        if kind != "depthwise" and from_archs != [arch]:
            raise MKFError(f"{arch} has {kind} units: only depthwise filters map between architectures",
                           "give source_architectures for nets with depthwise units only")
        lab = dict(architecture=arch, n_units=total, end="first")
        into = (targets_by_architecture or {}).get(arch, targets)
        bases = {}
        for seed in seeds:
            for x, data, is_base in [(arch, t, True) for t in into] + [(x, s, False) for x in from_archs
                                                                         for s in sources if copies]:
                bases[x, data, seed] = cfg = cfg_of(x, data, seed)
                if is_base or run_id(cfg) not in planned:
                    planned.add(run_id(cfg))
                    plan.append(Planned(dict(lab, architecture=x, n_units=units(x), source_architecture=None,
                                             source=None, target=data, direction=data, n=0, seed=seed,
                                             treatment="base" if is_base else "source"), cfg))
        for t in into:
            for treatment, fractions in treatments.items():
                fields, side = treatment_spec(treatment)
                if not applies(fields, kind, _merge((common or {}).get("model", {}), spec.get("model", {}))):
                    continue
                froms = {"other": [(x, s) for x in from_archs for s in sources], "self": [(arch, t)],
                         None: [(None, None)]}[side]
                for x, s in froms:
                    for n in sorted({depth_to_n(f, total) for f in fractions}):
                        for seed in seeds:
                            src = run_id(bases[x, s, seed]) if s is not None else None
                            cfg = cfg_of(arch, t, seed, {"transfer": dict(units=kind, n=n, **fields, source=src)})
                            direction = t if s is None else f"{s}→{t}" if x == arch else f"{x} {s}→{t}"
                            plan.append(Planned(dict(lab, treatment=treatment, source_architecture=x, source=s,
                                                     target=t, direction=direction, n=n, seed=seed), cfg))
    return plan

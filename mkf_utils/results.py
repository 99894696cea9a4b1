"""Each profile's results page, ``paper_figures/<profile>/README.md``, written from the committed figure tables.

Every number on the page is read from a CSV in that folder and every verdict is computed from a 95% interval by
the same functions the notebooks print their readings with, so the page cannot drift from the figures:
`make results` rewrites it and ``tests/test_records.py`` fails when the committed page differs from what it would
write.

>>> bases = pd.DataFrame({"architecture": "a", "target": "B", "treatment": "base", "top1": [0.5, 0.7]})
>>> paired = pd.DataFrame({"architecture": "a", "direction": "A→B", "n": 4, "n_units": 4, "comparison": "BnB − base",
...                        "mean": 0.01, "low": -0.01, "high": 0.03, "pairs": 2}, index=[0])
>>> figure3_reading(bases, paired)[:2]
['- Base top-1: a on B 0.600.', '- a, A→B, all 4 units: BnB − base +0.010 [-0.010, +0.030] (2 pairs): the interval holds zero.']
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import pandas as pd

from . import controls, generality, retention, study, tables
from .plots import summarize, yosinski_reference
from .stats import reading

TITLES = {
    "figure1": "Figure 1: filters from the first, middle and last units",
    "figure2": "Figure 2: the A/B transfer set-up",
    "figure3": "Figure 3: man-made ↔ natural transfer of the first n units",
    "figure4": "Figure 4: reverse freezing, the last n units copied and frozen",
    "figure5": "Figure 5: accuracy retention across ResNet depths",
    "generality": "Filter generality, measured",
    "study": "Study: base accuracy and transfer against the training budget",
    "controls": "Controls for depthwise filters: general, or irrelevant?",
    "crossdataset": "Transfer table: depthwise filters from other datasets",
    "sourcesize": "Transfer table: does a larger source give more general depthwise filters?",
    "crossarch": "Transfer table: depthwise filters across architectures",
    "pointwise": "Transfer table: pointwise (1x1) filters",
}


def figure3_reading(table: pd.DataFrame, paired: pd.DataFrame) -> list[str]:
    """The bases' mean top-1 per net and half, then :func:`mkf_utils.stats.reading` at full depth."""
    bases = table[table.treatment == "base"].groupby(["architecture", "target"], sort=False).top1.mean()
    return ["- Base top-1: " + "; ".join(f"{a} on {t} {v:.3f}" for (a, t), v in bases.items()) + "."] + reading(paired)


def figure4_reading(table: pd.DataFrame, paired: pd.DataFrame) -> list[str]:
    """Per net, AnB's relative top-1 at each depth (mean ± sd over seeds and directions) with the share of weights
    frozen, then :func:`mkf_utils.stats.reading` at every depth."""
    summary = summarize(table)
    anb = summary[(summary.treatment == "AnB") & (summary.n > 0)]
    lines = []
    for arch in table.architecture.unique():
        points = "; ".join(f"last {r.n} of {r.n_units} units ({r.frozen_fraction:.1%} of weights) {r.rel_ratio:.3f} ± "
                           f"{r.rel_ratio_sd:.3f}" for r in anb[anb.architecture == arch].itertuples())
        lines.append(f"- **{arch}**, AnB relative top-1 (ratio): {points}.")
    return lines + reading(paired, at_full_depth=False)


def figure5_reading(table: pd.DataFrame) -> list[str]:
    """Each net's retention at its deepest unit and its area beside AlexNet's, then per seed at full depth, and each
    deeper net against the shallowest and the paper's ordering (:mod:`mkf_utils.retention`)."""
    nets = list(table.architecture.unique())
    target = table[table.treatment != "base"].target.iloc[0]
    areas = retention.retention_areas(summarize(table), yosinski_reference(target=target))
    return retention.area_lines(areas, nets) + retention.reading(table, nets)


def _csv(folder: Path, name: str) -> pd.DataFrame | None:
    """``folder/name.csv``, or None when it is missing or empty (a measure with nothing to measure)."""
    try:
        return pd.read_csv(folder / f"{name}.csv")
    except (FileNotFoundError, pd.errors.EmptyDataError):
        return None


def _size_order(folder: Path, name: str) -> list[str]:
    """The source-size table's sources, smallest first (from its ``_datasets.csv``)."""
    sizes = _csv(folder, f"{name}_datasets")
    return [] if sizes is None else list(sizes[sizes.source].sort_values("images").dataset)


def _lowdata_lines(folder: Path, name: str) -> list[str]:
    """The controls' little-target-data part, where its tables are: its figure, its reading and whether each size's
    bases converged (:func:`mkf_utils.controls.convergence` of their curves)."""
    low, curves = _csv(folder, f"{name}_lowdata_paired"), _csv(folder, f"{name}_lowdata_curves")
    lines = ["", f"![Little target data]({name}_lowdata.png)", ""] if (folder / f"{name}_lowdata.png").exists() else []
    lines += controls.lowdata_reading(low) if low is not None else []
    if curves is not None:
        lines += controls.convergence_reading(controls.convergence(curves, ["architecture", "per_class"]))
    return lines


def _depth_lines(folder: Path, name: str) -> list[str]:
    """The controls' few-filters-by-depth part (the ``bankdepth`` section), where its tables are: figure and reading."""
    paired = _csv(folder, f"{name}_depth_paired")
    if paired is None:
        return []
    image = ["", f"![Few distinct filters, by depth]({name}_depth.png)", ""] if (folder / f"{name}_depth.png").exists() else [""]
    return image + controls.depth_reading(paired)


def _figure_lines(folder: Path, name: str) -> list[str]:
    """The reading of figure ``name`` from the tables in ``folder`` (none for the galleries and the set-up)."""
    table, paired = _csv(folder, name), _csv(folder, f"{name}_paired")
    readers: dict[str, Callable[[], list[str]]] = {
        "figure3": lambda: figure3_reading(table, paired),
        "figure4": lambda: figure4_reading(table, paired),
        "figure5": lambda: figure5_reading(table),
        "study": lambda: study.reading(table, table[table.treatment != "base"].target.iloc[0]),
        "generality": lambda: generality.reading(table, _csv(folder, f"{name}_master_key"),
                                                 _csv(folder, f"{name}_layer_scale"),
                                                 _csv(folder, f"{name}_masterkey_paired")),
        "controls": lambda: controls.reading(paired) + _lowdata_lines(folder, name) + _depth_lines(folder, name),
        "crossdataset": lambda: tables.reading(paired) + tables.floor_reading(paired),
        "sourcesize": lambda: tables.size_reading(paired, "AnB", _size_order(folder, name)) + tables.reading(paired),
        "crossarch": lambda: tables.reading(paired),
        "pointwise": lambda: tables.pointwise_reading(paired, _csv(folder, f"{name}_loss_paired")),
    }
    return readers[name]() if name in readers and table is not None else []


def page(folder: str | Path) -> str:
    """The results page of one profile's figures folder (``paper_figures/<profile>``), as Markdown."""
    folder = Path(folder)
    out = [f"# Results: the `{folder.name}` profile",
           "",
           f"Written by `make results` from the tables in this folder (`configs/profiles/{folder.name}.yaml` says how "
           "they were computed; each figure's subtitle and executed notebook say so too). Do not edit: a test "
           "compares this page with what `make results` writes. Every verdict comes from a 95% interval of "
           "differences paired by seed (`mkf_utils.stats`); \"one pair\" means a single seed, no interval.",
           ""]
    for name, title in TITLES.items():
        if not (folder / f"{name}.png").exists():
            continue
        notebook = f" · [executed notebook]({name}.ipynb)" if (folder / f"{name}.ipynb").exists() else ""
        out += [f"## {title}", "", f"![{title}]({name}.png)", "",
                f"[interactive]({name}.html) · [numbers]({name}.csv){notebook}", ""]
        lines = _figure_lines(folder, name)
        out += lines + [""] if lines else []
    return "\n".join(out).rstrip() + "\n"


def write(folder: str | Path) -> Path:
    """Write :func:`page` as ``folder/README.md``; its path."""
    path = Path(folder) / "README.md"
    path.write_text(page(folder))
    return path

"""Summaries and Altair charts of transfer tables, Yosinski's reference curve, and saving figures.

>>> ref = yosinski_reference()
>>> ref[["n", "rel_depth"]].iloc[-1].tolist(), round(float(ref.rel_ratio.iloc[0]), 3)
([7.0, 1.0], 1.0)
"""
from __future__ import annotations

import base64
import json
from importlib import resources
from pathlib import Path

import altair as alt
import pandas as pd

from .controls import BANK_ORDER
from .generality import MK_TREATMENTS, PAIRS

REFERENCE = Path(str(resources.files("mkf_utils") / "data_files" / "reference"))
YOSINSKI_LABEL = "AlexNet AnB (Yosinski et al. 2014, ImageNet)"
YOSINSKI_UNITS = 7  # conv1-5, fc6, fc7: the layers that can be frozen; fc8 is the classifier


def yosinski_reference(target: str | None = None) -> pd.DataFrame:
    """Yosinski et al.'s man-made/natural AnB curve, averaged over both directions (or for one ``target``
    half: ``"natural"`` is their man-made to natural transfer).

    Columns: ``n``, ``rel_depth`` (n / 7), ``rel_ratio`` (mean over directions of top-1 / base top-1)
    and ``rel_diff`` (their relative accuracy: mean top-1 minus the mean of the two bases).
    """
    raw = pd.read_csv(REFERENCE / "yosinski2014_manmade_natural_transfer.csv")
    if target is not None:
        raw = raw[raw.target == target]
    base = raw[raw.n_frozen == 0].set_index("target").top1
    raw = raw.assign(base_top1=raw.target.map(base))
    raw = raw.assign(rel_ratio=raw.top1 / raw.base_top1, rel_diff=raw.top1 - raw.base_top1)
    out = raw.groupby("n_frozen", as_index=False)[["rel_ratio", "rel_diff"]].mean().rename(columns={"n_frozen": "n"})
    out["n"] = out.n.astype(float)
    out["rel_depth"] = out.n / YOSINSKI_UNITS
    out["series"] = YOSINSKI_LABEL
    return out


def summarize(table: pd.DataFrame, by_target: bool = False) -> pd.DataFrame:
    """Mean, sd and count of ``rel_ratio`` / ``rel_diff`` over seeds (and directions, unless ``by_target``),
    per curve point.

    The bases appear at n = 0 (ratio 1, difference 0 by definition) in every treatment's curve; with
    ``by_target`` each direction (named ``direction``, e.g. ``man-made→natural``) starts at its target's base.
    """
    keys = ["architecture", "treatment", "n", "n_units"] + (["target"] if by_target else [])
    stats = table.groupby(keys, as_index=False).agg(
        rel_ratio=("rel_ratio", "mean"), rel_ratio_sd=("rel_ratio", "std"), rel_diff=("rel_diff", "mean"),
        rel_diff_sd=("rel_diff", "std"), top1=("top1", "mean"), frozen_fraction=("frozen_fraction", "mean"),
        runs=("top1", "size"))
    bases = stats[stats.treatment == "base"]
    curves = [stats[stats.treatment != "base"]]
    for t in curves[0].treatment.unique():
        curves.append(bases.assign(treatment=t))
    out = pd.concat(curves, ignore_index=True).fillna({"rel_ratio_sd": 0.0, "rel_diff_sd": 0.0})
    out["rel_depth"] = out.n / out.n_units
    out["series"] = out.architecture + " " + out.treatment
    if by_target:
        names = table[table.treatment != "base"].groupby("target").direction.first()
        out["direction"] = out.target.map(names)
        out["series"] += " " + out.direction
    return out.sort_values(["architecture", "treatment", "n"], ignore_index=True)


def one_depth_note(table: pd.DataFrame) -> list[str]:
    """A caption line naming the treatments of ``table`` measured at one depth only (none when none is): their
    curve joins the base at n = 0 to that one point and says nothing of the depths between.

    >>> t = pd.DataFrame({"architecture": ["a", "a", "a", "a", "b", "b"], "n": [0, 2, 4, 1, 4, 4],
    ...                   "treatment": ["base", "AnB", "AnB", "random-frozen", "AnB", "random-frozen"],
    ...                   "n_units": [4, 4, 4, 4, 4, 4]})
    >>> one_depth_note(t)
    ['Measured at one depth only, each line joining the base (n = 0) to that point: random-frozen at n = 1 (a), 4 (b).']
    >>> one_depth_note(t[t.architecture == "b"])
    ['Measured at one depth only, each line joining the base (n = 0) to that point: AnB and random-frozen at n = N.']
    """
    t = table[table.treatment != "base"]
    at: dict[str, list[str]] = {}  # where -> treatments measured there only
    for name, g in t.groupby("treatment", sort=False):
        per_arch = g.groupby("architecture", sort=False)[["n", "n_units"]].agg(set)
        if (per_arch.n.map(len) == 1).all():
            full = all(n == u for n, u in zip(per_arch.n.map(min), per_arch.n_units.map(min)))
            where = "N" if full else ", ".join(f"{min(n)} ({a})" for a, n in per_arch.n.items())
            at.setdefault(where, []).append(str(name))
    if not at:
        return []
    return ["Measured at one depth only, each line joining the base (n = 0) to that point: "
            + "; ".join(f"{' and '.join(names)} at n = {where}" for where, names in at.items()) + "."]


def paired_panel(paired: pd.DataFrame, title: str, metric: str = "top-1") -> alt.FacetChart:
    """Paired differences of ``metric`` (mean and t interval per architecture, direction and depth), one facet per
    comparison; the zero line is where a treatment and its comparison agree."""
    data = paired.assign(rel_depth=paired.n / paired.n_units)
    x = alt.X("rel_depth:Q", title="transfer depth n / N", scale=alt.Scale(domain=[0, 1]))
    y = alt.Y("mean:Q", title=f"paired difference of {metric} (95% interval)")
    color = alt.Color("architecture:N", title="architecture")
    base = alt.Chart().encode(x=x, color=color)
    tooltip = ["architecture", "direction", "n", "comparison", alt.Tooltip("mean:Q", format="+.3f"),
               alt.Tooltip("low:Q", format="+.3f"), alt.Tooltip("high:Q", format="+.3f"), "pairs"]
    layers = alt.layer(
        alt.Chart().mark_rule(color="gray", strokeDash=[2, 2]).encode(y=alt.datum(0)),
        base.mark_rule().encode(y="low:Q", y2="high:Q", detail="direction:N"),
        base.mark_point(filled=True, size=50).encode(y=y, shape=alt.Shape("direction:N", title="direction"),
                                                     tooltip=tooltip),
        data=data)
    return layers.properties(width=200, height=200).facet(
        column=alt.Column("comparison:N", title=None)).properties(title=title)


def dash(field: str, title: str, sort: list[str] | None = None) -> alt.StrokeDash:
    """A stroke-dash encoding whose legend draws line dashes (not dots), its values in ``sort``'s order if given."""
    return alt.StrokeDash(field, title=title, sort=sort if sort is not None else alt.Undefined,
                          legend=alt.Legend(symbolType="stroke", symbolStrokeColor="black"))


def dashed_lines(chart: alt.Chart, strokeDash: alt.StrokeDash, **encoding) -> alt.LayerChart:
    """``chart``'s lines through filled points, the points in a layer of their own: a line with ``point=True``
    draws a stroke-dash legend's symbols as dots, which hides the dashes. The points carry the ``tooltip`` and are
    grouped as the lines are (by the dash's field and any ``detail``), so that aggregates such as ``mean(y)`` put
    each line's points on it. More layers join with ``+=``.

    >>> spec = dashed_lines(alt.Chart(pd.DataFrame({"x": [0, 1]})), dash("x:N", "x"), y="mean(x):Q",
    ...                     tooltip=["x"]).to_dict()
    >>> [(layer["mark"]["type"], sorted(layer["encoding"])) for layer in spec["layer"]]
    [('line', ['strokeDash', 'y']), ('point', ['detail', 'tooltip', 'y'])]
    """
    groups = [strokeDash.shorthand] + ([encoding["detail"]] if "detail" in encoding else [])
    line = {k: v for k, v in encoding.items() if k != "tooltip"}
    return alt.layer(chart.mark_line().encode(strokeDash=strokeDash, **line),
                     chart.mark_point(filled=True).encode(**{**encoding, "detail": groups}))


def _axis_title(y: str) -> str:
    return {"rel_ratio": "top-1 / base top-1", "rel_diff": "top-1 − base top-1 (mean of both directions)",
            "frozen_fraction": "share of parameters frozen"}[y]


def area_under_curve(summary: pd.DataFrame, y: str = "rel_ratio") -> pd.DataFrame:
    """Trapezoid area under each curve of ``y`` against ``rel_depth`` (0 to 1, the base at 0), its value at
    the deepest point, that point's depth and the number of measured depths (a straight line is assumed
    between them, so areas over different depths compare only roughly): one row per ``series``.

    >>> s = pd.DataFrame({"series": "a", "rel_depth": [0, 0.5, 1], "rel_ratio": [1, 0.8, 0.6]})
    >>> area_under_curve(s)[["auc", "deepest", "max_depth", "depths"]].values.tolist()
    [[0.8, 0.6, 1.0, 3.0]]
    """
    rows = []
    for series, g in summary.sort_values("rel_depth").groupby("series", sort=False):
        x, v = g.rel_depth.to_numpy(), g[y].to_numpy()
        auc = float(((x[1:] - x[:-1]) * (v[1:] + v[:-1]) / 2).sum())
        rows.append({"series": series, "auc": round(auc, 12), "deepest": float(v[-1]), "max_depth": float(x[-1]),
                     "depths": len(x)})
    return pd.DataFrame(rows)


def transfer_panel(summary: pd.DataFrame, y: str, title: str, reference: pd.DataFrame | None = None,
                   treatments: list[str] | None = None,
                   x_title: str = "transfer depth n / N (N = the net's units)",
                   color: str = "architecture", dashed: str = "treatment",
                   color_order: list[str] | None = None) -> alt.LayerChart:
    """Mean ± sd of ``y`` against relative depth n / N: colour = ``color`` (its legend in ``color_order``, else
    sorted), dash = ``dashed`` (two columns of ``summary``: the architecture and the treatment, either way round)."""
    data = summary if treatments is None else summary[summary.treatment.isin(treatments)]
    x = alt.X("rel_depth:Q", title=x_title, scale=alt.Scale(domain=[0, 1]))
    colour = alt.Color(f"{color}:N", title=color, sort=color_order)
    tooltip = ["architecture", "treatment", "n", "n_units", alt.Tooltip(f"{y}:Q", format=".3f"), "runs",
               alt.Tooltip("frozen_fraction:Q", format=".3f")]
    base = alt.Chart(data)
    yenc = alt.Y(f"{y}:Q", title=_axis_title(y), scale=alt.Scale(zero=False))
    chart = dashed_lines(base, dash(f"{dashed}:N", dashed), x=x, y=yenc, color=colour, detail="series:N",
                         tooltip=tooltip)
    if f"{y}_sd" in data:
        chart += base.transform_calculate(lo=f"datum.{y} - datum.{y}_sd", hi=f"datum.{y} + datum.{y}_sd").mark_rule(
        ).encode(x=x, y="lo:Q", y2="hi:Q", color=colour, detail="series:N")
    if reference is not None and y in reference:
        chart += alt.Chart(reference).mark_line(point=alt.OverlayMarkDef(color="gray"), color="gray",
                                                strokeDash=[6, 3]).encode(
            x=x, y=f"{y}:Q", tooltip=["series", "n", alt.Tooltip(f"{y}:Q", format=".3f")])
    return chart.properties(title=title, width=300, height=240)


class SavedChart:
    """A chart written by :func:`save_chart`. In a notebook it shows as altair's interactive chart where scripts
    run, and as its saved PNG where they do not (JupyterLab on an untrusted notebook, a code host's viewer), so
    an executed notebook can be read without running anything."""

    def __init__(self, chart: alt.TopLevelMixin, paths: list[Path]) -> None:
        self.chart, self.paths = chart, paths

    def _repr_mimebundle_(self, include=None, exclude=None) -> tuple[dict, dict]:
        shown = self.chart._repr_mimebundle_(include, exclude)
        data, meta = shown if isinstance(shown, tuple) else (shown, {})
        data = {**data, "image/png": base64.b64encode(self.paths[0].read_bytes()).decode()}
        return data, meta


def save_chart(chart: alt.TopLevelMixin, out_dir: str | Path, name: str) -> SavedChart:
    """Write ``name``.png, .svg, .html (self-contained, works offline) and .vl.json under ``out_dir``; the
    result displays the chart (:class:`SavedChart`), its ``paths`` are the files."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.{ext}" for ext in ("png", "svg", "html", "vl.json")]
    chart.save(paths[0], scale_factor=2)
    chart.save(paths[1])
    chart.save(paths[2], inline=True)
    paths[3].write_text(json.dumps(chart.to_dict(), indent=1))
    return SavedChart(chart, paths)


def filter_gallery(gallery: pd.DataFrame, title: str) -> alt.FacetChart:
    """A grid of filters from :func:`mkf_utils.filters.gallery`: one row per model, one column per position
    (first, middle, last unit), the sampled filters side by side with a gap between them, every tap the same
    size (a 3x3 filter is drawn smaller than a 7x7 one); red positive, blue negative."""
    k = int(gallery["row"].max()) + 1
    d = gallery.assign(x=gallery["filter"] * (k + 1) + gallery["col"], y=gallery["row"])
    width = int(gallery["filter"].max() + 1) * (k + 1)
    return alt.Chart(d.assign(x2=d.x + 1, y2=d.y + 1)).mark_rect().encode(
        x=alt.X("x:Q", axis=None, scale=alt.Scale(domain=[0, width], nice=False)), x2="x2:Q",
        y=alt.Y("y:Q", axis=None, scale=alt.Scale(domain=[0, k], reverse=True, nice=False)), y2="y2:Q",
        color=alt.Color("value:Q", scale=alt.Scale(scheme="redblue", domain=[-1, 1], reverse=True), title="tap / peak"),
        tooltip=["model", "unit", "filter", "value"],
    ).properties(width=4 * width, height=4 * k).facet(
        row=alt.Row("model:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left", labelLimit=260)),
        column=alt.Column("position:N", sort=["first", "middle", "last"], title=None),
    ).properties(title=title)


def figure1_chart(galleries: pd.DataFrame, subtitle: list[str]) -> alt.VConcatChart:
    """Figure 1 from :func:`mkf_utils.filters.galleries`: one :func:`filter_gallery` per unit kind, depthwise
    (DS-CNNs) as panel a, conv (ResNets) as b."""
    return alt.vconcat(*(filter_gallery(t, "a. depthwise filters (DS-CNN)" if kind == "depthwise" else
                                        "b. conv filters (ResNet)")
                         for kind, t in galleries.groupby("units", sort=False))).properties(
        title=alt.Title("Figure 1: filters from the first, middle and last units", subtitle=subtitle))


SETUP_STATES = ["trained on A", "trained on B", "copied from A, frozen", "copied from B, frozen", "random init, frozen"]


def setup_table(units: list[str], n: int, end: str = "first") -> pd.DataFrame:
    """The A/B set-up as boxes: per net (base A, base B, AnB, BnB, random-frozen), each transfer unit and the
    head with its state. The ``n`` units counted from ``end`` are the transferred ones.

    >>> t = setup_table(["u1", "u2", "u3"], 2)
    >>> t[t.net == "AnB"].state.tolist()
    ['copied from A, frozen', 'copied from A, frozen', 'trained on B', 'trained on B']
    """
    if not 0 <= n <= len(units):
        raise ValueError(f"n = {n} is outside 0..{len(units)}")
    moved = set(range(n)) if end == "first" else set(range(len(units) - n, len(units)))
    nets = {"base A": ("trained on A", None), "base B": ("trained on B", None), "AnB": ("trained on B", "copied from A, frozen"),
            "BnB": ("trained on B", "copied from B, frozen"), "random-frozen": ("trained on B", "random init, frozen")}
    rows = []
    for net, (rest, frozen) in nets.items():
        for i, u in enumerate([*units, "head"]):
            state = frozen if frozen and i in moved else rest
            rows.append({"net": net, "position": i, "unit": u, "state": state})
    return pd.DataFrame(rows)


def setup_schematic(table: pd.DataFrame, title: str, subtitle: list[str]) -> alt.Chart:
    """Figure 2: one row of boxes per net of :func:`setup_table`, a box per transfer unit and the head."""
    order = list(dict.fromkeys(table.net))
    colors = ["#4c78a8", "#f58518", "#9ecae9", "#ffbf79", "#bab0ac"]
    boxes = alt.Chart(table).mark_rect(stroke="white", strokeWidth=1.5).encode(
        x=alt.X("position:O", title="transfer units in forward order, then the head", axis=alt.Axis(labels=False, ticks=False)),
        y=alt.Y("net:N", sort=order, title=None),
        color=alt.Color("state:N", scale=alt.Scale(domain=SETUP_STATES, range=colors), title=None),
        tooltip=["net", "unit", "state"])
    return boxes.properties(width=max(240, 22 * table.position.nunique()), height=30 * len(order),
                            title=alt.Title(title, subtitle=subtitle))



def bank_panel(summary: pd.DataFrame, title: str) -> alt.LayerChart:
    """Top-1 / base top-1 (mean ± sd over seeds) against the bank size k, one line per bank, from
    :func:`mkf_utils.controls.summary` rows of one direction; the all-units controls (AnB, random-frozen,
    identity, ...) as dashed horizontal rules."""
    banks = summary[summary.lever == "few distinct filters"]
    rules = summary[(summary.lever != "few distinct filters") & (summary.treatment != "base")]
    ks = sorted(banks.k.dropna().astype(int).unique()) or [1]
    x = alt.X("k:Q", title="distinct filters per net (bank size k)", scale=alt.Scale(type="log", base=2,
              domain=[min(ks), max(ks)]), axis=alt.Axis(values=ks))
    y = alt.Y("rel_ratio:Q", title="top-1 / base top-1", scale=alt.Scale(zero=False))
    color = alt.Color("bank:N", title="bank", sort=BANK_ORDER)
    tooltip = ["treatment", alt.Tooltip("rel_ratio:Q", format=".3f"), alt.Tooltip("top1:Q", format=".3f"), "runs"]
    line = alt.Chart(banks).mark_line(point=True).encode(x=x, y=y, color=color, tooltip=tooltip)
    bars = alt.Chart(banks).transform_calculate(lo="datum.rel_ratio - datum.rel_ratio_sd",
                                                hi="datum.rel_ratio + datum.rel_ratio_sd").mark_rule().encode(
        x=x, y="lo:Q", y2="hi:Q", color=color)
    ref = alt.Chart(rules).mark_rule(color="gray").encode(y="rel_ratio:Q", strokeDash=dash("treatment:N", "all units"),
                                                           tooltip=tooltip)
    return alt.layer(line, bars, ref).properties(title=title, width=300, height=240)


def interval_panel(paired: pd.DataFrame, title: str, color: str = "direction") -> alt.LayerChart:
    """Paired differences of top-1 with their 95% intervals, one row per comparison (in the table's order),
    colour = ``color`` (a column: the direction, or the net); the zero line is where the two treatments agree."""
    order = list(dict.fromkeys(paired.comparison))
    y = alt.Y("comparison:N", sort=order, title=None, axis=alt.Axis(labelLimit=400))
    x = alt.X("mean:Q", title="paired difference of top-1 (95% interval)")
    color = alt.Color(f"{color}:N", title=color)
    tooltip = ["comparison", "architecture", "direction", alt.Tooltip("mean:Q", format="+.3f"),
               alt.Tooltip("low:Q", format="+.3f"),
               alt.Tooltip("high:Q", format="+.3f"), "pairs"]
    base = alt.Chart()
    return alt.layer(base.mark_rule(color="gray", strokeDash=[2, 2]).encode(x=alt.datum(0)),
                     base.mark_rule().encode(x="low:Q", x2="high:Q", y=y, color=color),
                     base.mark_point(filled=True, size=50).encode(x=x, y=y, color=color, tooltip=tooltip),
                     data=paired).properties(title=title, width=300, height=max(120, 16 * len(order)))


def controls_chart(summary: pd.DataFrame, paired: pd.DataFrame, title: str, subtitle: list[str]) -> alt.HConcatChart:
    """The controls figure: a :func:`bank_panel` per transfer direction, then the :func:`interval_panel`."""
    directions = summary[summary.treatment != "base"].direction.unique()
    panels = [bank_panel(summary[summary.direction == d], f"{'abcdefgh'[i]}. {d}: few distinct filters")
              for i, d in enumerate(directions)]
    letter = "abcdefgh"[len(panels)]
    return alt.hconcat(*panels, interval_panel(paired, f"{letter}. paired differences (same seed)")).resolve_scale(
        color="independent").properties(title=alt.Title(title, subtitle=subtitle))


def lowdata_panel(summary: pd.DataFrame, title: str, subtitle: list[str] | None = None) -> alt.FacetChart:
    """Top-1 / base top-1 (mean ± sd over seeds) against the target's images per class, one line per treatment
    and depth, one facet per architecture (:func:`mkf_utils.controls.lowdata_summary`); the dotted line at 1 is
    the base trained on as few images."""
    summary = summary[summary.treatment != "base"]
    sizes = sorted(summary.per_class.unique()) or [1]
    x = alt.X("per_class:Q", title="target images per class", axis=alt.Axis(values=sizes),
              scale=alt.Scale(type="log", domain=[min(sizes), max(sizes)]))
    y = alt.Y("rel_ratio:Q", title="top-1 / base top-1 (base on as few images)", scale=alt.Scale(zero=False))
    color = alt.Color("series:N", title="treatment")
    tooltip = ["architecture", "series", "per_class", alt.Tooltip("rel_ratio:Q", format=".3f"),
               alt.Tooltip("top1:Q", format=".3f"), "runs"]
    base = alt.Chart()
    layers = alt.layer(
        base.mark_rule(color="gray", strokeDash=[2, 2]).encode(y=alt.datum(1)),
        base.mark_line(point=True).encode(x=x, y=y, color=color, tooltip=tooltip),
        base.transform_calculate(lo="datum.rel_ratio - datum.rel_ratio_sd", hi="datum.rel_ratio + datum.rel_ratio_sd"
                                 ).mark_rule().encode(x=x, y="lo:Q", y2="hi:Q", color=color),
        data=summary)
    return layers.properties(width=260, height=220).facet(column=alt.Column("architecture:N", title=None)).properties(
        title=alt.Title(title, subtitle=subtitle or []))


def curves_panel(curves: pd.DataFrame, color: str, title: str) -> alt.FacetChart:
    """Test top-1 against the epoch (mean over seeds), one line per value of ``color``, one facet per architecture:
    runs' curves (:func:`mkf_utils.study.curves`)."""
    return alt.Chart(curves).mark_line(point=True).encode(
        x=alt.X("epoch:Q", title="epoch"), y=alt.Y("mean(top1):Q", title="test top-1", scale=alt.Scale(zero=False)),
        color=alt.Color(f"{color}:O", title=color.replace("_", " ")),
        tooltip=["architecture", color, "epoch", alt.Tooltip("mean(top1):Q", format=".3f")]).properties(
        width=260, height=220).facet(column=alt.Column("architecture:N", title=None)).properties(title=title)


def lowdata_chart(summary: pd.DataFrame, curves: pd.DataFrame, subtitle: list[str]) -> alt.VConcatChart:
    """The little-target-data chart: the :func:`lowdata_panel` of ``summary``
    (:func:`mkf_utils.controls.lowdata_summary`) over the bases' test curves (:func:`curves_panel`, one line per
    target size)."""
    return alt.vconcat(
        lowdata_panel(summary, "Little target data: sources trained on a whole half", subtitle),
        curves_panel(curves, "per_class", "The bases during training: did each size converge?"),
    ).resolve_scale(color="independent")


def retention_bars(areas: pd.DataFrame, order: list[str]) -> alt.FacetChart:
    """Figure 5's bars: each net's (and AlexNet's) relative top-1 at its deepest unit and area under its curve
    (:func:`mkf_utils.retention.retention_areas`), in ``order``."""
    data = areas.melt(id_vars=["architecture", "depths"], value_vars=["deepest", "auc"], var_name="measure")
    header = alt.Header(labelExpr="datum.value == 'auc' ? 'area under the curve' : 'at the deepest unit'")
    return alt.Chart(data).mark_bar().encode(
        x=alt.X("architecture:N", sort=order, title=None), y=alt.Y("value:Q", title="relative top-1"),
        color=alt.Color("architecture:N", sort=order), column=alt.Column("measure:N", title=None, header=header),
        tooltip=["architecture", "measure", alt.Tooltip("value:Q", format=".3f"), "depths:Q"]).properties(width=150,
                                                                                                           height=240)


def study_chart(plotted: pd.DataFrame, curves: pd.DataFrame, largest: pd.DataFrame, target: str, title: str,
                subtitle: list[str]) -> alt.HConcatChart:
    """The budget study: base top-1, relative top-1 at full depth and wall time against the budget (the rows of
    :func:`mkf_utils.study.series`), and the largest budget's test top-1 during training (``curves`` of the runs
    ``largest``)."""
    x = alt.X("image_epochs:Q", title="training budget: images per class × epochs", scale=alt.Scale(type="log"))
    net = alt.Color("net:N", title="net (recipe)", legend=alt.Legend(labelLimit=420))
    bases = plotted[plotted.treatment == "base"].assign(half=lambda d: d.target)
    a = dashed_lines(
        alt.Chart(bases), x=x, y=alt.Y("mean(top1):Q", title="base top-1", scale=alt.Scale(zero=False)),
        color=net, strokeDash=dash("half:N", "half (bases)")).properties(
        title="a. base top-1", width=260, height=220)
    treated = plotted[plotted.treatment != "base"]
    b = dashed_lines(
        alt.Chart(treated), x=x,
        y=alt.Y("mean(rel_ratio):Q", title=f"top-1 / base top-1 (into {target}, all units)",
                scale=alt.Scale(zero=False)),
        color=net, strokeDash=dash("treatment:N", "treatment")).properties(
        title="b. relative top-1 at full depth", width=260, height=220)
    c = dashed_lines(
        alt.Chart(plotted), x=x, y=alt.Y("mean(minutes):Q", title="training time per run (min)"), color=net,
        strokeDash=dash("treatment:N", "treatment")).properties(title="c. wall time", width=260, height=220)
    d = dashed_lines(
        alt.Chart(curves), x=alt.X("epoch:Q", title="epoch"),
        y=alt.Y("mean(top1):Q", title=f"test top-1 on {target}", scale=alt.Scale(zero=False)),
        color="architecture:N", strokeDash=dash("treatment:N", "treatment")).properties(
        title=f"d. during training, largest budget ({largest.per_class.iloc[0]} × {largest.epochs.iloc[0]})",
        width=260, height=220)
    return alt.hconcat(a, b, c, d).resolve_scale(strokeDash="independent").properties(
        title=alt.Title(title, subtitle=subtitle))


def generality_chart(sims: pd.DataFrame, fits: pd.DataFrame, clusters: pd.DataFrame, scales: pd.DataFrame,
                     mk_summary: pd.DataFrame | None, k: int, close: float, title: str,
                     subtitle: list[str]) -> alt.VConcatChart:
    """The generality figure: a. similarity per unit of each pair of nets; b-e (with DS-CNNs). master key fit,
    k-means share and layer scale per unit; d. the master key treatments (when ``mk_summary`` has runs)."""
    a = alt.Chart(sims).mark_line(point=True).encode(
        x=alt.X("rel_depth:Q", title="relative depth (unit / units)", scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("similarity:Q", title="mean best-match |cos|", scale=alt.Scale(zero=False)),
        color=alt.Color("pair:N", sort=PAIRS), tooltip=["unit", "kernel", "similarity"],
    ).properties(width=260, height=200).facet(column=alt.Column("architecture:N", title=None)).properties(
        title="a. filter similarity between two nets, per unit")
    panels = [a]
    if len(fits):
        depth = alt.X("rel_depth:Q", title="relative depth", scale=alt.Scale(domain=[0, 1]))
        b = dashed_lines(
            alt.Chart(fits), x=depth, y=alt.Y("explained:Q", title="variance explained by a·f_k + b"),
            color=alt.Color("model:N"), strokeDash=dash("architecture:N", "architecture")).properties(
            width=260, height=200, title="b. master key filters: best fit per filter (mean)")
        c = dashed_lines(
            alt.Chart(clusters), x=depth, y=alt.Y("share_close:Q", title=f"share within cos {close} of a centre"),
            color=alt.Color("model:N"), strokeDash=dash("architecture:N", "architecture")).properties(
            width=260, height=200, title=f"c. k-means (k = {k}) over one net's units")
        e = dashed_lines(
            alt.Chart(scales), x=depth,
            y=alt.Y("layer_scale:Q", title="mean |layer scale| of the unit's block", scale=alt.Scale(type="log")),
            color=alt.Color("model:N"), strokeDash=dash("architecture:N", "architecture")).properties(
            width=260, height=200, title="e. how much each block's branch counts (init 1e-6)")
        panels.append(alt.hconcat(b, c, e))
    if mk_summary is not None and len(mk_summary):
        base = alt.Chart(mk_summary).encode(x=alt.X("treatment:N", sort=MK_TREATMENTS, title=None),
                                            xOffset="direction:N", color=alt.Color("direction:N"))
        d = (base.mark_rule().encode(y=alt.Y("lo:Q", title="top-1 / base top-1 (mean ± sd over seeds)",
                                             scale=alt.Scale(zero=False)), y2="hi:Q")
             + base.mark_point(filled=True, size=60).encode(y="mean:Q")).properties(
            width=300, height=200, title="d. ConvNeXt-atto, all depthwise units frozen to ...")
        panels.append(d)
    return alt.vconcat(*panels).resolve_scale(color="independent", strokeDash="independent").properties(
        title=alt.Title(title, subtitle=subtitle))


def table_heatmap(summary: pd.DataFrame, title: str) -> alt.Chart:
    """A transfer table as a heatmap: one row per column of the table (base, controls, each source copied from),
    one column per target (per net and target when there are several nets), colour = top-1 / base top-1 of the
    same seed and target, text = mean top-1 (at full depth; a copied column at several depths shows each)."""
    many = summary.architecture.nunique() > 1
    data = summary.assign(into=summary.architecture + " on " + summary.target if many else summary.target,
                          row=summary.treatment + summary.apply(
                              lambda r: f" (n={r.n})" if 0 < r.n < r.n_units else "", axis=1))
    rows, into = list(dict.fromkeys(data.row)), list(dict.fromkeys(data["into"]))
    y = alt.Y("row:N", sort=rows, title=None, axis=alt.Axis(labelLimit=400))
    tilt = 0 if max(map(len, into)) <= 14 else -20
    x = alt.X("into:N", title="target", sort=into, axis=alt.Axis(labelAngle=tilt, labelLimit=400))
    tooltip = ["architecture", "target", "treatment", "n", alt.Tooltip("top1:Q", format=".3f"),
               alt.Tooltip("top1_sd:Q", format=".3f"), alt.Tooltip("rel_ratio:Q", format=".3f"), "runs"]
    base = alt.Chart(data).encode(x=x, y=y)
    cells = base.mark_rect().encode(color=alt.Color("rel_ratio:Q", title="top-1 / base",
                                                    scale=alt.Scale(scheme="redblue", domainMid=1)), tooltip=tooltip)
    text = base.mark_text(fontSize=11).encode(text=alt.Text("top1:Q", format=".3f"))
    return (cells + text).properties(title=title, width=max(120, 90 * data["into"].nunique()),
                                     height=max(120, 22 * len(rows)))


def table_chart(summary: pd.DataFrame, paired: pd.DataFrame, title: str, subtitle: list[str]) -> alt.HConcatChart:
    """A transfer table's figure: the :func:`table_heatmap` beside the :func:`interval_panel` of its paired
    differences (coloured by net when the table has several, else by target)."""
    color = "architecture" if paired.architecture.nunique() > 1 else "direction"
    return alt.hconcat(table_heatmap(summary, "a. mean top-1 (colour: top-1 / base)"),
                       interval_panel(paired, "b. paired differences (same seed)", color)).properties(
        title=alt.Title(title, subtitle=subtitle + ["Colour: top-1 / base top-1 of the same seed and target; text: "
                                                    "mean top-1 over seeds."]))


def source_size_chart(sized: pd.DataFrame, summary: pd.DataFrame, title: str, subtitle: list[str]) -> alt.HConcatChart:
    """The source-size table's figure: :func:`source_size_panel` of the copied columns against random-frozen and the
    base (``sized``: :func:`mkf_utils.tables.by_source`) beside the :func:`table_heatmap`."""
    sized = sized[sized.against.isin(["random-frozen", "base"])]
    return alt.hconcat(source_size_panel(sized, "a. copied filters against the source's size"),
                       table_heatmap(summary, "b. mean top-1 (colour: top-1 / base)")).properties(
        title=alt.Title(title, subtitle=subtitle + ["Colour: top-1 / base top-1 of the same seed and target; text: "
                                                    "mean top-1 over seeds."]))


def source_size_panel(paired: pd.DataFrame, title: str) -> alt.LayerChart:
    """Paired differences against the number of source images (``images``, log axis): one line per comparison
    kind (``against``: what the copied filters are compared with), net (dash) and target, with 95% intervals."""
    x = alt.X("images:Q", title="source training images", scale=alt.Scale(type="log"))
    y = alt.Y("mean:Q", title="paired difference of top-1 (95% interval)")
    color = alt.Color("against:N", title="copied filters minus")
    tooltip = ["architecture", "source", "direction", "comparison", "images", alt.Tooltip("mean:Q", format="+.3f"),
               alt.Tooltip("low:Q", format="+.3f"), alt.Tooltip("high:Q", format="+.3f"), "pairs"]
    base = alt.Chart().encode(x=x, color=color, strokeDash=alt.StrokeDash("architecture:N", title="net"),
                              detail="direction:N")
    return alt.layer(alt.Chart().mark_rule(color="gray", strokeDash=[2, 2]).encode(y=alt.datum(0)),
                     base.mark_line().encode(y=y),
                     base.mark_rule().encode(y="low:Q", y2="high:Q"),
                     base.mark_point(filled=True, size=50).encode(y=y, shape=alt.Shape("direction:N", title="target"),
                                                                  tooltip=tooltip),
                     data=paired).properties(title=title, width=320, height=240)


def depth_chart(summary: pd.DataFrame, paired: pd.DataFrame, title: str, subtitle: list[str]) -> alt.VConcatChart:
    """Figure 3's layout for any treatments: top-1 / base top-1 against the transfer depth, a
    :func:`transfer_panel` per net (columns) and direction (rows) from :func:`summarize` ``by_target`` (colour =
    treatment, alike in every panel), over the :func:`paired_panel`."""
    directions = list(summary.direction.dropna().unique())
    nets = list(dict.fromkeys(summary.architecture))
    treatments = sorted(summary.treatment.unique())
    rows, letters = [], iter("abcdefghijklmnopqrstuvwxyz")
    for d in directions:
        cells = [summary[(summary.direction == d) & (summary.architecture == a)] for a in nets]
        rows.append(alt.hconcat(*[transfer_panel(c, "rel_ratio", f"{next(letters)}. {a}, {d}", color="treatment",
                                                 dashed="architecture", color_order=treatments)
                                  for a, c in zip(nets, cells) if len(c)]))
    return alt.vconcat(alt.vconcat(*rows), paired_panel(paired, f"{next(letters)}. paired differences (same seed)")
                       ).resolve_scale(color="independent").properties(title=alt.Title(title, subtitle=subtitle))


_MEAN_SD = "Mean ± sd over seeds"
_YOSINSKI_NOTE = f"Dashed grey: {YOSINSKI_LABEL} into the same half, n / {YOSINSKI_UNITS}."


def figure3_chart(table: pd.DataFrame, paired: pd.DataFrame, halves: list[str], subtitle: list[str]) -> alt.VConcatChart:
    """Figure 3 from its run table: top-1 / base against n / N into each half (``halves``, the first into the
    second's target as panel a) with Yosinski's AlexNet, the share of parameters frozen, and the ``paired``
    differences (:func:`~mkf_utils.stats.paired_differences`)."""
    summary = summarize(table, by_target=True)
    panels = [transfer_panel(summary[summary.target == target], "rel_ratio", f"{'ab'[i]}. {halves[1 - i]} → {target}",
                             yosinski_reference(target)) for i, target in enumerate(halves)]
    panels.append(transfer_panel(summarize(table), "frozen_fraction", "c. parameters frozen", treatments=["AnB"]))
    return alt.vconcat(alt.hconcat(*panels), paired_panel(paired, "d. paired differences (same seed)")).properties(
        title=alt.Title("Figure 3: man-made ↔ natural transfer of the first n units",
                        subtitle=subtitle + one_depth_note(table) + [f"{_MEAN_SD}. {_YOSINSKI_NOTE}"]))


def figure4_chart(table: pd.DataFrame, subtitle: list[str]) -> alt.HConcatChart:
    """Figure 4 from its run table (the last n units frozen): relative top-1 as a ratio and a difference, and the
    share of parameters frozen, against n / N, over seeds and both directions."""
    summary, x_title = summarize(table), "share of units frozen from the last one (n / N)"
    return alt.hconcat(
        transfer_panel(summary, "rel_ratio", "a. relative top-1 (ratio)", x_title=x_title),
        transfer_panel(summary, "rel_diff", "b. relative top-1 (difference)", x_title=x_title),
        transfer_panel(summary, "frozen_fraction", "c. parameters frozen", treatments=["AnB"], x_title=x_title),
    ).properties(title=alt.Title("Figure 4: reverse freezing, the last n units copied from the other half and frozen",
                                 subtitle=subtitle + one_depth_note(table)
                                 + [f"{_MEAN_SD} and both directions."]))


def full_depth_points(summary: pd.DataFrame, order: list[str]) -> alt.Chart:
    """Figure 5's panel c: each net's mean top-1 on the target for its base and, with all units frozen, AnB (with
    trained and, where run, frozen norms) and random-frozen (from :func:`summarize`), nets in ``order``: a retention
    is read against the base it divides by."""
    data = summary[(summary.n == 0) | (summary.n == summary.n_units)].copy()
    data["run"] = data.treatment.where(data.n > 0, "base")
    data = data.drop_duplicates(["architecture", "run"])
    kinds = ["base", "AnB", "AnB norm-frozen", "random-frozen"]
    return alt.Chart(data[data.run.isin(kinds)]).mark_point(filled=True, size=90).encode(
        x=alt.X("architecture:N", sort=order, title=None), xOffset=alt.XOffset("run:N", sort=kinds),
        y=alt.Y("top1:Q", title="top-1 on the target", scale=alt.Scale(zero=False)),
        color=alt.Color("architecture:N", sort=order),
        shape=alt.Shape("run:N", sort=kinds, title="c. runs", scale=alt.Scale(range=["circle", "square", "diamond",
                                                                                     "triangle-down"])),
        tooltip=["architecture", "run", alt.Tooltip("top1:Q", format=".3f"), "runs"]).properties(
        title="c. top-1: base, and all units frozen", width=220, height=240)


def figure5_chart(summary: pd.DataFrame, areas: pd.DataFrame, source: str, target: str, order: list[str],
                  subtitle: list[str]) -> alt.HConcatChart:
    """Figure 5 from its run table's :func:`summarize` (one direction, ``source`` → ``target``): each net's
    relative top-1 against n / N with Yosinski's AlexNet, the retention ``areas``
    (:func:`mkf_utils.retention.retention_areas`, from the same summary) as bars in ``order``, and the top-1 each
    ratio divides by (:func:`full_depth_points`)."""
    areas = areas.set_index("architecture").loc[[a for a in order if a in set(areas.architecture)]].reset_index()
    depths = "; ".join(f"{r.architecture}: {r.depths}" for r in areas.itertuples())
    return alt.hconcat(
        transfer_panel(summary, "rel_ratio", f"a. relative top-1, {source} → {target}",
                       yosinski_reference(target=target), color_order=order),
        retention_bars(areas, order).properties(title="b. retention summary"),
        full_depth_points(summary, order),
    ).resolve_scale(color="shared", xOffset="independent").properties(
        title=alt.Title("Figure 5: accuracy retention across ResNet depths", subtitle=subtitle + [
            f"{_MEAN_SD}. {_YOSINSKI_NOTE}", f"Areas: trapezoids over each curve's measured depths ({depths})."]))


def loss_curves_panel(curves: pd.DataFrame, title: str) -> alt.FacetChart:
    """Training loss against the epoch (mean over seeds), one line per treatment and depth, one facet per net and
    target: the runs' per-epoch metrics (:func:`mkf_utils.study.curves` with ``treatment``, ``n``, ``n_units``,
    ``target`` and ``architecture``), the targets' bases included."""
    data = curves.assign(depth=(curves.n.astype(str) + "/" + curves.n_units.astype(str)).where(curves.n > 0, "none"))
    order = data.assign(share=data.n / data.n_units).sort_values(["share", "n_units"]).depth.unique().tolist()
    return dashed_lines(
        alt.Chart(data), x=alt.X("epoch:Q", title="epoch"),
        y=alt.Y("mean(train_loss):Q", title="training loss", scale=alt.Scale(zero=False)),
        color=alt.Color("treatment:N", title="treatment"), strokeDash=dash("depth:N", "units frozen (n/N)", order),
        tooltip=["architecture", "target", "treatment", "depth", "epoch",
                 alt.Tooltip("mean(train_loss):Q", format=".3f")]).properties(width=300, height=220).facet(
        column=alt.Column("architecture:N", title=None), row=alt.Row("target:N", title="into")).properties(title=title)


def pointwise_chart(table: pd.DataFrame, paired: pd.DataFrame, subtitle: list[str], curves: pd.DataFrame | None = None,
                    loss_paired: pd.DataFrame | None = None) -> alt.VConcatChart:
    """The pointwise table's chart: top-1 / base against the share of units frozen, and the paired
    differences; with ``curves`` (:func:`loss_curves_panel`, the transfers' targets only) and ``loss_paired`` (of
    the final training loss), the training loss during training and its paired differences beside it."""
    panels = [transfer_panel(summarize(table, by_target=True), "rel_ratio",
                             "a. top-1 / base against the units frozen"),
              paired_panel(paired, "b. paired differences (same seed)")]
    if curves is not None:
        targets = table[table.treatment != "base"].target.unique()
        panels.append(loss_curves_panel(curves[curves.target.isin(targets)], "c. training loss during training"))
    if loss_paired is not None:
        panels.append(paired_panel(loss_paired, "d. paired differences of the final training loss (same seed)",
                                   "training loss"))
    return alt.vconcat(*panels).resolve_scale(color="independent", strokeDash="independent").properties(
        title=alt.Title("Pointwise (1x1) filters transferred",
                        subtitle=subtitle + [f"{_MEAN_SD}; x: n / N of the net's units (pointwise layers, or blocks for "
                                             "'separable': their depthwise and pointwise layers together)."]))

"""The transfer tables: profile sections, missing datasets, and the readings (mkf_utils.tables) on constructed
tables."""
from __future__ import annotations

import pandas as pd
import pytest

import mkf_utils.data
from mkf_utils import tables
from mkf_utils.errors import MKFError
from mkf_utils.experiments import relative_accuracy
from mkf_utils.figures import section_runs, table_datasets
from mkf_utils.profiles import load_profile, section_plan
from mkf_utils.runs import RunStore
from mkf_utils.stats import paired_differences

pytestmark = pytest.mark.unit


def _table(gains: dict[tuple[str, str | None], list[float]], source_architecture: str = "C") -> pd.DataFrame:
    """Three seeds into the natural half: a base at 0.50, 0.52, 0.54 and each (treatment, source) at base + gain."""
    rows = [{"architecture": "C", "treatment": "base", "source": None, "source_architecture": None,
             "direction": "natural", "target": "natural", "n": 0, "n_units": 12, "seed": s, "top1": 0.50 + 0.02 * s}
            for s in range(3)]
    rows += [{"architecture": "C", "treatment": t, "source": src, "source_architecture": source_architecture if src
              else None, "direction": f"{src}→natural" if src else "natural", "target": "natural", "n": 12,
              "n_units": 12, "seed": s, "top1": 0.50 + 0.02 * s + g[s]} for (t, src), g in gains.items()
             for s in range(3)]
    return relative_accuracy(pd.DataFrame(rows))


def _paired(table: pd.DataFrame) -> pd.DataFrame:
    cols = tables.columns(table)
    return paired_differences(cols, tables.comparisons(cols.treatment))


def test_each_source_is_a_column_paired_with_the_targets_controls():
    t = _table({("AnB", "man-made"): [0.0, 0.01, 0.0], ("AnB", "fashion"): [-0.03, -0.04, -0.02],
                ("random-frozen", None): [0.0, 0.0, 0.01], ("identity", None): [-0.06, -0.05, -0.07]})
    paired = _paired(t)
    got = dict(zip(paired.comparison, paired["mean"].round(4)))
    assert got["AnB from fashion − random-frozen"] == -0.0333 and got["identity − base"] == -0.06
    assert set(paired.pairs) == {3} and set(paired.direction) == {"natural"}
    lines = tables.reading(paired)
    assert "the filters are needed here" in lines[0]
    assert any(line.startswith("  - AnB from fashion does worse than random-frozen") for line in lines)
    assert any("AnB from man-made against random-frozen filters" in line and "cannot be told apart" in line
               for line in lines)
    assert list(tables.matrix(tables.summary(tables.columns(t))).index) == [
        "base", "AnB from man-made", "AnB from fashion", "random-frozen", "identity"]


def test_without_an_identity_floor_below_the_base_no_generality_is_read():
    t = _table({("AnB", "man-made"): [0.03, 0.04, 0.05], ("random-frozen", None): [0.0, 0.0, 0.0],
                ("identity", None): [0.0, 0.01, -0.01]})
    lines = tables.reading(_paired(t))
    assert "no reading about generality is made here" in lines[0]
    assert not any("carry what the target needs" in line for line in lines)


def test_other_architectures_name_their_net_and_sizes_are_compared_with_the_smallest():
    t = _table({("AnB", "man-made"): [0.0, 0.0, 0.0]}, source_architecture="N")
    assert list(tables.columns(t).treatment) == ["base"] * 3 + ["AnB from N on man-made"] * 3
    t = _table({("AnB", "A 10"): [0.00, 0.01, 0.00], ("AnB", "A"): [0.03, 0.04, 0.05]})
    cols = tables.columns(t)
    paired = paired_differences(cols, tables.source_comparisons("AnB", ["A 10", "A"]))
    lines = tables.size_reading(paired, "AnB", ["A 10", "A"])
    assert "AnB from A − AnB from A 10: +0.037" in lines[1] and lines[-1].endswith("a larger source gives better filters.")


def test_each_source_is_compared_with_the_floor_and_the_reading_names_which_beat_it(tmp_path):
    t = _table({("AnB", "cifar10"): [0.04, 0.05, 0.06], ("AnB", "fashion"): [0.0, 0.03, -0.01],
                ("AnB", "synthetic"): [0.0, 0.0, 0.0], ("random-frozen", None): [0.0, 0.0, 0.0]})
    datasets = pd.DataFrame({"dataset": ["cifar10", "fashion", "synthetic", "natural"], "images": [10, 6, 1, 6],
                             "source": [True, True, True, False], "missing": ""})
    _, paired, _ = tables.save(t, datasets, tmp_path, "x", floor="synthetic")
    floor = paired[paired.comparison.str.endswith("− AnB from synthetic")]
    assert dict(zip(floor.comparison, floor["mean"].round(4))) == {"AnB from cifar10 − AnB from synthetic": 0.05,
                                                                   "AnB from fashion − AnB from synthetic": 0.0067}
    lines = tables.floor_reading(paired)
    assert lines[0].startswith("- **C into natural**: filters from each source against filters trained on synthetic")
    assert lines[-1] == ("  - so here filters from cifar10 beat those trained on synthetic; filters from fashion "
                         "cannot be told from those trained on synthetic.")
    assert not any("− AnB from synthetic" in line for line in tables.reading(paired))  # the floor's lines: its own
    into_b = t[t.source.ne("synthetic")].assign(  # a second target, the floor not trained into it yet: no lines
        target="man-made", direction=lambda d: d.direction.str.replace("natural", "man-made"))
    _, both, _ = tables.save(pd.concat([t, into_b]), datasets, tmp_path, "x", floor="synthetic")
    assert (both[both.direction.eq("man-made") & both.comparison.str.endswith("from synthetic")].pairs == 0).all()
    assert tables.floor_reading(both) == lines
    _, without, _ = tables.save(t, datasets, tmp_path, "x", floor="plants")  # not a source: no floor comparisons
    assert not without.comparison.str.contains("− AnB from").any() and tables.floor_reading(without) == []


def test_table_sections_are_checked_and_missing_datasets_left_out(monkeypatch, tmp_path, capsys):
    with pytest.raises(MKFError, match=r"crossdataset names datasets \['plants'\]"):
        load_profile("smoke", {"crossdataset": {"sources": ["plants"]}})
    with pytest.raises(MKFError, match=r"crossarch.source_architectures names \['ConvNeXt-huge'\]"):
        load_profile("smoke", {"crossarch": {"source_architectures": ["ConvNeXt-huge"]}})
    monkeypatch.setattr(mkf_utils.data, "FASHION_ROOTS", ())
    P = load_profile("smoke")
    found = table_datasets(P, "crossdataset").set_index("dataset")
    assert "apt-get install dataset-fashion-mnist" in found.missing["fashion"]
    assert found.missing["natural"] == "" and found.images["natural"] == 6 * P.data.per_class
    assert len(section_plan(P, "crossdataset")) == 14
    runs, shown, planned = section_runs(P, "crossdataset", RunStore(tmp_path), recorded_only=True, skip=["fashion"])
    assert (shown, planned) == (0, 7)  # into natural: base, 2 sources, 2 copies, 2 controls; fashion's 7 runs left out


def test_a_bank_of_copied_filters_is_a_column_against_a_random_bank_of_its_size():
    """The setting the controls may find (few distinct filters) as a table column: k-means centres of each source's
    filters, against k random init filters."""
    t = _table({("A-centres k=4", "man-made"): [0.02, 0.03, 0.02], ("random k=4", None): [0.0, 0.0, 0.0]})
    cols = tables.columns(t)
    assert set(cols.treatment) == {"base", "A-centres k=4 from man-made", "random k=4"}
    paired = paired_differences(cols, tables.comparisons(cols.treatment))
    got = dict(zip(paired.comparison, paired["mean"].round(4)))
    assert got["A-centres k=4 from man-made − random k=4"] == 0.0233

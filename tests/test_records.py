"""The committed figures against the committed run records: every run a figure's table names has its record
in `runs/` (config, per-epoch metrics, result), tracked in git, and the table's top-1 is the record's."""
from __future__ import annotations

import io
import json
import subprocess
from functools import cache
from pathlib import Path

import pandas as pd
import pytest

from mkf_utils.runfolder import RunFolder

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
FOLDER = RunFolder(".")
RECORD = tuple(f.name for f in (FOLDER.config_file, FOLDER.metrics_file, FOLDER.result_file))  # always there
TABLES = sorted(p for p in (ROOT / "paper_figures").glob("*/*.csv") if "run_id" in p.read_text().split("\n", 1)[0].split(","))


@cache
def tracked_records() -> frozenset[str]:
    """Paths under runs/ that git tracks (on a clean clone: the files there); without git, those on disk."""
    try:
        out = subprocess.run(["git", "ls-files", "runs"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return frozenset(str(p.relative_to(ROOT)) for p in (ROOT / "runs").glob("*/*"))
    return frozenset(out.split())


def test_the_record_check_covers_the_evidence_figures():
    """The check below is parametrised by a glob: it must reach the tables the README's results come from."""
    covered = {f"{p.parent.name}/{p.stem}" for p in TABLES}
    assert {"evidence/figure3", "evidence/figure4", "evidence/figure5", "evidence-gpu/figure3", "quick/figure3"} <= covered


@pytest.mark.integration  # asks git which records are tracked
@pytest.mark.parametrize("table", TABLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_run_in_a_figure_has_its_record(table: Path):
    df = pd.read_csv(table)
    tracked = tracked_records()
    missing = sorted(f"runs/{i}/{f}" for i in set(df.run_id) for f in RECORD if f"runs/{i}/{f}" not in tracked)
    assert not missing, f"{table.name} names runs whose records are not committed: {missing[:5]} (run `make records`)"
    if "epoch" in df.columns:  # a table of curves: each row is one epoch of a run's metrics.csv
        for rid, rows in df.groupby("run_id"):
            recorded = pd.read_csv(RunFolder(ROOT / "runs" / rid).metrics_file).set_index("epoch").top1
            assert rows.top1.to_numpy() == pytest.approx(recorded[rows.epoch].to_numpy(), abs=1e-9), \
                f"{table.name}: {rid}'s curve differs from its metrics.csv"
        return
    for row in df.itertuples():
        recorded = json.loads(RunFolder(ROOT / "runs" / row.run_id).result_file.read_text())["top1"]
        assert row.top1 == pytest.approx(recorded, abs=1e-9), f"{table.name}: {row.run_id} top-1 differs from its record"


@pytest.mark.integration
def test_the_run_index_is_current(tmp_path):
    """runs/INDEX.csv is what `mkf index` writes for the committed records (`make records` rewrites it)."""
    import shutil

    from mkf_utils.runindex import index
    from mkf_utils.runs import RunStore

    for name in tracked_records():
        if name.count("/") == 2:
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / name, tmp_path / name)
    fresh = index(RunStore(tmp_path / "runs"))
    committed = pd.read_csv(ROOT / "runs" / "INDEX.csv", dtype={"run_id": str}, keep_default_na=False, na_values=[""])
    expected = pd.read_csv(io.StringIO(fresh.to_csv(index=False)), dtype={"run_id": str}, keep_default_na=False,
                           na_values=[""])
    pd.testing.assert_frame_equal(committed, expected, obj="runs/INDEX.csv (run `make records` to rewrite it)")


@pytest.mark.parametrize("folder", sorted(p for p in (ROOT / "paper_figures").iterdir() if p.is_dir()), ids=lambda p: p.name)
def test_each_results_page_is_what_make_results_writes(folder: Path):
    from mkf_utils.results import page

    assert (folder / "README.md").read_text() == page(folder), f"run `make results` to rewrite {folder.name}/README.md"


def test_the_readmes_quoted_differences_are_the_committed_ones():
    """Every paired difference the README quotes (a line "`<profile>/<figure>: <comparison>[, <architecture>][,
    <direction>][, <images>/class][, n = <depth>]` <interval text>") is the one in that figure's committed
    *_paired.csv, in the words `mkf_utils.stats.interval_text` writes."""
    import re

    from mkf_utils.stats import interval_text

    quoted = re.findall(r"`([\w-]+)/(\w+): (.+? − .+?)(?:, ([A-Z][\w.-]*(?: [a-z]+)?))?(?:, (\S+→\S+))?"
                        r"(?:, (\d+)/class)?(?:, n = (\d+))?` "
                        r"([+-]\d\.\d{3}(?: \[[^]]+\])? \(\d+ pairs?\))", (ROOT / "README.md").read_text())
    assert quoted, "the README quotes no paired difference in the form this test reads"
    for profile, figure, comparison, arch, direction, size, n, text in quoted:
        paired = pd.read_csv(ROOT / "paper_figures" / profile / f"{figure}_paired.csv")
        rows = paired[(paired.comparison == comparison) & ((paired.architecture == arch) if arch else True)
                      & ((paired.direction == direction) if direction else True) & ((paired.n == int(n)) if n else True)
                      & ((paired.per_class == int(size)) if size else True)]
        assert len(rows) == 1, f"README quotes {profile}/{figure}: {comparison}, which its paired table has {len(rows)} times"
        assert interval_text(rows.iloc[0]) == text, f"README quotes {comparison} as {text}: rebuild or requote"

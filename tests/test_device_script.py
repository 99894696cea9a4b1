"""scripts/device_evidence.sh, the one prepared script a lent GPU machine runs, dry-run on the CPU: it trains a
profile's missing runs for a set time, packs the record files written there (never the committed ones), then runs
the throughput benchmark."""
from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from mkf_utils.runfolder import RunFolder

pytestmark = pytest.mark.integration
REPO = Path(__file__).parents[1]


def test_the_gpu_script_trains_for_its_minutes_and_packs_what_it_wrote(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path / "out"), "STORE": str(tmp_path / "store"), "MINUTES": "0.05",
           "HARD": "120", "SMOKE": "0", "PY": sys.executable, "OMP_NUM_THREADS": "1",
           "BENCH_ARGS": "--device cpu --steps 3 --batch 8 --models resnet18 --image-size 32"}
    folder = RunFolder(".")  # what runs/ holds when the script starts (a training queue may add to it meanwhile)
    committed = {p.name for p in (REPO / "runs").iterdir() if (p / folder.result_file.name).exists()}
    run = subprocess.run(["bash", "scripts/device_evidence.sh", "smoke", "figure3"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=300)
    log = run.stdout + run.stderr
    assert "did not start before the deadline" in log  # the time limit stopped the plan
    with tarfile.open(tmp_path / "out" / "records.tar") as tar:
        names = tar.getnames()
    record = {getattr(folder, role).name for role in RunFolder.RECORD}
    finished = {n.split("/")[0] for n in names if n.endswith(folder.result_file.name)}
    assert finished and f"runs finished here: {len(finished)}" in log
    assert all(n.split("/")[1] in record for n in names)
    assert not finished & committed  # copied records are not sent back
    store = tmp_path / "store"  # it started from the records alone: no weights or checkpoints travelled
    assert committed <= {p.name for p in store.iterdir() if (p / folder.result_file.name).exists()}
    assert not any((store / rid / name).exists() for rid in committed
               for name in (folder.weights_file.name, folder.checkpoint_file.name))
    assert "engine/bare" in (tmp_path / "out" / "benchmark.txt").read_text()  # then the benchmark ran

"""The local executor: parallel workers give the same runs as the sequential path, and failures are contained."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from conftest import TINY
from mkf_utils import executor
from mkf_utils.config import load_config, run_id
from mkf_utils.errors import MKFError
from mkf_utils.executor import run_parallel
from mkf_utils.experiments import run_plan
from mkf_utils.plans import ab_plan
from mkf_utils.runfolder import RunFolder
from mkf_utils.runs import RunStore

pytestmark = pytest.mark.integration

ARCHS = {"ConvNeXt-atto": {"model": {"name": "convnext_atto", "stem_stride": 2}, "units": "depthwise"}}
COMMON = {"data": {"name": "synthetic", "per_class": 32, "batch_size": 32}, "optim": {"epochs": 1, "lr": 0.05}}


def test_parallel_equals_sequential(tmp_path):
    plan = ab_plan(ARCHS, {"A": "random-a:0", "B": "random-b:0"}, {"AnB": [1.0], "random-frozen": [1.0]}, [0], COMMON)
    parallel = run_plan(plan, RunStore(tmp_path / "p"), log=None, workers=2, threads=1)
    old = torch.get_num_threads()
    torch.set_num_threads(1)  # the same thread count as each worker: the same float sums
    try:
        sequential = run_plan(plan, RunStore(tmp_path / "s"), log=None)
    finally:
        torch.set_num_threads(old)
    drop = ["train_time_s"]
    pd.testing.assert_frame_equal(parallel.drop(columns=drop), sequential.drop(columns=drop), check_exact=True)
    for rid in parallel.run_id:  # every epoch's metrics, not only the final top-1
        a = pd.read_csv(RunFolder(tmp_path / "p" / rid).metrics_file).drop(columns=["epoch_time_s", "train_img_s"])
        b = pd.read_csv(RunFolder(tmp_path / "s" / rid).metrics_file).drop(columns=["epoch_time_s", "train_img_s"])
        pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_a_failed_run_is_reported_and_the_others_finish(tmp_path):
    good = load_config(overrides=TINY + ["optim.epochs=1"])
    bad = load_config(overrides=TINY + ["optim.epochs=1", "model.name=resnet19"])
    with pytest.raises(MKFError, match=r"1 of 2 runs failed: .*unknown model 'resnet19'"):
        run_parallel([bad, good], tmp_path, workers=2, threads=1)
    assert len(RunStore(tmp_path).collect()) == 1
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 1  # no orphan folder for the failed run


def test_workers_take_their_threads_from_omp_num_threads(tmp_path, monkeypatch):
    """Two plans of one worker each on two cores, each started with OMP_NUM_THREADS=1, must not run two threads
    apiece; without the variable a lone worker takes the cores."""
    cfg = load_config(overrides=TINY + ["optim.epochs=1"])
    monkeypatch.setattr(executor, "available_cores", lambda: 2)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    [one] = run_parallel([cfg], tmp_path / "a", workers=1)
    monkeypatch.delenv("OMP_NUM_THREADS")
    [two] = run_parallel([cfg], tmp_path / "b", workers=1)
    assert (one["provenance"]["threads"], two["provenance"]["threads"]) == (1, 2)


def test_no_run_starts_after_the_deadline(tmp_path):
    """A lease on a borrowed machine: past the deadline nothing starts, the error says what is left."""
    cfg = load_config(overrides=TINY + ["optim.epochs=1"])
    with pytest.raises(MKFError, match=r"1 of 1 runs did not start before the deadline"):
        run_parallel([cfg], tmp_path, workers=1, threads=1, deadline=time.monotonic() - 1)
    assert RunStore(tmp_path).collect().empty


def test_a_run_that_needs_no_restored_source_goes_first(tmp_path):
    """A fresh clone: two transfers share a source that has a record but no weights. While one worker retrains
    that source, the other takes the independent run instead of queueing on the source's lock."""
    store = RunStore(tmp_path)
    base = load_config(overrides=TINY + ["optim.epochs=1", "data.split=random-a:0"])
    rid = store.run(base)["run_id"]
    store.folder(rid).weights_file.unlink()
    assert not store.has_weights(rid)
    first, second = (load_config(overrides=TINY + ["optim.epochs=1", "data.split=random-b:0", f"transfer.n={n}",
                                                   f"transfer.source={rid}"]) for n in (2, 4))
    other = load_config(overrides=TINY + ["optim.epochs=1", "data.split=random-b:0", "seed=1"])
    run_parallel([base, first, second, other], tmp_path, workers=2, threads=1)
    assert store.has_weights(rid)
    assert len(pd.read_csv(store.folder(rid).reproductions_file)) == 1  # retrained once

    def started(cfg):  # a run's config is written when its worker starts training it
        return store.folder(run_id(cfg)).config_file.stat().st_mtime_ns

    assert started(other) < started(second)  # before: both transfers first, the other run once one of them ended


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc (Linux)")
def test_a_worker_exits_when_its_parent_dies():
    """A plan killed by its pid leaves no worker behind: the watchdog every worker starts (``exit_with_parent``)
    ends a process whose parent died (here a grandchild started by a parent that exits at once)."""
    child = ("import os, threading, time; from mkf_utils.executor import exit_with_parent; "
             "threading.Thread(target=exit_with_parent, args=(os.getppid(), 0.05), daemon=True).start(); "
             "print(os.getpid(), flush=True); time.sleep(60)")
    parent = ("import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', sys.argv[1]], stdout=subprocess.PIPE, "
              "text=True); print(p.stdout.readline().strip(), flush=True)")  # exits without waiting for its child
    out = subprocess.run([sys.executable, "-c", parent, child], capture_output=True, text=True, timeout=60)
    status = Path(f"/proc/{int(out.stdout)}/status")
    gone = lambda: not status.exists() or "\nState:\tZ" in status.read_text()  # noqa: E731
    t = time.monotonic()
    while not gone() and time.monotonic() - t < 10:
        time.sleep(0.05)
    assert gone(), "the orphaned worker still runs"

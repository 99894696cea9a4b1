"""Cluster jobs through submitit, exercised with its local executor (real subprocesses, no mock)."""
from __future__ import annotations

import shutil

import pytest

from mkf_utils.config import run_id
from mkf_utils.errors import MKFError
from mkf_utils.plans import ab_plan
from mkf_utils.runs import RunStore
from mkf_utils.slurm import make_executor, submit_plan

pytestmark = pytest.mark.integration

ARCHS = {"ConvNeXt-atto": {"model": {"name": "convnext_atto", "stem_stride": 2}, "units": "depthwise"}}
TINY = {"data": {"name": "synthetic", "per_class": 8, "test_per_class": 4, "batch_size": 8},
        "optim": {"epochs": 1}, "runtime": {"eval_every": 1}}


def test_jobs_train_bases_first_and_a_resubmission_sends_only_what_is_missing(tmp_path):
    plan = [p.config for p in ab_plan(ARCHS, {"A": "random-a:0", "B": "random-b:0"}, {"AnB": [1.0]}, [0], TINY,
                                      targets=["B"])]
    store = RunStore(tmp_path / "runs")
    executor = make_executor("local", tmp_path / "jobs", timeout_min=10)
    jobs = submit_plan(plan, store, executor)
    assert set(jobs) == {run_id(c) for c in plan} and all(store.result(run_id(c)) for c in plan)
    assert submit_plan(plan, store, executor) == {}  # everything recorded: nothing is sent
    transfer = run_id(plan[-1])
    shutil.rmtree(store.path(transfer))  # a job lost
    assert list(submit_plan(plan, store, executor)) == [transfer]
    with pytest.raises(MKFError, match="unknown executor 'pbs'"):
        make_executor("pbs", tmp_path)


def test_a_notebook_section_submits_its_missing_runs_when_the_profile_says_so(tmp_path, capsys):
    """A profile's ``submit`` key: the figure's missing runs go to submitit's local executor (which waits), then the
    table is read from the store as usual."""
    from mkf_utils.figures import section_runs
    from mkf_utils.profiles import load_profile

    P = load_profile("smoke", {**TINY, "halves": {"man-made": "random-a:0", "natural": "random-b:0"},
                               "figure5": {"architectures": ["ResNet-18"], "treatments": {"AnB": [1.0]}},
                               "submit": {"executor": "local"}})
    store = RunStore(tmp_path / "runs")
    runs, shown, planned = section_runs(P, "figure5", store)
    assert shown == planned == len(runs) == 4 and all(store.result(r) for r in runs.run_id)  # 2 bases, AnB, rf
    assert (tmp_path / "runs" / ".submitit").is_dir()

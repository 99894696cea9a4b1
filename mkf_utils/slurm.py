"""A plan's missing runs as cluster jobs, through submitit (SLURM, or its local executor for a test or one node).

Each unfinished run becomes one job that trains it into the shared run store (:meth:`RunStore.run`: a finished
run is read, a killed one resumes from its checkpoint, the store's lock keeps two jobs off one run). Jobs go in
waves: runs whose source is already recorded (or that copy nothing) first, then the transfers from the runs of
the wave before, each with an ``afterok`` dependency on its source's job on SLURM (the local executor has no
dependencies, so :func:`submit_plan` waits for a wave before the next). Submitting again after a partial failure
sends only what is still missing.

>>> waves([{"id": "b", "source": None}, {"id": "t", "source": "b"}, {"id": "r", "source": "x"}], recorded={"x"})
[['b', 'r'], ['t']]
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import submitit
from omegaconf import DictConfig, OmegaConf

from .config import run_id
from .errors import MKFError
from .executor import train_one
from .runs import RunStore
from .transfer import uses_source


def waves(runs: list[dict], recorded: set[str]) -> list[list[str]]:
    """Run ids (``runs``: dicts of ``id`` and ``source``, the run id it copies from or None) in waves: each run in
    the wave after the one holding its source; a source outside the plan must be ``recorded``."""
    ids = {r["id"] for r in runs}
    level: dict[str, int] = {}
    todo = list(runs)
    while todo:
        ready = [r for r in todo if r["source"] is None or r["source"] in recorded or r["source"] in level]
        if not ready:
            missing = sorted({r["source"] for r in todo} - ids - recorded)
            raise MKFError(f"runs copy from sources that are neither planned nor recorded: {missing[:3]}",
                           "plan the sources too (their section's bases) or train them first")
        for r in ready:
            level[r["id"]] = level[r["source"]] + 1 if r["source"] in level else 0
            todo.remove(r)
    return [[r["id"] for r in runs if level[r["id"]] == w] for w in range(max(level.values(), default=-1) + 1)]


def make_executor(kind: str, folder: str | Path, **params: Any) -> submitit.AutoExecutor:
    """A submitit executor: ``slurm`` (needs ``sbatch``), ``local`` (subprocesses on this machine) or ``auto``
    (SLURM where it is, else local); ``params`` go to ``update_parameters`` (``timeout_min``, ``gpus_per_node``,
    ``tasks_per_node`` (one per GPU: each job then trains its run over the node's GPUs, as torchrun does),
    ``slurm_partition``, ...)."""
    if kind not in ("slurm", "local", "auto"):
        raise MKFError(f"unknown executor '{kind}'", "use slurm, local or auto")
    try:
        executor = submitit.AutoExecutor(folder=str(folder), cluster=None if kind == "auto" else kind)
    except (RuntimeError, ValueError) as e:  # no sbatch here
        raise MKFError(f"the {kind} executor is not available here ({e})", "run on a SLURM login node, or use "
                       "--executor local") from None
    executor.update_parameters(**params)
    return executor


def train_job(root: str, cfg_yaml: str) -> dict:
    """One cluster job: with several tasks (one per GPU), each sets the torch.distributed variables torchrun
    would, then all train the run together (:func:`mkf_utils.executor.train_one`)."""
    env = submitit.JobEnvironment() if "SUBMITIT_EXECUTOR" in os.environ else None
    if env is not None and env.num_tasks > 1:
        submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
    return train_one(root, cfg_yaml)


def submit_plan(configs: list[DictConfig], store: RunStore, executor: submitit.AutoExecutor,
                wait: bool | None = None) -> dict[str, submitit.Job]:
    """Submit every unfinished run of ``configs`` to ``executor`` in :func:`waves`; the submitted jobs by run id.
    ``wait`` (default: unless on SLURM, which has job dependencies) waits for each wave's jobs before the next;
    on SLURM each transfer's job depends on its source's (``afterok``)."""
    slurm = executor.cluster == "slurm"
    wait = (not slurm) if wait is None else wait
    by_id = {run_id(c): c for c in configs}
    todo = [{"id": rid, "source": c.transfer.source if uses_source(c.transfer) else None}
            for rid, c in by_id.items() if store.result(rid) is None]
    recorded = {r["source"] for r in todo if r["source"] and store.result(r["source"]) is not None}
    sources = {r["id"]: r["source"] for r in todo}
    jobs: dict[str, submitit.Job] = {}
    for wave in waves(todo, recorded):
        for rid in wave:
            if slurm:
                after = jobs.get(sources[rid])
                executor.update_parameters(slurm_additional_parameters={"dependency": f"afterok:{after.job_id}"}
                                           if after is not None else {})
            jobs[rid] = executor.submit(train_job, str(store.root.resolve()), OmegaConf.to_yaml(by_id[rid]))
        if wait:
            for rid in wave:
                jobs[rid].result()  # raises the job's error, with its log
    return jobs


def log_dir(store: RunStore) -> Path:
    """Where :func:`submit` keeps its jobs' logs: ``<store>/.submitit``."""
    return store.root / ".submitit"


def submit(configs: list[DictConfig], store: RunStore, executor: str, gpus: int = 0, partition: str | None = None,
           timeout_min: int = 24 * 60) -> dict[str, submitit.Job]:
    """Submit ``configs``' unfinished runs as jobs (:func:`submit_plan`) on an executor of kind ``executor``
    (:func:`make_executor`), ``gpus`` per job (one task each), logs under ``<store>/.submitit``; the jobs by run id.
    What ``mkf plan ... --executor`` and a profile's ``submit`` key (a notebook's missing runs) both call."""
    params: dict[str, Any] = {"timeout_min": timeout_min, "gpus_per_node": gpus, "tasks_per_node": max(1, gpus)}
    if partition:
        params["slurm_partition"] = partition
    return submit_plan(configs, store, make_executor(executor, log_dir(store), **params))

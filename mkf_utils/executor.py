"""Run the independent runs of a plan in parallel worker processes on one machine.

Small CPU runs do not use many threads well: measured on this project's 2-core machine with
``benchmarks/workers.py``, two processes with one thread each train ResNet-18 (stock stem, 32 px) at 1.48x
the images per second of one process with two threads, and ConvNeXt-atto (stem stride 2) at 1.28x. So
:func:`run_parallel` starts ``workers`` processes with ``threads`` threads each (default: one worker per
core, one thread each) and hands them runs in plan order; a transfer waits for its source run when that
run is in the plan, and while one worker retrains a source that has a record but no weights (a fresh clone),
the other workers take runs that do not need it before they queue on its lock. Workers go through the run
store, so its locks keep two processes (or two plans) from training one run twice, and a finished run is
read, not retrained.

Results do not depend on the worker count, but they do on the thread count (float sums change order):
the thread count is recorded in each run's provenance, and ``make verify`` retrains with it.

A worker exits when the process that started it dies (``kill`` of a plan's pid stops its training; the run in
progress resumes from its last checkpoint next time), instead of training on and then spinning, orphaned.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path
from typing import Callable

from omegaconf import DictConfig, OmegaConf

from .config import load_config, run_id
from .errors import MKFError
from .runs import RunStore
from .transfer import uses_source


def available_cores() -> int:
    """The cores this process may use (its CPU affinity where the OS tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def default_threads(workers: int) -> int:
    """Torch threads per worker: ``OMP_NUM_THREADS`` where it is set (the caller's explicit choice), else the
    cores split among ``workers`` (at least 1).

    >>> default_threads(workers=1) >= 1
    True
    """
    env = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    return int(env) if env.isdigit() and int(env) > 0 else max(1, available_cores() // workers)


def exit_with_parent(parent: int, every: float = 1.0) -> None:
    """Exit this process (status 1) once its parent is no longer ``parent``: a loop for a daemon thread."""
    while os.getppid() == parent:
        time.sleep(every)
    os._exit(1)


def _init_worker(threads: int, parent: int) -> None:
    import threading

    import torch

    torch.set_num_threads(threads)
    threading.Thread(target=exit_with_parent, args=(parent,), daemon=True).start()


def train_one(root: str, cfg_yaml: str) -> dict:
    """Train (or find) the run of config ``cfg_yaml`` in the store at ``root``: a worker's or a cluster job's task."""
    cfg = load_config(overrides=OmegaConf.to_container(OmegaConf.create(cfg_yaml)))
    return RunStore(root).run(cfg)


def run_parallel(configs: list[DictConfig], root: str | Path, workers: int | None = None, threads: int | None = None,
                 log: Callable[[int, dict, bool], None] | None = None, deadline: float | None = None) -> list[dict]:
    """Results of ``configs`` (in their order), trained in ``workers`` processes of ``threads`` threads.

    Args:
        configs: run configs; a transfer whose ``transfer.source`` is another config's run id starts after it.
        root: the run store's folder.
        workers: worker processes (default: :func:`available_cores`, at most the number of runs).
        threads: torch threads per worker (default: :func:`default_threads`: ``OMP_NUM_THREADS`` where set, else
            cores // workers, at least 1).
        log: called as ``log(index, result, trained)`` when a run is found in the store (``trained=False``)
            or finishes training.
        deadline: a ``time.monotonic()`` value after which no run starts (those started finish); for a lease
            on a borrowed machine. The runs left are named in an :class:`MKFError` at the end.

    A run that fails does not stop the others (except those that need it as a source); an
    :class:`MKFError` lists the failures at the end, and every finished run stays in the store.
    """
    store = RunStore(root)
    ids = [run_id(c) for c in configs]
    workers = max(1, min(workers or available_cores(), max(len(configs), 1)))
    threads = threads or default_threads(workers)
    needs = {i: ids.index(c.transfer.source) for i, c in enumerate(configs)
             if uses_source(c.transfer) and c.transfer.source in ids}
    results: dict[int, dict] = {}
    failed: dict[int, str] = {}
    todo = []
    for i, rid in enumerate(ids):
        found = store.result(rid)
        if found is None:
            todo.append(i)
        else:
            results[i] = {"run_id": rid, **found}
            if log is not None:
                log(i, results[i], False)
    running: dict[Future, int] = {}
    restorer: dict[int, int] = {}  # running transfer -> its source, recorded without weights, that it retrains
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker,
                             initargs=(threads, os.getpid())) as pool:
        while todo or running:
            while len(running) < workers and not (deadline is not None and time.monotonic() > deadline):
                for i in [i for i in todo if needs.get(i) in failed]:
                    todo.remove(i)
                    failed[i] = f"its source run {ids[needs[i]]} failed"
                ready = [i for i in todo if needs.get(i) is None or needs[i] in results]
                if not ready:
                    break
                # a transfer whose source another worker is retraining would only wait on its lock: any other
                # ready run goes first (min keeps plan order among equals)
                busy = set(restorer.values())
                i = min(ready, key=lambda i: needs.get(i) in busy)
                todo.remove(i)
                running[pool.submit(train_one, str(root), OmegaConf.to_yaml(configs[i]))] = i
                src = needs.get(i)
                if src is not None and src not in busy and not store.has_weights(ids[src]):
                    restorer[i] = src
            if not running:
                break  # what is left waits on a failed source
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                i = running.pop(fut)
                restorer.pop(i, None)
                try:
                    results[i] = fut.result()
                except Exception as e:  # noqa: BLE001  (reported together at the end)
                    failed[i] = f"{type(e).__name__}: {e}"
                    continue
                if log is not None:
                    log(i, results[i], True)
    late = [i for i in range(len(configs)) if i not in results and i not in failed]
    if late and not failed:
        raise MKFError(f"{len(late)} of {len(configs)} runs did not start before the deadline",
                       "run again to train them; the finished runs are kept in the store")
    if failed:
        lines = "; ".join(f"{ids[i]} ({why})" for i, why in sorted(failed.items()))
        raise MKFError(f"{len(failed)} of {len(configs)} runs failed: {lines}",
                       "fix the cause and run again; the finished runs are kept in the store")
    return [results[i] for i in range(len(configs))]

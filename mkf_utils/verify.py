"""Retrain recorded runs and compare them with their records.

The run store's records (``config.yaml``, ``metrics.csv``, ``result.json``) are committed; weights are
not. Two things retrain a recorded run:

- a transfer whose source run has a record but no ``model.pt`` (a fresh clone): :func:`reproduce` trains
  the source again, checks it against its record (the check is appended to the run's ``reproductions.csv``),
  and only then puts its weights in the store;
- ``mkf verify`` / ``make verify``: :func:`verify` retrains a random sample of recorded runs in a scratch
  folder and reports any drift; the records are never changed.

A run is retrained with the thread count it was recorded with. On the same machine kind (processor, torch
version, device) and thread count the run must agree bit for bit (every per-epoch metric); elsewhere, and on
a GPU unless the run set ``runtime.deterministic`` (cuDNN's fast kernels sum in no fixed order), its final
top-1 must lie within :data:`TOLERANCE` of the record (float sums in another order change the trajectory,
as a change of seed would, though less).
"""
from __future__ import annotations

import random
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import pandas as pd
import torch

from .config import load_config
from .errors import MKFError
from .provenance import provenance
from .runfolder import RunFolder
from .train import fit

TOLERANCE = 0.03  # top-1, absolute, when the machine kind or thread count differs from the record's
TIMING = ("epoch_time_s", "train_img_s")


@contextmanager
def threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch threads (unchanged if None)."""
    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def same_kind(recorded: dict, here: dict) -> bool:
    """Whether two provenance dicts describe the same machine kind, software and thread count."""
    return all(recorded.get(k) == here.get(k) for k in ("cpu", "gpu", "torch", "threads", "device"))


def compare(run_dir: Path, scratch: Path) -> dict:
    """The record in ``run_dir`` against the retrained run in ``scratch``: top-1s, whether every per-epoch
    metric is identical, whether the machine kind matched, and ``ok``."""
    recorded, retrained = RunFolder(run_dir), RunFolder(scratch)
    rec, new = recorded.read_result(), retrained.read_result()
    a = pd.read_csv(recorded.metrics_file).drop(columns=list(TIMING), errors="ignore")
    b = pd.read_csv(retrained.metrics_file).drop(columns=list(TIMING), errors="ignore")
    identical = a.shape == b.shape and bool((a.to_numpy() == b.to_numpy()).all())
    kind = same_kind(rec.get("provenance", {}), new["provenance"])
    exact = kind and (not str(rec.get("device", "cpu")).startswith("cuda")
                      or bool(load_config(recorded.config_file).runtime.deterministic))
    ok = identical and new["top1"] == rec["top1"] if exact else abs(new["top1"] - rec["top1"]) <= TOLERANCE
    return {"recorded_top1": rec["top1"], "retrained_top1": new["top1"], "identical": identical,
            "same_machine_kind": kind, "ok": ok, "recorded_on": rec.get("provenance", {}).get("cpu"),
            "recorded_threads": rec.get("provenance", {}).get("threads")}


def retrain(store, rid: str, scratch: Path) -> dict:
    """Train recorded run ``rid`` of ``store`` again into ``scratch`` (its source loaded, or reproduced,
    from the store), with its recorded thread count; the comparison from :func:`compare`."""
    run_dir = store.path(rid)
    rec = store.result(rid)
    if rec is None:
        raise MKFError(f"run {rid} has no record in {store.root}", "pick a finished run (`mkf runs`)")
    cfg = load_config(RunFolder(run_dir).config_file)
    source = store.source_of(cfg)
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    with threads(rec.get("provenance", {}).get("threads")):
        fit(cfg, scratch, source)
    return compare(run_dir, scratch)


def log_reproduction(run_dir: Path, scratch: Path, check: dict) -> None:
    """Append ``check`` (from :func:`compare`) with when and where the retrained run in ``scratch`` was computed
    (its provenance) to the run's ``reproductions.csv``, a record like its result (`make records` tracks it)."""
    here = RunFolder(scratch).read_result()["provenance"]
    row = {"when": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"), "cpu": here["cpu"],
           "torch": here["torch"], "threads": here["threads"], **check}
    path = RunFolder(run_dir).reproductions_file
    pd.DataFrame([row]).to_csv(path, mode="a", header=not path.exists(), index=False)


def reproduce(store, rid: str) -> Path:
    """Give recorded run ``rid`` its missing ``model.pt`` by retraining it; raise if it disagrees with its record.
    Either way the comparison is appended to the run's ``reproductions.csv`` (:func:`log_reproduction`)."""
    run_dir = store.path(rid)
    scratch = RunFolder(run_dir).reproduce_dir
    check = retrain(store, rid, scratch)
    log_reproduction(run_dir, scratch, check)
    if not check["ok"]:
        raise MKFError(f"run {rid} retrained to top-1 {check['retrained_top1']:.4f}, its record says "
                       f"{check['recorded_top1']:.4f} (recorded with {check['recorded_threads']} threads on "
                       f"{check['recorded_on']}; here {provenance('cpu')['cpu']})",
                       "the engine or the machine changed what this run computes: check `git log mkf_utils`, "
                       "or delete the run's folder to retrain it and every run built on it")
    weights = RunFolder(run_dir).weights_file
    RunFolder(scratch).weights_file.replace(weights)
    shutil.rmtree(scratch)
    return weights


def here_device() -> str:
    """``cuda`` where a GPU is visible, else ``cpu``: the device a retrained run would use."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def drawable(store) -> list[str]:
    """The recorded runs of ``store`` that were computed on this machine's device type: a GPU-trained record
    (bf16, hours on a CPU) is drawn only where a GPU is, though ``--id`` may still name it."""
    return sorted(rid for rid, _ in store.configs()
                  if str((store.result(rid) or {}).get("device", "cpu")).split(":")[0] == here_device())


def verify(store, k: int = 2, seed: int | None = None, runs: list[str] | None = None,
           log: Callable[[str], None] | None = print) -> pd.DataFrame:
    """Retrain ``k`` recorded runs drawn at random from :func:`drawable` (or the given ``runs``) and compare
    them with their records.

    One row per run (:func:`compare`); the scratch folders are removed, the records never touched.
    """
    ids = runs or drawable(store)
    if not ids:
        raise MKFError(f"no recorded runs computed on a {here_device()} in {store.root}",
                       "run a figure first, point --store at a run store, or name runs with --id")
    chosen = ids if runs else random.Random(seed).sample(ids, min(k, len(ids)))
    rows = []
    for rid in chosen:
        scratch = store.root / ".verify" / rid
        try:
            row = {"run_id": rid, **retrain(store, rid, scratch)}
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        rows.append(row)
        if log is not None:
            log(f"{rid}: recorded {row['recorded_top1']:.4f}, retrained {row['retrained_top1']:.4f}, "
                f"{'bit-identical' if row['identical'] else 'differs'} "
                f"({'same' if row['same_machine_kind'] else 'other'} machine kind): {'ok' if row['ok'] else 'DRIFT'}")
    return pd.DataFrame(rows)

"""The run store: one folder per run, named by the hash of its config.

``<root>/<id>/`` holds ``config.yaml``, ``metrics.csv``, ``model.pt`` and ``result.json`` (see
:mod:`mkf_utils.runfolder`). A finished run (``result.json`` present) is never recomputed; an unfinished
one resumes from its checkpoint. A lock file (``fcntl.flock``, released by the OS even when a process
is killed) keeps two processes from training the same run at once: the second waits, then reads the
first one's result.

>>> import tempfile
>>> store = RunStore(tempfile.mkdtemp())
>>> cfg = load_config(overrides=["data.name=synthetic", "model.name=resnet18", "optim.epochs=1"])
>>> result = store.run(cfg)
>>> store.run(cfg) == result  # found, not recomputed
True
"""
from __future__ import annotations

import fcntl
import os
import shutil
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pandas as pd
import torch
from omegaconf import DictConfig
from timm.utils import random_seed

from .config import identity, load_config, run_id
from .crossarch import map_depthwise
from .errors import MKFError
from .models import create_model
from .provenance import REPO
from .runfolder import RunFolder, load_weights
from .train import StepHook, dist_info, fit
from .transfer import uses_source
from .verify import reproduce


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path``, held for the ``with`` block (rank 0 only under torchrun)."""
    if dist_info()[0] != 0:
        yield
        return
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class RunStore:
    """Runs under ``root`` (default ``runs/``), found or computed by config."""

    def __init__(self, root: str | Path = "runs") -> None:
        self.root = Path(root)

    @classmethod
    def default(cls, root: str | Path | None = None) -> "RunStore":
        """The store at ``root``; if None, at ``$MKF_STORE``, else the repository's ``runs/`` (whose run
        records are committed; tests and nbval point ``MKF_STORE`` at a temporary folder)."""
        checkout = REPO / "runs" if (REPO / "pyproject.toml").exists() else Path("runs")  # else: installed, use ./runs
        return cls(root or os.environ.get("MKF_STORE") or checkout)

    def path(self, rid: str) -> Path:
        return self.root / rid

    def folder(self, rid: str) -> RunFolder:
        """Run ``rid``'s :class:`~mkf_utils.runfolder.RunFolder`: every file of the run by its role."""
        return RunFolder(self.path(rid))

    def result(self, rid: str) -> dict | None:
        """The result of finished run ``rid``, or None."""
        return self.folder(rid).read_result()

    def metrics(self, rid: str) -> pd.DataFrame:
        """Run ``rid``'s per-epoch metrics (``metrics.csv``), with its ``run_id``."""
        return pd.read_csv(self.folder(rid).metrics_file).assign(run_id=rid)

    def load_source(self, source: str) -> dict[str, torch.Tensor]:
        """A state_dict from a finished run id in this store, or from a file path.

        A recorded run without weights (a fresh clone: records are committed, weights are not) is
        retrained first and checked against its record (:func:`mkf_utils.verify.reproduce`).
        """
        run_dir = self.path(source)
        if run_dir.is_dir():
            if self.result(source) is None:
                raise MKFError(f"source run {source} is not finished", "run it first (`mkf train` or RunStore.run)")
            path = RunFolder(run_dir).weights_file
            if not path.exists():
                with file_lock(RunFolder(run_dir).lock_file):
                    if not path.exists():
                        warnings.warn(f"source run {source} has a record but no weights: retraining it", stacklevel=2)
                        reproduce(self, source)
        else:
            path = Path(source).expanduser()
            if not path.is_file():
                raise MKFError(f"transfer.source '{source}' is neither a run in {self.root} nor a file",
                               "give a finished run's id (`mkf runs`) or the path of a state_dict file")
        return load_weights(path)

    def has_weights(self, rid: str) -> bool:
        """Whether run ``rid``'s trained weights are in the store (a fresh clone has records only)."""
        return self.folder(rid).weights_file.exists()

    def model(self, rid: str, initial: bool = False) -> torch.nn.Module:
        """Finished run ``rid``'s trained net (eval mode), or with ``initial=True`` the random net it started
        from (the seed set as training sets it, before the model is built; before any transfer).

        Weights come from :meth:`load_source` (a recorded run without weights is retrained and checked first).
        """
        result = self.result(rid)
        if result is None:
            raise MKFError(f"run {rid} is not finished in {self.root}", "run it first (`mkf train` or a figure)")
        cfg = load_config(self.folder(rid).config_file)
        if initial:
            random_seed(cfg.seed, 0)
        net = create_model(cfg.model.name, result["num_classes"], cfg.model.stem_stride, **cfg.model.kwargs)
        if not initial:
            net.load_state_dict(self.load_source(rid))
        return net.eval()

    def source_of(self, cfg: DictConfig) -> dict[str, torch.Tensor] | None:
        """The source weights ``cfg`` transfers from, or None when it copies nothing. A source run of another
        architecture has its depthwise filters mapped onto ``cfg``'s net (:func:`mkf_utils.crossarch.map_depthwise`:
        units by relative depth, channels by ``cfg.transfer.channels``, sampled with ``cfg.seed``)."""
        t = cfg.transfer
        if not uses_source(t):
            return None
        state = self.load_source(t.source)
        if not self.path(t.source).is_dir():
            return state  # a state_dict file: used as it is
        src = load_config(self.folder(t.source).config_file).model
        if (src.name, src.stem_stride, dict(src.kwargs)) == (cfg.model.name, cfg.model.stem_stride, dict(cfg.model.kwargs)):
            return state
        if t.units != "depthwise":
            raise MKFError(f"source run {t.source} is a {src.name}, this run a {cfg.model.name}: only depthwise units "
                           "map between architectures", "copy from a run of the same model, or set transfer.units=depthwise")
        net = lambda m: create_model(m.name, 10, m.stem_stride, **m.kwargs)  # noqa: E731  (the head is not mapped)
        return map_depthwise(state, net(src), net(cfg.model), t.channels, cfg.seed)

    def run(self, cfg: DictConfig, step_hook: StepHook | None = None) -> dict:
        """The result of ``cfg``: read if finished, else trained (resuming any checkpoint). Adds ``run_id``."""
        rid = run_id(cfg)
        run_dir = self.path(rid)
        found = self.result(rid)
        if found is None:
            source = self.source_of(cfg)
            run_dir.mkdir(parents=True, exist_ok=True)
            with file_lock(RunFolder(run_dir).lock_file):
                found = self.result(rid)  # another process may have finished it while we waited
                if found is None:
                    if dist_info()[0] == 0:
                        RunFolder(run_dir).write_config(cfg)
                    try:
                        found = fit(cfg, run_dir, source, step_hook)
                    except BaseException:
                        if not RunFolder(run_dir).checkpoint_file.exists():  # nothing to resume: no orphan folder
                            shutil.rmtree(run_dir, ignore_errors=True)
                        raise
        return {"run_id": rid, **found}

    def configs(self) -> Iterator[tuple[str, DictConfig]]:
        """(id, config) of every finished run."""
        folders = [RunFolder(d) for d in sorted(self.root.glob("*")) if d.is_dir()]
        for folder in (f for f in folders if f.finished):
            try:
                self.result(folder.path.name)
                yield folder.path.name, load_config(folder.config_file)
            except MKFError as e:
                warnings.warn(f"skipping run {folder.path}: {e}", stacklevel=2)

    def collect(self) -> pd.DataFrame:
        """One row per finished run: ``run_id``, the flattened config (``model.name``, ...) and the result.

        Runs whose config no longer loads (written by an incompatible version) are skipped with a warning.
        """
        rows = []
        for rid, cfg in self.configs():
            flat = pd.json_normalize(identity(cfg), sep=".").iloc[0].to_dict()
            rows.append({"run_id": rid, **flat, **self.result(rid)})
        return pd.DataFrame(rows)

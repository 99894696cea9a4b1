"""The format of one run's folder, in one place: what each file holds, and how it is written and read.

``<store>/<run id>/``:

- ``config.yaml``: the run's config (written before training);
- ``metrics.csv``: one row per finished epoch (rewritten atomically after each);
- ``checkpoint.pt``: model, optimiser, scheduler, epoch, RNG states and metrics so far (atomic, after each
  epoch but the last; removed when the run finishes);
- ``model.pt``: the final weights, a plain state_dict that loads into a stock timm model;
- ``result.json``: the final numbers and provenance, written last: its presence marks a finished run;
- ``reproductions.csv``: one row per retraining of a recorded run that had no weights (``verify.reproduce``);
- ``.lock`` (held while a process trains or restores the run) and ``.reproduce/`` (that retraining's scratch).

The record of a run is ``config.yaml``, ``metrics.csv``, ``result.json`` and any ``reproductions.csv``
(committed in ``runs/``); the weights are not. Every write goes to a temporary file renamed over the target,
so a reader (or a killed writer) never leaves half a file; a file that is corrupt anyway is a one-line
:class:`MKFError`.

>>> import tempfile
>>> f = RunFolder(tempfile.mkdtemp())
>>> f.write_result({"top1": 0.5}); f.finished, f.read_result()
(True, {'top1': 0.5})
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from .errors import MKFError

def atomic_save(obj: object, path: Path) -> None:
    """``torch.save`` to a temporary file, then rename over ``path``: a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def atomic_write_text(text: str, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class RunFolder:
    """One run's folder (see the module docstring for its files)."""

    RECORD = ("config_file", "metrics_file", "result_file", "reproductions_file")  # committed; the weights are not

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.config_file = self.path / "config.yaml"
        self.metrics_file = self.path / "metrics.csv"
        self.checkpoint_file = self.path / "checkpoint.pt"
        self.weights_file = self.path / "model.pt"
        self.result_file = self.path / "result.json"
        self.reproductions_file = self.path / "reproductions.csv"
        self.lock_file = self.path / ".lock"  # held while a process trains or restores the run
        self.reproduce_dir = self.path / ".reproduce"  # where a recorded run is retrained before its weights move in

    @property
    def finished(self) -> bool:
        return self.result_file.exists()

    def record_files(self) -> list[Path]:
        """The files of this run's record that exist (:attr:`RECORD`); none while the run is unfinished."""
        files = [getattr(self, name) for name in self.RECORD]
        return [f for f in files if f.exists()] if self.finished else []

    def write_config(self, cfg: DictConfig) -> None:
        atomic_write_text(OmegaConf.to_yaml(cfg), self.config_file)

    def write_metrics(self, history: list[dict]) -> None:
        atomic_write_text(pd.DataFrame(history).to_csv(index=False), self.metrics_file)

    def save_checkpoint(self, state: dict) -> None:
        atomic_save(state, self.checkpoint_file)

    def load_checkpoint(self) -> dict | None:
        """The checkpoint to resume from, or None; a corrupt one raises :class:`MKFError` and is left in place."""
        if not self.checkpoint_file.exists():
            return None
        try:
            return torch.load(self.checkpoint_file, map_location="cpu", weights_only=False)
        except Exception as e:  # truncated zip, pickle errors, ...
            raise MKFError(f"checkpoint {self.checkpoint_file} is corrupt ({type(e).__name__}: {e})",
                           f"delete it to restart this run from epoch 0 (`rm {self.checkpoint_file}`); other runs "
                           "are unaffected") from None

    def finish(self, weights: dict[str, torch.Tensor], result: dict) -> None:
        """Write the final weights, then the result (which marks the run finished), then drop the checkpoint."""
        atomic_save(weights, self.weights_file)
        self.write_result(result)
        self.checkpoint_file.unlink(missing_ok=True)

    def write_result(self, result: dict) -> None:
        atomic_write_text(json.dumps(result, indent=1), self.result_file)

    def read_result(self) -> dict | None:
        """The finished run's result, or None if it has not finished; a corrupt file raises :class:`MKFError`."""
        if not self.result_file.exists():
            return None
        try:
            return json.loads(self.result_file.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise MKFError(f"the result of run {self.path.name} ({self.result_file}) is corrupt ({type(e).__name__})",
                           f"delete {self.path} to retrain it (or restore it with `git checkout -- "
                           f"{self.result_file}`)") from None


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    """The state_dict in file ``path`` (also one saved as ``{"state_dict": ...}`` or ``{"model": ...}``); a
    file that does not load is an :class:`MKFError`."""
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise MKFError(f"source checkpoint {path} is corrupt ({type(e).__name__})",
                       "re-create it (delete its run folder and run it again)") from None
    for key in ("state_dict", "model"):
        if isinstance(sd, dict) and isinstance(sd.get(key), dict):
            sd = sd[key]
    return sd


def record_files(root: str | Path, since: float | None = None) -> list[Path]:
    """The record files of every finished run under ``root`` (``root/<id>/<file>``, sorted); with ``since`` (a
    POSIX time), only those modified after it: what a lent machine wrote, to bring back.

    >>> import tempfile
    >>> f = RunFolder(Path(tempfile.mkdtemp()) / "abc"); f.path.mkdir(); f.write_result({"top1": 0.5})
    >>> [p.name for p in record_files(f.path.parent)]
    ['result.json']
    """
    files = [f for d in sorted(Path(root).iterdir()) if d.is_dir() for f in RunFolder(d).record_files()]
    return [f for f in files if since is None or f.stat().st_mtime > since]

"""Run configs: typed OmegaConf structured configs, YAML files and dotted overrides.

Everything outside ``runtime`` says *what* is computed and goes into the run id; ``runtime`` says
*how* (device, workers, progress bars) and does not, nor does where the data lives (``data.root``).

>>> cfg = load_config(overrides=["model.name=convnext_atto", "optim.epochs=2"])
>>> cfg.model.name, cfg.optim.epochs, len(run_id(cfg))
('convnext_atto', 2, 12)
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .errors import MKFError
from .transfer import BIAS_OPTIONS, ENDS, MODES, NORM_OPTIONS
from .units import UNIT_KINDS

ID_VERSION = 1  # bump when a change to the engine makes old runs incomparable


@dataclass
class ModelConfig:
    name: str = "resnet18"
    stem_stride: Optional[int] = None  # None: timm's stock stem; 1 or 2 for 32 px images
    pretrained: bool = False
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class DataConfig:
    name: str = "cifar10-mini"
    root: Optional[str] = None
    split: str = "all"
    per_class: Optional[int] = None  # first N training images of each class (None: all)
    test_per_class: Optional[int] = None  # first N held-out images of each class (None: all)
    image_size: int = 224  # crop size for imagefolder data; in-memory data keeps its own size
    augment: bool = True
    batch_size: int = 128
    download: bool = False


@dataclass
class OptimConfig:
    opt: str = "sgd"  # any timm optimizer name: sgd, adamw, lamb, ...
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4  # never applied to norms and biases
    epochs: int = 10
    warmup_epochs: float = 1.0
    min_lr: float = 0.0
    label_smoothing: float = 0.0


@dataclass
class TransferConfig:
    source: Optional[str] = None  # a run id in the store, or a path to a state_dict file
    units: str = "depthwise"
    n: int = 0
    end: str = "first"
    mode: str = "copy-freeze"
    bias: str = "freeze"
    norm: str = "train"


@dataclass
class RuntimeConfig:
    device: str = "auto"  # auto: cuda if available, else cpu
    amp: str = "auto"  # auto: bf16 autocast on cuda, fp32 on cpu; or bf16 / fp32
    channels_last: bool = True  # faster on CUDA and, measured on 2 CPU cores, on CPU too
    compile: bool = False
    workers: int = 8  # DataLoader workers for imagefolder data
    eval_batch_size: int = 256
    eval_every: int = 1  # evaluate every N epochs (the last epoch always): saves time on short CPU runs
    deterministic: bool = False
    progress: Optional[bool] = None  # None: tqdm bars when stderr is a terminal


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    transfer: TransferConfig = field(default_factory=TransferConfig)
    seed: int = 0
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)


CHOICES = {
    "transfer.units": UNIT_KINDS, "transfer.end": ENDS, "transfer.mode": MODES, "transfer.bias": BIAS_OPTIONS,
    "transfer.norm": NORM_OPTIONS, "runtime.amp": ("auto", "bf16", "fp32"),
}


def load_config(path: str | Path | None = None, overrides: list[str] | dict | None = None) -> DictConfig:
    """Defaults <- YAML file ``path`` <- ``overrides`` (``["a.b=1"]`` or a nested dict), validated."""
    try:
        cfg = OmegaConf.structured(RunConfig)
        if path is not None:
            p = Path(path)
            if not p.is_file():
                raise MKFError(f"config file {p} does not exist", "pass the path of a YAML file (see configs/)")
            cfg = OmegaConf.merge(cfg, OmegaConf.load(p))
        if isinstance(overrides, dict):
            cfg = OmegaConf.merge(cfg, overrides)
        elif overrides:
            bad = [o for o in overrides if "=" not in o]
            if bad:
                raise MKFError(f"override '{bad[0]}' has no '='", "write overrides as key=value, e.g. optim.epochs=2")
            cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
    except OmegaConfBaseException as e:
        msg = str(e).splitlines()[0]
        raise MKFError(f"malformed config: {msg} (key {getattr(e, 'full_key', '?')})",
                       "fix the key or value; the fields and types are in mkf_utils/config.py") from None
    for key, options in CHOICES.items():
        value = OmegaConf.select(cfg, key)
        if value not in options:
            raise MKFError(f"malformed config: {key}={value!r}", f"use one of: {', '.join(options)}")
    for key in ("optim.epochs", "data.batch_size"):
        if OmegaConf.select(cfg, key) < 1:
            raise MKFError(f"malformed config: {key} must be at least 1", f"set {key} to a positive number")
    return cfg


def identity(cfg: DictConfig) -> dict:
    """The part of ``cfg`` that defines the result, as plain data: all but ``runtime`` and where the data
    lives (``data.root``, ``data.download``), so a run store moves between machines."""
    plain = OmegaConf.to_container(cfg, resolve=True)
    plain.pop("runtime", None)
    for key in ("root", "download"):
        plain["data"].pop(key, None)
    return {"id_version": ID_VERSION, **plain}


def run_id(cfg: DictConfig) -> str:
    """12 hex digits of the SHA-1 of :func:`identity` (a transfer's source run id is part of it)."""
    return hashlib.sha1(json.dumps(identity(cfg), sort_keys=True).encode()).hexdigest()[:12]

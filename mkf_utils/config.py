"""Run configs: typed OmegaConf structured configs, YAML files and dotted overrides.

Everything outside ``runtime`` says *what* is computed and goes into the run id; ``runtime`` says
*how* (device, workers, progress bars) and does not, nor does where the data lives (``data.root``).

>>> cfg = load_config(overrides=["model.name=convnext_atto", "optim.epochs=2"])
>>> cfg.model.name, cfg.optim.epochs, len(run_id(cfg))
('convnext_atto', 2, 12)
"""
from __future__ import annotations

import copy
import difflib
import functools
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from timm.optim import list_optimizers

from .errors import MKFError
from .banks import BANKS
from .crossarch import CHANNELS
from .transfer import ASSIGN, BIAS_OPTIONS, DEPTHWISE_MODES, ENDS, MODES, NORM_OPTIONS, source_need
from .units import UNIT_KINDS

RUN_ID = re.compile(r"[0-9a-f]{12}")
ID_VERSION = 1
# Fields added after run records were first committed, with the defaults that reproduce the older behaviour:
# left out of a run's identity while at that default, so adding a field never orphans the records.
LATER_FIELDS = {"optim.sched": "cosine", "optim.decay_power": 1.0, "transfer.bank": "master-key",  # bump ID_VERSION
                "transfer.bank_size": 8, "transfer.assign": "auto", "transfer.channels": "cycle"}  # when runs differ


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
    batch_size: int = 128  # the global batch: under torchrun each of the W ranks takes batch_size / W
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
    sched: str = "cosine"  # any timm scheduler: cosine, poly (with optim.decay_power 1: linear decay), step, ...
    decay_power: float = 1.0  # for sched=poly


@dataclass
class TransferConfig:
    source: Optional[str] = None  # a run id in the store, or a path to a state_dict file
    units: str = "depthwise"
    n: int = 0
    end: str = "first"
    mode: str = "copy-freeze"
    bias: str = "freeze"
    norm: str = "train"
    bank: str = "master-key"  # transfer.mode=bank-freeze: master-key, random, identity, centres, exemplars (mkf_utils.banks)
    bank_size: int = 8  # how many distinct filters the bank holds
    assign: str = "auto"  # which channel gets which bank filter: cycle, fit (a source's best fit) or auto
    channels: str = "cycle"  # a source of another architecture: its channels cycled or sampled (mkf_utils.crossarch)


@dataclass
class RuntimeConfig:
    device: str = "auto"  # auto: cuda if available, else mps (Apple), else cpu
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
    "transfer.norm": NORM_OPTIONS, "transfer.bank": BANKS, "transfer.assign": ASSIGN, "transfer.channels": CHANNELS,
    "runtime.amp": ("auto", "bf16", "fp32"),
}


@functools.cache
def _schema() -> DictConfig:
    """The typed defaults, built once (building a structured config is most of a load's time)."""
    return OmegaConf.structured(RunConfig)


def load_config(path: str | Path | None = None, overrides: list[str] | dict | None = None) -> DictConfig:
    """Defaults <- YAML file ``path`` <- ``overrides`` (``["a.b=1"]`` or a nested dict), validated."""
    try:
        cfg = _schema()  # never changed: each merge below returns a new config
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
        if cfg is _schema():
            cfg = copy.deepcopy(cfg)  # nothing merged: the caller gets its own copy
    except OmegaConfBaseException as e:
        msg = str(e).splitlines()[0]
        raise MKFError(f"malformed config: {msg} (key {getattr(e, 'full_key', '?')})",
                       "fix the key or value; the fields and types are in mkf_utils/config.py") from None
    for key, options in CHOICES.items():
        value = OmegaConf.select(cfg, key)
        if value not in options:
            raise MKFError(f"malformed config: {key}={value!r}", f"use one of: {', '.join(options)}")
    if cfg.optim.opt.lower() not in list_optimizers():
        close = difflib.get_close_matches(cfg.optim.opt.lower(), list_optimizers(), n=3)
        raise MKFError(f"malformed config: optim.opt={cfg.optim.opt!r} is not a timm optimizer",
                       f"use one of timm.optim.list_optimizers(){', e.g. ' + ', '.join(close) if close else ''}")
    if cfg.optim.sched not in SCHEDULERS:
        raise MKFError(f"malformed config: optim.sched={cfg.optim.sched!r}", f"use one of: {', '.join(SCHEDULERS)}")
    for key, ok, rule in RANGES:
        value = OmegaConf.select(cfg, key)
        if not ok(value):
            raise MKFError(f"malformed config: {key}={value!r}: it must be {rule}", f"set {key} to a value {rule}")
    _check_transfer(cfg.transfer)
    return cfg


SCHEDULERS = ("cosine", "tanh", "step", "constant", "multistep", "plateau", "poly", "rsqrt")  # timm's create_scheduler_v2
RANGES = [  # (key, test, rule in words)
    ("optim.epochs", lambda v: v >= 1, "at least 1"), ("data.batch_size", lambda v: v >= 1, "at least 1"),
    ("optim.lr", lambda v: v > 0, "above 0"), ("optim.weight_decay", lambda v: v >= 0, "0 or more"),
    ("optim.momentum", lambda v: 0 <= v < 1, "in [0, 1)"), ("optim.warmup_epochs", lambda v: v >= 0, "0 or more"),
    ("optim.min_lr", lambda v: v >= 0, "0 or more"), ("optim.label_smoothing", lambda v: 0 <= v < 1, "in [0, 1)"),
    ("data.per_class", lambda v: v is None or v >= 1, "null or at least 1"),
    ("data.test_per_class", lambda v: v is None or v >= 1, "null or at least 1"),
    ("model.stem_stride", lambda v: v is None or v >= 1, "null or at least 1"),
    ("transfer.n", lambda v: v >= 0, "0 or more"), ("transfer.bank_size", lambda v: v >= 1, "at least 1"), ("runtime.eval_every", lambda v: v >= 1, "at least 1"),
]


def _check_transfer(t: DictConfig) -> None:
    """Transfers that cannot run, or whose control would silently degenerate, are refused here."""
    if t.n and source_need(t.mode, t.bank, t.assign) == "required" and not t.source:
        what = f"transfer.mode={t.mode}" + (f" with transfer.bank={t.bank}" if t.mode == "bank-freeze" else "")
        raise MKFError(f"transfer.n={t.n} with {what} reads a source, but transfer.source is not set",
                       "set transfer.source to a run id or a state_dict file, or use transfer.mode=random-freeze")
    if t.n and t.mode in DEPTHWISE_MODES and t.units != "depthwise":
        raise MKFError(f"transfer.mode={t.mode} replaces depthwise filters, not '{t.units}' units",
                       "set transfer.units=depthwise")
    if t.n and t.mode == "random-freeze" and (t.units == "block" or t.norm == "freeze"):
        what = "transfer.units=block" if t.units == "block" else "transfer.norm=freeze"
        raise MKFError(f"transfer.mode=random-freeze with {what} would freeze freshly initialised norms and layer "
                       "scales (timm sets ResNet's last BN scale in each block to 0 and ConvNeXt's layer scale to "
                       "1e-6), so the frozen residual branches would be dead", "use transfer.units=conv or depthwise "
                       "with transfer.norm=train for a random-frozen control")


def file_digest(path: Path) -> str:
    """``sha256:<hex>`` of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return "sha256:" + h.hexdigest()


def identity(cfg: DictConfig) -> dict:
    """The part of ``cfg`` that defines the result, as plain data: all but ``runtime`` and where the data
    lives (``data.root``, ``data.download``), so a run store moves between machines. A transfer source
    given as a file enters by its content's SHA-256, not its path; a run id enters as it is. Fields in
    :data:`LATER_FIELDS` enter only when they differ from their default."""
    plain = OmegaConf.to_container(cfg, resolve=True)
    plain.pop("runtime", None)
    for key in ("root", "download"):
        plain["data"].pop(key, None)
    for key, default in LATER_FIELDS.items():
        section, name = key.split(".")
        if plain[section].get(name) == default:
            del plain[section][name]
    source = plain["transfer"].get("source")
    if source and not RUN_ID.fullmatch(source) and Path(source).expanduser().is_file():
        plain["transfer"]["source"] = file_digest(Path(source).expanduser())  # by content, not by path
    return {"id_version": ID_VERSION, **plain}


def run_id(cfg: DictConfig) -> str:
    """12 hex digits of the SHA-1 of :func:`identity` (a transfer's source run id is part of it)."""
    return hashlib.sha1(json.dumps(identity(cfg), sort_keys=True).encode()).hexdigest()[:12]

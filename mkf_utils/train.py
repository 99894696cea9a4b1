"""``fit``: train one run into its folder, resuming from its last checkpoint.

One step per function: :func:`setup` (seed, data, model, transfer, optimiser), :func:`resume`,
:func:`wrap` (compile, DDP), :func:`train_epoch`, :func:`checkpoint` and :func:`result`; what goes in
the folder is :mod:`mkf_utils.runfolder`'s. Under ``torchrun`` the model is wrapped in DDP, each rank
reads its share of every epoch, and only rank 0 writes.
"""
from __future__ import annotations

import os
import random
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist
from omegaconf import DictConfig
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2
from timm.utils import random_seed
from torch import nn

from .data import load_dataset, make_loader
from .errors import MKFError
from .models import create_model
from .provenance import provenance
from .runfolder import RunFolder
from .transfer import TransferReport, apply_transfer

StepHook = Callable[[int, int], None]


def dist_info() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from torchrun's environment; (0, 1, 0) otherwise."""
    env = os.environ
    return int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0))


def resolve_device(name: str) -> torch.device:
    """``runtime.device`` as a device: ``auto`` picks CUDA, then Apple's MPS, then the CPU; under torchrun each
    rank takes its local GPU."""
    if name == "auto":
        mps = getattr(torch.backends, "mps", None)
        name = "cuda" if torch.cuda.is_available() else "mps" if mps is not None and mps.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise MKFError("runtime.device=cuda but no CUDA device is visible", "set runtime.device=cpu (or auto)")
    _, world, local = dist_info()
    if name == "cuda" and world > 1:
        name = f"cuda:{local}"
    return torch.device(name)


def _rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def evaluate(model: nn.Module, loader, autocast, num_classes: int, flip: bool = False) -> dict[str, float]:
    """Top-1 (and top-5 when K > 5) accuracy and mean loss on ``loader``, summed over ranks; with ``flip``
    the logits of each image and of its mirror image are averaged (flip test-time augmentation)."""
    model.eval()
    k = min(5, num_classes)
    sums = torch.zeros(4, dtype=torch.float64, device=next(model.parameters()).device)  # loss, top1, top5, n
    with torch.no_grad(), autocast():
        for x, y in loader:
            out = model(x).float()
            if flip:
                out = (out + model(x.flip(3)).float()) / 2
            top = out.topk(k, dim=1).indices
            sums += torch.stack([nn.functional.cross_entropy(out, y, reduction="sum"), (top[:, 0] == y).sum(),
                                 (top == y[:, None]).any(1).sum(), torch.tensor(len(y), device=y.device)]).double()
    if dist.is_initialized():
        dist.all_reduce(sums)
    loss, top1, top5, n = sums.tolist()
    out = {"test_loss": loss / n, "top1": top1 / n}
    if num_classes > 5:
        out["top5"] = top5 / n
    return out


def _progress(loader, enabled: bool, desc: str):
    if not enabled:
        return loader
    from tqdm.auto import tqdm
    return tqdm(loader, desc=desc, leave=False)


@dataclass
class Session:
    """Everything one run trains with, set up by :func:`setup`."""

    cfg: DictConfig
    device: torch.device
    amp: bool
    rank: int
    world: int
    train_loader: object
    test_loader: object
    train_images: int
    test_images: int
    num_classes: int
    model: nn.Module
    report: TransferReport
    optimizer: torch.optim.Optimizer
    scheduler: object
    loss_fn: nn.Module
    net: nn.Module | None = None  # the model as trained: compiled and/or wrapped in DDP (see :func:`wrap`)

    def autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16) if self.amp else nullcontext()


def _init_runtime(rt: DictConfig, device: torch.device, world: int) -> None:
    if world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if rt.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def setup(cfg: DictConfig, source: dict[str, torch.Tensor] | None = None) -> Session:
    """Seed, data, loaders, model (with its transfer applied), optimiser, scheduler and loss for ``cfg``.

    The seed is set before the model is built, so runs of one seed with the same number of classes (the base,
    AnB, BnB and random-frozen into one half) start from the same random net. The head's size changes the
    random draws before timm re-initialises the body, so the other half's base starts from another net.
    """
    rank, world, _ = dist_info()
    rt, d = cfg.runtime, cfg.data
    if d.batch_size % world:
        raise MKFError(f"data.batch_size={d.batch_size} (the global batch) does not split evenly over {world} ranks",
                       f"launch a number of processes that divides it, or set data.batch_size to a multiple of {world}")
    device = resolve_device(rt.device)
    _init_runtime(rt, device, world)
    random_seed(cfg.seed, rank)
    train_data = load_dataset(d.name, True, d.split, d.root, d.download, d.per_class)
    test_data = load_dataset(d.name, False, d.split, d.root, d.download, d.test_per_class)
    num_classes = len(train_data.classes)
    common = dict(image_size=d.image_size, workers=rt.workers, device=device, channels_last=rt.channels_last,
                  rank=rank, world_size=world)
    train_loader = make_loader(train_data, d.batch_size // world, True, seed=cfg.seed, augment=d.augment, **common)
    test_loader = make_loader(test_data, rt.eval_batch_size, False, **common)
    if len(train_loader) == 0:
        raise MKFError(f"{len(train_data)} training images make no full batch of {d.batch_size}",
                       "lower data.batch_size or use more data")

    model = create_model(cfg.model.name, num_classes, cfg.model.stem_stride, cfg.model.pretrained,
                         **cfg.model.kwargs)
    t = cfg.transfer
    report = apply_transfer(model, source, t.units, t.n, t.end, t.mode, t.bias, t.norm, t.bank, t.bank_size,
                            t.assign, cfg.seed) if t.n else \
        TransferReport([], 0, total_params=sum(p.numel() for p in model.parameters()))
    model.to(device, memory_format=torch.channels_last if rt.channels_last else torch.preserve_format)
    o = cfg.optim
    optimizer = create_optimizer_v2(model, opt=o.opt, lr=o.lr, weight_decay=o.weight_decay, momentum=o.momentum)
    scheduler, _ = create_scheduler_v2(optimizer, sched=o.sched, num_epochs=o.epochs, warmup_epochs=o.warmup_epochs,
                                       warmup_lr=o.lr * 0.01, min_lr=o.min_lr, decay_rate=o.decay_power,
                                       step_on_epochs=False, updates_per_epoch=len(train_loader))
    amp = rt.amp == "bf16" or (rt.amp == "auto" and device.type == "cuda")
    return Session(cfg, device, amp, rank, world, train_loader, test_loader, len(train_data), len(test_data),
                   num_classes, model, report, optimizer, scheduler,
                   nn.CrossEntropyLoss(label_smoothing=o.label_smoothing))


def resume(s: Session, folder: RunFolder) -> tuple[list[dict], int]:
    """(metrics so far, first epoch to train): restored from the folder's checkpoint, or ([], 0)."""
    ckpt = folder.load_checkpoint()
    if ckpt is None:
        return [], 0
    try:
        s.model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise MKFError(f"checkpoint {folder.checkpoint_file} does not fit the model ({str(e).splitlines()[0]})",
                       f"delete it to restart this run (`rm {folder.checkpoint_file}`)") from None
    s.optimizer.load_state_dict(ckpt["optimizer"])
    s.scheduler.load_state_dict(ckpt["scheduler"])
    _set_rng_state(ckpt["rng"])
    return ckpt["history"], ckpt["epoch"] + 1


def wrap(s: Session) -> nn.Module:
    """The model as trained: ``torch.compile`` d if asked, in DDP under torchrun."""
    net = torch.compile(s.model) if s.cfg.runtime.compile else s.model
    if s.world > 1:
        net = nn.parallel.DistributedDataParallel(net, device_ids=[s.device.index] if s.device.type == "cuda" else None)
    return net


def train_epoch(s: Session, epoch: int, step_hook: StepHook | None = None) -> dict:
    """One epoch of training, then evaluation when due; the epoch's row of ``metrics.csv``."""
    rt, epochs = s.cfg.runtime, s.cfg.optim.epochs
    show = s.rank == 0 and (sys.stderr.isatty() if rt.progress is None else rt.progress)
    steps = len(s.train_loader)
    s.train_loader.set_epoch(epoch)
    s.net.train()  # frozen norms stay in eval mode (mkf_utils.transfer.freeze_norm)
    loss_sum = torch.zeros((), device=s.device)
    correct = torch.zeros((), device=s.device, dtype=torch.long)
    seen = 0
    tic = time.perf_counter()
    for step, (x, y) in enumerate(_progress(s.train_loader, show, f"epoch {epoch + 1}/{epochs}")):
        if step_hook is not None:
            step_hook(epoch, step)
        with s.autocast():
            out = s.net(x)
            loss = s.loss_fn(out, y)
        s.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        s.optimizer.step()
        s.scheduler.step_update(epoch * steps + step + 1)
        loss_sum += loss.detach()
        correct += (out.detach().argmax(1) == y).sum()
        seen += len(y)
    train_time = time.perf_counter() - tic
    if dist.is_initialized():
        for t in (loss_sum, correct):
            dist.all_reduce(t)
    due = (epoch + 1) % rt.eval_every == 0 or epoch + 1 == epochs
    return {"epoch": epoch + 1, "lr": s.optimizer.param_groups[0]["lr"],
            "train_loss": loss_sum.item() / steps / s.world, "train_top1": correct.item() / (seen * s.world),
            **(evaluate(s.net, s.test_loader, s.autocast, s.num_classes) if due else {}),
            "train_img_s": seen * s.world / train_time, "epoch_time_s": time.perf_counter() - tic}


def checkpoint(s: Session, folder: RunFolder, epoch: int, history: list[dict]) -> None:
    """After an epoch: the checkpoint (but after the last, which the final weights follow at once) and
    ``metrics.csv`` (rank 0 only)."""
    if s.rank != 0:
        return
    if epoch + 1 < s.cfg.optim.epochs:
        folder.save_checkpoint({"model": s.model.state_dict(), "optimizer": s.optimizer.state_dict(),
                                "scheduler": s.scheduler.state_dict(), "epoch": epoch, "history": history,
                                "rng": _rng_state()})
    folder.write_metrics(history)


def result(s: Session, history: list[dict]) -> dict:
    """The run's result: final metrics (and top-1 with flip test-time augmentation, which changes no
    weight), what was frozen, timings and provenance."""
    last, r = history[-1], s.report
    flip = evaluate(s.net, s.test_loader, s.autocast, s.num_classes, flip=True)
    return {"top1": last["top1"], **({"top5": last["top5"]} if "top5" in last else {}), "top1_flip": flip["top1"],
            "test_loss": last["test_loss"], "train_top1": last["train_top1"], "epochs": s.cfg.optim.epochs,
            "num_classes": s.num_classes, "train_images": s.train_images, "test_images": s.test_images,
            "n_units_total": r.n_units, "frozen_units": r.units, "frozen_params": r.frozen_params,
            "total_params": r.total_params, "frozen_fraction": r.frozen_fraction,
            "train_time_s": sum(h["epoch_time_s"] for h in history), "device": str(s.device), "world_size": s.world,
            "provenance": provenance(s.device)}


def fit(cfg: DictConfig, run_dir: str | Path, source: dict[str, torch.Tensor] | None = None,
        step_hook: StepHook | None = None) -> dict:
    """Train the run described by ``cfg`` in ``run_dir``; returns the result dict (also ``result.json``).

    :func:`setup`, :func:`resume` from the folder's checkpoint, then :func:`train_epoch` and
    :func:`checkpoint` per epoch, and the :func:`result`; the folder's files are :mod:`mkf_utils.runfolder`'s.

    Args:
        cfg: a config from :func:`mkf_utils.config.load_config`.
        run_dir: the run's folder; an existing ``checkpoint.pt`` there is resumed.
        source: the source model's state_dict for a transfer (``cfg.transfer``).
        step_hook: called as ``step_hook(epoch, step)`` before every training step (tests use it to
            interrupt a run).
    """
    folder = RunFolder(run_dir)
    s = setup(cfg, source)
    history, start = resume(s, folder)
    s.net = wrap(s)
    for epoch in range(start, cfg.optim.epochs):
        history.append(train_epoch(s, epoch, step_hook))
        checkpoint(s, folder, epoch, history)
    out = result(s, history)
    if s.rank == 0:
        folder.finish(s.model.state_dict(), out)
    if dist.is_initialized():
        dist.barrier()
    return out

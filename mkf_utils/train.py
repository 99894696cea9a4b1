"""``fit``: train one run into its folder, resuming from its last checkpoint.

The folder gets ``metrics.csv`` (one row per epoch), ``checkpoint.pt`` (model, optimiser, scheduler,
epoch, RNG states and the metrics so far; written atomically after every epoch), and at the end
``model.pt`` (a plain state_dict) and ``result.json`` (written last: its presence marks a finished run).
Under ``torchrun`` the model is wrapped in DDP, each rank reads its share of every epoch, and only
rank 0 writes.
"""
from __future__ import annotations

import json
import os
import random
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
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
from .transfer import TransferReport, apply_transfer

StepHook = Callable[[int, int], None]


def dist_info() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from torchrun's environment; (0, 1, 0) otherwise."""
    env = os.environ
    return int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0))


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise MKFError("runtime.device=cuda but no CUDA device is visible", "set runtime.device=cpu (or auto)")
    _, world, local = dist_info()
    if name == "cuda" and world > 1:
        name = f"cuda:{local}"
    return torch.device(name)


def atomic_save(obj: object, path: Path) -> None:
    """``torch.save`` to a temporary file, then rename over ``path``: a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def atomic_write_text(text: str, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


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


def load_checkpoint(path: Path) -> dict:
    """Load a training checkpoint; a corrupt one raises :class:`MKFError` and is left in place."""
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # truncated zip, pickle errors, ...
        raise MKFError(f"checkpoint {path} is corrupt ({type(e).__name__}: {e})",
                       f"delete it to restart this run from epoch 0 (`rm {path}`); other runs are unaffected") from None


def evaluate(model: nn.Module, loader, autocast, num_classes: int) -> dict[str, float]:
    """Top-1 (and top-5 when K > 5) accuracy and mean loss on ``loader``, summed over ranks."""
    model.eval()
    k = min(5, num_classes)
    sums = torch.zeros(4, dtype=torch.float64, device=next(model.parameters()).device)  # loss, top1, top5, n
    with torch.no_grad(), autocast():
        for x, y in loader:
            out = model(x).float()
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


def fit(cfg: DictConfig, run_dir: str | Path, source: dict[str, torch.Tensor] | None = None,
        step_hook: StepHook | None = None) -> dict:
    """Train the run described by ``cfg`` in ``run_dir``; returns the result dict (also ``result.json``).

    Args:
        cfg: a config from :func:`mkf_utils.config.load_config`.
        run_dir: the run's folder; an existing ``checkpoint.pt`` there is resumed.
        source: the source model's state_dict for a transfer (``cfg.transfer``).
        step_hook: called as ``step_hook(epoch, step)`` before every training step (tests use it to
            interrupt a run).
    """
    run_dir = Path(run_dir)
    rank, world, _ = dist_info()
    rt = cfg.runtime
    device = resolve_device(rt.device)
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
    amp = rt.amp == "bf16" or (rt.amp == "auto" and device.type == "cuda")
    channels_last = rt.channels_last

    def autocast():
        return torch.autocast(device.type, dtype=torch.bfloat16) if amp else nullcontext()

    random_seed(cfg.seed, rank)
    d = cfg.data
    train_data = load_dataset(d.name, True, d.split, d.root, d.download, d.per_class)
    test_data = load_dataset(d.name, False, d.split, d.root, d.download, d.test_per_class)
    num_classes = len(train_data.classes)
    common = dict(image_size=d.image_size, workers=rt.workers, device=device, channels_last=channels_last,
                  rank=rank, world_size=world)
    train_loader = make_loader(train_data, d.batch_size, True, seed=cfg.seed, augment=d.augment, **common)
    test_loader = make_loader(test_data, rt.eval_batch_size, False, **common)
    if len(train_loader) == 0:
        raise MKFError(f"{len(train_data)} training images make no full batch of {d.batch_size}",
                       "lower data.batch_size or use more data")

    model = create_model(cfg.model.name, num_classes, cfg.model.stem_stride, cfg.model.pretrained,
                         **cfg.model.kwargs)
    t = cfg.transfer
    report = apply_transfer(model, source, t.units, t.n, t.end, t.mode, t.bias, t.norm) if t.n else \
        TransferReport([], 0, total_params=sum(p.numel() for p in model.parameters()))
    model.to(device, memory_format=torch.channels_last if channels_last else torch.preserve_format)
    o = cfg.optim
    optimizer = create_optimizer_v2(model, opt=o.opt, lr=o.lr, weight_decay=o.weight_decay, momentum=o.momentum)
    scheduler, _ = create_scheduler_v2(optimizer, sched="cosine", num_epochs=o.epochs, warmup_epochs=o.warmup_epochs,
                                       warmup_lr=o.lr * 0.01, min_lr=o.min_lr, step_on_epochs=False,
                                       updates_per_epoch=len(train_loader))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=o.label_smoothing)

    history: list[dict] = []
    start = 0
    ckpt_path = run_dir / "checkpoint.pt"
    if ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path)
        try:
            model.load_state_dict(ckpt["model"])
        except RuntimeError as e:
            raise MKFError(f"checkpoint {ckpt_path} does not fit the model ({str(e).splitlines()[0]})",
                           f"delete it to restart this run (`rm {ckpt_path}`)") from None
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        history, start = ckpt["history"], ckpt["epoch"] + 1
        _set_rng_state(ckpt["rng"])

    net = torch.compile(model) if rt.compile else model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    show = rank == 0 and (sys.stderr.isatty() if rt.progress is None else rt.progress)
    steps = len(train_loader)
    for epoch in range(start, o.epochs):
        train_loader.set_epoch(epoch)
        net.train()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        seen = 0
        tic = time.perf_counter()
        for step, (x, y) in enumerate(_progress(train_loader, show, f"epoch {epoch + 1}/{o.epochs}")):
            if step_hook is not None:
                step_hook(epoch, step)
            with autocast():
                out = net(x)
                loss = loss_fn(out, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step_update(epoch * steps + step + 1)
            loss_sum += loss.detach()
            correct += (out.detach().argmax(1) == y).sum()
            seen += len(y)
        train_time = time.perf_counter() - tic
        if dist.is_initialized():
            for t in (loss_sum, correct):
                dist.all_reduce(t)
        row = {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"], "train_loss": loss_sum.item() / steps / world,
               "train_top1": correct.item() / (seen * world),
               **(evaluate(net, test_loader, autocast, num_classes)
                  if (epoch + 1) % rt.eval_every == 0 or epoch + 1 == o.epochs else {}),
               "train_img_s": seen * world / train_time, "epoch_time_s": time.perf_counter() - tic}
        history.append(row)
        if rank == 0:
            atomic_save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                         "scheduler": scheduler.state_dict(), "epoch": epoch, "history": history,
                         "rng": _rng_state()}, ckpt_path)
            atomic_write_text(pd.DataFrame(history).to_csv(index=False), run_dir / "metrics.csv")

    last = history[-1]
    result = {"top1": last["top1"], **({"top5": last["top5"]} if "top5" in last else {}),
              "test_loss": last["test_loss"], "train_top1": last["train_top1"], "epochs": o.epochs,
              "num_classes": num_classes, "train_images": len(train_data), "test_images": len(test_data),
              "n_units_total": report.n_units, "frozen_units": report.units, "frozen_params": report.frozen_params,
              "total_params": report.total_params, "frozen_fraction": report.frozen_fraction,
              "train_time_s": sum(r["epoch_time_s"] for r in history),
              "device": str(device), "world_size": world, "provenance": provenance(device)}
    if rank == 0:
        atomic_save(model.state_dict(), run_dir / "model.pt")
        atomic_write_text(json.dumps(result, indent=1), run_dir / "result.json")
        ckpt_path.unlink(missing_ok=True)
    if dist.is_initialized():
        dist.barrier()
    return result

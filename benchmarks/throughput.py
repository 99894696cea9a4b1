"""Training throughput of the engine's step against a bare PyTorch loop, and of the data path alone.

    python benchmarks/throughput.py [--steps 20] [--models resnet18 convnext_atto] [--stem-stride 2]

For each model, on cifar10-mini at 32 px and batch 128, one run each of:

- bare: a plain loop over batches prepared beforehand (normalised floats, no augmentation);
  SGD + cross-entropy, the same model, memory format and thread count;
- engine: ``mkf_utils.train.fit`` for one epoch of the same number of steps (its in-memory loader
  shuffles, pads-and-crops, flips, normalises every batch; timm optimiser and scheduler; metrics);
- data: the engine's loader alone (augmentation on), no model.

Rates come from the median time between consecutive step starts, so one slow step (a noisy
neighbour on a shared machine) does not move them.

A few bare steps run first so that neither timed loop pays for kernel set-up. It prints img/s and the ratios engine/bare (target >= 0.97) and data/engine (target >= 5).
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from mkf_utils.config import load_config
from mkf_utils.data import TensorLoader, load_dataset, normalize
from mkf_utils.models import create_model
from mkf_utils.train import fit


def median_rate(stamps: list[float], batch: int) -> float:
    """img/s from the median time between consecutive step starts (robust to a noisy neighbour)."""
    return batch / statistics.median(b - a for a, b in zip(stamps, stamps[1:]))


def bare_loop(name: str, stem_stride: int, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    torch.manual_seed(0)
    model = create_model(name, 10, stem_stride).to(memory_format=torch.channels_last).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    stamps = []
    for x, y in batches:
        stamps.append(time.perf_counter())
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    stamps.append(time.perf_counter())
    return median_rate(stamps, len(batches[0][1]))


def engine(name: str, stem_stride: int, steps: int, batch: int) -> float:
    cfg = load_config(overrides=[f"model.name={name}", f"model.stem_stride={stem_stride}", "optim.epochs=1",
                                 f"data.batch_size={batch}", f"data.per_class={steps * batch // 10}",
                                 "optim.lr=0.05", "runtime.progress=false", "runtime.eval_batch_size=500"])
    stamps: list[float] = []
    with tempfile.TemporaryDirectory() as d:
        fit(cfg, d, step_hook=lambda epoch, step: stamps.append(time.perf_counter()))
    return median_rate(stamps, batch)  # the last step's end is not stamped; steps - 1 intervals


def data_path(steps: int, batch: int) -> float:
    data = load_dataset("cifar10-mini", True)
    loader = TensorLoader(data, batch, train=True, channels_last=True)
    tic, n = time.perf_counter(), 0
    for i, (_, y) in enumerate(loader):
        n += len(y)
        if i + 1 == steps:
            break
    return n / (time.perf_counter() - tic)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--models", nargs="+", default=["resnet18", "convnext_atto"])
    ap.add_argument("--stem-stride", type=int, default=2)
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, {args.steps} steps, "
          f"32 px, stem_stride {args.stem_stride}, channels_last")
    data = load_dataset("cifar10-mini", True)
    g = torch.Generator().manual_seed(0)
    idx = torch.randperm(len(data), generator=g)[: args.steps * args.batch].view(args.steps, args.batch)
    batches = [(normalize(data.images[i], channels_last=True), data.labels[i]) for i in idx]
    loader_ips = data_path(args.steps, args.batch)
    print(f"data path alone: {loader_ips:,.0f} img/s")
    for name in args.models:
        bare_loop(name, args.stem_stride, batches[:3])  # warm-up: oneDNN kernels for these shapes
        eng = engine(name, args.stem_stride, args.steps, args.batch)
        bare = bare_loop(name, args.stem_stride, batches)
        print(f"{name:14s} bare {bare:7.1f} img/s   engine {eng:7.1f} img/s   engine/bare {eng / bare:.3f}   "
              f"data/engine {loader_ips / eng:.0f}x")


if __name__ == "__main__":
    main()

"""Training throughput of the engine's step against a bare PyTorch loop, and of the data path alone.

    python benchmarks/throughput.py [--steps 20] [--models resnet18 convnext_atto] [--stem-stride 2]
    python benchmarks/throughput.py --device cuda --image-size 32 224 --batch 256
    python benchmarks/throughput.py --models mobilenetv2_050 --stem-stride 1 --batch 64 --frozen

For each model and image size, one run each of:

- bare: a plain loop over batches prepared beforehand on the device (normalised floats, no augmentation);
  SGD + cross-entropy, the same model, memory format, thread count and, on a GPU, bf16 autocast;
- engine: ``mkf_utils.train.fit`` for one epoch of the same number of steps: at 32 px on cifar10-mini (its
  in-memory loader shuffles, pads-and-crops, flips, normalises every batch, on the GPU there), at 224 px on an
  ImageFolder of JPEGs written to a temporary folder (decoded, random-resized-cropped and flipped in
  ``--workers`` DataLoader workers, pinned memory); timm optimiser and scheduler; metrics;
- data: the engine's loader alone (augmentation on), no model;
- frozen (with ``--frozen``): the engine again with all of the model's transfer units frozen at their init
  (``transfer.mode=random-freeze``; depthwise units, or conv units for a net that has none), the cost of a
  transfer run's step against its base's.

Rates come from the median time between consecutive step starts, so one slow step (a noisy
neighbour on a shared machine) does not move them; on a GPU each step start waits for the previous step.

A few bare steps run first so that neither timed loop pays for kernel set-up. It prints img/s and the ratios
engine/bare (target >= 0.97) and data/engine (target >= 5).
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from pathlib import Path

import torch

from mkf_utils.config import load_config
from mkf_utils.data import load_dataset, make_loader, normalize
from mkf_utils.models import create_model
from mkf_utils.plans import count_units
from mkf_utils.train import fit, resolve_device


def median_rate(stamps: list[float], batch: int) -> float:
    """img/s from the median time between consecutive step starts (robust to a noisy neighbour)."""
    return batch / statistics.median(b - a for a, b in zip(stamps, stamps[1:]))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bare_loop(name: str, stem_stride: int, batches: list[tuple[torch.Tensor, torch.Tensor]],
              device: torch.device) -> float:
    torch.manual_seed(0)
    model = create_model(name, 10, stem_stride).to(device, memory_format=torch.channels_last).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    stamps = []
    for x, y in batches:
        sync(device)
        stamps.append(time.perf_counter())
        with amp:
            loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    sync(device)
    stamps.append(time.perf_counter())
    return median_rate(stamps, len(batches[0][1]))


def folder(root: Path, images: int, size: int = 256) -> Path:
    """An ImageFolder of ``images`` JPEGs (10 classes, ``size`` px, smooth random patterns: file sizes like photos')."""
    from torchvision.io import write_jpeg

    g = torch.Generator().manual_seed(0)
    for i in range(images):
        d = root / "train" / f"c{i % 10}"
        d.mkdir(parents=True, exist_ok=True)
        x = torch.nn.functional.interpolate(torch.rand(1, 3, 16, 16, generator=g), size=size, mode="bilinear")
        write_jpeg((x[0] * 255).to(torch.uint8), str(d / f"{i}.jpg"), quality=90)
    (root / "val").mkdir(exist_ok=True)
    (root / "val" / "c0").symlink_to(root / "train" / "c0", target_is_directory=True)
    return root


def config(name: str, stem_stride: int, steps: int, batch: int, device: torch.device, root: Path | None,
           size: int, workers: int, frozen: bool = False):
    # the test set is evaluated after the timed steps only: 10 images per class keep that short
    data = ([f"data.per_class={steps * batch // 10}", "data.test_per_class=10"] if root is None else
            ["data.name=imagefolder", f"data.root={root}", f"data.image_size={size}", f"runtime.workers={workers}"])
    stem = "null" if stem_stride is None else stem_stride
    transfer = []
    if frozen:
        kind = "depthwise" if count_units(name, "depthwise", stem_stride) else "conv"
        transfer = [f"transfer.units={kind}", f"transfer.n={count_units(name, kind, stem_stride)}",
                    "transfer.mode=random-freeze"]
    return load_config(overrides=[f"model.name={name}", f"model.stem_stride={stem}", "optim.epochs=1",
                                  f"data.batch_size={batch}", "optim.lr=0.05", "runtime.progress=false",
                                  "runtime.eval_batch_size=500", f"runtime.device={device.type}",
                                  "runtime.eval_every=1000", *data, *transfer])


def engine(cfg) -> float:
    stamps: list[float] = []
    device = resolve_device(cfg.runtime.device)

    def hook(epoch: int, step: int) -> None:
        sync(device)
        stamps.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as d:
        fit(cfg, d, step_hook=hook)
    return median_rate(stamps, cfg.data.batch_size)  # the last step's end is not stamped; steps - 1 intervals


def data_path(cfg, steps: int) -> float:
    d = cfg.data
    data = load_dataset(d.name, True, d.split, d.root, False, d.per_class)
    loader = make_loader(data, d.batch_size, True, d.image_size, device=resolve_device(cfg.runtime.device),
                         channels_last=True, workers=cfg.runtime.workers)
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
    ap.add_argument("--stem-stride", type=int, default=2, help="at 32 px; 224 px uses the stock stem")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    ap.add_argument("--image-size", type=int, nargs="+", default=[32], help="32 (in memory) and/or 224 (JPEG folder)")
    ap.add_argument("--workers", type=int, default=8, help="DataLoader workers for the JPEG folder")
    ap.add_argument("--frozen", action="store_true", help="also time the engine with all transfer units frozen")
    args = ap.parse_args()
    device = resolve_device(args.device)
    print(f"torch {torch.__version__}, {device}, {torch.get_num_threads()} threads, batch {args.batch}, "
          f"{args.steps} steps, channels_last{', bf16 autocast' if device.type == 'cuda' else ''}")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.image_size:
            root = None if size == 32 else folder(Path(tmp) / f"jpeg{size}", (args.steps + 1) * args.batch)
            stem = args.stem_stride if size == 32 else None
            first = config(args.models[0], stem, args.steps, args.batch, device, root, size, args.workers)
            d = first.data
            data = load_dataset(d.name, True, d.split, d.root, False, d.per_class)
            idx = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))[: args.steps * args.batch]
            if root is None:
                images = data.images[idx]
            else:  # decoded and resized once, outside the timed loop
                from torchvision.io import decode_image
                from torchvision.transforms.v2.functional import resize

                images = torch.stack([resize(decode_image(data.samples[i][0]), [size, size]) for i in idx.tolist()])
            labels = torch.as_tensor([int(v) for v in (data.labels[idx] if root is None else
                                                       [data.samples[i][1] for i in idx.tolist()])])
            batches = [(normalize(images[i:i + args.batch].to(device), channels_last=True),
                        labels[i:i + args.batch].to(device)) for i in range(0, len(idx), args.batch)]
            loader_ips = data_path(first, args.steps)
            print(f"{size} px ({'in memory' if root is None else f'JPEG folder, {args.workers} workers'}): "
                  f"data path alone {loader_ips:,.0f} img/s")
            for name in args.models:
                bare_loop(name, stem, batches[:3], device)  # warm-up: kernels for these shapes
                eng = engine(config(name, stem, args.steps, args.batch, device, root, size, args.workers))
                bare = bare_loop(name, stem, batches, device)
                print(f"{size:3d} px {name:14s} bare {bare:8.1f} img/s   engine {eng:8.1f} img/s   "
                      f"engine/bare {eng / bare:.3f}   data/engine {loader_ips / eng:.0f}x")
                if args.frozen:
                    frz = engine(config(name, stem, args.steps, args.batch, device, root, size, args.workers, True))
                    print(f"{size:3d} px {name:14s} all units frozen: engine {frz:8.1f} img/s   "
                          f"frozen/engine {frz / eng:.3f}")


if __name__ == "__main__":
    main()

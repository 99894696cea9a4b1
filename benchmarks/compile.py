"""Does ``torch.compile`` speed up CPU training here? Eager against compiled training steps, one thread.

    python benchmarks/compile.py [--steps 20] [--models resnet18:none convnext_atto:2]

For each model (``name:stem_stride``, ``none`` for the stock stem): a bare training step (batch 64, 32 px,
channels_last, SGD, 6 classes), eager and under ``torch.compile`` (inductor, default mode), one thread.
Prints the median img/s after warm-up steps and the compile time (the first compiled step).
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from mkf_utils.models import create_model


def rate(name: str, stem: int | None, compiled: bool, steps: int) -> tuple[float, float]:
    torch.manual_seed(0)
    model = create_model(name, 6, stem).to(memory_format=torch.channels_last).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(64, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 6, (64,))
    fwd = torch.compile(model) if compiled else model

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(fwd(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    tic = time.perf_counter()
    step()
    first = time.perf_counter() - tic
    for _ in range(3):
        step()
    times = []
    for _ in range(steps):
        tic = time.perf_counter()
        step()
        times.append(time.perf_counter() - tic)
    return 64 / statistics.median(times), first


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--models", nargs="*", default=["resnet18:none", "convnext_atto:2"])
    args = ap.parse_args()
    torch.set_num_threads(1)
    print("one thread, batch 64, 32 px: img/s eager vs torch.compile")
    for spec in args.models:
        name, stem = spec.split(":")
        s = None if stem == "none" else int(stem)
        eager, _ = rate(name, s, False, args.steps)
        comp, first = rate(name, s, True, args.steps)
        print(f"{name} (stem {stem}): eager {eager:.0f}, compiled {comp:.0f} ({comp / eager:.2f}x; "
              f"first compiled step {first:.0f} s)", flush=True)


if __name__ == "__main__":
    main()

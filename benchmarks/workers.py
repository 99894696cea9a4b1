"""How to split the cores between runs: P processes with T threads each, total training img/s.

    python benchmarks/workers.py [--steps 15] [--models resnet18:none convnext_atto:2]

For each model (``name:stem_stride``, ``none`` for the stock stem) it times a bare training step (batch 64,
32 px, channels_last, SGD) in every split of the machine's cores into processes x threads (2 cores: 1x2 and
2x1), all processes at once, and prints the images per second of all of them together. The executor's
default (one single-thread worker per core, :mod:`mkf_utils.executor`) comes from this measurement.
"""
from __future__ import annotations

import argparse
import statistics
import time
from multiprocessing import get_context

import torch

from mkf_utils.executor import available_cores
from mkf_utils.models import create_model


def _rate(name: str, stem: int | None, threads: int, steps: int, start, queue) -> None:
    torch.set_num_threads(threads)
    model = create_model(name, 6, stem).to(memory_format=torch.channels_last).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(64, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 6, (64,))
    start.wait()  # every process starts timing together
    times = []
    for _ in range(steps + 3):
        tic = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - tic)
    queue.put(64 / statistics.median(times[3:]))


def measure(name: str, stem: int | None, procs: int, threads: int, steps: int) -> float:
    """Total img/s of ``procs`` processes with ``threads`` threads each, training at once."""
    ctx = get_context("spawn")
    start, queue = ctx.Barrier(procs), ctx.Queue()
    ps = [ctx.Process(target=_rate, args=(name, stem, threads, steps, start, queue)) for _ in range(procs)]
    for p in ps:
        p.start()
    total = sum(queue.get() for _ in ps)
    for p in ps:
        p.join()
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--models", nargs="*", default=["resnet18:none", "convnext_atto:2"])
    args = ap.parse_args()
    cores = available_cores()
    splits = [(p, cores // p) for p in range(1, cores + 1) if cores % p == 0]
    print(f"{cores} cores; total img/s of P processes x T threads, batch 64, 32 px")
    for spec in args.models:
        name, stem = spec.split(":")
        stem = None if stem == "none" else int(stem)
        rates = {s: measure(name, stem, *s, args.steps) for s in splits}
        best = max(rates, key=rates.get)
        cells = ", ".join(f"{p}x{t}: {r:.0f}" for (p, t), r in rates.items())
        print(f"{name} (stem {stem or 'stock'}): {cells}; best {best[0]}x{best[1]} "
              f"({rates[best] / rates[splits[0]]:.2f}x one process)")


if __name__ == "__main__":
    main()

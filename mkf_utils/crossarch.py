"""Depthwise filters of one architecture mapped onto another, for cross-architecture transfer.

Two nets with the same kernel size rarely have the same units and channels (ConvNeXt-atto has 12 depthwise units
of 40-320 channels, -femto the same units with 48-384, -nano 14 units). The mapping:

- **units by relative depth**: target unit ``i`` of ``N_t`` takes the source unit at the same relative depth,
  ``floor(i * (N_s - 1) / (N_t - 1) + 1/2)``: the first takes the first, the last the last;
- **channels by cycling** (channel ``c`` takes source channel ``c mod C_s``) or **by sampling** (``C_t`` source
  channels drawn with a seed, without replacement while there are enough); a channel's bias goes with its filter.

:func:`map_depthwise` returns a state dict keyed by the *target's* unit names, so it serves as a transfer source
file (``torch.save`` it and set ``transfer.source`` to the file): the frozen units then carry the other
architecture's filters.

>>> unit_map(12, 14)
[0, 1, 2, 3, 3, 4, 5, 6, 7, 8, 8, 9, 10, 11]
>>> channel_map(3, 5).tolist()
[0, 1, 2, 0, 1]
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .errors import MKFError
from .units import transfer_units

CHANNELS = ("cycle", "sample")


def unit_map(n_source: int, n_target: int) -> list[int]:
    """For each of ``n_target`` units, the index of the source unit at the same relative depth."""
    if n_source < 1 or n_target < 1:
        raise MKFError(f"cannot map {n_source} source units onto {n_target} target units", "both nets need units")
    if n_target == 1:
        return [n_source - 1]
    return [math.floor(i * (n_source - 1) / (n_target - 1) + 0.5) for i in range(n_target)]


def channel_map(c_source: int, c_target: int, how: str = "cycle", seed: int = 0) -> torch.Tensor:
    """For each of ``c_target`` channels, the source channel it takes: ``c mod c_source`` (``cycle``), or drawn
    with ``seed`` (``sample``: without replacement while ``c_source`` suffices, then cycling through a fresh draw)."""
    if how not in CHANNELS:
        raise MKFError(f"unknown channel mapping '{how}'", f"use one of: {', '.join(CHANNELS)}")
    if how == "cycle":
        return torch.arange(c_target) % c_source
    g = torch.Generator().manual_seed(seed)
    draws = torch.cat([torch.randperm(c_source, generator=g) for _ in range(-(-c_target // c_source))])
    return draws[:c_target]


def map_depthwise(source: dict[str, torch.Tensor], source_model: nn.Module, target_model: nn.Module,
                  channels: str = "cycle", seed: int = 0) -> dict[str, torch.Tensor]:
    """The depthwise weights (and biases) of ``source`` (a state dict of ``source_model``'s architecture) laid
    out for ``target_model``: units by relative depth, channels by ``channels`` (see the module docstring)."""
    src_units, tgt_units = transfer_units(source_model, "depthwise"), transfer_units(target_model, "depthwise")
    if not src_units or not tgt_units:
        raise MKFError("both nets need depthwise units", "map between DS-CNNs (ConvNeXt, ...)")
    target = target_model.state_dict()
    out: dict[str, torch.Tensor] = {}
    for i, j in enumerate(unit_map(len(src_units), len(tgt_units))):
        sw, tw = source[f"{src_units[j]}.weight"], target[f"{tgt_units[i]}.weight"]
        if sw.shape[1:] != tw.shape[1:]:
            raise MKFError(f"depthwise kernels differ: {src_units[j]} is {tuple(sw.shape[1:])}, {tgt_units[i]} is "
                           f"{tuple(tw.shape[1:])}", "map between nets with the same depthwise kernel size")
        idx = channel_map(len(sw), len(tw), channels, seed + i)
        out[f"{tgt_units[i]}.weight"] = sw[idx].clone()
        if f"{src_units[j]}.bias" in source and f"{tgt_units[i]}.bias" in target:
            out[f"{tgt_units[i]}.bias"] = source[f"{src_units[j]}.bias"][idx].clone()
    return out

"""Transfer units: the ordered layers that "layer n" counts, in forward (execution) order.

Order comes from hooks on a dummy forward pass, not from module registration order. Kinds:

- ``depthwise``: ``Conv2d`` with ``groups == in_channels > 1`` (the spatial filters of a DS-CNN).
- ``pointwise``: 1x1 ``Conv2d`` with ``groups == 1`` and ``Linear`` layers, the classifier excluded.
- ``conv``: every ``Conv2d`` on the main path (ResNet-18: the stem conv + 16 block convs = 17).
- ``block``: residual blocks (classes named ``*Block`` or ``*Bottleneck``), the stem excluded.
- ``separable``: the same blocks, of which only the filters move (:func:`block_layers`): a ConvNeXt block's
  depthwise conv and both pointwise layers together; its norm and layer scale stay trainable.

Shortcut projections (ResNet's ``downsample``) are not units: a conv that reads the same tensor
as an earlier conv is a parallel branch, and only the first reader counts. They stay trainable.

>>> from mkf_utils.models import create_model
>>> transfer_units(create_model("convnext_atto", 10), "depthwise")[:2]
['stages.0.blocks.0.conv_dw', 'stages.0.blocks.1.conv_dw']
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import nn

from .errors import MKFError

UNIT_KINDS = ("depthwise", "pointwise", "conv", "block", "separable")
BLOCK_KINDS = ("block", "separable")  # kinds whose units are whole residual blocks
NORM_TYPES = (nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)
_BLOCK_NAME = re.compile(r"(Block|Bottleneck)$")


@dataclass
class Call:
    """One module call in a traced forward pass."""

    name: str
    module: nn.Module
    input: torch.Tensor | None


def trace(model: nn.Module, size: int = 64) -> list[Call]:
    """Every module call of one eval-mode forward pass of a dummy ``size`` px batch, in execution order."""
    in_chans = next((m.in_channels for m in model.modules() if isinstance(m, nn.Conv2d)), 3)
    calls: list[Call] = []

    def record(name: str):  # a pre-hook: a block is entered before its children run
        return lambda m, args: calls.append(Call(name, m, args[0] if args and torch.is_tensor(args[0]) else None))

    handles = [m.register_forward_pre_hook(record(n)) for n, m in model.named_modules() if n]
    was_training = model.training
    try:
        model.eval()
        p = next(model.parameters())
        with torch.no_grad():
            model(torch.zeros(1, in_chans, size, size, device=p.device, dtype=p.dtype))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return calls


def _is_unit(kind: str, m: nn.Module) -> bool:
    if kind == "depthwise":
        return isinstance(m, nn.Conv2d) and m.groups == m.in_channels > 1
    if kind == "pointwise":
        return (isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) and m.groups == 1) or isinstance(m, nn.Linear)
    if kind == "conv":
        return isinstance(m, nn.Conv2d)
    return bool(_BLOCK_NAME.search(type(m).__name__))  # block, separable


def transfer_units(model: nn.Module, kind: str = "depthwise", calls: list[Call] | None = None) -> list[str]:
    """Names of ``model``'s transfer units of ``kind``, in forward order.

    >>> from mkf_utils.models import create_model
    >>> len(transfer_units(create_model("resnet18", 10), "conv"))
    17
    """
    if kind not in UNIT_KINDS:
        raise MKFError(f"unknown unit kind '{kind}'", f"use one of: {', '.join(UNIT_KINDS)}")
    calls = calls if calls is not None else trace(model)
    head = model.get_classifier() if hasattr(model, "get_classifier") else None
    units: list[str] = []
    read: list[torch.Tensor] = []  # inputs already read by a conv or linear layer
    for c in calls:
        branch = False
        if isinstance(c.module, (nn.Conv2d, nn.Linear)) and c.input is not None:
            branch = any(c.input is t for t in read)  # a parallel branch (shortcut projection)
            read.append(c.input)
        if not _is_unit(kind, c.module) or c.module is head or c.name in units or branch:
            continue
        if kind not in BLOCK_KINDS or not any(c.name.startswith(u + ".") for u in units):
            units.append(c.name)
    return units


def block_layers(model: nn.Module, blocks: list[str], calls: list[Call] | None = None) -> list[str]:
    """The conv and linear units (``conv`` and ``pointwise`` kinds: shortcut projections excluded) inside
    ``blocks``, in forward order: what a ``separable`` unit moves.

    >>> from mkf_utils.models import create_model
    >>> block_layers(create_model("convnext_atto", 10), ["stages.0.blocks.0"])
    ['stages.0.blocks.0.conv_dw', 'stages.0.blocks.0.mlp.fc1', 'stages.0.blocks.0.mlp.fc2']
    """
    calls = calls if calls is not None else trace(model)
    layers = set(transfer_units(model, "conv", calls)) | set(transfer_units(model, "pointwise", calls))
    order = list(dict.fromkeys(c.name for c in calls))
    return [n for n in order if n in layers and any(n.startswith(b + ".") for b in blocks)]


def following_norms(model: nn.Module, units: list[str], calls: list[Call] | None = None) -> dict[str, str | None]:
    """For each unit, the norm layer that runs next (before any other layer with parameters), if any.

    >>> from mkf_utils.models import create_model
    >>> following_norms(create_model("resnet18", 10), ["conv1"])
    {'conv1': 'bn1'}
    """
    calls = calls if calls is not None else trace(model)
    leaves = [c for c in calls if not list(c.module.children()) and any(True for _ in c.module.parameters(False))]
    out: dict[str, str | None] = {}
    for u in units:
        i = next((i for i, c in enumerate(leaves) if c.name == u), None)
        nxt = leaves[i + 1] if i is not None and i + 1 < len(leaves) else None
        out[u] = nxt.name if nxt is not None and _is_norm(nxt.module) else None
    return out


def _is_norm(m: nn.Module) -> bool:
    return isinstance(m, NORM_TYPES) or "norm" in type(m).__name__.lower()


def map_sizes(model: nn.Module, kind: str = "depthwise", image_size: int = 32) -> dict[str, tuple[int, int]]:
    """The spatial size (H, W) of the map each unit reads, for ``image_size`` px inputs. A k x k filter on a
    map smaller than k only ever meets its central taps (on 1x1, only the centre one).

    >>> from mkf_utils.models import create_model
    >>> sizes = map_sizes(create_model("convnext_atto", 10, stem_stride=2), "depthwise", 32)
    >>> sizes["stages.0.blocks.0.conv_dw"], sizes["stages.3.blocks.1.conv_dw"]
    ((16, 16), (2, 2))
    """
    calls = trace(model, image_size)
    units = set(transfer_units(model, kind, calls))
    return {c.name: tuple(c.input.shape[-2:]) for c in calls if c.name in units and c.input is not None}

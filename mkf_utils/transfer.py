"""Copy the first (or last) n transfer units from a source state_dict into a fresh model, and freeze them.

Modes (Yosinski et al. 2014's treatments; A = source data, B = target data):

- ``copy-freeze``: AnB when the source was trained on A, the selffer BnB when it was trained on B.
- ``copy-train``: AnB+ (copied, then fine-tuned with the rest).
- ``random-freeze``: the same units frozen at their fresh random init (nothing copied): a control for
  "the filters barely matter at this scale".
- ``bank-freeze``: depthwise units frozen to a bank of ``bank_size`` distinct filters (:mod:`mkf_utils.banks`):
  ``bank`` names it (``master-key``: the master key filters; ``random``: filters of the net's own init;
  ``identity``: the centre tap; ``centres``: k-means centres of the source's depthwise filters; ``exemplars``:
  the source's filters nearest those centres). ``assign`` says
  which channel gets which: ``cycle`` (channel ``c`` gets filter ``c mod k``, the unit scaled to the standard
  deviation of its fresh init), ``fit`` (each channel the bank's best fit ``a * f_k + b`` of the source's filter)
  or ``auto`` (``fit`` for the master key bank with a source, else ``cycle``). Biases stay at their init.
- ``permute-freeze``: the source's filters copied with their channels shuffled within each unit (biases with
  them), frozen: the right filters in the wrong channels.
- ``radial-freeze``: Gaussian filters whose energy per ring of taps equals the source unit's, biases at init,
  frozen: the copied filters' centring without their shapes.

Options next to a unit (defaults in brackets):

- ``bias`` [``freeze``]: a conv unit's bias goes with its filter (copied and frozen); ``train`` leaves the
  bias at its fresh init and trains it, so that only the filter weights transfer.
- ``norm`` [``train``]: the norm layer that directly follows a unit (BatchNorm after a ResNet conv, the
  LayerNorm after a ConvNeXt depthwise conv) stays freshly initialised and trainable; ``freeze`` copies
  it and freezes it, running statistics included: the module becomes a frozen norm (:func:`freeze_norm`),
  which stays in eval mode whatever ``model.train()`` says.

Block units (``units="block"``) carry everything inside the block; ``bias`` and ``norm`` do not apply.
Separable units (``units="separable"``, n counting blocks) carry the conv and linear layers inside each block
(a ConvNeXt block's depthwise and pointwise filters together), with ``bias`` and ``norm`` applying to each.
The apply step runs before the optimiser is built, so frozen tensors never reach it.

>>> from mkf_utils.models import create_model
>>> src = create_model("convnext_atto", 4).state_dict()
>>> model = create_model("convnext_atto", 6)
>>> report = apply_transfer(model, src, units="depthwise", n=12)
>>> report.n_units, round(report.frozen_fraction, 3)
(12, 0.027)
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from omegaconf import DictConfig
from torch import nn

from .banks import BANKS, FROM_SOURCE, cycle_bank, fit_bank, make_bank, radial_random
from .errors import MKFError
from .units import Call, block_layers, following_norms, trace, transfer_units

MODES = ("copy-freeze", "copy-train", "random-freeze", "bank-freeze", "permute-freeze", "radial-freeze")
ASSIGN = ("auto", "cycle", "fit")
DEPTHWISE_MODES = ("bank-freeze", "permute-freeze", "radial-freeze")  # they replace depthwise filters only
ENDS = ("first", "last")
BIAS_OPTIONS = ("freeze", "train")
NORM_OPTIONS = ("train", "freeze")
_FROZEN_CLASSES: dict[type, type] = {}


def freeze_norm(module: nn.modules.batchnorm._NormBase) -> nn.Module:
    """Turn a batch-norm module into a frozen one, in place: its class becomes a subclass whose ``train()``
    always means eval (running statistics fixed) and whose parameters do not require grad. Its state_dict
    keys and values are unchanged, so checkpoints still load into stock timm models.

    >>> bn = freeze_norm(nn.BatchNorm2d(4))
    >>> type(bn).__name__, bn.train().training, bn.weight.requires_grad
    ('FrozenBatchNorm2d', False, False)
    """
    cls = type(module)
    if cls not in _FROZEN_CLASSES.values():
        if cls not in _FROZEN_CLASSES:
            _FROZEN_CLASSES[cls] = type(f"Frozen{cls.__name__}", (cls,), {
                "train": lambda self, mode=True: super(type(self), self).train(False),
                "__doc__": f"{cls.__name__} frozen by mkf_utils.transfer.freeze_norm: always in eval mode."})
        module.__class__ = _FROZEN_CLASSES[cls]
    module.eval()
    for p in module.parameters(recurse=False):
        p.requires_grad_(False)
    return module


@dataclass
class TransferReport:
    """What :func:`apply_transfer` did: which units, which tensors, and the frozen share of parameters."""

    units: list[str]
    n_units: int
    copied: list[str] = field(default_factory=list)
    frozen: list[str] = field(default_factory=list)
    frozen_params: int = 0
    total_params: int = 0

    @property
    def frozen_fraction(self) -> float:
        return self.frozen_params / max(self.total_params, 1)


def select_units(all_units: list[str], n: int, end: str = "first") -> list[str]:
    """The first (``end="first"``) or last (``end="last"``) ``n`` of ``all_units``.

    >>> select_units(["a", "b", "c"], 2, "last")
    ['b', 'c']
    """
    if end not in ENDS:
        raise MKFError(f"unknown transfer.end '{end}'", f"use one of: {', '.join(ENDS)}")
    if not 0 <= n <= len(all_units):
        raise MKFError(f"transfer.n={n} is out of range: the model has {len(all_units)} units of this kind",
                       f"choose n in 0..{len(all_units)}")
    return all_units[:n] if end == "first" else all_units[len(all_units) - n:]


def _unit_tensors(model: nn.Module, units: list[str], kind: str, bias: str, norm: str,
                  calls: list[Call]) -> tuple[list[str], list[nn.Module]]:
    """State-dict keys that move with ``units``, and the norm modules to keep in eval mode."""
    modules = dict(model.named_modules())
    if kind == "separable":
        units = block_layers(model, units, calls)
    skip_bias = kind != "block" and bias == "train"
    names: list[str] = []
    for u in units:
        names += [f"{u}.{k}" for k in modules[u].state_dict() if not (skip_bias and k == "bias")]
    norm_modules = [m for u in units for m in modules[u].modules() if isinstance(m, nn.modules.batchnorm._NormBase)]
    if kind != "block" and norm == "freeze":
        for nm in following_norms(model, units, calls).values():
            if nm is not None:
                names += [f"{nm}.{k}" for k in modules[nm].state_dict()]
                norm_modules.append(modules[nm])
    return names, norm_modules


def source_need(mode: str, bank: str = "master-key", assign: str = "auto") -> str:
    """Whether a transfer reads a source checkpoint: ``required``, ``optional`` (``master-key`` bank-freeze: a
    source turns the cycled bank into best fits) or ``none``. The one place that says which modes copy.

    >>> source_need("random-freeze"), source_need("bank-freeze"), source_need("bank-freeze", "centres")
    ('none', 'optional', 'required')
    >>> source_need("bank-freeze", "master-key", "cycle")
    'none'
    """
    if mode == "random-freeze" or (mode == "bank-freeze" and assign != "fit" and (
            bank in ("random", "identity") or (bank == "master-key" and assign == "cycle"))):
        return "none"
    if mode == "bank-freeze" and bank == "master-key" and assign == "auto":
        return "optional"
    return "required"


def uses_source(t: DictConfig) -> bool:
    """Whether transfer config ``t`` (``cfg.transfer``) reads ``t.source``: it transfers units and its mode needs
    a source, or may use one and has one."""
    need = source_need(t.mode, t.get("bank", "master-key"), t.get("assign", "auto"))
    return bool(t.n) and (need == "required" or (need == "optional" and bool(t.source)))


def _frozen_weights(target: dict[str, torch.Tensor], source: dict[str, torch.Tensor] | None, chosen: list[str],
                    all_units: list[str], mode: str, bank: str, bank_size: int, assign: str,
                    seed: int) -> dict[str, torch.Tensor]:
    """The new tensors of ``chosen`` depthwise units for the bank, permute and radial modes."""
    g = torch.Generator().manual_seed(seed)
    src = lambda u, key="weight": source[f"{u}.{key}"].detach().float()  # noqa: E731
    out: dict[str, torch.Tensor] = {}
    if mode == "bank-freeze":
        pool = lambda units: torch.cat([w.reshape(-1, *w.shape[-2:]) for w in units])  # noqa: E731
        init = pool([target[f"{u}.weight"].detach().float() for u in all_units])
        filters = make_bank(bank, bank_size, init, pool([src(u) for u in all_units]) if bank in FROM_SOURCE else None,
                            seed)
        fit = assign == "fit" or (assign == "auto" and bank == "master-key" and source is not None)
        for u in chosen:
            w = target[f"{u}.weight"].detach().float()
            out[f"{u}.weight"] = fit_bank(w, src(u), filters) if fit else cycle_bank(w, filters)
    elif mode == "permute-freeze":
        for u in chosen:
            perm = torch.randperm(len(target[f"{u}.weight"]), generator=g)
            out[f"{u}.weight"] = src(u)[perm]
            if f"{u}.bias" in target and f"{u}.bias" in source:
                out[f"{u}.bias"] = src(u, "bias")[perm]
    else:
        for u in chosen:
            out[f"{u}.weight"] = radial_random(src(u), g)
    return out


def apply_transfer(model: nn.Module, source: dict[str, torch.Tensor] | None, units: str = "depthwise", n: int = 0,
                   end: str = "first", mode: str = "copy-freeze", bias: str = "freeze",
                   norm: str = "train", bank: str = "master-key", bank_size: int = 8, assign: str = "auto",
                   seed: int = 0) -> TransferReport:
    """Copy (unless ``mode="random-freeze"``) and freeze (unless ``mode="copy-train"``) ``n`` units.

    Args:
        model: the freshly initialised target model (its head may differ from the source's).
        source: the source model's state_dict (None only for ``random-freeze``).
        units: the unit kind (:data:`mkf_utils.units.UNIT_KINDS`).
        n: how many units; 0 transfers nothing.
        end: ``first`` counts from the input, ``last`` from the output (reverse freezing).
        mode, bias, norm, bank, bank_size, assign: see the module docstring.
        seed: fixes the random draws of the ``random`` bank, the k-means start, permutations and radial filters.
    """
    for value, options, key in ((mode, MODES, "mode"), (bias, BIAS_OPTIONS, "bias"), (norm, NORM_OPTIONS, "norm"),
                                (bank, BANKS, "bank"), (assign, ASSIGN, "assign")):
        if value not in options:
            raise MKFError(f"unknown transfer.{key} '{value}'", f"use one of: {', '.join(options)}")
    calls = trace(model)
    all_units = transfer_units(model, units, calls)
    if not all_units:
        raise MKFError(f"model {type(model).__name__} has no '{units}' units",
                       "pick another transfer.units (`mkf units MODEL --kind KIND` lists them)")
    chosen = select_units(all_units, n, end)
    names, norm_modules = _unit_tensors(model, chosen, units, bias, norm, calls)
    report = TransferReport(chosen, len(all_units), total_params=sum(p.numel() for p in model.parameters()))
    target = model.state_dict(keep_vars=True)
    if mode in DEPTHWISE_MODES:
        if units != "depthwise":
            raise MKFError(f"transfer.mode={mode} works on depthwise units, not '{units}'", "set transfer.units=depthwise")
        if source is None and source_need(mode, bank, assign) == "required":
            raise MKFError(f"transfer.mode={mode} with transfer.bank={bank} needs a source checkpoint",
                           "set transfer.source to a run id or file")
        with torch.no_grad():
            for key, value in _frozen_weights(target, source, chosen, all_units, mode, bank, bank_size, assign,
                                              seed).items():
                target[key].copy_(value)
                report.copied.append(key)
    elif mode != "random-freeze" and names:
        if source is None:
            raise MKFError(f"transfer.mode={mode} needs a source checkpoint", "set transfer.source to a run id or file")
        bad = [k for k in names if k not in source or source[k].shape != target[k].shape]
        if bad:
            k = bad[0]
            got = tuple(source[k].shape) if k in source else "missing"
            raise MKFError(f"the source checkpoint does not fit the model: {k} is {got}, the model wants "
                           f"{tuple(target[k].shape)} ({len(bad)} tensors differ)",
                           "use a source trained with the same model name and model.kwargs")
        with torch.no_grad():
            for k in names:
                target[k].copy_(source[k])
        report.copied = names
    if mode != "copy-train":
        params = dict(model.named_parameters())
        for k in names:
            if k in params:
                params[k].requires_grad_(False)
                report.frozen.append(k)
                report.frozen_params += params[k].numel()
        for m in norm_modules:
            freeze_norm(m)
    return report

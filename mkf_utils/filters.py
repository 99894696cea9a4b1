"""Filters as data: take them out of a net, compare two nets' filters, fit the master key filters.

A net's filters per transfer unit (:func:`unit_filters`) are 2-D kernels: a depthwise conv's ``C x k x k``
weight gives ``C`` filters, a full conv's ``out x in x k x k`` weight gives ``out * in`` of them.

- :func:`best_match` measures how alike two banks are: for each filter of one bank, the largest absolute
  cosine similarity to any filter of the other (sign-free: ``f`` and ``-f`` detect the same edge), averaged.
  Identical or permuted banks give 1, sign-flipped ones too; unrelated random banks give a chance level that
  grows with the bank's size and falls with the kernel's size.
- :func:`master_key_fit` gives each filter's share of variance explained by its best fit ``a * f_k + b``
  over the 8 master key filters (the squared correlation with the best-correlated ``f_k``).
- :func:`cluster_share` clusters sign-normalised filters with k-means and reports, per unit, the share of
  filters within a cosine distance of a centre.

>>> bank = master_key_filters()
>>> tuple(bank.shape)
(8, 7, 7)
>>> round(best_match(bank, bank.flip(0)), 6), round(best_match(bank, -bank), 6)
(1.0, 1.0)
>>> master_key_fit(3 * bank[2:3] + 0.5).round(decimals=6).tolist()
[1.0]
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from .errors import MKFError
from .models import create_model
from .runfolder import load_weights
from .units import transfer_units

BANK_FILE = "data_files/master_key_filters/8Filters.txt"


def master_key_filters() -> torch.Tensor:
    """The 8 master key filters (``8 x 7 x 7``, float32) shipped with the package (CC BY 4.0; see
    ``mkf_utils/data_files/master_key_filters/README.md`` for the source and credit)."""
    text = resources.files("mkf_utils").joinpath(BANK_FILE).read_text()
    rows = [[float(v) for v in line.split()] for line in text.splitlines() if line.strip() and
            not line.startswith("Filter")]
    bank = torch.tensor(rows, dtype=torch.float32)
    if bank.shape != (56, 7):
        raise MKFError(f"{BANK_FILE} holds {tuple(bank.shape)} numbers, not 8 filters of 7x7",
                       "restore the file from the repository")
    return bank.view(8, 7, 7)


def unit_filters(model: nn.Module, kind: str = "depthwise") -> dict[str, torch.Tensor]:
    """Each transfer unit's 2-D filters (``N x k x k``, float32, detached), in forward order.

    >>> from mkf_utils.models import create_model
    >>> f = unit_filters(create_model("convnext_atto", 4))
    >>> len(f), tuple(next(iter(f.values())).shape)
    (12, (40, 7, 7))
    """
    modules = dict(model.named_modules())
    out = {}
    for name in transfer_units(model, kind):
        w = getattr(modules[name], "weight", None)
        if w is None or w.dim() != 4:
            raise MKFError(f"unit {name} has no conv kernel", "use kind 'depthwise' or 'conv'")
        out[name] = w.detach().float().reshape(-1, *w.shape[-2:]).clone()
    return out


def sign_normalise(filters: torch.Tensor) -> torch.Tensor:
    """Filters (``N x k x k``) scaled to unit norm and signed so that their largest-magnitude tap is positive."""
    flat = filters.reshape(len(filters), -1)
    peak = flat.gather(1, flat.abs().argmax(1, keepdim=True))
    flat = flat * torch.where(peak < 0, -1.0, 1.0)
    return (flat / flat.norm(dim=1, keepdim=True).clamp_min(1e-12)).view_as(filters)


def sample(filters: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """At most ``n`` of ``filters``, drawn without replacement with a fixed seed (all of them if fewer)."""
    if len(filters) <= n:
        return filters
    g = torch.Generator().manual_seed(seed)
    return filters[torch.randperm(len(filters), generator=g)[:n]]


def best_match(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean over the filters of ``a`` of the largest ``|cos|`` to a filter of ``b`` (both ``N x k x k``).

    >>> g = torch.Generator().manual_seed(0)
    >>> x, y = torch.randn(64, 7, 7, generator=g), torch.randn(64, 7, 7, generator=g)
    >>> best_match(x, x), 0.3 < best_match(x, y) < 0.6
    (1.0, True)
    """
    if a.shape[1:] != b.shape[1:]:
        raise MKFError(f"filters of {tuple(a.shape[1:])} and {tuple(b.shape[1:])} cannot be compared",
                       "compare units with the same kernel size")
    na = sign_normalise(a).reshape(len(a), -1)
    nb = sign_normalise(b).reshape(len(b), -1)
    return round(float((na @ nb.T).abs().amax(1).mean()), 6)


def best_fit(filters: torch.Tensor, bank: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
    """Per filter (``N x 7 x 7``), its least-squares fit ``a * f_k + b`` by the best filter ``f_k`` of the bank
    (default: :func:`master_key_filters`): ``(k, a, b, explained)``, ``explained`` being the share of the
    filter's variance the fit explains (the largest squared correlation; 0 for a constant filter)."""
    bank = master_key_filters() if bank is None else bank
    if filters.shape[1:] != bank.shape[1:]:
        raise MKFError(f"filters of {tuple(filters.shape[1:])} cannot be fitted by a bank of {tuple(bank.shape[1:])}",
                       "the master key filters are 7x7: use a net with 7x7 depthwise filters (ConvNeXt)")
    f = filters.reshape(len(filters), -1)
    g = bank.reshape(len(bank), -1).to(f)
    fc, gc = f - f.mean(1, keepdim=True), g - g.mean(1, keepdim=True)
    fn = fc.norm(dim=1, keepdim=True)
    r2, k = ((fc @ gc.T) / (fn * gc.norm(dim=1)).clamp_min(1e-12)).pow(2).max(1)
    a = (fc * gc[k]).sum(1) / gc[k].pow(2).sum(1)
    b = f.mean(1) - a * g[k].mean(1)
    return k, a, b, torch.where(fn.squeeze(1) > 1e-12, r2, torch.zeros_like(r2))


def master_key_fit(filters: torch.Tensor, bank: torch.Tensor | None = None) -> torch.Tensor:
    """Per filter (``N x 7 x 7``), the share of its variance that the best ``a * f_k + b`` explains
    (:func:`best_fit`)."""
    return best_fit(filters, bank)[3]


def kmeans(x: torch.Tensor, k: int, seed: int = 0, iters: int = 50) -> torch.Tensor:
    """``k`` centres of the rows of ``x`` (``N x d``) by Lloyd's algorithm under cosine similarity (spherical
    k-means), seeded by k-means++ (each next centre drawn with probability growing with its cosine distance
    to the centres so far; ``seed`` fixes the draws); unit-norm rows."""
    x = x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)
    g = torch.Generator().manual_seed(seed)
    centres = x[torch.randint(len(x), (1,), generator=g)]
    while len(centres) < min(k, len(x)):
        dist = (1 - (x @ centres.T).amax(1)).clamp_min(0) ** 2
        pick = torch.multinomial(dist + 1e-12, 1, generator=g) if dist.sum() > 0 else torch.randint(len(x), (1,), generator=g)
        centres = torch.cat([centres, x[pick]])
    for _ in range(iters):
        nearest = (x @ centres.T).argmax(1)
        new = torch.stack([x[nearest == j].sum(0) if (nearest == j).any() else centres[j] for j in range(len(centres))])
        new = new / new.norm(dim=1, keepdim=True).clamp_min(1e-12)
        if torch.allclose(new, centres):
            break
        centres = new
    return centres


def cluster_share(banks: dict[str, torch.Tensor], k: int = 8, close: float = 0.8, seed: int = 0) -> dict[str, float]:
    """k-means over the sign-normalised filters of every bank together; per bank, the share of its filters
    whose cosine similarity to the nearest centre is at least ``close``.

    >>> base = torch.eye(9)[:2].view(2, 3, 3)
    >>> banks = {"tight": base.repeat(20, 1, 1), "random": torch.randn(40, 3, 3, generator=torch.Generator().manual_seed(0))}
    >>> share = cluster_share(banks, k=2)
    >>> share["tight"], share["random"] < 0.5
    (1.0, True)
    """
    normed = {name: sign_normalise(f).reshape(len(f), -1) for name, f in banks.items()}
    centres = kmeans(torch.cat(list(normed.values())), k, seed)
    return {name: round(float(((x @ centres.T).amax(1) >= close).float().mean()), 6) for name, x in normed.items()}


def checkpoint_model(path: str, name: str) -> nn.Module:
    """A timm net ``name`` (its body; the head is dropped) with the weights of the state_dict file ``path``,
    e.g. ImageNet ConvNeXt weights a user already has (nothing is downloaded)."""
    if not Path(path).expanduser().is_file():
        raise MKFError(f"checkpoint {path} is not a file", "give the path of a state_dict file")
    sd = load_weights(Path(path).expanduser())
    net = create_model(name, 0)
    missing, _ = net.load_state_dict(sd, strict=False)
    if missing:
        raise MKFError(f"checkpoint {path} does not fit {name}: {len(missing)} weights missing (e.g. {missing[0]})",
                       "pass the timm name the checkpoint was saved from")
    return net.eval()


def first_middle_last(units: list[str]) -> dict[str, str]:
    """The first, middle and last of ``units`` (in forward order).

    >>> first_middle_last(["a", "b", "c", "d"])
    {'first': 'a', 'middle': 'b', 'last': 'd'}
    """
    return {"first": units[0], "middle": units[(len(units) - 1) // 2], "last": units[-1]}


def gallery(models: dict[str, nn.Module], kind: str = "depthwise", per_unit: int = 8, seed: int = 0) -> pd.DataFrame:
    """The filters a gallery draws: per model, ``per_unit`` filters sampled with ``seed`` from its first,
    middle and last unit, each sign-normalised and scaled to a peak of 1. One row per tap: ``model,
    position, unit, filter, row, col, value``."""
    tables = []
    for label, net in models.items():
        banks = unit_filters(net, kind)
        for position, unit in first_middle_last(list(banks)).items():
            picked = sign_normalise(sample(banks[unit], per_unit, seed))
            picked = picked / picked.flatten(1).amax(1).clamp_min(1e-12).view(-1, 1, 1)
            i, r, c = (t.flatten().tolist() for t in torch.meshgrid(*(torch.arange(n) for n in picked.shape), indexing="ij"))
            tables.append(pd.DataFrame({"model": label, "position": position, "unit": unit, "filter": i, "row": r,
                                        "col": c, "value": [round(v, 4) for v in picked.flatten().tolist()]}))
    return pd.concat(tables, ignore_index=True)


def galleries(nets: dict[str, dict[str, nn.Module]], per_unit: int = 8, seed: int = 0) -> pd.DataFrame:
    """:func:`gallery` of each unit kind's models (``nets``: kind -> label -> model, kinds without models left
    out), one table with the kind as ``units``, in the order of ``nets``."""
    return pd.concat([gallery(models, kind, per_unit, seed).assign(units=kind) for kind, models in nets.items()
                      if models])


def similarity_by_depth(pairs: dict[str, tuple[nn.Module, nn.Module]], kind: str = "depthwise",
                        max_filters: int = 512, seed: int = 0) -> pd.DataFrame:
    """Per model pair and unit: the symmetrised :func:`best_match` of the two nets' filters (at most
    ``max_filters`` of each, sampled with ``seed``). Columns ``pair, unit, index, rel_depth, kernel, similarity``,
    ``rel_depth`` = (index + 1) / units."""
    rows = []
    for label, (a, b) in pairs.items():
        fa, fb = unit_filters(a, kind), unit_filters(b, kind)
        for i, unit in enumerate(fa):
            x, y = sample(fa[unit], max_filters, seed), sample(fb[unit], max_filters, seed)
            rows.append({"pair": label, "unit": unit, "index": i, "rel_depth": (i + 1) / len(fa),
                         "kernel": f"{x.shape[-2]}x{x.shape[-1]}",
                         "similarity": round((best_match(x, y) + best_match(y, x)) / 2, 6)})
    return pd.DataFrame(rows)


def master_key_by_depth(models: dict[str, nn.Module], close: float = 0.8) -> pd.DataFrame:
    """Per model and 7x7 depthwise unit: the mean share of a filter's variance explained by its best
    ``a * f_k + b`` (:func:`master_key_fit`) and the share of filters explained to at least ``close``.
    Columns ``model, unit, index, rel_depth, explained, share_close``."""
    rows = []
    for label, net in models.items():
        banks = unit_filters(net, "depthwise")
        for i, (unit, f) in enumerate(banks.items()):
            r2 = master_key_fit(f)
            rows.append({"model": label, "unit": unit, "index": i, "rel_depth": (i + 1) / len(banks),
                         "explained": round(float(r2.mean()), 6), "share_close": round(float((r2 >= close).float().mean()), 6)})
    return pd.DataFrame(rows)


def clusters_by_depth(models: dict[str, nn.Module], k: int = 8, close: float = 0.8, seed: int = 0) -> pd.DataFrame:
    """Per model, :func:`cluster_share` over all its depthwise units together (one k-means per model).
    Columns ``model, unit, index, rel_depth, share_close``."""
    rows = []
    for label, net in models.items():
        banks = unit_filters(net, "depthwise")
        share = cluster_share(banks, k, close, seed)
        rows += [{"model": label, "unit": u, "index": i, "rel_depth": (i + 1) / len(banks), "share_close": share[u]}
                 for i, u in enumerate(banks)]
    return pd.DataFrame(rows)


def layer_scales(models: dict[str, nn.Module], kind: str = "depthwise") -> pd.DataFrame:
    """Per model and unit: the mean |layer scale| (timm's ``gamma``) of the block the unit sits in, which
    scales the block's whole residual branch (ConvNeXt starts it at 1e-6: until it grows, a block and its
    depthwise filter barely touch the output). Units outside a layer-scaled block are left out.
    Columns ``model, unit, index, rel_depth, layer_scale``."""
    rows = []
    for label, net in models.items():
        modules = dict(net.named_modules())
        units = transfer_units(net, kind)
        for i, unit in enumerate(units):
            block = modules.get(unit.rsplit(".", 1)[0]) if "." in unit else None
            gamma = getattr(block, "gamma", None)
            if isinstance(gamma, torch.Tensor):
                rows.append({"model": label, "unit": unit, "index": i, "rel_depth": (i + 1) / len(units),
                             "layer_scale": round(float(gamma.detach().abs().mean()), 6)})
    return pd.DataFrame(rows, columns=["model", "unit", "index", "rel_depth", "layer_scale"])

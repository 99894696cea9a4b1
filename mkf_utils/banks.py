"""Controls for depthwise filters: banks of few distinct filters, permuted copies, radial-profile random filters.

Each function turns one depthwise unit's weight (``C x 1 x k x k``) into the weight a control freezes:

- :func:`make_bank` builds a bank of ``k`` distinct filters from a named source (:data:`BANKS`): the master key
  filters, random filters drawn from the net's own init, the centre tap alone (identity), k-means centres of
  a trained net's depthwise filters, or the trained filters nearest those centres (exemplars: real filters, not
  means that blur them);
- :func:`cycle_bank` gives channel ``c`` the bank's filter ``c mod k``, scaled so that the unit keeps the standard
  deviation of its fresh init; :func:`fit_bank` gives each channel the bank's best fit ``a * f_k + b`` of a
  source filter;
- :func:`radial_random` draws Gaussian filters whose energy per ring (taps at the same distance from the centre)
  equals a reference unit's (:func:`radial_profile`): the copied filters' centring without their shapes.

>>> w = torch.randn(12, 1, 7, 7)
>>> bank = make_bank("master-key", 4)
>>> tied = cycle_bank(w, bank)
>>> torch.equal(tied[0], tied[4]), bool(torch.isclose(tied.std(), w.std()))
(True, True)
>>> torch.allclose(radial_profile(radial_random(w, torch.Generator().manual_seed(0))), radial_profile(w))
True
"""
from __future__ import annotations

import torch

from .errors import MKFError
from .filters import best_fit, kmeans, master_key_filters, sample, sign_normalise

BANKS = ("master-key", "random", "identity", "centres", "exemplars")
FROM_SOURCE = ("centres", "exemplars")  # banks built from a trained source net's filters


def make_bank(name: str, k: int, init: torch.Tensor | None = None, source: torch.Tensor | None = None,
              seed: int = 0) -> torch.Tensor:
    """A bank of ``k`` filters (``k x h x w``).

    Args:
        name: ``master-key`` (the first ``k`` of the 8 master key filters), ``random`` (``k`` filters sampled with
            ``seed`` from ``init``, the target net's own freshly initialised depthwise filters), ``identity`` (the
            centre tap alone; ``k`` must be 1), ``centres`` (the ``k`` spherical k-means centres, ``seed`` fixing
            the start, of ``source``'s sign-normalised filters: a trained net's depthwise filters) or ``exemplars``
            (for each of those centres, the sign-normalised source filter most like it).
        k: the bank's size.
        init, source: filters (``N x h x w``) of the target's init and of the source net, pooled over its units.

    >>> make_bank("identity", 1, init=torch.zeros(3, 3, 3))[0].tolist()
    [[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]
    >>> src = torch.randn(50, 3, 3, generator=torch.Generator().manual_seed(0))
    >>> ex = make_bank("exemplars", 4, source=src)
    >>> bool(((ex.flatten(1) @ sign_normalise(src).flatten(1).T) > 1 - 1e-6).any(1).all())  # each is a source filter
    True
    """
    if name not in BANKS:
        raise MKFError(f"unknown transfer.bank '{name}'", f"use one of: {', '.join(BANKS)}")
    pool = {"master-key": master_key_filters(), "random": init, "identity": init, "centres": source,
            "exemplars": source}[name]
    if pool is None:
        need = "a source run (transfer.source)" if name in FROM_SOURCE else "the target's init filters"
        raise MKFError(f"transfer.bank={name} needs {need}", "set transfer.source to a finished run's id"
                       if name in FROM_SOURCE else "pass init= (apply_transfer does)")
    limit = 1 if name == "identity" else len(pool)
    if not 1 <= k <= limit:
        raise MKFError(f"transfer.bank_size={k} is out of range for the {name} bank", f"choose 1..{limit}")
    if name == "master-key":
        return pool[:k].clone()
    if name == "random":
        return sample(pool, k, seed).clone()
    if name == "identity":
        h, w = pool.shape[-2:]
        delta = torch.zeros(1, h, w)
        delta[0, h // 2, w // 2] = 1.0
        return delta
    flat = sign_normalise(pool).reshape(len(pool), -1)
    centres = kmeans(flat, k, seed)
    if name == "exemplars":
        centres = flat[(flat @ centres.T).argmax(0)]
    return centres.view(k, *pool.shape[-2:])


def _check_shape(weight: torch.Tensor, bank: torch.Tensor) -> None:
    if weight.dim() != 4 or weight.shape[1] != 1 or weight.shape[2:] != bank.shape[1:]:
        raise MKFError(f"a bank of {tuple(bank.shape[1:])} filters does not fit the unit's weight "
                       f"{tuple(weight.shape)}", "use transfer.units=depthwise on a net whose depthwise kernels "
                       "have the bank's size (the master key filters are 7x7: ConvNeXt)")


def cycle_bank(weight: torch.Tensor, bank: torch.Tensor) -> torch.Tensor:
    """Channel ``c`` gets ``bank[c mod k]``; the whole unit is scaled to ``weight``'s standard deviation (its
    fresh init's), so banks differ in their filters' shapes only."""
    _check_shape(weight, bank)
    f = bank.to(weight)[torch.arange(len(weight)) % len(bank)]
    return (f * weight.std() / f.std().clamp_min(1e-12)).unsqueeze(1)


def fit_bank(weight: torch.Tensor, source: torch.Tensor, bank: torch.Tensor) -> torch.Tensor:
    """Channel ``c`` gets the bank's least-squares fit ``a * f_j + b`` of ``source``'s filter ``c``
    (:func:`mkf_utils.filters.best_fit`)."""
    _check_shape(weight, bank)
    j, a, b, _ = best_fit(source.reshape(len(source), *bank.shape[1:]).to(weight), bank.to(weight))
    g = bank.to(weight).reshape(len(bank), -1)
    return (a[:, None] * g[j] + b[:, None]).view_as(weight)


def rings(h: int, w: int) -> torch.Tensor:
    """Each tap's ring: the index of its squared distance from the centre among the distinct ones (``h x w``).

    >>> rings(3, 3).tolist()
    [[2, 1, 2], [1, 0, 1], [2, 1, 2]]
    """
    i, j = torch.meshgrid(torch.arange(h) - (h - 1) / 2, torch.arange(w) - (w - 1) / 2, indexing="ij")
    d2 = (i ** 2 + j ** 2)
    return torch.unique(d2, return_inverse=True)[1]


def radial_profile(weight: torch.Tensor) -> torch.Tensor:
    """The mean squared tap per ring (:func:`rings`) over all of ``weight``'s filters (``... x h x w``)."""
    r = rings(*weight.shape[-2:]).flatten()
    sq = weight.reshape(-1, r.numel()).pow(2).mean(0)
    return torch.zeros(int(r.max()) + 1, dtype=sq.dtype).index_add_(0, r, sq) / torch.bincount(r).to(sq)


def radial_random(reference: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Gaussian filters shaped like ``reference`` whose :func:`radial_profile` equals the reference's: each ring
    of the draw is rescaled so that its mean squared tap is the reference's."""
    z = torch.randn(reference.shape, generator=generator, dtype=reference.dtype)
    r = rings(*reference.shape[-2:])
    scale = (radial_profile(reference) / radial_profile(z).clamp_min(1e-24)).sqrt()
    return z * scale[r]

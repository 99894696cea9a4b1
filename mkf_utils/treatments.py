"""Treatments by name: what each one sets in ``cfg.transfer`` and which base it copies from.

A = the source half, B = the target half. The source side is ``other`` (base A), ``self`` (base B: the
selffer) or None (nothing copied).

>>> treatment_spec("A-centres k=4")
({'mode': 'bank-freeze', 'bank': 'centres', 'bank_size': 4}, 'other')
>>> treatment_spec("AnB")
({'mode': 'copy-freeze'}, 'other')
>>> treatment_spec("AnB norm-frozen")
({'mode': 'copy-freeze', 'norm': 'freeze'}, 'other')
"""
from __future__ import annotations

import re

from .errors import MKFError

TREATMENTS = {  # name -> (transfer fields, where the source comes from: the other half's base, the same half's, none)
    "AnB": ({"mode": "copy-freeze"}, "other"),
    "BnB": ({"mode": "copy-freeze"}, "self"),
    "AnB+": ({"mode": "copy-train"}, "other"),
    "random-frozen": ({"mode": "random-freeze"}, None),
    # AnB with each frozen unit's norm copied and frozen too (BatchNorm statistics and affine): as in Yosinski's
    # AlexNet, which had no norm layers to retrain; with all of a ResNet's units frozen only its shortcut
    # projections and classifier train (trained norms alone make random features work: Frankle et al. 2021)
    "AnB norm-frozen": ({"mode": "copy-freeze", "norm": "freeze"}, "other"),
    "master-key": ({"mode": "bank-freeze"}, None),  # depthwise units frozen to the 8 master key filters, cycled
    "master-key AnB": ({"mode": "bank-freeze"}, "other"),  # ... to the bank's best fit of base A's filters
    "identity": ({"mode": "bank-freeze", "bank": "identity", "bank_size": 1}, None),  # the centre tap alone
    "permuted AnB": ({"mode": "permute-freeze"}, "other"),  # base A's filters, channels shuffled in each unit
    "radial random": ({"mode": "radial-freeze"}, "other"),  # Gaussian filters with base A's energy per ring
}
# "<bank> k=<k>": every depthwise channel frozen to one of k filters, cycled: the first k master key filters, k of
# the net's own init filters, k-means centres of the other half's (A) or the same half's (B) base's filters, or
# that base's filters nearest those centres (exemplars)
BANK_TREATMENT = re.compile(r"(master-key|random|[AB]-centres|[AB]-exemplars) k=([1-9][0-9]*)")
_BANK = {"master-key": ("master-key", None), "random": ("random", None), "A-centres": ("centres", "other"),
         "B-centres": ("centres", "self"), "A-exemplars": ("exemplars", "other"), "B-exemplars": ("exemplars", "self")}


def treatment_spec(name: str) -> tuple[dict, str | None]:
    """A treatment's transfer fields and where its source comes from (``other``, ``self`` or None); an unknown
    name is an :class:`MKFError` that lists the known ones."""
    if name in TREATMENTS:
        fields, src = TREATMENTS[name]
        return dict(fields), src
    m = BANK_TREATMENT.fullmatch(name)
    if m is None:
        raise MKFError(f"unknown treatment '{name}'",
                       f"use one of: {', '.join(TREATMENTS)}, or '<bank> k=<k>' with a bank of {', '.join(_BANK)}")
    bank, src = _BANK[m.group(1)]
    return {"mode": "bank-freeze", "bank": bank, "bank_size": int(m.group(2))}, src

"""The run index (``runs/INDEX.csv``): which profile section plans each recorded run, and the orphans no profile
plans any more."""
from __future__ import annotations

import functools
import hashlib
import json
import os

import pandas as pd

from .config import run_id
from .profiles import PROFILES, SECTIONS, load_profile, section_plan
from .provenance import REPO
from .runs import RunStore


INDEX_COLUMNS = ["run_id", "profile", "section", "architecture", "treatment", "direction", "n", "n_units", "seed",
                 "per_class", "epochs", "recipe", "top1"]


def _inputs_digest() -> str:
    """A digest of everything a plan is built from: the package's code and the shipped configs and profiles."""
    h = hashlib.sha256()
    for path in sorted([*(REPO / "mkf_utils").glob("*.py"), *(REPO / "configs").rglob("*.yaml")]):
        h.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def _planned() -> tuple[tuple[str, str, str, tuple], ...]:
    """(profile, section, run id, labels as items) of every run some section of some shipped profile plans.

    Building every plan of every profile takes tens of seconds, so the list is kept in ``build/planned/``
    under a digest of the code and configs it comes from (any change to either builds it afresh), and once
    per process."""
    cache = REPO / "build" / "planned" / f"{_inputs_digest()}.json"
    if cache.is_file():
        return tuple((prof, sec, rid, tuple(map(tuple, labels)))
                     for prof, sec, rid, labels in json.loads(cache.read_text()))
    out = []
    for path in sorted(PROFILES.glob("*.yaml")):
        P = load_profile(path.stem)
        for sec in SECTIONS:
            for p in (section_plan(P, sec) if P[sec] is not None else []):
                out.append((path.stem, sec, run_id(p.config), tuple(p.labels.items())))
    try:  # a read-only install just builds it each time
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(out))
        tmp.replace(cache)
    except OSError:
        pass
    return tuple(out)


def index(store: RunStore) -> pd.DataFrame:
    """One row per recorded run of ``store`` and per profile section that plans it (a run shared by two sections
    has two rows): what it is (:data:`INDEX_COLUMNS`) and its top-1. A recorded run that no profile plans any more
    (an orphan) has one row with only its id and top-1. This is ``runs/INDEX.csv``, written by `make records`."""
    rows, seen = [], set()
    for profile, sec, rid, labels in _planned():
        result = store.result(rid)
        if result is not None:
            seen.add(rid)
            rows.append({**dict(labels), "run_id": rid, "profile": profile, "section": sec, "top1": result["top1"]})
    for rid, _ in store.configs():
        if rid not in seen:
            rows.append({"run_id": rid, "top1": store.result(rid)["top1"]})
    table = pd.DataFrame(rows, columns=INDEX_COLUMNS)
    return table.astype({c: "Int64" for c in ("n", "n_units", "seed", "per_class", "epochs")})


def planned_ids() -> dict[str, list[str]]:
    """Every run id that some section of some profile in ``configs/profiles/`` plans, with ``profile:section``
    labels: a record in ``runs/`` whose id is not here is orphaned (its profile changed since it was trained)."""
    planned: dict[str, list[str]] = {}
    for profile, sec, rid, _ in _planned():
        planned.setdefault(rid, []).append(f"{profile}:{sec}")
    return planned

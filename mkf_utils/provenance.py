"""Where a result came from: code revision, library versions, threads, machine and device.

Every ``result.json`` carries a ``provenance`` dict, and every figure CSV the revision of its runs. Run ids
do *not* hash the code (a harmless refactor would orphan hours of records); instead ``make verify``
retrains a sample of recorded runs and compares them with their records (:mod:`mkf_utils.verify`).

>>> p = provenance("cpu")
>>> sorted(p)[:4], p["threads"] >= 1
(['code_dirty', 'code_revision', 'cpu', 'device'], True)
"""
from __future__ import annotations

import functools
import os
import platform
import subprocess
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
# The files whose uncommitted changes can change a number: the engine and its pinned dependencies.
CODE_PATHS = ("mkf_utils", "requirements.txt", "pyproject.toml")


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@functools.lru_cache(maxsize=1)
def code_state() -> tuple[str | None, bool | None]:
    """(commit of the checkout, whether the engine has uncommitted changes); (None, None) outside git.

    ``$MKF_CODE_REVISION`` (and ``$MKF_CODE_DIRTY``, 0 or 1) take precedence: a copy of a checkout sent to a
    lent machine may carry another ``.git`` than the checkout's (seen on this project's GPU machine), so
    ``scripts/device_evidence.sh`` passes the sender's state. Taken once per process, at first use: a process
    that imported the engine keeps its code.
    """
    if os.environ.get("MKF_CODE_REVISION"):
        dirty = os.environ.get("MKF_CODE_DIRTY")
        return os.environ["MKF_CODE_REVISION"], None if dirty is None else dirty == "1"
    rev = _git("rev-parse", "HEAD")
    if rev is None:
        return None, None
    status = _git("status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHS)
    return rev, bool(status)


def parse_cpuinfo(text: str) -> str | None:
    r"""The first processor of a ``/proc/cpuinfo`` text: its model name, family, model and widest vector extension
    (a virtual machine may name only "AMD EPYC", which spans generations whose float sums differ); None without
    a model name.

    >>> parse_cpuinfo("cpu family\t: 25\nmodel\t\t: 17\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx avx2 avx512f")
    'AMD EPYC (family 25, model 17, avx512f)'
    """
    fields: dict[str, str] = {}
    for line in text.split("\n\n")[0].splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    if "model name" not in fields:
        return None
    flags = set(fields.get("flags", "").split())
    isa = next((f for f in ("avx512f", "avx2", "avx") if f in flags), None)
    parts = [f"family {fields['cpu family']}" if "cpu family" in fields else None,
             f"model {fields['model']}" if "model" in fields else None, isa]
    detail = ", ".join(p for p in parts if p)
    return fields["model name"] + (f" ({detail})" if detail else "")


@functools.lru_cache(maxsize=1)
def cpu_name() -> str:
    """The processor (:func:`parse_cpuinfo` of ``/proc/cpuinfo``), else :func:`platform.processor`. Records
    that name the same processor were computed by the same float arithmetic (:func:`mkf_utils.verify.same_kind`)."""
    try:
        name = parse_cpuinfo(Path("/proc/cpuinfo").read_text())
    except OSError:
        name = None
    return name or platform.processor() or platform.machine()


def provenance(device: str | torch.device) -> dict:
    """The facts a reader needs to trust or reproduce a result computed on ``device`` by this process."""
    import numpy
    import timm

    rev, dirty = code_state()
    dev = torch.device(device)
    return {
        "code_revision": rev, "code_dirty": dirty,
        "python": platform.python_version(), "torch": torch.__version__, "timm": timm.__version__,
        "numpy": numpy.__version__, "threads": torch.get_num_threads(),
        "machine": platform.machine(), "os": sys.platform, "cpu": cpu_name(), "device": str(dev),
        "gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else None,
    }

"""Class splits: which classes of a dataset a run sees, relabelled 0..K-1.

A split is a data file ``data_files/splits/<name>.tsv`` (one ``class<TAB>description`` a line,
``#`` comments on top), or a seeded random half ``random-a:<seed>`` / ``random-b:<seed>`` of
whatever classes the dataset has, or ``all``.

>>> s = load_split("cifar10-manmade")
>>> s.classes
['airplane', 'automobile', 'ship', 'truck']
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .errors import MKFError

SPLIT_DIR = Path(str(resources.files("mkf_utils") / "data_files" / "splits"))
RANDOM_HALVES = ("random-a", "random-b")


@dataclass(frozen=True)
class Split:
    """An ordered list of class names (wnids for ImageNet); position = new label."""

    name: str
    classes: list[str]
    descriptions: list[str]
    header: str = ""

    def __len__(self) -> int:
        return len(self.classes)

    def indices_in(self, dataset_classes: list[str]) -> list[int]:
        """Index of each split class among ``dataset_classes``; raises if any is missing.

        >>> load_split("cifar10-natural").indices_in(["bird", "cat", "deer", "dog", "frog", "horse", "x"])
        [0, 1, 2, 3, 4, 5]
        """
        where = {c: i for i, c in enumerate(dataset_classes)}
        missing = [c for c in self.classes if c not in where]
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise MKFError(
                f"split '{self.name}' needs {len(missing)} class(es) the data does not have: {shown}",
                "point data.root at a dataset with these class folders, or choose a split of this dataset "
                "(`mkf splits`)",
            )
        return [where[c] for c in self.classes]


def list_splits() -> list[str]:
    """Names of the shipped split files, plus the random-half patterns.

    >>> "imagenet-manmade" in list_splits()
    True
    """
    return sorted(p.stem for p in SPLIT_DIR.glob("*.tsv")) + [f"{h}:<seed>" for h in RANDOM_HALVES]


def load_split(name: str, dataset_classes: list[str] | None = None) -> Split | None:
    """Load split ``name``; ``None`` for ``all``. Random halves need ``dataset_classes``.

    >>> [len(load_split(h, [str(i) for i in range(10)])) for h in ("random-a:0", "random-b:0")]
    [5, 5]
    """
    if name in ("all", "", None):
        return None
    if name.split(":")[0] in RANDOM_HALVES:
        return _random_half(name, dataset_classes)
    path = SPLIT_DIR / f"{name}.tsv"
    if not path.is_file():
        raise MKFError(f"unknown split '{name}'", f"use one of: {', '.join(list_splits())}")
    lines = path.read_text().splitlines()
    header = "\n".join(line[2:] for line in lines if line.startswith("#"))
    rows = [line.split("\t", 1) for line in lines if line and not line.startswith("#")]
    return Split(name, [r[0] for r in rows], [r[1] if len(r) > 1 else "" for r in rows], header)


def _random_half(name: str, dataset_classes: list[str] | None) -> Split:
    half, _, seed = name.partition(":")
    if not seed.isdigit():
        raise MKFError(f"random split '{name}' has no integer seed", f"write it as '{half}:0'")
    if dataset_classes is None:
        raise MKFError(f"random split '{name}' needs the dataset's classes", "load it through a dataset")
    order = sorted(dataset_classes)
    random.Random(int(seed)).shuffle(order)
    k = len(order) // 2
    chosen = sorted(order[:k] if half == "random-a" else order[k:], key=dataset_classes.index)
    return Split(name, chosen, ["" for _ in chosen], f"seeded random half ({seed}) of {len(order)} classes")

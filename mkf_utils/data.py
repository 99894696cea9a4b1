"""Datasets by name, class splits applied, and fast batch loaders.

Small-image data (``cifar10-mini``, ``cifar10``, ``cifar100``, ``fashion-mnist``, ``synthetic``) lives
decoded in memory as one uint8 tensor; :class:`TensorLoader` shuffles it with a per-epoch seed and
augments whole batches (pad-and-crop, flip) as tensor ops. ``imagefolder`` trees (ImageNet) stream
through a per-image torchvision pipeline with DataLoader workers (:func:`folder_loader`).

>>> train = load_dataset("cifar10-mini", train=True, split="cifar10-manmade")
>>> train.images.shape, train.classes
(torch.Size([4000, 3, 32, 32]), ['airplane', 'automobile', 'ship', 'truck'])
"""
from __future__ import annotations

import collections
import functools
import gzip
import hashlib
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from .errors import MKFError
from .splits import Split, load_split

CIFAR10_MINI = Path(str(resources.files("mkf_utils") / "data_files" / "cifar10-mini.npz"))
CIFAR10_MINI_MD5 = "3591a9290fed04a70eaba613ff5f494a"  # printed by scripts/make_cifar10_mini.py
MEAN = (0.485, 0.456, 0.406)  # timm / ImageNet statistics, used for every dataset
STD = (0.229, 0.224, 0.225)


@dataclass
class TensorImages:
    """Decoded images in memory: ``images`` uint8 [N, C, H, W], ``labels`` int64 [N]."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    def select(self, split: Split | None) -> "TensorImages":
        """Keep the split's classes, relabelled 0..K-1 in the split's order."""
        if split is None:
            return self
        lut = torch.full((len(self.classes),), -1, dtype=torch.long)
        lut[split.indices_in(self.classes)] = torch.arange(len(split))
        new = lut[self.labels]
        keep = new >= 0
        return TensorImages(self.images[keep], new[keep], list(split.classes))

    def per_class(self, n: int | None) -> "TensorImages":
        """The first ``n`` images of each class (all when ``n`` is None)."""
        if n is None:
            return self
        keep = torch.cat([torch.nonzero(self.labels == c).flatten()[:n] for c in range(len(self.classes))]).sort()[0]
        return replace(self, images=self.images[keep], labels=self.labels[keep])


@dataclass
class FolderImages:
    """An ImageFolder tree's ``samples`` (path, label) after the split, decoded lazily."""

    samples: list[tuple[str, int]]
    classes: list[str]

    def __len__(self) -> int:
        return len(self.samples)


Images = TensorImages | FolderImages


def _need_root(name: str, root: str | None) -> Path:
    if root is None:
        raise MKFError(f"dataset '{name}' needs data.root", f"set data.root to the folder that holds {name}")
    path = Path(root).expanduser()
    if not path.exists():
        raise MKFError(f"data root {path} does not exist", f"set data.root to the folder that holds {name}")
    return path


@functools.lru_cache(maxsize=2)
def _cifar10_mini() -> tuple[TensorImages, TensorImages]:
    from torchvision.io import decode_jpeg

    raw = CIFAR10_MINI.read_bytes()
    if hashlib.md5(raw).hexdigest() != CIFAR10_MINI_MD5:
        raise MKFError(f"{CIFAR10_MINI} is corrupt (md5 mismatch)", "restore it with `git checkout` or "
                       "re-derive it with scripts/make_cifar10_mini.py")
    z = np.load(CIFAR10_MINI)
    jpeg, off = torch.from_numpy(z["jpeg"]), z["offsets"]
    images = torch.stack(decode_jpeg([jpeg[off[i]:off[i + 1]] for i in range(len(off) - 1)]))
    labels, train, classes = torch.from_numpy(z["labels"]), torch.from_numpy(z["train"]), list(z["classes"])
    return (TensorImages(images[train], labels[train], classes), TensorImages(images[~train], labels[~train], classes))


def _cifar_torchvision(name: str, root: str | None, train: bool, download: bool) -> TensorImages:
    from torchvision.datasets import CIFAR10, CIFAR100

    path = Path(root or ".").expanduser() if download else _need_root(name, root)
    cls = CIFAR10 if name == "cifar10" else CIFAR100
    try:
        ds = cls(str(path), train=train, download=download)
    except RuntimeError as e:  # torchvision: "Dataset not found or corrupted"
        raise MKFError(f"{name} not found under {path} ({e})",
                       f"point data.root at the folder holding {cls.base_folder}, or set data.download=true") from None
    images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
    return TensorImages(images, torch.as_tensor(ds.targets, dtype=torch.long), list(ds.classes))


FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]
FASHION_ROOTS = ("/usr/share/datasets/fashion-mnist",)  # Debian's dataset-fashion-mnist (`dpkg -L dataset-fashion-mnist`)


def _read_idx(path: Path) -> np.ndarray:
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _fashion_mnist(root: str | None, train: bool) -> TensorImages:
    """Fashion-MNIST from idx files (torchvision's FashionMNIST/raw or Debian's package), padded to 32 px RGB."""
    prefix = "train" if train else "t10k"
    candidates = ([Path(root).expanduser()] if root else []) + [Path(r) for r in FASHION_ROOTS]
    for base in candidates:
        for folder in (base, base / "FashionMNIST" / "raw"):
            found = {kind: next(iter(sorted(folder.glob(f"{prefix}-{kind}-idx*-ubyte*"))), None)
                     for kind in ("images", "labels")}
            if all(found.values()):
                x = torch.from_numpy(_read_idx(found["images"]).copy())[:, None]
                x = torch.nn.functional.pad(x, (2, 2, 2, 2)).expand(-1, 3, -1, -1).contiguous()
                y = torch.from_numpy(_read_idx(found["labels"]).astype(np.int64))
                return TensorImages(x, y, FASHION_CLASSES)
    raise MKFError(f"no Fashion-MNIST idx files ({prefix}-images/labels) in {[str(c) for c in candidates]}",
                   "set data.root to torchvision's FashionMNIST folder, or `apt-get install dataset-fashion-mnist`")


def _synthetic(train: bool, num_classes: int = 10, per_class: int = 64, size: int = 32) -> TensorImages:
    """Learnable random data: each class is a fixed smooth pattern plus per-image noise and shift."""
    g = torch.Generator().manual_seed(0)
    patterns = torch.nn.functional.interpolate(torch.rand(num_classes, 3, 4, 4, generator=g), size=size,
                                               mode="bilinear", align_corners=False)
    g.manual_seed(1 if train else 2)
    n = per_class if train else per_class // 4
    labels = torch.arange(num_classes).repeat_interleave(n)
    x = patterns[labels] + 0.35 * torch.randn(len(labels), 3, size, size, generator=g)
    images = (x.clamp(0, 1) * 255).to(torch.uint8)
    return TensorImages(images, labels, [f"class{i}" for i in range(num_classes)])


def _imagefolder(root: str | None, train: bool) -> FolderImages:
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

    base = _need_root("imagefolder", root)
    folder = next((base / s for s in (("train",) if train else ("val", "test")) if (base / s).is_dir()), None)
    if folder is None:
        raise MKFError(f"{base} has no {'train' if train else 'val/ or test'}/ folder",
                       "set data.root to a tree with train/<class>/ and val/<class>/ (or test/<class>/)")
    classes, to_idx = find_classes(str(folder))
    return FolderImages(make_dataset(str(folder), to_idx, extensions=IMG_EXTENSIONS), classes)


DATASETS: dict[str, Callable[[str | None, bool, bool], Images]] = {
    "cifar10-mini": lambda root, train, download: _cifar10_mini()[0 if train else 1],
    "cifar10": lambda root, train, download: _cifar_torchvision("cifar10", root, train, download),
    "cifar100": lambda root, train, download: _cifar_torchvision("cifar100", root, train, download),
    "fashion-mnist": lambda root, train, download: _fashion_mnist(root, train),
    "imagefolder": lambda root, train, download: _imagefolder(root, train),
    "synthetic": lambda root, train, download: _synthetic(train),
}


def load_dataset(name: str, train: bool, split: str = "all", root: str | None = None, download: bool = False,
                 per_class: int | None = None) -> Images:
    """Load dataset ``name`` (train or held-out part), restricted and relabelled to ``split``.

    Args:
        name: a key of :data:`DATASETS`.
        train: the training part if True, else the held-out (test / val) part.
        split: a split name (see :mod:`mkf_utils.splits`) or ``all``.
        root: the data folder, for datasets that are not embedded.
        download: let torchvision download CIFAR (never done unless asked).
        per_class: keep the first ``per_class`` images of each class (in-memory data only).

    >>> len(load_dataset("synthetic", train=True, split="random-a:0"))
    320
    """
    if name not in DATASETS:
        raise MKFError(f"unknown dataset '{name}'", f"use one of: {', '.join(DATASETS)}")
    data = DATASETS[name](root, train, download)
    chosen = load_split(split, data.classes)
    if isinstance(data, FolderImages):
        if chosen is not None:
            lut = dict(zip(chosen.indices_in(data.classes), range(len(chosen))))
            data = FolderImages([(p, lut[y]) for p, y in data.samples if y in lut], list(chosen.classes))
        if per_class is not None:
            taken: collections.Counter = collections.Counter()
            kept = [(p, y) for p, y in data.samples if taken.update([y]) or taken[y] <= per_class]
            data = FolderImages(kept, data.classes)
        return data
    return data.select(chosen).per_class(per_class)


def normalize(x: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
    """uint8 [B, C, H, W] -> float32 normalised with :data:`MEAN` / :data:`STD`."""
    mean = torch.tensor(MEAN, device=x.device).view(1, 3, 1, 1) * 255
    std = torch.tensor(STD, device=x.device).view(1, 3, 1, 1) * 255
    x = x.float()
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return (x - mean) / std


def crop_flip(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Random ``pad``-pixel translate (zero padding) and horizontal flip of a whole uint8 batch.

    >>> x = torch.arange(16, dtype=torch.uint8).view(1, 1, 4, 4)
    >>> crop_flip(x, 0, torch.Generator().manual_seed(0)).shape
    torch.Size([1, 1, 4, 4])
    """
    b, _, h, w = x.shape
    dev = x.device  # the draws come from the CPU generator (the same on every device), the work is done on x's
    if pad:
        xp = torch.nn.functional.pad(x, (pad, pad, pad, pad))
        dy, dx = torch.randint(0, 2 * pad + 1, (2, b, 1), generator=generator).to(dev)
        rows = (dy + torch.arange(h, device=dev))[:, None, :, None]
        cols = (dx + torch.arange(w, device=dev))[:, None, None, :]
        batch, channel = torch.arange(b, device=dev), torch.arange(x.shape[1], device=dev)
        x = xp[batch[:, None, None, None], channel[None, :, None, None], rows, cols]
    flip = (torch.rand(b, generator=generator) < 0.5).to(dev)
    return torch.where(flip[:, None, None, None], x.flip(3), x)


class TensorLoader:
    """Batches of an in-memory :class:`TensorImages`, on ``device``, normalised. On a GPU the whole uint8 dataset
    is moved there once and batches are gathered and augmented there (no per-batch copy).

    The order and the augmentation of epoch ``e`` depend only on ``(seed, e)``, so a resumed run sees
    the same batches as an uninterrupted one. With ``world_size > 1`` each rank takes every
    ``world_size``-th sample of the shuffled order.

    >>> loader = TensorLoader(load_dataset("synthetic", train=True), batch_size=32, train=True, seed=0)
    >>> x, y = next(iter(loader))
    >>> x.shape, x.dtype, len(loader)
    (torch.Size([32, 3, 32, 32]), torch.float32, 20)
    """

    def __init__(self, data: TensorImages, batch_size: int, train: bool, seed: int = 0, augment: bool = True,
                 pad: int = 4, device: str | torch.device = "cpu", channels_last: bool = False,
                 rank: int = 0, world_size: int = 1) -> None:
        self.data, self.batch_size, self.train, self.seed = data, batch_size, train, seed
        self.augment, self.pad, self.device, self.channels_last = augment and train, pad, torch.device(device), channels_last
        self.rank, self.world_size, self.epoch = rank, world_size, 0
        if self.device.type == "cuda":
            self.data = TensorImages(data.images.to(self.device), data.labels.to(self.device), data.classes)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _order(self) -> torch.Tensor:
        n = len(self.data)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)) \
            if self.train else torch.arange(n)
        return order[self.rank::self.world_size]

    def __len__(self) -> int:
        n = len(range(self.rank, len(self.data), self.world_size))  # this rank's share, without shuffling
        return n // self.batch_size if self.train else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch + 1)
        order = self._order()
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size].to(self.data.images.device)
            x, y = self.data.images[idx], self.data.labels[idx]
            if self.augment:
                x = crop_flip(x, self.pad, g)
            x = x.to(self.device, non_blocking=True)
            yield normalize(x, self.channels_last), y.to(self.device, non_blocking=True)


class _FolderDataset(torch.utils.data.Dataset):
    def __init__(self, data: FolderImages, transform: Callable) -> None:
        self.data, self.transform = data, transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from torchvision.io import ImageReadMode, decode_image

        path, label = self.data.samples[i]
        return self.transform(decode_image(path, mode=ImageReadMode.RGB)), label


class FolderLoader:
    """Per-image decode + torchvision transforms in DataLoader workers; batches normalised on ``device``."""

    def __init__(self, data: FolderImages, batch_size: int, train: bool, image_size: int, seed: int = 0,
                 augment: bool = True, workers: int = 8, device: str | torch.device = "cpu",
                 channels_last: bool = False, rank: int = 0, world_size: int = 1) -> None:
        from torchvision.transforms import v2

        if train and augment:
            tf = v2.Compose([v2.RandomResizedCrop(image_size, antialias=True), v2.RandomHorizontalFlip()])
        else:
            tf = v2.Compose([v2.Resize(round(image_size / 0.875), antialias=True), v2.CenterCrop(image_size)])
        dataset = _FolderDataset(data, tf)
        # training: DistributedSampler (shuffled per epoch); evaluation: every image exactly once over the ranks
        # (DistributedSampler would pad the last ranks with duplicates)
        self.sampler = torch.utils.data.DistributedSampler(
            dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed, drop_last=True) if train else None
        self.loader = torch.utils.data.DataLoader(
            dataset, batch_size=batch_size,
            sampler=self.sampler if self.sampler is not None else range(rank, len(dataset), world_size),
            num_workers=workers, pin_memory=torch.device(device).type == "cuda", drop_last=train,
            persistent_workers=workers > 0,
            generator=torch.Generator().manual_seed(seed))
        self.device, self.channels_last = torch.device(device), channels_last

    def set_epoch(self, epoch: int) -> None:
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)
            self.loader.generator.manual_seed(self.sampler.seed * 100_003 + epoch)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for x, y in self.loader:
            x = x.to(self.device, non_blocking=True)
            yield normalize(x, self.channels_last), y.to(self.device, non_blocking=True)


def make_loader(data: Images, batch_size: int, train: bool, image_size: int = 224, **kw) -> TensorLoader | FolderLoader:
    """The right loader for ``data``: :class:`TensorLoader` in memory, :class:`FolderLoader` for a tree."""
    if isinstance(data, TensorImages):
        kw.pop("workers", None)
        return TensorLoader(data, batch_size, train, **kw)
    return FolderLoader(data, batch_size, train, image_size, **kw)

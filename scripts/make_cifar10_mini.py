"""Derive the embedded ``cifar10-mini`` set (1,000 train + 200 test images per CIFAR-10 class).

The file ``mkf_utils/data_files/cifar10-mini.npz`` holds the JPEG bytes of every image concatenated,
their offsets, labels and split flags, so the repository carries the set in about 11 MB and
``mkf_utils.data`` decodes it once into a uint8 tensor cache.

Two sources give the same selection (the first N images of each class, in file/record order):

    # from an ImageFolder tree of CIFAR-10 JPEGs (train/<class>/*.jpg, test/<class>/*.jpg): bytes kept as-is
    python scripts/make_cifar10_mini.py --jpeg-tree ../shared/data/cifar10-jpeg
    # from torchvision's CIFAR-10 folder (cifar-10-batches-py): images JPEG-encoded at --quality
    python scripts/make_cifar10_mini.py --torchvision-root ~/data

It prints the md5 of the written file; the loader checks it against ``CIFAR10_MINI_MD5``.
"""
from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
OUT = Path(__file__).resolve().parents[1] / "mkf_utils" / "data_files" / "cifar10-mini.npz"


def from_jpeg_tree(root: Path, per_class: dict[str, int]) -> tuple[list[bytes], list[int], list[int]]:
    blobs, labels, is_train = [], [], []
    for split, n in per_class.items():
        for label, name in enumerate(CLASSES):
            files = sorted((root / split / name).glob("*.jpg"))[:n]
            if len(files) < n:
                raise SystemExit(f"{root / split / name} has {len(files)} JPEGs, need {n}")
            blobs += [f.read_bytes() for f in files]
            labels += [label] * n
            is_train += [split == "train"] * n
    return blobs, labels, is_train


def from_torchvision(root: Path, per_class: dict[str, int], quality: int) -> tuple[list[bytes], list[int], list[int]]:
    import torch
    from torchvision.datasets import CIFAR10
    from torchvision.io import encode_jpeg

    blobs, labels, is_train = [], [], []
    for split, n in per_class.items():
        ds = CIFAR10(str(root), train=split == "train", download=False)
        targets = np.asarray(ds.targets)
        for label in range(len(CLASSES)):
            for i in np.flatnonzero(targets == label)[:n]:
                img = torch.from_numpy(ds.data[i]).permute(2, 0, 1).contiguous()
                blobs.append(bytes(encode_jpeg(img, quality=quality).numpy()))
                labels.append(label)
                is_train.append(split == "train")
    return blobs, labels, is_train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--jpeg-tree", type=Path, help="ImageFolder tree with train/ and test/")
    src.add_argument("--torchvision-root", type=Path, help="folder holding cifar-10-batches-py")
    ap.add_argument("--train-per-class", type=int, default=1000)
    ap.add_argument("--test-per-class", type=int, default=200)
    ap.add_argument("--quality", type=int, default=95, help="JPEG quality (torchvision source only)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    per_class = {"train": args.train_per_class, "test": args.test_per_class}
    if args.jpeg_tree:
        blobs, labels, is_train = from_jpeg_tree(args.jpeg_tree, per_class)
    else:
        blobs, labels, is_train = from_torchvision(args.torchvision_root, per_class, args.quality)
    offsets = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
    np.savez(
        args.out,
        jpeg=np.frombuffer(b"".join(blobs), dtype=np.uint8),
        offsets=offsets,
        labels=np.asarray(labels, dtype=np.int64),
        train=np.asarray(is_train, dtype=bool),
        classes=np.asarray(CLASSES),
    )
    md5 = hashlib.md5(args.out.read_bytes()).hexdigest()
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB, {len(blobs)} images), md5 {md5}")


if __name__ == "__main__":
    main()

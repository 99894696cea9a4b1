"""Datasets, splits and loaders: shapes, class lists, relabelling, determinism, errors."""
from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

from mkf_utils.data import TensorLoader, crop_flip, load_dataset, make_loader
from mkf_utils.errors import MKFError
from mkf_utils.splits import list_splits, load_split

pytestmark = pytest.mark.unit


def test_cifar10_mini_is_balanced_uint8():
    train, test = load_dataset("cifar10-mini", True), load_dataset("cifar10-mini", False)
    assert train.images.shape == (10000, 3, 32, 32) and test.images.shape == (2000, 3, 32, 32)
    assert train.images.dtype == torch.uint8
    assert torch.bincount(train.labels).tolist() == [1000] * 10
    assert torch.bincount(test.labels).tolist() == [200] * 10
    assert train.classes[0] == "airplane" and train.classes[-1] == "truck"


def test_cifar10_split_relabels_the_right_images():
    full = load_dataset("cifar10-mini", True)
    nat = load_dataset("cifar10-mini", True, split="cifar10-natural")
    assert nat.classes == ["bird", "cat", "deer", "dog", "frog", "horse"]
    assert torch.bincount(nat.labels).tolist() == [1000] * 6
    for new, name in enumerate(nat.classes):
        assert torch.equal(nat.images[nat.labels == new], full.images[full.labels == full.classes.index(name)])


def test_imagenet_halves_are_yosinskis():
    man, nat = load_split("imagenet-manmade"), load_split("imagenet-natural")
    assert (len(man), len(nat)) == (551, 449)
    both = man.classes + nat.classes
    assert len(set(both)) == 1000 and all(w.startswith("n") and len(w) == 9 for w in both)
    # Yosinski's half_nat_idx starts 0..: the first sorted wnids (fish) are natural, abacus is man-made
    assert sorted(both)[0] == "n01440764" == nat.classes[0] and man.classes[0] == "n02666196"
    assert man.descriptions[0] == "abacus"


def test_cifar100_halves_cover_all_classes():
    man, nat = load_split("cifar100-manmade"), load_split("cifar100-natural")
    assert (len(man), len(nat)) == (30, 70) and len(set(man.classes) | set(nat.classes)) == 100
    assert "pickup_truck" in man.classes and "maple_tree" in nat.classes


def test_random_halves_partition_and_depend_on_seed():
    classes = [f"c{i}" for i in range(11)]
    a, b = load_split("random-a:3", classes), load_split("random-b:3", classes)
    assert sorted(a.classes + b.classes) == sorted(classes) and len(a) == 5
    assert load_split("random-a:3", classes).classes == a.classes
    assert load_split("random-a:4", classes).classes != a.classes
    assert "random-a:<seed>" in list_splits()


def test_imagefolder_split_checks_class_folders(tmp_path):
    from torchvision.io import write_png

    for split in ("train", "val"):
        for wnid in ("n02666196", "n01440764", "n09999999"):  # abacus (man-made), tench (natural), other
            (tmp_path / split / wnid).mkdir(parents=True)
            write_png(torch.zeros(3, 8, 8, dtype=torch.uint8), str(tmp_path / split / wnid / "a.png"))
    with pytest.raises(MKFError, match="needs 550 class"):  # the tree has only 1 of the 551 man-made classes
        load_dataset("imagefolder", True, split="imagenet-manmade", root=str(tmp_path))
    data = load_dataset("imagefolder", False, root=str(tmp_path))
    assert data.classes == ["n01440764", "n02666196", "n09999999"] and len(data) == 3
    loader = make_loader(data, batch_size=2, train=True, image_size=8, workers=0)
    x, y = next(iter(loader))
    assert x.shape == (2, 3, 8, 8) and x.dtype == torch.float32


def test_crop_flip_translates_and_flips_whole_batch():
    x = torch.randint(0, 255, (64, 3, 8, 8), dtype=torch.uint8)
    g = torch.Generator().manual_seed(0)
    flipped = crop_flip(x, 0, g)
    same, mirror = (flipped == x).flatten(1).all(1), (flipped == x.flip(3)).flatten(1).all(1)
    assert bool((same | mirror).all()) and 10 < int(mirror.sum()) < 54
    shifted = crop_flip(x, 2, g)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(8):  # every output is some 8x8 window of the padded input, maybe mirrored
        windows = [padded[i, :, dy:dy + 8, dx:dx + 8] for dy in range(5) for dx in range(5)]
        assert any(torch.equal(shifted[i], w) or torch.equal(shifted[i], w.flip(2)) for w in windows)


def test_loader_order_depends_only_on_seed_and_epoch():
    data = load_dataset("synthetic", True)
    a, b = TensorLoader(data, 32, True, seed=1), TensorLoader(data, 32, True, seed=1)
    b.set_epoch(3)
    list(b)  # consuming another epoch first must not matter
    b.set_epoch(0)
    assert all(torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(a, b))
    b.set_epoch(1)
    assert not torch.equal(next(iter(a))[1], next(iter(b))[1])
    test = TensorLoader(data, 100, False)
    assert len(test) == 7 and sum(len(y) for _, y in test) == len(data)


def test_fashion_mnist_from_idx_files(tmp_path):
    def idx(arr: np.ndarray) -> bytes:
        head = bytes([0, 0, 8, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
        return gzip.compress(head + arr.astype(np.uint8).tobytes())

    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(idx(np.full((5, 28, 28), 7)))
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(idx(np.arange(5)))
    data = load_dataset("fashion-mnist", True, root=str(tmp_path))
    assert data.images.shape == (5, 3, 32, 32) and data.labels.tolist() == [0, 1, 2, 3, 4]
    assert int(data.images[0, 0, 0, 0]) == 0 and int(data.images[0, 2, 16, 16]) == 7
    assert data.classes[9] == "Ankle boot"


@pytest.mark.parametrize("name,root,match", [
    ("cifar11", None, "unknown dataset 'cifar11'"),
    ("cifar10", None, "needs data.root"),
    ("cifar10", "/nonexistent/cifar", "does not exist"),
    ("imagefolder", "/nonexistent/imagenet", "does not exist"),
])
def test_bad_data_input_names_the_fix(name, root, match):
    with pytest.raises(MKFError, match=match) as e:
        load_dataset(name, True, root=root)
    assert "Fix:" in str(e.value)


def test_unknown_split_lists_the_choices():
    with pytest.raises(MKFError, match="unknown split 'imagenet-mammals'.*imagenet-manmade"):
        load_dataset("synthetic", True, split="imagenet-mammals")

"""Write the class-split files under ``mkf_utils/data_files/splits/`` and Yosinski's reference numbers.

    python scripts/make_splits.py --yosinski ../shared/data/yosinski2014

ImageNet halves are exactly Yosinski et al.'s (NIPS 2014) man-made / natural lists (class indices in
sorted-wnid order), stored with their wnids and names. The CIFAR splits are defined here:
CIFAR-10 by class, CIFAR-100 by superclass (``CIFAR100_SUPERCLASSES``; the six superclasses of
artefacts are man-made, the other fourteen natural). Each file is one class a line,
``<class><TAB><description>``, in the order that relabels them 0..K-1.
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "mkf_utils" / "data_files"

CIFAR10_MANMADE = ["airplane", "automobile", "ship", "truck"]
CIFAR10_NATURAL = ["bird", "cat", "deer", "dog", "frog", "horse"]

CIFAR100_SUPERCLASSES = {
    "aquatic_mammals": ["beaver", "dolphin", "otter", "seal", "whale"],
    "fish": ["aquarium_fish", "flatfish", "ray", "shark", "trout"],
    "flowers": ["orchid", "poppy", "rose", "sunflower", "tulip"],
    "food_containers": ["bottle", "bowl", "can", "cup", "plate"],
    "fruit_and_vegetables": ["apple", "mushroom", "orange", "pear", "sweet_pepper"],
    "household_electrical_devices": ["clock", "keyboard", "lamp", "telephone", "television"],
    "household_furniture": ["bed", "chair", "couch", "table", "wardrobe"],
    "insects": ["bee", "beetle", "butterfly", "caterpillar", "cockroach"],
    "large_carnivores": ["bear", "leopard", "lion", "tiger", "wolf"],
    "large_man-made_outdoor_things": ["bridge", "castle", "house", "road", "skyscraper"],
    "large_natural_outdoor_scenes": ["cloud", "forest", "mountain", "plain", "sea"],
    "large_omnivores_and_herbivores": ["camel", "cattle", "chimpanzee", "elephant", "kangaroo"],
    "medium_mammals": ["fox", "porcupine", "possum", "raccoon", "skunk"],
    "non-insect_invertebrates": ["crab", "lobster", "snail", "spider", "worm"],
    "people": ["baby", "boy", "girl", "man", "woman"],
    "reptiles": ["crocodile", "dinosaur", "lizard", "snake", "turtle"],
    "small_mammals": ["hamster", "mouse", "rabbit", "shrew", "squirrel"],
    "trees": ["maple_tree", "oak_tree", "palm_tree", "pine_tree", "willow_tree"],
    "vehicles_1": ["bicycle", "bus", "motorcycle", "pickup_truck", "train"],
    "vehicles_2": ["lawn_mower", "rocket", "streetcar", "tank", "tractor"],
}
CIFAR100_MANMADE_SUPER = [
    "food_containers", "household_electrical_devices", "household_furniture",
    "large_man-made_outdoor_things", "vehicles_1", "vehicles_2",
]


def write_split(name: str, header: str, rows: list[tuple[str, str]]) -> None:
    lines = [f"# {line}" for line in header.strip().splitlines()] + [f"{c}\t{d}" for c, d in rows]
    (DATA / "splits" / f"{name}.tsv").write_text("\n".join(lines) + "\n")
    print(f"{name}: {len(rows)} classes")


def imagenet_splits(src: Path) -> None:
    wnids, words = zip(*(line.split(" ", 1) for line in (src / "synset_words.txt").read_text().splitlines()))
    assert list(wnids) == (src / "synsets.txt").read_text().split(), "synset_words.txt and synsets.txt disagree"
    assert list(wnids) == sorted(wnids) and len(wnids) == 1000
    halves = {h: [int(i) for i in (src / f"half_{h}_idx.txt").read_text().split()] for h in ("man", "nat")}
    assert sorted(halves["man"] + halves["nat"]) == list(range(1000)), "halves must cover 0..999 once"
    assert (len(halves["man"]), len(halves["nat"])) == (551, 449)
    for h, name in (("man", "manmade"), ("nat", "natural")):
        header = (f"ImageNet (ILSVRC-2012) {name} half of Yosinski, Clune, Bengio, Lipson (NIPS 2014), "
                  f"from half_{h}_idx.txt of their code release\n(class indices in sorted-wnid order; "
                  f"here as wnids). Written by scripts/make_splits.py.")
        write_split(f"imagenet-{name}", header, [(wnids[i], words[i]) for i in halves[h]])


def cifar_splits() -> None:
    for name, classes in (("manmade", CIFAR10_MANMADE), ("natural", CIFAR10_NATURAL)):
        write_split(f"cifar10-{name}", f"CIFAR-10 {name} classes. Written by scripts/make_splits.py.",
                    [(c, name) for c in classes])
    assert sorted(sum(CIFAR100_SUPERCLASSES.values(), [])) == sorted(set(sum(CIFAR100_SUPERCLASSES.values(), [])))
    assert len(sum(CIFAR100_SUPERCLASSES.values(), [])) == 100
    for name in ("manmade", "natural"):
        supers = [s for s in CIFAR100_SUPERCLASSES if (s in CIFAR100_MANMADE_SUPER) == (name == "manmade")]
        rows = [(c, s) for s in supers for c in CIFAR100_SUPERCLASSES[s]]
        header = (f"CIFAR-100 {name} classes by superclass (description column): the superclasses "
                  f"{', '.join(CIFAR100_MANMADE_SUPER)} are man-made, the rest natural.\n"
                  "Written by scripts/make_splits.py.")
        write_split(f"cifar100-{name}", header, rows)


def yosinski_reference(src: Path) -> None:
    for f in ("manmade_natural_transfer.csv", "random_split_transfer.csv"):
        shutil.copyfile(src / f, DATA / "reference" / f"yosinski2014_{f}")
        print(f"reference/yosinski2014_{f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--yosinski", type=Path, required=True, help="folder of Yosinski's split and numbers")
    args = ap.parse_args()
    imagenet_splits(args.yosinski)
    cifar_splits()
    yosinski_reference(args.yosinski)


if __name__ == "__main__":
    main()

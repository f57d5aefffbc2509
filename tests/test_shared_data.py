"""The real datasets at ../shared/data (beside the checkout): listing only, no bulk decoding."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from cnnviz.data import CIFAR10_CLASSES, DatasetError, Preprocess, decode_image, iter_images, resolve_source

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def shared(rel: str) -> Path:
    path = SHARED / rel
    if not path.exists():
        pytest.skip(f"shared data {path} is absent (expected at ../shared/data beside the checkout)")
    return path


def test_cifar10_test_zip():
    src = resolve_source(shared("cifar10/test.zip"))
    assert src.layout == "class_tree"
    assert src.classes == list(CIFAR10_CLASSES)
    assert len(src.members) == len(src.ids) == 10_000
    assert Counter(src.labels) == {c: 1000 for c in CIFAR10_CLASSES}
    assert src.members[0] == "test/airplane/0000.jpg" and src.ids[0] == "airplane/0000.jpg"
    # one image, to see that members really are readable 32x32 JPEGs
    ident, data = next(iter_images(src))
    assert ident == "airplane/0000.jpg"
    assert decode_image(data, Preprocess(32)).shape == (32, 32, 3)


def test_cifar10_root_by_split():
    root = shared("cifar10")
    train = resolve_source(root, "train")
    test = resolve_source(root, "test")
    assert train.path == root / "train.zip" and test.path == root / "test.zip"
    assert len(train.members) == 50_000
    assert Counter(train.labels) == {c: 5000 for c in CIFAR10_CLASSES}
    assert train.fingerprint != test.fingerprint
    assert resolve_source(root, "test").fingerprint == test.fingerprint  # stable


def test_simpsons_train_zip():
    src = resolve_source(shared("simpsons/train.zip"))
    assert src.layout == "class_tree"
    assert len(src.classes) == 20
    assert len(src.members) == 15_648
    counts = Counter(src.labels)
    assert counts["homer_simpson"] == 1797
    assert counts["abraham_grampa_simpson"] == 731
    assert counts["mayor_quimby"] == 197
    assert sum(counts.values()) == 15_648
    assert src.members[0] == "simpsons_dataset/abraham_grampa_simpson/pic_0000.jpg"
    assert src.ids[0] == "abraham_grampa_simpson/pic_0000.jpg"


def test_simpsons_root_has_train_but_no_test():
    root = shared("simpsons")
    assert resolve_source(root, "train").path == root / "train.zip"
    with pytest.raises(DatasetError):
        resolve_source(root, "test")

"""Fixtures: tiny datasets written in the real on-disk formats, in temporary folders.

Every test gets its own decoded-image cache (``$CNNVIZ_CACHE``) under ``tmp_path``, so nothing
is ever written to ``~/.cache``.
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

torch.set_num_threads(1)  # the test machine is small and may be busy

# Solid colour per class (class names are deliberately given out of order: loaders must sort).
COLORS = {"red": (220, 40, 40), "green": (40, 190, 70), "blue": (30, 60, 220)}
# Different counts per class so counts and stratification are checked for real.
N_TRAIN = {"blue": 8, "green": 6, "red": 10}
N_TEST = {"blue": 3, "green": 2, "red": 4}
# Frame sizes of other shapes than the network input, to exercise resizing.
SIZES = [(20, 30), (30, 20), (24, 24), (41, 17), (17, 23)]


def model_fingerprint(model: torch.nn.Module) -> tuple:
    """Everything a call could change on a shared model: modes, flags, grads, hooks, weights."""
    return (tuple(m.training for m in model.modules()),
            tuple(getattr(m, "inplace", None) for m in model.modules()),
            tuple((p.requires_grad, p.grad is None) for p in model.parameters()),
            sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
                for m in model.modules()),
            tuple(float(t.double().sum()) for t in model.state_dict().values()))


def jpeg_bytes(color: tuple[int, int, int], size: tuple[int, int] = (20, 30), quality: int = 95) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def write_jpeg(path: Path, color: tuple[int, int, int], size: tuple[int, int] = (20, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(jpeg_bytes(color, size))
    return path


@dataclass
class TreeData:
    """A root holding ``train/<class>/<n>.jpg`` and ``test/<class>/<n>.jpg`` (or zips of them)."""

    root: Path
    classes: list[str]
    n_train: dict[str, int]
    n_test: dict[str, int]
    colors: dict[str, tuple[int, int, int]] = field(default_factory=lambda: dict(COLORS))

    def ids(self, split: str) -> list[str]:
        """Expected ids (relative to the split's tree), in the loader's order: class, then name."""
        counts = self.n_train if split == "train" else self.n_test
        return [f"{c}/{i:03d}.jpg" for c in sorted(counts) for i in range(counts[c])]


def make_class_tree(root: Path, seed: int = 0) -> TreeData:
    rng = np.random.default_rng(seed)
    for split, counts in (("train", N_TRAIN), ("test", N_TEST)):
        for cls, n in counts.items():
            for i in range(n):
                size = SIZES[int(rng.integers(len(SIZES)))]
                write_jpeg(root / split / cls / f"{i:03d}.jpg", COLORS[cls], size)
    return TreeData(root, sorted(COLORS), dict(N_TRAIN), dict(N_TEST))


def zip_tree(src: Path, dest_zip: Path, arc_prefix: str) -> Path:
    """Zip every file under ``src`` as ``<arc_prefix>/<relative path>`` (files only, like `zip -r`
    without directory entries)."""
    dest_zip.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(dest_zip, "w") as zf:
        for p in sorted(src.rglob("*")):
            if p.is_file():
                zf.write(p, f"{arc_prefix}/{p.relative_to(src).as_posix()}")
    return dest_zip


# --------------------------------------------------------------------------------------------
# The cache never leaves tmp_path.


@pytest.fixture(autouse=True, scope="session")
def _session_cache(tmp_path_factory):
    old = os.environ.get("CNNVIZ_CACHE")
    os.environ["CNNVIZ_CACHE"] = str(tmp_path_factory.mktemp("session-cache"))
    # no background warm-up (dashboard/warm_up.py) writing into the tests' caches, in AppTests
    # and the servers browser tests start; tests/test_warm.py turns it on where it tests it
    os.environ["CNNVIZ_WARM"] = "0"
    yield
    if old is None:
        os.environ.pop("CNNVIZ_CACHE", None)
    else:
        os.environ["CNNVIZ_CACHE"] = old


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch) -> Path:
    """This test's decoded-image cache, also set as ``$CNNVIZ_CACHE``."""
    d = tmp_path / "cache"
    monkeypatch.setenv("CNNVIZ_CACHE", str(d))
    return d


# --------------------------------------------------------------------------------------------
# (a) class tree folders, (b) the same as zips


@pytest.fixture
def class_tree(tmp_path) -> TreeData:
    """``root/train/<class>/<n>.jpg`` and ``root/test/<class>/<n>.jpg``, solid colours."""
    return make_class_tree(tmp_path / "tree")


@pytest.fixture(scope="session")
def class_tree_session(tmp_path_factory) -> TreeData:
    """The same tree, built once for tests that only read it."""
    return make_class_tree(tmp_path_factory.mktemp("tree-session"))


@pytest.fixture
def class_zips(class_tree, tmp_path) -> TreeData:
    """``root/train.zip`` (``train/<class>/x.jpg``) and ``root/test.zip``, same bytes as the tree."""
    root = tmp_path / "zips"
    for split in ("train", "test"):
        zip_tree(class_tree.root / split, root / f"{split}.zip", split)
    return TreeData(root, class_tree.classes, class_tree.n_train, class_tree.n_test)


# --------------------------------------------------------------------------------------------
# (c) torchvision's cifar-10-batches-py


CIFAR_LABEL_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@dataclass
class CifarData:
    root: Path  # the folder holding cifar-10-batches-py/
    batches: Path
    train_data: np.ndarray  # (N, 3072) uint8, as stored
    train_labels: list[int]
    test_data: np.ndarray
    test_labels: list[int]


def cifar_rows(n: int, rng: np.random.Generator) -> np.ndarray:
    """Rows in CIFAR's layout: 1024 red, 1024 green, 1024 blue values, each plane row-major."""
    return rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)


@pytest.fixture
def cifar_batches(tmp_path) -> CifarData:
    rng = np.random.default_rng(1)
    batches = tmp_path / "cifar" / "cifar-10-batches-py"
    batches.mkdir(parents=True)

    def dump(name: str, obj: dict) -> None:
        # protocol 2, as the Python 2 originals torchvision downloads
        with open(batches / name, "wb") as f:
            pickle.dump(obj, f, protocol=2)

    dump("batches.meta", {"label_names": CIFAR_LABEL_NAMES, "num_cases_per_batch": 4, "num_vis": 3072})
    train_data, train_labels = [], []
    for b in range(1, 6):
        data = cifar_rows(4, rng)
        labels = [int(x) for x in rng.integers(0, 10, 4)]
        dump(f"data_batch_{b}", {"batch_label": f"training batch {b} of 5", "labels": labels,
                                 "data": data, "filenames": [f"img_{b}_{i}.png" for i in range(4)]})
        train_data.append(data)
        train_labels.extend(labels)
    test_data = cifar_rows(3, rng)
    test_labels = [7, 0, 9]
    dump("test_batch", {"batch_label": "testing batch 1 of 1", "labels": test_labels, "data": test_data,
                        "filenames": ["t0.png", "t1.png", "t2.png"]})
    return CifarData(tmp_path / "cifar", batches, np.concatenate(train_data), train_labels,
                     test_data, test_labels)


# --------------------------------------------------------------------------------------------
# (d) the Simpsons' flat labelled test folder, (e) the competition's unlabelled folder


# file stem -> colour; names with underscores inside the character's name
FLAT_LABELLED = {
    "lisa_simpson_12": (250, 200, 0),
    "lisa_simpson_3": (240, 210, 10),
    "abraham_grampa_simpson_3": (200, 200, 200),
    "abraham_grampa_simpson_10": (190, 190, 190),
    "bart_simpson_1": (255, 120, 0),
    "lisa_simpson_7": (230, 220, 0),
}


@pytest.fixture
def flat_labelled(tmp_path) -> Path:
    """``root/kaggle_simpson_testset/<character>_<n>.jpg``; returns the folder itself."""
    folder = tmp_path / "simpsons" / "kaggle_simpson_testset"
    for stem, color in FLAT_LABELLED.items():
        write_jpeg(folder / f"{stem}.jpg", color, (30, 20))
    return folder


UNLABELLED = {"1": (255, 0, 0), "2": (0, 255, 0), "10": (0, 0, 255)}


@pytest.fixture
def unlabelled(tmp_path) -> Path:
    """A folder of numbered images ``1.jpg, 2.jpg, 10.jpg`` with a ``sampleSubmission.csv``."""
    folder = tmp_path / "competition" / "testset"
    for stem, color in UNLABELLED.items():
        write_jpeg(folder / f"{stem}.jpg", color, (24, 16))
    (folder / "sampleSubmission.csv").write_text(
        "id,character\n" + "".join(f"{k},bart_simpson\n" for k in ("1", "2", "10")))
    return folder


# --------------------------------------------------------------------------------------------
# (f) a truncated JPEG in a class folder, (g) an empty class folder, a zip with no class folders


@pytest.fixture
def corrupt_tree(tmp_path) -> Path:
    """A class tree ``<root>/<class>/x.jpg`` in which ``red/bad.jpg`` is a truncated JPEG."""
    root = tmp_path / "corrupt"
    for cls in ("green", "red"):
        for i in range(3):
            write_jpeg(root / cls / f"{i}.jpg", COLORS[cls], (20, 30))
    good = jpeg_bytes(COLORS["red"], (40, 40))
    (root / "red" / "bad.jpg").write_bytes(good[: len(good) // 2])
    return root


@pytest.fixture
def empty_class_tree(tmp_path) -> Path:
    """``root/train/{blue,red}/x.jpg`` plus an empty ``root/train/green/``."""
    root = tmp_path / "withempty"
    for cls in ("blue", "red"):
        write_jpeg(root / "train" / cls / "0.jpg", COLORS[cls])
    (root / "train" / "green").mkdir(parents=True)
    return root


@pytest.fixture
def zip_without_classes(tmp_path) -> Path:
    """A zip of loose, unnumbered photos: no class folders, no ``<class>_<n>`` names."""
    path = tmp_path / "loose.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("holiday.jpg", jpeg_bytes((1, 2, 3)))
        zf.writestr("portrait.jpg", jpeg_bytes((4, 5, 6)))
    return path


# --------------------------------------------------------------------------------------------
# Malicious pickles: unpickling one runs os.system, which would create ``marker``.


class Evil:
    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))

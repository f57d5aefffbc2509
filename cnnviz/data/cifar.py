"""CIFAR-10 in torchvision's format (``cifar-10-batches-py/``), read without unpickling code."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
from PIL import Image

from .dataset import ImageDataset
from .decoding import Preprocess
from .errors import UnsafePickleError
from .sources import Source

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


class _PlainDataUnpickler(pickle.Unpickler):
    """Allows plain containers and numpy arrays only; anything else is refused before it runs."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):  # noqa: D401
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise UnsafePickleError(
            f"refused to unpickle {module}.{name}: this file is not plain CIFAR-10 data. "
            "Re-download it with torchvision or use the image-folder layout"
        )


def read_plain_pickle(path: Path) -> dict:
    """Read a torchvision CIFAR batch file, refusing any pickle that would run code."""
    with open(path, "rb") as f:
        return _PlainDataUnpickler(f, encoding="latin1").load()


def decode_cifar_batches(src: Source, pre: Preprocess) -> ImageDataset:
    """The images of a ``cifar_batches`` source: ``(N, 32, 32, 3) uint8`` as stored (each row
    is 1024 red, 1024 green, 1024 blue values), resized when ``pre.size`` is not 32."""
    meta = read_plain_pickle(src.path / "batches.meta")
    classes = [str(c) for c in meta["label_names"]]
    images, labels, ids = [], [], []
    for name in src.members:
        batch = read_plain_pickle(src.path / name)
        data = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        images.append(data)
        labels.append(np.asarray(batch["labels"], dtype=np.int64))
        ids.extend(f"{name}/{i}" for i in range(len(data)))
    imgs = np.concatenate(images)
    if pre.size != 32:
        imgs = np.stack([pre.apply(Image.fromarray(im)) for im in imgs])
    return ImageDataset(np.ascontiguousarray(imgs), np.concatenate(labels), classes, ids,
                        src.fingerprint, pre)


def download_cifar10(root: str | os.PathLike) -> Path:
    """Fetch CIFAR-10 in torchvision's format (needs the network); returns the batches folder."""
    from torchvision.datasets import CIFAR10

    root = Path(root)
    CIFAR10(root=str(root), train=True, download=True)
    return root / "cifar-10-batches-py"

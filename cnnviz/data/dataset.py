"""Decoded images of one split, with their labels and ids."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .decoding import Preprocess
from .errors import DatasetError


@dataclass
class ImageDataset:
    """Decoded images of one split.

    ``images``: ``(N, H, W, 3) uint8``; ``labels``: ``(N,) int64`` indices into ``classes``,
    ``-1`` where unlabelled; ``ids``: one name per image (relative path or competition id).
    """

    images: np.ndarray
    labels: np.ndarray
    classes: list[str]
    ids: list[str]
    fingerprint: str
    preprocess: Preprocess
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def labelled(self) -> bool:
        return bool(len(self.labels)) and bool((self.labels >= 0).all())

    def subset(self, index: np.ndarray | Sequence[int]) -> "ImageDataset":
        index = np.asarray(index, dtype=np.int64)
        return ImageDataset(
            images=self.images[index], labels=self.labels[index], classes=self.classes,
            ids=[self.ids[i] for i in index], fingerprint=self.fingerprint,
            preprocess=self.preprocess, skipped=[],
        )

    def counts(self) -> dict[str, int]:
        c = np.bincount(self.labels[self.labels >= 0], minlength=len(self.classes))
        return {name: int(n) for name, n in zip(self.classes, c)}

    def require_labels(self, min_classes: int = 2, purpose: str = "training") -> "ImageDataset":
        """This dataset when every image is labelled and at least ``min_classes`` classes have
        images; else :class:`DatasetError` saying what was found (``purpose`` opens the message).
        E.g. ``load_dataset(path, "train", pre).require_labels()``."""
        present = [name for name, n in self.counts().items() if n]
        unlabelled = int((self.labels < 0).sum())
        if not len(self):
            found = "no images"
        elif unlabelled:
            found = f"{unlabelled} unlabelled image(s) (numbered files name no class)"
        elif len(present) < min_classes:
            found = f"{len(present)} class ({', '.join(present)})" if len(present) == 1 else \
                f"{len(present)} classes ({', '.join(present)})"
        else:
            return self
        raise DatasetError(
            f"{purpose} needs labelled images of at least {min_classes} classes; found {found}: "
            "use a folder with one sub-folder of images per class (e.g. train/<class>/*.jpg) or a "
            "flat folder of <class>_<n>.jpg files"
        )

    def relabel(self, classes: Sequence[str]) -> "ImageDataset":
        """Map labels onto another class order (e.g. a checkpoint's); unknown classes fail."""
        classes = list(classes)
        if classes == self.classes:
            return self
        unknown = sorted(set(self.classes) - set(classes))
        if unknown:
            raise DatasetError(
                f"the data has classes the model does not know: {', '.join(unknown)}; "
                f"the model's classes are {', '.join(classes)}"
            )
        lut = np.array([classes.index(c) for c in self.classes] + [-1], dtype=np.int64)
        return ImageDataset(self.images, lut[self.labels], classes, self.ids, self.fingerprint,
                            self.preprocess, self.skipped)

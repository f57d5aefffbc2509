"""Seeded stratified splits of a training set, recorded in checkpoints so the same validation
images can be found again."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .dataset import ImageDataset
from .errors import DatasetError


@dataclass(frozen=True)
class SplitSpec:
    """A seeded stratified split of a training set, as recorded in checkpoints."""

    seed: int
    val_fraction: float
    n_total: int
    fingerprint: str
    val_indices: tuple[int, ...]

    def to_dict(self) -> dict:
        return {"seed": self.seed, "val_fraction": self.val_fraction, "n_total": self.n_total,
                "fingerprint": self.fingerprint, "val_indices": list(self.val_indices)}

    @classmethod
    def from_dict(cls, d: dict) -> "SplitSpec":
        return cls(int(d["seed"]), float(d["val_fraction"]), int(d["n_total"]), d["fingerprint"],
                   tuple(int(i) for i in d["val_indices"]))

    def apply(self, ds: ImageDataset) -> tuple[ImageDataset, ImageDataset]:
        """``(train, val)`` parts of the same training set this split was made on."""
        if ds.fingerprint != self.fingerprint or len(ds) != self.n_total:
            raise DatasetError(
                f"this is not the training set the model was split on (fingerprint "
                f"{ds.fingerprint}, {len(ds)} images; expected {self.fingerprint}, "
                f"{self.n_total}): point --data at the same data it was trained on"
            )
        val = np.asarray(self.val_indices, dtype=np.int64)
        mask = np.ones(len(ds), dtype=bool)
        mask[val] = False
        return ds.subset(np.flatnonzero(mask)), ds.subset(val)


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified split of ``(N,) int64`` labels: ``(train_idx, val_idx)``, each sorted
    ``int64``.

    Every class contributes ``round(n_c * val_fraction)`` images to validation (at least one
    when the class has two or more images and ``val_fraction > 0``).
    """
    if not 0 <= val_fraction < 1:
        raise ValueError("val_fraction must be in [0, 1)")
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        k = int(round(len(idx) * val_fraction))
        if val_fraction > 0 and len(idx) >= 2:
            k = min(max(k, 1), len(idx) - 1)
        val.append(rng.permutation(idx)[:k])
    val_idx = np.sort(np.concatenate(val)) if val else np.zeros(0, np.int64)
    mask = np.ones(len(labels), dtype=bool)
    mask[val_idx] = False
    return np.flatnonzero(mask).astype(np.int64), val_idx.astype(np.int64)


def make_split(ds: ImageDataset, val_fraction: float, seed: int) -> SplitSpec:
    """Split ``ds`` (stratified, seeded) and describe the split for a checkpoint."""
    _, val = stratified_split(ds.labels, val_fraction, seed)
    return SplitSpec(seed, val_fraction, len(ds), ds.fingerprint, tuple(int(i) for i in val))

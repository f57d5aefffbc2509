"""Predictions for folders of images (e.g. the Simpsons competition's unlabelled test set)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .checkpoints import Checkpoint
from .data import Preprocess, UnreadableImage, decode_image, load_dataset
from .evaluate import predict_logits, softmax
from .runtime import Runtime


@dataclass
class Predictions:
    """Predictions for a set of images. ``probs``: ``(N, K) float32`` over ``classes``;
    ``unreadable``: ids of files that could not be decoded (no prediction for them)."""

    ids: list[str]
    classes: list[str]
    probs: np.ndarray
    unreadable: list[str]

    @property
    def predicted(self) -> list[str]:
        return [self.classes[i] for i in self.probs.argmax(1)]

    def top_k(self, k: int = 5) -> list[list[tuple[str, float]]]:
        """For each image, its ``k`` most probable classes with their probabilities."""
        order = np.argsort(-self.probs, axis=1)[:, :k]
        return [[(self.classes[j], float(self.probs[i, j])) for j in row] for i, row in enumerate(order)]

    def to_csv(self, probabilities: bool = False, id_header: str = "id",
               label_header: str = "character") -> str:
        """The competition's ``id,character`` CSV (plus one column per class on request)."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow([id_header, label_header] + (list(self.classes) if probabilities else []))
        for ident, label, p in zip(self.ids, self.predicted, self.probs):
            w.writerow([ident, label] + ([f"{x:.6f}" for x in p] if probabilities else []))
        return buf.getvalue()


def predict_images(ckpt: Checkpoint, images: np.ndarray, ids: list[str],
                   runtime: Runtime | None = None,
                   progress: bool | Callable[[int, int], None] = False) -> Predictions:
    """Predict already-decoded ``(N, S, S, 3) uint8`` images with the checkpoint's TTA."""
    m = ckpt.meta
    logits = predict_logits(ckpt.model, images, m.normalization, runtime, tta=m.tta, progress=progress)
    return Predictions(list(ids), list(m.classes), softmax(logits), [])


def predict_folder(ckpt: Checkpoint, path: str | Path, runtime: Runtime | None = None,
                   cache_dir: str | Path | None = None,
                   progress: bool | Callable[[int, int], None] = False) -> Predictions:
    """Predict every image of a folder or zip (numbered, flat labelled or a class tree).

    Images are preprocessed exactly as the checkpoint records. Ids are file stems for flat
    folders (``17`` for ``17.jpg``) and relative paths for class trees.
    """
    ds = load_dataset(path, None, ckpt.meta.preprocess, cache_dir=cache_dir, progress=progress)
    preds = predict_images(ckpt, ds.images, ds.ids, runtime, progress)
    preds.unreadable = list(ds.skipped)
    return preds


def decode_uploads(files: list[tuple[str, bytes]], preprocess: Preprocess
                   ) -> tuple[np.ndarray, list[str], dict[str, str]]:
    """Decode uploaded ``(name, bytes)`` pairs; returns images, their names, and
    ``{name: reason}`` for those that are not readable images. Nothing is written to disk."""
    images, names, errors = [], [], {}
    for name, data in files:
        try:
            images.append(decode_image(data, preprocess))
            names.append(name)
        except UnreadableImage as e:
            errors[name] = str(e)
    arr = np.stack(images) if images else np.zeros((0, preprocess.size, preprocess.size, 3), np.uint8)
    return arr, names, errors

"""Predictions for folders, zips and uploads of images (e.g. the Simpsons competition's unlabelled
test set)."""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .checkpoints import Checkpoint
from .data import (Budget, Container, DatasetError, Preprocess, UnreadableImage, check_total_pixels,
                   declared_pixels, decode_image, is_image_name, load_dataset, source_from_entries)
from .evaluate import predict_logits, softmax
from .runtime import Runtime, progress_reporter


@dataclass
class Predictions:
    """Predictions for a set of images. ``probs``: ``(N, K) float32`` over ``classes``;
    ``unreadable``: ids of files that could not be decoded (no prediction for them); ``tta``:
    the test-time augmentation behind them (``"none"``: one view of each image)."""

    ids: list[str]
    classes: list[str]
    probs: np.ndarray
    unreadable: list[str]
    tta: str = "none"

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
    """Predict already-decoded ``(N, S, S, 3) uint8`` images with the checkpoint's TTA, on
    ``runtime`` (default: the checkpoint's own, so every caller gets the same numbers). The
    pages that show one image's probabilities use one view instead
    (:func:`cnnviz.single_view.single_view_predictions`)."""
    m = ckpt.meta
    logits = predict_logits(ckpt.model, images, m.normalization, runtime or ckpt.runtime, tta=m.tta,
                            progress=progress)
    return Predictions(list(ids), list(m.classes), softmax(logits), [], tta=m.tta or "none")


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


def _within_budget(sizes: list[int], limit: int) -> int:
    """How many of the first images fit in ``limit`` pixels together."""
    total = 0
    for k, px in enumerate(sizes):
        total += px
        if total > limit:
            return k
    return len(sizes)


def decode_uploads(files: list[tuple[str, bytes]], preprocess: Preprocess, budget: Budget | None = None
                   ) -> tuple[np.ndarray, list[str], dict[str, str]]:
    """Decode uploaded ``(name, bytes)`` pairs; returns ``(N, S, S, 3) uint8`` images, their
    names, and ``{name: reason}`` for those that are not readable images or do not fit in the
    ``budget`` (default :data:`UPLOAD_BUDGET`): once the images' declared sizes add up to more
    than its ``total_pixels``, the rest are listed, not decoded. Nothing is written to disk."""
    budget = budget or UPLOAD_BUDGET
    errors = {name: f"{len(data) / 2**20:,.0f} MB, over the limit of {budget.file_bytes / 2**20:,.0f} MB "
                    "for one image: resize it first"
              for name, data in files if len(data) > budget.file_bytes}
    files = [(name, data) for name, data in files if len(data) <= budget.file_bytes]
    fit = _within_budget([declared_pixels(data, budget.image_pixels) for _, data in files],
                         budget.total_pixels)
    for name, _ in files[fit:]:
        errors[name] = (f"not decoded: the images uploaded with it hold over {budget.total_pixels:,} "
                        "pixels together; resize them first, or upload fewer at a time")
    images, names = [], []
    for name, data in files[:fit]:
        try:
            images.append(decode_image(data, preprocess, budget.image_pixels))
            names.append(name)
        except UnreadableImage as e:
            errors[name] = str(e)
    arr = np.stack(images) if images else np.zeros((0, preprocess.size, preprocess.size, 3), np.uint8)
    return arr, names, errors


# Bounds for an uploaded zip, checked against its directory before anything is decompressed;
# each member is also bounded while it is inflated (see cnnviz.data.Container).
MAX_ZIP_MEMBERS = 50_000
MAX_ZIP_BYTES = 2 * 2**30  # total uncompressed
MAX_ZIP_MEMBER_BYTES = 64 * 2**20  # one image
MAX_UPLOAD_PIXELS = 1_000_000_000  # all images of one upload (or uploaded zip) together
UPLOAD_BUDGET = Budget(total_pixels=MAX_UPLOAD_PIXELS, file_bytes=MAX_ZIP_MEMBER_BYTES)


def _open_upload(data: bytes, name: str, max_members: int, max_bytes: int) -> zipfile.ZipFile:
    """The upload as a zip whose directory is within bounds, or :class:`DatasetError`."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise DatasetError(f"{name} is not a zip archive: upload a .zip of the images "
                           "(or upload the images themselves)") from None
    infos = zf.infolist()
    total = sum(i.file_size for i in infos)
    if len(infos) > max_members or total > max_bytes:
        zf.close()
    if len(infos) > max_members:
        raise DatasetError(f"{name} holds {len(infos):,} files, over the limit of {max_members:,}: "
                           "split it into smaller zips")
    if total > max_bytes:
        raise DatasetError(f"{name} unpacks to {total / 2**20:,.0f} MB, over the limit of "
                           f"{max_bytes / 2**20:,.0f} MB: split it into smaller zips")
    return zf


def decode_zip(data: bytes, preprocess: Preprocess, name: str = "the upload",
               progress: bool | Callable[[int, int], None] = False,
               max_members: int = MAX_ZIP_MEMBERS, max_bytes: int = MAX_ZIP_BYTES,
               budget: Budget | None = None) -> tuple[np.ndarray, list[str], dict[str, str]]:
    """Decode the images of an uploaded zip, entirely in memory; returns ``(N, S, S, 3) uint8``
    images, their ids (the same as :func:`predict_folder` gives for that zip on disk, e.g. ``17``
    for ``test/17.jpg``) and ``{member: reason}`` for files that are not readable images.

    Raises :class:`DatasetError` for bytes that are not a zip, a zip without images, images
    whose ids clash, archives over ``max_members`` files or ``max_bytes`` uncompressed, and
    images whose headers declare more than ``budget.total_pixels`` together (default
    :data:`UPLOAD_BUDGET`; checked before anything is decoded).
    """
    budget = budget or UPLOAD_BUDGET
    with _open_upload(data, name, max_members, max_bytes) as zf:
        container = Container.from_zipfile(zf, name, budget.file_bytes)
        entries = container.list()
        src = source_from_entries(Path(name), entries)
        chosen = set(src.members)
        errors = {n: "not in the folder of the other images" if is_image_name(n) else "not an image file"
                  for n, _ in entries if not n.endswith("/") and n not in chosen}
        check_total_pixels((container.declared_pixels(m, budget.image_pixels) for m in src.members),
                           len(src.members), name, budget.total_pixels)
        images, ids = [], []
        update, close = progress_reporter(progress, len(src.members), f"decoding {name}")
        try:
            for k, (member, ident) in enumerate(zip(src.members, src.ids), 1):
                try:
                    images.append(decode_image(container.read(member), preprocess, budget.image_pixels))
                    ids.append(ident)
                except UnreadableImage as e:  # not an image, too large, damaged or encrypted member
                    errors[member] = str(e)
                except OSError as e:
                    errors[member] = f"cannot be read from the zip ({type(e).__name__}: {e})"
                if k % 64 == 0 or k == len(src.members):
                    update(k, len(src.members))
        finally:
            close()
    size = preprocess.size
    arr = np.stack(images) if images else np.zeros((0, size, size, 3), np.uint8)
    return arr, ids, errors


def predict_zip(ckpt: Checkpoint, data: bytes, name: str = "the upload", runtime: Runtime | None = None,
                progress: bool | Callable[[int, int], None] = False
                ) -> tuple[Predictions, np.ndarray, dict[str, str]]:
    """Predictions for the images of an uploaded zip (see :func:`decode_zip`), with the decoded
    images and ``{member: reason}`` for files that have no prediction."""
    images, ids, errors = decode_zip(data, ckpt.meta.preprocess, name, progress)
    preds = predict_images(ckpt, images, ids, runtime, progress) if ids else \
        Predictions([], list(ckpt.meta.classes), np.zeros((0, len(ckpt.meta.classes)), np.float32), [])
    preds.unreadable = list(errors)
    return preds, images, errors

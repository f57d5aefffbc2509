"""Predictions for folders, zips and uploads of images (e.g. the Simpsons competition's unlabelled
test set)."""

from __future__ import annotations

import csv
import io
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .checkpoints import Checkpoint
from .data import (DatasetError, Preprocess, UnreadableImage, _Container, source_from_entries,
                   _is_image, decode_image, load_dataset)
from .evaluate import predict_logits, softmax
from .runtime import Runtime, progress_reporter


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


# Bounds for an uploaded zip, checked against its directory before anything is decompressed
# (zipfile never inflates a member past the size its directory declares).
MAX_ZIP_MEMBERS = 50_000
MAX_ZIP_BYTES = 2 * 2**30  # total uncompressed
MAX_ZIP_MEMBER_BYTES = 64 * 2**20  # one image


class _ZipBytes(_Container):
    """A zip held in memory, listed like a zip on disk (same skipping of ``__MACOSX/``, hidden
    files and folders)."""

    def __init__(self, zf: zipfile.ZipFile, name: str):
        self.path = Path(name)
        self.is_zip = True
        self._zf = zf

    def _zip(self) -> zipfile.ZipFile:
        return self._zf


def decode_zip(data: bytes, preprocess: Preprocess, name: str = "the upload",
               progress: bool | Callable[[int, int], None] = False,
               max_members: int = MAX_ZIP_MEMBERS, max_bytes: int = MAX_ZIP_BYTES
               ) -> tuple[np.ndarray, list[str], dict[str, str]]:
    """Decode the images of an uploaded zip, entirely in memory; returns images, their ids (the
    same as :func:`predict_folder` gives for that zip on disk, e.g. ``17`` for ``test/17.jpg``)
    and ``{member: reason}`` for files that are not readable images.

    Raises :class:`DatasetError` for bytes that are not a zip, a zip without images, and
    archives over ``max_members`` files or ``max_bytes`` uncompressed.
    """
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise DatasetError(f"{name} is not a zip archive: upload a .zip of the images "
                           "(or upload the images themselves)") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > max_members:
            raise DatasetError(f"{name} holds {len(infos):,} files, over the limit of {max_members:,}: "
                               "split it into smaller zips")
        total = sum(i.file_size for i in infos)
        if total > max_bytes:
            raise DatasetError(f"{name} unpacks to {total / 2**20:,.0f} MB, over the limit of "
                               f"{max_bytes / 2**20:,.0f} MB: split it into smaller zips")
        path = Path(name)
        entries = _ZipBytes(zf, name).list()
        src = source_from_entries(path, entries)
        chosen = set(src.members)
        errors = {n: "not an image file" if not _is_image(n) else "not in the folder of the other images"
                  for n, _ in entries if not n.endswith("/") and n not in chosen}
        images, ids = [], []
        update, close = progress_reporter(progress, len(src.members), f"decoding {name}")
        try:
            for k, (member, ident) in enumerate(zip(src.members, src.ids), 1):
                info = zf.getinfo(member)
                try:
                    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                        raise UnreadableImage("compressed with a method other than deflate: re-zip it "
                                              "with a standard zip tool")
                    if info.file_size > MAX_ZIP_MEMBER_BYTES:
                        raise UnreadableImage(f"{info.file_size / 2**20:,.0f} MB, over the limit of "
                                              f"{MAX_ZIP_MEMBER_BYTES // 2**20} MB for one image")
                    images.append(decode_image(zf.read(info), preprocess))
                    ids.append(ident)
                except UnreadableImage as e:
                    errors[member] = str(e)
                except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError, EOFError,
                        zlib.error) as e:  # damaged or encrypted member
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

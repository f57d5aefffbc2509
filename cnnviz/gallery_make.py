"""Making a demo gallery (``cnnviz gallery``): a stratified sample of the training images and of
images the checkpoint never trained on, after its preprocessing, in the smallest codec that keeps
them within the size limit, written as the zip and sidecar :mod:`cnnviz.gallery` reads."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from .atomic import FileGroup
from .checkpoint_meta import CheckpointMeta
from .data import DatasetError, ImageDataset, load_dataset
from .gallery import CODECS, CodecTrial, GalleryError, GalleryMeta, GalleryPart, decode_member, gallery_paths
from .state_dicts import file_sha256

__all__ = ["ATTRIBUTIONS", "MAX_GALLERY_BYTES", "default_sizes", "make_gallery", "stratified_sample", "try_codecs"]

MAX_GALLERY_BYTES = 12_000_000
TRIAL_IMAGES = 600

ATTRIBUTIONS: dict[str, str] = {
    "cifar10": "CIFAR-10 (Alex Krizhevsky, Learning Multiple Layers of Features from Tiny Images, 2009; "
               "https://www.cs.toronto.edu/~kriz/cifar.html). Images from the 80 Million Tiny Images "
               "collection, shared by its authors for research and teaching.",
    "simpsons": "The Simpsons Characters Data (Alexandre Attia, Kaggle: "
                "https://www.kaggle.com/datasets/alexattia/the-simpsons-characters-dataset), under the "
                "licence stated there. Frames of The Simpsons (c) 20th Television, used for teaching.",
}


def default_sizes(dataset: str) -> tuple[int, int]:
    """``(training, held-out)`` image counts the issue's demo asks for: CIFAR-10 5,000 and
    1,000; any other dataset 3,000 and 600."""
    return (5000, 1000) if dataset == "cifar10" else (3000, 600)


def stratified_sample(labels: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """``n`` sorted positions of ``labels``, each class in proportion to its share (largest
    remainders), every class with images getting at least one."""
    labels = np.asarray(labels)
    if n >= len(labels):
        return np.arange(len(labels), dtype=np.int64)
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * n / len(labels)
    take = np.maximum(np.floor(exact).astype(int), 1)
    order = np.argsort(-(exact - np.floor(exact)), kind="stable")
    i = 0
    while take.sum() < n:
        c = order[i % len(order)]
        if take[c] < counts[c]:
            take[c] += 1
        i += 1
    while take.sum() > n:  # the minimum of one pushed past n: trim the largest classes
        take[np.argmax(take)] -= 1
    rng = np.random.default_rng(seed)
    picked = [rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, take)]
    return np.sort(np.concatenate(picked)).astype(np.int64)


def _encode(img: np.ndarray, codec: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, **CODECS[codec][1])
    return buf.getvalue()


def try_codecs(images: np.ndarray, codecs: Sequence[str] = tuple(CODECS)) -> list[CodecTrial]:
    """Encode every ``(N, S, S, 3) uint8`` image with each codec and measure the total size and
    the pixel error of the decoded images against the originals."""
    trials = []
    for codec in codecs:
        total, worst, err_sum, sq_sum = 0, 0, 0.0, 0.0
        for img in images:
            data = _encode(img, codec)
            total += len(data)
            diff = decode_member(data, img.shape[0]).astype(np.int16) - img
            worst = max(worst, int(np.abs(diff).max()))
            err_sum += float(np.abs(diff).mean())
            sq_sum += float((diff.astype(np.float64) ** 2).mean())
        mse = sq_sum / max(len(images), 1)
        trials.append(CodecTrial(codec, len(images), total, worst, round(err_sum / max(len(images), 1), 4),
                                 None if mse == 0 else round(float(10 * np.log10(255 ** 2 / mse)), 2)))
    return trials


def _fits(trial: CodecTrial, n: int, max_bytes: int) -> bool:
    """True when ``n`` images in ``trial``'s codec fit in ``max_bytes``, with 5% to spare for the
    spread of the estimate and the zip's own entries."""
    return trial.bytes_for(n) * 1.05 + 100 * n <= max_bytes


def _choose(trials: list[CodecTrial], n: int, max_bytes: int) -> CodecTrial:
    """The codec with the smallest mean error whose ``n`` images fit in ``max_bytes``."""
    fits = [t for t in trials if _fits(t, n, max_bytes)]
    if not fits:
        smallest = min(trials, key=lambda t: t.bytes)
        raise GalleryError(f"even {smallest.codec} needs about {smallest.bytes_for(n) / 1e6:.1f} MB for {n:,} "
                           f"images, over the {max_bytes / 1e6:g} MB limit: take fewer images (--train, --heldout)")
    return min(fits, key=lambda t: (t.mean_abs_error, t.bytes))


def _heldout_source(meta: CheckpointMeta, data: str | Path, full: ImageDataset, cache_dir: str | Path | None,
                    progress: bool | Callable) -> tuple[str, ImageDataset]:
    """The dataset's test split when it has one (and it is not the training set ``full``),
    else the checkpoint's validation split of ``full``."""
    try:
        test = load_dataset(data, "test", meta.preprocess, cache_dir=cache_dir, progress=progress)
        if test.fingerprint != full.fingerprint:
            return "test", test.relabel(meta.classes)
    except DatasetError:
        pass
    if meta.split is None:
        raise GalleryError(f"{data} has no test split and the checkpoint records no validation split, so "
                           "the gallery has no images the model never trained on: point --data at a dataset "
                           "with train/ and test/")
    return "val", full


def make_gallery(meta: CheckpointMeta, data: str | Path, out: str | Path, made_for: str,
                 n_train: int | None = None, n_heldout: int | None = None, codec: str = "auto",
                 max_bytes: int = MAX_GALLERY_BYTES, attribution: str | None = None, seed: int = 0,
                 cache_dir: str | Path | None = None, progress: bool | Callable = False) -> GalleryMeta:
    """Take a stratified sample of the checkpoint's training images and of images it never
    trained on (the test split, else its validation split), store them after its preprocessing
    in the codec with the smallest error that fits ``max_bytes`` (``codec="auto"``), and write
    ``<out>.gallery.zip`` and ``<out>.gallery.json`` (both or neither)."""
    if codec != "auto" and codec not in CODECS:
        raise GalleryError(f"unknown codec {codec!r}: use auto or one of {', '.join(CODECS)}")
    if attribution is None:
        attribution = ATTRIBUTIONS.get(meta.dataset)
        if attribution is None:
            raise GalleryError(f"no attribution line is known for a {meta.dataset!r} dataset: give its "
                               "source and licence with --attribution")
    d_train, d_held = default_sizes(meta.dataset)
    n_train = d_train if n_train is None else n_train
    n_heldout = d_held if n_heldout is None else n_heldout
    if n_train < 1 or n_heldout < 1 or max_bytes <= 0:
        raise GalleryError(f"a gallery needs at least 1 training and 1 held-out image and a size limit above 0 "
                           f"(got {n_train}, {n_heldout} and {max_bytes / 1e6:g} MB)")
    pre = meta.preprocess
    full = load_dataset(data, "train", pre, cache_dir=cache_dir, progress=progress).relabel(meta.classes)
    if meta.split is not None and (full.fingerprint != meta.split.fingerprint or len(full) != meta.split.n_total):
        raise GalleryError(f"{data} is not the training set this checkpoint was trained on (fingerprint "
                           f"{full.fingerprint}, expected {meta.split.fingerprint}): point --data at it")
    val_idx = np.asarray(meta.split.val_indices if meta.split else (), dtype=np.int64)
    train_pool = np.setdiff1d(np.arange(len(full)), val_idx)
    train_idx = train_pool[stratified_sample(full.labels[train_pool], n_train, seed)]

    held_split, held_src = _heldout_source(meta, data, full, cache_dir, progress)
    pool = val_idx if held_split == "val" else np.arange(len(held_src))
    held_idx = pool[stratified_sample(held_src.labels[pool], n_heldout, seed + 1)]

    parts = {"train": (full, train_idx, "train", len(train_pool)),
             "heldout": (held_src, held_idx, held_split, len(pool))}
    n = len(train_idx) + len(held_idx)
    # every codec measured on an even sample of up to TRIAL_IMAGES; the chosen one on all images
    sample = np.concatenate([full.images[train_idx], held_src.images[held_idx]])
    trials = try_codecs(sample[np.linspace(0, n - 1, min(n, TRIAL_IMAGES)).astype(int)])
    chosen = _choose(trials, n, max_bytes) if codec == "auto" else next(t for t in trials if t.codec == codec)
    if not _fits(chosen, n, max_bytes):
        raise GalleryError(f"{chosen.codec} needs about {chosen.bytes_for(n) / 1e6:.1f} MB, over the "
                           f"{max_bytes / 1e6:g} MB limit: choose another codec or take fewer images")
    ext = CODECS[chosen.codec][0]
    zip_path, json_path = gallery_paths(out)
    records: dict[str, GalleryPart] = {}
    worst, err_sum = 0, 0.0
    with FileGroup() as group:
        tmp_zip = group.stage(zip_path)
        with zipfile.ZipFile(tmp_zip, "w", zipfile.ZIP_STORED) as zf:
            for name, (src, idx, split_name, size) in parts.items():
                for k, i in enumerate(idx):
                    data = _encode(src.images[i], chosen.codec)
                    diff = np.abs(decode_member(data, pre.size).astype(np.int16) - src.images[i])
                    worst, err_sum = max(worst, int(diff.max())), err_sum + float(diff.mean())
                    zf.writestr(f"{name}/{meta.classes[src.labels[i]]}/{k:05d}.{ext}", data)
                records[name] = GalleryPart(split_name, src.fingerprint, size, tuple(int(i) for i in idx),
                                            tuple(src.ids[i] for i in idx), tuple(int(src.labels[i]) for i in idx))
        if tmp_zip.stat().st_size > max_bytes:
            raise GalleryError(f"the gallery came to {tmp_zip.stat().st_size / 1e6:.1f} MB, over the "
                               f"{max_bytes / 1e6:g} MB limit: take fewer images or choose a smaller codec")
        split = None if meta.split is None else {k: v for k, v in meta.split.to_dict().items() if k != "val_indices"}
        gm = GalleryMeta(meta.dataset, list(meta.classes), pre.to_dict(), made_for, split, chosen.codec,
                         worst, round(err_sum / n, 4), records["train"], records["heldout"],
                         attribution, trials, file_sha256(tmp_zip),
                         created=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        group.stage(json_path).write_text(json.dumps(gm.to_dict(), indent=1))
        group.commit()
    return gm

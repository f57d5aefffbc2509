"""Demo galleries: a few thousand real dataset images shipped beside a checkpoint, so every view
works on a machine that has no dataset and no network.

A gallery is two files made by :func:`make_gallery` (``cnnviz gallery``):

* ``<out>.gallery.zip``: ``train/<class>/<n>.<ext>`` and ``heldout/<class>/<n>.<ext>``, the
  images *after* the checkpoint's preprocessing (``S x S``), one encoded file each;
* ``<out>.gallery.json``: what was taken (source fingerprint, split, the indices and ids of
  every image), the preprocessing, the codec with its measured pixel error, the size and error
  of every codec tried, and the dataset's attribution line.

The held-out part comes from the dataset's test split when it has one, else from the
checkpoint's own validation split: images the checkpoint never trained on. One gallery serves
every checkpoint of the same dataset, classes and preprocessing whose held-out images it
respects (:func:`gallery_fits`). This module is the only way dataset images enter the
repository.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Literal, Sequence

import numpy as np
from PIL import Image

from .array_cache import load_arrays, save_arrays
from .atomic import FileGroup
from .checkpoint_meta import CheckpointMeta
from .data import DatasetError, ImageDataset, Preprocess, default_cache_dir, load_dataset
from .data.splits import SplitSpec
from .state_dicts import file_sha256

__all__ = [
    "ATTRIBUTIONS", "CODECS", "GALLERY_FORMAT", "MAX_GALLERY_BYTES", "CodecTrial", "GalleryError", "GalleryMeta",
    "GalleryPart", "default_sizes", "find_gallery", "gallery_fits", "gallery_paths", "is_gallery",
    "load_gallery_split", "make_gallery", "read_gallery_meta", "stratified_sample", "try_codecs",
]

GALLERY_FORMAT = "cnnviz-gallery/1"
MAX_GALLERY_BYTES = 12_000_000
TRIAL_IMAGES = 600
PartName = Literal["train", "heldout"]

# Each codec: (file extension, PIL save arguments). Lossless first, then lossy by quality.
CODECS: dict[str, tuple[str, dict]] = {
    "png": ("png", {"format": "PNG", "optimize": True}),
    "webp-lossless": ("webp", {"format": "WEBP", "lossless": True, "quality": 100, "method": 4}),
    "jpeg95": ("jpg", {"format": "JPEG", "quality": 95, "subsampling": 0}),
    "webp95": ("webp", {"format": "WEBP", "quality": 95, "method": 4}),
    "jpeg90": ("jpg", {"format": "JPEG", "quality": 90, "subsampling": 0}),
    "webp90": ("webp", {"format": "WEBP", "quality": 90, "method": 4}),
}

ATTRIBUTIONS: dict[str, str] = {
    "cifar10": "CIFAR-10 (Alex Krizhevsky, Learning Multiple Layers of Features from Tiny Images, 2009; "
               "https://www.cs.toronto.edu/~kriz/cifar.html). Images from the 80 Million Tiny Images "
               "collection, shared by its authors for research and teaching.",
    "simpsons": "The Simpsons Characters Data (Alexandre Attia, Kaggle: "
                "https://www.kaggle.com/datasets/alexattia/the-simpsons-characters-dataset), under the "
                "licence stated there. Frames of The Simpsons (c) 20th Television, used for teaching.",
}


class GalleryError(DatasetError):
    """A gallery that cannot be made or read; the message says what to do."""


@dataclass(frozen=True)
class CodecTrial:
    """One codec measured on a gallery's images: total bytes and error against the source
    pixels after preprocessing (0-255 scale)."""

    codec: str
    images: int  # how many images were measured
    bytes: int  # their encoded size
    max_abs_error: int
    mean_abs_error: float
    psnr_db: float | None  # None: lossless

    def bytes_for(self, n: int) -> int:
        """The size ``n`` such images take at the measured mean."""
        return int(round(self.bytes / max(self.images, 1) * n))


@dataclass(frozen=True)
class GalleryPart:
    """One part of a gallery and where its images came from.

    ``source_split``: ``train``/``val`` (the checkpoint's split of the training set) or
    ``test``; ``indices``: positions in that source as :func:`cnnviz.data.load_dataset` lists it
    (the whole training set for ``train``/``val``), in the gallery's order; ``source_size``:
    images in the source split."""

    source_split: str
    source_fingerprint: str
    source_size: int
    indices: tuple[int, ...]
    ids: tuple[str, ...]
    labels: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.indices)


@dataclass(frozen=True)
class GalleryMeta:
    """The JSON sidecar of a gallery."""

    dataset: str
    classes: list[str]
    preprocess: dict
    made_for: str
    split: dict | None  # the checkpoint's split of the training set (seed, fraction, fingerprint, size)
    codec: str
    max_abs_error: int
    mean_abs_error: float
    train: GalleryPart
    heldout: GalleryPart
    attribution: str
    trials: list[CodecTrial] = field(default_factory=list)
    zip_sha256: str = ""
    format: str = GALLERY_FORMAT
    created: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "GalleryMeta":
        if d.get("format") != GALLERY_FORMAT:
            raise GalleryError(f"not a cnnviz gallery (format {d.get('format')!r}, expected {GALLERY_FORMAT})")
        part = lambda p: GalleryPart(p["source_split"], p["source_fingerprint"], int(p["source_size"]),  # noqa: E731
                                     tuple(p["indices"]), tuple(p["ids"]), tuple(p["labels"]))
        return cls(d["dataset"], list(d["classes"]), dict(d["preprocess"]), d["made_for"], d.get("split"),
                   d["codec"], int(d["max_abs_error"]), float(d["mean_abs_error"]), part(d["train"]),
                   part(d["heldout"]), d["attribution"], [CodecTrial(**t) for t in d.get("trials", [])],
                   d.get("zip_sha256", ""), d["format"], d.get("created", ""))

    def describe(self) -> str:
        """One line for a page: ``demo gallery: 5,000 of 48,000 training images, 1,000 of
        10,000 test images``."""
        held = {"test": "test", "val": "held-out validation"}.get(self.heldout.source_split, self.heldout.source_split)
        return (f"demo gallery: {len(self.train):,} of {self.train.source_size:,} training images, "
                f"{len(self.heldout):,} of {self.heldout.source_size:,} {held} images")


def gallery_paths(out: str | Path) -> tuple[Path, Path]:
    """``(<out>.gallery.zip, <out>.gallery.json)`` for an output prefix (a path ending in
    ``.gallery.zip`` or ``.gallery.json`` names the same pair)."""
    out = Path(out)
    name = out.name
    for suffix in (".gallery.zip", ".gallery.json"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return out.with_name(name + ".gallery.zip"), out.with_name(name + ".gallery.json")


def is_gallery(path: str | Path) -> bool:
    """True for a gallery's zip or sidecar whose pair exists."""
    p = Path(path)
    if not (p.name.endswith(".gallery.zip") or p.name.endswith(".gallery.json")):
        return False
    zp, js = gallery_paths(p)
    return zp.is_file() and js.is_file()


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


def _decode(data: bytes, size: int) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        if im.size != (size, size):
            raise GalleryError(f"a gallery image is {im.size[0]}x{im.size[1]} px, expected {size}x{size}: "
                               "make the gallery again with `cnnviz gallery`")
        return np.asarray(im.convert("RGB"))


def try_codecs(images: np.ndarray, codecs: Sequence[str] = tuple(CODECS)) -> list[CodecTrial]:
    """Encode every ``(N, S, S, 3) uint8`` image with each codec and measure the total size and
    the pixel error of the decoded images against the originals."""
    trials = []
    for codec in codecs:
        total, worst, err_sum, sq_sum = 0, 0, 0.0, 0.0
        for img in images:
            data = _encode(img, codec)
            total += len(data)
            diff = _decode(data, img.shape[0]).astype(np.int16) - img
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
                    diff = np.abs(_decode(data, pre.size).astype(np.int16) - src.images[i])
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


def read_gallery_meta(path: str | Path) -> GalleryMeta:
    """The sidecar of a gallery (given its zip or sidecar path)."""
    _, json_path = gallery_paths(path)
    try:
        return GalleryMeta.from_dict(json.loads(json_path.read_text()))
    except FileNotFoundError:
        raise GalleryError(f"{json_path} is missing: make the gallery again with `cnnviz gallery`") from None
    except (ValueError, KeyError, TypeError) as e:
        raise GalleryError(f"{json_path} is not a readable gallery sidecar ({e}): make it again with "
                           "`cnnviz gallery`") from None


def load_gallery_split(path: str | Path, split: str, cache_dir: str | Path | None = None) -> ImageDataset:
    """One part of a gallery, decoded: ``train``, or the held-out part under the name of the
    split it was taken from (``test`` or ``val``; another name gets a message naming the right
    one). Every file is checked against the sidecar (count, size, class) when decoded; the
    decoded images are kept in the cnnviz cache (keyed by the zip's hash, size and time), so a
    second process reads them instead of decoding every JPEG again."""
    zip_path, _ = gallery_paths(path)
    meta = read_gallery_meta(path)
    held = meta.heldout.source_split
    if split not in ("train", held):
        raise GalleryError(f"the gallery {zip_path.name} holds {held} images, not {split} images: use the "
                           f"{held} split")
    part_name = "train" if split == "train" else "heldout"
    record: GalleryPart = getattr(meta, part_name)
    pre = Preprocess.from_dict(meta.preprocess)
    try:
        stat = zip_path.stat()
    except OSError as e:
        raise GalleryError(f"cannot read {zip_path} ({e}): make the gallery again with `cnnviz gallery`") from None
    key = {"format": 1, "zip": meta.zip_sha256, "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns,
           "part": part_name, "size": pre.size, "n": len(record)}
    cache = (Path(cache_dir) if cache_dir is not None else default_cache_dir()) / "galleries" / (
        f"{meta.zip_sha256[:16]}-{part_name}-{pre.size}.npz")
    stored = load_arrays(cache, key)
    if stored is not None and stored["images"].shape == (len(record), pre.size, pre.size, 3):
        return ImageDataset(stored["images"], np.asarray(record.labels, dtype=np.int64), list(meta.classes),
                            list(record.ids), f"gallery-{meta.zip_sha256[:12]}-{part_name}", pre)
    try:
        zf = zipfile.ZipFile(zip_path)
    except (OSError, zipfile.BadZipFile) as e:
        raise GalleryError(f"cannot read {zip_path} ({e}): make the gallery again with `cnnviz gallery`") from None
    with zf:
        members = sorted((n for n in zf.namelist() if n.startswith(part_name + "/") and not n.endswith("/")),
                         key=lambda n: n.rsplit("/", 1)[1])
        if len(members) != len(record):
            raise GalleryError(f"{zip_path} holds {len(members)} {part_name} images, its sidecar lists "
                               f"{len(record)}: make the gallery again with `cnnviz gallery`")
        images = np.zeros((len(members), pre.size, pre.size, 3), dtype=np.uint8)
        for k, name in enumerate(members):
            if name.split("/")[1] != meta.classes[record.labels[k]]:
                raise GalleryError(f"{name} in {zip_path} is not where its sidecar puts it: make the gallery "
                                   "again with `cnnviz gallery`")
            images[k] = _decode(zf.read(name), pre.size)
    try:
        save_arrays(cache, key, images=images)
    except OSError:  # a read-only cache: decode again next time
        pass
    return ImageDataset(images, np.asarray(record.labels, dtype=np.int64), list(meta.classes), list(record.ids),
                        f"gallery-{meta.zip_sha256[:12]}-{part_name}", pre)


def gallery_fits(gm: GalleryMeta, meta: CheckpointMeta) -> bool:
    """True when the gallery can stand in for ``meta``'s dataset: same dataset kind, classes and
    preprocessing, and held-out images the checkpoint never trained on (the test split, or
    indices inside its own validation split)."""
    if gm.dataset != meta.dataset or gm.classes != list(meta.classes) or Preprocess.from_dict(gm.preprocess) != meta.preprocess:
        return False
    if gm.heldout.source_split == "test":
        return meta.split is None or gm.heldout.source_fingerprint != meta.split.fingerprint
    split: SplitSpec | None = meta.split
    return (split is not None and gm.heldout.source_fingerprint == split.fingerprint
            and set(gm.heldout.indices) <= set(split.val_indices))


def find_gallery(checkpoint_path: str | Path, meta: CheckpointMeta) -> Path | None:
    """The gallery zip beside a checkpoint that fits it: ``<name>.gallery.zip`` first, then any
    other gallery in the same folder (sorted by name)."""
    ckpt = Path(checkpoint_path)
    folder = ckpt.parent
    own = gallery_paths(folder / ckpt.stem)[1]
    candidates = [own] + sorted(p for p in folder.glob("*.gallery.json") if p != own)
    for js in candidates:
        if not is_gallery(js):
            continue
        try:
            gm = read_gallery_meta(js)
        except (GalleryError, OSError):
            continue
        if gallery_fits(gm, meta):
            return gallery_paths(js)[0]
    return None

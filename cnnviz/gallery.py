"""Demo galleries: a few thousand real dataset images shipped beside a checkpoint, so every view
works on a machine that has no dataset and no network.

A gallery is two files made by :func:`cnnviz.gallery_make.make_gallery` (``cnnviz gallery``);
this module defines them and reads them back:

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
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from .array_cache import load_arrays, save_arrays
from .checkpoint_meta import CheckpointMeta
from .data import DatasetError, ImageDataset, Preprocess, default_cache_dir
from .data.splits import SplitSpec

__all__ = [
    "CODECS", "GALLERY_FORMAT", "CodecTrial", "GalleryError", "GalleryMeta", "GalleryPart", "decode_member",
    "find_gallery", "gallery_fits", "gallery_paths", "is_gallery", "load_gallery_split", "read_gallery_meta",
]

GALLERY_FORMAT = "cnnviz-gallery/1"
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


def decode_member(data: bytes, size: int) -> np.ndarray:
    """One gallery file's bytes as an ``(S, S, 3) uint8`` image, checked to be ``size`` px."""
    with Image.open(io.BytesIO(data)) as im:
        if im.size != (size, size):
            raise GalleryError(f"a gallery image is {im.size[0]}x{im.size[1]} px, expected {size}x{size}: "
                               "make the gallery again with `cnnviz gallery`")
        return np.asarray(im.convert("RGB"))


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
            images[k] = decode_member(zf.read(name), pre.size)
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

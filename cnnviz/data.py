"""Datasets as users have them, decoded once into a compact uint8 cache.

Supported on-disk shapes
------------------------
* CIFAR-10 in torchvision's format (``cifar-10-batches-py/``), read without unpickling code.
* A folder, or a zip, with one sub-folder per class (any nesting above the class folders:
  ``train/<class>/x.jpg``, ``simpsons_dataset/<character>/pic_0001.jpg``).
* A root holding ``train``/``test`` either as folders or as ``train.zip``/``test.zip``.
* The Simpsons' labelled flat test folder (``<character>_<n>.jpg``) and the competition's
  unlabelled folder of numbered images (``<n>.jpg``).

Every image is decoded once, resized by a :class:`Preprocess` recorded in checkpoints, and kept
as ``(N, H, W, 3) uint8`` in a cache keyed by dataset kind, preprocessing and a fingerprint of
the source, so a training epoch never decodes a JPEG again.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import re
import shutil
import tempfile
import threading
import warnings
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterator, Literal, Sequence

import numpy as np
from PIL import Image

from .runtime import Progress, progress_reporter

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
Split = Literal["train", "test"]
_CACHE_VERSION = 1
_FLAT_LABEL = re.compile(r"^(?P<label>.+?)_(?P<n>\d+)$")

# Limit for a single decoded image, in pixels: larger files are refused as likely hostile.
MAX_IMAGE_PIXELS = 80_000_000


class DatasetError(ValueError):
    """A dataset the user pointed at cannot be used; the message says what to do."""


class UnsafePickleError(DatasetError):
    """A pickle asked for something other than plain data and was refused unread."""


@dataclass(frozen=True)
class Preprocess:
    """How any image becomes the network's square input; recorded in every checkpoint.

    ``mode``: ``"squash"`` resizes to ``size x size`` ignoring aspect ratio, ``"center_crop"``
    resizes the shorter side to ``size`` and crops the centre, ``"pad"`` fits the longer side
    and pads with ``fill`` (keeps characters that stand off-centre in the frame).
    """

    size: int = 32
    mode: Literal["squash", "center_crop", "pad"] = "squash"
    fill: tuple[int, int, int] = (0, 0, 0)

    def to_dict(self) -> dict:
        return {"size": self.size, "mode": self.mode, "fill": list(self.fill)}

    @classmethod
    def from_dict(cls, d: dict) -> "Preprocess":
        return cls(size=int(d["size"]), mode=d["mode"], fill=tuple(d.get("fill", (0, 0, 0))))

    def key(self) -> str:
        return f"{self.size}{self.mode}" + ("" if self.mode != "pad" else "-".join(map(str, self.fill)))

    def apply(self, img: Image.Image) -> np.ndarray:
        """PIL image of any size/mode -> ``(size, size, 3) uint8``."""
        s = self.size
        if img.mode != "RGB":
            img = _to_rgb(img)
        w, h = img.size
        if (w, h) == (s, s):
            return np.asarray(img, dtype=np.uint8)
        if self.mode == "squash":
            out = img.resize((s, s), Image.BILINEAR, reducing_gap=3.0)
        elif self.mode == "center_crop":
            scale = s / min(w, h)
            nw, nh = max(s, round(w * scale)), max(s, round(h * scale))
            img = img.resize((nw, nh), Image.BILINEAR, reducing_gap=3.0)
            left, top = (nw - s) // 2, (nh - s) // 2
            out = img.crop((left, top, left + s, top + s))
        elif self.mode == "pad":
            scale = s / max(w, h)
            nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
            img = img.resize((nw, nh), Image.BILINEAR, reducing_gap=3.0)
            out = Image.new("RGB", (s, s), tuple(self.fill))
            out.paste(img, ((s - nw) // 2, (s - nh) // 2))
        else:
            raise ValueError(f"unknown preprocessing mode {self.mode!r}")
        return np.asarray(out, dtype=np.uint8)


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        bg = Image.new("RGB", img.size, (255, 255, 255))
        bg.paste(img, mask=img.getchannel("A"))
        return bg
    return img.convert("RGB")


class UnreadableImage(ValueError):
    """Raised by :func:`decode_image` for bytes that are not a readable image."""


def decode_image(data: bytes, pre: Preprocess) -> np.ndarray:
    """Encoded image bytes -> ``(size, size, 3) uint8``; raises :class:`UnreadableImage`."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > MAX_IMAGE_PIXELS:
                raise UnreadableImage(
                    f"image is {img.width}x{img.height} pixels, over the limit of "
                    f"{MAX_IMAGE_PIXELS:,}: resize it first"
                )
            if img.format == "JPEG":
                img.draft("RGB", (pre.size * 2, pre.size * 2))  # decode JPEG at reduced scale
            img.load()
            return pre.apply(img)
    except UnreadableImage:
        raise
    except Image.DecompressionBombError:  # PIL refuses far larger frames before our check runs
        raise UnreadableImage(f"image is too large to decode safely (over {MAX_IMAGE_PIXELS:,} pixels): "
                              "resize it first") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise UnreadableImage(f"not a readable image ({type(e).__name__}: {e}): use a PNG, JPEG or another "
                               "common image format") from e


# --------------------------------------------------------------------------------------------
# Containers: a folder or a zip, listed and read the same way.


class _Container:
    """Read-only view of a folder or a zip: relative POSIX paths -> bytes."""

    def __init__(self, path: Path):
        self.path = path
        self.is_zip = path.is_file()
        self._local = threading.local()
        if self.is_zip and not zipfile.is_zipfile(path):
            raise DatasetError(f"{path} is a file but not a zip archive: pass a folder or a .zip")

    def _zip(self) -> zipfile.ZipFile:
        zf = getattr(self._local, "zf", None)
        if zf is None:
            zf = self._local.zf = zipfile.ZipFile(self.path)
        return zf

    def list(self) -> list[tuple[str, int]]:
        """All entries as ``(relative path, size)``; directories end with ``/`` and size 0."""
        if self.is_zip:
            out = []
            for info in self._zip().infolist():
                name = info.filename
                if name.startswith("__MACOSX/") or "/." in "/" + name:
                    continue
                out.append((name, 0 if info.is_dir() else info.file_size))
            return out
        out = []
        for root, dirs, files in os.walk(self.path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            rel = Path(root).relative_to(self.path).as_posix()
            prefix = "" if rel == "." else rel + "/"
            for d in dirs:
                out.append((prefix + d + "/", 0))
            for f in sorted(files):
                if f.startswith("."):
                    continue
                out.append((prefix + f, os.path.getsize(os.path.join(root, f))))
        return out

    def read(self, rel: str) -> bytes:
        if self.is_zip:
            return self._zip().read(rel)
        return (self.path / rel).read_bytes()


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


# --------------------------------------------------------------------------------------------
# Layouts


@dataclass(frozen=True)
class Source:
    """A resolved set of images: where they are, their labels (or ``None``) and ids."""

    path: Path
    layout: Literal["class_tree", "flat_labelled", "unlabelled", "cifar_batches"]
    members: tuple[str, ...]
    labels: tuple[str, ...] | None
    ids: tuple[str, ...]
    fingerprint: str
    stamp: str = ""  # modification times: invalidates the decode cache, not the fingerprint

    @property
    def classes(self) -> list[str]:
        return sorted(set(self.labels)) if self.labels else []


def _fingerprint(items: Sequence[tuple[str, int]], extra: str = "") -> str:
    h = hashlib.sha1(extra.encode())
    for name, size in items:
        h.update(f"{name}\0{size}\n".encode())
    return h.hexdigest()[:16]


def _class_tree(path: Path, entries: list[tuple[str, int]], split: str | None) -> Source | None:
    files = [(n, s) for n, s in entries if not n.endswith("/") and _is_image(n)]
    deep = [(n, s) for n, s in files if len(PurePosixPath(n).parts) >= 2]
    if not deep or len(deep) < len(files) * 0.5:
        return None
    roots: dict[str, list[tuple[str, int]]] = {}
    for n, s in deep:
        parts = PurePosixPath(n).parts
        roots.setdefault("/".join(parts[:-2]), []).append((n, s))
    if len(roots) > 1:
        named = {r: v for r, v in roots.items() if split and PurePosixPath(r).name == split}
        if len(named) != 1:
            raise DatasetError(
                f"{path} holds several class trees ({', '.join(sorted(r or '.' for r in roots))}); "
                f"point at one of them, or name the split ({'train' if split is None else split})"
            )
        roots = named
    (root, items), = roots.items()
    other = {"train": "test", "test": "train"}.get(split or "")
    if other and PurePosixPath(root).name == other:
        raise DatasetError(f"{path} holds only the {other} images; no {split} split found there")
    prefix = root + "/" if root else ""
    class_dirs = {n[len(prefix):].rstrip("/") for n, _ in entries
                  if n.endswith("/") and n.startswith(prefix) and n.count("/") == prefix.count("/") + 1}
    labels = [PurePosixPath(n).parts[-2] for n, _ in items]
    empty = sorted(class_dirs - set(labels))
    if empty:
        raise DatasetError(
            f"class folder(s) {', '.join(empty)} in {path}{'/' + root if root else ''} hold no "
            "images: add images to them or remove them"
        )
    items_sorted = sorted(zip(labels, items), key=lambda t: (t[0], t[1][0]))
    members = tuple(n for _, (n, _) in items_sorted)
    return Source(
        path=path,
        layout="class_tree",
        members=members,
        labels=tuple(lbl for lbl, _ in items_sorted),
        ids=tuple(n[len(prefix):] for n in members),
        fingerprint=_fingerprint([(n[len(prefix):], s) for _, (n, s) in items_sorted], "tree"),
    )


def _flat(path: Path, entries: list[tuple[str, int]]) -> Source | None:
    files = sorted((n, s) for n, s in entries if not n.endswith("/") and _is_image(n))
    if not files:
        return None
    parents = {str(PurePosixPath(n).parent) for n, _ in files}
    if len(parents) != 1:
        return None
    stems = [PurePosixPath(n).stem for n, _ in files]
    if all(s.isdigit() for s in stems):
        order = sorted(range(len(files)), key=lambda i: int(stems[i]))
        return Source(
            path=path, layout="unlabelled",
            members=tuple(files[i][0] for i in order), labels=None,
            ids=tuple(stems[i] for i in order),
            fingerprint=_fingerprint([(PurePosixPath(files[i][0]).name, files[i][1]) for i in order], "unl"),
        )
    matches = [_FLAT_LABEL.match(s) for s in stems]
    if all(matches):
        labels = [m["label"] for m in matches]
        order = sorted(range(len(files)), key=lambda i: (labels[i], int(matches[i]["n"])))
        return Source(
            path=path, layout="flat_labelled",
            members=tuple(files[i][0] for i in order),
            labels=tuple(labels[i] for i in order),
            ids=tuple(stems[i] for i in order),
            fingerprint=_fingerprint([(PurePosixPath(files[i][0]).name, files[i][1]) for i in order], "flat"),
        )
    return None


def _cifar_batches_dir(path: Path) -> Path | None:
    for cand in (path, path / "cifar-10-batches-py"):
        if cand.is_dir() and (cand / "batches.meta").is_file() and (cand / "test_batch").is_file():
            return cand
    return None


def resolve_source(path: str | os.PathLike, split: Split | None = None) -> Source:
    """Find the images under ``path`` for ``split`` ('train'/'test', or None for "as given").

    Raises :class:`DatasetError` with what to do when nothing usable is there.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise DatasetError(
            f"no dataset at {path}: pass the folder or zip that holds it (e.g. --data DIR), "
            "or for CIFAR-10 run `cnnviz download cifar10 --root DIR` where the network allows"
        )
    if path.is_dir():
        batches = _cifar_batches_dir(path)
        if batches is not None:
            return _cifar_batches_source(batches, split or "train")
        if split is not None:
            for cand in (path / split, path / f"{split}.zip"):
                if cand.exists() and cand != path:
                    return resolve_source(cand, None)
            if split == "test":
                for name in ("kaggle_simpson_testset", "kaggle_simpson_testset.zip"):
                    if (path / name).exists():
                        return resolve_source(path / name, None)
    return source_from_entries(path, _Container(path).list(), split)


def source_from_entries(path: Path, entries: list[tuple[str, int]], split: Split | None = None) -> Source:
    """The layout of a folder or zip at ``path`` from its ``(relative name, size)`` entries: a
    class tree (``split`` picks ``train/``/``test/`` inside), else a flat labelled or numbered
    folder. Raises :class:`DatasetError` saying what layouts work."""
    if not any(_is_image(n) for n, _ in entries):
        raise DatasetError(
            f"no images in {path}: expected one sub-folder per class (e.g. train/<class>/*.jpg), "
            "a zip of that, or a flat folder of <class>_<n>.jpg / <n>.jpg files"
        )
    src = _class_tree(path, entries, split)
    if src is None or len(src.classes) == 1:  # a zipped flat folder looks like one class
        flat = _flat(path, entries)
        if flat is not None and (flat.labels is None or len(flat.classes) > 1):
            src = flat
    if src is None:
        raise DatasetError(
            f"cannot tell how {path} is laid out: use one sub-folder per class, or a single "
            "flat folder named <class>_<n>.jpg (labelled) or <n>.jpg (unlabelled)"
        )
    return src


# --------------------------------------------------------------------------------------------
# torchvision's CIFAR-10 format, read with a restricted unpickler.


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


def _cifar_batches_source(root: Path, split: str) -> Source:
    names = ["test_batch"] if split == "test" else [f"data_batch_{i}" for i in range(1, 6)]
    missing = [n for n in names if not (root / n).is_file()]
    if missing:
        raise DatasetError(f"{root} lacks {', '.join(missing)}: re-download CIFAR-10 with torchvision")
    items = [(n, (root / n).stat().st_size) for n in names]
    return Source(path=root, layout="cifar_batches", members=tuple(names), labels=None,
                  ids=tuple(names), fingerprint=_fingerprint(items, "cifarpy"))


# --------------------------------------------------------------------------------------------
# Decoded datasets


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


def default_cache_dir() -> Path:
    """``$CNNVIZ_CACHE`` or ``~/.cache/cnnviz``."""
    return Path(os.environ.get("CNNVIZ_CACHE", Path.home() / ".cache" / "cnnviz"))


def load_dataset(
    path: str | os.PathLike,
    split: Split | None = None,
    preprocess: Preprocess | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: Progress = False,
    workers: int | None = None,
) -> ImageDataset:
    """Load (decoding once, then from cache) the images of ``split`` found at ``path``.

    ``progress``: ``True`` for a tqdm bar, or a callback ``(done, total)`` (the dashboard's bar).
    Unreadable images are skipped and counted in one warning.
    """
    pre = preprocess or Preprocess()
    src = resolve_source(path, split)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = f"v{_CACHE_VERSION}-{src.layout}-{pre.key()}-{src.fingerprint}-{_stamp(src)}"
    entry = cache / key
    if (entry / "meta.json").is_file():
        meta = json.loads((entry / "meta.json").read_text())
        ds = ImageDataset(
            images=np.load(entry / "images.npy"), labels=np.load(entry / "labels.npy"),
            classes=meta["classes"], ids=meta["ids"], fingerprint=src.fingerprint,
            preprocess=pre, skipped=meta["skipped"],
        )
        _warn_skipped(src.path, ds.skipped)
        return ds
    ds = _decode_source(src, pre, progress, workers)
    _write_cache(entry, ds)
    _warn_skipped(src.path, ds.skipped)
    return ds


def _stamp(src: Source) -> str:
    """Hash of the modification times behind a source (zip, batch files or image files)."""
    paths = [src.path] if src.path.is_file() else [src.path / m for m in src.members]
    h = hashlib.sha1()
    for p in paths:
        h.update(str(os.stat(p).st_mtime_ns).encode())
    return h.hexdigest()[:8]


def _warn_skipped(path: Path, skipped: list[str]) -> None:
    if skipped:
        shown = ", ".join(skipped[:5]) + (" ..." if len(skipped) > 5 else "")
        warnings.warn(f"skipped {len(skipped)} unreadable image(s) in {path}: {shown}", stacklevel=3)


def _write_cache(entry: Path, ds: ImageDataset) -> None:
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=entry.name + ".", dir=entry.parent))
    try:
        np.save(tmp / "images.npy", ds.images)
        np.save(tmp / "labels.npy", ds.labels)
        (tmp / "meta.json").write_text(json.dumps(
            {"classes": ds.classes, "ids": ds.ids, "skipped": ds.skipped,
             "preprocess": ds.preprocess.to_dict()}))
        try:
            os.replace(tmp, entry)
        except OSError:  # another process won the race; its copy is identical
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _decode_source(src: Source, pre: Preprocess, progress, workers: int | None) -> ImageDataset:
    if src.layout == "cifar_batches":
        return _decode_cifar_batches(src, pre)
    container = _Container(src.path)
    n = len(src.members)
    out = np.zeros((n, pre.size, pre.size, 3), dtype=np.uint8)
    ok = np.zeros(n, dtype=bool)
    update, close = progress_reporter(progress, n, f"decoding {src.path.name}")

    def work(chunk: range) -> int:
        for i in chunk:
            try:
                out[i] = decode_image(container.read(src.members[i]), pre)
                ok[i] = True
            except (UnreadableImage, OSError, zipfile.BadZipFile):
                pass
        return len(chunk)

    step = 256
    chunks = [range(s, min(s + step, n)) for s in range(0, n, step)]
    workers = workers or min(8, os.cpu_count() or 1)
    done = 0
    try:
        with ThreadPoolExecutor(workers) as pool:
            for k in pool.map(work, chunks):
                done += k
                update(done, n)
    finally:
        close()
    classes = src.classes
    lut = {c: i for i, c in enumerate(classes)}
    labels = (np.array([lut[x] for x in src.labels], dtype=np.int64) if src.labels
              else np.full(n, -1, dtype=np.int64))
    keep = np.flatnonzero(ok)
    return ImageDataset(
        images=out[keep] if len(keep) < n else out, labels=labels[keep], classes=classes,
        ids=[src.ids[i] for i in keep], fingerprint=src.fingerprint, preprocess=pre,
        skipped=[src.ids[i] for i in np.flatnonzero(~ok)],
    )


def _decode_cifar_batches(src: Source, pre: Preprocess) -> ImageDataset:
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


# --------------------------------------------------------------------------------------------
# Splits


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
    """Seeded stratified split: ``(train_idx, val_idx)``, each sorted ``int64``.

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


def iter_images(src: Source) -> Iterator[tuple[str, bytes]]:
    """``(id, bytes)`` for each image of a resolved source (e.g. to predict file by file)."""
    container = _Container(src.path)
    for member, ident in zip(src.members, src.ids):
        yield ident, container.read(member)


# --------------------------------------------------------------------------------------------
# Dataset profiles: the defaults each known dataset trains with.


@dataclass(frozen=True)
class DatasetProfile:
    """Defaults for a known dataset: the model, preprocessing and validation share it uses."""

    name: str
    default_model: str
    preprocess: Preprocess
    val_fraction: float
    description: str


PROFILES: dict[str, DatasetProfile] = {
    "cifar10": DatasetProfile("cifar10", "cifar_fast", Preprocess(32, "squash"), 0.04,
                              "CIFAR-10: 60,000 32x32 images of 10 classes"),
    "simpsons": DatasetProfile("simpsons", "alexnet_style", Preprocess(64, "squash"), 0.15,
                               "The Simpsons characters: frames of any size, 20 characters"),
    "folder": DatasetProfile("folder", "alexnet_style", Preprocess(64, "squash"), 0.1,
                             "any folder with one sub-folder per class"),
}


def profile(name: str) -> DatasetProfile:
    """The profile of a dataset kind; a clear error lists the known kinds."""
    try:
        return PROFILES[name]
    except KeyError:
        raise DatasetError(f"unknown dataset kind {name!r}; known: {', '.join(PROFILES)}") from None

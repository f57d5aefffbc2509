"""Where the images of a split are: the layouts a folder or zip may have, found from its listing.

* A folder, or a zip, with one sub-folder per class (any nesting above the class folders:
  ``train/<class>/x.jpg``, ``simpsons_dataset/<character>/pic_0001.jpg``).
* A root holding ``train``/``test`` either as folders or as ``train.zip``/``test.zip``.
* The Simpsons' labelled flat test folder (``<character>_<n>.jpg``) and the competition's
  unlabelled folder of numbered images (``<n>.jpg``).
* CIFAR-10 in torchvision's format (``cifar-10-batches-py/``; read by :mod:`.cifar`).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterator, Literal, Sequence

from .containers import Container
from .decoding import is_image_name
from .errors import DatasetError

Split = Literal["train", "test"]
_FLAT_LABEL = re.compile(r"^(?P<label>.+?)_(?P<n>\d+)$")
Entries = list[tuple[str, int]]  # (relative name, size in bytes), as Container.list gives them


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


def _tree_root(path: Path, deep: Entries, split: str | None) -> tuple[str, Entries]:
    """The one folder above the class folders, and its images."""
    roots: dict[str, Entries] = {}
    for n, s in deep:
        roots.setdefault("/".join(PurePosixPath(n).parts[:-2]), []).append((n, s))
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
    return root, items


def _class_tree(path: Path, entries: Entries, split: str | None) -> Source | None:
    files = [(n, s) for n, s in entries if not n.endswith("/") and is_image_name(n)]
    deep = [(n, s) for n, s in files if len(PurePosixPath(n).parts) >= 2]
    if not deep or len(deep) < len(files) * 0.5:
        return None
    root, items = _tree_root(path, deep, split)
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


def _require_unique_ids(path: Path, names: Sequence[str], ids: Sequence[str]) -> None:
    """Flat folders name images by file stem: ``3.jpg`` and ``3.png`` would both be id 3."""
    by_id: dict[str, list[str]] = defaultdict(list)
    for name, ident in zip(names, ids):
        by_id[ident].append(PurePosixPath(name).name)
    clashes = {i: sorted(v) for i, v in by_id.items() if len(v) > 1}
    if clashes:
        ident, files = min(clashes.items())
        more = f" (and {len(clashes) - 1} more shared id(s))" if len(clashes) > 1 else ""
        raise DatasetError(
            f"{' and '.join(files)} in {path} share the id {ident}{more}: ids are file names "
            "without the extension and must be unique; rename or remove one of them"
        )


def _flat(path: Path, entries: Entries) -> Source | None:
    files = sorted((n, s) for n, s in entries if not n.endswith("/") and is_image_name(n))
    if not files or len({str(PurePosixPath(n).parent) for n, _ in files}) != 1:
        return None
    stems = [PurePosixPath(n).stem for n, _ in files]
    matches = [_FLAT_LABEL.match(s) for s in stems]
    if all(s.isdigit() for s in stems):
        layout, labels, tag = "unlabelled", None, "unl"
        order = sorted(range(len(files)), key=lambda i: int(stems[i]))
    elif all(matches):
        layout, labels, tag = "flat_labelled", [m["label"] for m in matches], "flat"
        order = sorted(range(len(files)), key=lambda i: (labels[i], int(matches[i]["n"])))
    else:
        return None
    return Source(
        path=path, layout=layout,  # type: ignore[arg-type]
        members=tuple(files[i][0] for i in order),
        labels=None if labels is None else tuple(labels[i] for i in order),
        ids=tuple(stems[i] for i in order),
        fingerprint=_fingerprint([(PurePosixPath(files[i][0]).name, files[i][1]) for i in order], tag),
    )


def cifar_batches_dir(path: Path) -> Path | None:
    """The ``cifar-10-batches-py`` folder at or directly inside ``path``, if there is one."""
    for cand in (path, path / "cifar-10-batches-py"):
        if cand.is_dir() and (cand / "batches.meta").is_file() and (cand / "test_batch").is_file():
            return cand
    return None


def _cifar_batches_source(root: Path, split: str) -> Source:
    names = ["test_batch"] if split == "test" else [f"data_batch_{i}" for i in range(1, 6)]
    missing = [n for n in names if not (root / n).is_file()]
    if missing:
        raise DatasetError(f"{root} lacks {', '.join(missing)}: re-download CIFAR-10 with torchvision")
    items = [(n, (root / n).stat().st_size) for n in names]
    return Source(path=root, layout="cifar_batches", members=tuple(names), labels=None,
                  ids=tuple(names), fingerprint=_fingerprint(items, "cifarpy"))


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
        batches = cifar_batches_dir(path)
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
    return source_from_entries(path, Container(path).list(), split)


def source_from_entries(path: Path, entries: Entries, split: Split | None = None) -> Source:
    """The layout of a folder or zip at ``path`` from its ``(relative name, size)`` entries: a
    class tree (``split`` picks ``train/``/``test/`` inside), else a flat labelled or numbered
    folder. Raises :class:`DatasetError` saying what layouts work, or naming images whose ids
    (file names without the extension, in flat folders) clash."""
    if not any(is_image_name(n) for n, _ in entries):
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
    if src.layout != "class_tree":
        _require_unique_ids(path, src.members, src.ids)
    return src


def iter_images(src: Source) -> Iterator[tuple[str, bytes]]:
    """``(id, bytes)`` for each image of a resolved source (e.g. to predict file by file)."""
    container = Container(src.path)
    for member, ident in zip(src.members, src.ids):
        yield ident, container.read(member)

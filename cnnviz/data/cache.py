"""The on-disk cache of decoded images: one folder per (source, preprocessing), written whole
or not at all, checked against its recorded shapes and checksums whenever it is read.

An entry holds ``images.npy`` (``(N, S, S, 3) uint8``), ``labels.npy`` (``(N,) int64``) and
``meta.json`` (classes, ids, skipped files, preprocessing, and each array's shape, dtype and
CRC-32).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CACHE_VERSION = 2  # 2: arrays carry their shape, dtype and checksum in meta.json
_ARRAYS = ("images", "labels")


class CacheDamaged(Exception):
    """A cache entry that is not what was written (truncated, zeroed, half-deleted)."""


@dataclass
class CacheEntry:
    """What one cache entry holds: ``images`` ``(N, S, S, 3) uint8``, ``labels`` ``(N,) int64``
    and the JSON ``meta`` (``classes``, ``ids``, ``skipped``, ``preprocess``)."""

    images: np.ndarray
    labels: np.ndarray
    meta: dict


def default_cache_dir() -> Path:
    """``$CNNVIZ_CACHE`` or ``~/.cache/cnnviz``."""
    return Path(os.environ.get("CNNVIZ_CACHE", Path.home() / ".cache" / "cnnviz"))


def _checksum(arr: np.ndarray) -> int:
    return zlib.crc32(memoryview(np.ascontiguousarray(arr)).cast("B"))


def _describe(arr: np.ndarray) -> dict:
    return {"shape": list(arr.shape), "dtype": str(arr.dtype), "crc32": _checksum(arr)}


def read_entry(entry: Path) -> CacheEntry | None:
    """The entry at ``entry``, ``None`` when there is none; raises :class:`CacheDamaged`
    (with the reason) when it is there but differs from what was written."""
    if not entry.exists():
        return None
    try:
        meta = json.loads((entry / "meta.json").read_text())
        arrays = {}
        for name in _ARRAYS:
            arr = np.load(entry / f"{name}.npy", allow_pickle=False)
            if _describe(arr) != meta[name]:
                raise CacheDamaged(f"{name}.npy does not match its recorded shape and checksum")
            arrays[name] = arr
        if not len(arrays["images"]) == len(arrays["labels"]) == len(meta["ids"]):
            raise CacheDamaged("its images, labels and ids differ in number")
    except CacheDamaged:
        raise
    except (OSError, ValueError, EOFError, KeyError, TypeError) as e:  # missing, truncated, not JSON
        raise CacheDamaged(f"{type(e).__name__}: {e}") from None
    return CacheEntry(arrays["images"], arrays["labels"], meta)


def _remove(entry: Path) -> None:
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry, ignore_errors=True)
    elif entry.exists() or entry.is_symlink():
        entry.unlink(missing_ok=True)


def write_entry(entry: Path, images: np.ndarray, labels: np.ndarray, meta: dict) -> None:
    """Write an entry whole (into a temporary folder, then renamed), replacing a damaged one;
    ``meta`` must be JSON-serialisable."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=entry.name + ".", dir=entry.parent))
    try:
        np.save(tmp / "images.npy", images)
        np.save(tmp / "labels.npy", labels)
        (tmp / "meta.json").write_text(json.dumps(
            {**meta, "images": _describe(images), "labels": _describe(labels)}))
        _remove(entry)  # a damaged entry, found by read_entry
        try:
            os.replace(tmp, entry)
        except OSError:  # another process won the race; its copy is identical
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

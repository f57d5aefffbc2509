"""Loading a split: find its images, decode them once (within a :class:`Budget`, in threads)
into ``(N, S, S, 3) uint8``, and keep the result in the cache so no epoch decodes a JPEG again."""

from __future__ import annotations

import hashlib
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import numpy as np

from ..runtime import Progress, progress_reporter
from .cache import CACHE_VERSION, CacheDamaged, default_cache_dir, read_entry, write_entry
from .cifar import decode_cifar_batches
from .containers import Container
from .dataset import ImageDataset
from .decoding import Budget, Preprocess, check_total_pixels, decode_image
from .errors import UnreadableImage
from .sources import Source, Split, resolve_source

_STEP = 256  # images per task handed to a worker thread
T = TypeVar("T")


def load_dataset(
    path: str | os.PathLike,
    split: Split | None = None,
    preprocess: Preprocess | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: Progress = False,
    workers: int | None = None,
    budget: Budget | None = None,
) -> ImageDataset:
    """Load (decoding once, then from cache) the images of ``split`` found at ``path``.

    ``progress``: ``True`` for a tqdm bar, or a callback ``(done, total)`` (the dashboard's bar).
    Unreadable images are skipped and counted in one warning. A folder or zip whose image
    headers declare more than ``budget.total_pixels`` in all is refused before anything is
    decoded; a damaged cache entry is decoded again, with one warning.
    """
    pre = preprocess or Preprocess()
    src = resolve_source(path, split)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    entry = cache / f"v{CACHE_VERSION}-{src.layout}-{pre.key()}-{src.fingerprint}-{_stamp(src)}"
    try:
        cached = read_entry(entry)
    except CacheDamaged as e:
        warnings.warn(f"the cached images of {src.path} were damaged ({e}); decoding them again "
                      f"into {entry}", stacklevel=2)
        cached = None
    if cached is not None:
        m = cached.meta
        ds = ImageDataset(cached.images, cached.labels, m["classes"], m["ids"], src.fingerprint, pre,
                          m["skipped"])
    else:
        ds = _decode_source(src, pre, progress, workers, budget or Budget())
        write_entry(entry, ds.images, ds.labels, {"classes": ds.classes, "ids": ds.ids,
                                                  "skipped": ds.skipped, "preprocess": pre.to_dict()})
    _warn_skipped(src.path, ds.skipped)
    return ds


def _stamp(src: Source) -> str:
    """Hash of the modification times behind a source (zip, batch files or image files)."""
    paths = [src.path] if src.path.is_file() else [src.path / m for m in src.members]
    h = hashlib.sha1()
    for p in paths:
        try:
            h.update(str(os.stat(p).st_mtime_ns).encode())
        except OSError:  # a broken link: its own time, if even that can be read
            h.update(str(os.lstat(p).st_mtime_ns).encode() if os.path.lexists(p) else b"-")
    return h.hexdigest()[:8]


def _warn_skipped(path: Path, skipped: list[str]) -> None:
    if skipped:
        shown = ", ".join(skipped[:5]) + (" ..." if len(skipped) > 5 else "")
        warnings.warn(f"skipped {len(skipped)} unreadable image(s) in {path}: {shown}", stacklevel=3)


def _in_threads(work: Callable[[range], T], n: int, workers: int) -> tuple[ThreadPoolExecutor, Iterator[T]]:
    """``work`` on consecutive chunks of ``range(n)`` in a pool; results in order. The caller
    shuts the pool down (``cancel_futures=True`` drops what has not started)."""
    pool = ThreadPoolExecutor(workers)
    return pool, pool.map(work, [range(s, min(s + _STEP, n)) for s in range(0, n, _STEP)])


def _check_pixels(container: Container, src: Source, budget: Budget, workers: int) -> None:
    """Refuse the whole source when its headers declare over ``budget.total_pixels``."""
    def sizes(chunk: range) -> list[int]:
        return [container.declared_pixels(src.members[i], budget.image_pixels) for i in chunk]

    n = len(src.members)
    pool, results = _in_threads(sizes, n, workers)
    try:
        check_total_pixels((px for chunk in results for px in chunk), n, str(src.path),
                           budget.total_pixels)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _decode_source(src: Source, pre: Preprocess, progress: Progress, workers: int | None,
                   budget: Budget) -> ImageDataset:
    if src.layout == "cifar_batches":
        return decode_cifar_batches(src, pre)
    container = Container(src.path, budget.file_bytes)
    n = len(src.members)
    workers = workers or min(8, os.cpu_count() or 1)
    _check_pixels(container, src, budget, workers)
    out = np.zeros((n, pre.size, pre.size, 3), dtype=np.uint8)
    ok = np.zeros(n, dtype=bool)

    def work(chunk: range) -> int:
        for i in chunk:
            try:
                out[i] = decode_image(container.read(src.members[i]), pre, budget.image_pixels)
                ok[i] = True
            except (UnreadableImage, OSError):  # a damaged file, a broken link: skipped, counted
                pass
        return len(chunk)

    update, close = progress_reporter(progress, n, f"decoding {src.path.name}")
    pool, results = _in_threads(work, n, workers)
    done = 0
    try:
        for k in results:
            done += k
            update(done, n)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        close()
    lut = {c: i for i, c in enumerate(src.classes)}
    labels = (np.array([lut[x] for x in src.labels], dtype=np.int64) if src.labels
              else np.full(n, -1, dtype=np.int64))
    keep = np.flatnonzero(ok)
    return ImageDataset(
        images=out[keep] if len(keep) < n else out, labels=labels[keep], classes=src.classes,
        ids=[src.ids[i] for i in keep], fingerprint=src.fingerprint, preprocess=pre,
        skipped=[src.ids[i] for i in np.flatnonzero(~ok)],
    )

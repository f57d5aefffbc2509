"""Penultimate features (``model.embed``) of a whole dataset, computed once and cached on disk.

The cache lives under ``<cache>/features/`` (``$CNNVIZ_CACHE`` or ``~/.cache/cnnviz``)::

    <sha256[:16]>-<fingerprint>-<split>.npy   (N, D) float32 features
    <sha256[:16]>-<fingerprint>-<split>.npz   logits, labels, ids and a small JSON description

keyed by the checkpoint's weights hash, the dataset's source fingerprint and the split name, so
new weights never reuse old features. Both files are written to temporary names and renamed into
place, so a reader never sees half a file; the description (image count, ids, labels,
preprocessing) is checked on load and anything that disagrees is recomputed.

Under ``torchrun`` (``distributed=True``, ``cnnviz features``) the ranks share the pass, each
running a contiguous run of whole batches, and rank 0 writes the very files one process would.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .. import distributed as dist_
from ..checkpoints import Checkpoint
from ..data import ImageDataset, default_cache_dir
from ..evaluate import inference_batches
from ..inputs import Normalization
from ..runtime import Progress, Runtime, check_runtime

_FORMAT = "cnnviz-features/1"
# Images per forward pass. On the 2-core development CPU 128 ran the 60k-image CIFAR-10 pass
# 2-11% faster than 256 in paired runs (smaller activations stay in cache); GPUs are not limited
# by it at these input sizes.
DEFAULT_BATCH = 128


def extract_features(
    ckpt_or_model: Checkpoint | torch.nn.Module,
    images: np.ndarray,
    norm: Normalization | None = None,
    batch_size: int = DEFAULT_BATCH,
    progress: Progress = False,
    runtime: Runtime | None = None,
    distributed: bool = False,
) -> np.ndarray:
    """``(N, H, W, 3) uint8`` images -> ``(N, D) float32`` penultimate features (``model.embed``).

    ``norm`` defaults to the checkpoint's normalisation (required for a bare model). Runs an
    eval-mode view of the model without gradients on ``runtime`` (default: the checkpoint's, or
    the bare model's own device); the model is not moved or changed. ``progress``: ``True`` for
    a tqdm bar, or a ``(done, total)`` callback. ``distributed``: every rank of the process
    group (``torchrun``) calls it with the same images and runs its share of the batches; each
    gets all the features, equal to one process's.
    """
    model, norm = _model_and_norm(ckpt_or_model, norm)
    if runtime is None and isinstance(ckpt_or_model, Checkpoint):
        runtime = ckpt_or_model.runtime
    return _embed_pass(model, images, norm, batch_size, progress, runtime, with_logits=False,
                       distributed=distributed)[0]


def features_and_logits(ckpt: Checkpoint, images: np.ndarray, batch_size: int = DEFAULT_BATCH,
                        runtime: Runtime | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(N, D)`` features and ``(N, K)`` logits of ``images`` computed as :func:`cached_features`
    computes them (``model.embed`` at the runtime's precision, ``model.head`` in float32 on those
    features, one view, no test-time augmentation), on ``runtime`` (default: the checkpoint's)."""
    feats, logits = _embed_pass(ckpt.model, images, ckpt.meta.normalization, batch_size, False,
                                runtime or ckpt.runtime, with_logits=True)
    assert logits is not None
    return feats, logits


def _model_and_norm(obj: Checkpoint | torch.nn.Module, norm: Normalization | None
                    ) -> tuple[torch.nn.Module, Normalization]:
    if isinstance(obj, Checkpoint):
        return obj.model, norm or obj.meta.normalization
    if norm is None:
        raise ValueError("a bare model needs its input normalisation: pass norm=, or pass the Checkpoint")
    return obj, norm


@torch.no_grad()
def _embed_pass(model: torch.nn.Module, images: np.ndarray, norm: Normalization, batch_size: int,
                progress: Progress, runtime: Runtime | None, with_logits: bool, distributed: bool = False
                ) -> tuple[np.ndarray, np.ndarray | None]:
    """One pass: ``(N, D) float32`` features and, when asked, ``(N, K) float32`` logits from
    ``model.head`` applied (in float32) to those same features. ``distributed``: this rank's
    share of the batches, then every rank's rows put together on each."""
    if distributed and dist_.active():
        lo, hi = dist_.shard_bounds(len(images), batch_size)
        feats, logits = _embed_pass(model, images[lo:hi], norm, batch_size, progress if dist_.is_main() else False,
                                    runtime, with_logits)
        return dist_.gather_rows(feats), (dist_.gather_rows(logits) if logits is not None else None)
    rt = check_runtime(model, runtime)
    n = len(images)
    feats: np.ndarray | None = None
    logits: np.ndarray | None = None
    with inference_batches(model, images, norm, rt, batch_size, progress, "features") as (view, batches):
        for s, x in batches:
            with rt.autocast():
                z = view.embed(x)
            z = z.float().flatten(1)
            if feats is None:  # allocated once: no concatenation doubling a large matrix
                feats = np.empty((n, z.shape[1]), np.float32)
            feats[s:s + len(z)] = z.cpu().numpy()
            if with_logits:
                y = view.head(z).float()
                if logits is None:
                    logits = np.empty((n, y.shape[1]), np.float32)
                logits[s:s + len(y)] = y.cpu().numpy()
    if feats is None:
        feats = np.zeros((0, int(getattr(model, "embed_dim", 0))), np.float32)
    if with_logits and logits is None:
        logits = np.zeros((0, int(getattr(model, "num_classes", 0))), np.float32)
    return feats, logits


@dataclass(frozen=True, eq=False)
class FeatureSet:
    """Features of one split of a dataset under one checkpoint.

    ``features``: ``(N, D) float32``; ``logits``: ``(N, K) float32`` (``model.head`` of the
    features, no test-time augmentation); ``labels``: ``(N,) int64`` (-1 unlabelled);
    ``ids``: one name per image; ``fingerprint``: the dataset's; ``checkpoint``: weights hash.
    """

    features: np.ndarray
    logits: np.ndarray
    labels: np.ndarray
    ids: list[str]
    fingerprint: str
    split: str
    checkpoint: str

    def __len__(self) -> int:
        return len(self.labels)


def feature_cache_path(ckpt: Checkpoint, dataset: ImageDataset, split_name: str,
                       cache_dir: str | os.PathLike | None = None) -> Path:
    """Where :func:`cached_features` keeps the ``(N, D)`` matrix (``.npy``; ``.npz`` beside it)."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    safe_split = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in split_name)
    return root / "features" / f"{ckpt.sha256[:16]}-{dataset.fingerprint}-{safe_split}.npy"


def cached_features(
    ckpt: Checkpoint,
    dataset: ImageDataset,
    split_name: str,
    cache_dir: str | os.PathLike | None = None,
    progress: Progress = False,
    runtime: Runtime | None = None,
    batch_size: int = DEFAULT_BATCH,
    distributed: bool = False,
) -> FeatureSet:
    """Features and logits of ``dataset`` under ``ckpt``: from the disk cache when present and
    matching, else computed with one pass of :func:`extract_features` and written atomically.

    ``split_name`` is part of the key (train/val subsets share their source's fingerprint).

    ``distributed``: every rank of the process group (``torchrun``) calls it with the same
    dataset. The cache is read when every rank finds it; else the ranks share the pass, rank 0
    writes the cache while the others wait, and each returns the whole set.
    """
    path = feature_cache_path(ckpt, dataset, split_name, cache_dir)
    side = path.with_suffix(".npz")
    desc = _describe(ckpt, dataset, split_name)
    loaded = _load(path, side, desc)
    if distributed and not dist_.all_agree(loaded is not None):
        loaded = None  # one rank lacks the cache (e.g. another machine's disk): all take part in the pass
    if loaded is not None:
        feats, logits = loaded
    else:
        feats, logits = _embed_pass(ckpt.model, dataset.images, ckpt.meta.normalization, batch_size,
                                    progress, runtime or ckpt.runtime, with_logits=True, distributed=distributed)
        if not distributed or dist_.is_main():
            _save(path, side, feats, logits, dataset, desc)
        if distributed:
            dist_.barrier()
    return FeatureSet(feats, logits, np.asarray(dataset.labels, np.int64), list(dataset.ids),
                      dataset.fingerprint, split_name, ckpt.sha256)


def _describe(ckpt: Checkpoint, dataset: ImageDataset, split_name: str) -> dict:
    ids = hashlib.sha1("\0".join(dataset.ids).encode()).hexdigest()
    return {"format": _FORMAT, "checkpoint": ckpt.sha256, "fingerprint": dataset.fingerprint,
            "split": split_name, "n": len(dataset.ids), "ids_sha1": ids,
            "preprocess": dataset.preprocess.to_dict(),
            "image_shape": list(dataset.images.shape[1:]),
            "normalization": ckpt.meta.normalization.to_dict()}


def _load(path: Path, side: Path, desc: dict) -> tuple[np.ndarray, np.ndarray] | None:
    if not (path.is_file() and side.is_file()):
        return None
    try:
        with np.load(side, allow_pickle=False) as z:
            stored = json.loads(str(z["meta"]))
            logits = z["logits"]
        if stored != desc:
            return None
        feats = np.load(path, allow_pickle=False)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):  # truncated or foreign: redo
        return None
    if feats.dtype != np.float32 or feats.ndim != 2 or len(feats) != desc["n"] or len(logits) != desc["n"]:
        return None
    return feats, logits


def _save(path: Path, side: Path, feats: np.ndarray, logits: np.ndarray, dataset: ImageDataset,
          desc: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic(path, lambda f: np.save(f, feats, allow_pickle=False))
    _atomic(side, lambda f: np.savez(
        f, logits=logits, labels=np.asarray(dataset.labels, np.int64),
        ids=np.asarray(dataset.ids, dtype=str), meta=np.asarray(json.dumps(desc, sort_keys=True))))


def _atomic(dest: Path, write: Callable) -> None:
    """Write through ``write(file)`` to a temporary file beside ``dest``, then rename over it."""
    fd, tmp = tempfile.mkstemp(prefix=dest.name + ".", suffix=".tmp", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

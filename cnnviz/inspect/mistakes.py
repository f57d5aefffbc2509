"""Why a prediction was wrong: mistakes ranked, suspected data issues, and one card per mistake.

* :func:`rank_mistakes` orders the wrong predictions of one confusion cell (or of all cells) by the
  probability given to the wrong class, by the margin over the true class, or by cleanlab's
  label-quality score.
* :func:`find_data_issues` runs cleanlab's ``Datalab`` on the predicted probabilities and the
  penultimate features: suspected label errors, near-duplicates and outliers. It records whether
  the probabilities were out-of-sample (held-out images) or in-sample (images the model trained
  on, whose probabilities are overconfident, so fewer label errors show).
* :func:`calibrate_near_duplicates` measures the feature distance between images and lightly
  changed copies of themselves (a 1-px shift, +-4% brightness, JPEG at quality 90); the
  threshold below which two images count as near-duplicates is the median of those.
* :func:`mistake_card` gathers one image's story: top-3 classes, Grad-CAM for the predicted and
  the true class, its nearest training images, and the channels of the last convolution that
  pushed the predicted logit most.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..array_cache import load_arrays, save_arrays
from ..checkpoints import Checkpoint
from ..data import ImageDataset, default_cache_dir
from ..evaluate import softmax
from ..hooks import model_view
from ..inputs import Normalization, to_input
from ..models.base import CNN
from ..runtime import device_of
from .attribution import attribution_maps
from .contrast import ContrastiveEvidence, contrastive_evidence
from .features import extract_features
from .neighbours import NeighbourIndex

__all__ = ["ORDERS", "RankedMistake", "DataIssues", "NearDuplicateThreshold", "MistakeCard",
           "rank_mistakes", "find_data_issues", "cached_data_issues", "calibrate_near_duplicates",
           "cached_near_duplicate_threshold", "channel_contributions", "mistake_card", "is_out_of_sample"]

_FORMAT = "cnnviz-mistakes/1"


def is_out_of_sample(split: str) -> bool:
    """Whether a checkpoint's predictions on ``split`` are out-of-sample: the test split and the
    recorded validation split were never trained on; the training split was."""
    return split != "train"


def _cache_path(kind: str, ckpt: Checkpoint, dataset: ImageDataset, split: str,
                cache_dir: str | os.PathLike | None) -> tuple[Path, dict]:
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    ids = hashlib.sha1("\0".join(dataset.ids).encode()).hexdigest()[:16]
    meta = {"format": _FORMAT, "kind": kind, "checkpoint": ckpt.sha256, "fingerprint": dataset.fingerprint,
            "split": split, "ids": ids, "n": len(dataset)}
    return root / "mistakes" / f"{kind}-{ckpt.sha256[:16]}-{dataset.fingerprint}-{split}.npz", meta

Order = Literal["confidence", "margin", "label_issue"]
ORDERS: tuple[Order, ...] = ("confidence", "margin", "label_issue")


@dataclass(frozen=True)
class RankedMistake:
    """One wrong prediction: row ``index``, ``true`` and ``pred`` classes, the probability of the
    predicted class (``confidence``) and of the true one, ``margin`` = their difference, and
    cleanlab's ``label_score`` (0 = the label is surely wrong, 1 = surely right; NaN unknown)."""

    index: int
    id: str
    true: int
    pred: int
    confidence: float
    true_prob: float
    margin: float
    label_score: float = float("nan")
    flags: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class DataIssues:
    """cleanlab Datalab's findings on one split, one row per image.

    Scores are cleanlab's: lower = more likely an issue. ``near_duplicate_sets``: for each image
    the rows it nearly duplicates. ``out_of_sample``: whether the probabilities came from images
    the model never trained on."""

    label_score: np.ndarray
    is_label_issue: np.ndarray
    outlier_score: np.ndarray
    is_outlier: np.ndarray
    near_duplicate_score: np.ndarray
    is_near_duplicate: np.ndarray
    near_duplicate_sets: list[list[int]]
    out_of_sample: bool

    def flags(self, i: int) -> tuple[str, ...]:
        """Readable names of image ``i``'s issues."""
        names = [("suspected label error", self.is_label_issue), ("near-duplicate", self.is_near_duplicate),
                 ("outlier", self.is_outlier)]
        return tuple(name for name, mask in names if mask[i])

    def to_arrays(self) -> dict[str, np.ndarray]:
        sets = self.near_duplicate_sets
        return {"label_score": self.label_score, "is_label_issue": self.is_label_issue,
                "outlier_score": self.outlier_score, "is_outlier": self.is_outlier,
                "near_duplicate_score": self.near_duplicate_score, "is_near_duplicate": self.is_near_duplicate,
                "dup_offsets": np.cumsum([0] + [len(s) for s in sets]).astype(np.int64),
                "dup_rows": np.asarray([j for s in sets for j in s], np.int64),
                "out_of_sample": np.asarray(self.out_of_sample)}

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray]) -> "DataIssues":
        off, rows = a["dup_offsets"], a["dup_rows"]
        sets = [rows[off[i]:off[i + 1]].tolist() for i in range(len(off) - 1)]
        return cls(a["label_score"], a["is_label_issue"], a["outlier_score"], a["is_outlier"],
                   a["near_duplicate_score"], a["is_near_duplicate"], sets, bool(a["out_of_sample"]))


def rank_mistakes(labels: np.ndarray, logits: np.ndarray, order: Order = "confidence",
                  true_class: int | None = None, pred_class: int | None = None,
                  ids: Sequence[str] | None = None, issues: DataIssues | None = None) -> list[RankedMistake]:
    """The wrong predictions, optionally of one cell (``true_class`` / ``pred_class``; None = any),
    ordered by ``order``: ``confidence`` (probability of the wrong class, highest first),
    ``margin`` (wrong minus true probability, largest first) or ``label_issue`` (cleanlab's label
    score, lowest first; needs ``issues``). Ties go to the lower index."""
    if order not in ORDERS:
        raise ValueError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
    if order == "label_issue" and issues is None:
        raise ValueError("order='label_issue' needs issues= from find_data_issues")
    labels, logits = np.asarray(labels), np.asarray(logits, np.float64)
    probs = softmax(logits)
    pred = probs.argmax(1)
    rows = np.flatnonzero((labels >= 0) & (pred != labels))
    if true_class is not None:
        rows = rows[labels[rows] == true_class]
    if pred_class is not None:
        rows = rows[pred[rows] == pred_class]
    conf = probs[rows, pred[rows]]
    true_p = probs[rows, labels[rows]]
    score = issues.label_score[rows] if issues is not None else np.full(len(rows), np.nan)
    key = {"confidence": -conf, "margin": -(conf - true_p), "label_issue": score}[order]
    out = []
    for j in np.lexsort((rows, key)):
        i = int(rows[j])
        out.append(RankedMistake(i, str(ids[i]) if ids is not None else str(i), int(labels[i]), int(pred[i]),
                                 float(conf[j]), float(true_p[j]), float(conf[j] - true_p[j]), float(score[j]),
                                 issues.flags(i) if issues is not None else ()))
    return out


# cleanlab's label check otherwise starts a process pool; inside the Streamlit server its workers
# inherit the server's signal handlers, and the page hung waiting for them (measured: 9 minutes).
_ONE_PROCESS = {"find_label_issues_kwargs": {"n_jobs": 1}}


def find_data_issues(labels: np.ndarray, probs: np.ndarray, features: np.ndarray, out_of_sample: bool,
                     k: int = 10) -> DataIssues:
    """cleanlab ``Datalab`` label, outlier and near-duplicate checks on ``(N,)`` labels, ``(N, K)``
    predicted probabilities and ``(N, D)`` features (kNN with ``k`` neighbours, fewer when there
    are at most ``k`` images)."""
    from cleanlab import Datalab

    labels = np.asarray(labels, np.int64)
    if labels.min(initial=0) < 0:
        raise ValueError("every image needs a label (found -1): label issues need the given labels")
    if len(labels) < 3:
        raise ValueError(f"need at least 3 images to look for data issues, got {len(labels)}")
    k = min(k, len(labels) - 1)
    lab = Datalab(data={"label": labels}, label_name="label", verbosity=0)
    lab.find_issues(pred_probs=np.asarray(probs, np.float64), features=np.asarray(features, np.float32),
                    issue_types={"label": {"k": k, "clean_learning_kwargs": _ONE_PROCESS}, "outlier": {"k": k},
                                 "near_duplicate": {"k": k}})
    df = lab.get_issues()
    dup = lab.get_info("near_duplicate").get("near_duplicate_sets")
    sets = [list(map(int, s)) for s in dup] if dup is not None else [[] for _ in labels]
    col = lambda name, dtype: df[name].to_numpy(dtype)  # noqa: E731
    return DataIssues(col("label_score", np.float32), col("is_label_issue", bool), col("outlier_score", np.float32),
                      col("is_outlier_issue", bool), col("near_duplicate_score", np.float32),
                      col("is_near_duplicate_issue", bool), sets, bool(out_of_sample))


def cached_data_issues(ckpt: Checkpoint, dataset: ImageDataset, split: str, features: np.ndarray,
                       logits: np.ndarray, cache_dir: str | os.PathLike | None = None) -> DataIssues:
    """:func:`find_data_issues` for one split under ``ckpt``, from the disk cache (keyed by the
    checkpoint's hash, the data's fingerprint and ids, and the split) when there."""
    path, meta = _cache_path("issues", ckpt, dataset, split, cache_dir)
    stored = load_arrays(path, meta)
    if stored is not None:
        return DataIssues.from_arrays(stored)
    issues = find_data_issues(dataset.labels, softmax(np.asarray(logits, np.float64)), features,
                              is_out_of_sample(split))
    save_arrays(path, meta, **issues.to_arrays())
    return issues


@dataclass(frozen=True)
class NearDuplicateThreshold:
    """Cosine feature distance under which two images count as near-duplicates: the
    ``percentile``-th percentile of the distances between ``n`` images and lightly changed copies
    of themselves; ``nearest_other`` gives the median distance from an image to its nearest
    *other* image among the sample, for scale."""

    threshold: float
    percentile: float
    n: int
    copy_distances: tuple[float, float, float]  # 50th, 90th, 99th percentile
    nearest_other: float


def _jiggle(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Lightly changed copies: a 1-px shift (edge repeated), brightness x (0.96..1.04), JPEG q90."""
    out = np.empty_like(images)
    for i, img in enumerate(images):
        dy, dx = rng.integers(-1, 2, 2)
        img = np.roll(np.pad(img, ((1, 1), (1, 1), (0, 0)), mode="edge"), (dy, dx), (0, 1))[1:-1, 1:-1]
        img = np.clip(img * rng.uniform(0.96, 1.04), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=90)
        out[i] = np.asarray(Image.open(buf).convert("RGB"))
    return out


def calibrate_near_duplicates(model: CNN, images: np.ndarray, norm: Normalization, n: int = 500,
                              percentile: float = 50.0, seed: int = 0) -> NearDuplicateThreshold:
    """Calibrate the near-duplicate threshold on ``n`` of ``images`` (seeded sample): two images
    are near-duplicates when they are closer than half of the lightly changed copies are to their
    originals. (The 95th percentile flagged 21.6% of CIFAR-10's test images with cifar10_cnn, most
    of them merely similar; the median flags 1.8%, mostly the same photographs recropped or
    recoloured, against the 3.3% that Barz & Denzler's ciFAIR found by hand.)"""
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(images), size=min(n, len(images)), replace=False))
    if len(pick) < 2:
        raise ValueError("need at least 2 images to calibrate the near-duplicate threshold")
    sample = np.asarray(images)[pick]
    a = extract_features(model, sample, norm)
    b = extract_features(model, _jiggle(sample, rng), norm)
    an = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    bn = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    copies = 1.0 - (an * bn).sum(1)
    others = NeighbourIndex(a, metrics=("cosine",)).query(a, 2, "cosine").distances[:, 1]
    q = np.percentile(copies, [50, 90, 99])
    return NearDuplicateThreshold(float(np.percentile(copies, percentile)), percentile, len(pick),
                                  tuple(float(v) for v in q), float(np.median(others)))


def cached_near_duplicate_threshold(ckpt: Checkpoint, train: ImageDataset,
                                    cache_dir: str | os.PathLike | None = None) -> NearDuplicateThreshold:
    """:func:`calibrate_near_duplicates` on the training images of ``ckpt``, cached on disk."""
    path, meta = _cache_path("dupthreshold", ckpt, train, "train", cache_dir)
    stored = load_arrays(path, meta)
    if stored is not None:
        v = stored["values"]
        return NearDuplicateThreshold(float(v[0]), float(v[1]), int(v[2]), (float(v[3]), float(v[4]), float(v[5])),
                                      float(v[6]))
    t = calibrate_near_duplicates(ckpt.model, train.images, ckpt.meta.normalization)
    save_arrays(path, meta, values=np.asarray([t.threshold, t.percentile, t.n, *t.copy_distances, t.nearest_other]))
    return t


def channel_contributions(model: CNN, image: np.ndarray, norm: Normalization, target: int, layer: str
                          ) -> np.ndarray:
    """``(C,)`` how much each channel of ``layer`` pushed logit ``target`` for one image:
    activation x gradient summed over positions, which is activation x weight exactly when the
    logit is linear in the layer (and its first-order share otherwise)."""
    view = model_view(model)
    module = view.get_submodule(layer)
    kept: dict[str, torch.Tensor] = {}

    def hook(_m, _inp, out):
        kept["a"] = out

    handle = module.register_forward_hook(hook)
    try:
        with torch.inference_mode(False), torch.enable_grad():
            x = to_input(image, norm, device_of(model)).requires_grad_(True)  # loaded weights may be frozen
            logit = view(x)[0, int(target)]
            (grad,) = torch.autograd.grad(logit, kept["a"])
    finally:
        handle.remove()
    a = kept["a"].detach()
    dims = tuple(range(2, a.ndim))
    return (a * grad).sum(dims)[0].float().cpu().numpy() if dims else (a * grad)[0].float().cpu().numpy()


@dataclass(frozen=True, eq=False)
class MistakeCard:
    """One image's story. ``top``: best 3 ``(class, probability)``; ``cam_pred`` / ``cam_true``:
    Grad-CAM ``(H, W)`` maps in [0, 1] for the predicted and the true class on ``layer``;
    ``neighbours`` / ``neighbour_labels`` / ``neighbour_distances``: the nearest training images
    (cosine distance of the penultimate features); ``near_duplicate``: which of them lie under
    ``threshold``; ``likely_label_error``: real evidence only, cleanlab's flag on its label or a
    near-duplicate training image labelled as the prediction (neighbours that merely share the
    predicted class are no evidence: they are why the model erred); ``channels`` /
    ``contributions``: the channels of ``layer`` that pushed the predicted logit most, strongest
    first; ``true_prob``: the true class's probability; ``contrast``: why the predicted class over
    the true one (:class:`~cnnviz.inspect.contrast.ContrastiveEvidence`)."""

    index: int
    true: int
    pred: int
    top: list[tuple[int, float]]
    layer: str
    cam_pred: np.ndarray
    cam_true: np.ndarray
    neighbours: np.ndarray
    neighbour_labels: np.ndarray
    neighbour_distances: np.ndarray
    near_duplicate: np.ndarray
    threshold: float
    likely_label_error: bool
    channels: np.ndarray
    contributions: np.ndarray
    flags: tuple[str, ...] = field(default=())
    true_prob: float = float("nan")
    contrast: ContrastiveEvidence | None = None


def mistake_card(model: CNN, image: np.ndarray, norm: Normalization, true: int, logits: np.ndarray,
                 query_features: np.ndarray, train_index: NeighbourIndex, train_labels: np.ndarray,
                 threshold: float, layer: str | None = None, index: int = -1, k: int = 5,
                 n_channels: int = 5, flags: tuple[str, ...] = ()) -> MistakeCard:
    """Build the card of one image (``(H, W, 3) uint8``) from its ``logits`` ``(K,)`` and penultimate
    ``query_features`` ``(D,)``; ``train_index`` indexes the training features (cosine);
    ``flags``: cleanlab's findings on the image (:meth:`DataIssues.flags`)."""
    probs = softmax(np.asarray(logits, np.float64)[None])[0]
    pred = int(probs.argmax())
    top = [(int(c), float(probs[c])) for c in np.argsort(-probs, kind="stable")[:3]]
    if layer is None:
        layer = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)][-1]
    cams = attribution_maps(model, image[None].repeat(2, 0), norm, [pred, int(true)], "grad_cam", layer=layer)
    nb = train_index.query(np.asarray(query_features, np.float32)[None], k, "cosine")
    rows, dist = nb.indices[0], nb.distances[0]
    labels = np.asarray(train_labels)[rows]
    near = dist < threshold
    likely = pred != int(true) and ("suspected label error" in flags or bool((near & (labels == pred)).any()))
    contrib = channel_contributions(model, image, norm, pred, layer)
    best = np.argsort(-contrib, kind="stable")[:n_channels]
    contrast = (contrastive_evidence(model, image, norm, pred, int(true), layer, cams[0], cams[1], logits)
                if pred != int(true) else None)
    return MistakeCard(index, int(true), pred, top, layer, cams[0], cams[1], rows, labels, dist, near,
                       float(threshold), likely, best, contrib[best], tuple(flags), float(probs[int(true)]), contrast)

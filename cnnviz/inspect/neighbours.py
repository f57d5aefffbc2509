"""Exact k-nearest-neighbour search over a resident feature (or pixel) matrix.

The index keeps one C-contiguous ``(N, D) float32`` matrix and everything a query needs that
depends only on it (squared row norms; for cosine, a row-normalised copy), all computed once at
build time. A query then costs one BLAS product over the matrix (``(N, D) @ (D,)`` for one
vector, ``(m, D) @ (D, N)`` for a block of ``m`` vectors), an ``argpartition`` and a sort of a
few candidates: nothing is copied or converted per query.

Exactness
---------
Candidates are selected with ``||x||^2 - 2 x.q`` (Euclidean) or ``xn.qn`` (cosine) in float32,
which is what makes a query one matrix-vector product. The expansion loses precision when two
distances differ by less than float32 rounding of ``||x||^2``, so the best ``k + 32`` candidates
are taken and re-ranked by distances computed directly in float64 (``||x - q||`` and
``1 - x.q / (||x|| ||q||)``). Returned distances are therefore exact up to their final rounding to
float32, and the returned neighbours equal brute force unless more than 32 points lie within
float32 rounding of the k-th distance. Ties are broken by the lower index.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np

Metric = Literal["euclidean", "cosine"]
METRICS: tuple[Metric, ...] = ("euclidean", "cosine")
_RERANK_MARGIN = 32  # extra candidates re-ranked with exact distances
_BLOCK_BYTES = 64 << 20  # bound on one block of the (m, N) score matrix
_GATHER_BYTES = 32 << 20  # bound on the float64 rows gathered for re-ranking


@dataclass(frozen=True, eq=False)
class Neighbours:
    """Result of a query of ``M`` vectors.

    ``indices``: ``(M, k) int64`` rows of the index, nearest first; ``distances``:
    ``(M, k) float32`` (Euclidean distance, or cosine distance ``1 - cos``); ``metric``.
    """

    indices: np.ndarray
    distances: np.ndarray
    metric: Metric


class NeighbourIndex:
    """Exact nearest neighbours among the rows of ``data`` ``(N, D)``.

    ``data`` is kept as a C-contiguous float32 array: no copy when it already is one (so do not
    modify it afterwards; the index holds a read-only view and leaves the caller's flags alone).
    ``metrics`` names what to prepare: cosine costs a second ``(N, D)`` float32 matrix (the
    row-normalised copy), so leave it out when only Euclidean is needed. The index is read-only
    after construction and safe to share between threads.
    """

    def __init__(self, data: np.ndarray, metrics: Sequence[Metric] = METRICS):
        data = np.ascontiguousarray(data, dtype=np.float32)
        if data.ndim != 2 or data.shape[0] == 0:
            raise ValueError(f"expected a non-empty (N, D) matrix, got shape {data.shape}")
        unknown = set(metrics) - set(METRICS)
        if unknown:
            raise ValueError(f"unknown metric(s) {sorted(unknown)}: use {' or '.join(METRICS)}")
        self._metrics = tuple(dict.fromkeys(metrics))
        sq = np.concatenate([np.square(data[s:s + 4096], dtype=np.float64).sum(1)
                             for s in range(0, len(data), 4096)])
        self._sqnorms = sq.astype(np.float32)
        self._norms64 = np.sqrt(sq)
        self._unit: np.ndarray | None = None
        if "cosine" in self._metrics:
            inv = np.divide(1.0, self._norms64, out=np.zeros_like(self._norms64), where=self._norms64 > 0)
            self._unit = data * inv.astype(np.float32)[:, None]  # zero rows stay zero
        self._data = data.view()  # a read-only view: the caller's own array stays writeable
        for a in (self._data, self._sqnorms, self._norms64, self._unit):
            if a is not None:
                a.flags.writeable = False

    @classmethod
    def from_images(cls, images: np.ndarray, metrics: Sequence[Metric] = ("euclidean",)) -> "NeighbourIndex":
        """Pixel-space index over ``(N, H, W, 3) uint8`` images, flattened to float32 in 0..255."""
        return cls(pixel_vectors(images), metrics)

    @property
    def data(self) -> np.ndarray:
        """The resident ``(N, D) float32`` matrix (read-only)."""
        return self._data

    @property
    def metrics(self) -> tuple[Metric, ...]:
        return self._metrics

    @property
    def shape(self) -> tuple[int, int]:
        return self._data.shape  # type: ignore[return-value]

    def __len__(self) -> int:
        return self._data.shape[0]

    def query(self, q: np.ndarray, k: int, metric: Metric = "euclidean") -> Neighbours:
        """The ``k`` nearest rows to each query.

        ``q``: ``(D,)`` or ``(M, D)`` float (a 1-D query gives ``M = 1``).
        Returns :class:`Neighbours` with ``(M, k)`` indices and distances, nearest first.
        """
        n, d = self._data.shape
        if metric not in self._metrics:
            raise ValueError(f"this index was built for {', '.join(self._metrics)}; build it with "
                             f"metrics=(..., {metric!r}) to query by {metric}")
        if not 1 <= k <= n:
            raise ValueError(f"k={k} but the index holds {n} vectors: ask for 1 to {n}")
        q = np.asarray(q, dtype=np.float32)
        if q.ndim == 1:
            q = q[None]
        if q.ndim != 2 or q.shape[1] != d:
            raise ValueError(f"queries must be ({d},) or (M, {d}), got shape {q.shape}")
        m = q.shape[0]
        c = min(n, k + _RERANK_MARGIN)
        out_i = np.empty((m, k), np.int64)
        out_d = np.empty((m, k), np.float32)
        if m == 1:
            cand = self._candidates(self._scores_one(q[0], metric)[None], c)
            out_i[:], out_d[:] = self._rerank(q, cand, k, metric)
            return Neighbours(out_i, out_d, metric)
        block = max(1, min(m, _BLOCK_BYTES // (4 * n)))
        for s in range(0, m, block):
            qb = q[s:s + block]
            cand = self._candidates(self._scores_block(qb, metric), c)
            out_i[s:s + block], out_d[s:s + block] = self._rerank(qb, cand, k, metric)
        return Neighbours(out_i, out_d, metric)

    # ----------------------------------------------------------------------------------------
    # Smaller is nearer for every score below.

    def _scores_one(self, q: np.ndarray, metric: Metric) -> np.ndarray:
        if metric == "euclidean":
            s = np.dot(self._data, q)  # BLAS sgemv over the resident matrix
            s *= -2.0
            s += self._sqnorms
            return s
        s = np.dot(self._unit, q)
        np.negative(s, out=s)
        return s

    def _scores_block(self, q: np.ndarray, metric: Metric) -> np.ndarray:
        if metric == "euclidean":
            s = q @ self._data.T  # BLAS sgemm; .T is a view, not a copy
            s *= -2.0
            s += self._sqnorms[None]
            return s
        s = q @ self._unit.T
        np.negative(s, out=s)
        return s

    @staticmethod
    def _candidates(scores: np.ndarray, c: int) -> np.ndarray:
        """``(m, N)`` scores -> ``(m, c)`` indices of the ``c`` smallest (unordered)."""
        if c >= scores.shape[1]:
            return np.broadcast_to(np.arange(scores.shape[1]), scores.shape).copy()
        return np.argpartition(scores, c - 1, axis=1)[:, :c]

    def _rerank(self, q: np.ndarray, cand: np.ndarray, k: int, metric: Metric
                ) -> tuple[np.ndarray, np.ndarray]:
        """Exact float64 distances of the candidates; the ``k`` best sorted by (distance, index)."""
        m, c = cand.shape
        d = self._data.shape[1]
        dist = np.empty((m, c), np.float64)
        rows = max(1, _GATHER_BYTES // (8 * c * d))
        for s in range(0, m, rows):
            idx = cand[s:s + rows]
            x = self._data[idx].astype(np.float64)  # (r, c, D)
            qq = q[s:s + rows].astype(np.float64)[:, None, :]
            if metric == "euclidean":
                diff = x - qq
                dist[s:s + rows] = np.sqrt(np.einsum("rcd,rcd->rc", diff, diff))
            else:
                dots = np.einsum("rcd,rcd->rc", x, qq)
                qn = np.linalg.norm(qq, axis=-1)  # (r, 1)
                den = self._norms64[idx] * qn
                cos = np.divide(dots, den, out=np.zeros_like(dots), where=den > 0)
                dist[s:s + rows] = 1.0 - np.clip(cos, -1.0, 1.0)
        order = np.lexsort((cand, dist), axis=1)[:, :k]
        return np.take_along_axis(cand, order, 1), np.take_along_axis(dist, order, 1).astype(np.float32)


def pixel_vectors(images: np.ndarray) -> np.ndarray:
    """``(N, H, W, 3) uint8`` (or one ``(H, W, 3)``) -> ``(N, H*W*3) float32`` in 0..255."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[None]
    return images.reshape(len(images), -1).astype(np.float32)


@dataclass(frozen=True, eq=False)
class PurityResult:
    """How often an image's nearest training neighbours share its label.

    ``per_image``: ``(M,) float32`` fraction of each test image's ``k`` neighbours with its label;
    ``per_class``: ``(K,) float64`` mean of ``per_image`` over the test images of each class
    (NaN for a class with no test image); ``support``: ``(K,) int64`` test images per class;
    ``overall``: mean over all test images.
    """

    per_image: np.ndarray
    per_class: np.ndarray
    support: np.ndarray
    overall: float
    k: int
    metric: Metric
    rows: np.ndarray | None = None  # the test rows measured, when a sample of them (None: all)


def neighbour_purity(
    train_feats: np.ndarray | NeighbourIndex,
    train_labels: np.ndarray,
    test_feats: np.ndarray,
    test_labels: np.ndarray,
    k: int,
    metric: Metric = "euclidean",
    num_classes: int | None = None,
    batch_size: int = 1024,
) -> PurityResult:
    """Label purity of each test image's ``k`` nearest training images.

    ``train_feats``: ``(N, D) float32`` or a built :class:`NeighbourIndex` over them (reused, not
    rebuilt); ``train_labels``: ``(N,)`` int; ``test_feats``: ``(M, D)``; ``test_labels``:
    ``(M,)`` int. Queries run ``batch_size`` at a time. When the test set *is* the training set
    each image finds itself first: pass ``k + 1`` and discount it, or use disjoint sets.
    """
    index = train_feats if isinstance(train_feats, NeighbourIndex) else NeighbourIndex(train_feats, (metric,))
    train_labels = np.asarray(train_labels, np.int64)
    test_labels = np.asarray(test_labels, np.int64)
    if len(train_labels) != len(index):
        raise ValueError(f"{len(train_labels)} training labels for {len(index)} training vectors")
    if len(test_labels) != len(test_feats):
        raise ValueError(f"{len(test_labels)} test labels for {len(test_feats)} test vectors")
    if (test_labels < 0).any() or (train_labels < 0).any():
        raise ValueError("purity needs labelled images: drop the unlabelled ones (label -1) first")
    if num_classes is None:
        num_classes = int(max(train_labels.max(initial=-1), test_labels.max(initial=-1))) + 1
    per_image = np.empty(len(test_labels), np.float32)
    for s in range(0, len(test_labels), batch_size):
        nb = index.query(test_feats[s:s + batch_size], k, metric)
        same = train_labels[nb.indices] == test_labels[s:s + batch_size, None]
        per_image[s:s + batch_size] = same.mean(axis=1)
    support = np.bincount(test_labels, minlength=num_classes).astype(np.int64)
    sums = np.bincount(test_labels, weights=per_image, minlength=num_classes)
    per_class = np.divide(sums, support, out=np.full(num_classes, np.nan), where=support > 0)
    overall = float(per_image.mean(dtype=np.float64)) if len(per_image) else float("nan")
    return PurityResult(per_image, per_class, support, overall, k, metric)


@dataclass(frozen=True, eq=False)
class QueryNeighbours:
    """AlexNet's figure 4 as numbers: ``queries`` ``(Q,) int64``, the rows of the query set
    chosen; ``indices`` ``(Q, k) int64``, each query's nearest rows of the index, nearest first;
    ``distances`` ``(Q, k) float32``; ``query_labels`` ``(Q,)`` and ``labels`` ``(Q, k)`` int64
    (the queries' and the neighbours' classes; -1 where unknown); ``metric``."""

    queries: np.ndarray
    indices: np.ndarray
    distances: np.ndarray
    query_labels: np.ndarray
    labels: np.ndarray
    metric: Metric

    @property
    def k(self) -> int:
        return int(self.indices.shape[1])

    def __len__(self) -> int:
        return len(self.queries)

    @property
    def same(self) -> np.ndarray:
        """``(Q, k) bool``: the neighbour's class is the query's (False where either is unknown)."""
        return (self.labels == self.query_labels[:, None]) & (self.labels >= 0) & (self.query_labels[:, None] >= 0)

    @property
    def same_count(self) -> int:
        """How many of the ``Q * k`` neighbours share their query's class."""
        return int(self.same.sum())


def pick_queries(n: int, count: int = 5, labels: np.ndarray | None = None, seed: int = 0,
                 distinct_classes: bool = True) -> np.ndarray:
    """``count`` rows of ``n`` chosen at random with ``seed`` (all of them when ``n <= count``).
    With ``labels`` and ``distinct_classes``, from as many different classes as there are
    (a random class order, one random image of each), then any others."""
    rng = np.random.default_rng(seed)
    count = min(int(count), int(n))
    if count <= 0:
        return np.zeros(0, np.int64)
    if labels is None or not distinct_classes:
        return np.sort(rng.choice(n, size=count, replace=False)).astype(np.int64)
    labels = np.asarray(labels, np.int64)
    if len(labels) != n:
        raise ValueError(f"{len(labels)} labels for {n} query images")
    chosen: list[int] = []
    for c in rng.permutation(np.unique(labels[labels >= 0])):
        if len(chosen) == count:
            break
        chosen.append(int(rng.choice(np.flatnonzero(labels == c))))
    if len(chosen) < count:
        rest = np.setdiff1d(np.arange(n), chosen)
        chosen += [int(i) for i in rng.choice(rest, size=count - len(chosen), replace=False)]
    return np.asarray(chosen, np.int64)


def query_neighbours(index: NeighbourIndex, query_features: np.ndarray, train_labels: np.ndarray | None = None,
                     query_labels: np.ndarray | None = None, queries: Sequence[int] | None = None,
                     count: int = 5, k: int = 6, seed: int = 0, metric: Metric = "euclidean",
                     distinct_classes: bool = True, same_set: bool = False) -> QueryNeighbours:
    """AlexNet's figure 4: for ``count`` query images (five by default, chosen by
    :func:`pick_queries` with ``seed``, or the rows ``queries`` of ``query_features``) their
    ``k`` nearest rows of ``index`` (training images in the penultimate feature space).

    ``query_features``: ``(M, D)``, the same space as the index; ``train_labels`` ``(N,)`` and
    ``query_labels`` ``(M,)`` give the classes (unknown: -1). ``same_set``: the queries are rows
    of the index itself (e.g. training images), so each query's own row is left out."""
    feats = np.asarray(query_features, np.float32)
    if feats.ndim != 2 or feats.shape[1] != index.shape[1]:
        raise ValueError(f"query features must be (M, {index.shape[1]}), got shape {feats.shape}")
    m = len(feats)
    qlab_all = None if query_labels is None else np.asarray(query_labels, np.int64)
    if qlab_all is not None and len(qlab_all) != m:
        raise ValueError(f"{len(qlab_all)} query labels for {m} query images")
    if queries is None:
        rows = pick_queries(m, count, qlab_all, seed, distinct_classes)
    else:
        rows = np.asarray(list(queries), np.int64)
        if rows.ndim != 1 or (len(rows) and (rows.min() < -m or rows.max() >= m)):
            raise ValueError(f"query rows must be 0 to {m - 1}, got {rows.tolist()}")
        rows = rows % m if len(rows) else rows
    extra = 1 if same_set else 0
    if not 1 <= k <= len(index) - extra:
        raise ValueError(f"k={k} but the index holds {len(index)} vectors: ask for 1 to {len(index) - extra}")
    if len(rows):
        nb = index.query(feats[rows], k + extra, metric)
        idx, dist = nb.indices, nb.distances
    else:
        idx, dist = np.zeros((0, k + extra), np.int64), np.zeros((0, k + extra), np.float32)
    if same_set:  # drop each query's own row (or the farthest, where it is not among them)
        keep = idx != rows[:, None]
        keep[keep.all(1), -1] = False
        idx = idx[keep].reshape(len(rows), k)
        dist = dist[keep].reshape(len(rows), k)
    tl = None if train_labels is None else np.asarray(train_labels, np.int64)
    if tl is not None and len(tl) != len(index):
        raise ValueError(f"{len(tl)} training labels for {len(index)} training vectors")
    labels = tl[idx] if tl is not None else np.full(idx.shape, -1, np.int64)
    qlab = qlab_all[rows] if qlab_all is not None else np.full(len(rows), -1, np.int64)
    return QueryNeighbours(rows, idx, dist, qlab, labels, metric)

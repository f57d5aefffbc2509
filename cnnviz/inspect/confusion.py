"""Where a model goes wrong: confusion matrix, most-confused class pairs, and the images in a cell.

Built on :func:`cnnviz.evaluate.report_from_predictions` (counts, precision, recall, F1), so the
numbers here are the ones ``cnnviz evaluate`` prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np

from ..evaluate import report_from_predictions, softmax


@dataclass(frozen=True, eq=False)
class ConfusionResult:
    """Confusion of ``N`` predictions over ``K`` classes.

    ``counts``: ``(K, K) int64``, row = true class, column = predicted; ``normalised``:
    ``(K, K) float64`` rows divided by their sums (a row with no images stays 0);
    ``precision``/``recall``/``f1``: ``(K,) float64``; ``support``: ``(K,) int64`` true images per
    class; ``accuracy``: fraction correct.
    """

    classes: list[str]
    counts: np.ndarray
    normalised: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray
    accuracy: float

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def _check_labels(labels: np.ndarray, k: int) -> np.ndarray:
    labels = np.asarray(labels, np.int64)
    if labels.ndim != 1:
        raise ValueError(f"labels must be (N,), got shape {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= k):
        raise ValueError(f"labels must be class indices in 0..{k - 1}; unlabelled images (-1) "
                         "have no place in a confusion matrix: drop them first")
    return labels


def confusion_from_predictions(labels: np.ndarray, predictions: np.ndarray,
                               classes: Sequence[str]) -> ConfusionResult:
    """``(N,)`` true and ``(N,)`` predicted class indices -> :class:`ConfusionResult`."""
    k = len(classes)
    labels = _check_labels(labels, k)
    predictions = np.asarray(predictions, np.int64)
    if predictions.shape != labels.shape:
        raise ValueError(f"{len(predictions)} predictions for {len(labels)} labels")
    rep = report_from_predictions(labels, predictions, list(classes))
    counts = np.asarray(rep.confusion, np.int64).reshape(k, k)
    rows = counts.sum(1, keepdims=True)
    normalised = np.divide(counts, rows, out=np.zeros((k, k)), where=rows > 0)
    return ConfusionResult(
        classes=list(classes), counts=counts, normalised=normalised,
        precision=np.asarray(rep.precision, np.float64), recall=np.asarray(rep.recall, np.float64),
        f1=np.asarray(rep.f1, np.float64), support=np.asarray(rep.support, np.int64),
        accuracy=rep.accuracy,
    )


def confusion_from_logits(labels: np.ndarray, logits: np.ndarray,
                          classes: Sequence[str] | None = None) -> ConfusionResult:
    """``(N,)`` int labels and ``(N, K)`` float logits -> :class:`ConfusionResult`.

    ``classes`` defaults to ``"0" .. "K-1"``.
    """
    logits = np.asarray(logits)
    if logits.ndim != 2:
        raise ValueError(f"logits must be (N, K), got shape {logits.shape}")
    if classes is None:
        classes = [str(i) for i in range(logits.shape[1])]
    if len(classes) != logits.shape[1]:
        raise ValueError(f"{len(classes)} class names for {logits.shape[1]} logits per image")
    return confusion_from_predictions(labels, logits.argmax(1), classes)


class ConfusedPair(NamedTuple):
    """One off-diagonal cell: ``count`` images of class ``true`` predicted as ``pred``; ``rate``
    is ``count`` over the images of ``true``."""

    true: int
    pred: int
    count: int
    rate: float


def most_confused_pairs(result: ConfusionResult, n: int = 10, by: str = "count") -> list[ConfusedPair]:
    """The ``n`` largest off-diagonal cells with at least one image, largest first.

    ``by="count"`` orders by count (then rate), ``by="rate"`` by rate (then count); ties go to
    the lower (true, pred) indices.
    """
    if by not in ("count", "rate"):
        raise ValueError(f"by must be 'count' or 'rate', not {by!r}")
    t, p = np.nonzero(result.counts * (1 - np.eye(result.num_classes, dtype=np.int64)))
    counts = result.counts[t, p]
    rates = result.normalised[t, p]
    primary, secondary = (counts, rates) if by == "count" else (rates, counts)
    order = np.lexsort((p, t, -secondary, -primary))[:max(n, 0)]
    return [ConfusedPair(int(t[i]), int(p[i]), int(counts[i]), float(rates[i])) for i in order]


def confused_block(result: ConfusionResult, size: int = 20) -> list[int]:
    """The ``size`` classes most involved in mistakes (images of the class taken for another,
    plus images of others taken for it; ties: the lower class number), in class order: the
    block of a large confusion matrix worth zooming into."""
    off = np.asarray(result.counts, np.int64).copy()
    np.fill_diagonal(off, 0)
    involved = off.sum(0) + off.sum(1)
    top = np.lexsort((np.arange(result.num_classes), -involved))[:max(size, 1)]
    return sorted(int(i) for i in top)


def class_block(result: ConfusionResult, cls: int, size: int = 20) -> list[int]:
    """Class ``cls`` first, then the classes it is confused with, most images first (either
    way: its images taken for them, theirs for it; ties: the lower class number), at most
    ``size`` in all: one class's row and column of a large matrix, readable."""
    if not 0 <= cls < result.num_classes:
        raise ValueError(f"class {cls} out of range 0..{result.num_classes - 1}")
    both = np.asarray(result.counts[cls], np.int64) + np.asarray(result.counts[:, cls], np.int64)
    both[cls] = 0
    order = np.lexsort((np.arange(result.num_classes), -both))
    return [int(cls)] + [int(j) for j in order if both[j] > 0][:max(size - 1, 0)]


def rate_interval(count: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of the rate ``count / total`` (95% for ``z`` 1.96): how far
    the true rate may lie from the one measured on so few images. ``(0, 1)`` for no images."""
    if total <= 0:
        return 0.0, 1.0
    p = count / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * np.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return max(0.0, float(centre - half)), min(1.0, float(centre + half))


@dataclass(frozen=True)
class Example:
    """One image of a confusion cell: its row ``index`` in the arrays given, ``id``, true and
    predicted class indices, ``confidence`` (probability of the predicted class) and ``top``:
    the best ``(class index, probability)`` pairs, most probable first."""

    index: int
    id: str
    true: int
    pred: int
    confidence: float
    top: list[tuple[int, float]]


def cell_examples(
    labels: np.ndarray,
    logits: np.ndarray,
    true_class: int,
    pred_class: int,
    ids: Sequence[str] | None = None,
    top_k: int = 5,
    limit: int | None = None,
) -> list[Example]:
    """Images of class ``true_class`` predicted as ``pred_class`` (a diagonal cell gives the
    correct ones), most confident first (ties: lower index first).

    ``labels``: ``(N,)`` int; ``logits``: ``(N, K)`` float; ``ids``: one name per image
    (default: the index as text); ``limit``: keep only the first ``limit`` examples.
    """
    logits = np.asarray(logits)
    labels = _check_labels(labels, logits.shape[1])
    rows = np.flatnonzero((labels == true_class) & (logits.argmax(1) == pred_class))
    if len(rows) == 0:
        return []
    probs = softmax(logits[rows])
    conf = probs[:, pred_class]
    order = np.lexsort((rows, -conf))[:limit]
    k = min(top_k, logits.shape[1])
    out = []
    for j in order:
        top = np.argsort(-probs[j], kind="stable")[:k]
        i = int(rows[j])
        out.append(Example(
            index=i, id=str(ids[i]) if ids is not None else str(i), true=int(true_class),
            pred=int(pred_class), confidence=float(conf[j]),
            top=[(int(c), float(probs[j, c])) for c in top],
        ))
    return out

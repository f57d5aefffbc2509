"""Temperature scaling (Guo et al., 2017): one number ``T`` that divides every logit, fitted on
held-out images by the negative log-likelihood of their labels, so that the probabilities say
how often the model is right. A model trained with label smoothing (``cifar10_cnn``: 0.2) is
underconfident, ``T`` below 1 sharpens it; an overconfident one gets ``T`` above 1. The order of
the classes, hence every prediction and the accuracy, is unchanged."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _nll(logits: np.ndarray, labels: np.ndarray, t: float) -> float:
    z = logits / t
    z = z - z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))
    return float((log_norm - z[np.arange(len(labels)), labels]).mean())


@dataclass(frozen=True)
class Temperature:
    """``value`` (divides the logits), the mean negative log-likelihood before and after on the
    ``n`` images it was fitted on."""

    value: float
    nll_before: float
    nll_after: float
    n: int

    def probs(self, logits: np.ndarray) -> np.ndarray:
        """Softmax of ``logits / value``, ``(N, K) float64``."""
        z = np.asarray(logits, np.float64) / self.value
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)


def fit_temperature(logits: np.ndarray, labels: np.ndarray, lo: float = 0.05, hi: float = 20.0) -> Temperature:
    """The ``T`` in ``[lo, hi]`` that minimises the mean negative log-likelihood of ``labels``
    under ``softmax(logits / T)`` (golden-section search on ``log T``; the NLL is convex in
    ``1 / T``). Images labelled -1 are left out."""
    logits = np.asarray(logits, np.float64)
    labels = np.asarray(labels, np.int64)
    keep = labels >= 0
    logits, labels = logits[keep], labels[keep]
    if logits.ndim != 2 or len(labels) < 2:
        raise ValueError(f"need (N, K) logits of at least 2 labelled images, got {logits.shape}")
    a, b = np.log(lo), np.log(hi)
    g = (np.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = _nll(logits, labels, np.exp(c)), _nll(logits, labels, np.exp(d))
    for _ in range(80):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = _nll(logits, labels, np.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = _nll(logits, labels, np.exp(d))
    t = float(np.exp((a + b) / 2))
    return Temperature(t, _nll(logits, labels, 1.0), _nll(logits, labels, t), int(len(labels)))

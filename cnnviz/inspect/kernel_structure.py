"""How structured a layer's kernels are: one number per kernel, 0 for white noise.

A learned edge detector, a Gabor or a smooth colour blob puts most of its energy into a few
spatial frequencies; a kernel that is still its random initialisation spreads it evenly. The
measure is the share of a kernel's energy (``|FFT|²`` summed over its input channels) in its
``k`` strongest frequencies, with ``k = max(2, ceil(kh * kw / 10))``, rescaled against white
Gaussian noise of the same shape:

    score = clip((share - noise_share) / (1 - noise_share), 0, 1)

where ``noise_share`` is the median share of 4,096 seeded noise kernels. Noise scores 0 (half
of noise kernels exactly, the rest just above it), a kernel with all its energy in ``k``
frequencies scores 1. ``structured`` counts kernels above the 99th percentile of noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = ["KernelStructure", "kernel_structure", "top_frequency_share"]

NOISE_SAMPLES = 4096


@dataclass(frozen=True)
class KernelStructure:
    """``scores``: ``(C_out,) float32`` in ``[0, 1]``; ``noise_share``: the median top-``k``
    share of white noise; ``noise_p99``: the score below which 99% of noise kernels fall;
    ``structured``: how many kernels score above it; ``k``: frequencies counted."""

    scores: np.ndarray
    noise_share: float
    noise_p99: float
    structured: int
    k: int

    @property
    def mean(self) -> float:
        return float(self.scores.mean()) if len(self.scores) else 0.0

    @property
    def structured_fraction(self) -> float:
        return self.structured / len(self.scores) if len(self.scores) else 0.0


def _top_k(kh: int, kw: int) -> int:
    return max(2, math.ceil(kh * kw / 10))


def top_frequency_share(weights: np.ndarray, k: int | None = None) -> np.ndarray:
    """``(N, C, kh, kw)`` kernels -> ``(N,) float64``: the share of each kernel's spectral energy
    in its ``k`` strongest 2-D frequencies (1.0 for an all-zero kernel)."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 4:
        raise ValueError(f"expected kernels of shape (N, C, kh, kw), got {w.shape}")
    k = _top_k(w.shape[2], w.shape[3]) if k is None else k
    power = (np.abs(np.fft.fft2(w)) ** 2).sum(axis=1).reshape(len(w), -1)
    total = power.sum(axis=1)
    top = -np.sort(-power, axis=1)[:, :k].sum(axis=1)
    return np.where(total > 0, top / np.where(total > 0, total, 1), 1.0)


def kernel_structure(weights: np.ndarray, seed: int = 0) -> KernelStructure:
    """Structure scores of ``(N, C, kh, kw)`` kernels against seeded white noise of that shape
    (see the module docstring)."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 4:
        raise ValueError(f"expected kernels of shape (N, C, kh, kw), got {w.shape}")
    _, c, kh, kw = w.shape
    k = _top_k(kh, kw)
    base, p99 = _noise_baseline(c, kh, kw, seed)
    scores = _rescale(top_frequency_share(w, k), base).astype(np.float32)
    return KernelStructure(scores, base, p99, int((scores > p99).sum()), k)


def _rescale(share: np.ndarray, base: float) -> np.ndarray:
    return np.clip((share - base) / (1 - base), 0, 1) if base < 1 else np.zeros_like(share)


@lru_cache(maxsize=32)
def _noise_baseline(c: int, kh: int, kw: int, seed: int) -> tuple[float, float]:
    """``(median top-k share, 99th-percentile score)`` of seeded white noise of one kernel
    shape: a pure function of its arguments, computed once per shape (it draws 4,096 kernels)."""
    noise = np.random.default_rng(seed).standard_normal((NOISE_SAMPLES, c, kh, kw))
    shares = top_frequency_share(noise, _top_k(kh, kw))
    base = float(np.median(shares))
    return base, float(np.quantile(_rescale(shares, base), 0.99))

"""How orientation-selective a layer's kernels are: one number per kernel, 0 for white noise.

An edge or a grating detector changes along one direction only: its intensity gradients all
point the same way (or the opposite way). A colour blob, a centre-surround spot or a random
kernel has gradients in every direction. The measure is the coherence of the kernel's gradient
structure tensor, summed over its input channels:

    index = |sum g(p)^2| / sum |g(p)|^2        with g = d/dx + i d/dy, over the kernel's pixels

(squaring the complex gradient doubles its angle, so a gradient and its opposite count as one
orientation). 1 when every gradient lies on one line (a straight edge, a grating of any phase),
0 when they are spread evenly (an isotropic blob). Gradients are taken inside the kernel only
(2x2 differences), so the kernel's border adds nothing. White noise of the kernel's shape
scores above 0 by chance, more so for small kernels, so the index is rescaled against seeded
noise as :mod:`~cnnviz.inspect.kernel_structure` does:

    selectivity = clip((index - noise_index) / (1 - noise_index), 0, 1)

with ``noise_index`` the median index of 4,096 noise kernels. A kernel is **oriented** when its
selectivity reaches :data:`ORIENTED` (0.5) and exceeds the 99th percentile of noise.

``angle`` is the orientation of the kernel's edge or stripes as seen on screen, in degrees
counter-clockwise from horizontal in ``[0, 180)`` (a vertical edge: 90); ``wavelength`` is the
period, in pixels, of the strongest spatial frequency of the kernel with its mean removed
(zero-padded to four times its size, so periods between the DFT's own are found).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np

from .kernel_structure import NOISE_SAMPLES, _rescale

__all__ = ["MIN_SIDE", "ORIENTED", "KernelOrientation", "kernel_orientation", "measurable", "most_oriented",
           "orientation_index"]

#: The smallest kernel side measured: a 2x2 kernel has one gradient, always "oriented".
MIN_SIDE = 3

#: The selectivity from which a kernel counts as oriented: half way from noise to one orientation.
ORIENTED = 0.5


@dataclass(frozen=True)
class KernelOrientation:
    """``selectivity``: ``(C_out,) float32`` in ``[0, 1]``; ``angle``: ``(C_out,) float32``
    degrees in ``[0, 180)``; ``wavelength``: ``(C_out,) float32`` pixels; ``noise_index``: the
    median raw index of white noise of this shape; ``noise_p99``: the selectivity below which
    99% of noise kernels fall; ``oriented``: ``(C_out,) bool``."""

    selectivity: np.ndarray
    angle: np.ndarray
    wavelength: np.ndarray
    noise_index: float
    noise_p99: float
    oriented: np.ndarray

    @property
    def count(self) -> int:
        """How many kernels are oriented."""
        return int(self.oriented.sum())

    @property
    def fraction(self) -> float:
        """The share of kernels that are oriented (0 for an empty layer)."""
        return self.count / len(self.oriented) if len(self.oriented) else 0.0

    @property
    def threshold(self) -> float:
        """The selectivity a kernel must exceed to count as oriented."""
        return max(ORIENTED, self.noise_p99)

    def orientations(self, bins: int = 4) -> int:
        """How many of ``bins`` equal orientation ranges (centred on 0, 45, 90, 135 degrees for
        4) hold at least one oriented kernel."""
        width = 180 / bins
        which = np.floor(((self.angle[self.oriented] + width / 2) % 180) / width).astype(int)
        return len(set(which.tolist()))


def measurable(shape: tuple[int, ...]) -> bool:
    """True when kernels of ``shape`` ``(N, C, kh, kw)`` are large enough to have an orientation."""
    return len(shape) == 4 and shape[2] >= MIN_SIDE and shape[3] >= MIN_SIDE


def _gradients(w: np.ndarray) -> np.ndarray:
    """``(N, C, kh-1, kw-1) complex``: ``d/dx + i d/dy`` of each kernel on the grid between its
    pixels (2x2 differences), ``y`` up on screen (image rows grow downwards)."""
    dx = (w[..., 1:, 1:] - w[..., 1:, :-1] + w[..., :-1, 1:] - w[..., :-1, :-1]) / 2
    dy = (w[..., :-1, 1:] - w[..., 1:, 1:] + w[..., :-1, :-1] - w[..., 1:, :-1]) / 2
    return dx + 1j * dy


def _peak_wavelength(w: np.ndarray) -> np.ndarray:
    """``(N,)`` the period in pixels of each kernel's strongest non-zero frequency (inf when the
    kernel is constant)."""
    n, _, kh, kw = w.shape
    size = (4 * kh, 4 * kw)
    centred = w - w.mean(axis=(2, 3), keepdims=True)
    power = (np.abs(np.fft.fft2(centred, s=size)) ** 2).sum(axis=1).reshape(n, -1)
    fy, fx = np.meshgrid(np.fft.fftfreq(size[0]), np.fft.fftfreq(size[1]), indexing="ij")
    radius = np.hypot(fx, fy).ravel()
    power[:, radius == 0] = 0
    peak = radius[power.argmax(axis=1)]
    return np.where((power.max(axis=1) > 0) & (peak > 0), 1 / np.where(peak > 0, peak, 1), np.inf)


def orientation_index(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(N, C, kh, kw)`` kernels -> ``(index, angle, wavelength)``, each ``(N,) float64``: the
    raw orientation index in ``[0, 1]`` (0 for a constant kernel), the edge's orientation in
    degrees and the period of its strongest frequency in pixels (see the module docstring)."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 4:
        raise ValueError(f"expected kernels of shape (N, C, kh, kw), got {w.shape}")
    if not measurable(w.shape):
        raise ValueError(f"orientation needs kernels of at least {MIN_SIDE}x{MIN_SIDE} pixels, "
                         f"got {w.shape[2]}x{w.shape[3]}")
    g = _gradients(w).reshape(len(w), -1)
    total = (np.abs(g) ** 2).sum(axis=1)
    vector = (g**2).sum(axis=1)
    index = np.where(total > 0, np.abs(vector) / np.where(total > 0, total, 1), 0.0)
    # the gradient points across the edge; the edge runs at right angles to it
    angle = (np.degrees(np.angle(vector)) / 2 + 90) % 180
    return np.clip(index, 0, 1), angle, _peak_wavelength(w)


def kernel_orientation(weights: np.ndarray, seed: int = 0) -> KernelOrientation:
    """Orientation selectivity of ``(N, C, kh, kw)`` kernels against seeded white noise of that
    shape (see the module docstring)."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 4:
        raise ValueError(f"expected kernels of shape (N, C, kh, kw), got {w.shape}")
    _, c, kh, kw = w.shape
    index, angle, wavelength = orientation_index(w)
    base, p99 = _noise_baseline(c, kh, kw, seed)
    sel = _rescale(index, base).astype(np.float32)
    oriented = (sel >= ORIENTED) & (sel > p99)
    return KernelOrientation(sel, angle.astype(np.float32), wavelength.astype(np.float32), base, p99, oriented)


def most_oriented(first_layers: Sequence[np.ndarray | None]) -> int | None:
    """Index of the first-layer weights ``(N, C, kh, kw)`` with the largest fraction of
    oriented kernels (the first on a tie; None entries and kernels under 3x3 never win): the
    model a lecture on AlexNet's figure 3 should open on. None when none can be measured."""
    best, best_frac = None, -1.0
    for i, w in enumerate(first_layers):
        if w is None or np.ndim(w) != 4 or not measurable(np.shape(w)):
            continue
        frac = kernel_orientation(w).fraction
        if frac > best_frac:
            best, best_frac = i, frac
    return best


@lru_cache(maxsize=32)
def _noise_baseline(c: int, kh: int, kw: int, seed: int) -> tuple[float, float]:
    """``(median index, 99th-percentile selectivity)`` of seeded white noise of one kernel shape,
    computed once per shape."""
    noise = np.random.default_rng(seed).standard_normal((NOISE_SAMPLES, c, kh, kw))
    index = orientation_index(noise)[0]
    base = float(np.median(index))
    return base, float(np.quantile(_rescale(index, base), 0.99))

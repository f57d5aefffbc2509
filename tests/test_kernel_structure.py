"""Kernel structure: known answers on hand-made kernels, white noise at the floor, and the
lecture-size kernel grid."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from cnnviz.figures.filters import lecture_grid, png_bytes
from cnnviz.inspect.filters import first_layer_filters
from cnnviz.inspect.kernel_structure import kernel_structure, top_frequency_share


def gabor(size: int, theta: float = 0.6, wavelength: float = 4.0, color=(1.0, 1.0, 1.0)) -> np.ndarray:
    """``(3, size, size)``: a cosine grating under a Gaussian envelope (sigma = size / 4)."""
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    along = x * np.cos(theta) + y * np.sin(theta)
    g = np.exp(-(x**2 + y**2) / (2 * (size / 4) ** 2)) * np.cos(2 * np.pi * along / wavelength)
    return np.stack([g * c for c in color])


def blob(size: int, color=(1.0, -0.5, -0.5)) -> np.ndarray:
    """``(3, size, size)``: a smooth red-vs-cyan Gaussian blob."""
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    g = np.exp(-(x**2 + y**2) / (2 * (size / 3) ** 2))
    return np.stack([g * c for c in color])


def test_one_frequency_holds_all_the_energy():
    y, x = np.mgrid[:8, :8]
    grating = np.cos(2 * np.pi * x / 4)[None, None].repeat(3, 1)  # exactly on the DFT grid: 2 bins
    np.testing.assert_allclose(top_frequency_share(grating, k=2), [1.0])
    flat = np.ones((1, 3, 5, 5))  # all energy at DC
    np.testing.assert_allclose(top_frequency_share(flat, k=1), [1.0])
    impulse = np.zeros((1, 1, 4, 4))
    impulse[0, 0, 0, 0] = 1  # flat spectrum: k of 16 bins hold k/16
    np.testing.assert_allclose(top_frequency_share(impulse, k=4), [0.25])


@pytest.mark.parametrize("size, gabor_floor", [(5, 0.4), (7, 0.6), (11, 0.95)])
def test_gabor_and_blob_score_near_the_top_noise_at_the_floor(size, gabor_floor):
    # a 5x5 kernel has 25 frequencies: an oblique grating leaks over several, so it scores lower
    # there than at 7x7 or 11x11, but still far above the 99th percentile of noise
    kernels = np.stack([gabor(size), blob(size), gabor(size, 1.2, 4.0, color=(1, -1, 0))])
    ks = kernel_structure(kernels)
    noise = kernel_structure(np.random.default_rng(1).standard_normal((256, 3, size, size)))
    assert ks.scores[1] > 0.85  # the blob: nearly all energy at the lowest frequencies
    assert ks.scores[0] > gabor_floor and ks.scores[2] > gabor_floor
    assert ks.structured == 3 and min(ks.scores) > 2 * ks.noise_p99
    assert noise.mean < 0.05 and np.median(noise.scores) < 0.01
    assert noise.structured_fraction <= 0.03
    assert 0 < ks.noise_share < 0.5


def test_scores_ignore_the_kernels_scale_and_sign():
    kernels = np.stack([gabor(7), blob(7)])
    a, b = kernel_structure(kernels), kernel_structure(-30 * kernels)
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-6)


def test_filter_set_carries_the_structure_and_orders_by_it():
    rng = np.random.default_rng(0)
    w = np.stack([rng.standard_normal((3, 7, 7)), blob(7), gabor(7)]).astype(np.float32)
    fs = first_layer_filters(w)
    assert list(fs.order_by("structure")) == [1, 2, 0]
    assert fs.structure.scores.shape == (3,)


def test_kernel_structure_refuses_other_shapes():
    with pytest.raises(ValueError, match=r"^expected kernels of shape \(N, C, kh, kw\), got \(3, 5, 5\)$"):
        kernel_structure(np.zeros((3, 5, 5)))


def test_lecture_grid_is_slide_wide_with_sharp_pixels_and_thin_separators():
    w = np.zeros((48, 3, 5, 5), np.float32)
    w[:, 0, 0, 0] = 1.0  # per-filter min-max: the top-left pixel is red-ish, the rest black
    fs = first_layer_filters(w)
    img = lecture_grid(fs)  # 48 kernels: 7 columns x 7 rows
    assert img.dtype == np.uint8 and img.shape[1] >= 1200
    cols, gap = 7, 2
    scale = -(-(1200 - (cols - 1) * gap) // (cols * 5))
    assert img.shape[1] == cols * 5 * scale + (cols - 1) * gap
    block = img[:scale, :scale]  # kernel 0's top-left pixel, upscaled without blur
    assert (block == block[0, 0]).all() and tuple(block[0, 0]) == (255, 0, 0)
    assert (img[:, 5 * scale:5 * scale + gap] == 255).all()  # a 2-px white separator
    png = Image.open(io.BytesIO(png_bytes(img)))
    assert png.size == (img.shape[1], img.shape[0]) and png.format == "PNG"

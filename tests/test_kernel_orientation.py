"""Orientation selectivity: known answers on hand-made kernels (edges and Gabors near 1, blobs,
centre-surround spots and noise at the floor), the edge's angle as seen on screen, the
period of a grating, and what the Filters page is given."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cnnviz.inspect.filters import first_layer_filters
from cnnviz.inspect.kernel_orientation import ORIENTED, kernel_orientation, most_oriented, orientation_index


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)``: pixel offsets from the centre, ``x`` to the right, ``y`` up on screen."""
    rows, cols = np.mgrid[:size, :size] - (size - 1) / 2
    return cols, -rows


def edge(size: int, degrees: float) -> np.ndarray:
    """``(3, size, size)``: a grey step edge running at ``degrees`` counter-clockwise from horizontal."""
    x, y = _grid(size)
    t = np.radians(degrees)
    across = -x * np.sin(t) + y * np.cos(t)  # signed distance from a line at angle t
    return np.stack([np.tanh(2 * across)] * 3)


def gabor(size: int, degrees: float, wavelength: float, color=(1.0, 1.0, 1.0)) -> np.ndarray:
    """``(3, size, size)``: stripes running at ``degrees``, ``wavelength`` px apart, under a
    Gaussian envelope (sigma = size / 4)."""
    x, y = _grid(size)
    t = np.radians(degrees)
    across = -x * np.sin(t) + y * np.cos(t)
    g = np.exp(-(x**2 + y**2) / (2 * (size / 4) ** 2)) * np.cos(2 * np.pi * across / wavelength)
    return np.stack([g * c for c in color])


def blob(size: int, sigma: float, color=(1.0, -0.5, -0.5)) -> np.ndarray:
    x, y = _grid(size)
    g = np.exp(-(x**2 + y**2) / (2 * sigma**2))
    return np.stack([g * c for c in color])


@pytest.mark.parametrize("size", [5, 7, 11])
def test_edges_at_every_angle_score_near_one_with_their_angle(size):
    angles = np.arange(0, 180, 22.5)
    ko = kernel_orientation(np.stack([edge(size, a) for a in angles]))
    assert ko.selectivity.min() > 0.95
    assert ko.oriented.all() and ko.count == 8 and ko.fraction == 1.0
    # axis-aligned and diagonal edges exactly; the others within the 2x2 differences' bias
    for a, got in zip(angles, ko.angle):
        err = min(abs(got - a), 180 - abs(got - a))
        assert err < (0.5 if a % 45 == 0 else 5), (a, got)
    assert ko.orientations(4) == 4


@pytest.mark.parametrize("size, floor", [(7, 0.6), (11, 0.85)])
def test_gabors_of_several_angles_and_periods_are_oriented(size, floor):
    kernels = [gabor(size, a, wl) for a in range(0, 180, 30) for wl in (3.0, 4.0, 6.0)]
    ko = kernel_orientation(np.stack(kernels))
    assert ko.selectivity.min() > floor and ko.oriented.all()


def test_a_grating_on_the_pixel_grid_has_its_period():
    x, _ = _grid(12)
    vertical_stripes = np.cos(2 * np.pi * x / 4)[None, None].repeat(3, 1)
    index, angle, wavelength = orientation_index(vertical_stripes)
    np.testing.assert_allclose(index, [1.0])
    np.testing.assert_allclose(angle, [90.0])
    np.testing.assert_allclose(wavelength, [4.0])


@pytest.mark.parametrize("size", [5, 7, 11])
def test_blobs_centre_surround_and_noise_are_not_oriented(size):
    spots = np.stack([
        blob(size, size / 3), blob(size, size / 5, (1.0, 1.0, 1.0)),
        blob(size, size / 4, (1, 1, 1)) - 2 * blob(size, size / 8, (1, 1, 1)),  # centre-surround
    ])
    ko = kernel_orientation(spots)
    assert ko.selectivity.max() < 0.05 and ko.count == 0
    noise = kernel_orientation(np.random.default_rng(1).standard_normal((512, 3, size, size)))
    assert noise.selectivity.mean() < 0.08 and noise.fraction < 0.01
    assert noise.noise_p99 < ORIENTED and 0 < noise.noise_index < 0.25


def test_selectivity_ignores_scale_sign_and_colour():
    kernels = np.stack([gabor(7, 30, 4.0), edge(7, 120)])
    a = kernel_orientation(kernels)
    b = kernel_orientation(-25 * kernels)
    c = kernel_orientation(np.stack([gabor(7, 30, 4.0, (1, -1, 0)), edge(7, 120) * [[[1]], [[0]], [[0]]]]))
    np.testing.assert_allclose(a.selectivity, b.selectivity, rtol=1e-6)
    np.testing.assert_allclose(a.selectivity, c.selectivity, rtol=1e-6)
    np.testing.assert_allclose(a.angle, b.angle, atol=1e-4)


def test_a_constant_kernel_has_no_orientation():
    ko = kernel_orientation(np.ones((1, 3, 5, 5)))
    assert ko.selectivity[0] == 0 and not ko.oriented[0] and np.isinf(ko.wavelength[0])


def test_too_small_or_misshapen_kernels_are_refused():
    with pytest.raises(ValueError, match=r"^orientation needs kernels of at least 3x3 pixels, got 2x2$"):
        kernel_orientation(np.zeros((4, 3, 2, 2)))
    with pytest.raises(ValueError, match=r"^expected kernels of shape \(N, C, kh, kw\), got \(3, 5, 5\)$"):
        kernel_orientation(np.zeros((3, 5, 5)))


def test_filter_set_carries_the_orientation_and_greyscale_count():
    w = np.stack([edge(7, 0), edge(7, 90) * [[[1]], [[-1]], [[0]]], blob(7, 2.0)]).astype(np.float32)
    fs = first_layer_filters(w)
    assert fs.orientation is not None and list(fs.orientation.oriented) == [True, True, False]
    assert fs.grey_oriented == 1  # the red-green edge is oriented but colour-opponent
    assert list(fs.order_by("orientation")[:2]) in ([0, 1], [1, 0])
    assert first_layer_filters(np.zeros((4, 3, 2, 2), np.float32)).orientation is None


def test_the_filters_pages_sentence_counts_what_was_measured():
    from cnnviz.figures.filters import kernel_measures_text, kernel_orientation_text

    w = np.stack([edge(7, 0), edge(7, 45), edge(7, 90) * [[[1]], [[-1]], [[0]]], blob(7, 2.0)]).astype(np.float32)
    fs = first_layer_filters(w)
    text = kernel_measures_text(fs)
    assert text.endswith(" Oriented (edge or stripe detectors): 3 of 4 (75%), 2 of them grey, at 3 of 4 orientations.")
    assert kernel_orientation_text(fs, 1).startswith(", orientation 1.00 (edge at 45°, period ")
    assert kernel_orientation_text(fs, 3) == ", orientation 0.00 (not oriented)"
    none = first_layer_filters(np.stack([blob(7, 2.0)] * 2).astype(np.float32))
    assert kernel_measures_text(none).endswith(" None of the 2 is oriented (an edge or stripe detector).")
    small = first_layer_filters(np.zeros((4, 3, 2, 2), np.float32))
    assert kernel_measures_text(small).endswith(" Kernels of 2x2 are too small to have an orientation.")
    assert kernel_orientation_text(small, 0) == ""


def test_the_lecture_opens_on_the_layer_with_most_oriented_kernels():
    blobs = np.stack([blob(7, 2.0)] * 4)
    half = np.stack([edge(7, 0), gabor(7, 45, 3), blob(7, 2.0), blob(7, 1.5)])  # 2 of 4 oriented
    three = np.stack([edge(7, 0), gabor(7, 45, 3), edge(7, 90), blob(7, 1.5)])  # 3 of 4
    tiny = np.stack([np.ones((3, 2, 2))] * 4)  # 2x2: not measurable, never picked
    assert most_oriented([blobs, half, three, tiny]) == 2
    assert most_oriented([None, half, three[[0, 1, 3, 3]]]) == 1  # a tie: the first
    assert most_oriented([tiny, None]) is None and most_oriented([]) is None


# Measured on the shipped simpsons_lecture (docs/lecture_model.md): 8 of 48 oriented, 6 of them grey.
LECTURE_ORIENTED, LECTURE_GREY_ORIENTED = 8, 6


def _shipped_first_layer(name: str) -> np.ndarray:
    from cnnviz.checkpoints import load_checkpoint
    root = Path(__file__).resolve().parent.parent / "checkpoints"
    return first_layer_filters(load_checkpoint(root / f"{name}.json").model).weights


def test_the_shipped_lecture_model_has_the_most_oriented_first_layer():
    """What the README and the dashboard's default rest on, measured on the shipped weights."""
    names = ["cifar10_cnn", "simpsons_cnn", "simpsons_lecture"]
    layers = [_shipped_first_layer(n) for n in names]
    counts = [kernel_orientation(w).count for w in layers]
    assert counts[2] >= LECTURE_ORIENTED and counts[2] > max(counts[:2]), dict(zip(names, counts))
    assert most_oriented(layers) == 2
    lecture = first_layer_filters(layers[2])
    assert int(lecture.grey_oriented) >= LECTURE_GREY_ORIENTED
    assert lecture.orientation.orientations(4) >= 3  # edges at several angles, not one

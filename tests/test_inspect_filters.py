"""First-layer filters on hand-set weights: images, norms, colourfulness, orderings, figures."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from torch import nn

from cnnviz.figures.filters import filter_channels_figure, filter_grid_figure, grid_image
from cnnviz.inspect.filters import (
    channel_images, first_conv_name, first_layer_filters, first_layer_filters_from_state,
)
from cnnviz.models import CNN


def hand_weights() -> torch.Tensor:
    """Three 3x3 RGB filters with known answers.

    0: +2 on red only          norm 6,       colourfulness 2/3
    1: +1 at the centre pixel on all three channels (brightness)  norm sqrt(3), colourfulness 0
    2: +1 red, -1 green everywhere (opponent)  norm sqrt(18), colourfulness 1
    """
    w = torch.zeros(3, 3, 3, 3)
    w[0, 0] = 2.0
    w[1, :, 1, 1] = 1.0
    w[2, 0], w[2, 1] = 1.0, -1.0
    return w


class Tiny(CNN):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1, bias=False), nn.ReLU())
        self.fc = nn.Linear(3, 2)
        self.num_classes, self.embed_dim = 2, 3
        with torch.no_grad():
            self.stem[0].weight.copy_(hand_weights())

    def embed(self, x):
        return self.stem(x).mean((2, 3))

    def head(self, z):
        return self.fc(z)


def test_per_filter_images_norms_and_colourfulness():
    fs = first_layer_filters(hand_weights())
    assert fs.images.shape == (3, 3, 3, 3) and fs.images.dtype == np.float32
    assert fs.images.min() >= 0 and fs.images.max() <= 1
    # red-only filter is pure red
    np.testing.assert_allclose(fs.images[0][..., 0], 1.0)
    np.testing.assert_allclose(fs.images[0][..., 1:], 0.0)
    # brightness filter: white centre on black
    np.testing.assert_allclose(fs.images[1][1, 1], [1, 1, 1])
    assert fs.images[1].sum() == pytest.approx(3.0)
    # opponent filter: red channel high, green low, blue (zero weight) half-way
    np.testing.assert_allclose(fs.images[2][..., 0], 1.0)
    np.testing.assert_allclose(fs.images[2][..., 1], 0.0)
    np.testing.assert_allclose(fs.images[2][..., 2], 0.5)
    np.testing.assert_allclose(fs.norms, [6.0, np.sqrt(3), np.sqrt(18)], rtol=1e-6)
    np.testing.assert_allclose(fs.colorfulness, [2 / 3, 0.0, 1.0], atol=1e-6)
    assert fs.order_by("color").tolist() == [2, 0, 1]
    assert fs.order_by("norm").tolist() == [0, 2, 1]
    assert fs.normalize == "per_filter" and "each filter" in fs.normalization
    with pytest.raises(ValueError, match="order key"):
        fs.order_by("size")


def test_global_normalisation_shares_one_scale():
    fs = first_layer_filters(hand_weights(), normalize="global")  # min -1, max 2
    np.testing.assert_allclose(fs.images[0][..., 0], 1.0)
    np.testing.assert_allclose(fs.images[0][..., 1:], 1 / 3, rtol=1e-6)  # zero weight -> 1/3
    np.testing.assert_allclose(fs.images[2][..., 1], 0.0)
    assert fs.normalize == "global" and "shared" in fs.normalization
    with pytest.raises(ValueError, match="per_filter"):
        first_layer_filters(hand_weights(), normalize="pretty")


def test_channel_images_are_signed_and_symmetric():
    fs = first_layer_filters(hand_weights())
    ch = channel_images(fs, 2)
    assert ch.shape == (3, 3, 3) and ch.dtype == np.float32
    np.testing.assert_allclose(ch[0], 1.0)
    np.testing.assert_allclose(ch[1], -1.0)
    np.testing.assert_allclose(ch[2], 0.0)
    np.testing.assert_allclose(channel_images(fs, 0)[0], 1.0)  # 2 / max|w|
    with pytest.raises(ValueError, match="out of range"):
        channel_images(fs, 3)


def test_zero_filter_is_grey_and_colourless():
    fs = first_layer_filters(torch.zeros(1, 3, 2, 2))
    np.testing.assert_allclose(fs.images, 0.5)
    assert fs.colorfulness[0] == 0 and fs.norms[0] == 0
    np.testing.assert_allclose(channel_images(fs, 0), 0.0)


def test_from_model_conv_and_state_dict():
    model = Tiny()
    assert first_conv_name(model) == "stem.0"
    a = first_layer_filters(model)
    b = first_layer_filters(model.stem[0])
    np.testing.assert_array_equal(a.weights, hand_weights().numpy())
    np.testing.assert_array_equal(a.images, b.images)
    a.weights[:] = 0  # a copy, not a view of the parameter
    np.testing.assert_array_equal(model.stem[0].weight.detach().numpy(), hand_weights().numpy())
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["stem.0.weight"] = -state["stem.0.weight"]
    snap = first_layer_filters_from_state(model, state)
    np.testing.assert_array_equal(snap.weights, -hand_weights().numpy())
    np.testing.assert_array_equal(model.stem[0].weight.detach().numpy(), hand_weights().numpy())
    with pytest.raises(ValueError, match="stem.0.weight"):
        first_layer_filters_from_state(model, {"fc.weight": torch.zeros(2, 3)})


def test_grid_image_upscales_by_nearest_neighbour_with_gaps():
    imgs = np.zeros((5, 2, 3, 3), dtype=np.float32)
    imgs[1, 0, 0] = [1, 0, 0]
    out = grid_image(imgs, cols=3, scale=4, gap=2)
    assert out.dtype == np.uint8
    assert out.shape == (2 * 8 + 2, 3 * 12 + 2 * 2, 3)
    # tile 1 starts after 12 px + 2 px gap; its top-left pixel became a 4x4 red block
    np.testing.assert_array_equal(out[0:4, 14:18], np.broadcast_to([255, 0, 0], (4, 4, 3)))
    assert (out[4:8, 14:18] == 0).all()
    assert (out[:, 12:14] == 255).all()  # the gap
    assert (out[10:, 28:] == 255).all()  # the empty sixth cell


def test_filter_figures_build():
    fs = first_layer_filters(hand_weights())
    fig = filter_grid_figure(fs, order=fs.order_by("color"), cols=2, scale=5, gap=1)
    assert isinstance(fig, go.Figure) and len(fig.data) == 1
    assert isinstance(fig.data[0], go.Image)
    assert np.asarray(fig.data[0].z).shape == (2 * 15 + 1, 2 * 15 + 1, 3)
    assert "normalisation" in fig.layout.title.text and "each filter" in fig.layout.title.text
    # the first tile is the most colourful filter (index 2)
    assert np.asarray(fig.data[0].customdata)[0, 0, 0] == 2
    ch = filter_channels_figure(fs, 2)
    assert isinstance(ch, go.Figure) and len(ch.data) == 1
    heat = ch.data[0]
    assert isinstance(heat, go.Heatmap) and heat.zmin == -1 and heat.zmax == 1
    z = np.asarray(heat.z, dtype=np.float64)
    kh, kw = fs.kernel_size
    assert z.shape == (kh, 3 * kw + 2)  # three channels, one gap column between each
    w = channel_images(fs, 2)
    for c in range(3):  # each channel's block is that channel's normalised weights
        np.testing.assert_allclose(z[:, c * (kw + 1): c * (kw + 1) + kw], w[c], rtol=1e-6)
    assert np.isnan(z[:, kw]).all() and np.isnan(z[:, 2 * kw + 1]).all()
    assert [a.text for a in ch.layout.annotations] == ["red", "green", "blue"]
    assert np.asarray(heat.customdata)[0, 0, 0] == "red" and np.asarray(heat.customdata)[0, -1, 0] == "blue"

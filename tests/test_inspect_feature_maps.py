"""feature_maps: right values and order, the model left exactly as found, grid and figures."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from torch import nn

from cnnviz.figures.feature_maps import feature_channel_figure, feature_grid_figure
from cnnviz.inputs import Normalization, to_input
from cnnviz.inspect.feature_maps import channel_grid, feature_maps, tile
from cnnviz.models import CNN

from test_hooks import hooks_left

NORM = Normalization((0.5, 0.4, 0.3), (0.25, 0.2, 0.3))


class Tiny(CNN):
    """conv -> BN -> ReLU(inplace) -> pool -> conv -> flatten -> fc7 -> fc8, for 8x8 inputs
    only: the flatten makes any other size fail inside the forward pass."""

    def __init__(self, size: int = 8):
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(3, 5, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(5)
        self.relu1 = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(5, 4, 3, padding=1)
        self.fc7 = nn.Linear(4 * (size // 2) ** 2, 6)
        self.fc8 = nn.Linear(6, 2)
        self.num_classes, self.embed_dim = 2, 6

    def embed(self, x):
        x = self.conv2(self.pool(self.relu1(self.bn1(self.conv1(x)))))
        return self.fc7(x.flatten(1))

    def head(self, z):
        return self.fc8(z)


def images(n: int, size: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def snapshot(model: nn.Module) -> tuple:
    return ({n: m.training for n, m in model.named_modules()},
            {n: p.requires_grad for n, p in model.named_parameters()},
            {n: b.clone() for n, b in model.named_buffers()})


def assert_as_found(model: nn.Module, before: tuple) -> None:
    modes, grads, bufs = snapshot(model)
    assert modes == before[0] and grads == before[1]
    for n, b in bufs.items():  # BatchNorm statistics untouched: it ran in eval mode
        torch.testing.assert_close(b, before[2][n], rtol=0, atol=0)
    assert hooks_left(model) == []


@pytest.fixture
def model():
    m = Tiny().train()  # train mode on purpose: feature_maps must not update BN statistics
    m.conv2.weight.requires_grad_(False)
    return m


def test_values_shape_and_order(model):
    before = snapshot(model)
    imgs = images(3)
    fm = feature_maps(model, imgs, "relu1", NORM)
    assert_as_found(model, before)
    assert fm.layer == "relu1" and fm.shape == (3, 5, 8, 8)
    assert fm.maps.shape == (3, 5, 8, 8) and fm.maps.dtype == np.float32
    with torch.no_grad():
        model.eval()
        expected = torch.relu(model.bn1(model.conv1(to_input(imgs, NORM)))).numpy()
    np.testing.assert_allclose(fm.maps, expected, rtol=1e-5, atol=1e-6)
    # the order is by mean activation over positions, descending
    np.testing.assert_allclose(fm.score, expected.mean((2, 3)), rtol=1e-5, atol=1e-6)
    assert fm.order.shape == (3, 5) and fm.order.dtype == np.int64
    for i in range(3):
        s = fm.score[i, fm.order[i]]
        assert (np.diff(s) <= 0).all()
        assert sorted(fm.order[i].tolist()) == list(range(5))


def test_conv_before_inplace_relu_keeps_negative_values(model):
    fm = feature_maps(model, images(1), "bn1", NORM)
    assert (fm.maps < 0).any()


def test_single_image_and_linear_layer(model):
    before = snapshot(model)
    one = feature_maps(model, images(1)[0], "conv2", NORM)
    assert one.maps.shape == (1, 4, 4, 4)
    lin = feature_maps(model, images(2), "fc7", NORM)
    assert lin.shape == (2, 6) and lin.maps.shape == (2, 6, 1, 1)
    assert_as_found(model, before)


def test_errors_leave_the_model_as_found(model):
    before = snapshot(model)
    with pytest.raises(RuntimeError):  # conv1 runs, then the flatten -> fc7 shapes disagree
        feature_maps(model, images(1, size=12), "conv1", NORM)
    assert_as_found(model, before)
    with pytest.raises(ValueError, match="no layer 'conv9'.*conv1"):
        feature_maps(model, images(1), "conv9", NORM)
    with pytest.raises(ValueError, match="uint8"):
        feature_maps(model, images(1).astype(np.float32) / 255, "conv1", NORM)
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        feature_maps(model, np.zeros((8, 8), np.uint8), "conv1", NORM)
    assert_as_found(model, before)


def test_tile_and_channel_grid():
    a = np.arange(2 * 2 * 3, dtype=np.float32).reshape(2, 2, 3)
    t = tile(a, cols=2, gap=1)
    assert t.shape == (2, 7)
    assert np.isnan(t[:, 3]).all()
    np.testing.assert_array_equal(t[:, 4:], a[1])
    maps = np.stack([np.full((2, 2), v, np.float32) for v in (0, 3, 1)])
    maps[1, 0, 0] = 5  # channel 1: not constant, strongest
    g = channel_grid(maps, order=np.array([1, 2, 0]), max_channels=2, cols=2, normalize="none")
    assert g.shape == (2, 5)
    np.testing.assert_array_equal(g[:, :2], maps[1])
    np.testing.assert_array_equal(g[:, 3:], maps[2])
    scaled = channel_grid(maps, np.array([1, 2, 0]), cols=3)  # per-channel min-max; constants -> 0
    assert scaled.shape == (2, 8)
    np.testing.assert_array_equal(scaled[:, :2], [[1, 0], [0, 0]])
    assert np.nanmax(scaled[:, 3:]) == 0


def test_figures_build(model):
    fm = feature_maps(model, images(2), "relu1", NORM)
    fig = feature_grid_figure(fm, index=1, max_channels=4, cols=2)
    assert isinstance(fig, go.Figure) and len(fig.data) == 1
    z = np.asarray(fig.data[0].z, dtype=np.float32)
    assert z.shape == (2 * 8 + 1, 2 * 8 + 1)
    custom = np.asarray(fig.data[0].customdata)
    assert custom[0, 0] == fm.order[1, 0]  # top-left tile is the strongest channel
    assert custom[0, 9] == fm.order[1, 1] and custom[8, 0] == -1  # then the next; -1 in gaps
    assert np.isnan(z[8]).all()
    assert "relu1" in fig.layout.title.text
    one = feature_channel_figure(fm, channel=int(fm.order[0, 0]))
    assert isinstance(one, go.Figure) and len(one.data) == 1
    assert np.asarray(one.data[0].z).shape == (8, 8)
    assert "rank 1 of 5" in one.layout.title.text


def test_rank_is_the_place_by_mean_activation():
    from cnnviz.inspect.feature_maps import FeatureMaps

    maps = np.zeros((2, 3, 1, 1), np.float32)
    order = np.array([[2, 0, 1], [1, 2, 0]])
    fm = FeatureMaps(maps, np.zeros((2, 3), np.float32), order, "conv", maps.shape)
    assert [fm.rank(c) for c in range(3)] == [2, 3, 1]
    assert [fm.rank(c, index=1) for c in range(3)] == [3, 1, 2]

"""Cascading model randomisation on tiny models: real correlations, the shared model untouched."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from torch import nn

from cnnviz.figures.sanity import sanity_curve_figure, sanity_grid_figure
from cnnviz.inputs import Normalization
from cnnviz.inspect.attribution import METHODS
from cnnviz.inspect.sanity import SanityResult, cascading_randomisation, randomisation_layers, randomise_layer
from cnnviz.models import CNN

IDENTITY = Normalization((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))  # input = image / 255: black is 0
FAST = dict(ig_steps=4, internal_batch_size=8)
_HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_full_backward_hooks",
               "_backward_pre_hooks")


class ToyNet(CNN):
    """16 px -> conv, BN, ReLU, conv/2, ReLU -> (4, 8, 8) -> fc 256->16, ReLU, fc 16->3.

    The convolutions have no bias, so a black image gives zero activations (and constant maps)
    whatever the weights. "Trained" weights: fc.0 reads only the top-left quadrant of the 8x8
    grid, so the trained maps sit there; random weights spread them over the image."""

    def __init__(self):
        super().__init__()
        self.num_classes, self.embed_dim = 3, 16
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4, affine=False),
                                      nn.ReLU(), nn.Conv2d(4, 4, 3, stride=2, padding=1, bias=False), nn.ReLU())
        self.fc = nn.Sequential(nn.Linear(256, 16), nn.ReLU(), nn.Linear(16, 3))
        g = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
            mask = torch.zeros(4, 8, 8)
            mask[:, :4, :4] = 1
            self.fc[0].weight.mul_(mask.flatten())

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fc[0](self.features(x).flatten(1)))

    def head(self, z: torch.Tensor) -> torch.Tensor:
        return self.fc[2](z)


def random_image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (16, 16, 3), dtype=np.uint8)


def run(images, methods=METHODS, seed=0, **kw) -> tuple[ToyNet, SanityResult]:
    model = ToyNet()
    # Grad-CAM on the last convolution's own output (the numbers below were measured on it)
    return model, cascading_randomisation(model, images, IDENTITY, [0] * len(images), methods, seed=seed,
                                          **(FAST | {"layer": "features.3"} | kw))


def test_randomisation_layers_are_the_weighted_layers_top_down():
    assert randomisation_layers(ToyNet()) == ["fc.2", "fc.0", "features.3", "features.0"]


def test_randomise_layer_draws_pytorchs_default_initialisation():
    for layer in (nn.Conv2d(3, 5, 3), nn.Linear(7, 4)):
        with torch.random.fork_rng():
            torch.manual_seed(3)
            layer.reset_parameters()
        expected = {k: v.clone() for k, v in layer.state_dict().items()}
        with torch.no_grad():
            layer.weight.zero_(), layer.bias.zero_()
        randomise_layer(layer, torch.Generator().manual_seed(3))
        for k, v in layer.state_dict().items():
            assert torch.equal(v, expected[k]), k


def test_shared_model_and_global_rng_are_left_exactly_as_found():
    model = ToyNet()
    model.train()
    model.fc.eval()  # mixed modes must come back mixed
    state = {k: v.clone() for k, v in model.state_dict().items()}
    flags = [m.training for m in model.modules()]
    calls = []
    handle = model.features[0].register_forward_hook(lambda *a: calls.append(1))
    rng = torch.get_rng_state()
    seen = []

    result = cascading_randomisation(model, np.stack([random_image()]), IDENTITY, [1], seed=5,
                                     progress=lambda done, total: seen.append((done, total)), **FAST)

    assert torch.equal(torch.get_rng_state(), rng)
    assert calls == []  # the private copy carries none of the model's hooks
    handle.remove()
    assert model.state_dict().keys() == state.keys()
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert [m.training for m in model.modules()] == flags
    assert all(p.grad is None for p in model.parameters())
    assert not [(n, a) for n, m in model.named_modules() for a in _HOOK_DICTS if getattr(m, a, None)]
    assert result.layers == ("fc.2", "fc.0", "features.3", "features.0")
    assert result.spearman.shape == (5, 5, 1) and result.maps.shape == (5, 5, 16, 16)
    assert seen == [(k, 25) for k in range(1, 26)]  # 5 methods x (4 layers + trained)


def test_correlation_is_one_when_trained_and_drops_as_layers_go_random():
    images = np.stack([random_image(s) for s in (0, 2, 3)])  # image 1's trained Grad-CAM is all 0
    _, result = run(images)
    assert result.steps == ("trained", "+ fc.2", "+ fc.0", "+ features.3", "+ features.0")
    assert result.grad_cam_layer == "features.3"
    assert run(images[:1], methods=("grad_cam",), layer=None)[1].grad_cam_layer == "features.4"  # the default
    np.testing.assert_array_equal(result.spearman[:, 0], 1.0)  # exactly, every method and image
    mean = dict(zip(result.methods, result.mean()))
    # measured once (seed 0): saliency 1 -> 0.98, 0.06, -0.03, 0.09: the trained maps sit in the
    # top-left quadrant, random ones anywhere
    assert mean["saliency"][2] < 0.3 and mean["saliency"][-1] < 0.3
    assert mean["integrated_gradients"][-1] < 0.5
    assert result.verdict()["saliency"] == "decorrelates"
    assert result.verdict(threshold=-1.0)["saliency"] == "barely changes"
    row = result.table()[0]
    assert row["method"] == "saliency" and row["trained"] == 1.0 and row["full cascade"] == mean["saliency"][-1]
    assert row["cascade mean"] == pytest.approx(float(np.mean(mean["saliency"][1:])))
    assert row["undefined"] == 0

    _, again = run(images)
    np.testing.assert_array_equal(again.spearman, result.spearman)
    np.testing.assert_array_equal(again.maps, result.maps)
    _, other = run(images, seed=1)
    assert not np.array_equal(other.spearman[:, 1:], result.spearman[:, 1:])


def test_constant_maps_are_nan_and_counted_not_averaged_as_zero():
    black = np.zeros((16, 16, 3), np.uint8)
    _, result = run(np.stack([random_image(), black]))
    assert np.isnan(result.spearman[:, :, 1]).all()  # zero input, bias-free convs: every map is 0
    first = result.spearman[:, :, 0]
    assert np.isnan(first).sum() == 1 and np.isnan(first[2, 2])  # its Grad-CAM is 0 once fc.0 is random
    np.testing.assert_array_equal(result.undefined(), 1 + np.isnan(first))
    np.testing.assert_array_equal(result.mean(), first)  # not halved by a 0; NaN where no image counts
    assert result.table()[0]["undefined"] == 1 and math.isnan(result.table()[2]["+ fc.0"])

    _, alone = run(black[None], methods=("saliency", "grad_cam"))
    assert np.isnan(alone.mean()).all() and (alone.undefined() == 1).all()
    assert alone.verdict() == {"saliency": "undefined", "grad_cam": "undefined"}
    d = alone.to_dict()
    assert d["mean"][0][0] is None and d["spearman"][1][-1] == [None] and d["undefined"][0] == [1] * 5


def test_bad_arguments_are_refused():
    img = random_image()[None]
    with pytest.raises(ValueError, match="unknown attribution method"):
        cascading_randomisation(ToyNet(), img, IDENTITY, [0], methods=("lime",))
    with pytest.raises(ValueError, match="2 targets for 1 images"):
        cascading_randomisation(ToyNet(), img, IDENTITY, [0, 1])


def test_figures_have_one_picture_per_map_and_one_line_per_method():
    images = np.stack([random_image(s) for s in range(2)])
    _, result = run(images, methods=("saliency", "grad_cam", "guided_backprop"))
    grid = sanity_grid_figure(images[0], result)
    pictures = [t for t in grid.data if isinstance(t, go.Image)]
    assert len(pictures) == 1 + 3 * 5  # the input, then 3 methods x 5 steps
    assert pictures[1].z.shape == (16, 16, 3)
    titles = [a.text for a in grid.layout.annotations]
    assert titles[:6] == ["input", "trained", "+ fc.2", "+ fc.0", "+ features.3", "+ features.0"]
    curve = sanity_curve_figure(result)
    lines = [t for t in curve.data if isinstance(t, go.Scatter)]
    assert [t.name for t in lines] == ["Saliency", "Grad-CAM", "Guided backprop"]
    np.testing.assert_allclose(lines[0].y, result.mean()[0])
    assert list(curve.layout.yaxis.range) == [-0.2, 1.0]
    assert math.isclose(lines[0].y[0], 1.0)

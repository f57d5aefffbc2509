"""Receptive fields: known answers by hand, residual branches, gradients agree with theory."""

from __future__ import annotations

import re

import numpy as np
import plotly.graph_objects as go
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnviz.figures.receptive_field import receptive_field_figure, rf_growth_html
from cnnviz.inputs import Normalization
from cnnviz.inspect.effective_rf import gradient_probe_size, gradient_rf
from cnnviz.inspect.feature_maps import feature_maps
from cnnviz.inspect.filters import first_layer_filters
from cnnviz.inspect.receptive_field import receptive_fields, unit_box
from cnnviz.models import get_model, list_models, model_spec

from test_hooks import hooks_left


def by_name(rfs):
    return {r.name: r for r in rfs}


def three_convs(padding: int = 1, act: type[nn.Module] = nn.Tanh) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=padding), act(), nn.Conv2d(4, 4, 3, padding=padding), act(),
                         nn.Conv2d(4, 2, 3, padding=padding))


def alexnet_stack() -> nn.Sequential:
    """torchvision AlexNet's ``features`` hyper-parameters, with 4 channels to stay tiny."""
    return nn.Sequential(
        nn.Conv2d(3, 4, 11, 4, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        nn.Conv2d(4, 4, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(4, 4, 3, padding=1),
        nn.ReLU(inplace=True), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
    )


# Hand computation, (size, jump, start) with size' = size + (k-1)*jump, jump' = jump*s,
# start' = start + ((k-1)/2 - p)*jump, from the input's (1, 1, 0):
#   conv1 k11 s4 p2: 1 + 10*1 = 11, jump 4, start 0 + (5-2)*1 = 3
#   pool1 k3 s2:     11 + 2*4 = 19, jump 8, start 3 + 1*4 = 7
#   conv2 k5 s1 p2:  19 + 4*8 = 51, jump 8, start 7 + (2-2)*8 = 7
#   pool2 k3 s2:     51 + 2*8 = 67, jump 16, start 7 + 8 = 15
#   conv3/4/5 k3 p1: 99, 131, 163, jump 16, start 15
#   pool5 k3 s2:     163 + 2*16 = 195, jump 32, start 15 + 16 = 31
ALEXNET = {"0": (11, 4, 3), "2": (19, 8, 7), "3": (51, 8, 7), "5": (67, 16, 15), "6": (99, 16, 15),
           "8": (131, 16, 15), "10": (163, 16, 15), "12": (195, 32, 31)}


def test_three_3x3_convs_see_7_pixels():
    model = three_convs()
    rfs = by_name(receptive_fields(model, 16))
    assert [r for r in rfs] == ["0", "1", "2", "3", "4"]
    assert rfs["0"].size == (3, 3) and rfs["2"].size == (5, 5) and rfs["4"].size == (7, 7)
    assert rfs["4"].jump == (1, 1) and rfs["4"].start == (0, 0) and rfs["4"].out_size == (16, 16)
    assert rfs["1"].kind == "Tanh" and rfs["1"].size == (3, 3)
    unpadded = by_name(receptive_fields(three_convs(padding=0), 16))["4"]
    assert unpadded.size == (7, 7) and unpadded.start == (3, 3) and unpadded.out_size == (10, 10)


def test_alexnet_hyper_parameters_by_hand():
    model = alexnet_stack().train()
    before = {n: m.training for n, m in model.named_modules()}
    rfs = by_name(receptive_fields(model, 224))
    for name, (size, jump, start) in ALEXNET.items():
        assert (rfs[name].size, rfs[name].jump, rfs[name].start) == ((size,) * 2, (jump,) * 2, (start,) * 2), name
    assert rfs["0"].out_size == (55, 55) and rfs["12"].out_size == (6, 6)
    assert {n: m.training for n, m in model.named_modules()} == before
    assert hooks_left(model) == []


@pytest.mark.filterwarnings("ignore:Using padding=.same. with even kernel")
def test_asymmetric_padding_dilation_and_pools():
    model = nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(3, 2, 2), nn.ZeroPad2d((2, 0, 1, 0)),
                          nn.Conv2d(2, 2, 3, dilation=2), nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(1))
    rfs = by_name(receptive_fields(model, (8, 10)))
    assert rfs["0"].start == (0, 0) and rfs["0"].out_size == (9, 11)
    assert rfs["1"].size == (2, 2) and rfs["1"].start == (0.5, 0.5)  # even kernel: centred between pixels
    assert rfs["2"].start == (-0.5, -1.5)  # one padded row above, two padded columns to the left
    assert rfs["3"].size == (6, 6) and rfs["3"].start == (1.5, 0.5)  # dilated 3x3 spans 5
    assert rfs["4"].size == (7, 7) and rfs["4"].jump == (2, 2) and rfs["4"].start == (2, 1)
    assert rfs["4"].out_size == (2, 4)
    # the global pool sees all its input units: rows from 2-3 to (2+2)+3, columns -2 to 10
    assert rfs["5"].size == (9, 13) and rfs["5"].out_size == (1, 1)
    same = nn.Sequential(nn.Conv2d(3, 2, 4, padding="same"))  # pads 1 before, 2 after
    assert by_name(receptive_fields(same, 8))["0"].start == (0.5, 0.5)


class Residual(nn.Module):
    """A 3x3 main branch plus a 7x7 shortcut that runs *after* it: the sum sees 7x7."""

    def __init__(self):
        super().__init__()
        self.main = nn.Conv2d(3, 2, 3, padding=1)
        self.short = nn.Conv2d(3, 2, 7, padding=3)
        self.relu = nn.ReLU()

    def forward(self, x):
        out = self.main(x)
        return self.relu(out + self.short(x))


def test_residual_sum_takes_the_union_of_branches():
    rfs = by_name(receptive_fields(Residual(), 12))
    assert list(rfs) == ["main", "short", "relu"]
    assert rfs["main"].size == (3, 3) and rfs["short"].size == (7, 7) and rfs["relu"].size == (7, 7)
    assert rfs["relu"].start == (0, 0)


def test_unsupported_spatial_function_raises_and_cleans_up():
    class Up(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 2, 3)

        def forward(self, x):
            return F.interpolate(self.conv(x), scale_factor=2)

    model = Up()
    with pytest.raises(NotImplementedError, match="spatial size"):
        receptive_fields(model, 8)
    assert hooks_left(model) == []


def test_unit_box_is_clipped_and_half_open():
    rf = by_name(receptive_fields(three_convs(), 16))["4"]
    assert unit_box(rf, 0, 0, 16) == (0, 0, 4, 4)  # spans -3..3, clipped
    assert unit_box(rf, 8, 5, 16) == (5, 2, 12, 9)
    assert unit_box(rf, 15, 15, 16) == (12, 12, 16, 16)
    with pytest.raises(ValueError, match="outside"):
        unit_box(rf, 16, 0, 16)
    even = by_name(receptive_fields(nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(3, 1, 2)), 8))["1"]
    assert unit_box(even, 0, 0, 8) == (0, 0, 2, 2)


def test_gradient_probe_matches_theory_on_a_conv_stack():
    model = three_convs(padding=0)
    assert gradient_probe_size(model, "4", 15) == (7, 7)
    assert gradient_probe_size(model, "2", 15) == (5, 5)
    assert hooks_left(model) == []


def test_gradient_probe_never_exceeds_theory_with_gating():
    model = alexnet_stack()
    theory = by_name(receptive_fields(model, 224))["3"].size
    measured = gradient_probe_size(model, "3", 224, trials=2)
    assert 0 < measured[0] <= theory[0] and 0 < measured[1] <= theory[1]


def test_gradient_rf_lies_inside_the_box_and_leaves_state():
    model = three_convs(padding=1)
    model.train()
    model[0].weight.requires_grad_(False)
    modes = {n: m.training for n, m in model.named_modules()}
    grads = {n: p.requires_grad for n, p in model.named_parameters()}
    img = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    norm = Normalization((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    erf = gradient_rf(model, "4", channel=1, y=8, x=5, image=img, norm=norm)
    assert erf.shape == (16, 16) and erf.dtype == np.float32
    top, left, bottom, right = unit_box(by_name(receptive_fields(model, 16))["4"], 8, 5, 16)
    inside = np.zeros_like(erf, dtype=bool)
    inside[top:bottom, left:right] = True
    assert (erf[~inside] == 0).all() and (erf[inside] > 0).all()
    rand = gradient_rf(model, "2", channel=0, input_size=16)  # centre unit, random input
    assert np.count_nonzero(rand) == 25
    assert {n: m.training for n, m in model.named_modules()} == modes
    assert {n: p.requires_grad for n, p in model.named_parameters()} == grads
    assert all(p.grad is None for p in model.parameters())
    assert hooks_left(model) == []
    with pytest.raises(ValueError, match="channel 9"):
        gradient_rf(model, "4", channel=9, input_size=16)
    with pytest.raises(ValueError, match="norm"):
        gradient_rf(model, "4", channel=0, image=img)
    with pytest.raises(RuntimeError):  # "0.4" runs, then the Linear gets 16 features, not 3
        gradient_rf(nn.Sequential(model, nn.Linear(3, 3)), "0.4", channel=0, input_size=16)
    assert hooks_left(model) == []
    assert {n: m.training for n, m in model.named_modules()} == modes


def test_receptive_field_figures():
    img = np.full((16, 16, 3), 128, np.uint8)
    erf = np.zeros((16, 16), np.float32)
    erf[6:9, 6:9] = 1
    fig = receptive_field_figure(img, box=(5, 5, 10, 10), erf=erf)
    assert isinstance(fig, go.Figure) and len(fig.data) == 2
    assert isinstance(fig.data[0], go.Image) and isinstance(fig.data[1], go.Heatmap)
    assert len(fig.layout.shapes) == 1 and fig.layout.shapes[0].x0 == 4.5
    assert len(receptive_field_figure(img).data) == 1
    with pytest.raises(ValueError, match="does not match"):
        receptive_field_figure(img, erf=np.zeros((8, 8)))
    rfs = receptive_fields(three_convs(), 16)
    table = rf_growth_html(rfs, image_size=16, bar_px=320)
    assert [r.size[0] for r in rfs] == [3, 3, 5, 5, 7]
    # bars scaled to the largest of the fields and the image (16 px): 3 px is 60 of 320 px
    widths = [float(w) for w in re.findall(r'<div style="width:([\d.]+)px;height:16px;background', table)]
    assert widths == [60.0, 60.0, 100.0, 100.0, 140.0]
    assert table.count("left:320.0px") == 5  # the image's dashed line, at 16 of 16 px, in every bar
    assert table.count("<tr>") == 6 and "<td style=\"padding:2px 8px;text-align:right\">7</td>" in table
    assert "dashed" not in rf_growth_html(rfs)


# --------------------------------------------------------------------------------------------
# Every registered model, each built once at its smallest input size.


@pytest.fixture(scope="module")
def registered():
    torch.manual_seed(0)
    out = {}
    for name in list_models():
        size = model_spec(name).min_input_size
        out[name] = (get_model(name, 3, size), size)
    yield out
    out.clear()


@pytest.mark.parametrize("name", list_models())
def test_every_registered_model(registered, name):
    model, size = registered[name]
    model.train()
    modes = {n: m.training for n, m in model.named_modules()}
    rfs = receptive_fields(model, size)
    assert rfs, name
    names = model.layer_names()
    assert {r.name for r in rfs} <= set(names)
    first = by_name(rfs)[next(n for n in names if model.get_submodule(n) is model.first_conv)]
    k = model.first_conv.kernel_size
    assert first.size == (float(k[0]), float(k[1]))
    assert all(r.size[0] >= 1 and r.jump[0] >= 0 for r in rfs)
    assert {n: m.training for n, m in model.named_modules()} == modes
    assert hooks_left(model) == []
    # the other inspections run on it too
    fs = first_layer_filters(model)
    assert fs.images.shape == (model.first_conv.out_channels, *k, 3)
    img = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    deepest_conv = [n for n in names if isinstance(model.get_submodule(n), nn.Conv2d)][-1]
    fm = feature_maps(model, img, deepest_conv, Normalization((0.5,) * 3, (0.25,) * 3))
    assert fm.maps.shape[0] == 1 and fm.order.shape == fm.maps.shape[:2]
    assert {n: m.training for n, m in model.named_modules()} == modes
    assert hooks_left(model) == []


def test_torchvision_alexnet_and_resnet18_known_sizes(registered):
    alex = by_name(receptive_fields(registered["alexnet"][0], 64))
    for name, (size, jump, start) in ALEXNET.items():
        rf = alex[f"features.{name}"]
        assert (rf.size, rf.jump, rf.start) == ((size,) * 2, (jump,) * 2, (start,) * 2), name
    res = by_name(receptive_fields(registered["resnet18"][0], 32))
    # stem: conv 7/2 -> 7, maxpool 3/2 -> 11 (jump 4); each 3x3 conv adds 2*jump
    assert res["layer1.0.conv1"].size == (19, 19)
    assert res["layer1.0.relu"].size == (27, 27)  # its last call: after the residual sum
    assert res["layer2.0.downsample.0"].size == (43, 43)  # 1x1 shortcut on layer1's output (43)
    assert res["layer4.1.conv2"].size == (435, 435) and res["layer4.1.conv2"].jump == (32, 32)
    assert res["avgpool"].size[0] >= 435 and res["fc"].jump == (0, 0)
    whiten = by_name(receptive_fields(registered["cifar_fast"][0], 8))["whiten"]
    assert whiten.size == (2, 2) and whiten.start == (0.5, 0.5)


def test_gradient_probe_agrees_with_theory_on_alexnet_conv1_and_resnet18(registered):
    """The measured support of a unit's input gradient equals the computed receptive field where
    nothing gates it: AlexNet's conv1 (11 px, jump 4) and ResNet-18's stem and first block."""
    alex = registered["alexnet"][0]
    alex.train()
    theory = by_name(receptive_fields(alex, 64))["features.0"]
    assert (theory.size, theory.jump) == ((11, 11), (4, 4))
    assert gradient_probe_size(alex, "features.0", 64) == (11, 11)
    assert alex.training and hooks_left(alex) == []

    res = registered["resnet18"][0].eval()
    rfs = by_name(receptive_fields(res, 96))
    for name, size in (("conv1", 7), ("layer1.0.conv1", 19), ("layer1.0.conv2", 27), ("layer1.1.conv2", 43)):
        assert rfs[name].size == (size, size), name
        assert gradient_probe_size(res, name, 96) == (size, size), name
    assert not res.training and hooks_left(res) == []

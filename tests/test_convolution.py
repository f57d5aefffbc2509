"""The convolution step by step (cnnviz.inspect.convolution) and its figures."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnviz.figures.convolution import conv_products_html, conv_window_pictures, step_equation
from cnnviz.figures.pictures import diverging_lut
from cnnviz.hooks import capture, model_view
from cnnviz.inputs import Normalization, to_input
from cnnviz.inspect.convolution import conv_output, conv_step
from cnnviz.inspect.filters import first_conv_name
from cnnviz.models import get_model

NORM = Normalization((0.5, 0.4, 0.3), (0.25, 0.2, 0.2))


def image(size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def hand_conv(padding: int = 0) -> nn.Conv2d:
    """One input channel, two 2x2 kernels: kernel 1 is [[1, 2], [3, 4]] with bias 0.5."""
    conv = nn.Conv2d(1, 2, 2, padding=padding)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[[9.0, 9.0], [9.0, 9.0]]], [[[1.0, 2.0], [3.0, 4.0]]]]))
        conv.bias.copy_(torch.tensor([-7.0, 0.5]))
    return conv


HAND_IMAGE = torch.arange(1.0, 10.0).reshape(1, 3, 3)  # [[1, 2, 3], [4, 5, 6], [7, 8, 9]]


def layer_output(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """What the model's first convolution outputs in a real forward pass (eval mode)."""
    view = model_view(model)
    with torch.no_grad(), capture(view, first_conv_name(model)) as acts:
        view(x)
    return acts[first_conv_name(model)][0]


def tiny_models() -> dict[str, nn.Module]:
    torch.manual_seed(0)
    fast = get_model("cifar_fast", 10, 16, widths=(8, 8, 8))
    fast.prepare(to_input(np.stack([image(16, s) for s in range(8)]), NORM))
    return {
        "alexnet_style": get_model("alexnet_style", 3, 32, width=0.125, fc6=16, fc7=32),  # 5x5, s1, p2
        "cifar_fast": fast,  # 2x2 whitening, zero-padded right/bottom by the model
        "fast_lecture64": get_model("fast_lecture64", 10, 32, widths=(8, 8, 8)),  # 7x7, s2, p3
    }


def test_products_and_sum_are_the_hand_computed_numbers():
    step = conv_step(hand_conv(), HAND_IMAGE, None, channel=1, position=(0, 1))
    assert (step.row, step.col, step.top, step.left) == (0, 1, 0, 1)
    np.testing.assert_array_equal(step.patch, [[[2, 3], [5, 6]]])
    np.testing.assert_array_equal(step.kernel, [[[1, 2], [3, 4]]])
    np.testing.assert_array_equal(step.product, [[[2, 6], [15, 24]]])
    assert step.total == 47.0 and step.bias == 0.5 and step.value == 47.5
    assert step.num_products == 4 and not step.on_padding.any()
    assert step_equation(step) == "sum of 4 products = 47.0000, + bias 0.5000 = 47.5000"

    out = conv_output(hand_conv(), HAND_IMAGE, channel=1)
    np.testing.assert_array_equal(out.output, [[37.5, 47.5], [67.5, 77.5]])
    assert out.step(3).value == 77.5 and out.step(3).position == 3


def test_padding_taps_are_zeros_and_marked():
    out = conv_output(hand_conv(padding=1), HAND_IMAGE, channel=1)
    assert out.padding == (1, 1, 1, 1) and out.pre_padding == (0, 0, 0, 0)
    assert out.padded.shape == (1, 5, 5) and out.out_size == (4, 4)
    step = out.step(0)  # the window's top-left is the padded corner
    np.testing.assert_array_equal(step.patch, [[[0, 0], [0, 1]]])
    np.testing.assert_array_equal(step.on_padding, [[True, True], [True, False]])
    assert step.total == 4.0 and step.value == 4.5
    assert out.inside.sum() == 9 and not out.inside[0].any()


def test_uint8_image_is_normalised_as_the_model_sees_it():
    img = image(6)
    conv = nn.Conv2d(3, 2, 3)
    out = conv_output(conv, img, NORM, channel=0)
    np.testing.assert_allclose(out.padded, to_input(img, NORM)[0].numpy())
    np.testing.assert_array_equal(out.image, img)
    with pytest.raises(ValueError, match="Normalization"):
        conv_output(conv, img, None)


@pytest.mark.parametrize("name", ["alexnet_style", "cifar_fast", "fast_lecture64"])
def test_every_position_sums_to_the_layers_output(name):
    model = tiny_models()[name]
    size = 16 if name == "cifar_fast" else 32
    img = image(size, 3)
    for channel in (0, model.first_conv.out_channels - 1):
        out = conv_output(model, img, NORM, channel)
        expected = layer_output(model, to_input(img, NORM))[channel].numpy()
        assert out.output.shape == expected.shape
        np.testing.assert_allclose(out.output, expected, rtol=1e-5, atol=1e-5)
        ref = F.conv2d(torch.from_numpy(out.padded)[None], model.first_conv.weight.detach()[channel:channel + 1],
                       None if model.first_conv.bias is None else model.first_conv.bias.detach()[channel:channel + 1],
                       stride=model.first_conv.stride, dilation=model.first_conv.dilation)[0, 0].numpy()
        values = np.array([out.step(p).value for p in range(out.num_positions)], dtype=np.float64)
        np.testing.assert_allclose(values, ref.ravel(), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(values, out.output.ravel(), rtol=1e-5, atol=1e-5)
        sums = (out.patches() * out.kernel).reshape(out.num_positions, -1).sum(axis=1) + out.bias
        np.testing.assert_allclose(sums, values, rtol=1e-5, atol=1e-5)


def test_cifar_fast_whitening_stem_counts_the_models_own_zero_padding():
    model = tiny_models()["cifar_fast"]
    out = conv_output(model, image(16), NORM, 5)
    assert out.layer == "whiten" and out.kernel_size == (2, 2)
    assert out.pre_padding == out.padding == (0, 1, 0, 1)  # ZeroPad2d before a padding-0 conv
    assert out.out_size == (16, 16) and out.padded.shape == (3, 17, 17)
    last = out.step(out.num_positions - 1)
    assert last.on_padding.tolist() == [[False, True], [True, True]]


def test_stride_2_padding_3_geometry():
    torch.manual_seed(1)
    conv = nn.Conv2d(3, 4, 7, stride=2, padding=3)
    x = torch.randn(3, 20, 20)
    out = conv_output(conv, x, channel=2)
    assert out.stride == (2, 2) and out.padding == (3, 3, 3, 3) and out.span == (7, 7)
    assert out.padded.shape == (3, 26, 26) and out.image_size == (20, 20)
    assert out.out_size == (10, 10) == tuple(conv(x[None]).shape[-2:])
    p = out.position(2, 3)
    assert p == 23 and out.row_col(p) == (2, 3)
    assert out.window(p) == (4, 6, 11, 13)
    step = out.step(p)
    assert (step.top, step.left) == (4, 6)
    np.testing.assert_array_equal(step.patch, out.padded[:, 4:11, 6:13])
    assert out.window(0) == (0, 0, 7, 7) and out.window(99) == (18, 18, 25, 25)
    np.testing.assert_allclose(out.output, conv(x[None])[0, 2].detach().numpy(), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="out of range"):
        out.step(100)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("kernel,dilation", [(3, 2), (4, 1)])
def test_same_padding_and_dilation(kernel, dilation):
    torch.manual_seed(2)
    conv = nn.Conv2d(3, 2, kernel, padding="same", dilation=dilation)
    x = torch.randn(3, 9, 11)
    out = conv_output(conv, x, channel=1)
    assert out.out_size == (9, 11)
    expected = conv(x[None])[0, 1].detach().numpy()
    np.testing.assert_allclose(out.output, expected, rtol=1e-5, atol=1e-5)
    values = [out.step(p).value for p in range(out.num_positions)]
    np.testing.assert_allclose(values, expected.ravel(), rtol=1e-5, atol=1e-5)
    if dilation == 2:
        step = out.step((4, 5))
        np.testing.assert_array_equal(step.patch, out.padded[:, 4:9:2, 5:10:2])


def test_the_model_is_not_changed():
    model = tiny_models()["alexnet_style"]
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    grads = {n: p.requires_grad for n, p in model.named_parameters()}
    out = conv_output(model, image(32), NORM, 1)
    out.kernel[:] = 0  # a copy: the weights stay
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert grads == {n: p.requires_grad for n, p in model.named_parameters()}
    assert not any(m._forward_pre_hooks or m._forward_hooks for m in model.modules())
    assert model.first_conv.weight.abs().sum() > 0


def test_errors_are_clear():
    with pytest.raises(ValueError, match="groups=2"):
        conv_output(nn.Conv2d(4, 4, 3, groups=2), torch.zeros(4, 5, 5))
    with pytest.raises(ValueError, match="kernel 5 out of range"):
        conv_output(hand_conv(), HAND_IMAGE, channel=5)
    with pytest.raises(ValueError, match="channels"):
        conv_output(nn.Conv2d(3, 1, 2), torch.zeros(1, 4, 4))
    with pytest.raises(TypeError, match="first_conv"):
        conv_output(nn.Linear(3, 3), HAND_IMAGE)


def test_pictures_show_the_window_the_filled_map_and_the_products():
    torch.manual_seed(3)
    conv = nn.Conv2d(3, 2, 3, stride=2, padding=1)
    img = image(8)
    out = conv_output(conv, img, NORM, channel=0)
    step = out.step((1, 2))  # window top 2, left 4 on the 10 x 10 padded input
    window, filled = conv_window_pictures(out, step, width=100)
    assert window.shape == (100, 100, 3) and filled.shape == (100, 100, 3)  # 10 px per cell; 4 x 4 map, 25 px
    assert (window[5, 5] == 200).all()  # grey padding, inside cell (0, 0)
    assert (window[21, 41] == (214, 39, 40)).all()  # the window's top-left corner is red (3 px edge)
    assert (window[45, 65] == img[3, 5]).all()  # a cell inside the window keeps its pixel (padding 1)
    assert (window[21, 65] == (214, 39, 40)).all()  # the window's top edge; the next one starts at column 6
    # the output map: computed pixels coloured, later ones light grey, the current one boxed in black
    peak = float(np.abs(out.output).max())
    lut = diverging_lut()
    first = lut[int(np.rint((out.output[0, 0] / peak + 1) * 127.5))]
    assert (filled[12, 12] == first).all()
    assert (filled[12 + 25 * 2, 12 + 25 * 3] == 235).all()  # (2, 3): after the current pixel
    assert (filled[25 * 1, 25 * 2 + 12] == 0).all()  # the current pixel's top edge
    assert (filled[25 + 12, 50 + 12] != 235).any()  # the current pixel is computed

    html = conv_products_html(out, step)
    assert html.count("<td title=") == 3 * 3 * 9  # 3 channels x (patch, kernel, products) x 9 taps
    assert f">{out.kernel[1, 0, 0]:.2f}</td>" in html  # values printed in the cells
    assert f"green, tap (0, 0): product {step.product[1, 0, 0]:.4f}" in html  # and in the tooltips
    for c in range(3):
        assert f"sum {step.channel_sums[c]:+.3f}" in html
    assert html.count("dotted") == 0  # this window lies inside the image
    edge = conv_products_html(out, out.step(0))
    assert edge.count("1px dotted") == 3 * 3 * 5  # top-left window: a row and a column of padding taps

    big = conv_output(nn.Conv2d(3, 1, 7, padding=3), img, NORM)
    assert f">{big.kernel[0, 0, 0]:.2f}</td>" not in conv_products_html(big, big.step(0))  # 7 x 7: colours only

"""Attribution maps on tiny hand-made models with known answers, and the model left as found."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cnnviz.figures.attribution import attribution_panels, colorize, overlay
from cnnviz.inputs import Normalization
from cnnviz.inspect.attribution import (
    METHODS, Attribution, attribute, attribution_maps, default_grad_cam_layer, occlusion_geometry,
)
from cnnviz.models import CNN, get_model

# Captum warns on every GuidedBackprop call that it sets (and later removes) ReLU hooks.
pytestmark = pytest.mark.filterwarnings("ignore:Setting backward hooks on ReLU:UserWarning")

IDENTITY = Normalization((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))  # input = image / 255
NORM = Normalization((0.5, 0.4, 0.3), (0.25, 0.25, 0.25))
FAST = dict(ig_steps=4, internal_batch_size=8)

_HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_full_backward_hooks",
               "_backward_pre_hooks")
_GLOBAL_HOOKS = ("_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks",
                 "_global_backward_pre_hooks")


def leftover_hooks(model: nn.Module) -> list[str]:
    """Every module, parameter and global hook registry that is not empty."""
    left = [f"{name or '<model>'}.{attr}" for name, m in model.named_modules()
            for attr in _HOOK_DICTS if getattr(m, attr, None)]
    left += [f"{name}._backward_hooks" for name, p in model.named_parameters() if p._backward_hooks]
    g = torch.nn.modules.module
    return left + [attr for attr in _GLOBAL_HOOKS if getattr(g, attr, None)]


def snapshot(model: nn.Module) -> tuple:
    """Per-module training flags and inplace flags, per-parameter requires_grad."""
    return ([m.training for m in model.modules()], [getattr(m, "inplace", None) for m in model.modules()],
            [p.requires_grad for p in model.parameters()])


class QuadrantNet(CNN):
    """Two 3x3/2 convolution channels: 0 copies red, 1 copies green (then an in-place ReLU).

    ``logit 0`` = mean of channel 1 over the whole map; ``logit 1`` = mean of channel 0 over the
    top-left quadrant only. Setting ``armed`` makes the forward pass raise after the ReLU.
    """

    def __init__(self, size: int = 32):
        super().__init__()
        self.num_classes, self.embed_dim = 2, 2
        self.conv = nn.Conv2d(3, 2, 3, stride=2, padding=1, bias=False)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[0, 0, 1, 1] = 1.0
            self.conv.weight[1, 1, 1, 1] = 1.0
        self.act = nn.ReLU(inplace=True)
        side = size // 2
        mask = torch.zeros(side, side)
        mask[: side // 2, : side // 2] = 1.0
        self.register_buffer("mask", mask / mask.sum())
        self.armed = False

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        a = self.act(self.conv(x))
        if self.armed:
            raise RuntimeError("boom")
        return torch.stack([a[:, 1].mean((1, 2)), (a[:, 0] * self.mask).sum((1, 2))], 1)

    def head(self, z: torch.Tensor) -> torch.Tensor:
        return z


class LinearNet(CNN):
    """``logits = W x`` on the flattened normalised input; no layers at all."""

    def __init__(self, size: int = 16, classes: int = 3):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.weight = nn.Parameter(torch.randn(classes, 3, size, size, generator=g))
        self.num_classes, self.embed_dim = classes, 3 * size * size

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)

    def head(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.weight.flatten(1).T


def two_patches(size: int = 32) -> np.ndarray:
    """Black image, a red square in the top-left quadrant and a green one in the top-right."""
    img = np.zeros((size, size, 3), np.uint8)
    q = size // 8
    img[q:3 * q, q:3 * q, 0] = 255
    img[q:3 * q, 5 * q:7 * q, 1] = 255
    return img


def random_image(size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def tiny(name: str) -> CNN:
    torch.manual_seed(0)
    if name == "cifar_fast":
        return get_model("cifar_fast", 3, 16, widths=(8, 16, 16))
    return get_model("alexnet_style", 3, 16, width=0.125, fc6=32, fc7=32, pool=2)


def quadrant_mass(heat: np.ndarray) -> dict[str, float]:
    h, w = heat.shape
    total = heat.sum()
    return {"tl": heat[: h // 2, : w // 2].sum() / total, "tr": heat[: h // 2, w // 2:].sum() / total}


# ------------------------------------------------------------------------------------------------
# Every method, real architectures


@pytest.mark.parametrize("arch", ["cifar_fast", "alexnet_style"])
def test_every_method_gives_normalised_maps_and_leaves_model_as_found(arch):
    model = tiny(arch)
    model.train()
    first_bn = next(m for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    first_bn.eval()  # a mixed-mode model must come back mixed
    before = snapshot(model)
    img = random_image(16)

    out = attribute(model, img, NORM, target=2, **FAST)

    assert list(out) == list(METHODS)
    for name, a in out.items():
        assert isinstance(a, Attribution) and a.method == name and a.target == 2
        assert a.map.shape == (16, 16) and a.map.dtype == np.float32, name
        assert np.isfinite(a.map).all() and a.map.min() >= 0 and a.map.max() <= 1, name
        assert np.isclose(a.map.max(), 1.0) or a.map.max() == 0, name
        assert a.raw.dtype == np.float32 and np.isfinite(a.raw).all(), name
        expected_raw = (16, 16) if name in ("grad_cam", "occlusion") else (3, 16, 16)
        assert a.raw.shape == expected_raw, name
    assert out["grad_cam"].layer == default_grad_cam_layer(model)
    assert snapshot(model) == before
    assert all(p.grad is None for p in model.parameters())
    assert leftover_hooks(model) == []


def test_guided_backprop_equals_captums_on_relu_and_guides_gelu_too():
    from captum.attr import GuidedBackprop

    from cnnviz.hooks import model_view
    from cnnviz.inputs import to_input

    relu_net, img = tiny("alexnet_style"), random_image(16)
    ours = attribute(relu_net, img, NORM, 1, methods=("guided_backprop",))["guided_backprop"]
    x = to_input(img, NORM).requires_grad_(True)
    theirs = GuidedBackprop(model_view(relu_net)).attribute(x, target=1)[0]
    np.testing.assert_allclose(ours.raw, theirs.detach().numpy(), rtol=1e-5, atol=1e-7)
    assert ours.note == ""
    gelu_net = tiny("cifar_fast")
    out = attribute(gelu_net, img, NORM, 0, methods=("guided_backprop", "saliency"))
    assert out["guided_backprop"].note == ""  # GELU is guided too, not left as plain gradients
    assert not np.allclose(np.abs(out["guided_backprop"].raw).max(0), out["saliency"].raw.max(0))
    assert leftover_hooks(gelu_net) == [] and leftover_hooks(relu_net) == []
    bare = attribute(LinearNet(), random_image(16), NORM, 0, methods=("guided_backprop",))["guided_backprop"]
    assert bare.note.startswith("no activation modules in this model")


def test_grad_cam_defaults_to_the_activation_after_the_last_convolution():
    assert default_grad_cam_layer(get_model("cifar_lecture", 10, 32)) == "block3.act2"
    assert default_grad_cam_layer(get_model("alexnet_style", 20, 64)) == "features.16"  # conv 14, BN 15, ReLU 16
    assert default_grad_cam_layer(get_model("vgg11", 10, 32)) == "features.27"  # conv 26, ReLU 27
    assert default_grad_cam_layer(get_model("resnet18", 10, 32)) == "layer4.1.conv2"  # its ReLU is reused
    with pytest.raises(ValueError, match=r"^LinearNet has no nn.Conv2d for Grad-CAM; pass layer= one of: $"):
        default_grad_cam_layer(LinearNet())


def test_attribution_maps_batch_equals_one_image_at_a_time():
    model = tiny("cifar_fast")
    imgs = np.stack([random_image(16, seed=s) for s in range(3)])
    targets = [0, 2, 1]
    for method in METHODS:
        batch = attribution_maps(model, imgs, NORM, targets, method, **FAST)
        assert batch.shape == (3, 16, 16) and batch.dtype == np.float32
        for i, t in enumerate(targets):
            one = attribute(model, imgs[i], NORM, t, methods=(method,), **FAST)[method].map
            np.testing.assert_allclose(batch[i], one, atol=2e-5, err_msg=method)
    assert attribution_maps(model, imgs[:0], NORM, [], "saliency").shape == (0, 16, 16)
    with pytest.raises(ValueError, match=r"^2 targets for 3 images$"):
        attribution_maps(model, imgs, NORM, [0, 1], "saliency")


# ------------------------------------------------------------------------------------------------
# Known answers


@pytest.mark.parametrize("target, where", [(1, "tl"), (0, "tr")])
def test_grad_cam_finds_the_region_the_class_reads(target, where):
    model = QuadrantNet()
    for layer in (None, "conv"):  # default (the in-place ReLU after the conv) and the conv itself
        gc = attribute(model, two_patches(), IDENTITY, target, methods=("grad_cam",), layer=layer)["grad_cam"]
        assert gc.layer == (layer or "act")
        mass = quadrant_mass(gc.map)
        assert mass[where] > 0.9, (layer, mass)
    assert model.act.inplace is True


def test_saliency_of_linear_model_is_abs_weight_and_ig_is_input_times_weight():
    model = LinearNet()
    img = random_image(16, seed=3)
    out = attribute(model, img, NORM, 2, methods=("saliency", "integrated_gradients"), ig_steps=8)
    w = model.weight[2].detach().numpy()
    sal = out["saliency"]
    np.testing.assert_allclose(sal.raw, np.abs(w), rtol=1e-6)
    np.testing.assert_allclose(sal.map, np.abs(w).max(0) / np.abs(w).max(), rtol=1e-6)
    x = (img.transpose(2, 0, 1) / 255.0 - np.array(NORM.mean)[:, None, None]) / np.array(NORM.std)[:, None, None]
    np.testing.assert_allclose(out["integrated_gradients"].raw, x * w, rtol=1e-4, atol=1e-5)
    assert model.weight.grad is None and model.weight.requires_grad


def test_works_inside_no_grad_and_inference_mode():
    model = LinearNet()
    with torch.no_grad():
        a = attribute(model, random_image(16), NORM, 0, methods="saliency")["saliency"]
    with torch.inference_mode():
        b = attribute(model, random_image(16), NORM, 0, methods="saliency")["saliency"]
    np.testing.assert_array_equal(a.map, b.map)


def test_occlusion_geometry_scales_with_size():
    assert occlusion_geometry(32, 32) == (4, 2)
    assert occlusion_geometry(128, 96) == (12, 6)
    assert occlusion_geometry(4, 4) == (1, 1)


# ------------------------------------------------------------------------------------------------
# Errors: clear messages, and nothing left behind


@pytest.mark.parametrize("method", METHODS)
def test_exception_mid_method_leaves_no_hooks_and_restores_state(method):
    model = QuadrantNet()
    model.train()
    before = snapshot(model)
    model.armed = True
    with pytest.raises(RuntimeError, match="boom"):
        attribute(model, two_patches(), IDENTITY, 1, methods=(method,), **FAST)
    assert leftover_hooks(model) == []
    assert snapshot(model) == before and model.act.inplace is True
    assert model.conv.weight.grad is None


def test_unknown_layer_lists_the_names():
    model = tiny("cifar_fast")
    with pytest.raises(ValueError, match="layer_names") as err:
        attribute(model, random_image(16), NORM, 0, methods=("grad_cam",), layer="block9.conv")
    assert "block3.conv2" in str(err.value) and "'block9.conv'" in str(err.value)
    assert leftover_hooks(model) == []


def test_layer_without_spatial_output_is_refused_after_its_hooks_are_gone():
    model = tiny("alexnet_style")
    with pytest.raises(ValueError, match="spatial"):
        attribute(model, random_image(16), NORM, 0, methods=("grad_cam",), layer="fc8")
    assert leftover_hooks(model) == []
    assert all(m.inplace for m in model.modules() if isinstance(m, nn.ReLU))


def test_bad_arguments_say_what_to_do():
    model = QuadrantNet()
    with pytest.raises(ValueError, match=r"out of range.*2 classes"):
        attribute(model, two_patches(), IDENTITY, 2)
    with pytest.raises(ValueError, match="out of range"):
        attribute(model, two_patches(), IDENTITY, -1)
    with pytest.raises(ValueError, match="choose from"):
        attribute(model, two_patches(), IDENTITY, 0, methods=("lime",))
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        attribute(model, two_patches().astype(np.float32), IDENTITY, 0)
    with pytest.raises(ValueError, match="no nn.Conv2d"):
        attribute(LinearNet(), random_image(16), NORM, 0, methods=("grad_cam",))
    assert leftover_hooks(model) == [] and model.training


# ------------------------------------------------------------------------------------------------
# Pictures


def test_overlay_shape_dtype_and_alpha_ends():
    img = random_image(20)
    heat = np.linspace(0, 1, 20 * 20, dtype=np.float32).reshape(20, 20)
    out = overlay(img, heat, alpha=0.4)
    assert out.shape == (20, 20, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(overlay(img, heat, alpha=0.0), img)
    np.testing.assert_array_equal(overlay(img, heat, alpha=1.0), colorize(heat))
    np.testing.assert_array_equal(colorize(np.array([[0.0, 0.5, 1.0]]))[0], [[0, 0, 128], [128, 255, 128], [128, 0, 0]])
    with pytest.raises(ValueError, match="does not match"):
        overlay(img, heat[:10])
    with pytest.raises(ValueError, match="colormap"):
        overlay(img, heat, colormap="nope")


def test_attribution_panels_have_input_and_one_overlay_per_method():
    model = QuadrantNet()
    img = two_patches()
    out = attribute(model, img, IDENTITY, 1, methods=("saliency", "grad_cam", "guided_backprop"))
    panels = attribution_panels(img, out, alpha=0.5, colormap="jet", panel_px=3 * img.shape[1])
    assert panels.titles == ["input", "Saliency", "Grad-CAM (act)", "Guided backprop"]
    assert len(panels.pictures) == 4 and all(p.shape == (3 * img.shape[0], 3 * img.shape[1], 3) for p in panels.pictures)
    np.testing.assert_array_equal(panels.pictures[0][::3, ::3], img)  # whole-pixel enlargement, no blur
    np.testing.assert_array_equal(panels.pictures[2][::3, ::3], overlay(img, out["grad_cam"].map, 0.5, "jet"))
    assert panels.notes == []

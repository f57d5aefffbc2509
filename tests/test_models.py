"""The model contract: forward == head(embed), first_conv, layer_names, the registry."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnviz.models import CNN, get_model, list_models, model_spec, register_model
from cnnviz.models.alexnet import AlexNetStyle
from cnnviz.models.cifar import CifarFastNet

EXPECTED = {"alexnet", "alexnet_style", "cifar_fast", "cifar_lecture", "fast_lecture64", "fast_lecture96", "resnet18", "vgg11"}
NUM_CLASSES = 5


@pytest.fixture(scope="module")
def built():
    """Every registered model, default arguments, built once at its smallest input size."""
    torch.manual_seed(0)
    out = {}
    for name in list_models():
        size = model_spec(name).min_input_size
        out[name] = (get_model(name, NUM_CLASSES, size).eval(), size)
    yield out
    out.clear()


def test_registry_lists_the_builtin_models():
    names = list_models()
    assert names == sorted(names)
    assert EXPECTED <= set(names)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_model_builds_and_keeps_the_contract(built, name):
    model, size = built[name]
    assert isinstance(model, CNN)
    assert model.num_classes == NUM_CLASSES
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        z = model.embed(x)
        logits = model(x)
        again = model.head(z)
    assert z.shape == (2, model.embed_dim)
    assert logits.shape == (2, NUM_CLASSES)
    assert torch.isfinite(logits).all()
    torch.testing.assert_close(logits, again, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_first_conv_sees_the_rgb_input(built, name):
    model, size = built[name]
    conv = model.first_conv
    assert isinstance(conv, nn.Conv2d) and conv.in_channels == 3
    seen = []
    hooks = [m.register_forward_hook(lambda m, i, o: seen.append(m))
             for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, size, size))
    finally:
        for h in hooks:
            h.remove()
    assert seen[0] is conv, "first_conv is not the first convolution the input goes through"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_layer_names_are_retrievable_in_forward_order(built, name):
    model, size = built[name]
    names = model.layer_names()
    assert len(names) >= 5 and len(set(names)) == len(names)
    modules = [model.get_submodule(n) for n in names]
    assert all(isinstance(m, nn.Module) for m in modules)
    convs = [m for m in modules if isinstance(m, nn.Conv2d)]
    assert convs[0] is model.first_conv
    assert any(isinstance(m, nn.Linear) for m in modules)
    # every listed layer runs, and the list follows the order in which they first run
    called = []
    hooks = [m.register_forward_hook(lambda m, i, o, n=n: called.append(n) if n not in called else None)
             for n, m in zip(names, modules)]
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, size, size))
    finally:
        for h in hooks:
            h.remove()
    assert called == names


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_min_input_size_is_enforced(name):
    spec = model_spec(name)
    with pytest.raises(ValueError) as e:
        get_model(name, 3, spec.min_input_size - 1)
    assert str(spec.min_input_size) in str(e.value)


def test_cifar_fast_embed_is_4096_at_32px():
    torch.manual_seed(0)
    model = get_model("cifar_fast", 10, 32).eval()
    assert isinstance(model, CifarFastNet)
    assert model.embed_dim == 4096
    with torch.no_grad():
        z = model.embed(torch.randn(1, 3, 32, 32))
    assert z.shape == (1, 4096)
    assert model.first_conv is model.whiten


def test_cifar_fast_tiny_widths():
    model = get_model("cifar_fast", 3, 16, widths=(8, 8, 8)).eval()
    assert model.embed_dim == 8 * 2 * 2
    with torch.no_grad():
        assert model.embed(torch.randn(2, 3, 16, 16)).shape == (2, 32)


def test_alexnet_style_embed_is_its_fc7():
    torch.manual_seed(0)
    model = get_model("alexnet_style", 4, 16, width=0.125, fc6=32, fc7=24).eval()
    assert isinstance(model, AlexNetStyle)
    assert model.embed_dim == 24
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        z = model.embed(x)
        torch.testing.assert_close(model(x), model.head(z))
    assert z.shape == (2, 24) and model(x).shape == (2, 4)
    assert model.fc8.in_features == 24
    assert (z >= 0).all()  # fc7 output after its ReLU


def test_alexnet_style_default_fc7_is_4096(built):
    model, _ = built["alexnet_style"]
    assert model.embed_dim == 4096


def test_register_model_refuses_a_duplicate():
    before = model_spec("cifar_fast")
    with pytest.raises(ValueError) as e:
        @register_model("cifar_fast", "an impostor")
        def impostor(num_classes, input_size, **kw):  # pragma: no cover - never registered
            raise AssertionError
    assert "already registered" in str(e.value)
    assert model_spec("cifar_fast") is before


def test_unknown_model_lists_known_names():
    with pytest.raises(KeyError) as e:
        get_model("lenet9000", 10, 32)
    msg = e.value.args[0]
    assert "lenet9000" in msg
    for name in EXPECTED:
        assert name in msg


def _correlated_images(n: int = 64, size: int = 12, seed: int = 0) -> torch.Tensor:
    """Zero-mean images whose channels and neighbouring pixels are strongly correlated."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, 3, size + 1, size + 1, generator=g)
    smooth = base[..., 1:, 1:] + 0.7 * base[..., :-1, :-1]  # neighbouring pixels correlated
    mix = torch.tensor([[1.0, 0.8, 0.6], [0.0, 0.6, 0.7], [0.0, 0.0, 0.5]])
    return torch.einsum("dc,nchw->ndhw", mix, smooth)  # channels correlated


def _second_moment(outputs: torch.Tensor) -> torch.Tensor:
    flat = outputs.permute(0, 2, 3, 1).reshape(-1, outputs.shape[1])
    return flat.T @ flat / len(flat)


def test_cifar_fast_prepare_whitens_patches():
    model = get_model("cifar_fast", 10, 12, widths=(8, 8, 8))
    images = _correlated_images()
    k = model.whiten_kernel
    # the raw 2x2 patches are far from white
    raw = _second_moment(F.conv2d(images, torch.eye(3 * k * k).reshape(-1, 3, k, k)))
    assert (raw - torch.eye(12)).abs().max() > 0.3
    before = model.whiten.weight.clone()
    model.prepare(images)
    w = model.whiten.weight
    assert w.shape == (24, 3, k, k) and not torch.equal(w, before)
    assert not w.requires_grad
    half = w[:12]
    torch.testing.assert_close(w[12:], -half)  # second half mirrors the first
    cov = _second_moment(F.conv2d(images, half))
    torch.testing.assert_close(cov, torch.eye(12), atol=0.02, rtol=0)


def test_cifar_lecture_stem_is_learned_5x5_and_can_start_from_whitening():
    random = get_model("cifar_lecture", 10, 12, widths=(8, 8, 8))
    conv = random.first_conv
    assert conv is random.stem_conv and conv.weight.shape == (48, 3, 5, 5) and conv.weight.requires_grad
    assert random.first_conv_learned and not get_model("cifar_fast", 10, 12).first_conv_learned
    before = conv.weight.clone()
    random.prepare(_correlated_images())
    torch.testing.assert_close(conv.weight, before)  # a random stem keeps its initialisation

    model = get_model("cifar_lecture", 10, 12, widths=(8, 8, 8), stem_init="whiten")
    images = _correlated_images()
    model.prepare(images)
    w = model.stem_conv.weight
    assert w.requires_grad
    torch.testing.assert_close(w[24:], -w[:24])
    cov = _second_moment(F.conv2d(images, w[:24]))  # the 24 strongest directions, whitened
    torch.testing.assert_close(cov, torch.eye(24), atol=0.02, rtol=0)
    with pytest.raises(ValueError, match=r"^a whitening-initialised stem needs an even width of at most 150, got 47$"):
        get_model("cifar_lecture", 10, 12, stem_init="whiten", stem_width=47)
    with pytest.raises(ValueError, match=r"^stem_init must be 'random' or 'whiten', got 'pca'$"):
        get_model("cifar_lecture", 10, 12, stem_init="pca")


def test_fast_lecture64_halves_64_px_to_the_cifar_grid_with_a_learned_7x7_stride_2_stem():
    model = get_model("fast_lecture64", 20, 64)
    conv = model.first_conv
    assert conv is model.stem_conv and conv.weight.shape == (48, 3, 7, 7) and conv.stride == (2, 2)
    assert conv.weight.requires_grad and model.first_conv_learned
    assert model.embed_dim == 4096  # 256 x 4 x 4, as the CIFAR net at 32 px
    with torch.no_grad():
        assert model.embed(torch.zeros(2, 3, 64, 64)).shape == (2, 4096)
        assert model.stem_conv(torch.zeros(1, 3, 64, 64)).shape == (1, 48, 32, 32)
    assert get_model("cifar_lecture", 10, 32, widths=(8, 8, 8), stem_stride=2).embed_dim == 8 * 2 * 2
    with pytest.raises(ValueError, match=r"^stem_stride must be 1, 2, 3 or 4, got 5$"):
        get_model("cifar_lecture", 10, 32, stem_stride=5)
    spec = model_spec("fast_lecture64").train_defaults
    assert spec["batch_size"] == 256 and spec["lr"] == pytest.approx(model_spec("cifar_lecture").train_defaults["lr"] / 4)


def test_fast_lecture96_brings_96_px_to_the_same_grid_with_a_9x9_stride_3_stem():
    model = get_model("fast_lecture96", 20, 96)
    conv = model.first_conv
    assert conv.weight.shape == (48, 3, 9, 9) and conv.stride == (3, 3) and conv.padding == (4, 4)
    assert model.embed_dim == 4096
    with torch.no_grad():
        assert model.stem_conv(torch.zeros(1, 3, 96, 96)).shape == (1, 48, 32, 32)
        assert model.embed(torch.zeros(2, 3, 96, 96)).shape == (2, 4096)


def test_cifar_fast_inference_pool_equals_max_pool():
    from cnnviz.models.cifar import _MaxPool2

    pool = _MaxPool2()
    for shape in [(2, 8, 6, 6), (2, 8, 5, 7)]:  # even sides take the fast path, odd ones max_pool2d
        x = torch.randn(shape).contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            fast = pool(x)
        assert torch.equal(fast, torch.nn.functional.max_pool2d(x, 2, ceil_mode=True))
        assert fast.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(1, 2, 4, 4, requires_grad=True)
    pool(x).sum().backward()  # training keeps max_pool2d's gradient: one winner per window
    assert float(x.grad.sum()) == 8.0 and set(x.grad.unique().tolist()) == {0.0, 1.0}  # 2 channels x 4 windows


def test_tune_cpu_process_flushes_denormals():
    from cnnviz.runtime import tune_cpu_process

    torch.set_flush_denormal(False)  # earlier inference in this process may have turned it on
    try:
        tiny = torch.tensor([1e-40], dtype=torch.float32)  # a denormal float32
        assert float(tiny * 1.0) > 0.0
        tune_cpu_process()
        assert float(tiny * 1.0) == 0.0
    finally:
        torch.set_flush_denormal(False)

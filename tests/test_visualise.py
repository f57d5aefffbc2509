"""Feature visualisation (Lucid's recipe) on hand-made models with known optima."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cnnviz.inputs import Normalization
from cnnviz.inspect.visualise import cached_visualisation, visualise
from cnnviz.models.base import CNN
from cnnviz.runtime import resolve_runtime

PLAIN = Normalization((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
CPU32 = resolve_runtime("cpu", "fp32", False)


class Linear(CNN):
    """One 8x8 convolution over an 8x8 image: each channel is a linear function of the pixels."""

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.num_classes, self.embed_dim = weight.shape[0], weight.shape[0]
        self.conv = nn.Conv2d(3, weight.shape[0], 8, bias=False)
        self.conv.weight.data.copy_(weight)
        self.conv.weight.requires_grad_(False)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).flatten(1)

    def head(self, z: torch.Tensor) -> torch.Tensor:
        return z


def signs(seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.where(torch.rand(2, 3, 8, 8, generator=g) < 0.5, -1.0, 1.0)


def test_maximising_a_linear_unit_gives_the_sign_pattern_of_its_weights():
    """The optimum of w . sigmoid(z) is every pixel at 1 where its weight is positive and 0 where
    negative. Gradient ascent through the Fourier and colour parametrisation reaches it for all
    but a few pixels: those the coupled early steps drive into saturation on the wrong side stay
    there (measured: 95.8% and 96.9% of the 192 pixel values for these two units, the same at
    300 and at 1,000 steps and at learning rates from 0.01 to 1)."""
    w = signs(0)
    model = Linear(w)
    vis = visualise(model, "conv", [0, 1], PLAIN, 8, steps=300, lr=0.1, robustness=0, runtime=CPU32)
    assert vis.images.shape == (2, 8, 8, 3) and vis.images.dtype == np.uint8
    for c in range(2):
        want = w[c].permute(1, 2, 0).numpy() > 0  # (8, 8, 3): bright where the weight is positive
        got = vis.images[c] > 127
        assert (got == want).mean() >= 0.95
        # the objective reached is close to the maximum, the number of positive weights
        assert vis.objective[c] >= 0.85 * float((w[c] > 0).sum())


def test_in_plain_pixels_a_linear_unit_reaches_exactly_the_sign_pattern_of_its_weights():
    w = signs(5)
    vis = visualise(Linear(w), "conv", [0, 1], PLAIN, 8, steps=200, lr=0.1, robustness=0, fourier=False,
                    decorrelate=False, runtime=CPU32)
    for c in range(2):
        np.testing.assert_array_equal(vis.images[c] > 127, w[c].permute(1, 2, 0).numpy() > 0)
        assert vis.objective[c] == pytest.approx(float((w[c] > 0).sum()), rel=0.01)


def test_class_logits_are_the_model_output_and_seeds_reproduce():
    model = Linear(signs(1))
    a = visualise(model, None, [1], PLAIN, 8, steps=20, runtime=CPU32, seed=3)
    b = visualise(model, None, [1], PLAIN, 8, steps=20, runtime=CPU32, seed=3)
    c = visualise(model, None, [1], PLAIN, 8, steps=20, runtime=CPU32, seed=4)
    assert a.layer == "logits" and a.targets == (1,)
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.array_equal(a.images, c.images)
    with torch.no_grad():  # the objective is the logit of the final image itself
        x = torch.from_numpy(a.images).permute(0, 3, 1, 2).float() / 255
        assert model(x)[0, 1].item() == pytest.approx(float(a.objective[0]), abs=0.05 * 64)


def test_the_shared_model_is_untouched_and_bad_targets_are_refused():
    model = Linear(signs(2))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    visualise(model, "conv", [0], PLAIN, 8, steps=5, runtime=CPU32)
    with pytest.raises(ValueError, match=r"^conv has 2 channels; no channel 7$"):
        visualise(model, "conv", [0, 7], PLAIN, 8, steps=5, runtime=CPU32)
    with pytest.raises(ValueError, match=r"^nothing to visualise: give at least one channel or class$"):
        visualise(model, "conv", [], PLAIN, 8, runtime=CPU32)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    assert all(not m._forward_hooks for m in model.modules())
    assert not any(p.requires_grad for p in model.parameters())


def test_cached_visualisation_round_trip(tmp_path, monkeypatch):
    from types import SimpleNamespace

    model = Linear(signs(3))
    ckpt = SimpleNamespace(sha256="ab" * 32, model=model, runtime=CPU32,
                           meta=SimpleNamespace(input_size=8, normalization=PLAIN))
    first = cached_visualisation(ckpt, "conv", [0, 1], steps=10, cache_dir=tmp_path)
    assert len(list((tmp_path / "visualise").glob("*.npz"))) == 1
    import cnnviz.inspect.visualise as vmod

    monkeypatch.setattr(vmod, "visualise", lambda *a, **k: (_ for _ in ()).throw(AssertionError("recomputed")))
    again = cached_visualisation(ckpt, "conv", [0, 1], steps=10, cache_dir=tmp_path)
    np.testing.assert_array_equal(first.images, again.images)
    np.testing.assert_array_equal(first.objective, again.objective)
    with pytest.raises(AssertionError, match="recomputed"):  # other steps: another entry
        cached_visualisation(ckpt, "conv", [0, 1], steps=11, cache_dir=tmp_path)

"""Deletion / insertion curves on a toy model whose answer is known by hand, baseline maps, the
report, argument errors, and the shared model left as found."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch
from torch import nn

from cnnviz.inputs import Normalization
from cnnviz.inspect.faithfulness import baseline_maps, deletion_insertion, faithfulness_report
from cnnviz.models import CNN, get_model

NORM = Normalization((0.5, 0.4, 0.3), (0.25, 0.25, 0.25))  # red 255 -> +2.0, red 0 -> -2.0
SCALE = 0.5


class PatchNet(CNN):
    """Two classes: ``logit 0 = 0``, ``logit 1 = SCALE * (sum of the normalised red channel over
    the 2x2 patch at rows 1-2, columns 1-2)``; every other pixel and channel is ignored."""

    def __init__(self, size: int = 4):
        super().__init__()
        self.num_classes, self.embed_dim = 2, 1
        w = torch.zeros(3, size, size)
        w[0, 1:3, 1:3] = SCALE
        self.weight = nn.Parameter(w)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.weight).flatten(1).sum(1, keepdim=True)

    def head(self, z: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.zeros_like(z), z], 1)


def patch_image(size: int = 4, seed: int = 0) -> np.ndarray:
    """Random colours, with the patch's red channel at 255."""
    img = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    img[1:3, 1:3, 0] = 255
    return img


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def trapezoid(ys: list[float], xs: list[float]) -> float:
    return sum((ys[i] + ys[i + 1]) / 2 * (xs[i + 1] - xs[i]) for i in range(len(ys) - 1))


def exact(message: str) -> str:
    return "^" + re.escape(message) + "$"


# ------------------------------------------------------------------------------------------------
# Curves by hand


def test_deletion_and_insertion_equal_a_hand_computation():
    # Pixel indices y*4+x: the patch is {5, 6, 9, 10}. Map: 5 first, then the tie at 0.5 broken by
    # index (0, 6, 10, 15), then the zeros by index. Order: 5 0 6 10 | 15 1 2 3 | 4 7 8 9 | 11 ...
    m = np.zeros((4, 4), np.float32)
    m[1, 1] = 1.0
    m[0, 0] = m[1, 2] = m[2, 2] = m[3, 3] = 0.5
    curves = deletion_insertion(PatchNet(), patch_image()[None], NORM, [1], m[None], steps=4)

    # Each patch pixel is worth SCALE * 2.0 = 1; a removed one is the mean colour, worth 0 (black
    # would be worth -1). Deletion keeps patch pixels 4, 1 (pixel 9), 1, 0, 0; insertion has put
    # back 0, 3 (5, 6, 10), 3, 4, 4.
    fractions = [0.0, 0.25, 0.5, 0.75, 1.0]
    deletion = [sigmoid(z) for z in (4, 1, 1, 0, 0)]
    insertion = [sigmoid(z) for z in (0, 3, 3, 4, 4)]
    np.testing.assert_allclose(curves.fractions, fractions)
    np.testing.assert_allclose(curves.deletion[0], deletion, rtol=1e-6)
    np.testing.assert_allclose(curves.insertion[0], insertion, rtol=1e-6)
    assert curves.deletion_auc[0] == pytest.approx(trapezoid(deletion, fractions), rel=1e-6)
    assert curves.insertion_auc[0] == pytest.approx(trapezoid(insertion, fractions), rel=1e-6)
    assert curves.deletion_auc[0] == pytest.approx(0.25 * (sigmoid(4) / 2 + 2 * sigmoid(1) + 0.75), rel=1e-6)


def test_steps_round_the_pixel_counts_and_batching_does_not_matter():
    img = np.stack([patch_image(seed=s) for s in range(3)])
    maps = baseline_maps(img, "random", seed=1)
    maps[1] = maps[0]  # images 0 and 1 differ only where the model does not look
    one = deletion_insertion(PatchNet(), img, NORM, [1, 0, 1], maps, steps=3, batch_size=1)
    many = deletion_insertion(PatchNet(), img, NORM, [1, 0, 1], maps, steps=3, batch_size=64)
    np.testing.assert_allclose(one.fractions, [0, 5 / 16, 11 / 16, 1])  # round(16/3), round(32/3)
    np.testing.assert_allclose(one.deletion, many.deletion, atol=1e-7)
    np.testing.assert_allclose(one.insertion, many.insertion, atol=1e-7)
    # Class 0 and class 1 probabilities add up to one at every step; both ends are shared.
    np.testing.assert_allclose(one.deletion[0] + one.deletion[1], 1, atol=1e-6)
    np.testing.assert_allclose(one.deletion[:, 0], one.insertion[:, -1], atol=1e-7)
    np.testing.assert_allclose(one.deletion[:, -1], [0.5, 0.5, 0.5], atol=1e-7)


def test_a_perfect_map_beats_its_reverse_and_random_maps():
    img = np.stack([patch_image(8, seed=s) for s in range(4)])
    img[:, 1:3, 1:3, 0] = 255
    perfect = np.tile(np.linspace(0, 0.5, 64, dtype=np.float32).reshape(8, 8), (4, 1, 1))
    perfect[:, 1:3, 1:3] = 1.0
    model, targets = PatchNet(8), [1] * 4
    best = deletion_insertion(model, img, NORM, targets, perfect, steps=16)
    worst = deletion_insertion(model, img, NORM, targets, -perfect, steps=16)
    rand = deletion_insertion(model, img, NORM, targets, baseline_maps(img, "random"), steps=16)
    assert (best.deletion_auc < rand.deletion_auc).all() and (rand.deletion_auc < worst.deletion_auc).all()
    assert (best.insertion_auc > rand.insertion_auc).all() and (rand.insertion_auc > worst.insertion_auc).all()
    # The perfect map removes the whole patch (4 pixels) at the first step (4 pixels per step).
    np.testing.assert_allclose(best.deletion[:, 1:], 0.5, atol=1e-7)
    np.testing.assert_allclose(best.insertion[:, 1:], sigmoid(4), rtol=1e-6)


# ------------------------------------------------------------------------------------------------
# Baseline maps


def test_sobel_is_largest_on_a_step_edge():
    img = np.zeros((1, 6, 8, 3), np.uint8)
    img[:, :, 4:] = 200
    m = baseline_maps(img, "sobel")
    assert m.shape == (1, 6, 8) and m.dtype == np.float32
    np.testing.assert_array_equal(m[0, :, 3:5], 1.0)  # the two columns either side of the edge
    np.testing.assert_array_equal(np.delete(m[0], [3, 4], axis=1), 0.0)  # reflected border: flat


def test_random_maps_are_reproducible_per_seed():
    img = np.zeros((2, 5, 7, 3), np.uint8)
    a, b, c = (baseline_maps(img, "random", seed=s) for s in (3, 3, 4))
    assert a.shape == (2, 5, 7) and a.dtype == np.float32 and 0 <= a.min() and a.max() < 1
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


# ------------------------------------------------------------------------------------------------
# Report, shared model


def _hooks(model: nn.Module) -> list[str]:
    names = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_full_backward_hooks", "_backward_pre_hooks")
    return [f"{n}.{a}" for n, m in model.named_modules() for a in names if getattr(m, a, None)]


def test_report_scores_methods_then_baselines_and_leaves_the_model_as_found():
    torch.manual_seed(0)
    model = get_model("cifar_fast", 3, 16, widths=(8, 16, 16))
    model.train()  # BatchNorm in training mode would update its running statistics
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flags = [m.training for m in model.modules()]
    img = np.random.default_rng(0).integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    calls = []
    report = faithfulness_report(model, img, NORM, [0, 1, 2], methods=("saliency", "grad_cam"), steps=4,
                                 progress=lambda d, t: calls.append((d, t)), chunk=2)
    assert [r["method"] for r in report.rows()] == ["saliency", "grad_cam", "random", "sobel"]
    assert [r["kind"] for r in report.rows()] == ["method", "method", "baseline", "baseline"]
    assert calls == [(2, 12), (3, 12), (5, 12), (6, 12), (8, 12), (9, 12), (11, 12), (12, 12)]
    assert report.n == 3 and report.steps == 4 and report.scores[0].mean_deletion.shape == (5,)
    # The random row is the mean of deletion_insertion on the same random maps.
    direct = deletion_insertion(model, img, NORM, [0, 1, 2], baseline_maps(img, "random"), steps=4)
    assert report.rows()[2]["deletion_auc"] == pytest.approx(direct.deletion_auc.mean(), rel=1e-6)
    assert report.rows()[2]["insertion_auc_std"] == pytest.approx(direct.insertion_auc.std(), rel=1e-5, abs=1e-9)
    np.testing.assert_allclose(report.scores[2].mean_insertion, direct.insertion.mean(0), rtol=1e-6)
    assert json.loads(json.dumps(report.to_dict()))["methods"][3]["method"] == "sobel"

    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert [m.training for m in model.modules()] == flags and model.training
    assert _hooks(model) == [] and all(p.grad is None for p in model.parameters())


def test_the_hand_model_scores_saliency_as_perfect():
    img = np.stack([patch_image(8, seed=s) for s in range(2)])
    img[:, 1:3, 1:3, 0] = 255
    report = faithfulness_report(PatchNet(8), img, NORM, [1, 1], methods=("saliency",), steps=16)
    saliency, rand = report.rows()[0], report.rows()[1]
    # Saliency is non-zero on the patch only: the patch goes first (at the first step: 4 pixels).
    assert saliency["deletion_auc"] == pytest.approx(sigmoid(4) / 32 + 0.5 * 31 / 32, rel=1e-6)
    assert saliency["deletion_auc"] < rand["deletion_auc"] and saliency["insertion_auc"] > rand["insertion_auc"]


# ------------------------------------------------------------------------------------------------
# Argument errors


def test_argument_errors_are_exact():
    img, m = patch_image()[None], np.zeros((1, 4, 4), np.float32)
    with pytest.raises(ValueError, match=exact(
            "maps must have shape (N, H, W) = (1, 4, 4) to match the images, got (1, 4, 5)")):
        deletion_insertion(PatchNet(), img, NORM, [1], np.zeros((1, 4, 5)))
    with pytest.raises(ValueError, match=exact("steps must be an integer >= 1, got 0")):
        deletion_insertion(PatchNet(), img, NORM, [1], m, steps=0)
    with pytest.raises(ValueError, match=exact(
            "images must be (N, H, W, 3) uint8, got shape (1, 4, 4, 3) dtype float32")):
        deletion_insertion(PatchNet(), img.astype(np.float32), NORM, [1], m)
    with pytest.raises(ValueError, match=exact("2 targets for 1 images")):
        deletion_insertion(PatchNet(), img, NORM, [1, 0], m)
    with pytest.raises(ValueError, match=exact("targets must be in 0..1 (the model has 2 classes), got 2..2")):
        deletion_insertion(PatchNet(), img, NORM, [2], m)
    with pytest.raises(ValueError, match=exact("maps must be finite (no NaN or inf)")):
        deletion_insertion(PatchNet(), img, NORM, [1], np.full((1, 4, 4), np.nan))
    with pytest.raises(ValueError, match=exact("unknown baseline map kind 'centre'; choose from random, sobel")):
        baseline_maps(img, "centre")
    with pytest.raises(ValueError, match=exact(
            "unknown method(s) or baseline(s) ['lrp', 'centre']; methods: saliency, integrated_gradients, "
            "grad_cam, occlusion, guided_backprop; baselines: random, sobel")):
        faithfulness_report(PatchNet(), img, NORM, [1], methods=("saliency", "lrp"), baselines=("centre",))

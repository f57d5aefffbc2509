"""Units of a layer, known answers: a hand-set red-square detector's top images and peaks, the
crop around a peak, the on-disk cache, knock-outs of a hand-set 2-class model, and the shared
model left untouched (also when a call fails half-way, and while another thread predicts)."""

from __future__ import annotations

import copy
import re
import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cnnviz.inspect.units as units
from cnnviz.checkpoints import Checkpoint, CheckpointMeta
from cnnviz.data import ImageDataset, Preprocess
from cnnviz.evaluate import predict_logits
from cnnviz.hooks import model_view
from cnnviz.inputs import Normalization
from cnnviz.inspect.receptive_field import layer_rf
from cnnviz.inspect.units import (KnockoutResult, UnitCrop, cached_unit_examples, knocked_out, knockout,
                                  unit_crop, unit_examples, unit_importance, unit_patch)
from cnnviz.models.base import CNN
from cnnviz.runtime import resolve_runtime

from test_hooks import hooks_left

SIZE = 20
CPU32 = resolve_runtime("cpu", "fp32", False)
PLAIN = Normalization((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))  # inputs are pixel / 255
RED, GREEN = (255, 0, 0), (0, 255, 0)


def gaussian7(sigma: float = 1.5) -> torch.Tensor:
    d = torch.arange(-3, 4, dtype=torch.float32)
    g = torch.exp(-d ** 2 / (2 * sigma ** 2))
    return torch.outer(g, g)


def detector_weight() -> torch.Tensor:
    """``(2, 3, 7, 7)``: channel 0 a Gaussian on R - G - B, channel 1 the Gaussian on G."""
    g = gaussian7()
    w = torch.zeros(2, 3, 7, 7)
    w[0, 0], w[0, 1], w[0, 2] = g, -g, -g
    w[1, 1] = g
    return w


class Detector(CNN):
    """conv (hand-set) -> ReLU -> global average pool -> fc (10 * identity, bias (0, 0.1)):
    class 0 = "some red", class 1 = everything else."""

    def __init__(self, channels: int = 2, seed: int | None = None):
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 7, padding=3, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, 2)
        self.num_classes, self.embed_dim = 2, channels
        with torch.no_grad():
            if seed is None:
                self.conv.weight.copy_(detector_weight())
                self.fc.weight.copy_(torch.eye(2) * 10)
                self.fc.bias.copy_(torch.tensor([0.0, 0.1]))
            else:
                gen = torch.Generator().manual_seed(seed)
                self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=gen) * 0.1)
                self.fc.weight.copy_(torch.randn(self.fc.weight.shape, generator=gen))
                self.fc.bias.zero_()

    def embed(self, x):
        return self.pool(self.relu(self.conv(x))).flatten(1)

    def head(self, z):
        return self.fc(z)


def square(color, side: int, cy: int, cx: int) -> np.ndarray:
    img = np.zeros((SIZE, SIZE, 3), np.uint8)
    h = side // 2
    img[cy - h:cy + h + 1, cx - h:cx + h + 1] = color
    return img


# Red squares: side -> centres (all at least 3 px from the border, so the 7x7 square fits and
# every unit that sees it lies inside the 20x20 map).
RED_SQUARES = {7: [(5, 6), (10, 13), (14, 8)], 5: [(4, 15), (12, 5), (9, 9)],
               3: [(15, 15), (6, 10), (8, 4)], 1: [(11, 11), (4, 4), (16, 7)]}
GREEN_SQUARES = [(5, (9, 9)), (3, (6, 12)), (5, (14, 14)), (1, (10, 5))]


def build_set():
    """Images interleaved (not sorted by kind), with each image's kind."""
    items = []
    for side, centres in RED_SQUARES.items():
        for c in centres:
            items.append((("red", side, c), square(RED, side, *c)))
    for side, c in GREEN_SQUARES:
        items.append((("green", side, c), square(GREEN, side, *c)))
    items.append((("blank", 0, None), np.zeros((SIZE, SIZE, 3), np.uint8)))
    items.append((("blank", 0, None), np.zeros((SIZE, SIZE, 3), np.uint8)))
    full = np.zeros((SIZE, SIZE, 3), np.uint8)
    full[:] = GREEN
    items.append((("full_green", 0, None), full))
    order = np.random.default_rng(3).permutation(len(items))
    kinds = [items[i][0] for i in order]
    images = np.stack([items[i][1] for i in order])
    return images, kinds


IMAGES, KINDS = build_set()
N = len(IMAGES)
LABELS = np.array([0 if k[0] == "red" else 1 for k in KINDS], np.int64)
N_RED = int((LABELS == 0).sum())


def idx(kind: str, side: int | None = None) -> set[int]:
    return {i for i, k in enumerate(KINDS) if k[0] == kind and (side is None or k[1] == side)}


def state_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_untouched(model: nn.Module, before: dict[str, torch.Tensor], modes: list[bool]) -> None:
    after = model.state_dict()
    assert after.keys() == before.keys()
    for k, v in before.items():
        assert torch.equal(after[k], v), k
    assert hooks_left(model) == []
    assert [m.training for m in model.modules()] == modes
    assert model.relu.inplace is True  # the views turn it off, never the model


# ---------------------------------------------------------------------------------------------
# 1. Top-k of a hand-set red-square detector


def test_red_square_detector_top_bottom_and_peaks():
    model = Detector()
    ex = unit_examples(model, IMAGES, "conv", PLAIN, CPU32, batch_size=7)
    assert ex.layer == "conv" and ex.channels == 2 and ex.map_size == (SIZE, SIZE)
    assert ex.peak.shape == (N, 2) and ex.peak.dtype == np.float32
    assert ex.where.shape == (N, 2) and ex.where.dtype == np.int32

    # Largest red squares first, side by side (within one side any order).
    top = ex.top(0, 12)
    assert [set(top[i:i + 3].tolist()) for i in range(0, 12, 3)] == [idx("red", s) for s in (7, 5, 3, 1)]
    assert len(ex.top(0, 100)) == N
    for i in top:
        assert ex.peak_at(int(i), 0) == KINDS[i][2], (i, KINDS[i])

    # Nothing red: the whole-green image is the only one whose best unit is below 0 (every unit
    # sees some green); small green squares and blanks peak at exactly 0 (units far away see
    # black), tied, so in index order.
    non_red = sorted(idx("green") | idx("blank") | idx("full_green"))
    (full,) = idx("full_green")
    assert ex.peak[full, 0] < 0
    assert ex.bottom(0, 1).tolist() == [full]
    assert ex.bottom(0, len(non_red)).tolist() == [full] + [i for i in non_red if i != full]
    assert set(ex.bottom(0, len(non_red)).tolist()) == set(non_red)
    assert all(ex.peak[i, 0] == 0 for i in non_red if i != full)
    assert all(ex.peak[i, 0] > 0 for i in idx("red"))

    # Channel 1 (green): the whole-green image is on top, then the 5x5 green squares.
    assert ex.top(1, 1).tolist() == [full]
    assert set(ex.top(1, 3)[1:].tolist()) == idx("green", 5)
    for i in idx("green"):
        assert ex.peak_at(i, 1) == KINDS[i][2]
    assert all(ex.peak[i, 1] == 0 for i in idx("red") | idx("blank"))

    # An independent computation: F.conv2d on pixel / 255, max over the map.
    x = torch.from_numpy(IMAGES).permute(0, 3, 1, 2).float() / 255
    maps = F.conv2d(x, detector_weight(), padding=3).flatten(2)
    np.testing.assert_allclose(ex.peak, maps.max(2).values.numpy(), rtol=1e-6, atol=1e-6)
    red = sorted(idx("red"))
    assert np.array_equal(ex.where[red, 0], maps[red, 0].argmax(1).numpy())
    # And by hand: a red square of side s fully inside the map peaks at the Gaussian's sum over
    # its central s x s block.
    g = gaussian7().double()
    for i in red:
        h = KINDS[i][1] // 2
        assert ex.peak[i, 0] == pytest.approx(float(g[3 - h:4 + h, 3 - h:4 + h].sum()), rel=1e-6)

    counts, edges = ex.histogram(0, bins=5)
    assert counts.sum() == N and len(counts) == 5 and len(edges) == 6
    assert edges[0] == ex.peak[:, 0].min() and edges[-1] == pytest.approx(ex.peak[:, 0].max())
    assert counts[0] == 1  # the whole-green image (about -5.5) alone in the lowest fifth
    assert ex.histogram(0, bins=30)[0].sum() == N


def test_unit_examples_of_the_pooled_layer_and_bad_names():
    model = Detector()
    ex = unit_examples(model, IMAGES, "pool", PLAIN, CPU32)
    assert ex.map_size == (1, 1) and (ex.where == 0).all()
    expected = F.relu(F.conv2d(torch.from_numpy(IMAGES).permute(0, 3, 1, 2).float() / 255,
                               detector_weight(), padding=3)).mean((2, 3)).numpy()
    np.testing.assert_allclose(ex.peak, expected, rtol=1e-5, atol=1e-7)
    # fc outputs (N, 2): one "position" per image
    ex_fc = unit_examples(model, IMAGES, "fc", PLAIN, CPU32)
    assert ex_fc.map_size == (1, 1)
    np.testing.assert_allclose(ex_fc.peak, predict_logits(model, IMAGES, PLAIN, CPU32), rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match=r"^Detector has no layer 'nope'; pick one of: conv, relu, pool, fc$"):
        unit_examples(model, IMAGES, "nope", PLAIN, CPU32)
    with pytest.raises(ValueError, match=r"^no images to look at$"):
        unit_examples(model, IMAGES[:0], "conv", PLAIN, CPU32)


# ---------------------------------------------------------------------------------------------
# 2. Crops centred on the peak


def test_crops_centred_on_the_peak():
    model = Detector()
    rf = layer_rf(model, "conv", SIZE)
    assert rf.size == (7, 7) and rf.jump == (1, 1) and rf.start == (0, 0) and rf.out_size == (SIZE, SIZE)
    ex = unit_examples(model, IMAGES, "conv", PLAIN, CPU32)
    for i in ex.top(0, 3):  # the 7x7 red squares
        cy, cx = KINDS[i][2]
        y, x = ex.peak_at(int(i), 0)
        crop = unit_crop(rf, y, x, SIZE)
        assert crop.box == crop.full == (cy - 3, cx - 3, cy + 4, cx + 4)
        assert not crop.clipped
        patch = unit_patch(IMAGES[i], crop)
        assert patch.shape == (7, 7, 3) and patch.dtype == np.uint8
        assert (patch == np.array(RED, np.uint8)).all()  # the whole square, nothing else
        assert np.array_equal(patch, IMAGES[i][cy - 3:cy + 4, cx - 3:cx + 4])

    corner = unit_crop(rf, 1, 1, SIZE)
    assert corner == UnitCrop((0, 0, 5, 5), (-2, -2, 5, 5))
    assert corner.clipped and corner.box == (0, 0, 5, 5) and corner.full == (-2, -2, 5, 5)
    img = np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    patch = unit_patch(img, corner)
    assert patch.shape == (7, 7, 3)
    assert np.array_equal(patch[2:, 2:], img[0:5, 0:5])
    assert (patch[:2] == 128).all() and (patch[:, :2] == 128).all()
    teal = unit_patch(img, corner, fill=(0, 128, 255))
    assert np.array_equal(teal[2:, 2:], img[0:5, 0:5])
    assert (teal[:2] == np.array([0, 128, 255], np.uint8)).all()
    assert (teal[:, :2] == np.array([0, 128, 255], np.uint8)).all()

    far = unit_crop(rf, SIZE - 1, SIZE - 2, SIZE)  # bottom-right corner
    assert far.full == (16, 15, 23, 22) and far.box == (16, 15, 20, 20) and far.clipped
    p = unit_patch(img, far)
    assert np.array_equal(p[:4, :5], img[16:20, 15:20]) and (p[4:] == 128).all() and (p[:, 5:] == 128).all()
    with pytest.raises(ValueError, match=r"^unit \(20, 0\) is outside conv's 20x20 grid$"):
        unit_crop(rf, SIZE, 0, SIZE)


# ---------------------------------------------------------------------------------------------
# 3. Caching


def make_ckpt(model: nn.Module, sha: str = "ab" * 32) -> Checkpoint:
    meta = CheckpointMeta(arch="detector", classes=["red", "other"], preprocess=Preprocess(SIZE),
                          normalization=PLAIN)
    return Checkpoint(model=model, meta=meta, path=None, sha256=sha, runtime=CPU32)


def make_dataset(fingerprint: str = "fp0001") -> ImageDataset:
    return ImageDataset(IMAGES, LABELS, ["red", "other"], [f"img{i:02d}.png" for i in range(N)], fingerprint,
                        Preprocess(SIZE))


def test_cached_unit_examples(tmp_path, monkeypatch):
    ckpt, ds = make_ckpt(Detector()), make_dataset()
    calls = []
    real = units.unit_examples

    def counting(*args, **kwargs):
        calls.append(args[2])
        return real(*args, **kwargs)

    monkeypatch.setattr(units, "unit_examples", counting)
    first = cached_unit_examples(ckpt, ds, "test", "conv", cache_dir=tmp_path)
    assert calls == ["conv"]
    files = sorted((tmp_path / "units").iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz"
    assert files[0].name.startswith(("ab" * 8) + "-fp0001-")
    direct = real(ckpt.model, IMAGES, "conv", PLAIN, CPU32)
    assert np.array_equal(first.peak, direct.peak) and np.array_equal(first.where, direct.where)

    def refuse(*args, **kwargs):
        raise AssertionError("computed again instead of read from the cache")

    monkeypatch.setattr(units, "unit_examples", refuse)
    again = cached_unit_examples(ckpt, ds, "test", "conv", cache_dir=tmp_path)
    assert again.layer == "conv" and again.map_size == (SIZE, SIZE) == first.map_size
    assert again.peak.dtype == np.float32 and again.where.dtype == np.int32
    assert np.array_equal(again.peak, first.peak) and np.array_equal(again.where, first.where)
    assert again.top(0, 5).tolist() == first.top(0, 5).tolist()

    monkeypatch.setattr(units, "unit_examples", counting)
    calls.clear()
    pooled = cached_unit_examples(ckpt, ds, "test", "pool", cache_dir=tmp_path)  # another layer
    assert calls == ["pool"] and pooled.map_size == (1, 1)
    cached_unit_examples(ckpt, make_dataset("fp0002"), "test", "conv", cache_dir=tmp_path)  # another data set
    assert calls == ["pool", "conv"]
    cached_unit_examples(make_ckpt(ckpt.model, "cd" * 32), ds, "test", "conv", cache_dir=tmp_path)  # other weights
    assert calls == ["pool", "conv", "conv"]
    cached_unit_examples(ckpt, ds, "train", "conv", cache_dir=tmp_path)  # another split
    assert calls == ["pool", "conv", "conv", "conv"]
    assert len(list((tmp_path / "units").glob("*.npz"))) == 5
    assert not list((tmp_path / "units").glob("*.tmp"))

    # A damaged file is recomputed (and rewritten), not an error.
    files[0].write_bytes(b"not a zip")
    calls.clear()
    fixed = cached_unit_examples(ckpt, ds, "test", "conv", cache_dir=tmp_path)
    assert calls == ["conv"] and np.array_equal(fixed.peak, first.peak)
    monkeypatch.setattr(units, "unit_examples", refuse)
    assert np.array_equal(cached_unit_examples(ckpt, ds, "test", "conv", cache_dir=tmp_path).where, first.where)


# ---------------------------------------------------------------------------------------------
# 4. Knock-out


def test_knockout_of_the_red_channel():
    model = Detector()
    assert np.array_equal(predict_logits(model, IMAGES, PLAIN, CPU32).argmax(1), LABELS)
    r = knockout(model, IMAGES, LABELS, "conv", [0], PLAIN, CPU32, batch_size=6)
    assert isinstance(r, KnockoutResult) and r.layer == "conv" and r.channels == (0,)
    assert r.recall_before.tolist() == [1.0, 1.0]
    assert r.recall_after.tolist() == [0.0, 1.0]
    assert r.recall_change.tolist() == [-1.0, 0.0]
    assert r.confusion_before.tolist() == [[N_RED, 0], [0, N - N_RED]]
    assert r.confusion_after.tolist() == [[0, N_RED], [0, N - N_RED]]
    assert r.accuracy_before == 1.0
    assert r.accuracy_after == (N - N_RED) / N

    # The green channel: red images never use it, and the rest are still "not red" without it
    # (blank and green images score (0, 0.1)).
    g = knockout(model, IMAGES, LABELS, "conv", np.array([1]), PLAIN, CPU32)
    assert g.channels == (1,) and g.recall_after.tolist() == [1.0, 1.0] and g.accuracy_after == 1.0
    both = knockout(model, IMAGES, LABELS, "relu", [0, 1], PLAIN, CPU32)  # a layer without out_channels
    assert both.confusion_after.tolist() == [[0, N_RED], [0, N - N_RED]]

    # Only red images: the other class has no images, recall NaN.
    red = LABELS == 0
    only = knockout(model, IMAGES[red], LABELS[red], "conv", [0], PLAIN, CPU32)
    assert only.recall_before[0] == 1.0 and np.isnan(only.recall_before[1]) and np.isnan(only.recall_after[1])
    assert only.confusion_before.tolist() == [[N_RED, 0], [0, 0]]
    assert only.confusion_after.tolist() == [[0, N_RED], [0, 0]]

    with pytest.raises(ValueError, match="^" + re.escape("conv has channels 0-1; no channel 2, 5") + "$"):
        knockout(model, IMAGES, LABELS, "conv", [0, 2, 5], PLAIN, CPU32)
    with pytest.raises(ValueError, match="^" + re.escape("conv has channels 0-1; no channel -1") + "$"):
        knockout(model, IMAGES, LABELS, "conv", [-1], PLAIN, CPU32)
    with pytest.raises(ValueError, match=r"^a knock-out needs labelled images$"):
        knockout(model, IMAGES, np.full(N, -1), "conv", [0], PLAIN, CPU32)
    with pytest.raises(ValueError, match=r"^a knock-out needs labelled images$"):
        knockout(model, IMAGES[:0], LABELS[:0], "conv", [0], PLAIN, CPU32)
    with pytest.raises(ValueError, match=r"^Detector has no layer 'conv9'"):
        knockout(model, IMAGES, LABELS, "conv9", [0], PLAIN, CPU32)


def test_unit_importance_ranks_the_red_channel_first():
    model = Detector()
    imp = unit_importance(model, IMAGES, LABELS, "conv", 0, PLAIN, runtime=CPU32, batch_size=5)
    assert imp.shape == (2,) and imp.dtype == np.float32
    assert imp[0] > 0.3
    assert imp[1] == 0.0  # red images have no green: zeroing channel 1 changes nothing at all
    assert np.argsort(-imp)[0] == 0

    # By hand: intact, class 0's logit is 10 * the mean of ReLU(channel 0), class 1's is 0.1;
    # without channel 0 every red image scores (0, 0.1).
    x = torch.from_numpy(IMAGES[LABELS == 0]).permute(0, 3, 1, 2).double() / 255
    a = F.relu(F.conv2d(x, detector_weight().double(), padding=3))[:, 0].mean((1, 2)).numpy()
    p_intact = 1 / (1 + np.exp(0.1 - 10 * a))
    p_without = 1 / (1 + np.exp(0.1))
    assert imp[0] == pytest.approx(p_intact.mean() - p_without, rel=1e-5)

    # Class 1: blank images score (0, 0.1) anyway; green ones lean on channel 1 only.
    imp1 = unit_importance(model, IMAGES, LABELS, "conv", 1, PLAIN, runtime=CPU32)
    assert imp1[0] == 0.0 and imp1[1] > 0

    only1 = unit_importance(model, IMAGES, LABELS, "conv", 0, PLAIN, channels=[1], runtime=CPU32)
    assert only1.tolist() == [0.0, 0.0]
    seen = []
    unit_importance(model, IMAGES, LABELS, "conv", 0, PLAIN, runtime=CPU32, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(1, 2), (2, 2)]
    with pytest.raises(ValueError, match=r"^the model has classes 0-1; no class 5$"):
        unit_importance(model, IMAGES, LABELS, "conv", 5, PLAIN, runtime=CPU32)


# ---------------------------------------------------------------------------------------------
# 5. The shared model is never changed


@pytest.mark.parametrize("training", [False, True])
def test_the_shared_model_is_never_changed(training):
    model = Detector().train(training)
    before, modes = state_copy(model), [m.training for m in model.modules()]
    ex = unit_examples(model, IMAGES, "conv", PLAIN, CPU32, batch_size=4)
    r = knockout(model, IMAGES, LABELS, "conv", [0], PLAIN, CPU32, batch_size=4)
    imp = unit_importance(model, IMAGES, LABELS, "conv", 0, PLAIN, runtime=CPU32, batch_size=4)
    assert_untouched(model, before, modes)
    # ... and a second round gives the same answers: nothing stayed behind.
    assert np.array_equal(unit_examples(model, IMAGES, "conv", PLAIN, CPU32).peak, ex.peak)
    assert np.array_equal(knockout(model, IMAGES, LABELS, "conv", [0], PLAIN, CPU32).confusion_after,
                          r.confusion_after)
    assert np.array_equal(unit_importance(model, IMAGES, LABELS, "conv", 0, PLAIN, runtime=CPU32), imp)
    # The intact model still predicts as before (the knock-out hook is gone).
    assert np.array_equal(predict_logits(model, IMAGES, PLAIN, CPU32).argmax(1), LABELS)
    assert_untouched(model, before, modes)


def stop_on_second_call():
    calls = []

    def progress(done, total):
        calls.append((done, total))
        if len(calls) == 2:
            raise RuntimeError("stop")

    return progress, calls


@pytest.mark.parametrize("call", ["unit_examples", "knockout", "unit_importance"])
def test_unchanged_after_an_exception_half_way(call):
    model = Detector().train()
    before, modes = state_copy(model), [m.training for m in model.modules()]
    progress, calls = stop_on_second_call()
    with pytest.raises(RuntimeError, match="^stop$"):
        if call == "unit_examples":
            unit_examples(model, IMAGES, "conv", PLAIN, CPU32, batch_size=5, progress=progress)
        elif call == "knockout":
            knockout(model, IMAGES, LABELS, "conv", [0], PLAIN, CPU32, batch_size=5, progress=progress)
        else:
            unit_importance(model, IMAGES, LABELS, "conv", 0, PLAIN, runtime=CPU32, batch_size=5,
                            progress=progress)
    expected_second = (2, 2) if call == "unit_importance" else (10, N)
    assert calls[-1] == expected_second
    assert_untouched(model, before, modes)
    assert np.array_equal(predict_logits(model, IMAGES, PLAIN, CPU32).argmax(1), LABELS)


def test_knocked_out_on_a_view_removes_its_hook():
    model = Detector()
    view = model_view(model)
    x = torch.from_numpy(IMAGES).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        intact = view(x)
        with knocked_out(view, "conv", [0]):
            assert len(view.conv._forward_hooks) == 1
            assert hooks_left(model) == []
            knocked = view(x)
            assert torch.equal(model(x), intact)  # the model itself never sees the hook
        assert hooks_left(view) == []
        assert torch.equal(view(x), intact)
        # Without channel 0 every image is (0, 0.1) + 10 * channel 1: all "not red".
        assert (knocked.argmax(1) == 1).all() and (knocked[:, 0] == 0).all()

        with pytest.raises(KeyError, match="inside"):
            with knocked_out(view, "conv", [0, 1]):
                assert (view(x) == torch.tensor([0.0, 0.1])).all()
                raise KeyError("inside")
        assert hooks_left(view) == [] and hooks_left(model) == []
        assert torch.equal(view(x), intact)
    assert model.relu.inplace is True and view.relu.inplace is False and not view.training


# ---------------------------------------------------------------------------------------------
# 6. A concurrent plain prediction is unaffected


def test_concurrent_prediction_is_unaffected():
    model = Detector(channels=16, seed=1)
    rng = np.random.default_rng(7)
    many = rng.integers(0, 256, (240, SIZE, SIZE, 3), dtype=np.uint8)
    labels = rng.integers(0, 2, 240)
    probe = many[:40]
    expected = predict_logits(model, probe, PLAIN, CPU32)
    first_imp = unit_importance(model, many, labels, "conv", 0, PLAIN, runtime=CPU32, batch_size=64)
    assert first_imp.shape == (16,) and np.abs(first_imp).max() > 0

    done, errors, rounds = threading.Event(), [], []

    def knock_loop():
        try:
            while not done.is_set():
                rounds.append(unit_importance(model, many, labels, "conv", 0, PLAIN, runtime=CPU32, batch_size=64))
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    t = threading.Thread(target=knock_loop, daemon=True)
    t.start()
    try:
        results = [predict_logits(model, probe, PLAIN, CPU32, batch_size=8) for _ in range(20)]
        while not rounds and t.is_alive():  # make sure at least one round overlapped
            results.append(predict_logits(model, probe, PLAIN, CPU32, batch_size=8))
    finally:
        done.set()
        t.join(60)
    assert not t.is_alive() and errors == []
    assert rounds and all(np.array_equal(r, first_imp) for r in rounds)
    assert all(np.array_equal(r, expected) for r in results)
    assert hooks_left(model) == []


def test_unit_importance_and_knockout_refuse_what_the_model_does_not_have():
    model = Detector()
    with pytest.raises(ValueError, match=r"^conv has channels 0-1; no channel 2$"):
        unit_importance(model, IMAGES, LABELS, "conv", 0, PLAIN, channels=[2], runtime=CPU32)
    with pytest.raises(ValueError, match=r"^conv has channels 0-1; no channel -2$"):
        unit_importance(model, IMAGES, LABELS, "conv", 0, PLAIN, channels=[-2], runtime=CPU32)
    # a layer without out_channels: the width comes from its output
    assert unit_importance(model, IMAGES, LABELS, "relu", 0, PLAIN, runtime=CPU32).shape == (2,)
    wrong = np.where(LABELS == 1, 2, LABELS)
    with pytest.raises(ValueError, match=r"^the labels go up to 2, but the model has classes 0-1$"):
        knockout(model, IMAGES, wrong, "conv", [0], PLAIN, runtime=CPU32)


def test_knockout_with_the_intact_logits_given_skips_their_pass():
    from cnnviz.evaluate import predict_logits

    model = Detector()
    intact = predict_logits(model, IMAGES, PLAIN, CPU32)
    full = knockout(model, IMAGES, LABELS, "conv", [0], PLAIN, runtime=CPU32)
    given = knockout(model, IMAGES, LABELS, "conv", [0], PLAIN, runtime=CPU32, baseline=intact)
    np.testing.assert_array_equal(full.confusion_before, given.confusion_before)
    np.testing.assert_array_equal(full.confusion_after, given.confusion_after)
    with pytest.raises(ValueError, match=rf"^baseline has 3 rows for {len(IMAGES)} images$"):
        knockout(model, IMAGES, LABELS, "conv", [0], PLAIN, runtime=CPU32, baseline=intact[:3])


def test_the_purest_channel_is_the_one_whose_top_images_share_a_class():
    # channel 0 peaks on images 0-3 (classes 0, 1, 0, 1); channel 1 on images 4-7 (2, 2, 2, 0);
    # channel 2 on images 8, 9 (class 2) and two unknowns (-1), which count for no class
    peak = np.zeros((12, 3), np.float32)
    peak[0:4, 0] = [9, 8, 7, 6]
    peak[4:8, 1] = [9, 8, 7, 6]
    peak[8:12, 2] = [9, 8, 7, 6]
    labels = np.array([0, 1, 0, 1, 2, 2, 2, 0, 2, 2, -1, -1])
    ex = units.UnitExamples("conv", peak, np.zeros((12, 3), np.int32), (1, 1))
    assert ex.purest(labels, k=4) == (1, 2, 3)
    assert ex.purest(labels, k=2) == (1, 2, 2)  # channel 2 ties at 2: the lower channel wins
    assert ex.purest(np.full(12, -1), k=4) == (0, 0, 0)


def test_the_knock_out_chart_axis_and_names():
    from cnnviz.figures.units import knockout_chart  # noqa: PLC0415

    labels = np.array([0, 0, 1, 1])
    before = np.array([[2.0, 0], [2, 0], [0, 2], [0, 2]])
    same = units.compare_knockout("conv", [3], labels, before, before)
    spec = knockout_chart(same, ["ned_flanders", "lisa"]).to_dict()
    assert spec["encoding"]["y"]["scale"]["domain"] == [-1.0, 1.0]  # nothing changes: a plain axis
    after = before.copy()
    after[0] = [0, 2]  # one of ned's two images lost: recall -50 points
    lost = knockout_chart(units.compare_knockout("conv", [3], labels, before, after), ["ned_flanders", "lisa"])
    assert lost.to_dict()["encoding"]["y"]["scale"]["domain"] == [-50.0, 1.0]
    assert list(lost.data["class"]) == ["ned flanders", "lisa"]

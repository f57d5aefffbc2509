"""Feature extraction with a hand-made model of known output, and the on-disk feature cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cnnviz.checkpoints import Checkpoint, CheckpointMeta
from cnnviz.data import ImageDataset, Preprocess
from cnnviz.inputs import Normalization, to_input
from cnnviz.inspect import features as features_mod
from cnnviz.inspect.features import FeatureSet, cached_features, extract_features, feature_cache_path
from cnnviz.models import CNN
from cnnviz.runtime import resolve_runtime

CPU32 = resolve_runtime("cpu", "fp32")
NORM = Normalization((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))


class MeanColour(CNN):
    """``embed``: per-channel mean of the normalised input (3 features); ``head``: a fixed
    linear map to 2 classes. Counts its forward calls."""

    embed_dim = 3
    num_classes = 2

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1, bias=False)  # identity: the contract wants a convolution
        self.fc = nn.Linear(3, 2, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
            self.fc.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, -1.0]]))
        self.log: list[int] = []  # a list, so views of the model (which share it) count too

    @property
    def calls(self) -> int:
        return len(self.log)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        self.log.append(len(x))
        return self.conv(x).mean((2, 3))

    def head(self, z: torch.Tensor) -> torch.Tensor:
        return self.fc(z)


def images(n: int = 7, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 4, 4, 3), dtype=np.uint8)


def expected_features(imgs: np.ndarray) -> np.ndarray:
    x = (imgs.astype(np.float64) / 255 - 0.5) / 0.25
    return x.mean((1, 2)).astype(np.float32)


def make_ckpt(sha: str = "a" * 64) -> Checkpoint:
    meta = CheckpointMeta(arch="mean_colour", classes=["x", "y"], preprocess=Preprocess(4),
                          normalization=NORM)
    return Checkpoint(MeanColour(), meta, None, sha)


def make_dataset(n: int = 7) -> ImageDataset:
    return ImageDataset(images(n), np.arange(n, dtype=np.int64) % 2, ["x", "y"],
                        [f"img{i}.png" for i in range(n)], "fp0123456789abcd", Preprocess(4))


def test_extract_features_are_embed_outputs_in_batches():
    model = MeanColour().train()
    imgs = images()
    seen = []
    feats = extract_features(model, imgs, NORM, batch_size=3, runtime=CPU32,
                             progress=lambda done, total: seen.append((done, total)))
    assert feats.shape == (7, 3) and feats.dtype == np.float32
    np.testing.assert_allclose(feats, expected_features(imgs), rtol=1e-5, atol=1e-6)
    assert seen == [(3, 7), (6, 7), (7, 7)]
    assert model.training  # mode restored
    with torch.no_grad():
        ref = model.eval().embed(to_input(imgs, NORM)).numpy()
    np.testing.assert_allclose(feats, ref, rtol=1e-6)


def test_extract_features_from_a_checkpoint_uses_its_normalisation():
    ckpt = make_ckpt()
    imgs = images()
    feats = extract_features(ckpt, imgs, runtime=CPU32, progress=True)
    np.testing.assert_allclose(feats, expected_features(imgs), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="norm="):
        extract_features(ckpt.model, imgs)


def test_extract_features_runs_without_gradients():
    class Spy(MeanColour):
        def embed(self, x):
            assert not torch.is_grad_enabled()
            return super().embed(x)

    extract_features(Spy(), images(2), NORM, runtime=CPU32)


def test_a_failing_pass_leaves_the_model_as_found_and_writes_no_cache(cache_dir):
    class Breaks(MeanColour):
        def embed(self, x):
            if self.calls == 1:
                raise RuntimeError("out of memory (simulated)")
            return super().embed(x)

    model = Breaks().train()
    model.conv.weight.requires_grad_(False)
    with pytest.raises(RuntimeError, match="simulated"):
        extract_features(model, images(), NORM, batch_size=3, runtime=CPU32)
    assert model.training and model.calls == 1
    assert not model.conv.weight.requires_grad and model.fc.weight.requires_grad
    assert torch.is_grad_enabled()
    assert not model._forward_hooks and not model.conv._forward_hooks

    ckpt = Checkpoint(Breaks(), make_ckpt().meta, None, "b" * 64)
    with pytest.raises(RuntimeError, match="simulated"):
        cached_features(ckpt, make_dataset(), "test", cache_dir=cache_dir, batch_size=3, runtime=CPU32)
    assert not list(cache_dir.rglob("*.np*"))  # nothing half-written is left to be read later


def test_cached_features_round_trip_without_calling_the_model(cache_dir, monkeypatch):
    ckpt, ds = make_ckpt(), make_dataset()
    first = cached_features(ckpt, ds, "test", runtime=CPU32)
    assert isinstance(first, FeatureSet) and ckpt.model.calls == 1
    np.testing.assert_allclose(first.features, expected_features(ds.images), rtol=1e-5, atol=1e-6)
    f = first.features
    np.testing.assert_allclose(first.logits, np.stack([f[:, 0], f[:, 1] - f[:, 2]], 1), rtol=1e-5, atol=1e-6)
    path = feature_cache_path(ckpt, ds, "test")
    assert path == cache_dir / "features" / f"{'a' * 16}-fp0123456789abcd-test.npy"
    assert path.is_file() and path.with_suffix(".npz").is_file()
    assert not list(path.parent.glob("*.tmp"))

    def boom(*a, **k):
        raise AssertionError("the model must not run on a cache hit")

    monkeypatch.setattr(ckpt.model, "embed", boom)
    monkeypatch.setattr(features_mod, "_embed_pass", boom)
    second = cached_features(ckpt, ds, "test")
    np.testing.assert_array_equal(second.features, first.features)
    np.testing.assert_array_equal(second.logits, first.logits)
    np.testing.assert_array_equal(second.labels, ds.labels)
    assert second.ids == ds.ids and second.fingerprint == ds.fingerprint


def test_cache_is_invalidated_by_other_weights_split_or_images(cache_dir):
    ckpt, ds = make_ckpt(), make_dataset()
    cached_features(ckpt, ds, "test", runtime=CPU32)
    other = make_ckpt("b" * 64)
    cached_features(other, ds, "test", runtime=CPU32)
    assert other.model.calls == 1  # a different hash never reuses the first model's features
    assert len(list((cache_dir / "features").glob("*.npy"))) == 2
    cached_features(ckpt, ds, "val", runtime=CPU32)
    assert ckpt.model.calls == 2
    fewer = ds.subset(np.arange(5))  # same fingerprint and split, other images: recomputed
    assert len(cached_features(ckpt, fewer, "val", runtime=CPU32)) == 5
    assert ckpt.model.calls == 3


def test_a_truncated_cache_file_is_recomputed(cache_dir):
    ckpt, ds = make_ckpt(), make_dataset()
    first = cached_features(ckpt, ds, "test", runtime=CPU32)
    path = feature_cache_path(ckpt, ds, "test")
    path.write_bytes(path.read_bytes()[:40])
    again = cached_features(ckpt, ds, "test", runtime=CPU32)
    assert ckpt.model.calls == 2
    np.testing.assert_array_equal(again.features, first.features)

"""The library behind 'one number per fact': single-view probabilities (cached or computed, the
same), split names, the basis of an accuracy and class display names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cnnviz.basis import AccuracyBasis, accuracy_basis, split_display_name, views_text
from cnnviz.checkpoints import checkpoint_data, load_checkpoint
from cnnviz.class_names import class_display_name, class_display_names
from cnnviz.gallery import read_gallery_meta
from cnnviz.inspect.features import cached_features
from cnnviz.predict import predict_images
from cnnviz.single_view import single_view_predictions

from conftest import model_fingerprint

SHIPPED = Path(__file__).resolve().parent.parent / "checkpoints"


def test_cached_and_computed_single_views_agree_and_differ_from_tta():
    ckpt = load_checkpoint(SHIPPED / "cifar10_cnn.json")
    ds = checkpoint_data(ckpt.meta, SHIPPED / "cifar10.gallery.zip", "test").subset(np.arange(32))
    fs = cached_features(ckpt, ds, "test32")
    before = model_fingerprint(ckpt.model)
    rows = [0, 5, 31]
    cached = single_view_predictions(ckpt, None, [ds.ids[i] for i in rows], cached=fs, rows=rows)
    alone = np.concatenate([single_view_predictions(ckpt, ds.images[[i]], [ds.ids[i]]).probs for i in rows])
    assert cached.tta == "none" and cached.ids == [ds.ids[i] for i in rows]
    np.testing.assert_allclose(alone, cached.probs, atol=1e-5)
    assert (np.round(alone * 1000) == np.round(cached.probs * 1000)).all()  # the same printed 0.1%
    every = single_view_predictions(ckpt, None, fs.ids, cached=fs)
    np.testing.assert_array_equal(every.probs[rows], cached.probs)
    tta = predict_images(ckpt, ds.images[[0]], ["0"])
    assert tta.tta == "flip_translate" and abs(tta.probs[0, 0] - cached.probs[0, 0]) > 0.005  # 81.1% vs 82.1%
    assert model_fingerprint(ckpt.model) == before


def test_single_view_refuses_another_checkpoints_cache_and_no_images():
    ckpt = load_checkpoint(SHIPPED / "cifar10_cnn.json")
    other = load_checkpoint(SHIPPED / "cifar10_fast.json")
    ds = checkpoint_data(ckpt.meta, SHIPPED / "cifar10.gallery.zip", "test").subset(np.arange(4))
    fs = cached_features(ckpt, ds, "test4")
    with pytest.raises(ValueError, match="another checkpoint"):
        single_view_predictions(other, None, ["a"], cached=fs, rows=[0])
    with pytest.raises(ValueError, match="give the images"):
        single_view_predictions(ckpt, None, ["a"])
    with pytest.raises(ValueError, match="2 ids for 1 images"):
        single_view_predictions(ckpt, None, ["a", "b"], cached=fs, rows=[0])


def test_split_names_views_and_accuracy_basis():
    assert [split_display_name(s) for s in ("test", "val", "train", "extra")] == ["test", "validation", "training",
                                                                                  "extra"]
    assert views_text("none") == "one view each (no test-time augmentation)"
    assert views_text("flip", detail=False) == "with test-time augmentation"
    assert views_text("flip") == "with test-time augmentation (flip: the image and its mirror)"
    gallery = read_gallery_meta(SHIPPED / "simpsons.gallery.zip")
    basis = accuracy_basis(300, "val", gallery)
    assert basis == AccuracyBasis(300, "val", gallery=True, of=2348)
    assert basis.accuracy_sentence(0.96) == ("Accuracy 96.0% on 300 validation images of the demo gallery "
                                             "(of the 2,348), one view each (no test-time augmentation)")
    assert accuracy_basis(10_000, "test", tta="flip").accuracy_text(0.9088, 2, detail=False) == (
        "accuracy 90.88% on 10,000 test images of the full dataset, with test-time augmentation")


def test_class_display_names_are_whole_and_distinct():
    assert class_display_name("abraham_grampa_simpson") == "abraham grampa simpson"
    assert class_display_names(["a_b", "c"]) == ["a b", "c"]
    assert class_display_names(["a_b", "a b"]) == ["a b (0)", "a b (1)"]

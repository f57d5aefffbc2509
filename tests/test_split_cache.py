"""The Neighbours page's disk caches: purity and the 2-D map read back equal to what was
computed, keyed by the settings, and never recomputed once stored."""

from __future__ import annotations

import numpy as np
import pytest

import cnnviz.inspect.split_cache as split_cache
from cnnviz.checkpoints import checkpoint_data, held_out_data, load_checkpoint
from cnnviz.inspect.features import cached_features
from cnnviz.inspect.neighbours import NeighbourIndex, neighbour_purity, pixel_vectors
from cnnviz.inspect.projection import project

from dashboard_fixtures import dashboard_env, tiny_dashboard  # noqa: F401 (fixtures)


def test_purity_and_map_round_trip_and_are_not_recomputed(dashboard_env, monkeypatch):
    ckpt = load_checkpoint(dashboard_env.checkpoints / "tiny.json")
    held, test = held_out_data(ckpt.meta, dashboard_env.tree)
    train = checkpoint_data(ckpt.meta, dashboard_env.tree, "train")
    tf, hf = cached_features(ckpt, train, "train"), cached_features(ckpt, test, held)
    index = NeighbourIndex(tf.features)
    got = split_cache.cached_purity(ckpt, train, test, held, "features", 3, "euclidean", index, hf.features)
    want = neighbour_purity(index, train.labels, hf.features, test.labels, 3, "euclidean", len(ckpt.meta.classes))
    np.testing.assert_array_equal(got.per_image, want.per_image)
    pixels = NeighbourIndex.from_images(train.images)
    pix = split_cache.cached_purity(ckpt, train, test, held, "pixels", 3, "euclidean", pixels)
    np.testing.assert_array_equal(pix.per_image, neighbour_purity(pixels, train.labels, pixel_vectors(test.images),
                                                                  test.labels, 3).per_image)
    proj = split_cache.cached_projection(ckpt, test, held, "pca", hf.features)
    np.testing.assert_array_equal(proj.xy, project(hf.features, "pca", labels=test.labels).xy)

    def no(*a, **k):
        raise AssertionError("recomputed")

    monkeypatch.setattr(split_cache, "neighbour_purity", no)
    monkeypatch.setattr(split_cache, "project", no)
    again = split_cache.cached_purity(ckpt, train, test, held, "features", 3, "euclidean", index, hf.features)
    assert again.overall == got.overall and again.k == 3
    np.testing.assert_array_equal(again.per_class, got.per_class)
    back = split_cache.cached_projection(ckpt, test, held, "pca", hf.features)
    np.testing.assert_array_equal(back.xy, proj.xy)
    assert back.method == "pca" and back.params == proj.params
    with pytest.raises(AssertionError, match="recomputed"):  # another k is another entry
        split_cache.cached_purity(ckpt, train, test, held, "features", 2, "euclidean", index, hf.features)
    with pytest.raises(ValueError, match="unknown space 'voxels': use features or pixels"):
        split_cache.cached_purity(ckpt, train, test, held, "voxels", 3, "euclidean", index)


def test_purity_of_many_images_is_measured_on_a_seeded_sample(dashboard_env):
    ckpt = load_checkpoint(dashboard_env.checkpoints / "tiny.json")
    held, test = held_out_data(ckpt.meta, dashboard_env.tree)
    train = checkpoint_data(ckpt.meta, dashboard_env.tree, "train")
    tf, hf = cached_features(ckpt, train, "train"), cached_features(ckpt, test, held)
    index = NeighbourIndex(tf.features)
    assert split_cache.purity_rows(len(test), len(test)) is None and split_cache.purity_rows(10, None) is None
    res = split_cache.cached_purity(ckpt, train, test, held, "features", 3, "euclidean", index, hf.features,
                                    max_images=4)
    rows = split_cache.purity_rows(len(test), 4)
    assert res.rows.tolist() == rows.tolist() == sorted(rows.tolist()) and len(rows) == 4
    want = neighbour_purity(index, train.labels, hf.features[rows], test.labels[rows], 3, "euclidean",
                            len(ckpt.meta.classes))
    np.testing.assert_array_equal(res.per_image, want.per_image)
    assert res.support.sum() == 4
    again = split_cache.cached_purity(ckpt, train, test, held, "features", 3, "euclidean", index, hf.features,
                                      max_images=4)
    assert again.rows.tolist() == rows.tolist() and again.overall == res.overall


def test_a_knock_out_reads_back_equal_and_is_not_recomputed(dashboard_env, monkeypatch):
    from cnnviz.inspect.units import knockout  # noqa: PLC0415

    ckpt = load_checkpoint(dashboard_env.checkpoints / "tiny.json")
    held, test = held_out_data(ckpt.meta, dashboard_env.tree)
    hf = cached_features(ckpt, test, held)
    got = split_cache.cached_knockout(ckpt, test, held, "features.8", [0, 2], hf.logits)
    want = knockout(ckpt.model, test.images, test.labels, "features.8", [0, 2], ckpt.meta.normalization,
                    baseline=hf.logits)
    np.testing.assert_array_equal(got.confusion_after, want.confusion_after)
    assert got.accuracy_after == want.accuracy_after and got.channels == (0, 2)
    monkeypatch.setattr(split_cache, "knockout", lambda *a, **k: (_ for _ in ()).throw(AssertionError("again")))
    back = split_cache.cached_knockout(ckpt, test, held, "features.8", [0, 2], hf.logits)
    np.testing.assert_array_equal(back.recall_after, got.recall_after)
    assert back.accuracy_before == got.accuracy_before

"""Exact kNN against a float64 brute-force reference, neighbour purity, and their figures."""

from __future__ import annotations

import numpy as np
import pytest

from cnnviz.figures.neighbours import neighbours_figure, purity_chart
from cnnviz.inspect.neighbours import NeighbourIndex, neighbour_purity, pixel_vectors


def brute(data: np.ndarray, q: np.ndarray, k: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """float64 reference: ``(M, k)`` indices and distances, ties to the lower index."""
    x, q = data.astype(np.float64), np.atleast_2d(q).astype(np.float64)
    if metric == "euclidean":
        d = np.sqrt(((q[:, None, :] - x[None]) ** 2).sum(-1))
    else:
        d = 1 - (q @ x.T) / (np.linalg.norm(q, axis=1)[:, None] * np.linalg.norm(x, axis=1)[None])
    order = np.lexsort((np.broadcast_to(np.arange(len(x)), d.shape), d), axis=1)[:, :k]
    return order, np.take_along_axis(d, order, 1)


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    rng = np.random.default_rng(0)
    # an offset makes ||x||^2 large next to the distances: the case the exact re-rank is for
    return (rng.standard_normal((200, 16)) + 5.0).astype(np.float32)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_single_query_matches_brute_force(data, metric):
    index = NeighbourIndex(data)
    q = np.random.default_rng(1).standard_normal(16).astype(np.float32) + 5.0
    nb = index.query(q, 7, metric)
    ref_i, ref_d = brute(data, q, 7, metric)
    assert nb.indices.shape == (1, 7) and nb.indices.dtype == np.int64
    assert nb.distances.dtype == np.float32
    np.testing.assert_array_equal(nb.indices, ref_i)
    np.testing.assert_allclose(nb.distances, ref_d, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_batched_queries_match_brute_force_and_single_queries(data, metric):
    index = NeighbourIndex(data)
    q = np.random.default_rng(2).standard_normal((13, 16)).astype(np.float32) + 5.0
    nb = index.query(q, 5, metric)
    ref_i, ref_d = brute(data, q, 5, metric)
    np.testing.assert_array_equal(nb.indices, ref_i)
    np.testing.assert_allclose(nb.distances, ref_d, rtol=1e-6, atol=1e-7)
    one = index.query(q[3], 5, metric)
    np.testing.assert_array_equal(one.indices[0], nb.indices[3])


def test_a_stored_vector_is_its_own_nearest_at_distance_zero(data):
    nb = NeighbourIndex(data).query(data[[4, 9]], 1)
    np.testing.assert_array_equal(nb.indices[:, 0], [4, 9])
    np.testing.assert_array_equal(nb.distances, 0)


def test_k_equal_to_n_ranks_everything(data):
    small = data[:10]
    nb = NeighbourIndex(small).query(small[0], 10)
    assert sorted(nb.indices[0].tolist()) == list(range(10))
    assert np.all(np.diff(nb.distances[0]) >= 0)


def test_index_keeps_a_contiguous_float32_matrix_without_copying(data):
    index = NeighbourIndex(data, ("euclidean",))
    assert np.shares_memory(index.data, data)
    assert index.data.flags.c_contiguous and not index.data.flags.writeable
    assert data.flags.writeable  # the caller's array is left as it was
    with pytest.raises(ValueError, match="metrics=.*cosine"):
        index.query(data[0], 3, "cosine")


def test_bad_queries_say_what_to_do(data):
    index = NeighbourIndex(data)
    with pytest.raises(ValueError, match="ask for 1 to 200"):
        index.query(data[0], 201)
    with pytest.raises(ValueError, match=r"\(16,\) or \(M, 16\)"):
        index.query(np.zeros(3), 2)


def test_pixel_index_flattens_uint8_images():
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (12, 4, 4, 3), dtype=np.uint8)
    vec = pixel_vectors(images)
    assert vec.shape == (12, 48) and vec.dtype == np.float32
    index = NeighbourIndex.from_images(images)
    nb = index.query(pixel_vectors(images[5]), 3)
    ref_i, ref_d = brute(vec, vec[5], 3, "euclidean")
    np.testing.assert_array_equal(nb.indices, ref_i)
    np.testing.assert_allclose(nb.distances, ref_d, rtol=1e-6)


def test_purity_of_a_hand_made_set():
    # two classes on a line: train 0,1,2 (class 0) and 10,11,12 (class 1)
    train = np.array([[0], [1], [2], [10], [11], [12]], np.float32)
    train_labels = np.array([0, 0, 0, 1, 1, 1])
    # test: 1.2 (class 0: neighbours 1,2,0 -> 3/3), 5.8 (class 0: 2,10,1 -> 2/3),
    #       11 (class 1: 11,10,12 -> 3/3)
    test = np.array([[1.2], [5.8], [11]], np.float32)
    test_labels = np.array([0, 0, 1])
    res = neighbour_purity(train, train_labels, test, test_labels, k=3, batch_size=2)
    np.testing.assert_allclose(res.per_image, [1, 2 / 3, 1], rtol=1e-6)
    np.testing.assert_allclose(res.per_class, [5 / 6, 1], rtol=1e-6)
    np.testing.assert_array_equal(res.support, [2, 1])
    assert res.overall == pytest.approx(8 / 9)
    again = neighbour_purity(NeighbourIndex(train), train_labels, test, test_labels, k=3)
    np.testing.assert_array_equal(again.per_image, res.per_image)


def test_purity_marks_classes_without_test_images_nan():
    train = np.array([[0], [1], [5]], np.float32)
    res = neighbour_purity(train, [0, 0, 2], np.array([[0.5]], np.float32), [0], k=2)
    assert res.per_class[0] == 1 and np.isnan(res.per_class[1]) and np.isnan(res.per_class[2])


def test_neighbour_figures_have_one_trace_per_panel():
    rng = np.random.default_rng(4)
    img = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    near = rng.integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    top = [("cat", 0.6), ("dog", 0.2), ("frog", 0.1), ("ship", 0.05), ("car", 0.05)]
    fig = neighbours_figure(img, top, near, near[::-1], [f"cat {i}" for i in range(5)])
    assert len(fig.data) == 2 + 5 + 5
    assert [t.type for t in fig.data[:2]] == ["image", "bar"]
    assert len(neighbours_figure(img, top[:2], near[:1]).data) == 3
    eye = np.eye(3, dtype=np.float32)
    res = neighbour_purity(eye, [0, 1, 2], eye, [0, 1, 2], k=1)
    assert set(purity_chart(res, ["a", "b", "c"]).layer[0].data["space"]) == {"penultimate features (overall 100.0%)"}


def test_purity_figure_compares_feature_and_pixel_space():
    eye = np.eye(3, dtype=np.float32)
    feats = neighbour_purity(eye, [0, 1, 2], eye, [0, 1, 2], k=1)  # every neighbour right
    pixels = neighbour_purity(eye, [0, 1, 2], eye[[1, 0, 2]], [0, 1, 2], k=1)  # two of three wrong
    chart = purity_chart(feats, ["a", "b", "c"], pixels=pixels)
    bars, overall = chart.layer[0].data, chart.layer[1].data
    by_space = {space: list(g["purity"]) for space, g in bars.groupby("space", sort=False)}
    assert by_space == {"penultimate features (overall 100.0%)": [1.0, 1.0, 1.0],
                        "raw pixels (overall 33.3%)": [0.0, 0.0, 1.0]}
    assert list(overall["overall"]) == pytest.approx([1.0, 1 / 3])  # the dashed rules
    assert chart.to_dict()["layer"][0]["encoding"]["xOffset"]["field"] == "space"  # grouped bars

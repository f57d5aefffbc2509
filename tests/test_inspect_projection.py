"""2-D projections of every point, and the scatter figure with thumbnails."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from cnnviz.figures.projection import projection_chart, rows_in_box, thumbnails_b64
from cnnviz.inspect.projection import Projection, project


def blobs(n_per: int = 20, dim: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(3), n_per)
    centres = rng.standard_normal((3, dim)) * 6
    return (centres[labels] + rng.standard_normal((len(labels), dim))).astype(np.float32), labels


@pytest.mark.parametrize("method", ["pca", "tsne", "umap", "spectral"])
def test_every_point_is_projected(method):
    x, labels = blobs()
    proj = project(x, method, labels=labels, pca_dims=10)
    assert isinstance(proj, Projection)
    assert proj.xy.shape == (60, 2) and proj.xy.dtype == np.float32
    assert np.isfinite(proj.xy).all()
    np.testing.assert_array_equal(proj.labels, labels)
    assert proj.method == method or (method, proj.method) == ("umap", "spectral")


def test_umap_falls_back_to_a_spectral_embedding_when_umap_learn_is_absent():
    from cnnviz.inspect.projection import umap_available

    proj = project(blobs()[0], "umap")
    assert proj.method == ("umap" if umap_available() else "spectral")
    assert proj.params["n_neighbors"] == 15 and proj.params["pca_dims"] == 50


def test_pca_of_points_on_a_line_is_collinear():
    rng = np.random.default_rng(1)
    t = rng.uniform(-3, 3, 40)
    direction = rng.standard_normal(12)
    x = (np.array([2.0] * 12) + t[:, None] * direction).astype(np.float32)
    xy = project(x, "pca").xy.astype(np.float64)
    centred = xy - xy.mean(0)
    s = np.linalg.svd(centred, compute_uv=False)
    assert s[1] < 1e-4 * s[0]
    # the first axis is the line itself, so distances along it are kept
    along = np.abs(t - t.mean()) * np.linalg.norm(direction)
    np.testing.assert_allclose(np.abs(centred[:, 0]), along, rtol=1e-3)


def test_tsne_separates_well_separated_blobs():
    x, labels = blobs()
    xy = project(x, "tsne", seed=0).xy
    centres = np.stack([xy[labels == c].mean(0) for c in range(3)])
    spread = max(np.linalg.norm(xy[labels == c] - centres[c], axis=1).mean() for c in range(3))
    gaps = [np.linalg.norm(centres[a] - centres[b]) for a in range(3) for b in range(a + 1, 3)]
    assert min(gaps) > 2 * spread


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="unknown projection"):
        project(np.zeros((5, 3)), "mds")
    with pytest.raises(ValueError, match="labels"):
        project(np.zeros((5, 3)), "pca", labels=np.zeros(4))


def test_projection_chart_has_a_colour_per_class_and_both_selections():
    x, labels = blobs(n_per=4, dim=5)
    proj = project(x, "pca", labels=labels)
    chart = projection_chart(proj, ["cat", "dog", "frog"], ids=[f"id{i}" for i in range(12)])
    df = chart.data
    assert list(df["row"]) == list(range(12)) and df.loc[4, "id"] == "id4" and df.loc[4, "class"] == "dog"
    np.testing.assert_allclose(df[["x", "y"]].to_numpy(), proj.xy, rtol=1e-6)
    spec = chart.to_dict()
    assert spec["title"] == "PCA of 12 points"
    assert spec["encoding"]["color"]["sort"] == ["cat", "dog", "frog"]
    assert {p["name"] for p in spec["params"]} == {"pick", "box"}
    unlabelled = projection_chart(Projection(proj.xy, "pca", None))
    assert set(unlabelled.data["class"]) == {"points"}
    with pytest.raises(ValueError, match="3 ids for 12 points"):
        projection_chart(proj, ids=["a", "b", "c"])


def test_rows_in_box_are_the_points_inside_it():
    proj = Projection(np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.5], [3.0, 3.0]], np.float32), "pca", None)
    assert rows_in_box(proj, {"x": [0.5, 2.5], "y": [0.0, 1.0]}) == [1, 2]
    assert rows_in_box(proj, {"x": [2.5, 0.5], "y": [1.0, 0.0]}) == [1, 2]  # either order
    assert rows_in_box(proj, {"x": [0.5, 2.5]}) == [] and rows_in_box(proj, {}) == [] and rows_in_box(proj, None) == []


def test_thumbnails_are_shrunk_to_the_size_asked():
    from io import BytesIO

    from PIL import Image

    uri = thumbnails_b64(np.zeros((1, 64, 32, 3), np.uint8), size=16)[0]
    img = Image.open(BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert img.size == (8, 16)

"""2-D projections of every point, and the scatter figure with thumbnails."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from cnnviz.figures.projection import projection_figure, thumbnails_b64
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


def test_projection_figure_has_a_trace_per_class_with_thumbnails_and_hover():
    x, labels = blobs(n_per=4, dim=5)
    proj = project(x, "pca", labels=labels)
    images = np.random.default_rng(2).integers(0, 256, (12, 40, 20, 3), dtype=np.uint8)
    fig = projection_figure(proj, ["cat", "dog", "frog"], images=images, ids=[f"id{i}" for i in range(12)])
    assert len(fig.data) == 3 and [t.name for t in fig.data] == ["cat", "dog", "frog"]
    first = fig.data[1]
    assert first.hovertext[0] == "id4<br>dog"
    row, uri = first.customdata[0]
    assert row == 4 and uri.startswith("data:image/png;base64,")
    png = base64.b64decode(uri.split(",", 1)[1])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    unlabelled = projection_figure(Projection(proj.xy, "pca", None))
    assert len(unlabelled.data) == 1


def test_thumbnails_are_shrunk_to_the_size_asked():
    from io import BytesIO

    from PIL import Image

    uri = thumbnails_b64(np.zeros((1, 64, 32, 3), np.uint8), size=16)[0]
    img = Image.open(BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert img.size == (8, 16)

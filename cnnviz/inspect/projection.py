"""2-D maps of a feature matrix: PCA, t-SNE and UMAP (or, without umap-learn, a spectral embedding).

Every point is projected (no sampling). For t-SNE and the UMAP-like methods the features are
first reduced with PCA to ``pca_dims`` (50) dimensions: on 10,000 x 4096 features this is what
makes them take seconds rather than minutes, and it is the usual recipe (it drops noise
directions that carry little of the variance).

``"umap"`` uses umap-learn when it is installed. It is not a cnnviz dependency; without it the
method falls back to scikit-learn's :class:`~sklearn.manifold.SpectralEmbedding` on the same
15-nearest-neighbour graph UMAP starts from (UMAP itself initialises from this spectral layout),
and :attr:`Projection.method` records ``"spectral"`` so a caption can say what was drawn.
"""

from __future__ import annotations

import importlib.util
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

Method = Literal["pca", "tsne", "umap", "spectral"]
METHODS: tuple[Method, ...] = ("pca", "tsne", "umap", "spectral")


@dataclass(frozen=True, eq=False)
class Projection:
    """``xy``: ``(N, 2) float32`` coordinates, one row per input row; ``method``: what actually
    ran (``"umap"`` may come back as ``"spectral"``); ``labels``: ``(N,) int64`` or ``None``,
    passed through for colouring; ``params``: the settings used."""

    xy: np.ndarray
    method: str
    labels: np.ndarray | None
    params: dict[str, Any] = field(default_factory=dict)


def umap_available() -> bool:
    """Whether umap-learn is installed (it is optional)."""
    return importlib.util.find_spec("umap") is not None


def pca(features: np.ndarray, dims: int = 2, seed: int = 0) -> np.ndarray:
    """``(N, D)`` -> ``(N, dims) float32`` principal-component scores (centred; deterministic signs)."""
    from sklearn.decomposition import PCA

    x = np.asarray(features, np.float32)
    dims = min(dims, x.shape[0], x.shape[1])
    return PCA(n_components=dims, random_state=seed).fit_transform(x).astype(np.float32)


def project(
    features: np.ndarray,
    method: Method = "pca",
    labels: np.ndarray | None = None,
    seed: int = 0,
    pca_dims: int = 50,
    perplexity: float = 30.0,
    n_neighbors: int = 15,
) -> Projection:
    """All ``N`` rows of ``(N, D)`` features -> :class:`Projection` with ``(N, 2) float32`` xy.

    ``pca_dims``: PCA reduction before t-SNE/UMAP/spectral (skipped when ``D`` is already that
    small). ``perplexity`` (t-SNE) and ``n_neighbors`` (UMAP/spectral) are capped for tiny ``N``.
    """
    if method not in METHODS:
        raise ValueError(f"unknown projection {method!r}: use one of {', '.join(METHODS)}")
    x = np.asarray(features, np.float32)
    if x.ndim != 2 or len(x) < 3:
        raise ValueError(f"need an (N, D) matrix with N >= 3 to project, got shape {x.shape}")
    if labels is not None:
        labels = np.asarray(labels, np.int64)
        if labels.shape != (len(x),):
            raise ValueError(f"{len(labels)} labels for {len(x)} points")
    n = len(x)
    params: dict[str, Any] = {"n": n, "seed": seed}
    if method == "pca":
        xy = pca(x, 2, seed)
        if xy.shape[1] < 2:  # one feature: pad so the result is always (N, 2)
            xy = np.pad(xy, ((0, 0), (0, 2 - xy.shape[1])))
        return Projection(xy.astype(np.float32), "pca", labels, params)

    if x.shape[1] > pca_dims and n > pca_dims:
        x = pca(x, pca_dims, seed)
        params["pca_dims"] = pca_dims
    if method == "tsne":
        from sklearn.manifold import TSNE

        perp = float(min(perplexity, max(1.0, (n - 1) / 3.0)))
        params["perplexity"] = perp
        xy = TSNE(n_components=2, perplexity=perp, init="pca", random_state=seed,
                  learning_rate="auto").fit_transform(x)
        return Projection(xy.astype(np.float32), "tsne", labels, params)

    nn = int(min(n_neighbors, n - 1))
    params["n_neighbors"] = nn
    if method == "umap" and umap_available():
        import umap  # optional

        xy = umap.UMAP(n_components=2, n_neighbors=nn, random_state=seed).fit_transform(x)
        return Projection(np.asarray(xy, np.float32), "umap", labels, params)
    from sklearn.manifold import SpectralEmbedding

    with warnings.catch_warnings():
        # a kNN graph of well-separated classes is often disconnected; the embedding is still
        # meaningful (components land apart), so the warning is noise for a picture
        warnings.filterwarnings("ignore", message="Graph is not fully connected")
        xy = SpectralEmbedding(n_components=2, affinity="nearest_neighbors", n_neighbors=nn,
                               random_state=seed).fit_transform(x)
    return Projection(xy.astype(np.float32), "spectral", labels, params)

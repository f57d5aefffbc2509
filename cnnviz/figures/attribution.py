"""Pictures of attribution maps: a heat-map overlay as a uint8 array, and a titled row of them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

from ..inspect.attribution import Attribution
from .clicks import enlarge

__all__ = ["COLORMAPS", "AttributionPanels", "attribution_panels", "colorize", "overlay"]

TITLES = {
    "saliency": "Saliency",
    "integrated_gradients": "Integrated gradients",
    "grad_cam": "Grad-CAM",
    "occlusion": "Occlusion",
    "guided_backprop": "Guided backprop",
}


def _jet(t: np.ndarray) -> np.ndarray:
    # piecewise-linear MATLAB-style jet: blue -> cyan -> yellow -> red
    return np.stack([np.clip(1.5 - np.abs(4 * t - c), 0, 1) for c in (3, 2, 1)], axis=-1)


def _hot(t: np.ndarray) -> np.ndarray:
    # black -> red -> yellow -> white
    return np.stack([np.clip(3 * t - c, 0, 1) for c in (0, 1, 2)], axis=-1)


def _gray(t: np.ndarray) -> np.ndarray:
    return np.repeat(t[..., None], 3, axis=-1)


COLORMAPS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"jet": _jet, "hot": _hot, "gray": _gray}


def colorize(heat: np.ndarray, colormap: str = "jet") -> np.ndarray:
    """``(H, W)`` float in ``[0, 1]`` (clipped; NaN -> 0) -> ``(H, W, 3) uint8`` colours."""
    try:
        cmap = COLORMAPS[colormap]
    except KeyError:
        raise ValueError(f"unknown colormap {colormap!r}; choose one of {', '.join(COLORMAPS)}") from None
    t = np.clip(np.nan_to_num(np.asarray(heat, dtype=np.float32), nan=0.0), 0.0, 1.0)
    return np.rint(cmap(t) * 255).astype(np.uint8)


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.5, colormap: str = "jet") -> np.ndarray:
    """Blend a heat map over an image: ``(1 - alpha) * image + alpha * colormap(heat)``.

    ``image``: ``(H, W, 3) uint8``; ``heat``: ``(H, W)`` float in ``[0, 1]``; ``alpha`` in
    ``[0, 1]`` (0 gives the image back unchanged). Returns ``(H, W, 3) uint8``.
    """
    image = np.asarray(image)
    heat = np.asarray(heat)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    if heat.shape != image.shape[:2]:
        raise ValueError(f"heat map {heat.shape} does not match the image's {image.shape[:2]}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    mixed = (1.0 - alpha) * image.astype(np.float32) + alpha * colorize(heat, colormap).astype(np.float32)
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


@dataclass
class AttributionPanels:
    """A row of pictures: the input, then one overlay per method; a title under each, and the
    methods' notes (each marked with a dagger in its title)."""

    pictures: list[np.ndarray]
    titles: list[str]
    notes: list[str]


def attribution_panels(image: np.ndarray, attributions: Mapping[str, Attribution], alpha: float = 0.5,
                       colormap: str = "jet", panel_px: int = 220) -> AttributionPanels:
    """The input, then one overlay per method (in the mapping's order), each enlarged by whole
    pixels (sharp, no blur) to at least ``panel_px`` wide, titled with the method (and its layer).

    ``image``: ``(H, W, 3) uint8``, the image the attributions were computed on. Methods with a
    note (e.g. guided backprop on a network without activation modules) get a dagger in their
    title and the note in ``notes``."""
    titles, notes, pictures = ["input"], [], [enlarge(np.asarray(image), panel_px)[0]]
    for a in attributions.values():
        t = TITLES.get(a.method, a.method) + (f" ({a.layer})" if a.layer else "")
        if a.note:
            notes.append(f"\u2020 {TITLES.get(a.method, a.method)}: {a.note}")
            t += " \u2020"
        titles.append(t)
        pictures.append(enlarge(overlay(image, a.map, alpha, colormap), panel_px)[0])
    return AttributionPanels(pictures, titles, notes)

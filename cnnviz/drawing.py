"""A drawing as a model input: a canvas's RGBA pixels become the ``(S, S, 3) uint8`` image the
model expects, by the checkpoint's own preprocessing (the resize every upload goes through)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from .data import Preprocess

__all__ = ["drawing_image"]


def drawing_image(rgba: np.ndarray | None, preprocess: Preprocess) -> np.ndarray | None:
    """A canvas's ``(H, W, 4)`` RGBA (or ``(H, W, 3)`` RGB) uint8 pixels -> ``(S, S, 3) uint8``:
    composited on white and resized by ``preprocess`` (:meth:`Preprocess.apply`, as uploads
    are). None when nothing is drawn: no pixel is both visible and other than white."""
    if rgba is None:
        return None
    rgba = np.asarray(rgba)
    if rgba.ndim != 3 or rgba.shape[2] not in (3, 4) or rgba.dtype != np.uint8 or 0 in rgba.shape[:2]:
        raise ValueError(f"expected (H, W, 4) or (H, W, 3) uint8 pixels, got {rgba.dtype} {rgba.shape}")
    visible = rgba[..., 3] > 0 if rgba.shape[2] == 4 else np.ones(rgba.shape[:2], bool)
    if not ((rgba[..., :3] != 255).any(axis=-1) & visible).any():
        return None
    image = Image.fromarray(np.ascontiguousarray(rgba), "RGBA" if rgba.shape[2] == 4 else "RGB")
    return preprocess.apply(image).copy()  # writable, as decoded uploads are

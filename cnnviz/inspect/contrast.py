"""Why the model chose one class over another for one image: a contrastive map and how to tell
which map explains the choice.

:func:`contrastive_grad_cam` is Grad-CAM of the logit difference ``logit[pred] - logit[true]``:
Grad-CAM's channel weights are means of gradients, so they are the predicted class's weights
minus the true class's, and the map shows where the layer's features favour ``pred`` over
``true`` (positive part), not where either class finds evidence. :func:`flip_fraction`
deletes each map's pixels in its order (most important first, the input's mean colour in their
place, as :func:`cnnviz.inspect.faithfulness.deletion_insertion` does) until the predicted
class is no longer ahead of the true one: the map that needs the fewest pixels explains the
choice best; a seeded random order is the chance level. (The area under the difference curve
divided by the lead, tried first, swung by tens on an unsure model, whose lead is tiny; a
fraction of pixels reads the same at any margin.) :func:`contrastive_evidence`
puts both together with where the map's mass lies (the middle of the picture or its border).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from captum.attr import LayerAttribution, LayerGradCam
from torch import nn

from ..hooks import model_view
from ..inputs import Normalization, to_input
from ..runtime import device_of

RANDOM = "random order"


def contrastive_grad_cam(model: nn.Module, image: np.ndarray, norm: Normalization, pred: int, true: int,
                         layer: str) -> np.ndarray:
    """Grad-CAM of ``logit[pred] - logit[true]`` on ``layer`` for one ``(H, W, 3) uint8`` image:
    ``(H, W) float32`` in ``[0, 1]`` (positive part, upsampled bilinearly, divided by its peak; an
    all-zero map where nothing favours ``pred``). The model is not changed (a private view runs)."""
    view = model_view(model)
    try:
        module = view.get_submodule(layer)
    except AttributeError:
        raise ValueError(f"unknown layer {layer!r} for Grad-CAM") from None
    x = to_input(np.asarray(image)[None], norm, device_of(model))

    def difference(inp: torch.Tensor) -> torch.Tensor:
        out = view(inp).float()
        return (out[:, pred] - out[:, true])[:, None]

    with torch.inference_mode(False), torch.enable_grad():
        cam = LayerGradCam(difference, module).attribute(x.detach().clone().requires_grad_(True), target=0)
    if cam.ndim != 4:
        raise ValueError(f"layer {layer!r} has no spatial output (Grad-CAM needs (N, C, h, w))")
    heat = LayerAttribution.interpolate(F.relu(cam.detach().float()), tuple(x.shape[-2:]),
                                        interpolate_mode="bilinear")[0, 0]
    heat = torch.nan_to_num(F.relu(heat))
    peak = float(heat.max())
    return (heat / peak if peak > 0 else torch.zeros_like(heat)).cpu().numpy().astype(np.float32)


def flip_fraction(model: nn.Module, image: np.ndarray, norm: Normalization, pred: int, true: int,
                  maps: dict[str, np.ndarray], steps: int = 64, seed: int = 0) -> dict[str, float]:
    """For each named ``(H, W)`` map and a seeded random order (:data:`RANDOM`): delete the
    image's pixels in the map's order (highest first; ``steps`` equal shares at a time, the
    input's mean colour in their place) until ``logit[pred] - logit[true]`` is no longer above
    zero. Returns the fraction of the pixels that took (interpolated between the two shares
    around the crossing): low, the map finds what the choice rests on. ``inf`` where the lead
    outlasts the deletion of every pixel (the same for every order); NaN for every map when
    ``pred`` is not ahead of ``true`` on the whole image."""
    image = np.asarray(image)
    h, w = image.shape[:2]
    named = dict(maps)
    named[RANDOM] = np.random.default_rng(seed).random((h, w))
    device = device_of(model)
    x = to_input(image[None], norm, device)
    counts = torch.tensor([round(k * h * w / steps) for k in range(steps + 1)], device=device)
    fractions = (counts.double() / (h * w)).cpu().numpy()
    ranks = []
    for m in named.values():
        m = np.asarray(m, np.float64)
        if m.shape != (h, w) or not np.isfinite(m).all():
            raise ValueError(f"maps must be finite (H, W) = {(h, w)} arrays")
        order = np.argsort(-m.reshape(-1), kind="stable")
        rank = np.empty(h * w, np.int64)
        rank[order] = np.arange(h * w)
        ranks.append(rank)
    rank_t = torch.from_numpy(np.stack(ranks)).to(device)  # (M, H*W)
    keep = rank_t[:, None, :] >= counts[None, :, None]  # (M, steps+1, H*W)
    xs = torch.where(keep.reshape(-1, 1, h, w), x, torch.zeros((), device=device))
    view = model_view(model)
    with torch.no_grad():
        out = torch.cat([view(b).float() for b in xs.split(64)])
    diff = (out[:, pred] - out[:, true]).view(len(named), steps + 1).double().cpu().numpy()
    if not (diff[:, 0] > 0).all():
        return {name: float("nan") for name in named}
    found = {}
    for name, curve in zip(named, diff):
        gone = np.flatnonzero(curve <= 0)
        if not len(gone):
            found[name] = float("inf")
            continue
        j = int(gone[0])  # curve[j - 1] > 0 >= curve[j]
        a, b = curve[j - 1], curve[j]
        found[name] = float(fractions[j - 1] + (fractions[j] - fractions[j - 1]) * a / (a - b))
    return found


def centre_share(heat: np.ndarray) -> float:
    """The share of a non-negative ``(H, W)`` map's mass inside the picture's middle (the
    central half of each side, a quarter of the area); NaN for an all-zero map."""
    heat = np.clip(np.asarray(heat, np.float64), 0, None)
    total = heat.sum()
    if total <= 0:
        return float("nan")
    h, w = heat.shape
    return float(heat[h // 4: h - h // 4, w // 4: w - w // 4].sum() / total)


@dataclass(frozen=True, eq=False)
class ContrastiveEvidence:
    """Why ``pred`` over ``true``: ``heat`` the contrastive Grad-CAM ``(H, W)`` in [0, 1];
    ``lead``: ``logit[pred] - logit[true]`` on the whole image; ``flip``: for each map, the
    fraction of pixels deleted in its order before the lead is gone (:func:`flip_fraction`;
    lower explains more), ``"contrast"``, ``"pred"``, ``"true"`` and :data:`RANDOM`; ``centre``:
    the share of the contrastive map in the picture's middle (:func:`centre_share`)."""

    pred: int
    true: int
    heat: np.ndarray
    lead: float
    flip: dict[str, float]
    centre: float
    step: float = 1 / 64  # the share of the pixels deleted at a time: flips closer than this tie

    @property
    def best(self) -> str | None:
        """The map whose deletion takes the lead away soonest (ties: the first, the contrastive
        map); None when no order does before the last pixel."""
        scored = {k: v for k, v in self.flip.items() if np.isfinite(v)}
        return min(scored, key=scored.get) if scored else None


def contrastive_evidence(model: nn.Module, image: np.ndarray, norm: Normalization, pred: int, true: int,
                         layer: str, cam_pred: np.ndarray, cam_true: np.ndarray, logits: np.ndarray,
                         steps: int = 64) -> ContrastiveEvidence:
    """:class:`ContrastiveEvidence` of one image: the contrastive map beside the two class maps
    ``cam_pred`` and ``cam_true`` (Grad-CAM of each class on the same ``layer``), all three
    graded by deletion on the logit difference."""
    heat = contrastive_grad_cam(model, image, norm, pred, true, layer)
    flip = flip_fraction(model, image, norm, pred, true, {"contrast": heat, "pred": cam_pred, "true": cam_true},
                         steps)
    logits = np.asarray(logits, np.float64)
    return ContrastiveEvidence(int(pred), int(true), heat, float(logits[pred] - logits[true]), flip,
                               centre_share(heat), 1 / steps)

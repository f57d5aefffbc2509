"""Sanity check of attribution maps: cascading model randomisation (Adebayo et al., 2018).

The weights of the model's layers are replaced by random ones, from the logits layer down to
the first convolution, one more layer at each step. A map that explains the *model* should
change as its weights are destroyed; a map that barely changes is explaining the *image*
(edges, contrast), whatever the model learned. Each step's maps are compared with the trained
model's by their Spearman rank correlation, per image.

Everything happens on a private deep copy of the model (:func:`copy.deepcopy` of a
:func:`~cnnviz.hooks.model_view`, so without the shared model's hooks): the model given is
never written, and the random weights come from a :class:`torch.Generator` seeded by ``seed``,
never from the global RNG.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn

from ..hooks import model_view
from ..inputs import Normalization
from ..models.base import CNN
from .attribution import METHODS, _grad_cam_layer, attribution_maps

__all__ = ["SanityResult", "cascading_randomisation", "randomisation_layers", "randomise_layer"]

_WEIGHTED = (nn.Conv2d, nn.Linear)


@dataclass(frozen=True, eq=False)
class SanityResult:
    """What :func:`cascading_randomisation` measured.

    * ``layers``: the randomised layers, top-down; step ``k`` has the first ``k`` randomised
      (step 0 is the trained model), so there are ``L + 1`` steps.
    * ``spearman``: ``(M, L + 1, N) float64``, method x step x image: Spearman correlation of
      the step's map with the trained model's; NaN where a map is constant (no ranks to
      correlate).
    * ``maps``: ``(M, L + 1, H, W) float32``, every step's map of the first image.
    * ``grad_cam_layer``: the layer Grad-CAM used (``None`` without Grad-CAM).
    """

    layers: tuple[str, ...]
    methods: tuple[str, ...]
    spearman: np.ndarray
    maps: np.ndarray
    targets: tuple[int, ...]
    seed: int
    grad_cam_layer: str | None = None

    @property
    def steps(self) -> tuple[str, ...]:
        """Step labels: ``"trained"``, then ``"+ <layer>"`` for each layer randomised on top."""
        return ("trained",) + tuple(f"+ {name}" for name in self.layers)

    def defined(self) -> np.ndarray:
        """``(M, L + 1) int``: images with a defined correlation, per method and step."""
        return np.isfinite(self.spearman).sum(-1)

    def undefined(self) -> np.ndarray:
        """``(M, L + 1) int``: images whose correlation is NaN (a constant map)."""
        return self.spearman.shape[-1] - self.defined()

    def mean(self) -> np.ndarray:
        """``(M, L + 1)``: mean correlation over the images where it is defined (NaN if none)."""
        n = self.defined()
        total = np.where(np.isfinite(self.spearman), self.spearman, 0.0).sum(-1)
        return np.where(n > 0, total / np.maximum(n, 1), np.nan)

    def std(self) -> np.ndarray:
        """``(M, L + 1)``: spread (population standard deviation) over the defined images."""
        n, mean = self.defined(), self.mean()
        dev = np.where(np.isfinite(self.spearman), self.spearman - mean[..., None], 0.0)
        return np.where(n > 0, np.sqrt((dev ** 2).sum(-1) / np.maximum(n, 1)), np.nan)

    def final(self) -> dict[str, float]:
        """Mean correlation after the full cascade (every layer random), per method."""
        return {m: float(v) for m, v in zip(self.methods, self.mean()[:, -1])}

    def cascade(self) -> dict[str, float]:
        """Per method, the mean correlation over the randomised steps (1 to L, each step's mean
        over the images; steps where no image has one left out): how much of the trained map
        survives while the model is taken apart, from the logits down. NaN when none is defined."""
        steps = self.mean()[:, 1:]
        n = np.isfinite(steps).sum(1)
        total = np.where(np.isfinite(steps), steps, 0.0).sum(1)
        return {m: float(t / k) if k else math.nan for m, t, k in zip(self.methods, total, n)}

    def verdict(self, threshold: float = 0.5) -> dict[str, str]:
        """Per method: ``"decorrelates"`` when :meth:`cascade` is below ``threshold`` (the map
        follows the weights), ``"barely changes"`` otherwise (the map survives randomisation:
        it shows the image more than the model), ``"undefined"`` when no step had a defined
        correlation. The mean over the cascade, not its last step, because a method that only
        changes once the first convolution is random (guided backprop) still ignores every layer
        that decides the class."""
        return {m: "undefined" if math.isnan(v) else "decorrelates" if v < threshold else "barely changes"
                for m, v in self.cascade().items()}

    def table(self, threshold: float = 0.5) -> list[dict[str, object]]:
        """One row per method: the mean correlation after each step (keyed by step label),
        after the full cascade, its mean over the cascade, how many final correlations were
        undefined, and the verdict."""
        mean, undefined, verdict, cascade = self.mean(), self.undefined(), self.verdict(threshold), self.cascade()
        return [{"method": m, **{s: float(v) for s, v in zip(self.steps, mean[i])},
                 "full cascade": float(mean[i, -1]), "cascade mean": cascade[m], "undefined": int(undefined[i, -1]),
                 "verdict": verdict[m]} for i, m in enumerate(self.methods)]

    def to_dict(self, threshold: float = 0.5) -> dict[str, object]:
        """JSON-ready numbers (NaN -> ``None``); the maps are left out."""
        def clean(a: np.ndarray) -> list:
            return np.where(np.isfinite(a), a, None).tolist()

        return {"layers": list(self.layers), "methods": list(self.methods), "steps": list(self.steps),
                "targets": list(self.targets), "seed": self.seed, "grad_cam_layer": self.grad_cam_layer,
                "spearman": clean(self.spearman), "mean": clean(self.mean()),
                "undefined": self.undefined().tolist(), "threshold": threshold,
                "cascade_mean": {m: (None if math.isnan(v) else v) for m, v in self.cascade().items()},
                "verdict": self.verdict(threshold)}


def randomisation_layers(model: nn.Module) -> list[str]:
    """Names of the layers with weights (``nn.Conv2d``, ``nn.Linear``), top-down: the reverse
    of their registration order, which is forward order for every cnnviz model (the logits
    layer first, the first convolution last)."""
    return [n for n, m in model.named_modules() if isinstance(m, _WEIGHTED)][::-1]


@torch.no_grad()
def randomise_layer(module: nn.Module, generator: torch.Generator) -> None:
    """Draw ``module``'s weight and bias afresh, from PyTorch's default initialisation for
    ``nn.Conv2d`` / ``nn.Linear``: weight ``kaiming_uniform(a=sqrt(5))``, bias
    ``uniform(-1/sqrt(fan_in), 1/sqrt(fan_in))``. Drawn on the CPU, so a seed gives the same
    weights on every device; dtype, device and memory format stay the module's."""
    weight = torch.empty(module.weight.shape)
    nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)
    module.weight.copy_(weight)
    if getattr(module, "bias", None) is not None:
        fan_in, _ = nn.init._calculate_fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        module.bias.copy_(torch.empty(module.bias.shape).uniform_(-bound, bound, generator=generator))


def cascading_randomisation(
    model: CNN,
    images: np.ndarray,
    norm: Normalization,
    targets: Sequence[int] | np.ndarray,
    methods: Sequence[str] = METHODS,
    seed: int = 0,
    layer: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    **attribution_kwargs,
) -> SanityResult:
    """Randomise ``model``'s layers top-down, cumulatively, and correlate every step's maps
    with the trained model's.

    ``images``: ``(N, H, W, 3) uint8`` with ``norm``; ``targets``: one class per image (usually
    the trained model's prediction). ``layer``: the Grad-CAM layer (default its last
    convolution; the names survive randomisation). ``attribution_kwargs`` go to
    :func:`~cnnviz.inspect.attribution.attribution_maps` (``ig_steps``, ``internal_batch_size``,
    occlusion geometry). ``progress(done, total)`` is called after each method's maps, of
    ``total = len(methods) * (L + 1)``. ``model`` is left bit-identical and the global RNG
    untouched.
    """
    methods = (methods,) if isinstance(methods, str) else tuple(dict.fromkeys(methods))
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"unknown attribution method(s) {unknown or list(methods)}; choose from {', '.join(METHODS)}")
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8 or not len(images):
        raise ValueError(f"images must be (N, H, W, 3) uint8 with N >= 1, got {images.shape} {images.dtype}")
    targets = tuple(int(t) for t in np.asarray(targets).reshape(-1))
    if len(targets) != len(images):
        raise ValueError(f"{len(targets)} targets for {len(images)} images")
    gc_layer = _grad_cam_layer(model, layer) if "grad_cam" in methods else None
    layers = randomisation_layers(model)
    if not layers:
        raise ValueError(f"{type(model).__name__} has no nn.Conv2d or nn.Linear layer to randomise")

    work = copy.deepcopy(model_view(model))  # private weights, no hooks, eval mode
    generator = torch.Generator().manual_seed(seed)
    n_steps, total = len(layers) + 1, len(methods) * (len(layers) + 1)
    rho = np.full((len(methods), n_steps, len(images)), np.nan)
    first = np.zeros((len(methods), n_steps) + images.shape[1:3], np.float32)
    trained: list[np.ndarray] = []
    for step in range(n_steps):
        if step:
            randomise_layer(work.get_submodule(layers[step - 1]), generator)
        for i, method in enumerate(methods):
            maps = attribution_maps(work, images, norm, targets, method, layer=gc_layer, **attribution_kwargs)
            if not step:
                trained.append(maps)
            rho[i, step] = [_spearman(a, b) for a, b in zip(trained[i], maps)]
            first[i, step] = maps[0]
            if progress is not None:
                progress(step * len(methods) + i + 1, total)
    return SanityResult(tuple(layers), methods, rho, first, targets, seed, gc_layer)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two maps, flattened; NaN when either is constant, exactly 1
    for two equal maps (scipy may give 1 - 2e-16)."""
    a, b = a.ravel(), b.ravel()
    if a.min() == a.max() or b.min() == b.max():
        return math.nan
    if np.array_equal(a, b):
        return 1.0
    return float(spearmanr(a, b).statistic)

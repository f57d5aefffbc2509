"""Attribution maps: which input pixels (or which regions) a class score depends on.

One call, :func:`attribute`, runs any of five methods on one image and returns
:class:`Attribution` results, each with a ``(H, W) float32`` map in ``[0, 1]`` at input
resolution plus the method's raw output. The methods come from Captum:

* ``saliency``: ``|d score / d input|`` (max over colour channels);
* ``integrated_gradients``: gradients averaged along a straight path from a baseline (the
  normalised zero image, i.e. the dataset's mean colour) to the input, times ``input - baseline``
  (sum of absolute values over colour channels);
* ``grad_cam``: channel-weighted activations of one convolutional layer, negative part dropped
  at the layer's resolution, then upsampled bilinearly to the input size;
* ``occlusion``: score drop when a square patch is replaced by the baseline (mean colour);
  positive part kept;
* ``guided_backprop``: gradients in which every activation module (``nn.ReLU`` as in the paper,
  and likewise GELU, SiLU and the others) also blocks negative gradients (absolute value, max over
  colour channels). On a ReLU network this is Captum's ``GuidedBackprop`` exactly (tested);
  Captum guides only ``nn.ReLU``, which on a GELU network would leave plain gradients.

Gradients are taken with ``torch.autograd.grad`` with respect to the input only, so no ``.grad``
ever accumulates on the model's parameters. Captum runs on a private view of the model
(:func:`~cnnviz.hooks.model_view`: eval mode, every ``inplace=True`` flag off so that its hooks
see unmodified tensors); its hooks go on that view, so the shared model is never changed and
two threads may attribute on one model at once.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam, Occlusion, Saliency
from torch import nn

from ..hooks import model_view
from ..inputs import Normalization, to_input
from ..runtime import device_of
from ..models.base import CNN

__all__ = ["METHODS", "Attribution", "attribute", "attribution_maps", "default_grad_cam_layer", "occlusion_geometry"]

METHODS: tuple[str, ...] = ("saliency", "integrated_gradients", "grad_cam", "occlusion", "guided_backprop")

# Activation modules whose backward pass guided backprop clamps to non-negative gradients.
_ACTIVATIONS = (
    nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Mish, nn.ELU, nn.CELU, nn.SELU, nn.LeakyReLU, nn.PReLU, nn.Hardtanh,
    nn.Hardswish, nn.Hardsigmoid, nn.Softplus, nn.Tanh, nn.Sigmoid,
)


@dataclass(frozen=True, eq=False)
class Attribution:
    """One method's answer for one image and one target class.

    * ``map``: ``(H, W) float32`` in ``[0, 1]`` at input resolution (largest value 1 unless the
      map is all zero); what to draw.
    * ``raw``: the method's output before that normalisation, ``(3, H, W) float32`` for the
      per-pixel methods (saliency, integrated gradients, guided backprop), ``(H, W) float32`` for
      Grad-CAM (signed, upsampled) and occlusion (signed score drop).
    * ``layer``: the Grad-CAM layer name, else ``None``.
    * ``note``: a caveat about how to read this map for this model ("" when none).
    """

    method: str
    map: np.ndarray
    raw: np.ndarray
    target: int
    layer: str | None = None
    note: str = ""


def occlusion_geometry(height: int, width: int) -> tuple[int, int]:
    """``(window, stride)`` in pixels for occlusion on an image of that size: an eighth of the
    shorter side and half of that, so every size takes about 15 x 15 patch positions."""
    window = max(1, round(min(height, width) / 8))
    return window, max(1, window // 2)


def attribute(
    model: CNN,
    image: np.ndarray,
    norm: Normalization,
    target: int,
    methods: Sequence[str] = METHODS,
    layer: str | None = None,
    ig_steps: int = 32,
    internal_batch_size: int = 16,
    occlusion_window: int | None = None,
    occlusion_stride: int | None = None,
) -> dict[str, Attribution]:
    """Attribution maps of ``model``'s logit ``target`` for one image, keyed by method name.

    ``image``: ``(H, W, 3) uint8``, already at the size the model expects; ``norm`` turns it into
    the model's input. ``layer``: the Grad-CAM layer, a name from ``model.layer_names()`` with a
    spatial ``(N, C, h, w)`` output (default: :func:`default_grad_cam_layer`). ``ig_steps``: integration
    steps; ``internal_batch_size``: at most this many images go through the model at once
    (integrated gradients, occlusion), which bounds memory. ``occlusion_window`` /
    ``occlusion_stride``: square patch side and step in pixels (default:
    :func:`occlusion_geometry`). Runs on the device of the model's parameters.
    """
    methods, image, target, gc_layer, window, stride = _checked_arguments(
        model, image, target, methods, layer, ig_steps, internal_batch_size, occlusion_window,
        occlusion_stride)

    x = to_input(image, norm, device_of(model))  # (1, 3, H, W) float32
    view = model_view(model)  # eval, no in-place activations; hooks stay on the view
    out: dict[str, Attribution] = {}
    for method in dict.fromkeys(methods):
        raw, heat = _run(view, x, torch.tensor([target]), method, gc_layer, ig_steps, internal_batch_size,
                         window, stride)
        out[method] = _result(method, raw[0], heat[0], target, layer=gc_layer if method == "grad_cam" else None,
                              note=_guided_note(view) if method == "guided_backprop" else "")
    return out


def attribution_maps(
    model: CNN,
    images: np.ndarray | torch.Tensor,
    norm: Normalization | None,
    targets: Sequence[int] | np.ndarray,
    method: str,
    layer: str | None = None,
    ig_steps: int = 32,
    internal_batch_size: int = 16,
    occlusion_window: int | None = None,
    occlusion_stride: int | None = None,
) -> np.ndarray:
    """One method's maps for a batch: ``(N, H, W) float32``, each in ``[0, 1]`` as
    :attr:`Attribution.map` (the same numbers :func:`attribute` gives one image at a time).

    ``images``: ``(N, H, W, 3) uint8`` with ``norm``, or the model's input ``(N, 3, H, W) float32``
    with ``norm=None``. ``targets``: one class per image. Other arguments as :func:`attribute`."""
    if isinstance(images, torch.Tensor) and norm is None:
        x = images.float().to(device_of(model))
        probe = np.zeros((x.shape[2], x.shape[3], 3), np.uint8)
    else:
        images = np.asarray(images)
        if images.ndim != 4:
            raise ValueError(f"images must be (N, H, W, 3) uint8, got {images.shape} {images.dtype}")
        probe = np.zeros(images.shape[1:], images.dtype)
        x = to_input(images, norm, device_of(model)) if len(images) else None
    targets = [int(t) for t in np.asarray(targets).reshape(-1)]
    if x is None or not targets:
        return np.zeros((0,) + probe.shape[:2], np.float32)
    if len(targets) != x.shape[0]:
        raise ValueError(f"{len(targets)} targets for {x.shape[0]} images")
    (method,), _, _, gc_layer, window, stride = _checked_arguments(
        model, probe, targets[0], (method,), layer, ig_steps, internal_batch_size, occlusion_window,
        occlusion_stride)
    for t in targets:
        _check_target(model, t)
    _, heat = _run(model_view(model), x, torch.tensor(targets), method, gc_layer, ig_steps,
                   internal_batch_size, window, stride)
    return _normalised(heat).cpu().numpy()


def _run(view: nn.Module, x: torch.Tensor, targets: torch.Tensor, method: str, gc_layer: str | None,
         ig_steps: int, internal_batch_size: int, window: int, stride: int
         ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(raw, heat)`` of one method for a batch on a private view: raw ``(N, 3, H, W)`` or
    ``(N, H, W)``, heat ``(N, H, W)`` before normalisation."""
    targets = targets.to(x.device)
    with torch.inference_mode(False), torch.enable_grad():
        x = x.detach().clone().requires_grad_(True)
        if method == "saliency":
            raw = Saliency(view).attribute(x, target=targets, abs=True)
            return raw, raw.amax(1)
        if method == "integrated_gradients":
            raw = IntegratedGradients(view).attribute(
                x, baselines=torch.zeros_like(x), target=targets, n_steps=ig_steps,
                internal_batch_size=max(internal_batch_size, len(x)))
            return raw, raw.abs().sum(1)
        if method == "grad_cam":
            return _grad_cam(view, x, targets, gc_layer)
        if method == "occlusion":
            raw = Occlusion(view).attribute(
                x, sliding_window_shapes=(3, window, window), strides=(3, stride, stride),
                baselines=0.0, target=targets, perturbations_per_eval=internal_batch_size).mean(1)
            return raw, raw
        raw = _guided_backprop(view, x, targets)
        return raw, raw.abs().amax(1)


def _guided_backprop(view: nn.Module, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Input gradient of the target logits with every activation module's input gradient clamped
    at zero (Springenberg et al.'s rule, for any activation). Hooks live on the private view."""
    def clamp(module, grad_input, grad_output):
        return tuple(None if g is None else F.relu(g) for g in grad_input)

    handles = [m.register_full_backward_hook(clamp) for m in view.modules() if isinstance(m, _ACTIVATIONS)]
    try:
        logits = view(x)
        picked = logits.gather(1, targets.view(-1, 1)).sum()
        (grad,) = torch.autograd.grad(picked, x)
    finally:
        for h in handles:
            h.remove()
    return grad


# ------------------------------------------------------------------------------------------------


def _checked_arguments(
    model: CNN, image: np.ndarray, target: int, methods: Sequence[str], layer: str | None,
    ig_steps: int, internal_batch_size: int, occlusion_window: int | None, occlusion_stride: int | None,
) -> tuple[tuple[str, ...], np.ndarray, int, str | None, int, int]:
    """:func:`attribute`'s arguments checked, in its order: ``(methods, image, target,
    grad_cam_layer, occlusion_window, occlusion_stride)``, defaults filled in."""
    methods = (methods,) if isinstance(methods, str) else tuple(methods)
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"unknown attribution method(s) {unknown or list(methods)}; "
                         f"choose from {', '.join(METHODS)}")
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    target = _check_target(model, target)
    if ig_steps < 1 or internal_batch_size < 1:
        raise ValueError(f"ig_steps and internal_batch_size must be >= 1, got {ig_steps}, {internal_batch_size}")
    gc_layer = _grad_cam_layer(model, layer) if "grad_cam" in methods else None
    h, w = image.shape[:2]
    auto_window, auto_stride = occlusion_geometry(h, w)
    window, stride = occlusion_window or auto_window, occlusion_stride or auto_stride
    if not (1 <= window <= min(h, w)) or stride < 1:
        raise ValueError(f"occlusion window {window} / stride {stride} do not fit a {h}x{w} image")
    return methods, image, target, gc_layer, window, stride


def _check_target(model: nn.Module, target: int) -> int:
    try:
        target = operator.index(target)
    except TypeError:
        raise TypeError(f"target must be a class index (int), got {type(target).__name__}") from None
    n = getattr(model, "num_classes", None)
    if n is not None and not 0 <= target < n:
        raise ValueError(f"target {target} is out of range: the model has {n} classes (0..{n - 1})")
    return target


def default_grad_cam_layer(model: CNN) -> str:
    """The layer Grad-CAM uses unless told: the activation that follows the last convolution (its
    rectified maps, as in the paper; the convolution's own output, before BatchNorm and the
    activation, is mostly negative evidence and often gives an all-zero map), else the last
    ``nn.Conv2d`` when no activation module follows it (e.g. a ResNet's reused ReLU)."""
    names = model.layer_names()
    convs = [i for i, n in enumerate(names) if isinstance(model.get_submodule(n), nn.Conv2d)]
    if not convs:
        raise ValueError(f"{type(model).__name__} has no nn.Conv2d for Grad-CAM; pass layer= one of: "
                         f"{', '.join(names)}")
    after = [n for n in names[convs[-1] + 1:] if isinstance(model.get_submodule(n), _ACTIVATIONS)]
    return after[0] if after else names[convs[-1]]


def _grad_cam_layer(model: CNN, layer: str | None) -> str:
    names = model.layer_names()
    if layer is None:
        return default_grad_cam_layer(model)
    if layer not in names:
        raise ValueError(f"unknown layer {layer!r} for Grad-CAM; choose one of model.layer_names(): "
                         f"{', '.join(names)}")
    return layer


def _grad_cam(model: CNN, x: torch.Tensor, target: torch.Tensor, layer: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Grad-CAM of ``layer`` at ``x``'s size: ``(signed, ReLU'd)``, each ``(N, H, W)``.

    The heat map is ReLU'd at the layer's resolution and then upsampled bilinearly, as in the
    paper (and pytorch_grad_cam); ReLU after upsampling would blur zero crossings differently."""
    cam = LayerGradCam(model, model.get_submodule(layer)).attribute(x, target=target)
    if cam.ndim != 4:
        raise ValueError(f"layer {layer!r} has no spatial output (Grad-CAM needs (N, C, h, w)); pick a "
                         f"convolutional layer from model.layer_names()")
    both = LayerAttribution.interpolate(torch.cat([cam, F.relu(cam)], 1), tuple(x.shape[-2:]),
                                        interpolate_mode="bilinear")
    return both[:, 0], both[:, 1]


def _guided_note(model: nn.Module) -> str:
    if any(isinstance(m, _ACTIVATIONS) for m in model.modules()):
        return ""
    return ("no activation modules in this model (functional activations cannot be hooked), so this map "
            "is the plain input gradient")


def _result(method: str, raw: torch.Tensor, heat: torch.Tensor, target: int, layer: str | None = None,
            note: str = "") -> Attribution:
    """Package tensors: ``heat`` (H, W) -> positive part scaled so its maximum is 1."""
    return Attribution(method, _normalised(heat[None])[0].cpu().numpy(),
                       raw.detach().float().cpu().numpy().astype(np.float32), target, layer, note)


def _normalised(heat: torch.Tensor) -> torch.Tensor:
    """``(N, H, W)`` -> float32, positive part, each map divided by its maximum (zero maps stay zero)."""
    heat = torch.nan_to_num(F.relu(heat.detach().float()), nan=0.0, posinf=0.0)
    peak = heat.flatten(1).amax(1).view(-1, 1, 1) if heat.numel() else heat
    return torch.where(peak > 0, heat / peak.clamp_min(1e-30), torch.zeros_like(heat)).float()

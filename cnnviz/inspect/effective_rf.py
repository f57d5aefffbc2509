"""Effective receptive fields: which input pixels a unit of a layer responds to, by gradient.

:func:`gradient_rf` is the *effective* receptive field: ``|d unit / d input|`` summed over
input channels for one image; :func:`gradient_probe_size` measures the extent of its non-zero
part to check the theory of :mod:`cnnviz.inspect.receptive_field` (it can only be smaller:
max-pooling and ReLU pass gradient through some inputs only, and the image border clips it).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn.modules.utils import _pair

from ..hooks import capture, model_view, resolve_layers
from ..inputs import Normalization, to_input
from ..runtime import device_of
from .feature_maps import check_images
from .receptive_field import _in_channels, _model_dtype

__all__ = ["gradient_probe_size", "gradient_rf"]


def _input_gradient(model: nn.Module, layer: str, channel: int | None, y: int | None, x: int | None,
                    inp: torch.Tensor) -> torch.Tensor:
    """``d output[0, channel, y, x] / d inp`` for ``inp`` ``(1, C, H, W)`` (``channel=None``: the
    sum over channels at ``(y, x)``); ``y, x`` default to the centre unit. Runs an eval-mode
    view of the model; the model itself is not changed."""
    inp = inp.detach().clone().requires_grad_(True)
    view = model_view(model)
    with torch.enable_grad(), capture(view, layer, detach=False) as acts:
        view(inp)
    out = acts.get(layer)
    if not isinstance(out, torch.Tensor):
        raise RuntimeError(f"layer {layer!r} did not produce a tensor in the forward pass")
    if out.ndim == 2:
        out = out[:, :, None, None]
    c, h, w = out.shape[1:]
    y = h // 2 if y is None else y
    x = w // 2 if x is None else x
    if channel is not None and not 0 <= channel < c:
        raise ValueError(f"channel {channel} out of range: {layer} has {c} channels")
    if not (0 <= y < h and 0 <= x < w):
        raise ValueError(f"unit ({y}, {x}) is outside {layer}'s {h}x{w} output")
    unit = out[0, :, y, x].sum() if channel is None else out[0, channel, y, x]
    (grad,) = torch.autograd.grad(unit, inp, allow_unused=True)
    return torch.zeros_like(inp) if grad is None else grad


def _random_input(model: nn.Module, input_size: int | tuple[int, int], seed: int,
                  device: torch.device) -> torch.Tensor:
    h, w = _pair(input_size)
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, _in_channels(model), h, w, generator=g).to(device, _model_dtype(model))


def gradient_rf(model: nn.Module, layer: str, channel: int, y: int | None = None, x: int | None = None,
                image: np.ndarray | torch.Tensor | None = None, norm: Normalization | None = None,
                input_size: int | tuple[int, int] | None = None, device: torch.device | str | None = None,
                seed: int = 0) -> np.ndarray:
    """Effective receptive field of unit ``(channel, y, x)`` of ``layer`` (default: the centre
    unit): ``|d unit / d input|`` summed over the input channels, ``(H, W) float32``.

    ``image``: ``(H, W, 3) uint8`` with its ``norm``; without one, a seeded standard-normal
    input of ``input_size`` (in normalised units) is used. An eval-mode view of the model runs;
    the model itself (modes, ``requires_grad``, parameter ``.grad``, hooks) is not changed.
    """
    resolve_layers(model, layer)
    dev = torch.device(device) if device is not None else device_of(model)
    if image is not None:
        if norm is None:
            raise ValueError("gradient_rf needs the model's Normalization (norm=) to use an image")
        images = check_images(image)
        if images.shape[0] != 1:
            raise ValueError(f"gradient_rf takes one image, got a batch of {images.shape[0]}")
        inp = to_input(images, norm, dev).to(_model_dtype(model))
    elif input_size is not None:
        inp = _random_input(model, input_size, seed, dev)
    else:
        raise ValueError("pass an image (with norm=) or an input_size for a random input")
    grad = _input_gradient(model, layer, channel, y, x, inp)
    return grad[0].abs().sum(0).float().cpu().numpy()


def gradient_probe_size(model: nn.Module, layer: str, input_size: int | tuple[int, int],
                        channel: int | None = None, trials: int = 4, seed: int = 0) -> tuple[int, int]:
    """Measured ``(height, width)`` of the input region with non-zero gradient for the centre
    position of ``layer`` (``channel``, or by default the sum over all channels, so a channel
    that happens to be an identity, such as a freshly initialised ``cifar_fast`` convolution's
    first ones, does not hide the others), over the union of ``trials`` seeded random inputs.

    At most the theoretical size (:func:`~cnnviz.inspect.receptive_field.receptive_fields`) where that fits in the image; equal
    to it for convolution stacks with non-zero weights and no gating (max-pool, ReLU);
    ``(0, 0)`` when no input pixel matters.
    """
    resolve_layers(model, layer)
    dev = device_of(model)
    support = None
    for t in range(trials):
        g = _input_gradient(model, layer, channel, None, None, _random_input(model, input_size, seed + t, dev))
        nz = (g[0].abs().sum(0) > 0).cpu().numpy()
        support = nz if support is None else support | nz
    if support is None or not support.any():
        return 0, 0
    rows, cols = np.flatnonzero(support.any(1)), np.flatnonzero(support.any(0))
    return int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)

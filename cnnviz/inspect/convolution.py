"""The first convolution, one output pixel at a time: input patch x kernel -> products -> sum + bias.

What a lecture's "convolution, step by step" slide shows, on a real kernel of a real model and
a real image. Everything is the layer's *raw* output (before any BatchNorm or activation), on
the *normalised* input the model sees: ``to_input(image, norm)``, padded as the layer pads it.

Padding counts both the convolution's own ``padding`` and any zero padding the model applies
just before it (``cifar_fast``'s whitening stem pads the right and bottom by one pixel with a
``ZeroPad2d``): the module's input is captured in a forward pass that stops at the convolution,
so the geometry is the one the model really uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..hooks import model_view
from ..inputs import Normalization, to_input
from ..runtime import device_of
from .filters import first_conv_name

__all__ = ["ConvOutput", "ConvStep", "conv_output", "conv_step"]

Pad4 = tuple[int, int, int, int]


@dataclass(frozen=True, eq=False)
class ConvStep:
    """One output pixel: the patch under the kernel, the products and their sum.

    * ``position``: flat index of the output pixel, row-major (``row * out_w + col``).
    * ``row``, ``col``: the output pixel; ``top``, ``left``: the window's top-left cell on the
      padded input (``row * stride_y``, ``col * stride_x``).
    * ``patch``: ``(C_in, kh, kw) float32``, the padded normalised input at the kernel's taps
      (every ``dilation``-th cell of the window).
    * ``kernel``: ``(C_in, kh, kw) float32``; ``product``: ``patch * kernel``.
    * ``on_padding``: ``(kh, kw) bool``, taps that fall on the padding, not on the image.
    * ``total``: sum of the products (summed in float64); ``bias``: the layer's bias for this
      kernel (0 when ``has_bias`` is False); ``value = total + bias``: the output pixel.
    """

    position: int
    row: int
    col: int
    top: int
    left: int
    patch: np.ndarray
    kernel: np.ndarray
    product: np.ndarray
    on_padding: np.ndarray
    total: float
    bias: float
    has_bias: bool
    value: float

    @property
    def num_products(self) -> int:
        return int(self.product.size)

    @property
    def channel_sums(self) -> np.ndarray:
        """``(C_in,) float64``: the sum of the products of each input channel."""
        return self.product.reshape(len(self.product), -1).sum(axis=1, dtype=np.float64)


@dataclass(frozen=True, eq=False)
class ConvOutput:
    """One kernel of the first convolution applied to one image.

    * ``layer``: the convolution's name in the model (``"features.0"``; ``""`` for a bare
      ``nn.Conv2d``); ``channel``: the kernel (output channel); ``out_channels``: how many.
    * ``kernel``: ``(C_in, kh, kw) float32``, a copy of the layer's weights;
      ``bias``: its bias (0.0 when ``has_bias`` is False).
    * ``stride``, ``dilation``: ``(y, x)``; ``padding``: ``(top, bottom, left, right)`` cells
      around the image in ``padded``, of which ``pre_padding`` are zeros the model adds before
      the layer and the rest the layer's own (``padding_mode``: ``"zeros"``, ``"reflect"``...).
    * ``padded``: ``(C_in, Hp, Wp) float32``, the normalised input with all its padding.
    * ``image``: ``(H, W, 3) uint8`` as given, or None when a normalised tensor was given.
    * ``output``: ``(out_h, out_w) float32``, this kernel's output map computed by
      ``torch.nn.functional.conv2d`` from ``padded`` and the layer's weights.
    """

    layer: str
    channel: int
    out_channels: int
    kernel: np.ndarray
    bias: float
    has_bias: bool
    stride: tuple[int, int]
    dilation: tuple[int, int]
    padding: Pad4
    pre_padding: Pad4
    padding_mode: str
    padded: np.ndarray
    image: np.ndarray | None
    output: np.ndarray

    @property
    def in_channels(self) -> int:
        return int(self.kernel.shape[0])

    @property
    def kernel_size(self) -> tuple[int, int]:
        return int(self.kernel.shape[1]), int(self.kernel.shape[2])

    @property
    def span(self) -> tuple[int, int]:
        """Height and width of the window on the padded input: ``dilation * (k - 1) + 1``."""
        (kh, kw), (dy, dx) = self.kernel_size, self.dilation
        return dy * (kh - 1) + 1, dx * (kw - 1) + 1

    @property
    def image_size(self) -> tuple[int, int]:
        t, b, l, r = self.padding
        return self.padded.shape[1] - t - b, self.padded.shape[2] - l - r

    @property
    def out_size(self) -> tuple[int, int]:
        return int(self.output.shape[0]), int(self.output.shape[1])

    @property
    def num_positions(self) -> int:
        return int(self.output.size)

    @property
    def inside(self) -> np.ndarray:
        """``(Hp, Wp) bool``: True on the image, False on the padding."""
        t, _, l, _ = self.padding
        h, w = self.image_size
        mask = np.zeros(self.padded.shape[1:], dtype=bool)
        mask[t:t + h, l:l + w] = True
        return mask

    def row_col(self, position: int) -> tuple[int, int]:
        """Output pixel ``(row, col)`` of a flat ``position``."""
        if not 0 <= position < self.num_positions:
            raise ValueError(f"position {position} out of range: the output has {self.num_positions} "
                             f"pixels ({self.out_size[0]} x {self.out_size[1]})")
        return divmod(int(position), self.out_size[1])

    def position(self, row: int, col: int) -> int:
        """Flat index of output pixel ``(row, col)``."""
        h, w = self.out_size
        if not (0 <= row < h and 0 <= col < w):
            raise ValueError(f"output pixel ({row}, {col}) out of range: the output is {h} x {w}")
        return int(row) * w + int(col)

    def window(self, position: int) -> tuple[int, int, int, int]:
        """The window of output ``position`` on the padded input: ``(top, left, bottom, right)``,
        bottom and right exclusive."""
        row, col = self.row_col(position)
        top, left = row * self.stride[0], col * self.stride[1]
        sh, sw = self.span
        return top, left, top + sh, left + sw

    def _taps(self, top: int, left: int) -> tuple[slice, slice]:
        (sh, sw), (dy, dx) = self.span, self.dilation
        return slice(top, top + sh, dy), slice(left, left + sw, dx)

    def step(self, position: int | tuple[int, int]) -> ConvStep:
        """The patch, products and sum at a flat ``position`` or an output ``(row, col)``."""
        if isinstance(position, tuple):
            position = self.position(*position)
        row, col = self.row_col(int(position))
        top, left, _, _ = self.window(int(position))
        ys, xs = self._taps(top, left)
        patch = np.ascontiguousarray(self.padded[:, ys, xs])
        product = patch * self.kernel
        total = float(product.sum(dtype=np.float64))
        return ConvStep(
            position=int(position), row=row, col=col, top=top, left=left, patch=patch,
            kernel=self.kernel, product=product, on_padding=~self.inside[ys, xs], total=total,
            bias=self.bias, has_bias=self.has_bias, value=total + self.bias)

    def patches(self) -> np.ndarray:
        """Every position's patch, ``(num_positions, C_in, kh, kw) float32``, row-major."""
        (kh, kw), (dy, dx), (sy, sx) = self.kernel_size, self.dilation, self.stride
        cols = F.unfold(torch.from_numpy(self.padded)[None], (kh, kw), dilation=(dy, dx), stride=(sy, sx))
        return cols[0].T.reshape(-1, self.in_channels, kh, kw).numpy()


def _pair(v: int | tuple[int, ...]) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _conv_padding(conv: nn.Conv2d) -> Pad4:
    """The layer's own ``(top, bottom, left, right)`` padding (``"same"`` puts the odd cell at
    the bottom/right, as PyTorch does)."""
    (kh, kw), (dy, dx) = _pair(conv.kernel_size), _pair(conv.dilation)
    if conv.padding == "valid":
        return 0, 0, 0, 0
    if conv.padding == "same":
        th, tw = dy * (kh - 1), dx * (kw - 1)
        return th // 2, th - th // 2, tw // 2, tw - tw // 2
    ph, pw = _pair(conv.padding)
    return ph, ph, pw, pw


class _Reached(Exception):
    """Raised by the pre-hook: the first convolution's input is captured, stop the pass."""


def _conv_input(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """What ``model.first_conv`` receives when ``model`` runs on ``x`` (an eval-mode private view
    of the model runs up to that layer only), as float32 on the CPU."""
    view = model_view(model)
    seen: list[torch.Tensor] = []

    def hook(module: nn.Module, args: tuple) -> None:
        seen.append(args[0].detach())
        raise _Reached

    handle = view.first_conv.register_forward_pre_hook(hook)
    try:
        with torch.no_grad():
            view(x.to(device_of(model)))
    except _Reached:
        pass
    finally:
        handle.remove()
    if not seen:
        raise RuntimeError(f"{type(model).__name__}'s forward pass did not reach its first convolution")
    return seen[0].float().cpu()


def _placement(seen: torch.Tensor, x: torch.Tensor) -> Pad4:
    """Where the image ``x`` sits in ``seen`` (the layer's input): ``(top, bottom, left, right)``
    zero cells around it. Raises when ``seen`` is not ``x`` with zeros around it."""
    (h, w), (hs, ws) = x.shape[-2:], seen.shape[-2:]
    if seen.shape[:2] == x.shape[:2] and hs >= h and ws >= w:
        for top in range(hs - h + 1):
            for left in range(ws - w + 1):
                if torch.equal(seen[..., top:top + h, left:left + w], x):
                    rest = seen.clone()
                    rest[..., top:top + h, left:left + w] = 0
                    if not rest.any():
                        return top, hs - h - top, left, ws - w - left
    raise ValueError(f"the first convolution does not see the normalised image (with zero padding "
                     f"at most): its input is {tuple(seen.shape)} for an image of {tuple(x.shape)}; "
                     "this view shows only models whose first layer reads the image itself")


def _normalised(image: np.ndarray | torch.Tensor, norm: Normalization | None
                ) -> tuple[torch.Tensor, np.ndarray | None]:
    """``(1, C, H, W) float32`` on the CPU, and the ``uint8`` image when one was given."""
    if isinstance(image, torch.Tensor) and image.dtype == torch.uint8:
        image = image.cpu().numpy()
    if isinstance(image, np.ndarray) and image.dtype == np.uint8:
        if image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"expected an image (H, W, 3) uint8, got shape {image.shape}")
        if norm is None:
            raise ValueError("a uint8 image needs the checkpoint's Normalization (meta.normalization)")
        return to_input(image, norm), np.ascontiguousarray(image)
    x = torch.as_tensor(np.asarray(image) if not isinstance(image, torch.Tensor) else image)
    if not x.is_floating_point() or x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[0] != 1):
        raise ValueError(f"expected an image (H, W, 3) uint8 or a normalised input (C, H, W) float, "
                         f"got {tuple(x.shape)} {x.dtype}")
    return x.detach().float().cpu().reshape(1, *x.shape[-3:]), None


def conv_output(model: nn.Module, image: np.ndarray | torch.Tensor, norm: Normalization | None = None,
                channel: int = 0) -> ConvOutput:
    """Kernel ``channel`` of the first convolution on ``image``: the padded input and the
    whole output map (see :class:`ConvOutput`; :meth:`ConvOutput.step` gives one pixel).

    ``model``: a cnnviz model (its ``first_conv``) or an ``nn.Conv2d``. ``image``: ``(H, W, 3)
    uint8`` normalised with ``norm`` as ``to_input`` does, or an already normalised ``(C, H, W)``
    float input. The model is not changed: weights are copied, the forward pass that finds the
    layer's input runs on an eval-mode private view. Only ``groups=1`` convolutions are shown.
    """
    conv = model if isinstance(model, nn.Conv2d) else getattr(model, "first_conv", None)
    if not isinstance(conv, nn.Conv2d):
        raise TypeError(f"{type(model).__name__} has no first_conv: pass a cnnviz model or an nn.Conv2d")
    if conv.groups != 1:
        raise ValueError(f"the first convolution has groups={conv.groups}: this view shows only "
                         "groups=1 (every kernel sees every input channel)")
    if not 0 <= channel < conv.out_channels:
        raise ValueError(f"kernel {channel} out of range: the layer has {conv.out_channels} kernels")
    x, pixels = _normalised(image, norm)
    if x.shape[1] != conv.in_channels:
        raise ValueError(f"the input has {x.shape[1]} channels, the convolution expects {conv.in_channels}")
    if conv is model:
        seen, pre, layer = x, (0, 0, 0, 0), ""
    else:
        seen = _conv_input(model, x)
        pre, layer = _placement(seen, x), first_conv_name(model)
    own = _conv_padding(conv)
    t, b, l, r = own
    mode = "constant" if conv.padding_mode == "zeros" else conv.padding_mode
    padded = F.pad(seen, (l, r, t, b), mode=mode) if any(own) else seen
    weight = conv.weight.detach().to("cpu", torch.float32)[channel:channel + 1].clone()
    bias = None if conv.bias is None else conv.bias.detach().to("cpu", torch.float32)[channel:channel + 1].clone()
    stride, dilation = _pair(conv.stride), _pair(conv.dilation)
    with torch.no_grad():
        out = F.conv2d(padded, weight, bias, stride=stride, padding=0, dilation=dilation)
    return ConvOutput(
        layer=layer, channel=int(channel), out_channels=int(conv.out_channels),
        kernel=weight[0].numpy(), bias=0.0 if bias is None else float(bias[0]), has_bias=bias is not None,
        stride=stride, dilation=dilation,
        padding=tuple(p + q for p, q in zip(pre, own)),  # type: ignore[arg-type]
        pre_padding=pre, padding_mode=conv.padding_mode, padded=padded[0].numpy().copy(),
        image=pixels, output=out[0, 0].numpy().copy())


def conv_step(model: nn.Module, image: np.ndarray | torch.Tensor, norm: Normalization | None,
              channel: int, position: int | tuple[int, int]) -> ConvStep:
    """One output pixel of :func:`conv_output`: ``position`` flat (row-major) or ``(row, col)``."""
    return conv_output(model, image, norm, channel).step(position)

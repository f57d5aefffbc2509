"""A fast CIFAR-sized net in the style of the fastest published CIFAR-10 recipes.

A stem, then three conv groups (conv-pool-BN-GELU-conv-BN-GELU)
of widths 64/256/256 with identity-initialised convolutions, BatchNorm with frozen scales and
trainable biases, and a max-pooled linear head. The stem is either the recipe's frozen 2x2
patch-whitening convolution (``cifar_fast``) or a learned convolution with BatchNorm
(``cifar_lecture``: 48 kernels of 5x5, the first layer a lecture shows). The penultimate vector is the flattened
``256 x 4 x 4`` output of the last group: 4096-d with no fully connected layer.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from . import register_model
from .base import CNN


class _Conv(nn.Conv2d):
    def __init__(self, cin: int, cout: int, kernel_size: int = 3, padding: int | str = "same",
                 bias: bool = False):
        super().__init__(cin, cout, kernel_size, padding=padding, bias=bias)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if self.bias is not None:
            nn.init.zeros_(self.bias)
        w = self.weight.data
        nn.init.dirac_(w[: min(w.size(0), w.size(1))])  # identity for the first channels


class _BatchNorm(nn.BatchNorm2d):
    """BatchNorm whose scale is frozen at 1; only the bias (shift) trains."""

    def __init__(self, num_features: int, momentum: float = 0.4, eps: float = 1e-12):
        super().__init__(num_features, eps=eps, momentum=momentum)
        self.weight.requires_grad_(False)


class _MaxPool2(nn.MaxPool2d):
    """2x2 max-pool (ceil mode). Without autograd and on even sides it takes the maximum of
    the four strided views instead: the same values, 1.4-4.5x faster than ``max_pool2d`` on
    CPU in bf16 channels-last for this net's three pool shapes (batch 256, measured once)."""

    def __init__(self) -> None:
        super().__init__(2, ceil_mode=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() or x.shape[-1] % 2 or x.shape[-2] % 2:
            return super().forward(x)
        rows = torch.maximum(x[..., 0::2, :], x[..., 1::2, :])
        return torch.maximum(rows[..., 0::2], rows[..., 1::2])


class ConvGroup(nn.Module):
    def __init__(self, cin: int, cout: int, bn_momentum: float):
        super().__init__()
        self.conv1 = _Conv(cin, cout)
        self.pool = _MaxPool2()
        self.norm1 = _BatchNorm(cout, bn_momentum)
        self.act1 = nn.GELU()
        self.conv2 = _Conv(cout, cout)
        self.norm2 = _BatchNorm(cout, bn_momentum)
        self.act2 = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.norm1(self.pool(self.conv1(x))))
        return self.act2(self.norm2(self.conv2(x)))


class CifarFastNet(CNN):
    """``(N, 3, S, S)`` -> logits; ``embed`` gives ``256 * ceil(S/8)**2`` features (4096 at 32;
    a learned stem of stride 2 halves ``S`` first, so 4096 at 64)."""

    def __init__(self, num_classes: int = 10, input_size: int = 32,
                 widths: tuple[int, int, int] = (64, 256, 256), whiten_kernel: int = 2,
                 bn_momentum: float = 0.4, logit_scale: float = 1 / 9,
                 stem: Literal["whiten", "conv"] = "whiten", stem_kernel: int = 5,
                 stem_width: int = 48, stem_init: Literal["random", "whiten"] = "random",
                 stem_stride: int = 1, stem_init_scale: float = 1.0):
        super().__init__()
        self.num_classes = num_classes
        self.stem_kind = stem
        if stem_init not in ("random", "whiten"):
            raise ValueError(f"stem_init must be 'random' or 'whiten', got {stem_init!r}")
        self.stem_init = stem_init
        self.first_conv_learned = stem != "whiten"
        if stem == "whiten":
            self.whiten_kernel = whiten_kernel
            # pad right/bottom so an S-px input keeps S px (even kernels have no symmetric "same")
            self.whiten_pad = nn.ZeroPad2d((0, whiten_kernel - 1, 0, whiten_kernel - 1))
            self.whiten = nn.Conv2d(3, 2 * 3 * whiten_kernel**2, whiten_kernel, padding=0, bias=True)
            self.whiten.weight.requires_grad_(False)
            nn.init.zeros_(self.whiten.bias)
            self.whiten_act = nn.GELU()
            stem_out = self.whiten.out_channels
        elif stem == "conv":
            if stem_kernel % 2 == 0 or stem_kernel < 1:
                raise ValueError(f"stem_kernel must be an odd number of pixels, got {stem_kernel}")
            if stem_init == "whiten" and (stem_width % 2 or stem_width // 2 > 3 * stem_kernel**2):
                raise ValueError(f"a whitening-initialised stem needs an even width of at most "
                                 f"{6 * stem_kernel**2}, got {stem_width}")
            if stem_stride not in (1, 2, 3, 4):
                raise ValueError(f"stem_stride must be 1, 2, 3 or 4, got {stem_stride}")
            if not stem_init_scale > 0:
                raise ValueError(f"stem_init_scale must be above 0, got {stem_init_scale}")
            self.stem_conv = nn.Conv2d(3, stem_width, stem_kernel, stride=stem_stride,
                                       padding=stem_kernel // 2, bias=False)
            with torch.no_grad():  # a small start: what training writes into the kernels outweighs the noise
                self.stem_conv.weight.mul_(stem_init_scale)
            self.stem_norm = _BatchNorm(stem_width, bn_momentum)
            self.stem_act = nn.GELU()
            stem_out = stem_width
        else:
            raise ValueError(f"stem must be 'whiten' or 'conv', got {stem!r}")
        w1, w2, w3 = widths
        if stem == "conv":
            input_size = -(-input_size // stem_stride)
        self.block1 = ConvGroup(stem_out, w1, bn_momentum)
        self.block2 = ConvGroup(w1, w2, bn_momentum)
        self.block3 = ConvGroup(w2, w3, bn_momentum)
        side = -(-input_size // 8)
        self.embed_dim = w3 * side * side
        self._grid = (w3, side, side)
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.fc = nn.Linear(w3, num_classes, bias=False)
        self.logit_scale = logit_scale

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, S, S)`` -> last conv group's map ``(N, 256, S/8, S/8)``."""
        if self.stem_kind == "whiten":
            x = self.whiten_act(self.whiten(self.whiten_pad(x)))
        else:
            x = self.stem_act(self.stem_norm(self.stem_conv(x)))
        return self.block3(self.block2(self.block1(x)))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).flatten(1)

    def head(self, z: torch.Tensor) -> torch.Tensor:
        x = self.pool(z.view(z.shape[0], *self._grid)).flatten(1)
        return self.fc(x) * self.logit_scale

    @torch.no_grad()
    def prepare(self, images: torch.Tensor, eps: float = 5e-4, max_pixels: int = 5_000_000) -> None:
        """Set whitening filters from the covariance of the training images' patches: all of
        them for the frozen whitening stem, the strongest ``stem_width / 2`` (and their
        negatives) as the starting point of a learned stem with ``stem_init="whiten"``;
        nothing to do for a randomly initialised stem. ``images``: ``(N, 3, H, W)`` float32,
        normalised; at most ``max_pixels`` patch positions are used."""
        if self.stem_kind == "whiten":
            filt = whitening_filters(images, self.whiten_kernel, eps, max_pixels)
            self.whiten.weight.copy_(torch.cat([filt, -filt]))
        elif self.stem_init == "whiten":
            conv = self.stem_conv
            filt = whitening_filters(images, conv.kernel_size[0], eps, max_pixels)[: conv.out_channels // 2]
            conv.weight.copy_(torch.cat([filt, -filt]))


def whitening_filters(images: torch.Tensor, k: int, eps: float = 5e-4, max_pixels: int = 5_000_000
                      ) -> torch.Tensor:
    """``(3k², 3, k, k)`` filters that whiten ``k x k`` patches of ``(N, 3, H, W)`` images: the
    covariance's eigenvectors, strongest first, each divided by ``sqrt(eigenvalue + eps)``."""
    n = max(1, max_pixels // max(1, (images.shape[2] - k + 1) * (images.shape[3] - k + 1)))
    x = images[:n].float()
    patches = x.unfold(2, k, 1).unfold(3, k, 1)  # N, C, H', W', k, k
    patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, 3 * k * k)
    cov = patches.T @ patches / len(patches)
    evals, evecs = torch.linalg.eigh(cov)
    evals, evecs = evals.flip(0), evecs.T.flip(0)  # largest first
    return (evecs / torch.sqrt(evals + eps)[:, None]).reshape(-1, 3, k, k)


# Training recipe: nesterov SGD with large norm-bias LR, label smoothing 0.2, triangular LR,
# lookahead EMA of the weights, flips + 2-px translation, flip/shift test-time augmentation.
_MOMENTUM = 0.85
_LR = 11.5 / (1 + 1 / (1 - _MOMENTUM))  # 1.5 for a mean loss over a batch of 1024
_RECIPE = dict(
    epochs=10, batch_size=1024, lr=_LR, momentum=_MOMENTUM, nesterov=True,
    weight_decay=0.0153 / (1 + 1 / (1 - _MOMENTUM)) / _LR,  # lr * wd = 2e-3 per step
    label_smoothing=0.2, norm_lr_scale=64.0, warmup_fraction=0.23, lr_start=0.2, lr_end=0.07,
    lookahead_every=5, lookahead_decay=0.95**5, flip="alternate", translate=2,
    tta="flip_translate", freeze_after={"whiten.bias": 3},
)


@register_model("cifar_fast", "fast CIFAR-sized net (whitening + 64/256/256), 4096-d penultimate",
                train_defaults=_RECIPE, min_input_size=8)
def cifar_fast(num_classes: int, input_size: int, **kwargs) -> CifarFastNet:
    return CifarFastNet(num_classes=num_classes, input_size=input_size, **kwargs)


# The lecture model: a learned 5x5 stem instead of the frozen whitening (so no bias freeze),
# trained longer to make up for the whitening's head start.
_LECTURE_RECIPE = {k: v for k, v in _RECIPE.items() if k != "freeze_after"} | dict(epochs=16)


@register_model("cifar_lecture", "fast CIFAR-sized net with a learned 5x5 first convolution "
                "(48 kernels) + 64/256/256, 4096-d penultimate",
                train_defaults=_LECTURE_RECIPE, min_input_size=8)
def cifar_lecture(num_classes: int, input_size: int, **kwargs) -> CifarFastNet:
    kwargs = {"stem": "conv", "stem_kernel": 5, "stem_width": 48} | kwargs
    return CifarFastNet(num_classes=num_classes, input_size=input_size, **kwargs)


# The same net for 64-px frames (the Simpsons): a learned 7x7 stem of stride 2, so the three
# groups see 32x32 maps as on CIFAR and the penultimate layer stays 4096-d.
@register_model("fast_lecture64", "fast net for 64-px inputs: learned 7x7 stride-2 first convolution "
                "(48 kernels) + 64/256/256, 4096-d penultimate",
                train_defaults=_LECTURE_RECIPE | dict(batch_size=256, lr=_LR / 4, epochs=40, translate=4,
                                                      flip="random", class_balance="loss"),
                min_input_size=16)
def fast_lecture64(num_classes: int, input_size: int, **kwargs) -> CifarFastNet:
    kwargs = {"stem": "conv", "stem_kernel": 7, "stem_width": 48, "stem_stride": 2} | kwargs
    return CifarFastNet(num_classes=num_classes, input_size=input_size, **kwargs)


# The same net for 96-px frames: a learned 9x9 stem of stride 3 brings 96 px to the same 32x32
# grid, so it costs about what the 64-px net does while the first layer sees finer detail.
@register_model("fast_lecture96", "fast net for 96-px inputs: learned 9x9 stride-3 first convolution "
                "(48 kernels) + 64/256/256, 4096-d penultimate",
                train_defaults=_LECTURE_RECIPE | dict(
                    batch_size=256, lr=_LR / 4, epochs=50, translate=6, flip="random", class_balance="loss"),
                min_input_size=24)
def fast_lecture96(num_classes: int, input_size: int, **kwargs) -> CifarFastNet:
    kwargs = {"stem": "conv", "stem_kernel": 9, "stem_width": 48, "stem_stride": 3} | kwargs
    return CifarFastNet(num_classes=num_classes, input_size=input_size, **kwargs)


# The lecture net for 128-px frames, with AlexNet's first layer: 11x11 kernels at stride 4 bring
# 128 px to the same 32x32 grid. The kernels start at a twentieth of the usual scale, so what
# training writes into them is not buried under their random start; a quarter of the training
# images are grey and saturation varies, so brightness edges pay off beside colour. The fast
# recipe's weight decay, behind the stem's BatchNorm, turns the kernels over every few hundred
# steps (lr * wd / (1 - momentum) = 3e-3 a step); at a 32nd of it, about what ResNet's ImageNet
# recipe gives conv1, each kernel averages the whole run.
@register_model("fast_lecture128", "fast net for 128-px inputs with AlexNet's first layer: learned 11x11 "
                "stride-4 convolution (48 kernels) + 64/128/256, 4096-d penultimate",
                train_defaults=_LECTURE_RECIPE | dict(
                    batch_size=256, lr=_LR / 4, epochs=20, translate=8, flip="random", class_balance="loss",
                    scale=0.15, rotate=10, saturation=0.4, gray_prob=0.4,
                    first_conv_weight_decay=_RECIPE["weight_decay"] / 32),
                min_input_size=32)
def fast_lecture128(num_classes: int, input_size: int, **kwargs) -> CifarFastNet:
    kwargs = {"stem": "conv", "stem_kernel": 11, "stem_width": 48, "stem_stride": 4, "stem_init_scale": 0.05,
              "widths": (64, 128, 256)} | kwargs
    return CifarFastNet(num_classes=num_classes, input_size=input_size, **kwargs)

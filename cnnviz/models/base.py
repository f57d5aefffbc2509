"""The contract every cnnviz model keeps, so extractors never rely on layer indices."""

from __future__ import annotations

import torch
from torch import nn

_LAYER_TYPES = (
    nn.Conv2d, nn.ReLU, nn.GELU, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d,
    nn.BatchNorm2d, nn.Linear,
)


class CNN(nn.Module):
    """Base class: ``forward(x) == head(embed(x))``.

    * ``embed(x)``: ``(N, 3, H, W) float32`` normalised input -> ``(N, embed_dim)`` penultimate
      features (the vector nearest-neighbour views compare).
    * ``head(z)``: penultimate features -> ``(N, num_classes)`` logits.
    * ``first_conv``: the convolution that sees the RGB input.
    * ``layer_names()``: names of inspectable layers in forward order, for ``get_submodule``.
    """

    embed_dim: int
    num_classes: int
    first_conv_learned: bool = True
    """False when the first convolution is fixed before training (set from the data, not learned)."""

    def embed(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def head(self, z: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))

    @property
    def first_conv(self) -> nn.Conv2d:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                return m
        raise TypeError(f"{type(self).__name__} has no convolution")

    def layer_names(self) -> list[str]:
        """Names of convolutions, norms, activations, pools and linears, in forward order."""
        return [n for n, m in self.named_modules() if n and isinstance(m, _LAYER_TYPES)]

    def adapt_state_dict(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Rename the keys of a state dict saved from the architecture this model wraps (for
        example torchvision's own module) to this model's names; identity by default."""
        return state

    def prepare(self, images: torch.Tensor) -> None:
        """Data-dependent initialisation before training (no-op unless a model needs one).

        ``images``: ``(N, 3, H, W) float32`` normalised training images.
        """

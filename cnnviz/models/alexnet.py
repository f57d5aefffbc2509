"""An AlexNet-style net for any input size, with the paper's 4096-d fc7 as penultimate layer."""

from __future__ import annotations

import torch
from torch import nn

from . import register_model
from .base import CNN


def _stem_for(input_size: int) -> tuple[int, int]:
    """(kernel, stride) of conv1: AlexNet's 11/4 for large inputs, smaller for small ones."""
    if input_size >= 160:
        return 11, 4
    if input_size >= 64:
        return 7, 2
    return 5, 1


class AlexNetStyle(CNN):
    """Five convolutions (BatchNorm optional), three max-pools, fc6 -> fc7 (penultimate) -> fc8.

    ``width`` scales the conv channels (1.0 = AlexNet's 64/192/384/256/256); ``fc6`` and
    ``fc7`` are the hidden widths; ``pool`` is the side of the adaptive pool before fc6.
    """

    def __init__(self, num_classes: int, input_size: int, width: float = 1.0, fc6: int = 4096,
                 fc7: int = 4096, pool: int = 6, batch_norm: bool = True, dropout: float = 0.5,
                 stem: tuple[int, int] | None = None):
        super().__init__()
        self.num_classes = num_classes
        k, s = stem or _stem_for(input_size)
        c = [max(8, int(round(x * width))) for x in (64, 192, 384, 256, 256)]

        def block(cin: int, cout: int, kernel: int, stride: int = 1) -> list[nn.Module]:
            layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=not batch_norm)]
            if batch_norm:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.ReLU(inplace=True))
            return layers

        self.features = nn.Sequential(
            *block(3, c[0], k, s), nn.MaxPool2d(3, 2, ceil_mode=True),
            *block(c[0], c[1], 5), nn.MaxPool2d(3, 2, ceil_mode=True),
            *block(c[1], c[2], 3), *block(c[2], c[3], 3), *block(c[3], c[4], 3),
            nn.MaxPool2d(3, 2, ceil_mode=True),
        )
        self.avgpool = nn.AdaptiveAvgPool2d(pool)
        self.fc6 = nn.Sequential(nn.Dropout(dropout), nn.Linear(c[4] * pool * pool, fc6), nn.ReLU(inplace=True))
        self.fc7 = nn.Sequential(nn.Dropout(dropout), nn.Linear(fc6, fc7), nn.ReLU(inplace=True))
        self.fc8 = nn.Linear(fc7, num_classes)
        self.embed_dim = fc7

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x)).flatten(1)
        return self.fc7(self.fc6(x))

    def head(self, z: torch.Tensor) -> torch.Tensor:
        return self.fc8(z)


@register_model(
    "alexnet_style", "AlexNet-style net for any input size; fc7 (4096-d) is the penultimate layer",
    train_defaults=dict(epochs=20, batch_size=128, lr=0.05, weight_decay=5e-4, label_smoothing=0.1,
                        flip="random", translate=4),
    min_input_size=16,
)
def alexnet_style(num_classes: int, input_size: int, **kwargs) -> AlexNetStyle:
    return AlexNetStyle(num_classes=num_classes, input_size=input_size, **kwargs)

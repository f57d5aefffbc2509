"""torchvision architectures with a head for our classes (randomly initialised, no download)."""

from __future__ import annotations

import torch
import torchvision
from torch import nn

from . import register_model
from .base import CNN

_GENERIC = dict(epochs=20, batch_size=128, lr=0.05, weight_decay=5e-4, label_smoothing=0.1,
                flip="random", translate=4)


class TorchvisionClassifierNet(CNN):
    """AlexNet/VGG layout: ``features -> avgpool -> classifier``; fc7 (4096-d) is penultimate."""

    def __init__(self, net: nn.Module, num_classes: int):
        super().__init__()
        self.features, self.avgpool = net.features, net.avgpool
        last = net.classifier[-1]
        self.classifier = nn.Sequential(*list(net.classifier)[:-1])
        self.fc = nn.Linear(last.in_features, num_classes)
        self.num_classes, self.embed_dim = num_classes, last.in_features
        self._tv_last = f"classifier.{len(net.classifier) - 1}."  # torchvision's name for our fc

    def adapt_state_dict(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Accept torchvision's own layout: its last classifier layer is our ``fc``."""
        if any(k.startswith("fc.") for k in state) or not any(k.startswith(self._tv_last) for k in state):
            return state
        return {("fc." + k[len(self._tv_last):]) if k.startswith(self._tv_last) else k: v for k, v in state.items()}

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.avgpool(self.features(x)).flatten(1))

    def head(self, z: torch.Tensor) -> torch.Tensor:
        return self.fc(z)


class TorchvisionResNet(CNN):
    """ResNet: everything up to global pooling is ``embed`` (512-d for resnet18)."""

    def __init__(self, net: torchvision.models.ResNet, num_classes: int):
        super().__init__()
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        self.avgpool = net.avgpool
        self.fc = nn.Linear(net.fc.in_features, num_classes)
        self.num_classes, self.embed_dim = num_classes, net.fc.in_features

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.avgpool(x).flatten(1)

    def head(self, z: torch.Tensor) -> torch.Tensor:
        return self.fc(z)


@register_model("alexnet", "torchvision AlexNet (inputs >= 64 px), new head", _GENERIC, min_input_size=64)
def alexnet(num_classes: int, input_size: int, **kwargs) -> CNN:
    return TorchvisionClassifierNet(torchvision.models.alexnet(weights=None, **kwargs), num_classes)


@register_model("vgg11", "torchvision VGG-11 with BatchNorm (inputs >= 32 px), new head", _GENERIC,
                min_input_size=32)
def vgg11(num_classes: int, input_size: int, **kwargs) -> CNN:
    return TorchvisionClassifierNet(torchvision.models.vgg11_bn(weights=None, **kwargs), num_classes)


@register_model("resnet18", "torchvision ResNet-18, new head", _GENERIC, min_input_size=16)
def resnet18(num_classes: int, input_size: int, **kwargs) -> CNN:
    return TorchvisionResNet(torchvision.models.resnet18(weights=None, **kwargs), num_classes)

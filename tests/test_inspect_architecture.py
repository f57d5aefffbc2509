"""The per-layer architecture summary and the training-curve figure, on known models and rows."""

from __future__ import annotations

from torch import nn

from cnnviz.figures.training import training_curves_chart
from cnnviz.inspect.architecture import architecture_summary, layer_type, parameter_count
from cnnviz.models import get_model
from cnnviz.models.base import CNN


class TwoConvs(CNN):
    """3 -> 4 channels 3x3 (stride 1, no padding), ReLU, 4 -> 2 channels 3x3 stride 2."""

    embed_dim = 2
    num_classes = 2

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(4, 2, 3, stride=2, bias=False)

    def forward(self, x):
        return self.conv2(self.relu(self.conv1(x))).mean((2, 3))

    def embed(self, x):
        return self.forward(x)


def test_summary_of_a_hand_made_stack():
    rows = architecture_summary(TwoConvs(), 11)
    assert [(r.name, r.type) for r in rows] == [("conv1", "Conv2d"), ("relu", "ReLU"), ("conv2", "Conv2d")]
    conv1, relu, conv2 = rows
    assert conv1.parameters == 3 * 4 * 9 + 4 and relu.parameters == 0 and conv2.parameters == 4 * 2 * 9
    assert (conv1.out_size, conv1.rf_size, conv1.jump) == ((9, 9), 3.0, 1.0)
    assert (relu.out_size, relu.rf_size) == ((9, 9), 3.0)
    assert (conv2.out_size, conv2.rf_size, conv2.jump) == ((4, 4), 5.0, 2.0)  # 11 -> 9 -> 4
    assert conv2.row() == {"layer": "conv2", "type": "Conv2d", "output (h x w)": "4 x 4", "parameters": 72,
                           "receptive field (px)": 5.0, "jump (px)": 2.0}
    assert parameter_count(TwoConvs()) == 112 + 72


def test_summary_covers_every_layer_of_a_registered_model():
    model = get_model("alexnet_style", 5, 64, width=0.25, fc6=32, fc7=32)
    rows = architecture_summary(model, 64)
    assert [r.name for r in rows] == model.layer_names()
    assert sum(r.parameters for r in rows) == parameter_count(model)  # every parameter in a listed layer
    first = rows[0]
    assert first.rf_size == model.first_conv.kernel_size[0] and first.jump == model.first_conv.stride[0]


class _Conv(nn.Conv2d):
    """A private subclass, as cnnviz.models.cifar has."""


class _Block(nn.Module):
    """A model's own composite module."""


def test_layer_types_are_the_names_readers_know():
    assert layer_type(_Conv(3, 4, 3)) == "Conv2d"  # not the private class
    assert layer_type(nn.BatchNorm2d(4)) == "BatchNorm2d" and layer_type(nn.GELU()) == "GELU"
    assert layer_type(_Block()) == "Block"
    rows = architecture_summary(get_model("cifar_lecture", 10, 32), 32)
    types = {r.type for r in rows}
    assert not any(t.startswith("_") for t in types), types
    assert {"Conv2d", "BatchNorm2d", "MaxPool2d", "GELU", "Linear"} <= types


def test_training_curves_from_history_rows():
    history = [{"epoch": 1, "train_acc": 0.5, "val_acc": 0.4, "train_loss": 1.2},
               {"epoch": 2, "train_acc": 0.7, "val_acc": 0.6, "train_loss": 0.9}]
    chart = training_curves_chart(history)
    acc, loss = chart.layer[0].data, chart.layer[1].data
    assert list(acc["curve"].unique()) == ["train accuracy (augmented)", "validation accuracy"]
    assert list(acc[acc["curve"] == "validation accuracy"]["value"]) == [0.4, 0.6]
    assert list(loss["epoch"]) == [1, 2] and list(loss["value"]) == [1.2, 0.9]
    spec = chart.to_dict()
    assert spec["resolve"] == {"scale": {"y": "independent"}}  # loss on its own (right) axis
    assert spec["layer"][0]["encoding"]["y"]["scale"]["domain"] == [0, 1]
    no_val = training_curves_chart([{"epoch": 1, "train_acc": 0.5, "val_acc": None, "train_loss": 1.0}])
    assert list(no_val.layer[0].data["curve"]) == ["train accuracy (augmented)"]

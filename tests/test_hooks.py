"""hooks.capture and hooks.preserve_state: right outputs, nothing left behind, ever."""

from __future__ import annotations

import threading

import pytest
import torch
from torch import nn

from cnnviz.hooks import capture, preserve_state, resolve_layers


def hooks_left(model: nn.Module) -> list[str]:
    """Names of submodules that still hold a hook of any kind."""
    kinds = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
    return [f"{n or '<root>'}.{k}" for n, m in model.named_modules() for k in kinds if getattr(m, k, None)]


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        x = self.relu(self.bn(self.conv(x)))
        return self.fc(x.mean((2, 3)))


@pytest.fixture
def net():
    return Net().eval()


def test_capture_records_layer_outputs_and_removes_hooks(net):
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad(), capture(net, ["conv", "fc"]) as acts:
        logits = net(x)
    assert hooks_left(net) == []
    assert set(acts) == {"conv", "fc"}
    torch.testing.assert_close(acts["conv"], net.conv(x))
    torch.testing.assert_close(acts["fc"], logits)
    # a copy: the in-place ReLU after bn did not clip the captured conv output
    assert (acts["conv"] < 0).any()
    assert not acts["conv"].requires_grad


def test_capture_accepts_a_single_name_and_keeps_the_latest_pass(net):
    with torch.no_grad(), capture(net, "conv") as acts:
        net(torch.zeros(1, 3, 8, 8))
        second = torch.ones(1, 3, 8, 8)
        net(second)
    torch.testing.assert_close(acts["conv"], net.conv(second).detach())


def test_capture_without_detach_keeps_the_graph(net):
    x = torch.randn(1, 3, 8, 8, requires_grad=True)
    with capture(net, "conv", detach=False) as acts:
        net(x)
    acts["conv"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert hooks_left(net) == []


def test_unknown_layer_lists_valid_names_and_registers_nothing(net):
    with pytest.raises(ValueError, match="no layer 'nope'.*conv, bn, relu, fc"):
        with capture(net, ["conv", "nope"]):
            pass  # pragma: no cover
    assert hooks_left(net) == []
    with pytest.raises(ValueError, match="nope"):
        resolve_layers(net, "nope")


def test_hooks_removed_when_the_forward_raises(net):
    with pytest.raises(RuntimeError):
        with capture(net, ["conv", "bn", "fc"]) as acts:
            net(torch.zeros(1, 5, 8, 8))  # conv wants 3 channels
    assert acts == {}
    assert hooks_left(net) == []
    with pytest.raises(RuntimeError):
        with capture(net, "bn"):
            net(torch.zeros(1, 3, 8, 8))
            raise RuntimeError("user code failing inside the block")
    assert hooks_left(net) == []


def test_other_threads_forward_passes_are_not_recorded(net):
    with torch.no_grad(), capture(net, "conv") as acts:
        t = threading.Thread(target=lambda: net(torch.zeros(1, 3, 8, 8)))
        t.start()
        t.join()
        assert acts == {}
        net(torch.ones(1, 3, 8, 8))
    assert set(acts) == {"conv"}


def test_preserve_state_restores_modes_and_requires_grad_even_on_error(net):
    net.train()
    net.bn.eval()  # mixed modes must come back exactly
    net.conv.bias.requires_grad_(False)
    before_modes = {n: m.training for n, m in net.named_modules()}
    before_grads = {n: p.requires_grad for n, p in net.named_parameters()}
    with pytest.raises(KeyError):
        with preserve_state(net):
            net.eval()
            for p in net.parameters():
                p.requires_grad_(not p.requires_grad)
            raise KeyError("boom")
    assert {n: m.training for n, m in net.named_modules()} == before_modes
    assert {n: p.requires_grad for n, p in net.named_parameters()} == before_grads

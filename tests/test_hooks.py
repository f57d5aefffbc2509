"""hooks.capture and hooks.model_view: right outputs, nothing left behind, the model untouched."""

from __future__ import annotations

import threading

import pytest
import torch
from torch import nn

from cnnviz.hooks import capture, model_view, resolve_layers
from cnnviz.runtime import fix_for_inference, resolve_runtime


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


def test_model_view_shares_weights_but_not_modes_flags_or_hooks(net):
    net.train()
    net.bn.eval()  # mixed modes: the view must not change them
    seen = []
    net.register_forward_hook(lambda m, i, o: seen.append(1))
    view = model_view(net)
    assert [p is q for p, q in zip(net.parameters(), view.parameters())] == [True] * 6
    assert [a is b for a, b in zip(net.buffers(), view.buffers())] == [True] * 3
    assert not any(m.training for m in view.modules())
    assert view.relu.inplace is False and net.relu.inplace is True
    assert {n: m.training for n, m in net.named_modules()} == {"": True, "conv": True, "bn": False,
                                                               "relu": True, "fc": True}
    view.conv.register_forward_hook(lambda m, i, o: seen.append(2))
    x = torch.randn(2, 3, 8, 8)
    out = view(x)
    assert seen == [2]  # the view's hook ran, the model's did not
    assert hooks_left(view) == ["conv._forward_hooks"] and hooks_left(net) == ["<root>._forward_hooks"]
    net.eval()
    with torch.no_grad():
        torch.testing.assert_close(out, net(x))  # same weights, eval statistics
    assert seen == [2, 1]  # the model's own hook, not the view's


def test_model_view_keeps_a_module_used_twice_as_one_module():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.act = nn.ReLU()
            self.a, self.b = nn.Linear(2, 2), nn.Linear(2, 2)

        def forward(self, x):
            return self.act(self.b(self.act(self.a(x))))

    view = model_view(Twice())
    assert view.get_submodule("act") is view.act and len(list(view.modules())) == 4


def test_a_view_in_train_mode_leaves_the_running_statistics_alone_in_eval(net):
    before = net.bn.running_mean.clone()
    with torch.no_grad():
        model_view(net)(torch.randn(4, 3, 8, 8) + 5)
    torch.testing.assert_close(net.bn.running_mean, before)


def test_fix_for_inference_sets_eval_no_grads_no_inplace(net):
    net.train()
    fix_for_inference(net, resolve_runtime("cpu", "fp32"))
    assert not any(m.training for m in net.modules())
    assert not any(p.requires_grad for p in net.parameters())
    assert net.relu.inplace is False

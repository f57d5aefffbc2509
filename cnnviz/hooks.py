"""Scoped access to a model's insides: capture layer outputs, and private views of a model.

Every hook registered here is removed in a ``finally`` block, even when the forward pass
raises. Library calls go further and put their hooks and mode switches on a
:func:`model_view`, so a model cached and shared by all dashboard sessions is never written.
"""

from __future__ import annotations

import contextlib
import copy
import threading
from collections import OrderedDict
from typing import Any, Iterator, Sequence

import torch
from torch import nn

__all__ = ["capture", "model_view", "resolve_layers", "valid_layer_names"]


def valid_layer_names(model: nn.Module) -> list[str]:
    """The names a user may pick: ``model.layer_names()`` for a cnnviz model, else every
    named submodule."""
    names = getattr(model, "layer_names", None)
    if callable(names):
        return list(names())
    return [n for n, _ in model.named_modules() if n]


def resolve_layers(model: nn.Module, names: str | Sequence[str]) -> dict[str, nn.Module]:
    """``{name: model.get_submodule(name)}``; an unknown name raises ``ValueError`` listing the
    valid ones. Any submodule path is accepted, not only those of ``layer_names()``."""
    if isinstance(names, str):
        names = [names]
    out: dict[str, nn.Module] = {}
    for name in names:
        try:
            out[name] = model.get_submodule(name)
        except AttributeError:
            valid = valid_layer_names(model)
            raise ValueError(
                f"{type(model).__name__} has no layer {name!r}; pick one of: {', '.join(valid)}"
            ) from None
    return out


def _keep(output: Any, detach: bool) -> Any:
    """A copy of a hook's output that later in-place layers (``ReLU(inplace=True)``) cannot
    change; detached from the graph when ``detach``."""
    if isinstance(output, torch.Tensor):
        return output.detach().clone() if detach else output.clone()
    if isinstance(output, (tuple, list)):
        return type(output)(_keep(o, detach) for o in output)
    return output


@contextlib.contextmanager
def capture(model: nn.Module, names: str | Sequence[str], detach: bool = True
            ) -> Iterator[dict[str, torch.Tensor]]:
    """Record the outputs of ``model.get_submodule(name)`` for forward passes inside the block.

    Yields a dict ``name -> output`` filled as the model runs; a layer called more than once
    (a second pass, or a module reused in one pass such as torchvision ResNet's ``relu``) keeps
    its latest output. Outputs are copies, e.g. ``(N, C, h, w) float32`` for a convolution,
    so an in-place activation after the layer cannot alter them; with ``detach=False`` they
    stay in the autograd graph (for gradients with respect to the input).

    Only forward passes run by the thread that entered the block are recorded, so two
    dashboard sessions sharing one model cannot see each other's activations. The hooks are
    removed on exit, also when the block raises. Unknown names raise ``ValueError`` before any
    hook is registered.
    """
    modules = resolve_layers(model, names)
    owner = threading.get_ident()
    store: dict[str, torch.Tensor] = {}
    handles: list[torch.utils.hooks.RemovableHandle] = []

    def make_hook(name: str):
        def hook(module: nn.Module, inputs: tuple, output: Any) -> None:
            if threading.get_ident() == owner:
                store[name] = _keep(output, detach)

        return hook

    try:
        for name, module in modules.items():
            handles.append(module.register_forward_hook(make_hook(name)))
        yield store
    finally:
        for h in handles:
            h.remove()


def model_view(model: nn.Module) -> nn.Module:
    """A private copy of ``model``'s module tree that shares its parameters and buffers.

    Modes, ``inplace`` flags and hooks set on the view stay on the view: it is in eval mode
    with every in-place activation off, and carries none of the model's hooks. The shared model is never written, so calls on a cached model need
    no lock and restore nothing. Only module objects are copied, never weights (in eval mode
    BatchNorm only reads its running statistics).
    """
    memo: dict[int, nn.Module] = {}

    def copy_module(m: nn.Module) -> nn.Module:
        if id(m) in memo:  # a module used at two places stays one module
            return memo[id(m)]
        v = copy.copy(m)
        memo[id(m)] = v
        v._parameters = m._parameters.copy()
        v._buffers = m._buffers.copy()
        for name, value in vars(m).items():
            if name.startswith(("_forward", "_backward")) and isinstance(value, dict):
                setattr(v, name, OrderedDict())
        v._modules = {k: (copy_module(c) if c is not None else None) for k, c in m._modules.items()}
        v.training = False
        if getattr(v, "inplace", None) is True:
            v.inplace = False
        return v

    return copy_module(model)

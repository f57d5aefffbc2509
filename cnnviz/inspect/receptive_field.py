"""Theoretical receptive fields: which input pixels a unit of a layer can see.

Theory. Along one axis a layer's units form a regular grid described by three numbers, in
input pixels (pixel centres at integer coordinates):

* ``size``: how many input pixels one unit spans (padding included, so it can exceed the image);
* ``jump``: the distance between neighbouring units' centres (the product of the strides);
* ``start``: the centre of unit 0 (negative or fractional with padding or even kernels).

A convolution or pooling with kernel ``k``, dilation ``d`` (``k_e = d*(k-1)+1``), stride ``s``
and ``p`` cells of padding before the first input cell maps ``(size, jump, start)`` to
``(size + (k_e-1)*jump, jump*s, start + ((k_e-1)/2 - p)*jump)``; a padding layer moves
``start`` by ``-p*jump``; anything else (activations, norms, dropout) changes nothing.

How the layers connect is found by running the model once on a blank input and following the
tensors themselves, not by reading the module order: forward hooks on the spatial modules
(``Conv2d``, ``MaxPool2d``, ``AvgPool2d``, the 2-d padding layers, adaptive pools) apply the rule
above, and a ``TorchFunctionMode`` gives the output of every other tensor operation the union
of its inputs' fields. So a residual sum (``out += identity``) or a concatenation sees the
union of its branches (for torchvision ResNet the main branch, which is the larger), and the
report is right whatever order the branches ran in. Flattening (to ``(N, D)``) makes one unit
see the union of all positions; such layers report ``jump == 0`` and ``out_size == (1, 1)``.
Adaptive pools whose bins do not divide evenly are summarised by the widest bin and the mean
bin spacing. A tensor operation outside those modules that changes the spatial size
(``F.interpolate``, cropping) is not supported and raises ``NotImplementedError``.

The *effective* receptive field, measured by gradient, is :mod:`cnnviz.inspect.effective_rf`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import torch
from torch import nn
from torch.nn.modules.utils import _pair
from torch.overrides import TorchFunctionMode

from ..hooks import model_view, resolve_layers
from ..runtime import device_of

__all__ = ["LayerRF", "layer_rf", "nearest_unit", "receptive_fields", "unit_box"]

_PADS = (nn.ConstantPad2d, nn.ReflectionPad2d, nn.ReplicationPad2d) + (
    (nn.CircularPad2d,) if hasattr(nn, "CircularPad2d") else ())
_ADAPTIVE = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
_SPATIAL = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d) + _PADS + _ADAPTIVE


@dataclass(frozen=True)
class LayerRF:
    """The theoretical receptive field of one layer's units, per axis ``(y, x)``, in input pixels.

    ``size``: side of the region one unit sees (padding included, so it may exceed the image);
    ``jump``: distance between neighbouring units (0 for outputs without spatial layout);
    ``start``: input coordinates of unit ``(0, 0)``'s centre (pixel centres are integers);
    ``out_size``: the layer's output ``(h, w)``, ``(1, 1)`` without spatial layout;
    ``kind``: the module's class name.
    """

    name: str
    kind: str
    size: tuple[float, float]
    jump: tuple[float, float]
    start: tuple[float, float]
    out_size: tuple[int, int]

    def center(self, y: int, x: int) -> tuple[float, float]:
        """Input coordinates of unit ``(y, x)``'s centre."""
        return self.start[0] + y * self.jump[0], self.start[1] + x * self.jump[1]


# ---------------------------------------------------------------------------------------------
# One axis: (size, jump, start) and the rules that transform it.

@dataclass(frozen=True)
class _Axis:
    size: float
    jump: float
    start: float

    def span(self, i: int) -> tuple[float, float]:
        """Inclusive ``(first, last)`` input coordinate seen by unit ``i``."""
        c = self.start + i * self.jump
        half = (self.size - 1) / 2
        return c - half, c + half


def _conv_axis(a: _Axis, kernel: int, stride: int, pad_before: float, dilation: int = 1) -> _Axis:
    k = dilation * (kernel - 1) + 1
    return _Axis(a.size + (k - 1) * a.jump, a.jump * stride, a.start + ((k - 1) / 2 - pad_before) * a.jump)


def _adaptive_axis(a: _Axis, n_in: int, n_out: int) -> _Axis:
    spans = []
    for i in range(n_out):
        lo, hi = (i * n_in) // n_out, -(-((i + 1) * n_in) // n_out)  # bin [lo, hi) of input cells
        spans.append((a.span(lo)[0], a.span(hi - 1)[1]))
    return _from_spans(spans, a.jump * n_in / n_out)


def _from_spans(spans: list[tuple[float, float]], jump_if_single: float) -> _Axis:
    size = max(hi - lo for lo, hi in spans) + 1
    centres = [(lo + hi) / 2 for lo, hi in spans]
    jump = (centres[-1] - centres[0]) / (len(spans) - 1) if len(spans) > 1 else jump_if_single
    return _Axis(size, jump, centres[0])


def _collapse_axis(a: _Axis, n: int) -> _Axis:
    """One unit that sees all ``n`` units of ``a``."""
    lo, hi = a.span(0)[0], a.span(n - 1)[1]
    return _Axis(hi - lo + 1, 0.0, (lo + hi) / 2)


def _union_axis(parts: Sequence[tuple[_Axis, int]], n_out: int) -> _Axis:
    """Units of an element-wise op over inputs ``(axis, n)``; ``n == 1`` broadcasts."""
    if all(p == parts[0] for p in parts[1:]) and parts[0][1] == n_out:
        return parts[0][0]
    spans = []
    for i in range(n_out):
        ss = [a.span(i if n > 1 else 0) for a, n in parts]
        spans.append((min(s[0] for s in ss), max(s[1] for s in ss)))
    return _from_spans(spans, max(a.jump for a, _ in parts))


# ---------------------------------------------------------------------------------------------
# A field is one _Axis per spatial dimension plus the grid it lives on.

@dataclass(frozen=True)
class _Field:
    axes: tuple[_Axis, _Axis]
    grid: tuple[int, int]  # (h, w) of the tensor; (1, 1) for non-spatial tensors


def _grid_of(t: torch.Tensor) -> tuple[int, int] | None:
    return (int(t.shape[-2]), int(t.shape[-1])) if t.ndim == 4 else None


def _merge(fields: Sequence[_Field], out: torch.Tensor, what: str) -> _Field:
    grid = _grid_of(out)
    if grid is None:  # no spatial layout left: every unit sees all positions of its inputs
        fields = [_Field(tuple(_collapse_axis(a, n) for a, n in zip(f.axes, f.grid)), (1, 1))
                  for f in fields]
        grid = (1, 1)
    if len(fields) == 1 and fields[0].grid == grid:
        return fields[0]
    axes = []
    for d in range(2):
        for f in fields:
            if f.grid[d] not in (1, grid[d]):
                raise NotImplementedError(
                    f"receptive fields cannot follow {what}: it changes the spatial size from "
                    f"{f.grid} to {grid} outside a Conv2d/pooling/padding module")
        axes.append(_union_axis([(f.axes[d], f.grid[d]) for f in fields], grid[d]))
    return _Field(tuple(axes), grid)


def _module_field(m: nn.Module, f: _Field, out: torch.Tensor) -> _Field:
    """Apply a spatial module's rule to its input field ``f``."""
    grid = _grid_of(out) or (1, 1)
    if isinstance(m, _ADAPTIVE):
        axes = [_adaptive_axis(a, n, g) for a, n, g in zip(f.axes, f.grid, grid)]
    elif isinstance(m, _PADS):
        left, _, top, _ = m.padding
        axes = [_Axis(a.size, a.jump, a.start - p * a.jump) for a, p in zip(f.axes, (top, left))]
    else:
        k, s = _pair(m.kernel_size), _pair(m.stride if m.stride is not None else m.kernel_size)
        d = _pair(getattr(m, "dilation", 1))
        if isinstance(m.padding, str):  # Conv2d "valid" / "same" (extra padding goes after)
            p = (0, 0) if m.padding == "valid" else tuple(di * (ki - 1) // 2 for di, ki in zip(d, k))
        else:
            p = _pair(m.padding)
        axes = [_conv_axis(a, *args) for a, args in zip(f.axes, zip(k, s, p, d))]
    return _Field(tuple(axes), grid)


def _tensors(obj: Any) -> Iterator[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for o in obj:
            yield from _tensors(o)
    elif isinstance(obj, dict):
        for o in obj.values():
            yield from _tensors(o)


class _Tracer(TorchFunctionMode):
    """Gives each tensor derived from the input the union of its inputs' fields."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[int, tuple[torch.Tensor, _Field]] = {}  # tensors kept alive: ids stay unique
        self.inside = 0  # > 0 while a spatial module runs: its hook sets the output's field

    def get(self, t: torch.Tensor) -> _Field | None:
        hit = self.fields.get(id(t))
        return hit[1] if hit is not None and hit[0] is t else None

    def set(self, t: torch.Tensor, f: _Field) -> None:
        self.fields[id(t)] = (t, f)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if self.inside:
            return out
        ins = [f for f in map(self.get, _tensors((args, kwargs))) if f is not None]
        if ins:
            for o in _tensors(out):
                self.set(o, _merge(ins, o, getattr(func, "__name__", str(func))))
        return out


def _report_names(model: nn.Module) -> list[str]:
    names = getattr(model, "layer_names", None)
    if callable(names):
        return list(names())
    return [n for n, m in model.named_modules() if n and not any(True for _ in m.children())]


def _in_channels(model: nn.Module) -> int:
    conv = getattr(model, "first_conv", None)
    if conv is None:
        conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    return int(conv.in_channels) if conv is not None else 3


def _model_dtype(model: nn.Module) -> torch.dtype:
    return next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)


def receptive_fields(model: nn.Module, input_size: int | tuple[int, int],
                     device: torch.device | str | None = None) -> list[LayerRF]:
    """The theoretical receptive field of every layer (``model.layer_names()``, else every leaf
    module) for ``input_size`` (``S`` or ``(H, W)``) inputs, in the order the layers last ran.

    Runs an eval-mode view of the model (:func:`~cnnviz.hooks.model_view`) once on a zero
    input ``(1, C, H, W)`` without gradients; the model itself is not changed. A module that runs more than once (a shared
    activation) reports its last call. See the module docstring for the method.
    """
    h, w = _pair(input_size)
    report = set(_report_names(model))
    tracer = _Tracer()
    records: dict[str, LayerRF] = {}

    def pre_hook(m: nn.Module, inputs: tuple) -> None:
        tracer.inside += 1

    def make_hook(name: str):
        def hook(m: nn.Module, inputs: tuple, output: Any) -> None:
            out = next(_tensors(output), None)
            if isinstance(m, _SPATIAL):
                tracer.inside -= 1
                f_in = tracer.get(inputs[0]) if inputs and isinstance(inputs[0], torch.Tensor) else None
                if f_in is not None and out is not None:
                    tracer.set(out, _module_field(m, f_in, out))
            f = tracer.get(out) if out is not None else None
            if name in report and f is not None:
                records.pop(name, None)
                records[name] = LayerRF(
                    name=name, kind=type(m).__name__,
                    size=(f.axes[0].size, f.axes[1].size), jump=(f.axes[0].jump, f.axes[1].jump),
                    start=(f.axes[0].start, f.axes[1].start), out_size=f.grid)

        return hook

    x = torch.zeros(1, _in_channels(model), h, w, device=device or device_of(model), dtype=_model_dtype(model))
    view = model_view(model)  # the hooks go on a private view: the model itself is never touched
    for name, m in view.named_modules():
        if isinstance(m, _SPATIAL):
            m.register_forward_pre_hook(pre_hook)
        if isinstance(m, _SPATIAL) or name in report:
            m.register_forward_hook(make_hook(name))
    try:
        with torch.no_grad(), tracer:
            tracer.set(x, _Field((_Axis(1.0, 1.0, 0.0), _Axis(1.0, 1.0, 0.0)), (h, w)))
            view(x)
    finally:
        tracer.fields.clear()
    return list(records.values())


def layer_rf(model: nn.Module, layer: str, input_size: int | tuple[int, int]) -> LayerRF:
    """The :class:`LayerRF` of one layer (see :func:`receptive_fields`)."""
    resolve_layers(model, layer)
    for rf in receptive_fields(model, input_size):
        if rf.name == layer:
            return rf
    raise ValueError(f"no receptive field for {layer!r}: it did not run on a blank input, or is not "
                     f"one of {type(model).__name__}'s layer_names()")


def unit_box(rf: LayerRF, y: int, x: int, input_size: int | tuple[int, int]) -> tuple[int, int, int, int]:
    """Pixels seen by unit ``(y, x)`` of ``rf``'s layer as ``(top, left, bottom, right)``,
    bottom/right exclusive (``image[top:bottom, left:right]``), clipped to the image."""
    h, w = _pair(input_size)
    if not (0 <= y < rf.out_size[0] and 0 <= x < rf.out_size[1]):
        raise ValueError(f"unit ({y}, {x}) is outside {rf.name}'s {rf.out_size[0]}x{rf.out_size[1]} grid")
    cy, cx = rf.center(y, x)
    half_y, half_x = (rf.size[0] - 1) / 2, (rf.size[1] - 1) / 2
    top, left = math.ceil(cy - half_y - 1e-9), math.ceil(cx - half_x - 1e-9)
    bottom, right = math.floor(cy + half_y + 1e-9) + 1, math.floor(cx + half_x + 1e-9) + 1
    return (min(max(top, 0), h), min(max(left, 0), w), min(max(bottom, 0), h), min(max(right, 0), w))


def nearest_unit(rf: LayerRF, y: float, x: float) -> tuple[int, int]:
    """The unit ``(row, column)`` of ``rf``'s layer whose receptive field is centred nearest the
    input point ``(y, x)`` (pixel centres at integers, as :meth:`LayerRF.center`), for a click
    on the image: the units form a grid, so the nearest one is the nearest along each axis.

    A point halfway between two centres goes to the lower index, so with an even ``jump`` each
    unit takes ``jump`` whole pixels (stride 2, ``start`` 0: pixels 0-1 -> unit 0, 2-3 -> 1).
    Points beyond the first or last centre take the edge unit; a layer without spatial layout
    (``jump`` 0) has only unit ``(0, 0)``.
    """
    def axis(p: float, start: float, jump: float, n: int) -> int:
        if jump <= 0 or n <= 1:
            return 0
        i = math.ceil((p - start) / jump - 0.5 - 1e-9)
        return min(max(i, 0), n - 1)

    return (axis(float(y), rf.start[0], rf.jump[0], rf.out_size[0]),
            axis(float(x), rf.start[1], rf.jump[1], rf.out_size[1]))

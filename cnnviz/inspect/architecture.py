"""A model's layers at a glance: type, output size, parameters and receptive field of each."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from .receptive_field import receptive_fields


@dataclass(frozen=True)
class LayerSummary:
    """One inspectable layer. ``out_size``, ``rf_size`` and ``jump`` are ``None`` for layers the
    receptive-field pass does not reach (e.g. after the spatial layout is gone)."""

    name: str
    type: str
    out_size: tuple[int, int] | None
    parameters: int
    rf_size: float | None
    jump: float | None

    def row(self) -> dict[str, object]:
        """A table row with readable column names."""
        return {
            "layer": self.name, "type": self.type,
            "output (h x w)": f"{self.out_size[0]} x {self.out_size[1]}" if self.out_size else "",
            "parameters": self.parameters,
            "receptive field (px)": None if self.rf_size is None else round(self.rf_size, 1),
            "jump (px)": None if self.jump is None else round(self.jump, 2),
        }


def layer_type(module: nn.Module) -> str:
    """The name a reader knows a layer by: its class, or for a private subclass of a PyTorch
    layer (``_Conv(nn.Conv2d)``) the PyTorch layer it extends (``Conv2d``); a model's own
    composite module keeps its own name, without leading underscores."""
    for cls in type(module).__mro__:
        if cls is nn.Module:
            break
        if cls.__module__.startswith("torch.") and not cls.__name__.startswith("_"):
            return cls.__name__
    return type(module).__name__.lstrip("_") or type(module).__name__


def parameter_count(model: nn.Module) -> int:
    """All parameters of ``model``, trainable or not."""
    return sum(p.numel() for p in model.parameters())


def architecture_summary(model: nn.Module, input_size: int) -> list[LayerSummary]:
    """One :class:`LayerSummary` per name in ``model.layer_names()`` (forward order), with the
    layer's own parameters (not its children's) and its receptive field for ``input_size``-px
    square inputs (from the layer hyper-parameters; see :func:`receptive_fields`)."""
    rfs = {r.name: r for r in receptive_fields(model, input_size)}
    out = []
    for name in model.layer_names():
        m = model.get_submodule(name)
        rf = rfs.get(name)
        out.append(LayerSummary(
            name=name, type=layer_type(m),
            out_size=tuple(rf.out_size) if rf is not None else None,
            parameters=sum(p.numel() for p in m.parameters(recurse=False)),
            rf_size=float(rf.size[0]) if rf is not None else None,
            jump=float(rf.jump[0]) if rf is not None else None,
        ))
    return out

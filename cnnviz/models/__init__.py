"""Model registry: name -> builder, with the training recipe each architecture prefers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .base import CNN

__all__ = ["CNN", "ModelSpec", "UnknownModelError", "get_model", "list_models", "model_spec", "register_model"]


@dataclass(frozen=True)
class ModelSpec:
    """A registered architecture: its builder and the defaults its recipe needs."""

    name: str
    builder: Callable[..., CNN]
    description: str
    train_defaults: dict[str, Any] = field(default_factory=dict)
    min_input_size: int = 8


_REGISTRY: dict[str, ModelSpec] = {}


class UnknownModelError(KeyError):
    """No architecture of that name is registered."""


def register_model(name: str, description: str, train_defaults: dict | None = None,
                   min_input_size: int = 8) -> Callable[[Callable[..., CNN]], Callable[..., CNN]]:
    """Decorator adding a builder ``f(num_classes, input_size, **kwargs) -> CNN``."""

    def wrap(fn: Callable[..., CNN]) -> Callable[..., CNN]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = ModelSpec(name, fn, description, dict(train_defaults or {}), min_input_size)
        return fn

    return wrap


def list_models() -> list[str]:
    """Registered architecture names, sorted."""
    return sorted(_REGISTRY)


def model_spec(name: str) -> ModelSpec:
    """The registry entry for ``name``; a clear error lists the known names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownModelError(f"unknown model {name!r}; known models: {', '.join(list_models())}") from None


def get_model(name: str, num_classes: int, input_size: int, **kwargs: Any) -> CNN:
    """Build a registered architecture, freshly initialised (no downloads)."""
    spec = model_spec(name)
    if input_size < spec.min_input_size:
        raise ValueError(f"{name} needs inputs of at least {spec.min_input_size} px, got {input_size}")
    return spec.builder(num_classes=num_classes, input_size=input_size, **kwargs)


# Register the built-in families (import for side effect, in a fixed order).
from . import alexnet, cifar, tv  # noqa: E402,F401

"""A checkpoint's description (:class:`CheckpointMeta`, the JSON sidecar) and what it must hold.

:func:`check_description` refuses a JSON sidecar that would fail later, or worse, load and
predict nonsense (no classes, a zero std, an unknown test-time augmentation), each with one
:class:`CheckpointError` saying what is wrong. :func:`build_architecture` builds a registered
model only after counting its parameters on the ``meta`` device, where nothing is allocated,
so arguments that ask for a model of tens of gigabytes are refused instead of exhausting memory.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import platform
from dataclasses import dataclass, field
from typing import Any, Mapping, get_args

import torch

from .data import RESIZE_MODES, Preprocess, SplitSpec
from .inputs import TTA, Normalization
from .models import CNN, UnknownModelError, get_model

FORMAT = "cnnviz-checkpoint/1"
READABLE_FORMATS = (FORMAT,)
"""Description formats this version reads; a new format is added here with its reader."""

TTA_MODES: tuple[str, ...] = get_args(TTA)
MAX_PARAMETERS = 1_000_000_000
"""The largest model :func:`build_architecture` makes: 4 GB of float32 weights (VGG-11 has 0.13e9)."""

_REQUIRED = ("arch", "classes", "preprocess", "normalization")


class CheckpointError(ValueError):
    """A checkpoint cannot be used or made; the message says why and what to do."""


@dataclass
class CheckpointMeta:
    """Everything needed to rebuild and use a model, stored as JSON beside the weights."""

    arch: str
    classes: list[str]
    preprocess: Preprocess
    normalization: Normalization
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    dataset: str = "folder"
    tta: str = "none"
    split: SplitSpec | None = None
    train_config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    snapshot_epochs: list[int] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    created: str = ""

    @property
    def input_size(self) -> int:
        return self.preprocess.size

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "arch": self.arch, "arch_kwargs": self.arch_kwargs,
            "classes": self.classes, "dataset": self.dataset, "input_size": self.input_size,
            "preprocess": self.preprocess.to_dict(), "normalization": self.normalization.to_dict(),
            "tta": self.tta, "split": self.split.to_dict() if self.split else None,
            "train_config": self.train_config, "history": self.history, "metrics": self.metrics,
            "snapshot_epochs": self.snapshot_epochs, "info": self.info,
            "versions": self.versions or software_versions(), "created": self.created or _now(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "CheckpointMeta":
        """The description in ``d`` (parsed JSON), refused by :func:`check_description` first."""
        check_description(d)
        try:
            split = SplitSpec.from_dict(d["split"]) if d.get("split") else None
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"split is not a readable data split ({type(e).__name__}: {e})") from None
        return cls(
            arch=d["arch"], classes=list(d["classes"]),
            preprocess=Preprocess.from_dict(d["preprocess"]),
            normalization=Normalization.from_dict(d["normalization"]),
            arch_kwargs=untuple(d.get("arch_kwargs", {})), dataset=d.get("dataset", "folder"),
            tta=d.get("tta", "none"), split=split,
            train_config=d.get("train_config", {}), history=d.get("history", []),
            metrics=d.get("metrics", {}), snapshot_epochs=list(d.get("snapshot_epochs", [])),
            info=d.get("info", {}), versions=d.get("versions", {}), created=d.get("created", ""),
        )

    def build_model(self) -> CNN:
        """A freshly initialised model of this architecture (weights not loaded), built only
        once its size is known to be sane (:func:`~cnnviz.checkpoint_meta.build_architecture`)."""
        return build_architecture(self.arch, len(self.classes), self.input_size, self.arch_kwargs)


def untuple(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """JSON turns tuples into lists; architectures take tuples."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def software_versions() -> dict[str, str]:
    import numpy
    import torchvision

    from . import __version__

    return {"cnnviz": __version__, "torch": torch.__version__, "torchvision": torchvision.__version__,
            "numpy": numpy.__version__, "python": platform.python_version()}


def _show(value: Any) -> str:
    """A value as the JSON it came from, shortened."""
    text = json.dumps(value) if isinstance(value, (list, dict, str, int, float, type(None))) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _whole(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_classes(classes: Any) -> list[str]:
    """``classes`` as a list of unique, non-empty names; else :class:`CheckpointError`."""
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) and c.strip() for c in classes):
        raise CheckpointError(f"classes must be a list of non-empty names, one per model output "
                              f"(got {_show(classes)})")
    dupes = sorted({c for c in classes if classes.count(c) > 1})
    if dupes:
        raise CheckpointError(f"class names must be unique; repeated: {', '.join(dupes)}")
    return classes


def _check_preprocess(pre: Any, input_size: Any) -> None:
    if not isinstance(pre, dict) or "size" not in pre or "mode" not in pre:
        raise CheckpointError(f"preprocess must be an object with size and mode (got {_show(pre)})")
    size = pre["size"]
    if not _whole(size) or size <= 0:
        raise CheckpointError(f"preprocess size must be a positive whole number of pixels (got {_show(size)})")
    if input_size is not None:
        if not _whole(input_size) or input_size <= 0:
            raise CheckpointError(f"input_size must be a positive whole number of pixels (got {_show(input_size)})")
        if input_size != size:
            raise CheckpointError(f"input_size {input_size} and preprocess size {size} disagree: they must be equal")
    if pre["mode"] not in RESIZE_MODES:
        raise CheckpointError(f"unknown preprocess mode {_show(pre['mode'])}; valid: {', '.join(RESIZE_MODES)}")
    fill = pre.get("fill", [0, 0, 0])
    if not isinstance(fill, list) or len(fill) != 3 or not all(_whole(v) and 0 <= v <= 255 for v in fill):
        raise CheckpointError(f"preprocess fill must be 3 whole numbers 0-255 (got {_show(fill)})")


def _check_normalization(norm: Any) -> None:
    if not isinstance(norm, dict):
        raise CheckpointError(f"normalization must be an object with mean and std (got {_show(norm)})")
    mean, std = norm.get("mean"), norm.get("std")
    if not isinstance(mean, list) or len(mean) != 3 or not all(_number(v) for v in mean):
        raise CheckpointError(f"normalization mean must be 3 finite numbers (got {_show(mean)})")
    if not isinstance(std, list) or len(std) != 3 or not all(_number(v) and v > 0 for v in std):
        raise CheckpointError(f"normalization std must be 3 numbers above 0 (got {_show(std)}): a zero or "
                              "negative std makes every prediction NaN or infinite")


def check_description(d: Any) -> None:
    """Refuse a checkpoint description (the parsed JSON sidecar) that cannot be used, with one
    :class:`CheckpointError` naming the field, what it holds and what it must hold."""
    if not isinstance(d, dict):
        raise CheckpointError(f"not a cnnviz checkpoint description (a JSON {type(d).__name__}, not an object)")
    fmt = d.get("format", "")
    if not isinstance(fmt, str) or not fmt.startswith("cnnviz-checkpoint/"):
        raise CheckpointError(f"not a cnnviz checkpoint description (format {fmt!r})")
    if fmt not in READABLE_FORMATS:
        raise CheckpointError(f"format {fmt!r} is not one this cnnviz reads (it reads "
                              f"{', '.join(READABLE_FORMATS)}): it was saved by another version; "
                              "load it with that version or upgrade cnnviz")
    for key in _REQUIRED:
        if key not in d:
            raise CheckpointError(f"checkpoint description lacks the field {key!r}")
    if not isinstance(d["arch"], str):
        raise CheckpointError(f"arch must be the name of a registered model (got {_show(d['arch'])})")
    kwargs = d.get("arch_kwargs", {})
    if not isinstance(kwargs, dict):
        raise CheckpointError(f"arch_kwargs must be an object of argument names and values (got {_show(kwargs)})")
    check_classes(d["classes"])
    _check_preprocess(d["preprocess"], d.get("input_size"))
    _check_normalization(d["normalization"])
    if d.get("tta", "none") not in TTA_MODES:
        raise CheckpointError(f"unknown tta {_show(d.get('tta'))}; valid: {', '.join(TTA_MODES)}")
    epochs = d.get("snapshot_epochs", [])
    if not isinstance(epochs, list) or not all(_whole(e) and e >= 0 for e in epochs):
        raise CheckpointError(f"snapshot_epochs must be a list of epoch numbers (got {_show(epochs)})")
    for key, kind in (("train_config", dict), ("history", list), ("metrics", dict), ("info", dict),
                      ("versions", dict)):
        if not isinstance(d.get(key, kind()), kind):
            raise CheckpointError(f"{key} must be a JSON {'object' if kind is dict else 'list'} "
                                  f"(got {_show(d[key])})")


def describe_arguments(kwargs: Mapping[str, Any]) -> str:
    """``"widths=(8, 8, 8), stem='conv'"``, or ``"its default arguments"``."""
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items()) or "its default arguments"


def _construct(arch: str, num_classes: int, input_size: int, kwargs: Mapping[str, Any]) -> CNN:
    try:
        return get_model(arch, num_classes, input_size, **kwargs)
    except UnknownModelError as e:
        raise CheckpointError(e.args[0]) from None
    except (TypeError, ValueError, RuntimeError) as e:  # the builder's refusal of its arguments
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(f"cannot build {arch} with {describe_arguments(kwargs)} at input size "
                              f"{input_size}: {reason}") from None


def check_architecture(arch: str, num_classes: int, input_size: int, kwargs: Mapping[str, Any]) -> CNN:
    """``arch`` built with these arguments on the ``meta`` device: its shapes and parameter
    names, no memory allocated. Raises :class:`CheckpointError` for an unknown name, arguments
    the builder refuses, or more than :data:`MAX_PARAMETERS` parameters."""
    with torch.device("meta"):
        model = _construct(arch, num_classes, input_size, kwargs)
    n = sum(p.numel() for p in model.parameters())
    if n > MAX_PARAMETERS:
        raise CheckpointError(
            f"{arch} with {describe_arguments(kwargs)} at input size {input_size} would have {n:,} parameters "
            f"({n * 4 / 1e9:.1f} GB as float32), more than the {MAX_PARAMETERS:,} cnnviz builds")
    return model


def build_architecture(arch: str, num_classes: int, input_size: int, kwargs: Mapping[str, Any]) -> CNN:
    """``get_model(arch, ...)`` on the CPU, freshly initialised, after :func:`check_architecture`."""
    check_architecture(arch, num_classes, input_size, kwargs)
    return _construct(arch, num_classes, input_size, kwargs)

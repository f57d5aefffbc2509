"""What decides a training run (:class:`TrainConfig`, checked as it is made) and what it returns."""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Callable, Literal, Mapping, get_args, get_origin, get_type_hints

import torch

from ..inputs import TTA
from ..runtime import Precision


class ConfigError(ValueError):
    """A training setting that cannot be used. ``field`` names it (the command line shows its
    option instead), ``problem`` says what it must be: ``str(e) == f"{field} {problem}"``."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field} {problem}")
        self.field = field
        self.problem = problem


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _whole(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def show(v: Any) -> str:
    """A value as a user typed it: ``0`` for ``0.0``, quotes around text."""
    return f"{v:g}" if isinstance(v, float) else repr(v)


POSITIVE = (lambda v: _number(v) and v > 0, "a number above 0")
NON_NEGATIVE = (lambda v: _number(v) and v >= 0, "a number of at least 0")
FRACTION = (lambda v: _number(v) and 0 <= v < 1, "a number of at least 0 and below 1")
UNIT = (lambda v: _number(v) and 0 <= v <= 1, "a number from 0 to 1")
COUNT = (lambda v: _whole(v) and v >= 1, "a whole number of at least 1")
INDEX = (lambda v: _whole(v) and v >= 0, "a whole number of at least 0")

# Each numeric option's range; options typed Literal or bool are checked from their annotation.
_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "epochs": POSITIVE, "batch_size": COUNT, "lr": POSITIVE, "momentum": FRACTION,
    "weight_decay": NON_NEGATIVE, "first_conv_weight_decay": NON_NEGATIVE, "label_smoothing": FRACTION, "norm_lr_scale": POSITIVE,
    "warmup_fraction": UNIT, "lr_start": NON_NEGATIVE, "lr_end": NON_NEGATIVE,
    "lookahead_every": INDEX, "lookahead_decay": UNIT, "translate": INDEX, "scale": FRACTION,
    "rotate": NON_NEGATIVE, "mix_alpha": POSITIVE, "mix_prob": UNIT,
    "saturation": UNIT, "gray_prob": UNIT, "threads": COUNT, "seed": INDEX,
    "split_seed": INDEX, "max_minutes": POSITIVE,
    "device": (lambda v: isinstance(v, str) and bool(v), "a device name such as auto, cpu or cuda:1"),
    "snapshot_epochs": (lambda v: isinstance(v, tuple) and all(INDEX[0](e) for e in v),
                        "a list of epoch numbers of at least 0"),
    "freeze_after": (lambda v: isinstance(v, Mapping) and all(isinstance(k, str) and INDEX[0](e)
                                                              for k, e in v.items()),
                     "a mapping of parameter names to the last epoch they train"),
}
_OPTIONAL = {"threads", "max_minutes", "channels_last", "split_seed", "first_conv_weight_decay"}  # None means "let cnnviz choose"


def require(field: str, value: Any, rule: tuple[Callable[[Any], bool], str]) -> None:
    """Raise :class:`ConfigError` unless ``rule``'s test passes for ``value``."""
    test, what = rule
    if not test(value):
        raise ConfigError(field, f"must be {what} (got {show(value)})")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run, and the one home of its defaults. Defaults suit
    a generic CNN; each registered model supplies its own recipe
    (``model_spec(name).train_defaults``). Every value is checked as the config is made
    (:class:`ConfigError`).

    The learning rate follows a piecewise-linear one-cycle: ``lr * lr_start`` rising to ``lr``
    over ``warmup_fraction`` of the steps, then falling to ``lr * lr_end``. BatchNorm parameters
    use ``lr * norm_lr_scale`` and ``weight_decay / norm_lr_scale``. ``first_conv_weight_decay``,
    when given, replaces ``weight_decay`` for the model's first convolution (its ``first_conv``):
    behind a BatchNorm, decay keeps that layer's effective learning rate high, so its kernels
    keep the noise of the last few hundred steps instead of averaging it out. ``lookahead_every > 0``
    keeps an exponential moving average of the weights that the model is pulled back to every
    that many steps, with a decay ramping as ``lookahead_decay * progress**3``.

    ``saturation`` and ``gray_prob`` change each training image's colour saturation by a
    random factor in ``[1 - saturation, 1 + saturation]`` and make it grey with probability
    ``gray_prob`` (:func:`cnnviz.inputs.random_colour`). ``mix`` mixes each batch with a
    shuffled copy of itself with probability ``mix_prob``
    (:func:`cnnviz.inputs.mix_batch`, Beta(``mix_alpha``, ``mix_alpha``)); the loss weighs both
    labels by their share. ``seed`` decides initialisation and order, and the validation split
    too unless ``split_seed`` is given (another initialisation on the same split).

    ``max_minutes`` caps the run's wall time (validation included): the number of steps is
    re-estimated from the measured speed as training goes, and the schedule follows it.

    Under ``torchrun`` (several processes, :mod:`cnnviz.distributed`) ``batch_size`` stays the
    global batch, split over the processes; ``sync_bn`` then has BatchNorm layers normalise by
    the statistics of the whole global batch instead of each process's share (no effect in a
    single process).
    """

    epochs: float = 10
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    first_conv_weight_decay: float | None = None
    label_smoothing: float = 0.0
    norm_lr_scale: float = 1.0
    warmup_fraction: float = 0.2
    lr_start: float = 0.1
    lr_end: float = 0.0
    lookahead_every: int = 0
    lookahead_decay: float = 0.0
    flip: Literal["none", "random", "alternate"] = "random"
    translate: int = 0
    scale: float = 0.0
    rotate: float = 0.0
    saturation: float = 0.0
    gray_prob: float = 0.0
    mix: Literal["none", "mixup", "cutmix"] = "none"
    mix_alpha: float = 1.0
    mix_prob: float = 1.0
    tta: TTA = "none"
    freeze_after: Mapping[str, int] = field(default_factory=dict)
    class_balance: Literal["none", "loss", "sampler"] = "none"
    keep_best: bool = False
    device: str = "auto"
    precision: Precision = "auto"
    channels_last: bool | None = None
    sync_bn: bool = False
    threads: int | None = None
    seed: int = 0
    split_seed: int | None = None
    snapshot_epochs: tuple[int, ...] = ()
    snapshot_scope: Literal["all", "first_conv"] = "all"
    max_minutes: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.snapshot_epochs, list):  # e.g. from JSON
            object.__setattr__(self, "snapshot_epochs", tuple(self.snapshot_epochs))
        hints = _hints()
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None and f.name in _OPTIONAL:
                continue
            hint = hints[f.name]
            if get_origin(hint) is Literal:
                choices = get_args(hint)
                rule = (lambda v, c=choices: v in c, f"one of {', '.join(choices)}")
            elif hint is bool or f.name == "channels_last":
                rule = (lambda v: isinstance(v, bool), "true or false")
            else:
                rule = _RULES[f.name]
            require(f.name, value, rule)

    @property
    def data_seed(self) -> int:
        """The seed of the validation split: ``split_seed``, else ``seed``."""
        return self.seed if self.split_seed is None else self.split_seed

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["freeze_after"] = dict(self.freeze_after)
        d["snapshot_epochs"] = list(self.snapshot_epochs)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TrainConfig":
        _refuse_unknown(d)
        return cls(**d)

    def with_overrides(self, **kw: Any) -> "TrainConfig":
        """This config with the given options changed (``None`` values leave an option as is)."""
        _refuse_unknown(kw)
        return replace(self, **{k: v for k, v in kw.items() if v is not None})


@functools.cache
def _hints() -> dict[str, Any]:
    return get_type_hints(TrainConfig)


def _refuse_unknown(options: Mapping[str, Any]) -> None:
    known = [f.name for f in fields(TrainConfig)]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(unknown[0], f"is not a training option; known: {', '.join(known)}")


@dataclass
class EpochRecord:
    """One row of training history."""

    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float | None
    val_acc: float | None
    lr: float
    seconds: float
    images_per_s: float


@dataclass
class TrainResult:
    """What ``fit`` returns: the history, weight snapshots by epoch, the runtime used (rank
    0's) and the number of processes that shared the work; ``finished`` is False when the run
    stopped early to be resumed (``steps`` of ``total_steps`` taken)."""

    history: list[EpochRecord]
    snapshots: dict[int, dict[str, torch.Tensor]]
    runtime: str
    seconds: float
    best_epoch: int | None = None
    world_size: int = 1  # processes that trained it together (torchrun)
    finished: bool = True
    total_steps: int = 0
    steps: int = 0

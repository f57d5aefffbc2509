"""The optimiser's parts: learning-rate schedule, parameter groups, class weights, the
lookahead average of the weights, the time budget, and weight snapshots."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    from .config import TrainConfig


def lr_factor(step: int, total: int, cfg: "TrainConfig") -> float:
    """The learning rate at ``step`` of ``total`` as a multiple of ``cfg.lr`` (one-cycle)."""
    warm = max(1, int(total * cfg.warmup_fraction))
    if step < warm:
        f = step / warm
        return cfg.lr_start * (1 - f) + f
    f = (step - warm) / max(1, total - warm)
    return (1 - f) + cfg.lr_end * f


def param_groups(model: nn.Module, cfg: "TrainConfig") -> list[dict]:
    """SGD groups: normalisation parameters at ``lr * norm_lr_scale``, the rest at ``lr``; the
    first convolution's parameters in a group of their own when ``first_conv_weight_decay`` is
    set."""
    norm_ids = {id(p) for m in model.modules()
                if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d, nn.LayerNorm, nn.GroupNorm))
                for p in m.parameters(recurse=False)}
    first = getattr(model, "first_conv", None)
    first_ids = ({id(p) for p in first.parameters()}
                 if cfg.first_conv_weight_decay is not None and isinstance(first, nn.Module) else set())
    norm, first_conv, other = [], [], []
    for p in model.parameters():
        if p.requires_grad:
            (norm if id(p) in norm_ids else first_conv if id(p) in first_ids else other).append(p)
    groups = [dict(params=other, lr=cfg.lr, weight_decay=cfg.weight_decay, base_lr=cfg.lr)]
    if first_conv:
        groups.append(dict(params=first_conv, lr=cfg.lr, weight_decay=cfg.first_conv_weight_decay,
                           base_lr=cfg.lr))
    if norm:
        lr_n = cfg.lr * cfg.norm_lr_scale
        groups.append(dict(params=norm, lr=lr_n, weight_decay=cfg.weight_decay / cfg.norm_lr_scale,
                           base_lr=lr_n))
    return groups


def class_weights(labels: np.ndarray, k: int) -> np.ndarray:
    """``(k,) float64`` weights inversely proportional to each class's count (0 for none)."""
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    return np.where(counts > 0, len(labels) / (k * np.maximum(counts, 1)), 0.0)


class Lookahead:
    """EMA of the float tensors of a state dict, copied back into the model when updated."""

    def __init__(self, model: nn.Module):
        self.ema = {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}

    @torch.no_grad()
    def update(self, model: nn.Module, decay: float) -> None:
        state = model.state_dict()
        for k, e in self.ema.items():
            e.lerp_(state[k], 1 - decay)
            state[k].copy_(e)


def steps_within(budget_s: float, elapsed: float, step: int, planned: int, steps_per_epoch: int) -> int:
    """Total steps that fit in ``budget_s`` at the speed measured so far (at least one more than
    done while any are planned, never more than ``planned``). Validation is costed as a tenth of the training time (one
    inference pass over a small split per epoch)."""
    per_step = elapsed / step
    fit = int((budget_s - elapsed) / (per_step * 1.1))
    return min(planned, max(step + 1, step + fit))


def snapshot_prefix(model: nn.Module, scope: str) -> str:
    """``""`` (everything) or the state-dict prefix of the first convolution."""
    if scope == "all":
        return ""
    first = getattr(model, "first_conv", None)
    return next((f"{n}." for n, m in model.named_modules() if m is first), "")


def cpu_state(model: nn.Module, prefix: str = "") -> dict[str, torch.Tensor]:
    """CPU copies of the state-dict tensors whose names start with ``prefix``."""
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()
            if k.startswith(prefix)}

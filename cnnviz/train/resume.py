"""A training run's state between epochs, saved so that a long run can be done in parts.

After every epoch :func:`save_state` writes ``<out>.resume.safetensors`` (the weights, the
optimiser's momentum, the weight average, the best weights and the snapshots so far, the
augmentation generator) and ``<out>.resume.json`` (the epoch, step, schedule, history, time
spent, the order generator and what the state belongs to), both under temporary names moved
into place together. :func:`load_state` checks that the state belongs to the same model,
recipe and data before anything is restored. Nothing is unpickled: tensors go through
safetensors, the rest through JSON.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ..atomic import FileGroup
from .config import EpochRecord

__all__ = ["FORMAT", "ResumeError", "SavedState", "clear_state", "load_state", "save_state", "state_paths"]

FORMAT = "cnnviz-train-state/1"


class ResumeError(ValueError):
    """A saved state that cannot be continued; the message says why and what to do."""


def state_paths(out: str | Path) -> tuple[Path, Path]:
    """``(tensors, description)`` of the state saved for the checkpoint ``out``."""
    p = Path(out)
    if p.suffix in (".json", ".safetensors"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".resume.safetensors"), p.with_name(p.name + ".resume.json")


@dataclass
class SavedState:
    """What a run needs to go on from the end of ``epoch``: ``tensors`` by group (``model``,
    ``opt``, ``look``, ``best``, ``snap<epoch>``, ``gen``), ``info`` the JSON part."""

    epoch: int
    step: int
    total_steps: int
    planned_steps: int
    elapsed: float
    history: list[EpochRecord]
    rng: dict[str, Any]
    optimizer_groups: list[dict[str, Any]]
    best: tuple[float, int] | None
    identity: dict[str, Any]
    tensors: dict[str, dict[str, torch.Tensor]]


def save_state(out: str | Path, state: SavedState) -> None:
    """Write ``state`` beside the checkpoint ``out`` (replacing any earlier one, all or nothing)."""
    tensors_path, info_path = state_paths(out)
    flat = {f"{group}/{k}": v.detach().cpu().contiguous() for group, d in state.tensors.items() for k, v in d.items()}
    info = {
        "format": FORMAT, "epoch": state.epoch, "step": state.step, "total_steps": state.total_steps,
        "planned_steps": state.planned_steps, "elapsed": state.elapsed,
        "history": [asdict(r) for r in state.history], "rng": state.rng,
        "optimizer_groups": state.optimizer_groups, "best": list(state.best) if state.best else None,
        "identity": state.identity,
    }
    with FileGroup() as group:
        save_file(flat, str(group.stage(tensors_path)), metadata={"format": FORMAT})
        group.stage(info_path).write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
        group.commit()


def load_state(out: str | Path, identity: dict[str, Any]) -> SavedState | None:
    """The state saved beside ``out``, or None when there is none. Raises :class:`ResumeError`
    when it is unreadable or belongs to another model, recipe or dataset than ``identity``."""
    tensors_path, info_path = state_paths(out)
    if not info_path.exists() and not tensors_path.exists():
        return None
    again = f"delete {info_path.name} and {tensors_path.name} to start again"
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
        flat = load_file(str(tensors_path))
    except (OSError, ValueError) as e:
        raise ResumeError(f"the saved training state beside {out} cannot be read ({e}); {again}") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise ResumeError(f"{info_path} is not a cnnviz training state ({FORMAT}); {again}")
    saved = info.get("identity", {})
    for key in identity:
        if saved.get(key) != identity[key]:
            raise ResumeError(f"the saved training state beside {out} is for another {key.replace('_', ' ')} "
                              f"than this run; run with the same options to continue it, or {again}")
    tensors: dict[str, dict[str, torch.Tensor]] = {}
    for name, v in flat.items():
        group, _, key = name.partition("/")
        tensors.setdefault(group, {})[key] = v
    return SavedState(
        epoch=int(info["epoch"]), step=int(info["step"]), total_steps=int(info["total_steps"]),
        planned_steps=int(info["planned_steps"]), elapsed=float(info["elapsed"]),
        history=[EpochRecord(**r) for r in info["history"]], rng=info["rng"],
        optimizer_groups=info["optimizer_groups"], best=tuple(info["best"]) if info["best"] else None,
        identity=saved, tensors=tensors,
    )


def clear_state(out: str | Path) -> None:
    """Remove the state saved beside ``out`` (once its checkpoint is saved)."""
    for p in state_paths(out):
        p.unlink(missing_ok=True)

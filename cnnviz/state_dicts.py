"""Weights files: safetensors, and users' ``.pt``/``.pth`` state dicts read without running
code (``torch.load(weights_only=True)``); strict loading that names what does not fit."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Mapping

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import load_file

from .checkpoint_meta import CheckpointError


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors from ``.safetensors``, or from ``.pt``/``.pth`` with ``weights_only=True``.

    A ``.pt`` holding ``{"state_dict": ...}`` or ``{"model": ...}`` is unwrapped, and a
    ``module.`` prefix (DataParallel) is dropped. Anything that would need code to unpickle is
    refused with :class:`CheckpointError` before it runs.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no weights file at {path}")
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as e:
            raise CheckpointError(f"{path} is not a readable safetensors file ({e})") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises UnpicklingError/RuntimeError for unsafe or broken files
        raise CheckpointError(
            f"refused to load {path}: it is not a plain state dict that can be read safely "
            f"(weights_only=True). Save it with torch.save(model.state_dict(), ...) and try again. "
            f"Details: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
        ) from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path} does not hold a state dict (a mapping of names to tensors)")
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return dict(obj)


def read_weights(path: Path) -> tuple[dict[str, torch.Tensor], str]:
    """``(state dict, sha256 of the file)``; a ``.safetensors`` is read once for both."""
    if path.suffix != ".safetensors" or not path.is_file():
        return read_state_dict(path), file_sha256(path)
    data = path.read_bytes()
    try:
        state = load_safetensors_bytes(data)
    except SafetensorError as e:
        raise CheckpointError(f"{path} is not a readable safetensors file ({e})") from None
    return state, hashlib.sha256(data).hexdigest()


def load_weights(model: torch.nn.Module, state: Mapping[str, torch.Tensor], source: str = "weights") -> None:
    """Load ``state`` strictly; on mismatch raise :class:`CheckpointError` naming the keys."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shape = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or shape:
        parts = []
        if missing:
            parts.append(f"missing keys: {', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}")
        if unexpected:
            parts.append(f"unexpected keys: {', '.join(unexpected[:8])}{' ...' if len(unexpected) > 8 else ''}")
        if shape:
            parts.append("shape mismatch: " + ", ".join(
                f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in shape[:8]))
        raise CheckpointError(
            f"{source} do not fit {type(model).__name__}: " + "; ".join(parts)
            + ". Check the architecture (--arch) and number of classes match the file."
        )
    model.load_state_dict(state, strict=True)

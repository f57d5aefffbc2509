"""``cnnviz import``: a user's bare state dict (``.pt``/``.pth``/``.safetensors``) described and
saved as a cnnviz checkpoint, or refused with the likeliest fix.

Nothing here unpickles: ``.pt`` files are read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from .checkpoint_meta import CheckpointError, check_classes
from .checkpoints import (
    Checkpoint, CheckpointMeta, file_sha256, load_checkpoint, load_weights, prepare_output,
    read_state_dict, save_checkpoint, untuple,
)
from .data import PROFILES, RESIZE_MODES, Preprocess
from .inputs import Normalization
from .models import CNN
from .runtime import Runtime

IMAGENET_NORMALIZATION = Normalization((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def _check_settings(classes: list[str], resize: str, dataset: str, norm: Normalization) -> None:
    if not classes or any(not c for c in classes):
        raise CheckpointError("give the class names in the order of the model's outputs (none may be empty)")
    check_classes(classes)
    if resize not in RESIZE_MODES:
        raise CheckpointError(f"unknown resize mode {resize!r}: use {', '.join(RESIZE_MODES)}")
    if dataset not in PROFILES:
        raise CheckpointError(f"unknown dataset kind {dataset!r}; known: {', '.join(PROFILES)}")
    if (len(norm.mean), len(norm.std)) != (3, 3) or not all(0 <= m <= 1 for m in norm.mean) \
            or not all(0 < s <= 1 for s in norm.std):
        raise CheckpointError(
            f"normalisation mean {tuple(norm.mean)} / std {tuple(norm.std)} must be 3 values each, in "
            "[0, 1] units (mean in [0, 1], std in (0, 1]); divide values for 0-255 pixels by 255")


def import_weights(weights: str | Path, out: str | Path, arch: str, classes: Sequence[str],
                   input_size: int, arch_kwargs: Mapping[str, Any] | None = None,
                   resize: str = "squash", normalization: Normalization | None = None,
                   dataset: str = "folder", overwrite: bool = False,
                   runtime: Runtime | None = None) -> Checkpoint:
    """Make a cnnviz checkpoint (``<out>.safetensors`` + ``<out>.json``) of a user's weights.

    ``weights`` is a ``.safetensors`` or a ``.pt``/``.pth`` state dict (read safely, see
    :func:`~cnnviz.checkpoints.read_state_dict`); it must fit ``arch`` built with
    ``len(classes)`` outputs, the ``input_size`` and ``arch_kwargs`` exactly. Normalisation
    defaults to ImageNet's mean/std. ``meta.info`` records the source file and its sha256;
    there is no training history. An existing ``<out>`` is replaced only with
    ``overwrite=True``. Returns the checkpoint as loaded on ``runtime`` (see
    :func:`~cnnviz.checkpoints.load_checkpoint`).
    """
    weights = Path(weights)
    classes = [str(c).strip() for c in classes]
    norm = normalization or IMAGENET_NORMALIZATION
    _check_settings(classes, resize, dataset, norm)
    kwargs = untuple(dict(arch_kwargs or {}))
    meta = CheckpointMeta(
        arch=arch, classes=classes, preprocess=Preprocess(int(input_size), resize),  # type: ignore[arg-type]
        normalization=norm, arch_kwargs=kwargs, dataset=dataset,
    )
    model = meta.build_model()
    prepare_output(out, overwrite, keep=weights)

    state = read_state_dict(weights)
    if isinstance(model, CNN):
        state = model.adapt_state_dict(state)
    source_sha = file_sha256(weights)
    try:
        load_weights(model, state, source=weights.name)
    except CheckpointError as e:
        raise CheckpointError(f"{e} {_fit_hint(model, state, len(classes))}") from None
    model.eval()
    try:
        with torch.no_grad():
            logits = model(torch.zeros(1, 3, meta.input_size, meta.input_size))
    except Exception as e:  # e.g. a fully connected layer sized for other inputs
        raise CheckpointError(f"{arch} with these weights does not run on {meta.input_size}x{meta.input_size} "
                              f"inputs ({str(e).splitlines()[0] if str(e) else type(e).__name__}); "
                              "check the input size (--size)") from None
    if tuple(logits.shape) != (1, len(classes)):
        raise CheckpointError(f"{arch} gives {tuple(logits.shape[1:])} outputs, not one per class ({len(classes)})")
    meta.info = {"imported": True, "source_file": weights.name, "source_sha256": source_sha,
                 "note": "weights imported with cnnviz import: no training history, split or metrics"}
    return load_checkpoint(save_checkpoint(out, model, meta), runtime=runtime)


def _fit_hint(model: torch.nn.Module, state: Mapping[str, torch.Tensor], n_classes: int) -> str:
    """The likeliest fix for weights that do not fit: the class count, else the other settings."""
    own = model.state_dict()
    for name, module in reversed(list(model.named_modules())):
        key = f"{name}.weight"
        if isinstance(module, torch.nn.Linear) and module.out_features == n_classes and key in state:
            found = state[key].shape[0] if state[key].ndim else None
            if found is not None and found != n_classes and tuple(state[key].shape[1:]) == tuple(own[key].shape[1:]):
                return (f"The file's final layer {name} has {found} outputs but {n_classes} class names were "
                        f"given: give exactly {found} class names, in the order of the outputs.")
            break
    if set(own) != set(state):
        return ("The layer names differ: the weights are of another architecture or layout "
                "(`cnnviz models` lists the registered ones).")
    return ("The architecture arguments (--model-arg) and the input size (--size) change layer "
            "shapes too: use the values the weights were trained with.")

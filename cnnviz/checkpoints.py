"""Self-describing checkpoints: weights in safetensors, everything else in a JSON sidecar.

``<name>.safetensors``            final weights (float32, bit-exact)
``<name>.json``                   architecture + arguments, classes, preprocessing, normalisation,
                                  data split, history, metrics, software versions, and the
                                  weights' sha256 (``weights_sha256``)
``<name>.snapshots.safetensors``  optional weights at chosen epochs, keys ``epoch<E>/<param>``

The files are saved together (:class:`~cnnviz.atomic.FileGroup`): an interrupted save leaves
the previous checkpoint as it was, and a load that finds weights of another save than its
description refuses them. Descriptions are checked before any work
(:mod:`cnnviz.checkpoint_meta`). Nothing here unpickles: user ``.pt``/``.pth`` files are
read with ``torch.load(weights_only=True)``; making checkpoints of them is
:mod:`cnnviz.importing`.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .atomic import FileGroup
from .checkpoint_meta import (
    FORMAT, CheckpointError, CheckpointMeta, check_description, software_versions, untuple,
)
from .data import RESIZE_MODES, DatasetError, ImageDataset, load_dataset
from .models import CNN
from .runtime import Runtime, fix_for_inference, resolve_runtime
from .state_dicts import file_sha256, load_weights, read_state_dict, read_weights

__all__ = [
    "FORMAT", "IMAGENET_NORMALIZATION", "RESIZE_MODES", "Checkpoint", "CheckpointError", "CheckpointMeta",
    "check_description", "checkpoint_data", "file_sha256", "held_out_data", "import_weights", "load_checkpoint", "load_snapshots",
    "load_weights", "paths_for", "prepare_output", "read_state_dict", "save_checkpoint", "snapshots_path",
    "software_versions", "untuple",
]


@dataclass
class Checkpoint:
    """A loaded model with its description. ``sha256`` identifies the weights (cache keys).

    ``runtime`` is where and how the model runs: it was fixed there once at load
    (:func:`~cnnviz.runtime.fix_for_inference`) and every view passes it on unchanged."""

    model: CNN
    meta: CheckpointMeta
    path: Path | None
    sha256: str
    runtime: Runtime = field(default_factory=lambda: resolve_runtime("cpu"))

    @property
    def name(self) -> str:
        return self.path.stem if self.path else "model"


def paths_for(path: str | Path) -> tuple[Path, Path]:
    """``(weights, sidecar)`` for a checkpoint given as stem, ``.json`` or ``.safetensors``."""
    p = Path(path)
    known = p.suffix in (".json", ".safetensors", ".pt", ".pth")
    stem = p.with_suffix("") if known else p  # names may hold dots: runs/lr0.05
    weights = p if p.suffix in (".safetensors", ".pt", ".pth") else _sibling(stem, ".safetensors")
    return weights, _sibling(stem, ".json")


def _sibling(stem: Path, suffix: str) -> Path:
    return stem.with_name(stem.name + suffix)


def _saved_paths(path: str | Path) -> tuple[Path, Path, Path]:
    """``(weights, sidecar, snapshots)`` that :func:`save_checkpoint` writes for ``path``."""
    weights, sidecar = paths_for(path)
    weights = _sibling(weights.with_suffix(""), ".safetensors")
    return weights, sidecar, snapshots_path(weights)


def snapshots_path(weights: Path) -> Path:
    """``<name>.snapshots.safetensors`` beside ``<name>.safetensors``."""
    return _sibling(weights.with_suffix(""), ".snapshots.safetensors")


def prepare_output(out: str | Path, overwrite: bool = False, keep: Path | None = None) -> Path:
    """Make sure a checkpoint can be saved at ``out`` before any work goes into it: refuse an
    existing one unless ``overwrite`` (``keep``: a file there that may stay, e.g. the weights
    being described in place), create the folder and try writing in it. Returns the weights path."""
    weights, sidecar, snaps = _saved_paths(out)
    same = keep is not None and Path(keep).exists()
    existing = [p for p in (sidecar, weights, snaps)
                if p.exists() and not (same and p.resolve() == Path(keep).resolve())]
    if existing and not overwrite:
        raise CheckpointError(f"{existing[0]} already exists; choose another output or overwrite it "
                              "(overwrite=True, --force on the command line)")
    folder = weights.parent
    blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise CheckpointError(f"cannot save a checkpoint under {blocker}: it is a file, not a folder; "
                              "choose another output (--out)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise CheckpointError(f"cannot write to {folder} ({e.strerror or e}): choose another output (--out)") from None
    return weights


def save_checkpoint(path: str | Path, model: torch.nn.Module, meta: CheckpointMeta,
                    snapshots: Mapping[int, Mapping[str, torch.Tensor]] | None = None) -> Path:
    """Write ``<path>.safetensors`` + ``<path>.json`` (+ snapshots) together; returns the weights path.

    Each file is written under a temporary name and all are then moved into place at once
    (Ctrl-C deferred meanwhile); a save that fails or is interrupted leaves the previous
    checkpoint as it was. Earlier snapshots are removed when none are given."""
    weights, sidecar, snaps = _saved_paths(path)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    epochs = sorted(int(e) for e in snapshots) if snapshots else []
    with FileGroup() as group:
        staged = group.stage(weights)
        save_file(state, str(staged), metadata={"format": FORMAT, "arch": meta.arch})
        sha = file_sha256(staged)
        if snapshots:
            flat = {f"epoch{e}/{k}": v.detach().cpu().contiguous()
                    for e, sd in snapshots.items() for k, v in sd.items()}
            save_file(flat, str(group.stage(snaps)), metadata={"format": FORMAT, "weights_sha256": sha})
        else:  # never leave an earlier run's snapshots beside new weights
            group.remove(snaps)
        d = replace(meta, snapshot_epochs=epochs).to_dict() | {"weights_sha256": sha}
        group.stage(sidecar).write_text(json.dumps(d, indent=1) + "\n")
        group.commit()
    meta.snapshot_epochs = epochs
    return weights


def _read_sidecar(sidecar: Path, weights: Path) -> tuple[CheckpointMeta, str | None]:
    """The checked description and the weights' sha256 it records (``None``: not recorded)."""
    if not sidecar.is_file():
        raise CheckpointError(
            f"no description {sidecar.name} beside {weights}: a bare weights file needs its "
            "architecture, classes and input size; make a checkpoint of it with "
            "cnnviz import WEIGHTS --arch NAME --classes a,b,c --size N --out PATH"
        )
    try:
        d = json.loads(sidecar.read_text(encoding="utf-8"))
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
        raise CheckpointError(f"{sidecar} is not valid JSON ({e})") from None
    try:
        meta = CheckpointMeta.from_dict(d)
    except CheckpointError as e:
        raise CheckpointError(f"{sidecar}: {e}") from None
    sha = d.get("weights_sha256")
    if sha is not None and not (isinstance(sha, str) and len(sha) == 64):
        raise CheckpointError(f"{sidecar}: weights_sha256 must be a sha256 in hex (got {sha!r})")
    return meta, sha


def _build(meta: CheckpointMeta, sidecar: Path | None) -> CNN:
    try:
        return meta.build_model()
    except CheckpointError as e:
        raise CheckpointError(f"{sidecar}: {e}" if sidecar else str(e)) from None


def load_checkpoint(path: str | Path, meta: CheckpointMeta | None = None,
                    runtime: Runtime | None = None) -> Checkpoint:
    """Load a checkpoint (stem, ``.json``, ``.safetensors``, or a user's ``.pt``/``.pth``).

    The description comes from the JSON sidecar (checked first, see
    :func:`~cnnviz.checkpoint_meta.check_description`), or from ``meta`` for a bare weights
    file. Weights whose sha256 is not the one the sidecar records are refused: the pair is of
    two saves. The model is fixed for shared inference on ``runtime`` (default: the best this
    machine has, see :func:`~cnnviz.runtime.resolve_runtime`): eval mode, no parameter
    gradients, no in-place activations (:func:`~cnnviz.runtime.fix_for_inference`).
    """
    weights, sidecar = paths_for(path)
    given = meta
    for attempt in range(2):
        meta, expected = (given, None) if given is not None else _read_sidecar(sidecar, weights)
        model = _build(meta, None if given is not None else sidecar)
        if not weights.is_file() and weights.suffix == ".safetensors":
            raise CheckpointError(f"no weights file {weights} beside {sidecar}")
        state, sha = read_weights(weights)
        if expected is None or sha == expected:
            break
        if attempt == 0:
            time.sleep(0.05)  # a save may be moving a new pair into place: read both again
    else:
        raise CheckpointError(
            f"{weights.name} and {sidecar.name} do not belong together: the weights' sha256 is "
            f"{sha[:12]}..., the description records {expected[:12]}... They are from two different "
            "saves, or a save was interrupted: save or copy the checkpoint again as a pair")
    load_weights(model, state, source=str(weights.name))
    rt = runtime or resolve_runtime()
    fix_for_inference(model, rt)
    return Checkpoint(model, meta, weights, sha, rt)


def load_snapshots(ckpt: Checkpoint) -> dict[int, dict[str, torch.Tensor]]:
    """Weights saved at chosen epochs, ``{epoch: state_dict}`` (empty if none were saved).
    Snapshots saved with other weights than ``ckpt``'s are refused."""
    if ckpt.path is None or not snapshots_path(ckpt.path).is_file():
        return {}
    path = snapshots_path(ckpt.path)
    try:
        with safe_open(str(path), "pt") as f:
            owner = (f.metadata() or {}).get("weights_sha256")
            flat = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{path} is not a readable safetensors file ({e})") from None
    if owner is not None and owner != ckpt.sha256:
        raise CheckpointError(f"{path.name} holds snapshots of other weights than {ckpt.path.name} "
                              "(from another save): delete it, or save the checkpoint again")
    out: dict[int, dict[str, torch.Tensor]] = {}
    for key, v in flat.items():
        epoch, name = key.split("/", 1)
        out.setdefault(int(epoch[len("epoch"):]), {})[name] = v
    return dict(sorted(out.items()))


def checkpoint_data(meta: CheckpointMeta, data: str | Path, split: str = "test",
                    cache_dir: str | Path | None = None, progress: bool = False) -> ImageDataset:
    """The images of ``split`` for this checkpoint: ``test`` as found at ``data``; ``val`` and
    ``train`` from the training set, divided by the split recorded at training time; from a
    demo gallery (:mod:`cnnviz.gallery`), its training part or its held-out part under the name
    of the split it was taken from. Labels follow the checkpoint's class order."""
    if split not in ("test", "val", "train"):
        raise CheckpointError(f"unknown split {split!r}: use test, val or train")
    from .gallery import is_gallery, load_gallery_split

    if is_gallery(data):  # a demo gallery: its own training and held-out parts
        return load_gallery_split(data, split).relabel(meta.classes)
    if split == "test":
        ds = load_dataset(data, "test", meta.preprocess, cache_dir=cache_dir, progress=progress)
        if meta.split is not None and ds.fingerprint == meta.split.fingerprint:
            raise DatasetError(
                f"{data} holds the training set itself, not a separate test split: use the "
                "held-out validation split (--split val) or point at the test images"
            )
    else:
        full = load_dataset(data, "train", meta.preprocess, cache_dir=cache_dir, progress=progress)
        if meta.split is None:
            if split == "val":
                raise CheckpointError("this checkpoint records no validation split: use --split test")
            ds = full
        else:
            train_part, val_part = meta.split.apply(full)
            ds = val_part if split == "val" else train_part
    return ds.relabel(meta.classes)


def held_out_data(meta: CheckpointMeta, data: str | Path, cache_dir: str | Path | None = None,
                  progress: bool = False) -> tuple[str, ImageDataset]:
    """``("test", images)`` when ``data`` has a test split, else ``("val", ...)``: the
    checkpoint's held-out validation images (a Simpsons folder, or a gallery taken from the
    validation split). Without a recorded split the test split's error stands."""
    try:
        return "test", checkpoint_data(meta, data, "test", cache_dir, progress)
    except (DatasetError, CheckpointError):
        if meta.split is None:
            raise
        return "val", checkpoint_data(meta, data, "val", cache_dir, progress)


# The user-weights import builds on everything above (imported last: it imports this module).
from .importing import IMAGENET_NORMALIZATION, import_weights  # noqa: E402

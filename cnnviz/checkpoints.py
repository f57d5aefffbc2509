"""Self-describing checkpoints: weights in safetensors, everything else in a JSON sidecar.

``<name>.safetensors``            final weights (float32, bit-exact)
``<name>.json``                   architecture + arguments, classes, preprocessing, normalisation,
                                  data split, history, metrics, software versions
``<name>.snapshots.safetensors``  optional weights at chosen epochs, keys ``epoch<E>/<param>``

Nothing here unpickles: user ``.pt``/``.pth`` files are read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .data import PROFILES, DatasetError, ImageDataset, Preprocess, SplitSpec, load_dataset
from .inputs import Normalization
from .models import CNN, UnknownModelError, get_model

FORMAT = "cnnviz-checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint cannot be used; the message says why and what to do."""


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
        fmt = d.get("format", "")
        if not str(fmt).startswith("cnnviz-checkpoint/"):
            raise CheckpointError(f"not a cnnviz checkpoint description (format {fmt!r})")
        try:
            return cls(
                arch=d["arch"], classes=list(d["classes"]),
                preprocess=Preprocess.from_dict(d["preprocess"]),
                normalization=Normalization.from_dict(d["normalization"]),
                arch_kwargs=_untuple(d.get("arch_kwargs", {})), dataset=d.get("dataset", "folder"),
                tta=d.get("tta", "none"),
                split=SplitSpec.from_dict(d["split"]) if d.get("split") else None,
                train_config=d.get("train_config", {}), history=d.get("history", []),
                metrics=d.get("metrics", {}), snapshot_epochs=list(d.get("snapshot_epochs", [])),
                info=d.get("info", {}), versions=d.get("versions", {}), created=d.get("created", ""),
            )
        except KeyError as e:
            raise CheckpointError(f"checkpoint description lacks the field {e.args[0]!r}") from None

    def build_model(self) -> CNN:
        """A freshly initialised model of this architecture (weights not loaded)."""
        return get_model(self.arch, len(self.classes), self.input_size, **self.arch_kwargs)


def _untuple(kwargs: Mapping[str, Any]) -> dict[str, Any]:
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


@dataclass
class Checkpoint:
    """A loaded model with its description. ``sha256`` identifies the weights (cache keys)."""

    model: CNN
    meta: CheckpointMeta
    path: Path | None
    sha256: str

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


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_checkpoint(path: str | Path, model: torch.nn.Module, meta: CheckpointMeta,
                    snapshots: Mapping[int, Mapping[str, torch.Tensor]] | None = None) -> Path:
    """Write ``<path>.safetensors`` + ``<path>.json`` (+ snapshots); returns the weights path."""
    weights, sidecar = paths_for(path)
    weights = _sibling(weights.with_suffix(""), ".safetensors")
    weights.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(weights), metadata={"format": FORMAT, "arch": meta.arch})
    if snapshots:
        meta.snapshot_epochs = sorted(int(e) for e in snapshots)
        flat = {f"epoch{e}/{k}": v.detach().cpu().contiguous()
                for e, sd in snapshots.items() for k, v in sd.items()}
        save_file(flat, str(snapshots_path(weights)), metadata={"format": FORMAT})
    else:  # never leave an earlier run's snapshots beside new weights
        meta.snapshot_epochs = []
        snapshots_path(weights).unlink(missing_ok=True)
    d = meta.to_dict()
    sidecar.write_text(json.dumps(d, indent=1) + "\n")
    return weights


def snapshots_path(weights: Path) -> Path:
    """``<name>.snapshots.safetensors`` beside ``<name>.safetensors``."""
    return _sibling(weights.with_suffix(""), ".snapshots.safetensors")


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


def load_checkpoint(path: str | Path, meta: CheckpointMeta | None = None,
                    device: str | torch.device = "cpu") -> Checkpoint:
    """Load a checkpoint (stem, ``.json``, ``.safetensors``, or a user's ``.pt``/``.pth``).

    The description comes from the JSON sidecar, or from ``meta`` for a bare weights file.
    The model is returned in eval mode on ``device``.
    """
    weights, sidecar = paths_for(path)
    if meta is None:
        if not sidecar.is_file():
            raise CheckpointError(
                f"no description {sidecar.name} beside {weights}: a bare weights file needs its "
                "architecture, classes and input size; make a checkpoint of it with "
                "cnnviz import WEIGHTS --arch NAME --classes a,b,c --size N --out PATH"
            )
        try:
            meta = CheckpointMeta.from_dict(json.loads(sidecar.read_text()))
        except json.JSONDecodeError as e:
            raise CheckpointError(f"{sidecar} is not valid JSON ({e})") from None
    if not weights.is_file() and weights.suffix == ".safetensors":
        raise CheckpointError(f"no weights file {weights} beside {sidecar}")
    state = read_state_dict(weights)
    model = meta.build_model()
    load_weights(model, state, source=str(weights.name))
    model.to(device).eval()
    return Checkpoint(model, meta, weights, file_sha256(weights))


IMAGENET_NORMALIZATION = Normalization((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
RESIZE_MODES = ("squash", "center_crop", "pad")


def import_weights(weights: str | Path, out: str | Path, arch: str, classes: Sequence[str],
                   input_size: int, arch_kwargs: Mapping[str, Any] | None = None,
                   resize: str = "squash", normalization: Normalization | None = None,
                   dataset: str = "folder", overwrite: bool = False) -> Checkpoint:
    """Make a cnnviz checkpoint (``<out>.safetensors`` + ``<out>.json``) of a user's weights.

    ``weights`` is a ``.safetensors`` or a ``.pt``/``.pth`` state dict (read safely, see
    :func:`read_state_dict`); it must fit ``arch`` built with ``len(classes)`` outputs, the
    ``input_size`` and ``arch_kwargs`` exactly. Normalisation defaults to ImageNet's mean/std.
    ``meta.info`` records the source file and its sha256; there is no training history.
    An existing ``<out>`` is replaced only with ``overwrite=True``. Returns the loaded checkpoint.
    """
    weights = Path(weights)
    classes = [str(c).strip() for c in classes]
    if not classes or any(not c for c in classes):
        raise CheckpointError("give the class names in the order of the model's outputs (none may be empty)")
    dupes = sorted({c for c in classes if classes.count(c) > 1})
    if dupes:
        raise CheckpointError(f"class names must be unique; repeated: {', '.join(dupes)}")
    if resize not in RESIZE_MODES:
        raise CheckpointError(f"unknown resize mode {resize!r}: use {', '.join(RESIZE_MODES)}")
    if dataset not in PROFILES:
        raise CheckpointError(f"unknown dataset kind {dataset!r}; known: {', '.join(PROFILES)}")
    norm = normalization or IMAGENET_NORMALIZATION
    if (len(norm.mean), len(norm.std)) != (3, 3) or not all(0 <= m <= 1 for m in norm.mean) \
            or not all(0 < s <= 1 for s in norm.std):
        raise CheckpointError(
            f"normalisation mean {tuple(norm.mean)} / std {tuple(norm.std)} must be 3 values each, in "
            "[0, 1] units (mean in [0, 1], std in (0, 1]); divide values for 0-255 pixels by 255")
    kwargs = _untuple(dict(arch_kwargs or {}))
    meta = CheckpointMeta(
        arch=arch, classes=classes, preprocess=Preprocess(int(input_size), resize),  # type: ignore[arg-type]
        normalization=norm, arch_kwargs=kwargs, dataset=dataset,
    )
    try:
        model = meta.build_model()
    except UnknownModelError as e:
        raise CheckpointError(e.args[0]) from None
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"cannot build {arch} with {len(classes)} classes, input size {input_size} "
                              f"and arguments {kwargs or '{}'}: {e}") from None

    target, sidecar = paths_for(out)
    target = _sibling(target.with_suffix(""), ".safetensors")
    same_file = target.exists() and weights.exists() and target.resolve() == weights.resolve()
    existing = [p for p in (sidecar, target) if p.exists() and not (p == target and same_file)]
    if existing and not overwrite:
        raise CheckpointError(f"{existing[0]} already exists; choose another output or overwrite it "
                              "(overwrite=True, --force on the command line)")

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
    return load_checkpoint(save_checkpoint(out, model, meta))


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


def load_snapshots(ckpt: Checkpoint) -> dict[int, dict[str, torch.Tensor]]:
    """Weights saved at chosen epochs, ``{epoch: state_dict}`` (empty if none were saved)."""
    if ckpt.path is None or not snapshots_path(ckpt.path).is_file():
        return {}
    flat = load_file(str(snapshots_path(ckpt.path)))
    out: dict[int, dict[str, torch.Tensor]] = {}
    for key, v in flat.items():
        epoch, name = key.split("/", 1)
        out.setdefault(int(epoch[len("epoch"):]), {})[name] = v
    return dict(sorted(out.items()))


def checkpoint_data(meta: CheckpointMeta, data: str | Path, split: str = "test",
                    cache_dir: str | Path | None = None, progress: bool = False) -> ImageDataset:
    """The images of ``split`` for this checkpoint: ``test`` as found at ``data``; ``val`` and
    ``train`` from the training set, divided by the split recorded at training time. Labels
    follow the checkpoint's class order."""
    if split not in ("test", "val", "train"):
        raise CheckpointError(f"unknown split {split!r}: use test, val or train")
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

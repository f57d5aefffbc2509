"""Shared sidebar and cached loaders for every page.

Only selections live in ``st.session_state``/``st.query_params``; models, datasets, feature
matrices and neighbour indexes live in ``st.cache_resource`` (shared, never copied), small
results in ``st.cache_data``. Every computation is a call into ``cnnviz``.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from cnnviz.checkpoints import Checkpoint, CheckpointError, checkpoint_data, load_checkpoint
from cnnviz.data import DatasetError, ImageDataset, Preprocess
from cnnviz.inspect.features import FeatureSet, cached_features
from cnnviz.inspect.neighbours import NeighbourIndex
from cnnviz.predict import decode_uploads

ROOT = Path(__file__).resolve().parent.parent
CHECKPOINT_DIR = Path(os.environ.get("CNNVIZ_CHECKPOINTS", ROOT / "checkpoints"))
SHARED_DATA = ROOT.parent / "shared" / "data"
MAX_UPLOAD_MB = 20


@dataclass
class Context:
    """What the sidebar selected: the loaded checkpoint and, if set, where its data is."""

    ckpt: Checkpoint
    data: Path | None

    @property
    def name(self) -> str:
        return self.ckpt.name


def available_checkpoints() -> list[Path]:
    """Every ``<name>.json`` with its weights in the checkpoint folder."""
    return sorted(p for p in CHECKPOINT_DIR.glob("*.json")
                  if p.with_name(p.stem + ".safetensors").is_file())


@st.cache_resource(show_spinner="Loading model...", max_entries=4)
def _load(path: str, mtime: float) -> Checkpoint:
    return load_checkpoint(path)


def load_model(path: Path) -> Checkpoint:
    """Cached by path and modification time, so a retrained file is picked up."""
    weights = path.with_name(path.stem + ".safetensors")
    return _load(str(path), weights.stat().st_mtime if weights.exists() else 0.0)


@st.cache_resource(max_entries=8)
def model_lock(sha256: str) -> threading.Lock:
    """One lock per model: attribution temporarily changes module flags on the shared model."""
    return threading.Lock()


def default_data_path(dataset: str) -> str:
    """``$CNNVIZ_DATA`` (a folder holding ``cifar10/``, ``simpsons/``) or ``../shared/data``."""
    base = Path(os.environ.get("CNNVIZ_DATA", SHARED_DATA))
    for cand in (base / dataset, base / dataset / "train.zip"):
        if dataset == "simpsons" and cand.is_dir() and (cand / "train.zip").is_file():
            return str(cand / "train.zip")
        if cand.exists() and dataset != "simpsons":
            return str(cand)
    return ""


def sidebar() -> Context | None:
    """Checkpoint and dataset pickers shared by every page (kept in the URL)."""
    ckpts = available_checkpoints()
    names = [p.stem for p in ckpts]
    with st.sidebar:
        st.header("Model")
        if not ckpts:
            st.warning(f"No checkpoints in {CHECKPOINT_DIR}. Train one with `cnnviz train` "
                       "or set CNNVIZ_CHECKPOINTS to a folder that holds some.")
            return None
        qp = st.query_params.get("model")
        name = st.selectbox("Checkpoint", names, index=names.index(qp) if qp in names else 0)
        st.query_params["model"] = name
        try:
            ckpt = load_model(ckpts[names.index(name)])
        except CheckpointError as e:
            st.error(f"Cannot load {name}: {e}")
            return None
        st.caption(f"{ckpt.meta.arch}, {len(ckpt.meta.classes)} classes, "
                   f"{ckpt.meta.input_size} px ({ckpt.meta.dataset})")
        key = f"data_{ckpt.meta.dataset}"
        if key not in st.session_state:
            st.session_state[key] = st.query_params.get("data", default_data_path(ckpt.meta.dataset))
        data = st.text_input("Dataset folder or zip", key=key,
                             help="Where the images are: a folder with train/ and test/ (or their zips), "
                                  "a class tree, or torchvision's cifar-10-batches-py. "
                                  "Environment variable CNNVIZ_DATA sets the default.")
    if data:
        st.query_params["data"] = data
    return Context(ckpt, Path(data).expanduser() if data else None)


def need_data(ctx: Context) -> bool:
    """True when a dataset is set and exists; otherwise say how to get one and return False."""
    if ctx.data is not None and ctx.data.exists():
        return True
    where = f"`{ctx.data}` does not exist. " if ctx.data else ""
    how = ("`cnnviz download cifar10 --root DIR` (torchvision's download) or a folder with "
           "train/ and test/ class folders" if ctx.ckpt.meta.dataset == "cifar10"
           else "the Simpsons `train.zip` (one folder per character)")
    st.info(f"{where}This page needs the dataset: set its path in the sidebar, or set the "
            f"environment variable CNNVIZ_DATA to the folder that holds it. To get it: {how}.")
    return False


class _Progress:
    """A Streamlit progress bar as a ``(done, total)`` callback for cnnviz."""

    def __init__(self, text: str):
        self.text = text
        self.bar = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = st.progress(0.0, text=self.text)
        self.bar.progress(min(1.0, done / max(total, 1)), text=f"{self.text} {done:,}/{total:,}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.empty()


def progress_bar(text: str) -> _Progress:
    """A ``(done, total)`` callback for cnnviz drawn as a Streamlit bar; ``.close()`` removes it."""
    return _Progress(text)


@st.cache_resource(show_spinner=False, max_entries=6)
def _split(ckpt_path: str, sha: str, data: str, split: str, _ckpt: Checkpoint) -> ImageDataset:
    bar = _Progress(f"Decoding the {split} images (once; cached on disk after)")
    try:
        return checkpoint_data(_ckpt.meta, data, split, progress=bar)
    finally:
        bar.close()


def split_data(ctx: Context, split: str) -> ImageDataset | None:
    """Images of ``split`` (``test``, ``val`` or ``train``) for the checkpoint, or None with a
    message when they are not there."""
    try:
        return _split(str(ctx.ckpt.path), ctx.ckpt.sha256, str(ctx.data), split, ctx.ckpt)
    except (DatasetError, CheckpointError) as e:
        st.error(f"Cannot load the {split} images: {e}")
        return None


@st.cache_data(show_spinner=False, max_entries=16)
def _eval_split(ckpt_path: str, sha: str, data: str, _ckpt: Checkpoint) -> str:
    try:
        _split(ckpt_path, sha, data, "test", _ckpt)
        return "test"
    except (DatasetError, CheckpointError):
        return "val"


def eval_split(ctx: Context) -> str:
    """``test`` when the data holds a labelled test split, else the held-out ``val`` split.

    Decided once per checkpoint and data path: a failed look-up is not cached by
    ``st.cache_resource``, and repeating it (listing the zip, loading its cached images only to
    find they are the training set) on every rerun cost each widget change on Simpsons data."""
    return _eval_split(str(ctx.ckpt.path), ctx.ckpt.sha256, str(ctx.data), ctx.ckpt)


@st.cache_resource(show_spinner=False, max_entries=6)
def _features(ckpt_path: str, sha: str, data: str, split: str, _ckpt: Checkpoint,
              _ds: ImageDataset) -> FeatureSet:
    bar = _Progress(f"Penultimate features of the {split} images (once; cached on disk after)")
    try:
        return cached_features(_ckpt, _ds, split, progress=bar)
    finally:
        bar.close()


def features(ctx: Context, split: str) -> tuple[ImageDataset, FeatureSet] | None:
    """Images and their penultimate features + logits for ``split``."""
    ds = split_data(ctx, split)
    if ds is None:
        return None
    return ds, _features(str(ctx.ckpt.path), ctx.ckpt.sha256, str(ctx.data), split, ctx.ckpt, ds)


@st.cache_resource(show_spinner="Building the neighbour index...", max_entries=4)
def _index(sha: str, data: str, space: str, _matrix: np.ndarray) -> NeighbourIndex:
    if space == "pixels":
        return NeighbourIndex.from_images(_matrix)
    return NeighbourIndex(_matrix, metrics=("euclidean", "cosine"))


def neighbour_index(ctx: Context, space: str, matrix: np.ndarray) -> NeighbourIndex:
    """Exact kNN index over the training set in ``space`` ("features" or "pixels"), built once."""
    return _index(ctx.ckpt.sha256, str(ctx.data), space, matrix)


def upload_images(label: str, key: str, preprocess: Preprocess,
                  multiple: bool = False) -> tuple[np.ndarray, list[str]]:
    """Image uploader: decodes in memory with the checkpoint's preprocessing (nothing is
    written to disk) and reports files that are not images. Returns images and names."""
    files = st.file_uploader(label, type=["png", "jpg", "jpeg", "bmp", "gif", "webp", "tif", "tiff"],
                             accept_multiple_files=multiple, key=key)
    if not files:
        return np.zeros((0, 1, 1, 3), np.uint8), []
    files = files if isinstance(files, list) else [files]
    pairs = []
    for f in files:
        if f.size > MAX_UPLOAD_MB * 1024 * 1024:
            st.error(f"{f.name} is {f.size / 2**20:.0f} MB, over the {MAX_UPLOAD_MB} MB limit: resize it first.")
            continue
        pairs.append((f.name, f.getvalue()))
    images, names, errors = decode_uploads(pairs, preprocess)
    for name, why in errors.items():
        st.error(f"{name}: {why}.")
    return images, names


def pick_image(ctx: Context, key: str, allow_upload: bool = True) -> tuple[np.ndarray, str, int | None] | None:
    """Choose an image: from the evaluation split by class and number, or uploaded.

    Returns ``(image (S, S, 3) uint8, caption, true label index or None)``; the choice is kept
    in the URL (``img``) so a shared link opens the same image.
    """
    sources = ["dataset", "upload"] if allow_upload else ["dataset"]
    has_data = ctx.data is not None and ctx.data.exists()
    source = st.radio("Image from", sources, horizontal=True, key=f"{key}_src",
                      index=0 if has_data else len(sources) - 1)
    if source == "upload":
        images, names = upload_images("Upload an image", f"{key}_upload", ctx.ckpt.meta.preprocess)
        if not len(images):
            st.caption("Any common image type and size; it is resized as the model expects.")
            if not has_data:
                need_data(ctx)  # nothing uploaded yet: also say how to get the dataset
            return None
        return images[0], names[0], None
    if not need_data(ctx):
        return None
    split = eval_split(ctx)
    ds = split_data(ctx, split)
    if ds is None or not len(ds):
        return None
    classes = ctx.ckpt.meta.classes
    qp_img = st.query_params.get("img")
    default_idx = int(qp_img) if qp_img is not None and qp_img.isdigit() and int(qp_img) < len(ds) else 0
    default_cls = int(ds.labels[default_idx]) if ds.labelled else 0
    c1, c2 = st.columns(2)
    cls = c1.selectbox("Class", range(len(classes)), index=default_cls, format_func=lambda i: classes[i],
                       key=f"{key}_cls")
    members = np.flatnonzero(ds.labels == cls)
    if not len(members):
        st.warning(f"No {classes[cls]} images in the {split} split.")
        return None
    pos = int(np.searchsorted(members, default_idx)) if default_idx in members else 0
    n = c2.number_input(f"Image (of {len(members)})", 0, len(members) - 1, pos, key=f"{key}_n")
    idx = int(members[int(n)])
    st.query_params["img"] = str(idx)
    return ds.images[idx], f"{split} #{idx}: {ds.ids[idx]}", int(ds.labels[idx])


def conv_layers(ctx: Context) -> list[str]:
    """Names of the model's convolutions, in forward order."""
    model = ctx.ckpt.model
    return [n for n in model.layer_names() if isinstance(model.get_submodule(n), torch.nn.Conv2d)]


def pick_layer(ctx: Context, names: list[str], key: str, container=st, help: str | None = None
               ) -> tuple[str, str | None]:
    """Layer select box kept in the URL (``layer``), defaulting to a middle convolution.
    Returns ``(layer, layer in the URL before this run)``: a page keeps the URL's unit/channel
    only while the layer is unchanged."""
    convs = [n for n in conv_layers(ctx) if n in names]
    prev = st.query_params.get("layer")
    default = prev if prev in names else (convs[len(convs) // 2] if convs else names[0])
    layer = container.selectbox("Layer", names, index=names.index(default), key=key, help=help)
    st.query_params["layer"] = layer
    return layer, prev

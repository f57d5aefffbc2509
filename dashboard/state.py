"""Shared sidebar and cached loaders for every page.

Only selections live in ``st.session_state``/``st.query_params``; models, datasets, feature
matrices and neighbour indexes live in ``st.cache_resource`` (shared, never copied), small
results in ``st.cache_data``. Every computation is a call into ``cnnviz``.
"""

from __future__ import annotations

import functools
import gc
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence, TypeVar

import numpy as np
import streamlit as st

from cnnviz.checkpoints import Checkpoint, CheckpointError, checkpoint_data, load_checkpoint
from cnnviz.data import PROFILES, DatasetError, ImageDataset, dataset_home, download_dataset
from cnnviz.inspect.features import FeatureSet, cached_features
from cnnviz.inspect.kernel_orientation import most_oriented
from cnnviz.inspect.neighbours import NeighbourIndex
from cnnviz.locate import DataChoice, locate_data
from cnnviz.roots import PathRefused, check_under_roots, env_data_root, is_loopback
from cnnviz.runtime import cpu_threads, threads_here
from dashboard import warm_up

ROOT = Path(__file__).resolve().parent.parent
CHECKPOINT_DIR = Path(os.environ.get("CNNVIZ_CHECKPOINTS", ROOT / "checkpoints"))
T = TypeVar("T")
DOWNLOADABLE = {"cifar10": "CIFAR-10 (170 MB)", "simpsons": "Simpsons dataset (Kaggle, about 1 GB)"}


# -- CPU threads: one per page script, all cores for passes over a dataset ----------------------


def on_all_cores(fn: Callable[..., T]) -> Callable[..., T]:
    """Run ``fn`` (a pass over many images) on all cores. Page scripts run their single-image
    work on one thread (``app.py``); this lifts that for the script thread while ``fn`` runs."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with threads_here(cpu_threads()):
            return fn(*args, **kwargs)

    return wrapper


# -- garbage collection: the libraries stay out of Streamlit's collection after every rerun -----

@st.cache_resource(show_spinner=False)
def freeze_imports(modules: int) -> None:
    """Collect garbage, then move every object alive now into the collector's permanent
    generation, once per count of imported ``modules`` (``len(sys.modules)``).

    Streamlit runs a full collection after every rerun (``runner.postScriptGC``). Once the pages
    have imported torch, scikit-learn, captum and the rest, that walks about 600,000 objects:
    0.3 s, during which the server sends nothing, so each click waited for it. With the
    libraries frozen it walks only what the pages made since. ``app.py`` calls this at the start
    of a run, when the last run's garbage has just been collected, so what it freezes is the
    libraries, the caches and the sessions' state; objects frozen that later become unreachable
    in a cycle are never collected, which is why only a change in the imported modules freezes
    again (a handful of times per server)."""
    gc.collect()
    gc.freeze()


# -- the URL: one helper reads every query parameter --------------------------------------------

def url_int(name: str, lo: int, hi: int, default: int | None = None) -> int | None:
    """The URL's ``name`` as an int in ``[lo, hi]``, else ``default`` (a value that is not plain
    ASCII digits, such as ``²`` or ``-1``, counts as absent)."""
    v = st.query_params.get(name)
    if v is None or not (v.isascii() and v.isdecimal()) or len(v) > 18:
        return default
    return int(v) if lo <= int(v) <= hi else default


def url_text(name: str, default: str = "") -> str:
    """The URL's ``name`` as text, else ``default``."""
    return st.query_params.get(name, default)


def url_choice(name: str, options: Sequence[T], default: T) -> T:
    """The URL's ``name`` when it is one of ``options`` (compared as text), else ``default``."""
    v = url_text(name)
    return next((o for o in options if str(o) == v), default)


# -- serving: loopback (the user's own machine) or shared ---------------------------------------

def serving_shared() -> bool:
    """True when the server listens beyond loopback (``server.address`` unset or not loopback)."""
    return not is_loopback(st.get_option("server.address"))


def data_roots() -> list[Path]:
    """Where a shared server may read: ``$CNNVIZ_DATA`` and the checkpoint folder."""
    return [p for p in (env_data_root(), CHECKPOINT_DIR) if p is not None]


def user_path(text: str) -> Path | None:
    """A path typed in a field or given in the URL, as the server may read it: any path when
    served on loopback; under :func:`data_roots` only when shared (else one message that
    reveals nothing about the path, and None)."""
    text = text.strip()
    if not text:
        return None
    if not serving_shared():
        return Path(text).expanduser()
    try:
        return check_under_roots(text, data_roots())
    except PathRefused as e:
        st.error(str(e))
        return None


@dataclass
class Context:
    """What the sidebar selected: the loaded checkpoint, where its data is (if anywhere) and
    what that data is (a full dataset or the demo gallery)."""

    ckpt: Checkpoint
    data: Path | None
    choice: DataChoice | None = None

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


def default_data(ckpt: Checkpoint) -> DataChoice | None:
    """The data a checkpoint opens on: ``$CNNVIZ_DATA/<dataset>``, the user data folder's copy,
    else its demo gallery (:func:`cnnviz.locate.locate_data`)."""
    return locate_data(ckpt.meta, ckpt.path)


def _first_loadable(ckpts: list[Path], names: list[str], wanted: str | None) -> int:
    """Index of the URL's checkpoint, else of the loadable one whose first layer has the most
    oriented kernels (the lecture's model: AlexNet's figure 3), else of the first one that loads
    (a broken file that sorts first must not break every page)."""
    if wanted in names:
        return names.index(wanted)
    return _lecture_pick(tuple(map(str, ckpts)), tuple(_mtime(p) for p in ckpts))


def _mtime(path: Path) -> float:
    weights = path.with_name(path.stem + ".safetensors")
    return weights.stat().st_mtime if weights.exists() else 0.0


@st.cache_data(show_spinner=False, max_entries=8)
def _lecture_pick(paths: tuple[str, ...], mtimes: tuple[float, ...]) -> int:
    """See :func:`_first_loadable` (once per set of checkpoint files)."""
    layers: list[np.ndarray | None] = []
    for path in paths:
        try:
            layers.append(load_model(Path(path)).model.first_conv.weight.detach().cpu().numpy())
        except (CheckpointError, TypeError):
            layers.append(None)
    best = most_oriented(layers)
    if best is not None:
        return best
    return next((i for i, w in enumerate(layers) if w is not None), 0)


def sidebar() -> Context | None:
    """Checkpoint and dataset pickers shared by every page (kept in the URL), after the Present
    toggle and keys (:func:`dashboard.present.present_frame`). In present mode the sidebar is
    left out: the checkpoint and data are the URL's (or the session's), as the pickers had them."""
    from dashboard.present import present_frame  # noqa: PLC0415 (present imports this module)

    present = present_frame()
    side = st.container() if present else st.sidebar  # where a message goes
    ckpts = available_checkpoints()
    names = [p.stem for p in ckpts]
    if not present:
        st.sidebar.header("Model")
    if not ckpts:
        side.warning(f"No checkpoints in {CHECKPOINT_DIR}. Train one with `cnnviz train` "
                     "or set CNNVIZ_CHECKPOINTS to a folder that holds some.")
        return None
    first = _first_loadable(ckpts, names, url_text("model"))
    name = names[first] if present else st.sidebar.selectbox("Checkpoint", names, index=first)
    st.query_params["model"] = name
    try:
        ckpt = load_model(ckpts[names.index(name)])
    except CheckpointError as e:
        side.error(f"Cannot load {name}: {e}")
        return None
    key = f"data_{ckpt.meta.dataset}"
    default = default_data(ckpt)
    default_text = str(default.path) if default else ""
    if key in st.session_state.get("_data_next", {}):  # a download finished: use it
        st.session_state[key] = st.session_state["_data_next"].pop(key)
    if key not in st.session_state:
        st.session_state[key] = url_text("data", default_text)
    if present:
        st.session_state[key] = data = st.session_state[key]  # kept while the field is not drawn
        where = user_path(data)
        choice = None if where is None else locate_data(ckpt.meta, ckpt.path, where)
    else:
        with st.sidebar:
            st.caption(f"{ckpt.meta.arch}, {len(ckpt.meta.classes)} classes, "
                       f"{ckpt.meta.input_size} px ({ckpt.meta.dataset})")
            data = st.text_input("Dataset folder or zip", key=key,
                                 help="Where the images are: a folder with train/ and test/ (or their zips), "
                                      "a class tree, or torchvision's cifar-10-batches-py. Default: "
                                      "$CNNVIZ_DATA/<dataset>, else a copy downloaded here, else the demo "
                                      "gallery shipped with the checkpoint.")
            where = user_path(data)
            choice = None if where is None else locate_data(ckpt.meta, ckpt.path, where)
            if choice is not None:
                st.caption(choice.describe())
                if choice.gallery is not None:
                    _offer_download(ckpt.meta.dataset, key)
    if data and data != default_text:
        st.query_params["data"] = data
    elif "data" in st.query_params:
        del st.query_params["data"]
    if where is not None and where.exists():
        warm_up.start(ckpt, str(where))  # the heavy pages' caches, filled in the background
    return Context(ckpt, where, choice)


def _offer_download(dataset: str, key: str) -> None:
    """A button that downloads the full dataset into the user data folder (with a progress
    bar) and switches to it; on a shared server, a line saying how instead."""
    if dataset not in DOWNLOADABLE:
        return
    if serving_shared():
        st.caption(f"Full dataset: the server's owner runs `cnnviz download {dataset}` or sets CNNVIZ_DATA.")
        return
    if not st.button(f"Download the full {DOWNLOADABLE[dataset]}", key=f"download_{dataset}",
                     help=f"Into {dataset_home(dataset)}; the same as `cnnviz download {dataset}`."):
        return
    bar = _Progress(f"Downloading {DOWNLOADABLE[dataset]}")
    try:
        home = download_dataset(dataset, progress=bar)
    except DatasetError as e:
        st.error(f"{e} The demo gallery stays in use.")
        return
    finally:
        bar.close()
    st.session_state.setdefault("_data_next", {})[key] = str(home)
    st.rerun()


def need_data(ctx: Context, quiet: bool = False) -> bool:
    """True when a dataset is set and exists (with one line on the page when it is the demo
    gallery, unless ``quiet``: a slide has room for its own line only); otherwise say how to get
    one and return False."""
    if ctx.data is not None and ctx.data.exists():
        if ctx.choice is not None and ctx.choice.gallery is not None and not quiet:
            full = ("download the full dataset in the sidebar or set CNNVIZ_DATA" if not serving_shared()
                    else "the server's owner can add the full dataset")
            st.caption(f"Showing the {ctx.choice.describe()}; {full}.")
        return True
    where = f"`{ctx.data}` does not exist. " if ctx.data else ""
    kind = PROFILES.get(ctx.ckpt.meta.dataset, PROFILES["folder"])
    how = kind.how_to_get
    st.info(f"{where}This page needs the dataset: set its path in the sidebar, or set the "
            f"environment variable CNNVIZ_DATA to the folder that holds it. To get it: {how}.")
    return False


def time_left(done: int, total: int, elapsed: float) -> str:
    """``" · about 40 s left"`` (or minutes) from the rate so far; empty until 5% and 2 s are
    behind, when a guess would be noise."""
    if total <= 0 or done <= 0 or done >= total or elapsed < 2 or done / total < 0.05:
        return ""
    left = elapsed * (total - done) / done
    return f" · about {left:.0f} s left" if left < 90 else f" · about {left / 60:.0f} min left"


class _Progress:
    """A Streamlit progress bar as a ``(done, total)`` callback for cnnviz, with the time left."""

    def __init__(self, text: str):
        self.text = text
        self.bar = None
        self.start = 0.0

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = st.progress(0.0, text=self.text)
            self.start = time.perf_counter()
        left = time_left(done, total, time.perf_counter() - self.start)
        self.bar.progress(min(1.0, done / max(total, 1)), text=f"{self.text} {done:,}/{total:,}{left}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.empty()


def progress_bar(text: str) -> _Progress:
    """A ``(done, total)`` callback for cnnviz drawn as a Streamlit bar; ``.close()`` removes it."""
    return _Progress(text)


@st.cache_resource(show_spinner=False, max_entries=6)
@on_all_cores
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
@on_all_cores
def _features(ckpt_path: str, sha: str, data: str, split: str, _ckpt: Checkpoint,
              _ds: ImageDataset) -> FeatureSet:
    warm_up.wait_for(_ckpt, data, "features")
    bar = _Progress(f"Penultimate features of the {split} images (once; cached on disk after; "
                    "`cnnviz features` fills it ahead, before a class)")
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

"""Shared sidebar state and cached loaders. Holds selections only; models live in st.cache_resource."""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from cnnviz.checkpoints import Checkpoint, CheckpointError, load_checkpoint

ROOT = Path(__file__).resolve().parent.parent
CHECKPOINT_DIR = Path(os.environ.get("CNNVIZ_CHECKPOINTS", ROOT / "checkpoints"))


def available_checkpoints() -> list[Path]:
    """Shipped (or ``$CNNVIZ_CHECKPOINTS``) checkpoints: every ``<name>.json`` with its weights."""
    return sorted(p for p in CHECKPOINT_DIR.glob("*.json")
                  if p.with_suffix(".safetensors").is_file())


@st.cache_resource(show_spinner="Loading model...")
def _load(path: str, sha_key: float) -> Checkpoint:
    return load_checkpoint(path)


def load_model(path: Path) -> Checkpoint:
    """Cached by path and modification time, so a retrained file is picked up."""
    weights = path.with_suffix(".safetensors")
    return _load(str(path), weights.stat().st_mtime if weights.exists() else 0.0)


def sidebar() -> Checkpoint | None:
    """Checkpoint picker shared by every page; returns the loaded checkpoint or None."""
    ckpts = available_checkpoints()
    names = [p.stem for p in ckpts]
    qp = st.query_params.get("model")
    default = names.index(qp) if qp in names else 0
    with st.sidebar:
        st.header("Model")
        if not ckpts:
            st.warning(f"No checkpoints in {CHECKPOINT_DIR}. Train one with `cnnviz train` "
                       "or set CNNVIZ_CHECKPOINTS to a folder that holds some.")
            return None
        name = st.selectbox("Checkpoint", names, index=default, key="model")
    st.query_params["model"] = name
    try:
        return load_model(ckpts[names.index(name)])
    except CheckpointError as e:
        st.error(f"Cannot load {name}: {e}")
        return None

"""The pickers every page shares: uploads, an image from the data, a layer. Choices live in the
URL (through :mod:`dashboard.state`'s helpers) so a shared link opens the same view."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import streamlit as st
import torch

from cnnviz.basis import split_display_name
from cnnviz.class_names import class_display_names
from cnnviz.data import Preprocess
from cnnviz.drawing import drawing_image
from cnnviz.figures.clicks import enlarge
from cnnviz.predict import decode_uploads
from dashboard.state import Context, eval_split, need_data, split_data, url_int, url_text

MAX_UPLOAD_MB = 20
CANVAS = 280  # side of the drawing canvas, in screen pixels


def static_table(table: pd.DataFrame) -> None:
    """A small table (tens of rows) as Markdown: static, numbers right-aligned, blank for
    missing values. Drawn without the interactive grid's browser code (about 1.5 MB), which
    took a tenth of the floor page's time from the Model page's first render (measured)."""
    def cell(v: object) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return ""
        if isinstance(v, float):
            v = f"{v:g}"
        return str(v).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")

    align = ["---:" if pd.api.types.is_numeric_dtype(table[c]) else "---" for c in table.columns]
    lines = ["| " + " | ".join(cell(c) for c in table.columns) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    st.markdown("\n".join(lines))


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


def _clear_drawing(key: str) -> None:
    st.session_state[f"{key}_clears"] = st.session_state.get(f"{key}_clears", 0) + 1


def draw_image(key: str, preprocess: Preprocess) -> np.ndarray | None:
    """A drawing canvas (white, brush colour and width, a Clear button) and beside it what the
    model sees: the drawing resized by the checkpoint's preprocessing, as an upload would be.
    Returns that ``(S, S, 3) uint8`` image, or None before anything is drawn."""
    from streamlit_drawable_canvas import st_canvas  # noqa: PLC0415 (needs Streamlit's runtime to register)

    c1, c2, c3 = st.columns([1, 2, 1], vertical_alignment="bottom")
    colour = c1.color_picker("Brush colour", "#000000", key=f"{key}_colour")
    width = c2.slider("Brush width", 1, 60, 16, key=f"{key}_width", help="In canvas pixels; the canvas is "
                      f"{CANVAS} px wide and the model sees {preprocess.size} px.")
    c3.button("Clear", key=f"{key}_clear", icon=":material/delete:", on_click=_clear_drawing, args=(key,))
    pad, seen = st.columns([2, 1])
    with pad:
        st.space("small")  # room for the canvas's own toolbar (undo, redo, reset), which floats above it
        result = st_canvas(stroke_width=int(width), stroke_color=colour, background_color="#ffffff",
                           height=CANVAS, width=CANVAS, drawing_mode="freedraw", return_image_data=True,
                           key=f"{key}_canvas_{st.session_state.get(f'{key}_clears', 0)}")
    image = drawing_image(result.image_data, preprocess)
    if image is None:
        seen.caption(f"Draw with the mouse; the drawing is resized to {preprocess.size} x {preprocess.size} px "
                     f"({preprocess.mode}) as uploads are.")
    else:
        seen.image(enlarge(image, 128)[0], caption=f"What the model sees: {preprocess.size} x {preprocess.size} px")
    return image


def pick_image(ctx: Context, key: str, allow_upload: bool = True, allow_draw: bool = False
               ) -> tuple[np.ndarray, str, int | None] | None:
    """Choose an image: from the evaluation split by class and number, uploaded, or (with
    ``allow_draw``) drawn on a canvas.

    Returns ``(image (S, S, 3) uint8, caption, true label index or None)``; the choice is kept
    in the URL (``img``) so a shared link opens the same image.
    """
    sources = ["dataset"] + (["upload"] if allow_upload else []) + (["draw"] if allow_draw else [])
    has_data = ctx.data is not None and ctx.data.exists()
    source = st.radio("Image from", sources, horizontal=True, key=f"{key}_src",
                      index=0 if has_data or not allow_upload else 1)
    if source == "draw":
        image = draw_image(f"{key}_draw", ctx.ckpt.meta.preprocess)
        return None if image is None else (image, "your drawing", None)
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
    default_idx = url_int("img", 0, len(ds) - 1, 0)
    default_cls = int(ds.labels[default_idx]) if ds.labelled else 0
    c1, c2 = st.columns(2)
    names = class_display_names(classes)
    cls = c1.selectbox("Class", range(len(classes)), index=default_cls, format_func=names.__getitem__,
                       key=f"{key}_cls")
    members = np.flatnonzero(ds.labels == cls)
    if not len(members):
        st.warning(f"No {names[cls]} images in the {split_display_name(split)} split.")
        return None
    pos = int(np.searchsorted(members, default_idx)) if default_idx in members else 0
    n = c2.number_input(f"Image (of {len(members)})", 0, len(members) - 1, pos, key=f"{key}_n")
    idx = int(members[int(n)])
    st.query_params["img"] = str(idx)
    return ds.images[idx], f"{split_display_name(split)} #{idx}: {ds.ids[idx]}", int(ds.labels[idx])


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
    prev = url_text("layer")
    default = prev if prev in names else (convs[len(convs) // 2] if convs else names[0])
    layer = container.selectbox("Layer", names, index=names.index(default), key=key, help=help)
    st.query_params["layer"] = layer
    return layer, prev


def unit_link(ctx: Context, layer: str, channel: int, container=st, label: str | None = None) -> None:
    """A link to the Units page on ``layer``'s ``channel``: what it detects and what the model
    needs it for (only for convolutions, the layers that page shows)."""
    if layer not in conv_layers(ctx):
        return
    query = {"model": ctx.name, "layer": layer, "ch": str(int(channel))}
    if "data" in st.query_params:
        query["data"] = st.query_params["data"]
    container.page_link("views/units.py", label=label or f"What channel {int(channel)} of {layer} detects",
                        icon=":material/psychology:", query_params=query)

"""Units page: what one channel of a layer detects (its top and bottom training images, cropped
to the receptive field of its peak) and what the model needs it for (knock-out on held-out images)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st
from streamlit_image_coordinates import streamlit_image_coordinates

from dashboard.state import (on_all_cores, Context, eval_split, features, need_data, progress_bar, sidebar, split_data,
                             url_int, url_text)
from dashboard import warm_up
from dashboard.glossary import explain
from dashboard.widgets import conv_layers, pick_layer
from dashboard.present import Panel, current_lecture_step, present_on, slide, slide_figure, slide_text
from cnnviz.checkpoints import Checkpoint
from cnnviz.class_names import class_display_name
from cnnviz.data import ImageDataset
from cnnviz.figures.clicks import enlarge, outline
from cnnviz.figures.pictures import tile_clicked
from cnnviz.figures.units import knockout_chart, patch_grid, peak_histogram_chart
from cnnviz.inspect.receptive_field import LayerRF, layer_rf
from cnnviz.inspect.units import KnockoutResult, UnitExamples, cached_unit_examples, unit_crop, unit_importance, unit_patch
from cnnviz.inspect.split_cache import cached_knockout
from cnnviz.inspect.visualise import cached_visualisation

K = 9


@st.cache_resource(show_spinner=False, max_entries=8)
@on_all_cores
def examples(sha: str, data: str, layer: str, _ckpt: Checkpoint, _ds: ImageDataset) -> UnitExamples:
    """Every training image's peak in every channel of ``layer`` (one pass; cached on disk)."""
    warm_up.wait_for(_ckpt, data, "units")
    bar = progress_bar(f"Peaks of every channel of {layer} over {len(_ds):,} training images (once; cached after)")
    try:
        return cached_unit_examples(_ckpt, _ds, "train", layer, progress=bar)
    finally:
        bar.close()


@st.cache_data(show_spinner="Optimising an image for this unit (cached after)...", max_entries=64)
def visualised(sha: str, data: str, layer: str, channel: int, _ckpt: Checkpoint) -> np.ndarray:
    """The image that excites the channel most (Lucid's recipe, seeded; cached on disk; channel 0
    of the middle convolution made by the warm-up, ``data``'s)."""
    if channel == 0:
        warm_up.wait_for(_ckpt, data, "favourite image")
    return cached_visualisation(_ckpt, layer, [channel]).images[0]


@st.cache_data(show_spinner=False, max_entries=16)
def rf_of(sha: str, layer: str, size: int, _model) -> LayerRF:
    return layer_rf(_model, layer, size)


@st.cache_data(show_spinner="Knocking the unit out...", max_entries=32)
def knock(sha: str, data: str, split: str, layer: str, channel: int, _ckpt: Checkpoint,
          _ds: ImageDataset, _intact: np.ndarray) -> KnockoutResult:
    """The knock-out of one channel on the held-out images (on disk too; the warm-up makes the
    middle convolution's channel 0, the page's first view)."""
    if channel == 0:
        warm_up.wait_for(_ckpt, data, "knock-out")
    return cached_knockout(_ckpt, _ds, split, layer, [channel], _intact)


@st.cache_data(show_spinner=False, max_entries=16)
def ranking(sha: str, data: str, split: str, layer: str, target: int, _ckpt: Checkpoint,
            _ds: ImageDataset) -> np.ndarray:
    bar = progress_bar(f"Zeroing each channel of {layer} in turn")
    try:
        return unit_importance(_ckpt.model, _ds.images, _ds.labels, layer, target, _ckpt.meta.normalization,
                               progress=bar)
    finally:
        bar.close()


CELL, GAP, COLS = 96, 4, 3


def show_patches(ctx: Context, ds: ImageDataset, ex: UnitExamples, rf: LayerRF, channel: int,
                 which: np.ndarray, title: str, key: str, offset: int) -> None:
    """The patches as one clickable grid: a click picks the whole image shown beside
    (``u_whole`` becomes ``offset`` + the patch's place)."""
    size = ctx.ckpt.meta.input_size
    crops = [unit_crop(rf, *ex.peak_at(int(i), channel), size) for i in which]
    grid = patch_grid([unit_patch(ds.images[i], c) for i, c in zip(which, crops)], cols=COLS, cell=CELL, gap=GAP)
    st.caption(title)
    click = streamlit_image_coordinates(grid, key=key, width="stretch", png_compression_level=1)
    if click is not None and click != st.session_state.get(f"{key}_seen"):
        st.session_state[f"{key}_seen"] = click
        hit = tile_clicked(click, grid.shape, len(which), COLS, GAP)
        if hit is not None:
            st.session_state["u_whole"] = offset + hit
    classes = ctx.ckpt.meta.classes
    clipped = sum(c.clipped for c in crops)
    st.caption(" · ".join(f"{class_display_name(classes[ds.labels[i]])} {ex.peak[i, channel]:.2f}" for i in which)
               + (f". {clipped} field(s) reach past the image's border (grey)." if clipped else "")
               + " Click a patch to see its whole image.")


def present_unit(ctx: Context) -> None:
    """Present mode: the URL's unit (else, of a middle convolution, the channel whose top images
    are most of one class) as a slide: its favourite image and the patches of the training
    images where it fires most."""
    step = current_lecture_step()
    convs = conv_layers(ctx)
    with slide(step.title if step is not None else "Units"):
        train = split_data(ctx, "train") if convs and ctx.data is not None and ctx.data.exists() else None
        if train is None or not len(train):
            slide_text("No training images to show: this page needs the dataset (or the checkpoint's demo gallery).")
            return
        layer = url_text("layer") if url_text("layer") in convs else convs[len(convs) // 2]
        ex = examples(ctx.ckpt.sha256, str(ctx.data), layer, ctx.ckpt, train)
        channel = url_int("ch", 0, ex.channels - 1)
        if channel is None:
            channel = ex.purest(train.labels, K)[0] if train.labelled else 0
        st.query_params.update(layer=layer, ch=str(channel))
        rf = rf_of(ctx.ckpt.sha256, layer, ctx.ckpt.meta.input_size, ctx.ckpt.model)
        size = ctx.ckpt.meta.input_size
        top = ex.top(channel, K)
        crops = [unit_crop(rf, *ex.peak_at(int(i), channel), size) for i in top]
        grid = patch_grid([unit_patch(train.images[i], c) for i, c in zip(top, crops)], cols=COLS, cell=CELL, gap=GAP)
        if train.labelled:
            classes = ctx.ckpt.meta.classes
            common = np.bincount(np.clip(train.labels[top], 0, None), minlength=len(classes))
            slide_text(f"{layer}, channel {channel}: {int(common.max())} of the {K} training images it fires on "
                       f"most are {class_display_name(classes[int(common.argmax())])}.")
        else:
            slide_text(step.caption if step is not None else f"{layer}, channel {channel}.")
        favourite = patch_grid([visualised(ctx.ckpt.sha256, str(ctx.data), layer, channel, ctx.ckpt)], cols=1, cell=256)
        slide_figure([Panel(favourite, "its favourite image (optimised)", sharp=False),
                      Panel(grid, f"the {K} training images it fires on most, cropped to what it sees "
                                  f"({rf.size[0]:.0f} px)")])


ctx = sidebar()
if ctx is not None and present_on():
    present_unit(ctx)
else:
    st.title("Units")
if ctx is not None and not present_on():
    model, meta = ctx.ckpt.model, ctx.ckpt.meta
    st.caption("A unit is one channel of a layer. Its **favourite image** is optimised from noise to excite it "
               "most; its **top images** are the training images where it fires "
               "most, cropped to what its strongest unit sees (its receptive field); its **bottom images** "
               "where it fires least. **Knock-out** zeroes the channel and measures each class on held-out "
               "images: what the model needs the unit for.",
               help=explain("unit", "channel", "receptive field", "held-out"))
    convs = conv_layers(ctx)
    if need_data(ctx) and convs:
        layer, prev_layer = pick_layer(ctx, convs, "u_layer",
                                       help="Convolutions in forward order; the default is a middle one.")
        train = split_data(ctx, "train")
        if train is not None and len(train):
            ex = examples(ctx.ckpt.sha256, str(ctx.data), layer, ctx.ckpt, train)
            default_ch = url_int("ch", 0, ex.channels - 1, 0) if prev_layer == layer else 0
            channel = int(st.number_input(f"Channel (of {ex.channels})", 0, ex.channels - 1, default_ch,
                                          key=f"u_ch_{layer}", help=explain("channel")))
            st.query_params["ch"] = str(channel)
            rf = rf_of(ctx.ckpt.sha256, layer, meta.input_size, model)
            top, bottom = ex.top(channel, K), ex.bottom(channel, K)
            c0, c1, c2, c3 = st.columns([0.8, 1, 1, 1.3])
            with c0:
                st.image(patch_grid([visualised(ctx.ckpt.sha256, str(ctx.data), layer, channel, ctx.ckpt)], cols=1, cell=256),
                         width="stretch")
                st.caption(f"Channel {channel}'s favourite image: optimised from noise to excite it most",
                           help=explain("favourite image") + " (Lucid's recipe: the image is changed through "
                                "its frequencies and decorrelated colours, with random jitter, scale and rotation.)")
            with c1:
                show_patches(ctx, train, ex, rf, channel, top, f"Top {K}: where channel {channel} fires most",
                             "u_top", 0)
            with c2:
                show_patches(ctx, train, ex, rf, channel, bottom, f"Bottom {K}: where it fires least",
                             "u_bottom", K)
            with c3:
                counts, edges = ex.histogram(channel)
                st.altair_chart(peak_histogram_chart(counts, edges, [ex.peak[top[-1], channel]],
                                                     title=["Peaks over", f"{len(train):,} training images"]),
                                width="stretch")
                shown = np.concatenate([top, bottom])
                pick = st.selectbox("Whole image", range(2 * K), key="u_whole",
                                    format_func=lambda j: f"{'top' if j < K else 'bottom'} {j % K + 1}: "
                                                          f"{train.ids[shown[j]]}")
                i = int(shown[pick])
                y, x = ex.peak_at(i, channel)
                crop = unit_crop(rf, y, x, meta.input_size)
                big, factor = enlarge(train.images[i], 256)
                st.image(outline(big, crop.box, factor, thickness=max(2, factor // 3)), width="content")
                st.caption(f"{'top' if pick < K else 'bottom'} {pick % K + 1}: {train.ids[i]} "
                           f"({class_display_name(meta.classes[train.labels[i]])}), peak {ex.peak[i, channel]:.2f} "
                           f"at unit ({y}, {x}); "
                           f"red box: its {rf.size[0]:.0f} px field")
            st.subheader("Knock-out", help=explain("knock-out", "recall", "held-out"))
            split = eval_split(ctx)
            got = features(ctx, split)  # the intact logits, cached with the penultimate features
            held = got[0] if got is not None else None
            if held is not None and len(held) and held.labelled:
                res = knock(ctx.ckpt.sha256, str(ctx.data), split, layer, channel, ctx.ckpt, held, got[1].logits)
                st.altair_chart(knockout_chart(res, meta.classes), width="stretch")
                st.caption(f"On {len(held):,} {split} images; the zeroing is a hook on a private copy of the "
                           "model, so other sessions are unaffected.")
                target = st.selectbox("Which units does this class need?", range(len(meta.classes)),
                                      format_func=lambda c: class_display_name(meta.classes[c]), key="u_target",
                                      help="Zero each channel of the layer in turn and list the ten whose loss "
                                           "hurts this class most.\n\n" + explain("probability drop"))
                if st.button(f"Rank the {ex.channels} channels of {layer}", key="u_rank"):
                    drop = ranking(ctx.ckpt.sha256, str(ctx.data), split, layer, int(target), ctx.ckpt, held)
                    order = np.argsort(-drop, kind="stable")[:10]
                    st.dataframe(pd.DataFrame({"channel": order, "probability drop": drop[order]}),
                                 hide_index=True)

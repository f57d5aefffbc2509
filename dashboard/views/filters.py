"""Filters page: the first-layer kernels at lecture size, one enlarged, and their evolution
(Play steps through the training snapshots); and the lecture deck to download."""

from __future__ import annotations

from functools import partial

import numpy as np
import streamlit as st
from streamlit_image_coordinates import streamlit_image_coordinates

from dashboard.glossary import explain
from dashboard.present import (Panel, current_lecture_step, grid_columns, keep_choices, present_on, slide,
                               slide_figure, slide_text)
from dashboard.state import progress_bar, sidebar, url_int
from dashboard.widgets import unit_link
from cnnviz.checkpoints import CheckpointError, load_snapshots, snapshots_path
from cnnviz.data import DatasetError
from cnnviz.figures.filters import MEASURES_HELP, kernel_measures_text, kernel_orientation_text, lecture_grid, png_bytes
from cnnviz.figures.pictures import tile_clicked, weights_image
from cnnviz.inspect.feature_maps import grid_cols
from cnnviz.inspect.filters import channel_images, first_layer_filters, first_layer_filters_from_state
from cnnviz.lecture import build_lecture_deck

FRAME_S = 0.4  # seconds per snapshot while playing
GRID_PX, GAP = 560, 2  # the kernel grid's least width and its separators, in screen pixels
ss = st.session_state
# The epoch shown lives in ``f_when`` (a plain key, an epoch or "final"); the slider ``f_epoch``
# shows it only while paused, a progress bar while playing (as on the Convolution page).
# ``f_wrote``: the URL's ``epoch`` as this page last wrote it; a different one in the URL (a link,
# a lecture step) is a new choice.


@st.cache_resource(max_entries=4)
def _snapshots(path: str, mtime: float, _ckpt) -> dict:
    return load_snapshots(_ckpt)


def snapshots(ckpt) -> dict:
    """Weights saved during training, by epoch (empty when none were saved); cached by the
    snapshot file's path and modification time, so a file written later is picked up."""
    f = snapshots_path(ckpt.path) if ckpt.path is not None else None
    return _snapshots(str(f), f.stat().st_mtime if f is not None and f.is_file() else 0.0, ckpt)


def _epoch_label(e) -> str:
    return "initial" if e == 0 else str(e)


def _url_epoch(epochs: list) -> object:
    """The URL's epoch among ``epochs`` ("first": the first snapshot), else "final"."""
    v = st.query_params.get("epoch")
    if v == "first":
        return epochs[0]
    return next((e for e in epochs if str(e) == v), "final")


def _toggle_play(epochs: list) -> None:
    """Play/Pause. Play from the end starts again at the first snapshot; the first frame after
    Play shows the epoch as it is, the next ones move on."""
    playing = not ss.get("f_playing", False)
    ss["f_playing"] = playing
    if playing:
        ss["f_hold"] = True
        if ss.get("f_when") == epochs[-1]:
            ss["f_when"] = epochs[0]


def _moved() -> None:
    ss["f_when"] = ss["f_epoch"]


def _kernel_clicked(shown: np.ndarray, shape: tuple[int, ...]) -> None:
    """A click on the grid enlarges the kernel under it (``shown``: filter numbers in grid order)."""
    hit = tile_clicked(ss.get("f_click"), shape, len(shown), min(grid_cols(len(shown)), len(shown)), GAP)
    if hit is not None:
        ss["f_idx"] = int(shown[hit])


def show_filters(ctx, model, norm: str, order_key: str, state, when) -> None:
    """The kernel grid at ``when`` (weights ``state``, None: the final ones), its structure,
    the slide PNG and one filter enlarged. The grid is a picture (a click enlarges a kernel):
    drawn as a Plotly figure it took a third of the floor page's time more to open the page."""
    filters = (first_layer_filters(model, normalize=norm) if state is None
               else first_layer_filters_from_state(model, state, normalize=norm))
    order = None if order_key == "index" else filters.order_by(order_key)
    shown = np.arange(len(filters)) if order is None else np.asarray(order)
    grid = lecture_grid(filters, order, min_width=GRID_PX, gap=GAP)
    kh, kw = filters.kernel_size
    st.markdown(f"**{len(filters)} kernels, {filters.in_channels}x{kh}x{kw}**; normalisation: "
                f"{filters.normalization}. Click a kernel to enlarge it.",
                help=f"{filters.in_channels}x{kh}x{kw}: input channels x height x width of each kernel.\n\n"
                     + explain("kernel", "min-max scaled"))
    streamlit_image_coordinates(grid, key="f_click", width="content", cursor="pointer", png_compression_level=1,
                                on_click=partial(_kernel_clicked, shown, grid.shape))
    s1, s2 = st.columns([4, 1], vertical_alignment="center")
    s1.caption(kernel_measures_text(filters), help=MEASURES_HELP)
    s2.download_button("Slide PNG", lambda: png_bytes(lecture_grid(filters, order)), key="f_png",
                       file_name=f"{ctx.name}_kernels{'' if when == 'final' else f'_epoch{when}'}.png",
                       mime="image/png", on_click="ignore", icon=":material/download:",
                       help="The kernel grid at least 1,200 px wide, sharp pixels, for a slide.")
    default = url_int("filter", 0, len(filters) - 1, 0)
    idx = st.number_input("Enlarge filter", 0, len(filters) - 1, default, key="f_idx",
                          help="Or click a kernel in the grid.")
    st.query_params["filter"] = str(idx)
    left, right = st.columns([1, 3])
    big = filters.images[idx].repeat(192 // filters.kernel_size[0], 0).repeat(192 // filters.kernel_size[1], 1)
    left.image(big, caption=f"filter {idx}", clamp=True)
    left.markdown(f"norm {filters.norms[idx]:.3f}, colourfulness {filters.colorfulness[idx]:.2f}, "
                  f"structure {filters.structure.scores[idx]:.2f}" + kernel_orientation_text(filters, idx),
                  help=explain("norm") + "\n\n" + MEASURES_HELP)
    first = next(n for n, m in model.named_modules() if m is model.first_conv)
    unit_link(ctx, first, int(idx), left)
    right.image(weights_image(channel_images(filters, idx), cell=max(4, 144 // max(kh, kw))), width="content")
    names = "red, green, blue" if filters.in_channels == 3 else f"{filters.in_channels} channels"
    right.caption(f"Filter {idx}'s weights per input channel ({names}), each divided by the filter's largest "
                  f"|weight| ({np.abs(filters.weights[idx]).max():.3g}): red excites, blue inhibits, white is 0.")


def deck_download(ctx) -> None:
    """Build the lecture deck in memory (progress bar), then offer it as a zip."""
    data = ctx.data if ctx.data is not None and ctx.data.exists() else None
    key = (ctx.ckpt.sha256, str(data))
    st.subheader("Lecture deck")
    st.caption("The lecture sequence as slides: kernels, their training, feature maps, a receptive field, the "
               "convolution, neighbours and mistakes (those the data allows), as 1,600 x 900 PNGs and one "
               "offline deck.html (arrow keys or PageUp/PageDown). The same as `cnnviz figures --deck`.")
    if st.button("Download the lecture deck", key="f_deck_build", icon=":material/slideshow:",
                 help="Builds the slides on the server (a few seconds; longer the first time the data's "
                      "features are computed), then offers them as a zip."):
        bar = progress_bar("Building the lecture deck")
        try:
            deck = build_lecture_deck(ctx.ckpt, data, report=bar)
        except (DatasetError, CheckpointError, ValueError) as e:
            st.error(f"Cannot build the deck: {e}")
            return
        finally:
            bar.close()
        ss["f_deck"] = (key, deck.zip_bytes(), len(deck.slides), dict(deck.missing))
    built = ss.get("f_deck")
    if built is None or built[0] != key:
        return
    _, zipped, n, missing = built
    st.download_button(f"Save the deck ({n} slides, {len(zipped) / 1e6:.1f} MB zip)", zipped, key="f_deck_zip",
                       file_name=f"{ctx.name}_lecture_deck.zip", mime="application/zip", on_click="ignore",
                       icon=":material/download:")
    for step, why in missing.items():
        st.caption(f"No slide for {step.replace('_', ' ')}: {why}.")


def slide_kernels(model, norm: str, order_key: str, state, text: str) -> None:
    """Present mode: the kernel grid (weights ``state``, None: the final ones) as the slide's figure."""
    filters = (first_layer_filters(model, normalize=norm) if state is None
               else first_layer_filters_from_state(model, state, normalize=norm))
    order = None if order_key == "index" else filters.order_by(order_key)
    slide_text(text)
    kh, kw = filters.kernel_size
    cols = grid_columns(len(filters), kw / kh)
    slide_figure([Panel(lecture_grid(filters, order, min_width=1200, cols=cols, gap=GAP))])


def present_filters(ctx) -> None:
    """Present mode: the kernels as a slide, at the URL's epoch, with Play when there are
    snapshots; the page's choices (normalisation, order) as the session holds them."""
    step = current_lecture_step()
    keep_choices("f_norm", "f_order")
    norm, order_key = ss.get("f_norm", "per_filter"), ss.get("f_order", "index")
    caption = step.caption if step is not None else ""
    snaps = snapshots(ctx.ckpt)
    with slide(step.title if step is not None else "First-layer filters") as tools:
        if not snaps:
            st.query_params.pop("epoch", None)
            slide_kernels(ctx.ckpt.model, norm, order_key, None, caption)
            return
        epochs = list(snaps) + ["final"]
        if "f_play" not in ss:  # a fresh visit: paused
            ss["f_playing"] = False
        if ss.get("f_wrote") != st.query_params.get("epoch") or ss.get("f_when") not in epochs:
            ss["f_when"] = _url_epoch(epochs)
            ss["f_playing"] = False
        playing = bool(ss.get("f_playing", False))
        tools.button("Pause" if playing else "Play training", key="f_play", on_click=_toggle_play, args=(epochs,),
                     icon=":material/pause:" if playing else ":material/play_arrow:")

        @st.fragment(run_every=FRAME_S if playing else None)
        def frames() -> None:
            """The kernels at the epoch shown: reruns on its own every frame while playing."""
            if ss.get("f_playing") and not ss.pop("f_hold", False):
                i = epochs.index(ss["f_when"])
                if i >= len(epochs) - 1:
                    ss["f_playing"] = False
                    st.rerun(scope="app")
                ss["f_when"] = epochs[i + 1]
            when = ss["f_when"]
            st.query_params["epoch"] = ss["f_wrote"] = str(when)
            at = ("the final weights" if when == "final" else "the weights as initialised" if when == 0
                  else f"epoch {when}")
            slide_kernels(ctx.ckpt.model, norm, order_key, None if when == "final" else snaps[when],
                          f"{caption} Now: {at}." if step is None or step.name != "kernels" else caption)

        frames()


ctx = sidebar()
if ctx is not None and present_on():
    present_filters(ctx)
else:
    st.title("First-layer filters")
if ctx is not None and not present_on():
    model = ctx.ckpt.model
    conv = model.first_conv
    st.caption(f"The {conv.out_channels} kernels of the first convolution ({conv.in_channels}x"
               f"{conv.kernel_size[0]}x{conv.kernel_size[1]}, stride {conv.stride[0]}) drawn as colour "
               "images, as in figure 3 of the AlexNet paper.", help=explain("kernel", "stride"))
    if not model.first_conv_learned:
        st.info(f"`{ctx.ckpt.meta.arch}` does not train its first convolution: its kernels are fixed "
                "before training (e.g. whitening filters, computed from how the pixels of the "
                "training images' patches vary together), so they show the data's statistics rather "
                "than learned features, and training snapshots show the same kernels at every epoch. Pick a model "
                "that trains its first layer to see learned kernels.")
    c1, c2, c3 = st.columns(3)
    norm = c1.radio("Normalisation", ["per_filter", "global"], horizontal=True, key="f_norm",
                    format_func=lambda s: {"per_filter": "each filter", "global": "all filters together"}[s],
                    help="How weights become colours. **each filter**: every kernel stretched to full contrast "
                         "on its own, so its shape shows; **all filters together**: one scale for all, so weak "
                         "kernels look faint and strong ones bright.")
    order_key = c2.selectbox("Order", ["index", "norm", "color", "structure", "orientation"],
                             key="f_order",
                             format_func=lambda s: {"index": "as learned", "norm": "by norm",
                                                    "color": "colour-specific first",
                                                    "structure": "most structured first",
                                                    "orientation": "most oriented first"}[s],
                             help=explain("norm") + "\n\n" + MEASURES_HELP)
    snaps = snapshots(ctx.ckpt)
    if not snaps:
        c3.caption("No epoch snapshots in this checkpoint (train with --snapshot-epochs to add them).")
        st.query_params.pop("epoch", None)
        show_filters(ctx, model, norm, order_key, None, "final")
    else:
        epochs = list(snaps) + ["final"]
        if "f_play" not in ss:  # a fresh visit (widget state goes with the page): paused
            ss["f_playing"] = False
        if ss.get("f_wrote") != st.query_params.get("epoch") or ss.get("f_when") not in epochs:
            ss["f_when"] = _url_epoch(epochs)  # a link, a lecture step or another checkpoint
            ss["f_playing"] = False
        playing = bool(ss.get("f_playing", False))
        c3.button("Pause" if playing else "Play training", key="f_play", on_click=_toggle_play, args=(epochs,),
                  icon=":material/pause:" if playing else ":material/play_arrow:",
                  help=f"Step through the {len(snaps)} saved snapshots, from initialisation to the end, "
                       f"one every {FRAME_S:g} s; stops at the last.")

        @st.fragment(run_every=FRAME_S if playing else None)
        def over_training() -> None:
            """The epoch and everything drawn at it: reruns on its own every frame while playing."""
            if ss.get("f_playing"):
                if not ss.pop("f_hold", False):
                    i = epochs.index(ss["f_when"])
                    if i >= len(epochs) - 1:  # the last frame has been shown: stop the timer
                        ss["f_playing"] = False
                        st.rerun(scope="app")
                    ss["f_when"] = epochs[i + 1]
                when = ss["f_when"]
                st.progress(epochs.index(when) / (len(epochs) - 1),
                            text=f"Training epoch: {_epoch_label(when)} (playing)")
            else:
                ss["f_epoch"] = ss["f_when"]
                when = st.select_slider("Training epoch", options=epochs, key="f_epoch", on_change=_moved,
                                        format_func=_epoch_label,
                                        help="Snapshots saved during training (0: the weights as "
                                             "initialised): watch the kernels form, or press Play.")
            st.query_params["epoch"] = ss["f_wrote"] = str(when)
            show_filters(ctx, model, norm, order_key, None if when == "final" else snaps[when], when)

        over_training()
    if not present_on():
        deck_download(ctx)

"""Feature maps page: what one layer outputs for one image, strongest channels first, one enlarged;
a click on the image shows every channel at the map position under that pixel."""

from __future__ import annotations

from functools import partial

import numpy as np
import streamlit as st
from streamlit_image_coordinates import streamlit_image_coordinates

from dashboard.glossary import explain
from dashboard.present import (ROOM, Panel, current_lecture_step, grid_columns, held_out_image, present_on, slide,
                               slide_figure, slide_text)
from dashboard.state import sidebar, url_int, url_text
from dashboard.widgets import conv_layers, pick_image, pick_layer, unit_link
from cnnviz.figures.clicks import channels_at, channels_at_figure, click_pixel, dot, enlarge, map_position, outline
from cnnviz.figures.pictures import heat_image, maps_image, tile_clicked
from cnnviz.inspect.feature_maps import FeatureMaps, feature_maps, grid_cols
from cnnviz.inspect.receptive_field import LayerRF, receptive_fields, unit_box


@st.cache_data(max_entries=8, show_spinner=False)
def layer_fields(sha: str, size: int, _model) -> dict[str, LayerRF]:
    """Theoretical receptive field of every layer; empty for a model the geometry cannot follow
    (the click then maps by proportion)."""
    try:
        return {r.name: r for r in receptive_fields(_model, size)}
    except NotImplementedError:
        return {}


def strongest_at(fm: FeatureMaps, rf: LayerRF | None, size: int, y: int, x: int) -> int:
    """The channel with the highest value at the map position under input pixel ``(y, x)``."""
    return int(channels_at(fm, *map_position(y, x, size, fm.maps.shape[2:], rf))[0][0])


def pixel_chosen(layer: str, fm: FeatureMaps, rf: LayerRF | None, size: int, clicked: bool) -> None:
    """A click (or a typed row and column) picks the pixel, and the enlarged channel becomes the
    strongest one there (run before the page, so the inputs show both)."""
    if clicked:
        click = st.session_state.get("fm_click")
        pixel = click_pixel(click["x"], click["y"], click["width"], click["height"], size) if click else None
        if pixel is None:
            return
        st.session_state["fm_py"], st.session_state["fm_px"] = pixel
    y, x = st.session_state.get("fm_py"), st.session_state.get("fm_px")
    if y is not None and x is not None:
        st.session_state[f"fm_ch_{layer}"] = strongest_at(fm, rf, size, int(y), int(x))


# The channel grid is drawn about GRID_PX wide, then scaled to its column's width (a browser
# only shrinks it on windows up to ~1,900 px wide): drawn at its own width it was cut in half at
# 1,400 px. GAP: the separators, in the drawing's pixels.
GRID_PX, GAP = 960, 2


def tile_chosen(layer: str, shown: np.ndarray, shape: tuple[int, ...]) -> None:
    """A click on the channel grid enlarges the channel under it (``shown``: channels in grid order)."""
    hit = tile_clicked(st.session_state.get("fm_grid"), shape, len(shown), grid_cols(len(shown)), GAP)
    if hit is not None:
        st.session_state[f"fm_ch_{layer}"] = int(shown[hit])


def present_maps(ctx) -> None:
    """Present mode: the image and its layer's strongest channels as a slide (the URL's layer,
    else a middle convolution; no widgets)."""
    step = current_lecture_step()
    model, meta = ctx.ckpt.model, ctx.ckpt.meta
    names = model.layer_names()
    convs = [n for n in conv_layers(ctx) if n in names]
    layer = url_text("layer") if url_text("layer") in names else (convs[len(convs) // 2] if convs else names[0])
    st.query_params["layer"] = layer
    with slide(step.title if step is not None else "Feature maps"):
        picked = held_out_image(ctx)
        if picked is None:
            slide_text("No image to show: this page needs the dataset (or the checkpoint's demo gallery).")
            return
        image, caption, label = picked
        fm = feature_maps(model, image, layer, meta.normalization)
        order = fm.order[0, :min(fm.num_channels, 64)]
        h, w = fm.maps.shape[2:]
        cols = grid_columns(len(order), w / h, room=ROOM - 1)  # the image, square, beside the grid
        grid = maps_image(fm.maps[0, order], cols=cols, tile_px=max(4, 1200 // cols), gap=GAP)
        truth = f" ({meta.classes[label]})" if label is not None and label >= 0 else ""
        slide_text(step.caption if step is not None else "")
        slide_figure([Panel(enlarge(image, 320)[0], caption.split(":")[0] + truth),
                      Panel(grid, f"{layer}: its {len(order)} strongest of {fm.num_channels} channels ({h}x{w})")])


ctx = sidebar()
if ctx is not None and present_on():
    present_maps(ctx)
else:
    st.title("Feature maps")
if ctx is not None and not present_on():
    model, meta = ctx.ckpt.model, ctx.ckpt.meta
    size = meta.input_size
    names = model.layer_names()
    st.caption("What one layer hands to the next for one image: each channel is a map of where its "
               "pattern occurs. Early layers answer to edges and colours, later ones to larger parts. "
               "**Click the image** to see what every channel says about that spot.",
               help=explain("feature map", "channel"))
    top_left, top_right = st.columns([3, 2])
    with top_left:
        picked = pick_image(ctx, "fm", allow_draw=True)
    layer, prev_layer = pick_layer(ctx, names, "fm_layer", top_right,
                                   help="The model's layers in forward order; the default is a middle convolution.")
    if picked is None:
        for k in ("ch", "py", "px"):
            st.query_params.pop(k, None)
    else:
        image, caption, label = picked
        fm = feature_maps(model, image, layer, meta.normalization)
        rf = layer_fields(ctx.ckpt.sha256, size, model).get(layer)
        n_ch, (h, w) = fm.num_channels, fm.maps.shape[2:]
        shown = n_ch
        if n_ch > 8:
            shown = top_right.slider("Channels shown", 8, min(n_ch, 256), min(n_ch, 64), key="fm_max",
                                     help="The strongest channels by mean activation, at most 256.\n\n"
                                          + explain("mean activation"))
        left, right = st.columns([3, 2])
        with right:
            truth = f" (true class: {meta.classes[label]})" if label is not None and label >= 0 else ""
            on_pixel = partial(pixel_chosen, layer, fm, rf, size)
            with st.expander("Pixel by row and column"):
                c1, c2 = st.columns(2)
                py = c1.number_input("Row", 0, size - 1, url_int("py", 0, size - 1), key="fm_py",
                                     placeholder="click", on_change=on_pixel, args=(False,))
                px = c2.number_input("Column", 0, size - 1, url_int("px", 0, size - 1), key="fm_px",
                                     placeholder="click", on_change=on_pixel, args=(False,))
            pixel = (int(py), int(px)) if py is not None and px is not None else None
            if pixel is None:
                st.query_params.pop("py", None)
                st.query_params.pop("px", None)
            else:
                st.query_params.update(py=str(pixel[0]), px=str(pixel[1]))
            where = map_position(*pixel, size, (h, w), rf) if pixel is not None else None
            # a new layer starts at its strongest channel (at the pixel, once one is chosen); the
            # same layer keeps the URL's channel
            default_ch = int(fm.order[0, 0]) if where is None else int(channels_at(fm, *where)[0][0])
            if prev_layer == layer:
                default_ch = url_int("ch", 0, n_ch - 1, default_ch)
            big, factor = enlarge(image, 320)
            if pixel is not None:
                if rf is not None and rf.jump[0] > 0:
                    big = outline(big, unit_box(rf, *where, size), factor)
                big = dot(big, *pixel, factor, color=(255, 220, 0))
            streamlit_image_coordinates(big, key="fm_click", width="stretch", cursor="crosshair",
                                        png_compression_level=1, on_click=partial(on_pixel, True))
            st.caption(caption + truth + ". **Click a spot** to see every channel there"
                       + (" (yellow: the pixel; red box: what the map position under it sees)." if pixel else "."),
                       help=explain("map position", "receptive field") if pixel else None)
            ch = st.number_input("Enlarge channel", 0, n_ch - 1, default_ch,
                                 key=f"fm_ch_{layer}", help="Or click a tile of the grid.")
            st.query_params["ch"] = str(ch)
            heat, _, lo, hi = heat_image(fm.maps[0, int(ch)], 320, mark=where)
            st.image(heat, width="content")
            st.caption(f"{layer}, channel {ch} (rank {fm.rank(int(ch))} of {n_ch} by mean activation, "
                       f"{fm.score[0, int(ch)]:.3g}): {h} x {w}, dark {lo:.3g}, yellow {hi:.3g}"
                       + (f"; red square: map position ({where[0]}, {where[1]})." if where is not None else "."),
                       help=explain("mean activation"))
            unit_link(ctx, layer, int(ch))
        with left:
            # a picture, not a Plotly heatmap: the figure took a third of the floor page's time
            # more to open the page, and a click here enlarges a channel
            order = fm.order[0, :shown]
            grid = maps_image(fm.maps[0, order], tile_px=max(1, GRID_PX // grid_cols(len(order))), gap=GAP)
            st.markdown(f"**{layer}: {len(order)} of {n_ch} channels ({h}x{w})**, strongest mean activation first, "
                        "each scaled to its own min-max (dark to yellow).",
                        help=explain("mean activation", "min-max scaled"))
            streamlit_image_coordinates(grid, key="fm_grid", width="stretch", cursor="pointer", png_compression_level=1,
                                        on_click=partial(tile_chosen, layer, order, grid.shape))
            st.caption(f"Output {' x '.join(map(str, fm.shape[1:]))} (channels x height x width). Strongest "
                       "channels: " + ", ".join(str(c) for c in fm.order[0, :10]) + ". Click a tile to enlarge "
                       "its channel.")
            if where is None:
                st.caption(":material/ads_click: Click the image to see every channel's value at that spot, "
                           "strongest first.")
            else:
                st.plotly_chart(channels_at_figure(fm, *where, max_channels=shown, highlight=int(ch),
                                                   where=f", under pixel ({pixel[0]}, {pixel[1]})"),
                                key="fm_pixel", width="stretch")
                flat = h * w == 1
                st.caption(("This layer has no spatial layout: every value sees the whole image. "
                            if flat else
                            ("The map position whose receptive field is centred nearest the pixel"
                             if rf is not None else "The map position at the same place as the pixel")
                            + " (red square on the enlarged channel). ")
                           + f"Red bar: the enlarged channel {ch}. Strongest here: channel "
                           f"{int(channels_at(fm, *where)[0][0])}; the click makes it the enlarged one.",
                           help=explain("map position", "receptive field"))

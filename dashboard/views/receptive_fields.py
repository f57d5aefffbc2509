"""Receptive fields page: how far each layer sees, in theory (by layer) and in practice (one unit, picked
by clicking the image)."""

from __future__ import annotations

from functools import partial

import streamlit as st
from streamlit_image_coordinates import streamlit_image_coordinates

from dashboard.glossary import explain
from dashboard.present import Panel, current_lecture_step, held_out_image, present_on, slide, slide_figure, slide_text
from dashboard.state import sidebar, url_int, url_text
from dashboard.widgets import conv_layers, pick_image, pick_layer, unit_link
from cnnviz.figures.clicks import click_pixel, dot, enlarge, outline
from cnnviz.figures.pictures import glow_image, heat_image
from cnnviz.figures.receptive_field import rf_growth_html
from cnnviz.inspect.effective_rf import gradient_rf
from cnnviz.inspect.feature_maps import feature_maps
from cnnviz.inspect.receptive_field import LayerRF, nearest_unit, receptive_fields, unit_box

CYAN = (0, 230, 255)  # the field's box: red would vanish in the effective field's red-to-yellow glow


@st.cache_data(max_entries=8, show_spinner=False)
def layer_fields(sha: str, size: int, _model) -> list[LayerRF]:
    """Theoretical receptive field of every layer (one forward pass on a blank input)."""
    return receptive_fields(_model, size)


def clicked(layer: str, rf: LayerRF, size: int) -> None:
    """A click on the image picks the unit of ``layer`` centred nearest the pixel clicked (run
    before the page, so the Row and Column inputs show it)."""
    click = st.session_state.get("rf_click")
    pixel = click_pixel(click["x"], click["y"], click["width"], click["height"], size) if click else None
    if pixel is not None:
        st.session_state[f"rf_uy_{layer}"], st.session_state[f"rf_ux_{layer}"] = nearest_unit(rf, *pixel)


def present_field(ctx) -> None:
    """Present mode: one unit's theoretical and effective field on the image, beside its
    channel's map (the URL's layer, channel and unit, else a middle convolution's strongest
    channel at its centre; no widgets)."""
    step = current_lecture_step()
    model, meta, size = ctx.ckpt.model, ctx.ckpt.meta, ctx.ckpt.meta.input_size
    rfs = {r.name: r for r in layer_fields(ctx.ckpt.sha256, size, model)}
    convs = [n for n in conv_layers(ctx) if n in rfs] or list(rfs)
    layer = url_text("layer") if url_text("layer") in rfs else convs[len(convs) // 2]
    with slide(step.title if step is not None else "Receptive fields"):
        picked = held_out_image(ctx)
        if picked is None:
            slide_text("No image to show: this page needs the dataset (or the checkpoint's demo gallery).")
            return
        image = picked[0]
        rf = rfs[layer]
        fm = feature_maps(model, image, layer, meta.normalization)
        (h, w), n_ch = rf.out_size, fm.num_channels
        ch = url_int("ch", 0, n_ch - 1, int(fm.order[0, 0]))
        uy, ux = url_int("uy", 0, h - 1, h // 2), url_int("ux", 0, w - 1, w // 2)
        st.query_params.update(layer=layer, ch=str(ch), uy=str(uy), ux=str(ux))
        erf = gradient_rf(model, layer, ch, uy, ux, image=image, norm=meta.normalization)
        big, factor = enlarge(glow_image(image, erf), 320)
        big = dot(outline(big, unit_box(rf, uy, ux, size), factor, color=CYAN), *rf.center(uy, ux), factor)
        heat = heat_image(fm.maps[0, ch], 320, mark=(uy, ux))[0]
        slide_text(step.caption if step is not None else "")
        slide_figure([Panel(big, f"cyan box: what unit ({uy}, {ux}) can see, {rf.size[0]:.0f} px; "
                                 "glow: how much each pixel moves it"),
                      Panel(heat, f"{layer}, channel {ch}: its {h} x {w} map, the unit in red")])


ctx = sidebar()
if ctx is not None and present_on():
    present_field(ctx)
else:
    st.title("Receptive fields")
if ctx is not None and not present_on():
    model, meta, size = ctx.ckpt.model, ctx.ckpt.meta, ctx.ckpt.meta.input_size
    rfs = {r.name: r for r in layer_fields(ctx.ckpt.sha256, size, model)}
    st.caption("The **theoretical** receptive field is every input pixel that can reach a unit through "
               "the kernels and strides below it (the box); the **effective** one is how much each pixel "
               "actually moves the unit for this image, |d unit / d pixel| (the glow): it is brightest at "
               "the centre and usually much smaller, and pooling and ReLU cut it where they pass no gradient.",
               help=explain("receptive field", "effective receptive field", "gradient", "MaxPool2d", "ReLU"))

    st.subheader("One unit", help=explain("unit"))
    names = list(rfs)
    top_left, top_right = st.columns([3, 2])
    with top_left:
        picked = pick_image(ctx, "rf")
    layer, prev_layer = pick_layer(ctx, names, "rf_layer", top_right)
    if picked is not None:
        image, caption, _ = picked
        rf = rfs[layer]
        fm = feature_maps(model, image, layer, meta.normalization)
        (h, w), n_ch = rf.out_size, fm.num_channels
        # a new layer starts at its strongest channel's centre unit; the same layer keeps the URL's
        ch0, uy0, ux0 = int(fm.order[0, 0]), h // 2, w // 2
        if prev_layer == layer:
            ch0, uy0, ux0 = url_int("ch", 0, n_ch - 1, ch0), url_int("uy", 0, h - 1, uy0), url_int("ux", 0, w - 1, ux0)
        ch = top_right.number_input("Channel", 0, n_ch - 1, ch0, key=f"rf_ch_{layer}", help=explain("channel"))
        with top_right.expander("Unit by row and column"):
            c2, c3 = st.columns(2)
            uy = c2.number_input("Row", 0, h - 1, uy0, key=f"rf_uy_{layer}")
            ux = c3.number_input("Column", 0, w - 1, ux0, key=f"rf_ux_{layer}")
        st.query_params.update(ch=str(ch), uy=str(uy), ux=str(ux))
        box = unit_box(rf, int(uy), int(ux), size)
        erf = gradient_rf(model, layer, int(ch), int(uy), int(ux), image=image, norm=meta.normalization)
        big, factor = enlarge(glow_image(image, erf), 320)
        big = dot(outline(big, box, factor, color=CYAN), *rf.center(int(uy), int(ux)), factor)
        with top_left:
            streamlit_image_coordinates(big, key="rf_click", width="content", cursor="crosshair",
                                        png_compression_level=1, on_click=partial(clicked, layer, rf, size))
            st.caption(f"**Click the image to pick a unit**: the one of {layer}'s {h} x {w} whose field is "
                       f"centred nearest the click. Cyan box: its theoretical field, {rf.size[0]:.0f} px "
                       f"(rows {box[0]}-{box[2] - 1}, columns {box[1]}-{box[3] - 1}, clipped to the image); "
                       "red dot: its centre; glow: its effective field for this image, |d unit / d pixel| "
                       f"scaled to its maximum (yellow). {caption}.",
                       help=explain("receptive field", "effective receptive field"))
        heat, _, lo, hi = heat_image(fm.maps[0, int(ch)], 240, mark=(int(uy), int(ux)))
        with top_right:
            st.image(heat, width="content")
            st.caption(f"Channel {ch}'s {h} x {w} map for this image (dark {lo:.3g}, yellow {hi:.3g}); "
                       f"red square: unit ({uy}, {ux}).")
            unit_link(ctx, layer, int(ch))

    st.subheader("By layer", help=explain("receptive field", "jump"))
    st.html(rf_growth_html(list(rfs.values()), image_size=size))

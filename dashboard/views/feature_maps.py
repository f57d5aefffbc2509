"""Feature maps page: what one layer outputs for one image, strongest channels first, one enlarged."""

from __future__ import annotations

import streamlit as st

from dashboard.state import sidebar, url_int
from dashboard.widgets import pick_image, pick_layer, unit_link
from cnnviz.figures.feature_maps import feature_channel_figure, feature_grid_figure
from cnnviz.inspect.feature_maps import feature_maps


ctx = sidebar()
st.title("Feature maps")
if ctx is not None:
    model, meta = ctx.ckpt.model, ctx.ckpt.meta
    names = model.layer_names()
    st.caption("What one layer hands to the next for one image: each channel is a map of where its "
               "pattern occurs. Early layers answer to edges and colours, later ones to larger parts.")
    top_left, top_right = st.columns([3, 2])
    with top_left:
        picked = pick_image(ctx, "fm")
    layer, prev_layer = pick_layer(ctx, names, "fm_layer", top_right,
                                   help="The model's layers in forward order; the default is a middle convolution.")
    if picked is None:
        st.query_params.pop("ch", None)
    else:
        image, caption, label = picked
        fm = feature_maps(model, image, layer, meta.normalization)
        n_ch = fm.num_channels
        shown = n_ch
        if n_ch > 8:
            shown = top_right.slider("Channels shown", 8, min(n_ch, 256), min(n_ch, 64), key="fm_max",
                                     help="The strongest channels by mean activation, at most 256.")
        left, right = st.columns([3, 2])
        with left:
            st.plotly_chart(feature_grid_figure(fm, max_channels=shown), key="fm_grid", width="stretch")
            st.caption(f"Output {' x '.join(map(str, fm.shape[1:]))}. Strongest channels: "
                       + ", ".join(str(c) for c in fm.order[0, :10]) + ". Hover a tile for its channel number.")
        with right:
            truth = f" (true class: {meta.classes[label]})" if label is not None and label >= 0 else ""
            st.image(image, caption=caption + truth, width=224)
            # a new layer starts at its strongest channel; the same layer keeps the URL's channel
            default_ch = url_int("ch", 0, n_ch - 1) if prev_layer == layer else None
            ch = st.number_input("Enlarge channel", 0, n_ch - 1,
                                 int(fm.order[0, 0]) if default_ch is None else default_ch,
                                 key=f"fm_ch_{layer}", help="The channel number shown when hovering the grid.")
            st.query_params["ch"] = str(ch)
            st.plotly_chart(feature_channel_figure(fm, int(ch)), key="fm_channel", width="stretch")
            unit_link(ctx, layer, int(ch))

"""Attributions page: which pixels one class score depends on, five methods side by side."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from dashboard.state import sidebar, url_int, url_text
from dashboard.widgets import conv_layers, pick_image
from cnnviz.figures.attribution import COLORMAPS, TITLES, attribution_figure
from cnnviz.inspect.attribution import METHODS, Attribution, attribute
from cnnviz.predict import Predictions, predict_images


@st.cache_data(max_entries=64, show_spinner=False)
def predictions(sha: str, image: np.ndarray, _ckpt) -> Predictions:
    """Class probabilities for one ``(S, S, 3) uint8`` image, with the checkpoint's TTA and
    runtime (``predict_images``' default): the same numbers as on every other page."""
    return predict_images(_ckpt, image[None], ["image"])


@st.cache_data(max_entries=16, show_spinner=False)
def attributions(sha: str, image: np.ndarray, target: int, methods: tuple[str, ...], layer: str | None,
                 _ckpt) -> dict[str, Attribution]:
    """Attribution maps of class ``target`` (a second or two for IG and occlusion on big models)."""
    return attribute(_ckpt.model, image, _ckpt.meta.normalization, target, methods, layer)


ctx = sidebar()
st.title("Attributions")
if ctx is not None:
    model, meta = ctx.ckpt.model, ctx.ckpt.meta
    classes = meta.classes
    st.caption("Which pixels the score of one class depends on. Saliency and guided backprop are "
               "gradients, integrated gradients adds them up along a path from a blank image, Grad-CAM "
               "weighs a convolutional layer's channels, occlusion greys out patches and watches the score drop.")
    top_left, top_right = st.columns([3, 2])
    with top_left:
        url_img = url_text("img")
        picked = pick_image(ctx, "attr")
    if picked is not None:
        image, caption, label = picked
        preds = predictions(ctx.ckpt.sha256, image, ctx.ckpt)
        probs, predicted = preds.probs[0], int(preds.probs[0].argmax())
        with top_right:
            st.dataframe(pd.DataFrame(preds.top_k(5)[0], columns=["class", "probability"]), hide_index=True,
                         column_config={"probability": st.column_config.ProgressColumn(min_value=0, max_value=1,
                                                                                       format="percent")})
        # the URL's target (e.g. from a Mistakes link) holds while the image stays the one it came
        # with (pick_image keeps `img` unless the user picks another); a new image or upload starts
        # at its predicted class
        same_image = url_text("img") == url_img
        if label is None:  # an upload: no `img` in the URL, compare with the last upload instead
            same_image, st.session_state["attr_last_upload"] = (st.session_state.get("attr_last_upload") == caption,
                                                             caption)
        linked = url_int("target", 0, len(classes) - 1) if same_image else None
        c1, c2, c3 = st.columns([2, 3, 2])
        target = c1.selectbox("Target class", range(len(classes)), index=predicted if linked is None else linked,
                              format_func=lambda i: f"{classes[i]} ({probs[i]:.1%})"
                                                    + (" (predicted)" if i == predicted else ""),
                              key=f"attr_target_{caption}")
        st.query_params["target"] = str(target)
        methods = c2.multiselect("Methods", METHODS, default=list(METHODS), key="attr_methods",
                                 format_func=lambda m: TITLES.get(m, m))
        convs = conv_layers(ctx)
        layer = None
        if "grad_cam" in methods and convs:
            layer = c3.selectbox("Grad-CAM layer", convs, index=len(convs) - 1, key="attr_layer",
                                 help="Deeper layers give coarser maps with more meaning; the last is usual.")
        alpha = c3.slider("Overlay opacity", 0.0, 1.0, 0.5, 0.05, key="attr_alpha")
        cmap = c3.selectbox("Colour map", list(COLORMAPS), key="attr_cmap")
        if not methods:
            st.info("Pick at least one method.")
        else:
            with st.spinner("Computing attributions..."):
                results = attributions(ctx.ckpt.sha256, image, int(target), tuple(methods), layer, ctx.ckpt)
            truth = f", true class {classes[label]}" if label is not None and label >= 0 else ""
            title = f"Evidence for '{classes[target]}' ({probs[target]:.1%}{truth}): {caption}"
            st.plotly_chart(attribution_figure(image, results, alpha, cmap, title=title), key="attr_fig",
                            width="content")

"""Attributions page: which pixels one class score depends on, five methods side by side."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from dashboard.state import on_all_cores, Context, eval_split, progress_bar, sidebar, split_data, url_int, url_text
from dashboard.glossary import explain
from dashboard.widgets import conv_layers, pick_image, static_table
from dashboard.present import Panel, held_out_image, present_on, slide_figure, slide_text
from cnnviz.figures.attribution import COLORMAPS, TITLES, attribution_panels
from cnnviz.figures.faithfulness import faithfulness_chart, report_curves
from cnnviz.figures.sanity import sanity_curve_figure, sanity_grid_figure
from cnnviz.inspect.attribution import METHODS, Attribution, attribute, default_grad_cam_layer
from cnnviz.inspect.faithfulness import BASELINES, Curves, baseline_maps, deletion_insertion
from cnnviz.inspect.sanity import SanityResult, cascading_randomisation
from cnnviz.inspect.trust import AttributionCheck, attribution_check
from cnnviz.basis import split_display_name
from cnnviz.class_names import class_display_names
from cnnviz.predict import Predictions
from cnnviz.single_view import SINGLE_VIEW, single_view_predictions


@st.cache_data(max_entries=64, show_spinner=False)
def predictions(sha: str, image: np.ndarray, _ckpt) -> Predictions:
    """Class probabilities of one view of one ``(S, S, 3) uint8`` image (no test-time
    augmentation): the same numbers as the Neighbours and Mistakes pages print for it."""
    return single_view_predictions(_ckpt, image[None], ["image"])


@st.cache_data(max_entries=16, show_spinner=False)
def attributions(sha: str, image: np.ndarray, target: int, methods: tuple[str, ...], layer: str | None,
                 _ckpt) -> dict[str, Attribution]:
    """Attribution maps of class ``target`` (a second or two for IG and occlusion on big models)."""
    return attribute(_ckpt.model, image, _ckpt.meta.normalization, target, methods, layer)


@st.cache_data(max_entries=16, show_spinner="Deleting and inserting pixels in the maps' order...")
def faithfulness_one(sha: str, image: np.ndarray, target: int, methods: tuple[str, ...], layer: str | None,
                     _ckpt, _results: dict[str, Attribution]) -> tuple[tuple[str, ...], Curves]:
    """Deletion and insertion curves of this image's maps and of the two baseline maps."""
    names = methods + BASELINES
    maps = np.stack([_results[m].map for m in methods] + [baseline_maps(image[None], b)[0] for b in BASELINES])
    curves = deletion_insertion(_ckpt.model, np.repeat(image[None], len(names), 0), _ckpt.meta.normalization,
                                [target] * len(names), maps)
    return names, curves


@st.cache_data(max_entries=8, show_spinner=False)
def sanity_one(sha: str, image: np.ndarray, target: int, methods: tuple[str, ...], layer: str | None,
               _ckpt) -> SanityResult:
    bar = progress_bar("Randomising the layers from the top down, a map per method and step:")
    try:
        return cascading_randomisation(_ckpt.model, image[None], _ckpt.meta.normalization, [target], methods,
                                       layer=layer, progress=bar)
    finally:
        bar.close()


@st.cache_data(max_entries=4, show_spinner=False)
@on_all_cores
def held_out_check(sha: str, data: str, split: str, n: int, methods: tuple[str, ...], _ckpt, _ds
                   ) -> AttributionCheck:
    bar = progress_bar(f"Both checks on {n} held-out images:")
    try:
        return attribution_check(_ckpt, _ds, split, n, methods, progress=bar)
    finally:
        bar.close()


def trust_panel(ctx: Context, image: np.ndarray, target: int, methods: tuple[str, ...], layer: str | None,
                results: dict[str, Attribution], caption: str) -> None:
    """Faithfulness and the randomisation sanity check, for this image and over held-out images."""
    st.subheader("Can I trust this?")
    st.caption("A faithful map finds the pixels the prediction needs: deleting them first makes the probability "
               "fall fast, inserting them first makes it rise fast; it should beat a random map and a plain edge "
               "detector. A map that explains the model must change when the model's weights are randomised "
               "(Adebayo et al., 2018): one that stays the same shows the image's edges, not the model.")
    sha = ctx.ckpt.sha256
    faith, sanity, average = st.tabs(["Faithfulness", "Sanity check", "Over held-out images"])
    with faith:
        names, curves = faithfulness_one(sha, image, target, methods, layer, ctx.ckpt, results)
        st.altair_chart(faithfulness_chart(curves.fractions, dict(zip(names, curves.deletion)),
                                           dict(zip(names, curves.insertion)),
                                           title=f"Deletion and insertion for "
                                                 f"'{class_display_names(ctx.ckpt.meta.classes)[target]}'"))
        beat = [TITLES[m] for i, m in enumerate(methods)
                if curves.deletion_auc[i] < curves.deletion_auc[len(methods):].min()
                and curves.insertion_auc[i] > curves.insertion_auc[len(methods):].max()]
        st.markdown("On this image, **" + (", ".join(beat) if beat else "no method") + "** beat both baseline maps "
                    "on both curves.")
    with sanity:
        run_key = (sha, caption, target, methods, layer)
        if st.button("Randomise the layers from the top down", key="attr_sanity_run", icon=":material/shuffle:",
                     help="On a private copy of the model: the shared one is never changed."):
            st.session_state["attr_sanity_for"] = run_key
        if st.session_state.get("attr_sanity_for") == run_key:
            result = sanity_one(sha, image, target, methods, layer, ctx.ckpt)
            st.plotly_chart(sanity_curve_figure(result), key="attr_sanity_curve")
            st.plotly_chart(sanity_grid_figure(image, result), key="attr_sanity_grid")
            verdict = result.verdict()
            st.markdown("Mean correlation over the cascade: " + " · ".join(
                f"{TITLES[m]} **{v:+.2f}**, {verdict[m]}" for m, v in result.cascade().items()))
    with average:
        c1, c2 = st.columns([1, 3])
        n = c1.number_input("Held-out images", 2, 500, 16, key="attr_avg_n", help=explain("held-out"))
        if c2.button("Run both checks on held-out images", key="attr_avg_run", icon=":material/fact_check:"):
            st.session_state["attr_avg_for"] = (sha, str(ctx.data), int(n), methods)
        if st.session_state.get("attr_avg_for") == (sha, str(ctx.data), int(n), methods):
            split = eval_split(ctx)
            ds = split_data(ctx, split)
            if ds is not None:
                check = held_out_check(sha, str(ctx.data), split, int(n), methods, ctx.ckpt, ds)
                st.caption(f"{len(check.indices)} {split_display_name(split)} images, explaining each one's "
                           "predicted class, "
                           f"{check.seconds:.0f} s. `cnnviz attribution-check` prints the same tables.")
                rows = check.faithfulness.rows()
                st.dataframe(pd.DataFrame(rows)[["method", "kind", "deletion_auc", "insertion_auc"]], hide_index=True,
                             key="attr_avg_table")
                dele, ins = report_curves(check.faithfulness)
                st.altair_chart(faithfulness_chart(check.faithfulness.fractions, dele, ins,
                                                   title="Mean deletion and insertion curves"))
                st.plotly_chart(sanity_curve_figure(check.sanity), key="attr_avg_sanity")


def present_attributions(ctx: Context) -> None:
    """Present mode: the URL's held-out image (else the first) and every method's map of its
    predicted class (else the URL's ``target``), with the page's default layer and colours; no widgets."""
    picked = held_out_image(ctx)
    if picked is None:
        slide_text("No image to show: this page needs the dataset (or the checkpoint's demo gallery).")
        return
    image, caption, label = picked
    classes = class_display_names(ctx.ckpt.meta.classes)
    probs = predictions(ctx.ckpt.sha256, image, ctx.ckpt).probs[0]
    target = url_int("target", 0, len(classes) - 1, int(probs.argmax()))
    layer = default_grad_cam_layer(ctx.ckpt.model) if conv_layers(ctx) else None
    methods = tuple(m for m in METHODS if m != "grad_cam" or layer is not None)
    results = attributions(ctx.ckpt.sha256, image, target, methods, layer, ctx.ckpt)
    panels = attribution_panels(image, results, 0.5, list(COLORMAPS)[0])
    truth = f", true class {classes[label]}" if label is not None and label >= 0 else ""
    slide_text(f"Evidence for '{classes[target]}' ({probs[target]:.1%}{truth}) in {caption.split(':')[0]}: "
               "the pixels its score depends on, by method.")
    slide_figure([Panel(p, t) for p, t in zip(panels.pictures, panels.titles)])


ctx = sidebar()
if ctx is not None and present_on():
    present_attributions(ctx)
elif not present_on():
    st.title("Attributions")
if ctx is not None and not present_on():
    model, meta = ctx.ckpt.model, ctx.ckpt.meta
    classes = class_display_names(meta.classes)
    st.caption("Which pixels the score of one class depends on. Saliency and guided backprop are "
               "gradients, integrated gradients adds them up along a path from a blank image, Grad-CAM "
               "weighs a convolutional layer's channels, occlusion greys out patches and watches the score drop.",
               help=explain("class score", "gradient"))
    top_left, top_right = st.columns([3, 2])
    with top_left:
        url_img = url_text("img")
        picked = pick_image(ctx, "attr")
    if picked is not None:
        image, caption, label = picked
        preds = predictions(ctx.ckpt.sha256, image, ctx.ckpt)
        probs, predicted = preds.probs[0], int(preds.probs[0].argmax())
        with top_right:
            static_table(pd.DataFrame([(classes[c], f"{probs[c]:.1%}") for c in np.argsort(-probs)[:5]],
                                      columns=["class", "probability"]))
            st.caption(f"Probabilities of a {SINGLE_VIEW}, as on the Neighbours and Mistakes pages.")
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
            default = default_grad_cam_layer(model)
            options = convs + [default] if default not in convs else convs
            layer = c3.selectbox("Grad-CAM layer", options, index=options.index(default), key="attr_layer",
                                 help="Deeper layers give coarser maps with more meaning. The default is the "
                                      "activation after the last convolution, as in the Grad-CAM paper.")
        alpha = c3.slider("Overlay opacity", 0.0, 1.0, 0.5, 0.05, key="attr_alpha")
        cmap = c3.selectbox("Colour map", list(COLORMAPS), key="attr_cmap")
        if not methods:
            st.info("Pick at least one method.")
        else:
            with st.spinner("Computing attributions..."):
                results = attributions(ctx.ckpt.sha256, image, int(target), tuple(methods), layer, ctx.ckpt)
            truth = f", true class {classes[label]}" if label is not None and label >= 0 else ""
            title = f"Evidence for '{classes[target]}' ({probs[target]:.1%}{truth}): {caption}"
            st.markdown(f"**{title}**")
            panels = attribution_panels(image, results, alpha, cmap)
            st.image(panels.pictures, caption=panels.titles, width=panels.pictures[0].shape[1])  # sharp
            for note in panels.notes:
                st.caption(note)
            trust_panel(ctx, image, int(target), tuple(methods), layer, results, caption)

"""Neighbours page: AlexNet's figure 4 (a test image, its top-5 classes, its nearest training
images in feature space beside those in pixel space), how often an image's nearest training
images share its class, and the 2-D map of the whole evaluation split."""

from __future__ import annotations

import random

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from dashboard.state import (Context, eval_split, features, need_data, neighbour_index, sidebar, url_choice,
                             url_int)
from dashboard import warm_up
from dashboard.glossary import explain
from dashboard.widgets import pick_image, static_table
from dashboard.present import Panel, current_lecture_step, present_on, slide, slide_figure, slide_text
from cnnviz.basis import split_display_name
from cnnviz.class_names import class_display_name, class_display_names
from cnnviz.figures.clicks import enlarge
from cnnviz.figures.neighbours import draw_query_rows, purity_chart, query_rows_picture
from cnnviz.figures.pictures import TextCanvas
from cnnviz.figures.projection import projection_chart, rows_in_box
from cnnviz.checkpoints import Checkpoint
from cnnviz.data import ImageDataset
from cnnviz.inspect.features import FeatureSet, extract_features
from cnnviz.inspect.neighbours import (METRICS, NeighbourIndex, PurityResult, QueryNeighbours,
                                      pixel_vectors, query_neighbours)
from cnnviz.inspect.projection import Projection, umap_available
from cnnviz.inspect.split_cache import cached_projection, cached_purity
from cnnviz.warm import WARM_PURITY_K
from cnnviz.single_view import SINGLE_VIEW, single_view_predictions

K_MAX = 16
PURITY_K = [1, 5, 10, 20, 50]
MAP_SHOWN = 24  # images shown for a selection on the map


@st.cache_resource(show_spinner=False, max_entries=8)
def projection(sha: str, data: str, split: str, method: str, _ckpt: Checkpoint, _ds: ImageDataset,
               _fs: FeatureSet) -> Projection:
    """Every point of the split in 2-D; t-SNE on 10,000 points takes a while, so once only (and
    on disk: the warm-up makes the PCA map)."""
    if method == "pca":
        warm_up.wait_for(_ckpt, data, "map")
    return cached_projection(_ckpt, _ds, split, method, _fs.features)


@st.cache_resource(show_spinner=False, max_entries=8)
def map_chart(sha: str, data: str, split: str, method: str, _proj: Projection, _fs: FeatureSet,
              classes: tuple[str, ...]) -> alt.Chart:
    """The map's scatter, built once per model, data, split and method. Shared and never
    changed (``st.altair_chart`` only reads it)."""
    return projection_chart(_proj, list(classes), ids=_fs.ids)


def pictures(images: np.ndarray, width: int = 96) -> list[np.ndarray]:
    """Images enlarged by whole pixels to at least ``width`` (sharp when shown at their size)."""
    return [enlarge(im, width)[0] for im in images]


@st.cache_data(show_spinner=False, max_entries=16)
def purity(sha: str, data: str, split: str, space: str, k: int, metric: str, _ckpt: Checkpoint,
           _index: NeighbourIndex, _train: ImageDataset, _held: ImageDataset, _held_fs: FeatureSet) -> PurityResult:
    """Share of each held-out image's ``k`` nearest training images that have its class, in
    ``space``: "features" (penultimate) or "pixels" (``_index`` must be over the same space);
    on disk too (the warm-up makes the page's first view's, k = 10 by Euclidean distance)."""
    if (k, metric) == (WARM_PURITY_K, "euclidean"):
        warm_up.wait_for(_ckpt, data, "purity")
    return cached_purity(_ckpt, _train, _held, split, space, k, metric, _index, _held_fs.features)


def _random_image(n: int) -> None:
    """Button callback: a random image of the evaluation split, put in the URL; the picker's
    widgets are reset so they follow the URL."""
    st.query_params["img"] = str(random.randrange(n))
    st.session_state["nn_src"] = "dataset"
    for key in ("nn_cls", "nn_n"):
        st.session_state.pop(key, None)


def _query(ctx: Context, image, caption: str, eval_fs: FeatureSet):
    """Feature vector and top-5 classes (one view) of the chosen image: from the cached features
    of the evaluation split for a dataset image, computed for an upload."""
    if st.session_state.get("nn_src") == "upload":
        feat = extract_features(ctx.ckpt, image[None])[0]  # both on the checkpoint's runtime
        return feat, single_view_predictions(ctx.ckpt, image[None], [caption]).top_k(5)[0]
    idx = int(st.query_params["img"])
    preds = single_view_predictions(ctx.ckpt, None, [caption], cached=eval_fs, rows=[idx])
    return eval_fs.features[idx], preds.top_k(5)[0]


@st.fragment
def figure_four(ctx: Context, split: str, train_ds: ImageDataset, train_fs: FeatureSet, eval_ds: ImageDataset,
                eval_fs: FeatureSet) -> None:
    """The chosen image's nearest training images and the split's neighbour purity: what the
    feature distance changes, rerun on its own (the map below stays as it is)."""
    classes = ctx.ckpt.meta.classes
    names = class_display_names(classes)
    shown = split_display_name(split)
    kmax = min(K_MAX, len(train_ds))
    c1, c2, c3 = st.columns([2, 2, 1.6], vertical_alignment="bottom")  # room for the button's label at 1280 px
    metric = c1.selectbox("Feature distance", METRICS, key="nn_metric",
                          index=METRICS.index(url_choice("metric", METRICS, METRICS[0])),
                          help="Pixel neighbours always use Euclidean distance.\n\n"
                               + explain("euclidean distance", "cosine distance"))
    if st.session_state.get("nn_k", 1) > kmax:  # another model's larger training set
        del st.session_state["nn_k"]
    k = kmax if kmax < 2 else c2.slider(
        "Neighbours shown (k)", 1, kmax, key="nn_k",
        value=url_int("k", 1, kmax, min(6, kmax)))
    c3.button(f"Random {shown} image", on_click=_random_image, args=(len(eval_ds),), key="nn_random",
              icon=":material/casino:")
    st.query_params["metric"] = metric
    st.query_params["k"] = str(k)

    picked = pick_image(ctx, "nn")
    if picked is not None:
        image, caption, label = picked
        feat, top = _query(ctx, image, caption, eval_fs)
        fn = neighbour_index(ctx, "features", train_fs.features).query(feat, k, metric)
        pn = neighbour_index(ctx, "pixels", train_ds.images).query(pixel_vectors(image), k, "euclidean")
        title = caption + (f" (true class: {names[label]})" if label is not None and label >= 0 else "")
        query, top_col = st.columns([1, 2])
        big = pictures(image[None], 128)[0]
        query.image(big, caption=title, width=big.shape[1])
        with top_col:
            static_table(pd.DataFrame([(class_display_name(c), f"{p:.1%}") for c, p in top],
                                      columns=["top predictions", "probability"]))
        for what, found, fmt, space in (("nearest in feature space", fn, ".2f", f"{metric} distance"),
                                        ("nearest in pixel space", pn, ".0f", "Euclidean distance")):
            st.markdown(f"**{what}** ({space})")
            near = pictures(train_ds.images[found.indices[0]])
            st.image(near, width=near[0].shape[1],
                     caption=[f"{names[train_ds.labels[i]]} {d:{fmt}}" for i, d in zip(found.indices[0],
                                                                                        found.distances[0])])
        st.caption(f"Top-5 probabilities of a {SINGLE_VIEW}, as on the Mistakes and Attributions pages. "
                   "Pixel distances are Euclidean over 0-255 values. Under "
                   "each neighbour: its class and distance.")

    st.subheader("Neighbour purity")
    if eval_ds.labelled:
        options = [v for v in PURITY_K if v <= len(train_ds)]
        pk = st.select_slider(f"Neighbours per {shown} image", options,
                              value=WARM_PURITY_K if WARM_PURITY_K in options else options[-1],
                              key="nn_pk")
        compare = st.toggle("Compare with raw pixels", value=True, key="nn_pix",
                            help="The same measure with neighbours found by Euclidean distance between "
                                 "the images' pixels: how much the learned features add.")
        with st.spinner(f"Finding the {pk} nearest training images of {len(eval_fs):,} {shown} images..."):
            key = (ctx.ckpt.sha256, str(ctx.data), split)
            res = purity(*key, "features", pk, metric, ctx.ckpt, neighbour_index(ctx, "features", train_fs.features),
                         train_ds, eval_ds, eval_fs)
            pix = None
            if compare:
                pix = purity(*key, "pixels", pk, "euclidean", ctx.ckpt, neighbour_index(ctx, "pixels", train_ds.images),
                             train_ds, eval_ds, eval_fs)
        st.altair_chart(purity_chart(res, classes, pixels=pix), width="stretch")
        sample = ("" if res.rows is None else f" Measured on a seeded sample of {len(res.rows):,} of the "
                  f"{len(eval_ds):,} {shown} images: the search costs in proportion, and 200 images a class give "
                  "each bar within a few points.")
        st.caption(f"For each {shown} image, the share of its {pk} nearest training images ({metric} "
                   "distance between penultimate features"
                   + ("; grey: Euclidean distance between pixels" if pix is not None else "")
                   + ") with the same class, averaged per class." + sample,
                   help=explain("neighbour purity", "penultimate features"))
    else:
        st.info(f"The {shown} images carry no labels, so purity cannot be measured.")


SLIDE_PX = (1216, 569)  # the slide figure's room at 1280x720: text drawn here shows at its size


def five_queries(ctx: Context, train_ds: ImageDataset, train_fs: FeatureSet, eval_ds: ImageDataset,
                 eval_fs: FeatureSet, seed: int, width: int = 1600, height: int = 900) -> QueryNeighbours | None:
    """AlexNet's figure 4 as printed: five test images (of different classes, chosen with
    ``seed``), each with its six nearest training images in the penultimate features; drawn
    with ``st.image``. None when there are too few images."""
    k = min(6, len(train_ds))
    if k < 1 or len(eval_ds) < 1:
        return None
    index = neighbour_index(ctx, "features", train_fs.features)
    rows = query_neighbours(index, eval_fs.features, np.asarray(train_ds.labels),
                            np.asarray(eval_ds.labels), count=5, k=k, seed=seed)
    picture = query_rows_picture(rows, eval_ds.images, train_ds.images, ctx.ckpt.meta.classes, width, height)
    st.image(np.asarray(picture.image), width="stretch")
    return rows


def present_neighbours(ctx: Context, split: str, train_ds: ImageDataset, train_fs: FeatureSet,
                       eval_ds: ImageDataset, eval_fs: FeatureSet) -> None:
    """Present mode: AlexNet's figure 4 as printed, as a slide: five held-out images of five
    classes (seeded by the URL's ``q5``; the deck's rows for 0), each with its six nearest
    training images in the penultimate features; the text adds how many raw-pixel neighbours
    would share the class (the numbers of the deck's caption, in one line)."""
    step = current_lecture_step()
    classes = ctx.ckpt.meta.classes
    seed = url_int("q5", 0, 10**6, 0)
    st.query_params["q5"] = str(seed)
    k = min(6, len(train_ds))
    with slide(step.title if step is not None else "Nearest neighbours"):
        if k < 1 or not len(eval_ds):
            slide_text("No images to search: this slide needs the dataset (or the checkpoint's demo gallery).")
            return
        rows = query_neighbours(neighbour_index(ctx, "features", train_fs.features), eval_fs.features,
                                np.asarray(train_ds.labels), np.asarray(eval_ds.labels), count=5, k=k, seed=seed)
        pix = neighbour_index(ctx, "pixels", train_ds.images).query(pixel_vectors(eval_ds.images[rows.queries]), k)
        pixel_same = int((np.asarray(train_ds.labels)[pix.indices] == rows.query_labels[:, None]).sum())
        labelled = bool((rows.query_labels >= 0).any())
        slide_text(f"{rows.same_count} of the {rows.same.size} nearest training images share their query's class "
                   f"in the network's features; in raw pixels, {pixel_same} would." if labelled else
                   f"{len(rows)} {split_display_name(split)} images (left) and their {rows.k} nearest training "
                   "images in the network's features.")
        canvas = TextCanvas(*SLIDE_PX)
        draw_query_rows(canvas, (0, 0, *SLIDE_PX), rows, eval_ds.images, train_ds.images, classes, min_thumb=64)
        slide_figure([Panel(np.asarray(canvas.image), sharp=False)])


ctx = sidebar()
if not present_on():
    st.title("Nearest neighbours")
if ctx is not None and present_on() and need_data(ctx, quiet=True):
    split = eval_split(ctx)
    train, evaluation = features(ctx, "train"), features(ctx, split)
    if train is not None and evaluation is not None:
        present_neighbours(ctx, split, *train, *evaluation)
elif ctx is not None and need_data(ctx):
    split = eval_split(ctx)
    train, evaluation = features(ctx, "train"), features(ctx, split)
    if train is not None and evaluation is not None:
        train_ds, train_fs = train
        eval_ds, eval_fs = evaluation
        classes = ctx.ckpt.meta.classes
        names = class_display_names(classes)
        shown = split_display_name(split)
        st.caption(f"AlexNet's figure 4: the images of the training split ({len(train_ds):,}) whose "
                   f"{train_fs.features.shape[1]}-d penultimate features are nearest to the {shown} image's, "
                   "beside those nearest in raw pixels. Feature neighbours share the class even when "
                   "pose and colour differ; pixel neighbours mostly share colour and layout.",
                   help=explain("penultimate features", "d (dimensions)"))
        figure_four(ctx, split, train_ds, train_fs, eval_ds, eval_fs)

        st.subheader("Five queries at once, as in the paper")
        seed = url_int("q5", 0, 10**6, 0)
        if st.button("New queries", key="nn_q5_new",
                     help=f"Five other {shown} images, of five classes, chosen at random"):
            seed = random.randrange(10**6)
        st.query_params["q5"] = str(seed)
        rows = five_queries(ctx, train_ds, train_fs, eval_ds, eval_fs, seed)
        if rows is not None and (rows.query_labels >= 0).any():
            st.caption(f"{shown.capitalize()} images #{', #'.join(map(str, rows.queries))} (left), "
                       f"each with its {rows.k} nearest "
                       f"training images in the network's features: {rows.same_count} of {rows.same.size} "
                       "share the query's class. A link with the same q5 shows the same rows.")

        st.subheader(f"Map of the {shown} split")
        methods = ["pca", "tsne", "umap"]
        labels = {"pca": "PCA", "tsne": "t-SNE",
                  "umap": "UMAP" if umap_available() else "UMAP-like (spectral embedding)"}
        method = st.radio("Projection", methods, horizontal=True, key="nn_proj", format_func=labels.get,
                          index=methods.index(url_choice("proj", methods, methods[0])),
                          help="PCA is instant; t-SNE and UMAP first reduce to 50 dimensions with PCA and "
                               "take from seconds to a few minutes on 10,000 images (computed once).\n\n"
                               + explain("projection"))
        st.query_params["proj"] = method
        with st.spinner(f"Projecting {len(eval_fs):,} points with {labels[method]} (once per model)..."):
            proj = projection(ctx.ckpt.sha256, str(ctx.data), split, method, ctx.ckpt, eval_ds, eval_fs)
        if method == "umap" and proj.method == "spectral":
            st.caption("umap-learn is not installed: this is the spectral embedding of the same "
                       "15-nearest-neighbour graph that UMAP starts from (`pip install umap-learn` for UMAP).")
        event = st.altair_chart(map_chart(ctx.ckpt.sha256, str(ctx.data), split, method, proj, eval_fs,
                                          tuple(classes)), key="nn_map", width="stretch",
                                on_select="rerun", selection_mode=["pick", "box"])
        chosen = event.selection if event is not None else {}
        rows = [int(p["row"]) for p in chosen.get("pick") or [] if "row" in p] or rows_in_box(proj, chosen.get("box"))
        if rows:
            st.caption(f"{len(rows)} selected" + (f"; the first {MAP_SHOWN}:" if len(rows) > MAP_SHOWN else ":"))
            cols = st.columns(8)
            for j, i in enumerate(rows[:MAP_SHOWN]):
                pred = int(eval_fs.logits[i].argmax())
                cols[j % 8].image(eval_ds.images[i], width=96,
                                  caption=f"#{i} {names[eval_ds.labels[i]] if eval_ds.labels[i] >= 0 else ''}"
                                          f" → {names[pred]}")
        else:
            st.caption("Click a point (shift-click for more), or drag a box around a cluster, to see its images.")

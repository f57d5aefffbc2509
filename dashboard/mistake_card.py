"""The Mistakes page's mistake card: one image's story (the verdict, the class maps and the
contrastive map, the units that pushed the prediction, the nearest training images), opened by
the page's "Mistake card" buttons and kept in the URL as ``card``."""

from __future__ import annotations

import numpy as np
import streamlit as st

from dashboard import warm_up
from dashboard.glossary import explain
from dashboard.state import Context, features, neighbour_index, on_all_cores, progress_bar
from dashboard.widgets import conv_layers, unit_link
from cnnviz.basis import split_display_name
from cnnviz.data import ImageDataset
from cnnviz.figures.attribution import overlay
from cnnviz.figures.clicks import enlarge
from cnnviz.inspect.attribution import default_grad_cam_layer
from cnnviz.inspect.features import FeatureSet
from cnnviz.inspect.mistakes import (DataIssues, MistakeCard, NearDuplicateThreshold, cached_near_duplicate_threshold,
                                     is_out_of_sample, mistake_card)
from cnnviz.inspect.receptive_field import layer_rf
from cnnviz.inspect.units import UnitExamples, cached_unit_examples, unit_crop, unit_patch
from cnnviz.inspect.verdict import card_verdict


@st.cache_data(show_spinner="Calibrating the near-duplicate distance (once)...", max_entries=8)
@on_all_cores
def _threshold(sha: str, data: str, _ckpt, _train: ImageDataset) -> NearDuplicateThreshold:
    warm_up.wait_for(_ckpt, data, "near-duplicate threshold")
    return cached_near_duplicate_threshold(_ckpt, _train)


@st.cache_data(show_spinner=False, max_entries=32)
def _card(sha: str, data: str, split: str, index: int, layer: str, threshold: float, _ckpt, _image: np.ndarray,
          _true: int, _logits: np.ndarray, _feats: np.ndarray, _index, _train_labels: np.ndarray,
          flags: tuple[str, ...]) -> MistakeCard:
    return mistake_card(_ckpt.model, _image, _ckpt.meta.normalization, _true, _logits, _feats, _index,
                        _train_labels, threshold, layer=layer, index=index, flags=flags)


def open_card(index: int) -> None:
    st.query_params["card"] = str(index)


def close_card() -> None:
    st.query_params.pop("card", None)


def show_card(ctx: Context, ds: ImageDataset, fs: FeatureSet, split: str, i: int, issues: DataIssues | None,
              names: list[str]) -> None:
    """The mistake card of image ``i``: the verdict (why, in sentences built from what was
    measured), top-3, Grad-CAM for the predicted and the true class and the contrastive map,
    the units that pushed the prediction as icons, and the nearest training images."""
    got = features(ctx, "train")
    convs = conv_layers(ctx)
    if got is None or not convs or int(fs.labels[i]) < 0:
        return
    train, tfs = got
    threshold = _threshold(ctx.ckpt.sha256, str(ctx.data), ctx.ckpt, train)
    index = neighbour_index(ctx, "features", tfs.features)
    flags = issues.flags(i) if issues is not None else ()
    layer = default_grad_cam_layer(ctx.ckpt.model)
    card = _card(ctx.ckpt.sha256, str(ctx.data), split, i, layer, threshold.threshold, ctx.ckpt, ds.images[i],
                 int(fs.labels[i]), fs.logits[i], fs.features[i], index, tfs.labels, flags)
    with st.container(border=True, key="m_card"):
        head, close = st.columns([5, 1])
        verdict = (f"{names[card.true]} predicted as {names[card.pred]}" if card.pred != card.true else
                   f"{names[card.true]}, classified right")
        head.markdown(f"#### Mistake card: {split_display_name(split)} #{i}, {verdict}")
        close.button("Close", key="m_card_close", on_click=close_card, icon=":material/close:")
        sample = "out-of-sample" if is_out_of_sample(split) else "in-sample (a training image)"
        marks = [f":blue-badge[{sample}]"] + [f":orange-badge[{f}]" for f in card.flags]
        if card.likely_label_error:
            marks.append(":orange-badge[label worth a second look]")
        st.markdown(" ".join(marks), help=explain("out-of-sample", "near-duplicate") + "\n\nThe label is worth a "
                                          "second look only on evidence: cleanlab's flag, or a near-duplicate "
                                          "training image with another label.")
        st.markdown("\n".join(f"- {line}" for line in card_verdict(card, names)))
        cols = st.columns(4)
        side = 176
        cols[0].image(enlarge(ds.images[i], side)[0], width=side, caption=" · ".join(f"{names[c]} {p:.1%}"
                                                                                    for c, p in card.top))
        cols[1].image(enlarge(overlay(ds.images[i], card.cam_pred), side)[0], width=side,
                      caption=f"Grad-CAM: evidence for {names[card.pred]} (predicted)")
        cols[2].image(enlarge(overlay(ds.images[i], card.cam_true), side)[0], width=side,
                      caption=f"Grad-CAM: evidence for {names[card.true]} (true)")
        if card.contrast is not None:
            cols[3].image(enlarge(overlay(ds.images[i], card.contrast.heat), side)[0], width=side,
                          caption=f"Contrastive: why {names[card.pred]} rather than {names[card.true]} "
                                  "(Grad-CAM of the difference of their scores)")
        st.caption(f"Heat maps on {card.layer}: red where its features raised the class's score most.",
                   help=explain("Grad-CAM", "contrastive map"))
        order = ctx.ckpt.model.layer_names()
        conv = [c for c in convs if order.index(c) <= order.index(card.layer)][-1]  # the convolution feeding it
        st.markdown(f"**The units of {conv} that pushed {names[card.pred]} most**, each with the training patch "
                    "it fires on most",
                    help=explain("channel", "activation x gradient") + "\n\n**push**: the channel's activation "
                         "x gradient on this image.")
        icons = unit_icons(ctx, train, conv, [int(c) for c in card.channels])
        ucols = st.columns(len(card.channels))
        for col, ch, v, icon in zip(ucols, card.channels, card.contributions, icons):
            if icon is not None:
                col.image(icon, width=72)
            col.caption(f"unit {int(ch)} · push {v:+.2g}")
            unit_link(ctx, conv, int(ch), col, label=f"Unit {int(ch)}")
        st.markdown(f"**Nearest training images** (cosine distance of the penultimate features; near-duplicate "
                    f"below {threshold.threshold:.3g}, the {threshold.percentile:.0f}th percentile of the distance "
                    f"between {threshold.n} images and lightly changed copies of themselves)",
                    help=explain("penultimate features", "cosine distance", "near-duplicate"))
        ncols = st.columns(len(card.neighbours))
        for col, r, lab, d, near in zip(ncols, card.neighbours, card.neighbour_labels, card.neighbour_distances,
                                        card.near_duplicate):
            col.image(enlarge(train.images[int(r)], 128)[0], width=128)
            mark = " · :red[near-duplicate]" if near else ""
            agree = " (= predicted)" if int(lab) == card.pred else ""
            col.caption(f"{names[int(lab)]}{agree} · {d:.3f}{mark}")


@st.cache_resource(show_spinner=False, max_entries=8)
@on_all_cores
def _unit_examples(sha: str, data: str, layer: str, _ckpt, _train: ImageDataset) -> UnitExamples:
    """Every training image's peak in ``layer`` (one pass, with a progress bar; cached on disk
    and shared with the Units page)."""
    bar = progress_bar(f"Peaks of every channel of {layer} over {len(_train):,} training images, for the unit "
                       "icons (once; cached after)")
    try:
        return cached_unit_examples(_ckpt, _train, "train", layer, progress=bar)
    finally:
        bar.close()


def unit_icons(ctx: Context, train: ImageDataset, layer: str, channels: list[int]) -> list[np.ndarray | None]:
    """Each channel's icon: the patch of the training image it fires on most, cropped to what it
    sees (the Units page's top patch); None for a layer without a receptive field to follow."""
    try:
        ex = _unit_examples(ctx.ckpt.sha256, str(ctx.data), layer, ctx.ckpt, train)
        rf = layer_rf(ctx.ckpt.model, layer, ctx.ckpt.meta.input_size)
    except (ValueError, RuntimeError):
        return [None] * len(channels)
    size = ctx.ckpt.meta.input_size
    icons = []
    for ch in channels:
        top = int(ex.top(ch, 1)[0])
        icons.append(enlarge(unit_patch(train.images[top], unit_crop(rf, *ex.peak_at(top, ch), size)), 72)[0])
    return icons

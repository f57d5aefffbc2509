"""Mistakes page: the confusion matrix of the evaluation split, per-class precision/recall/F1,
the most confused pairs, and the images of any cell with links to explain each one."""

from __future__ import annotations

import numpy as np
import streamlit as st

from dashboard.state import (
    Context, eval_split, features, need_data, sidebar, url_choice, url_int,
)
from dashboard import warm_up
from dashboard.glossary import explain
from dashboard.mistake_card import open_card, show_card
from dashboard.present import Panel, current_lecture_step, present_on, slide, slide_figure, slide_text
from cnnviz.basis import accuracy_basis, split_display_name
from cnnviz.class_names import class_display_names
from cnnviz.figures.clicks import enlarge
from cnnviz.figures.confusion import class_metrics_chart, confusion_chart, draw_confusion, most_confused
from cnnviz.figures.pictures import TextCanvas
from cnnviz.lecture_slides import draw_mistakes
from cnnviz.inspect.confusion import (ConfusionResult, cell_examples, class_block, confused_block,
                                     confusion_from_logits, most_confused_pairs, rate_interval)
from cnnviz.inspect.features import FeatureSet
from cnnviz.inspect.mistakes import (
    ORDERS, DataIssues, cached_data_issues, rank_mistakes,
)
from cnnviz.data import ImageDataset
from cnnviz.single_view import single_view_predictions

PER_PAGE = 24
COLS = 6
THUMB = 128  # px: small CIFAR images are enlarged (nearest neighbour) so faces can be seen


@st.cache_data(show_spinner=False, max_entries=8)
def confusion(sha: str, data: str, split: str, _fs: FeatureSet, classes: tuple[str, ...]) -> ConfusionResult:
    """Confusion of the split's single-view predictions (the logits cached with its features)."""
    return confusion_from_logits(_fs.labels, _fs.logits, list(classes))


ORDER_NAMES = {"confidence": "Confidence in the wrong class", "margin": "Margin over the true class",
               "label_issue": "Label issue (cleanlab)"}


@st.cache_resource(show_spinner=False, max_entries=6)
def _issues(sha: str, data: str, split: str, _ckpt, _ds: ImageDataset, _fs: FeatureSet) -> DataIssues | str:
    if split != "train":  # the warm-up looks at the held-out images
        warm_up.wait_for(_ckpt, data, "label issues")
    try:
        with st.spinner(f"Looking for label errors, near-duplicates and outliers among the "
                        f"{split_display_name(split)} images "
                        "(cleanlab; once, cached on disk after)..."):
            return cached_data_issues(_ckpt, _ds, split, _fs.features, _fs.logits)
    except ValueError as e:
        return f"No cleanlab checks on these images: {e}."


def data_issues(ctx: Context, ds: ImageDataset, fs: FeatureSet, split: str) -> DataIssues | str:
    """cleanlab's findings on the split, or a line saying why there are none."""
    return _issues(ctx.ckpt.sha256, str(ctx.data), split, ctx.ckpt, ds, fs)


def _set_cell(true: int, pred: int) -> None:
    st.session_state["m_true"], st.session_state["m_pred"] = true, pred


def _on_heatmap_click() -> None:
    cells = st.session_state["m_heat"]["selection"].get("cell") or []
    if cells and "true" in cells[0] and "pred" in cells[0] and int(cells[0]["pred"]) >= 0:  # -1: other classes
        _set_cell(int(cells[0]["true"]), int(cells[0]["pred"]))


def _on_pair_click(pairs) -> None:
    """A pair's button picks its cell; the button lets go again, so a second click works too."""
    i = st.session_state.get("m_pair")
    if i is not None:
        _set_cell(pairs[i].true, pairs[i].pred)
        st.session_state["m_pair"] = None


@st.fragment
def cell_images(ctx: Context, ds: ImageDataset, fs: FeatureSet, split: str, issues: DataIssues | None,
                names: list[str]) -> None:
    """The chosen cell's images in the chosen order, with the mistake card: reruns on its own
    when the cell, the order or the page of images changes (the charts above stay as drawn)."""
    k = len(names)
    c1, c2, c3 = st.columns(3)
    true = c1.selectbox("True class", range(k + 1), format_func=lambda i: "any class" if i == k else names[i],
                        key="m_true")
    pred = c2.selectbox("Predicted as", range(k + 1), format_func=lambda i: "any class" if i == k else names[i],
                        key="m_pred")
    st.query_params["true"], st.query_params["pred"] = str(true), str(pred)
    orders = [o for o in ORDERS if o != "label_issue" or issues is not None]
    order = c3.selectbox("Order mistakes by", orders, key="m_order", format_func=ORDER_NAMES.__getitem__,
                         index=orders.index(url_choice("order", orders, "confidence")),
                         help=explain("confidence", "margin", "label issue"))
    st.query_params["order"] = order
    keep = {"model": ctx.name, "data": str(ctx.data)}
    if true == pred and true < k:  # a diagonal cell: the correct ones, most confident first
        examples = [(ex.index, ex.confidence, ex.top, ()) for ex in
                    cell_examples(fs.labels, fs.logits, true, pred, ids=fs.ids, top_k=3)]
        what = f"{names[true]} images correctly classified, most confident first"
    else:
        ranked = rank_mistakes(fs.labels, fs.logits, order, None if true == k else true,
                               None if pred == k else pred, ids=fs.ids, issues=issues)
        probs = single_view_predictions(ctx.ckpt, None, [fs.ids[m.index] for m in ranked], cached=fs,
                                        rows=[m.index for m in ranked]).probs if ranked else None
        examples = [(m.index, m.confidence, [(int(c), float(probs[j, c])) for c in np.argsort(-probs[j])[:3]],
                     m.flags) for j, m in enumerate(ranked)]
        who = "images of any class" if true == k else f"{names[true]} images"
        verdict = "wrongly classified" if pred == k else f"predicted as {names[pred]}"
        what = f"{who} {verdict}, by {ORDER_NAMES[order].lower()}"
    card = url_int("card", 0, len(ds) - 1)
    if card is not None:
        show_card(ctx, ds, fs, split, card, issues, names)
    st.markdown(f"**{len(examples)}** {what}.")
    if examples:
        pages = (len(examples) + PER_PAGE - 1) // PER_PAGE
        page = (st.number_input(f"Page (of {pages})", 1, pages, 1, key=f"m_page_{true}_{pred}_{order}")
                if pages > 1 else 1)
        cols = st.columns(COLS)
        for j, (i, conf, top, flags) in enumerate(examples[(page - 1) * PER_PAGE: page * PER_PAGE]):
            with cols[j % COLS]:
                st.image(enlarge(ds.images[i], THUMB)[0], width=THUMB, caption=f"#{i} · {conf:.0%}")
                st.caption(" · ".join(f"{names[c]} {p:.0%}" for c, p in top)
                           + "".join(f"  \n:orange[{f}]" for f in flags), help=fs.ids[i])
                if int(fs.labels[i]) != int(top[0][0]):
                    st.button("Mistake card", key=f"m_card_{i}", icon=":material/quiz:",
                              on_click=open_card, args=(i,), help="Heatmaps, nearest training images and "
                              "the channels behind this prediction")
                st.page_link("views/attributions.py", label="Attribution", icon=":material/visibility:",
                             help=f"Which pixels made the model say {names[int(top[0][0])]}",
                             query_params={**keep, "img": str(i), "target": str(int(top[0][0]))})
                st.page_link("views/neighbours.py", label="Neighbours", icon=":material/scatter_plot:",
                             help="Its nearest training images", query_params={**keep, "img": str(i)})


BLOCK = 20  # classes a readable matrix shows at once


def pick_classes(result: ConfusionResult, names: list[str]) -> list[int] | None:
    """With more than ``BLOCK`` classes, which to show (kept in the URL as ``classes`` and
    ``cls``): the ones most involved in mistakes, one class and those it is confused with, or
    all of them as colour only. None: all, with their values (``BLOCK`` classes or fewer)."""
    k = result.num_classes
    if k <= BLOCK:
        return None
    views = ["confused", "class", "all"]
    labels = {"confused": f"the {BLOCK} most confused", "class": "one class and its confusions",
              "all": f"all {k} (colour only)"}
    view = st.radio("Classes shown", views, horizontal=True, key="m_view", format_func=labels.__getitem__,
                    index=views.index(url_choice("classes", views, "confused")),
                    help=f"{k} classes do not fit one readable matrix: pick a block of at most {BLOCK} to see "
                         "every name and count; the last column holds the rest of each row.")
    st.query_params["classes"] = view
    if view == "all":
        st.caption(f"All {k} classes, colour only: hover a cell for its names and count, or pick a block "
                   "above to read them.")
        return list(range(k))
    if view == "confused":
        shown = confused_block(result, BLOCK)
        st.caption(f"The {BLOCK} classes most involved in mistakes (their images taken for others, or others' "
                   f"for them), of {k}.")
        return shown
    cls = st.selectbox("Class", range(k), format_func=names.__getitem__, key="m_block_cls",
                       index=url_int("cls", 0, k - 1, 0))
    st.query_params["cls"] = str(cls)
    shown = class_block(result, cls, BLOCK)
    st.caption(f"{names[cls]} and the {len(shown) - 1} classes it is confused with, most images first.")
    return shown


def pair_evidence(ctx: Context, result: ConfusionResult, pair, names: list[str], split: str) -> str:
    """How much the most confused pair rests on: its count of the true class's images, the 95%
    interval of that rate, and on few images (or the demo gallery) a word that it is thin."""
    lo, hi = rate_interval(pair.count, int(result.support[pair.true]))
    text = (f"The most confused pair, {names[pair.true]} taken for {names[pair.pred]}, is {pair.count} of "
            f"{int(result.support[pair.true])} {names[pair.true]} images ({pair.rate:.0%}; 95% interval "
            f"{lo:.0%} to {hi:.0%}).")
    if pair.count < 10:
        text += f" Thin evidence: {pair.count} image{'s' if pair.count != 1 else ''} could be chance."
    if ctx.choice is not None and ctx.choice.gallery is not None:
        text += (f" These are the demo gallery's {int(result.support.sum()):,} {split} images; the full dataset "
                 "(sidebar) gives every pair more.")
    return text


SLIDE_PX = (1216, 569)  # the slide figure's room at 1280x720: text drawn here shows at its size


def present_mistakes(ctx: Context) -> None:
    """Present mode: the confusion matrix of the held-out images beside their most confident
    mistakes, as a slide."""
    step = current_lecture_step()
    split = eval_split(ctx)
    got = features(ctx, split)
    with slide(step.title if step is not None else "Mistakes"):
        if got is None or not got[0].labelled:
            slide_text(f"The {split_display_name(split)} images carry no labels: there are no mistakes to show.")
            return
        ds, fs = got
        classes = list(ctx.ckpt.meta.classes)
        names = class_display_names(classes)
        result = confusion(ctx.ckpt.sha256, str(ctx.data), split, fs, tuple(classes))
        w, h = SLIDE_PX
        canvas = TextCanvas(w, h)
        drawn, _ = draw_confusion(canvas, (0, 0, w - 480, h), result, 20, max_cell=56 if len(classes) <= 12 else 40)
        probs = single_view_predictions(ctx.ckpt, None, fs.ids, cached=fs).probs
        draw_mistakes(canvas, (drawn + 40, 0, w, h), ds.images, ds.labels, probs, classes)
        worst = most_confused(result)
        pair = "" if worst is None else f"; most confused: {names[worst[0]]} → {names[worst[1]]} ({worst[2]})"
        gallery = ctx.choice is not None and ctx.choice.gallery is not None
        where = "demo gallery, one view each" if gallery else "one view each"
        # one line on a slide: the basis in short (the page's caption has it in full; the matrix
        # itself says rows are true, columns predicted)
        slide_text(f"Accuracy {result.accuracy:.1%} on {len(ds):,} {split_display_name(split)} images ({where}){pair}.")
        slide_figure([Panel(np.asarray(canvas.image), sharp=False)])


ctx = sidebar()
if not present_on():
    st.title("Mistakes")
if ctx is not None and present_on() and need_data(ctx, quiet=True):
    present_mistakes(ctx)
elif ctx is not None and need_data(ctx):
    held_out = eval_split(ctx)
    split = st.radio("Images", [held_out, "train"], horizontal=True, key="m_split",
                     index=[held_out, "train"].index(url_choice("split", [held_out, "train"], held_out)),
                     format_func=lambda s: "training images (in-sample)" if s == "train" else
                     f"held-out {split_display_name(s)} images (out-of-sample)",
                     help="Held-out images were never trained on: their mistakes and label scores are honest. "
                          "On training images the model is overconfident, but label errors in its training data "
                          "show there too.")
    st.query_params["split"] = split
    got = features(ctx, split)
    if got is not None:
        ds, fs = got
        classes = list(ctx.ckpt.meta.classes)
        k = len(classes)
        names = class_display_names(classes)
        if not ds.labelled:
            st.info(f"The {split_display_name(split)} images carry no labels, so there is "
                    "nothing to compare the predictions "
                    "with: point the sidebar at a dataset with a labelled test split (or at the training data, "
                    "whose held-out validation part is then used).")
            st.stop()
        result = confusion(ctx.ckpt.sha256, str(ctx.data), split, fs, tuple(classes))
        pairs = most_confused_pairs(result, n=15)
        basis = accuracy_basis(len(ds), split, ctx.choice.gallery if ctx.choice is not None else None)
        st.caption(f"{basis.accuracy_sentence(result.accuracy)}. Rows are the true class, columns the prediction; "
                   "click a cell (or a pair) to see its images below.")

        # The chosen cell lives in the URL (true, pred); the click callbacks above set it too.
        if not all(isinstance(st.session_state.get(key), int) and 0 <= st.session_state[key] <= k
                   for key in ("m_true", "m_pred")):
            qt, qp = url_int("true", 0, k), url_int("pred", 0, k)  # k: any class
            if qt is not None and qp is not None:
                _set_cell(qt, qp)
            else:
                _set_cell(*((pairs[0].true, pairs[0].pred) if pairs else (0, 0)))

        st.subheader("Confusion matrix")
        shown = pick_classes(result, names)
        norm = st.radio("Show", ["counts", "row-normalised"], horizontal=True, key="m_norm",
                        index=url_choice("norm", [0, 1], 0),
                        help="Row-normalised: the share of each true class given to each prediction.")
        norm = norm == "row-normalised"
        st.query_params["norm"] = "1" if norm else "0"
        st.altair_chart(confusion_chart(result, normalised=norm, classes=shown), key="m_heat", width="content",
                        on_select=_on_heatmap_click, selection_mode="cell")

        if pairs:
            # buttons rather than a selectable table: the data grid's browser code cost the
            # page's first render about a tenth of the floor page (measured on Model)
            st.pills("Most confused pairs: true → predicted, images (share of the true class)",
                     range(len(pairs)), key="m_pair", on_change=_on_pair_click, args=(pairs,),
                     format_func=lambda i: f"{names[pairs[i].true]} → {names[pairs[i].pred]}: "
                                           f"{pairs[i].count} ({pairs[i].rate:.0%})",
                     help="A click shows that cell's images below.")
            st.caption(pair_evidence(ctx, result, pairs[0], names, split), help=explain("95% interval"))
        else:
            st.markdown("**Most confused pairs**")
            st.success("No mistakes at all on this split.")
        if shown is not None and len(shown) > BLOCK:  # all classes: the bars of the lowest F1 only
            shown = sorted(np.lexsort((np.arange(k), np.nan_to_num(result.f1)))[:BLOCK].tolist())
            st.caption(f"Precision, recall and F1 of the {BLOCK} classes with the lowest F1, of {k}.")
        st.caption("How well each class is recognised, the weakest first.", help=explain("precision", "recall", "F1"))
        st.altair_chart(class_metrics_chart(result, classes=shown), width="stretch")

        st.subheader("Images of a cell")
        issues = data_issues(ctx, ds, fs, split)
        if isinstance(issues, str):
            st.caption(issues)
            issues = None
        else:
            sample = "out-of-sample: the model never trained on these images" if issues.out_of_sample else \
                "in-sample: the model trained on these images, so its probabilities are overconfident and " \
                "fewer label errors show"
            st.caption(f"cleanlab flags **{int(issues.is_label_issue.sum()):,}** suspected label errors, "
                       f"**{int(issues.is_near_duplicate.sum()):,}** near-duplicates and "
                       f"**{int(issues.is_outlier.sum()):,}** outliers among these {len(ds):,} images "
                       f"(predictions {sample}).")
        cell_images(ctx, ds, fs, split, issues, names)

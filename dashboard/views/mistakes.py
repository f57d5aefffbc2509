"""Mistakes page: the confusion matrix of the evaluation split, per-class precision/recall/F1,
the most confused pairs, and the images of any cell with links to explain each one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard.state import eval_split, features, need_data, sidebar, url_choice, url_int
from cnnviz.figures.confusion import class_metrics_figure, confusion_heatmap, readable_class_names
from cnnviz.inspect.confusion import ConfusionResult, cell_examples, confusion_from_logits, most_confused_pairs
from cnnviz.inspect.features import FeatureSet

PER_PAGE = 24
COLS = 6
THUMB = 128  # px: small CIFAR images are enlarged (nearest neighbour) so faces can be seen


@st.cache_data(show_spinner=False, max_entries=8)
def confusion(sha: str, data: str, split: str, _fs: FeatureSet, classes: tuple[str, ...]) -> ConfusionResult:
    """Confusion of the split's single-view predictions (the logits cached with its features)."""
    return confusion_from_logits(_fs.labels, _fs.logits, list(classes))


def clickable(fig: go.Figure, k: int) -> go.Figure:
    """Invisible square markers on the cell centres: Streamlit reports clicks on scatter points
    but not on heatmap cells. Each carries ``[true, predicted]`` as customdata."""
    heat = fig.data[0]
    fig.add_trace(go.Scatter(
        x=[heat.x[j] for i in range(k) for j in range(k)], y=[heat.y[i] for i in range(k) for j in range(k)],
        customdata=[[i, j] for i in range(k) for j in range(k)],
        hovertext=[heat.hovertext[i][j] for i in range(k) for j in range(k)], hoverinfo="text",
        mode="markers", marker=dict(symbol="square", size=max(8, min(40, 520 // k)), opacity=0, color="black"),
        selected=dict(marker=dict(opacity=0.25)), unselected=dict(marker=dict(opacity=0)), showlegend=False,
    ))
    return fig


def _set_cell(true: int, pred: int) -> None:
    st.session_state["m_true"], st.session_state["m_pred"] = true, pred


def _on_heatmap_click() -> None:
    points = st.session_state["m_heat"]["selection"]["points"]
    if points and points[0].get("customdata"):
        _set_cell(*(int(v) for v in points[0]["customdata"][:2]))


def _on_pair_click(pairs) -> None:
    rows = st.session_state["m_pairs"]["selection"]["rows"]
    if rows:
        _set_cell(pairs[rows[0]].true, pairs[rows[0]].pred)


def enlarge(image: np.ndarray, width: int = THUMB) -> np.ndarray:
    """Repeat pixels so a small image is about ``width`` px wide (sharp, not blurred)."""
    s = max(1, round(width / image.shape[1]))
    return image.repeat(s, 0).repeat(s, 1) if s > 1 else image


ctx = sidebar()
st.title("Mistakes")
if ctx is not None and need_data(ctx):
    split = eval_split(ctx)
    got = features(ctx, split)
    if got is not None:
        ds, fs = got
        classes = list(ctx.ckpt.meta.classes)
        k = len(classes)
        names = readable_class_names(classes, max_len=40)
        if not ds.labelled:
            st.info(f"The {split} images carry no labels, so there is nothing to compare the predictions "
                    "with: point the sidebar at a dataset with a labelled test split (or at the training data, "
                    "whose held-out validation part is then used).")
            st.stop()
        result = confusion(ctx.ckpt.sha256, str(ctx.data), split, fs, tuple(classes))
        pairs = most_confused_pairs(result, n=15)
        st.caption(f"{len(ds):,} {split} images, one view each (no test-time augmentation), accuracy "
                   f"{result.accuracy:.1%}. Rows are the true class, columns the prediction; click a cell "
                   "(or a row of the table) to see its images below.")

        # The chosen cell lives in the URL (true, pred); the click callbacks above set it too.
        if not all(isinstance(st.session_state.get(key), int) and 0 <= st.session_state[key] < k
                   for key in ("m_true", "m_pred")):
            qt, qp = url_int("true", 0, k - 1), url_int("pred", 0, k - 1)
            if qt is not None and qp is not None:
                _set_cell(qt, qp)
            else:
                _set_cell(*((pairs[0].true, pairs[0].pred) if pairs else (0, 0)))

        st.subheader("Confusion matrix")
        norm = st.radio("Show", ["counts", "row-normalised"], horizontal=True, key="m_norm",
                        index=url_choice("norm", [0, 1], 0),
                        help="Row-normalised: the share of each true class given to each prediction.")
        norm = norm == "row-normalised"
        st.query_params["norm"] = "1" if norm else "0"
        st.plotly_chart(clickable(confusion_heatmap(result, normalised=norm), k), key="m_heat", width="content",
                        on_select=_on_heatmap_click, selection_mode="points")

        left, right = st.columns(2)
        left.plotly_chart(class_metrics_figure(result), key="m_metrics")
        with right:
            st.markdown("**Most confused pairs**")
            if pairs:
                table = pd.DataFrame({"true": [names[p.true] for p in pairs],
                                      "predicted as": [names[p.pred] for p in pairs],
                                      "images": [p.count for p in pairs],
                                      "rate": [p.rate for p in pairs]})
                st.dataframe(table, hide_index=True, key="m_pairs", on_select=lambda: _on_pair_click(pairs),
                             selection_mode="single-row",
                             column_config={"rate": st.column_config.ProgressColumn(
                                 format="percent", min_value=0.0, max_value=1.0,
                                 help="Share of the true class given this prediction")})
            else:
                st.success("No mistakes at all on this split.")

        st.subheader("Images of a cell")
        c1, c2 = st.columns(2)
        true = c1.selectbox("True class", range(k), format_func=names.__getitem__, key="m_true")
        pred = c2.selectbox("Predicted as", range(k), format_func=names.__getitem__, key="m_pred")
        st.query_params["true"], st.query_params["pred"] = str(true), str(pred)
        examples = cell_examples(fs.labels, fs.logits, true, pred, ids=fs.ids, top_k=3)
        verdict = "correctly classified" if true == pred else f"predicted as {names[pred]}"
        st.markdown(f"**{len(examples)}** {names[true]} images {verdict}, most confident first.")
        if examples:
            pages = (len(examples) + PER_PAGE - 1) // PER_PAGE
            page = (st.number_input(f"Page (of {pages})", 1, pages, 1, key=f"m_page_{true}_{pred}")
                    if pages > 1 else 1)
            keep = {"model": ctx.name, "data": str(ctx.data)}
            cols = st.columns(COLS)
            for j, ex in enumerate(examples[(page - 1) * PER_PAGE: page * PER_PAGE]):
                with cols[j % COLS]:
                    st.image(enlarge(ds.images[ex.index]), width=THUMB, caption=f"#{ex.index} · {ex.confidence:.0%}")
                    st.caption(" · ".join(f"{names[c]} {p:.0%}" for c, p in ex.top), help=ex.id)
                    st.page_link("views/attributions.py", label="Attribution", icon=":material/visibility:",
                                 help=f"Which pixels made the model say {names[ex.pred]}",
                                 query_params={**keep, "img": str(ex.index), "target": str(ex.pred)})
                    st.page_link("views/neighbours.py", label="Neighbours", icon=":material/scatter_plot:",
                                 help="Its nearest training images", query_params={**keep, "img": str(ex.index)})

"""Model page: architecture table with receptive fields, training curves, metrics."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard.present import present_on, slide_figure_chart, slide_text
from dashboard.state import sidebar
from dashboard.widgets import static_table
from cnnviz.figures.training import training_curves_chart
from cnnviz.inspect.architecture import architecture_summary, parameter_count


@st.cache_data(max_entries=8)
def architecture_table(sha: str, _ckpt) -> pd.DataFrame:
    """One row per inspectable layer: type, output shape, parameters, receptive field."""
    return pd.DataFrame([r.row() for r in architecture_summary(_ckpt.model, _ckpt.meta.input_size)])


def present_model(ctx) -> None:
    """Present mode: one line on the model and its training curves (no tables or expanders)."""
    m = ctx.ckpt.meta
    acc = "".join(f", {split} accuracy {rep['accuracy']:.1%}" for split, rep in list(m.metrics.items())[:2])
    slide_text(f"{m.arch}: {parameter_count(ctx.ckpt.model) / 1e6:.2f} M parameters, {m.preprocess.size} px input, "
               f"{len(m.classes)} classes{acc}.")
    if m.history:
        slide_figure_chart(training_curves_chart(m.history))


ctx = sidebar()
if ctx is not None and present_on():
    present_model(ctx)
elif not present_on():
    st.title("Model")
if ctx is not None and not present_on():
    m = ctx.ckpt.meta
    n_params = parameter_count(ctx.ckpt.model)
    cols = st.columns(5)
    cols[0].metric("Architecture", m.arch)
    cols[1].metric("Parameters", f"{n_params / 1e6:.2f} M")
    cols[2].metric("Input", f"{m.preprocess.size} px", help=f"resize mode: {m.preprocess.mode}")
    cols[3].metric("Classes", len(m.classes))
    cols[4].metric("Penultimate", f"{ctx.ckpt.model.embed_dim}-d")
    if m.metrics:
        mcols = st.columns(max(2, len(m.metrics)))
        for col, (split, rep) in zip(mcols, m.metrics.items()):
            col.metric(f"{split} accuracy", f"{rep['accuracy']:.2%}",
                       help=f"macro recall {rep['macro_recall']:.2%}, {rep['n']} images, TTA: {rep.get('tta', 'none')}")
    if m.info.get("imported"):
        st.info(f"Imported with `cnnviz import` from {m.info.get('source_file', 'a weights file')}: "
                "no training history or metrics (`cnnviz evaluate CHECKPOINT --data DIR` measures it).")
    if m.history:
        st.subheader("Training curves")
        st.altair_chart(training_curves_chart(m.history), width="stretch", key="m_curves")
        info = m.info
        st.caption(f"Trained {len(m.history)} epochs in {info.get('train_seconds', '?')} s on "
                   f"{info.get('runtime', '?')}; {info.get('train_images', '?')} training images, "
                   f"{info.get('val_images', '?')} held out for validation (seed {m.split.seed if m.split else '-'}).")
    st.subheader("Layers")
    static_table(architecture_table(ctx.ckpt.sha256, ctx.ckpt))
    with st.expander("Classes"):
        st.write(", ".join(m.classes))
    with st.expander("Full description (JSON)"):
        d = m.to_dict()
        if d.get("split"):
            d["split"] = {k: v for k, v in d["split"].items() if k != "val_indices"}
        st.json(d, expanded=False)

"""Model page: architecture table with receptive fields, training curves, metrics."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard.state import sidebar
from cnnviz.inspect.receptive_field import receptive_fields


@st.cache_data(max_entries=8)
def architecture_table(sha: str, _ckpt) -> pd.DataFrame:
    """One row per inspectable layer: type, output shape, parameters, receptive field."""
    model, size = _ckpt.model, _ckpt.meta.input_size
    rfs = {r.name: r for r in receptive_fields(model, size)}
    rows = []
    for name in model.layer_names():
        m = model.get_submodule(name)
        rf = rfs.get(name)
        rows.append({
            "layer": name, "type": type(m).__name__,
            "output (h x w)": f"{rf.out_size[0]} x {rf.out_size[1]}" if rf is not None else "",
            "parameters": sum(p.numel() for p in m.parameters(recurse=False)),
            "receptive field (px)": round(float(rf.size[0]), 1) if rf is not None else None,
            "jump (px)": round(float(rf.jump[0]), 2) if rf is not None else None,
        })
    return pd.DataFrame(rows)


ctx = sidebar()
st.title("Model")
if ctx is not None:
    m = ctx.ckpt.meta
    n_params = sum(p.numel() for p in ctx.ckpt.model.parameters())
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
    if m.history:
        st.subheader("Training curves")
        hist = pd.DataFrame(m.history)
        fig = go.Figure()
        fig.add_scatter(x=hist["epoch"], y=hist["train_acc"], name="train accuracy (augmented)")
        if hist["val_acc"].notna().any():
            fig.add_scatter(x=hist["epoch"], y=hist["val_acc"], name="validation accuracy")
        fig.add_scatter(x=hist["epoch"], y=hist["train_loss"], name="train loss", yaxis="y2", line=dict(dash="dot"))
        fig.update_layout(xaxis_title="epoch", yaxis=dict(title="accuracy", range=[0, 1]),
                          yaxis2=dict(title="loss", overlaying="y", side="right"), height=360,
                          margin=dict(t=20, b=40), legend=dict(orientation="h"))
        st.plotly_chart(fig, width="stretch")
        info = m.info
        st.caption(f"Trained {len(m.history)} epochs in {info.get('train_seconds', '?')} s on "
                   f"{info.get('runtime', '?')}; {info.get('train_images', '?')} training images, "
                   f"{info.get('val_images', '?')} held out for validation (seed {m.split.seed if m.split else '-'}).")
    st.subheader("Layers")
    st.dataframe(architecture_table(ctx.ckpt.sha256, ctx.ckpt), hide_index=True, width="stretch")
    with st.expander("Classes"):
        st.write(", ".join(m.classes))
    with st.expander("Full description (JSON)"):
        d = m.to_dict()
        if d.get("split"):
            d["split"] = {k: v for k, v in d["split"].items() if k != "val_indices"}
        st.json(d, expanded=False)

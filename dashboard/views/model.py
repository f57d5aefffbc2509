"""Model page: what the checkpoint is, how it was trained, how well it does."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard.state import sidebar

ckpt = sidebar()
st.title("Model")
if ckpt is not None:
    m = ckpt.meta
    n_params = sum(p.numel() for p in ckpt.model.parameters())
    cols = st.columns(4)
    cols[0].metric("Architecture", m.arch)
    cols[1].metric("Parameters", f"{n_params:,}")
    cols[2].metric("Input", f"{m.preprocess.size} px ({m.preprocess.mode})")
    cols[3].metric("Classes", len(m.classes))
    for split, rep in m.metrics.items():
        st.metric(f"{split} accuracy", f"{rep['accuracy']:.2%}",
                  help=f"macro recall {rep['macro_recall']:.2%}, TTA: {rep.get('tta', 'none')}")
    if m.history:
        st.subheader("Training history")
        st.dataframe(pd.DataFrame(m.history), hide_index=True)
    st.subheader("Classes")
    st.write(", ".join(m.classes))
    with st.expander("Full description (JSON)"):
        st.json(m.to_dict() | {"split": "(indices omitted)"}, expanded=False)

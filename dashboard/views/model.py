"""Model page: architecture table with receptive fields, training curves, metrics."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard.glossary import explain, layer_types_help
from dashboard.present import present_on, slide_figure_chart, slide_text
from dashboard.state import sidebar
from dashboard.widgets import static_table
from cnnviz.basis import AccuracyBasis, split_display_name
from cnnviz.figures.training import training_curves_chart
from cnnviz.inspect.architecture import architecture_summary, parameter_count
from cnnviz.models import model_spec


def recorded_basis(split: str, rep: dict) -> AccuracyBasis:
    """The basis of an accuracy the checkpoint recorded: every image of ``split`` of the full
    dataset it was trained on, with the test-time augmentation it was scored with."""
    return AccuracyBasis(int(rep["n"]), split, tta=rep.get("tta", "none"))


@st.cache_data(max_entries=8)
def architecture_table(sha: str, _ckpt) -> pd.DataFrame:
    """One row per inspectable layer: type, output shape, parameters, receptive field."""
    return pd.DataFrame([r.row() for r in architecture_summary(_ckpt.model, _ckpt.meta.input_size)])


def present_model(ctx) -> None:
    """Present mode: one line on the model and its training curves (no tables or expanders)."""
    m = ctx.ckpt.meta
    split = "test" if "test" in m.metrics else next(iter(m.metrics), None)  # one number: the test split's
    acc = f", {recorded_basis(split, m.metrics[split]).accuracy_text(m.metrics[split]['accuracy'], 1, False)}" \
        if split is not None else ""
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
    try:
        described = model_spec(m.arch).description
    except KeyError:  # an architecture this version of cnnviz does not register
        described = None
    # the architecture's name on a line of its own: as a metric's large value it was cut at 1280 px
    st.markdown(f"Architecture: **{m.arch}**", help=described)
    cols = st.columns(4)
    cols[0].metric("Parameters", f"{n_params / 1e6:.2f} M", help=explain("parameters"))
    cols[1].metric("Input", f"{m.preprocess.size} px", help=f"resize mode: {m.preprocess.mode}")
    cols[2].metric("Classes", len(m.classes))
    cols[3].metric("Penultimate features", f"{ctx.ckpt.model.embed_dim}-d",
                   help=explain("penultimate features", "d (dimensions)"))
    if m.metrics:
        mcols = st.columns(max(2, len(m.metrics)))
        for col, (split, rep) in zip(mcols, m.metrics.items()):
            col.metric(f"{split_display_name(split).capitalize()} accuracy", f"{rep['accuracy']:.2%}",
                       help=f"macro recall {rep['macro_recall']:.2%}\n\n" + explain("macro recall"))
        st.caption("Scored when training ended: "
                   + "; ".join(recorded_basis(split, rep).accuracy_text(rep["accuracy"], 2)
                               for split, rep in m.metrics.items())
                   + ". The Mistakes page counts one view of each image of the data chosen in the sidebar "
                     "(with the demo gallery, a sample), so its accuracy can differ.")
    if m.info.get("imported"):
        st.info(f"Imported with `cnnviz import` from {m.info.get('source_file', 'a weights file')}: "
                "no training history or metrics (`cnnviz evaluate CHECKPOINT --data DIR` measures it).")
    if m.history:
        st.subheader("Training curves", help=explain("augmented", "loss"))
        st.altair_chart(training_curves_chart(m.history), width="stretch", key="m_curves")
        info = m.info
        st.caption(f"Trained {len(m.history)} epochs in {info.get('train_seconds', '?')} s on "
                   f"{info.get('runtime', '?')}; {info.get('train_images', '?')} training images, "
                   f"{info.get('val_images', '?')} held out for validation (seed {m.split.seed if m.split else '-'}).")
    layers = architecture_table(ctx.ckpt.sha256, ctx.ckpt)
    st.subheader("Layers", help=layer_types_help(list(layers["type"])))  # the types; the columns under the table
    static_table(layers)
    st.caption(explain("parameters", "receptive field", "jump"))
    with st.expander("Classes"):
        st.write(", ".join(m.classes))
    with st.expander("Full description (JSON)"):
        d = m.to_dict()
        if d.get("split"):
            d["split"] = {k: v for k, v in d["split"].items() if k != "val_indices"}
        st.json(d, expanded=False)

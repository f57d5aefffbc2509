"""Training curves from a checkpoint's history, as a Vega-Lite chart (Altair): a browser draws it
for a fraction of what a Plotly figure costs a page's first render (measured on the Model page:
0.91x the floor page with it, 1.28x with the Plotly figure)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import altair as alt
import pandas as pd

__all__ = ["training_curves_chart"]

ACCURACY = {"train_acc": "train accuracy (augmented)", "val_acc": "validation accuracy"}


def training_curves_chart(history: Sequence[Mapping[str, Any]], height: int = 320) -> alt.LayerChart:
    """Accuracy (train, augmented; validation where recorded) on the left axis and training loss
    (dotted) on the right, per epoch, from ``CheckpointMeta.history`` rows (``epoch``,
    ``train_acc``, ``val_acc``, ``train_loss``). Hover shows the values."""
    rows = [{"epoch": h["epoch"], "curve": name, "value": h.get(k)} for k, name in ACCURACY.items()
            for h in history if h.get(k) is not None]
    acc = pd.DataFrame(rows, columns=["epoch", "curve", "value"])
    loss = pd.DataFrame({"epoch": [h["epoch"] for h in history], "curve": "train loss",
                         "value": [h.get("train_loss") for h in history]}).dropna()
    colour = alt.Color("curve:N", title=None, legend=alt.Legend(orient="top", labelLimit=400),
                       scale=alt.Scale(domain=list(ACCURACY.values()) + ["train loss"],
                                       range=["#1f77b4", "#ff7f0e", "#2ca02c"]))
    tip = [alt.Tooltip("curve:N"), alt.Tooltip("epoch:Q"), alt.Tooltip("value:Q", format=".4f")]
    left = alt.Chart(acc).mark_line(point=len(history) < 40).encode(
        x=alt.X("epoch:Q", title="epoch"), y=alt.Y("value:Q", title="accuracy", scale=alt.Scale(domain=[0, 1])),
        color=colour, tooltip=tip)
    right = alt.Chart(loss).mark_line(strokeDash=[4, 3], point=len(history) < 40).encode(
        x="epoch:Q", y=alt.Y("value:Q", title="loss", axis=alt.Axis(orient="right")), color=colour, tooltip=tip)
    # room on the right for the loss axis's title, which Vega-Lite's fit to the width leaves out
    return alt.layer(left, right).resolve_scale(y="independent").properties(
        height=height, padding={"left": 5, "top": 5, "right": 12, "bottom": 5})

"""Training curves from a checkpoint's history."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import plotly.graph_objects as go


def training_curves_figure(history: Sequence[Mapping[str, Any]]) -> go.Figure:
    """Accuracy (train, augmented; validation where recorded) on the left axis and training loss
    on the right, per epoch, from ``CheckpointMeta.history`` rows (``epoch``, ``train_acc``,
    ``val_acc``, ``train_loss``)."""
    epochs = [h["epoch"] for h in history]
    fig = go.Figure()
    fig.add_scatter(x=epochs, y=[h.get("train_acc") for h in history], name="train accuracy (augmented)")
    val = [h.get("val_acc") for h in history]
    if any(v is not None for v in val):
        fig.add_scatter(x=epochs, y=val, name="validation accuracy")
    fig.add_scatter(x=epochs, y=[h.get("train_loss") for h in history], name="train loss", yaxis="y2",
                    line=dict(dash="dot"))
    fig.update_layout(xaxis_title="epoch", yaxis=dict(title="accuracy", range=[0, 1]),
                      yaxis2=dict(title="loss", overlaying="y", side="right"), height=360,
                      margin=dict(t=40, b=40), legend=dict(orientation="h", x=0, y=1.02, yanchor="bottom"))
    return fig

"""Confusion-matrix heatmaps and per-class precision/recall/F1 bars."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go

from ..inspect.confusion import ConfusionResult


def readable_class_names(classes: Sequence[str], max_len: int = 18) -> list[str]:
    """Tick labels: underscores as spaces, long names shortened with an ellipsis
    (``abraham_grampa_simpson`` -> ``abraham grampa si…``); full names stay in the hover text."""
    out = []
    for c in classes:
        c = str(c).replace("_", " ")
        out.append(c if len(c) <= max_len else c[: max_len - 1].rstrip() + "…")
    if len(set(out)) < len(out):  # shortening merged two names: a category axis would too
        out = [f"{c} ({i})" for i, c in enumerate(out)]
    return out


def confusion_heatmap(result: ConfusionResult, normalised: bool = False, show_values: bool | None = None,
                      title: str | None = None) -> go.Figure:
    """Heatmap of the confusion matrix, true classes down the side (first at the top), predicted
    along the bottom. ``normalised``: colour by the row-normalised rate instead of the count.
    Cell values are written in when ``show_values`` (default: 20 classes or fewer). One trace."""
    k = result.num_classes
    names = readable_class_names(result.classes)
    counts = result.counts
    rates = result.normalised
    z = rates if normalised else counts
    hover = [[f"true: {result.classes[i]}<br>predicted: {result.classes[j]}<br>"
              f"{counts[i, j]} of {int(result.support[i])} ({rates[i, j]:.1%})"
              for j in range(k)] for i in range(k)]
    if show_values is None:
        show_values = k <= 20
    text = [[(f"{rates[i, j]:.0%}" if normalised else str(counts[i, j])) if counts[i, j] else ""
             for j in range(k)] for i in range(k)]
    fig = go.Figure(go.Heatmap(
        z=z, x=names, y=names, colorscale="Blues", hovertext=hover, hoverinfo="text",
        text=text if show_values else None, texttemplate="%{text}" if show_values else None,
        textfont=dict(size=10 if k > 12 else 12), zmin=0, zmax=1 if normalised else None,
        colorbar=dict(title="rate" if normalised else "images", tickformat=".0%" if normalised else None),
        xgap=1, ygap=1,
    ))
    side = max(420, 28 * k + 200)
    fig.update_layout(
        title=title if title is not None else
        (f"confusion (row-normalised), accuracy {result.accuracy:.1%}" if normalised
         else f"confusion (counts), accuracy {result.accuracy:.1%}"),
        xaxis=dict(title="predicted", tickangle=-45, automargin=True, type="category"),
        yaxis=dict(title="true", autorange="reversed", automargin=True, type="category"),
        width=side + 120, height=side,
    )
    return fig


def class_metrics_figure(result: ConfusionResult,
                         title: str = "precision, recall and F1 by class") -> go.Figure:
    """Grouped bars of per-class precision, recall and F1 (3 traces)."""
    names = readable_class_names(result.classes)
    fig = go.Figure()
    for label, values in (("precision", result.precision), ("recall", result.recall), ("F1", result.f1)):
        fig.add_trace(go.Bar(
            x=names, y=np.asarray(values, np.float64), name=label,
            customdata=np.stack([np.asarray(result.classes, dtype=object),
                                 np.asarray(result.support)], axis=1),
            hovertemplate=f"%{{customdata[0]}}<br>{label}: %{{y:.1%}}<br>%{{customdata[1]}} images"
                          "<extra></extra>",
        ))
    fig.update_layout(
        title=title, barmode="group",
        yaxis=dict(range=[0, 1], tickformat=".0%"),
        xaxis=dict(tickangle=-45 if len(names) > 8 else 0, automargin=True),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
    )
    return fig

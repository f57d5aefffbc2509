"""Pictures of faithfulness: deletion and insertion curves, one line per method or baseline map."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..inspect.faithfulness import FaithfulnessReport
from .attribution import TITLES

__all__ = ["faithfulness_figure", "report_curves"]

_BASELINE_TITLES = {"random": "random map (baseline)", "sobel": "Sobel edges (baseline)"}


def _title(name: str) -> str:
    return TITLES.get(name) or _BASELINE_TITLES.get(name, name)


def faithfulness_figure(fractions: np.ndarray, deletion: Mapping[str, np.ndarray],
                        insertion: Mapping[str, np.ndarray], title: str = "") -> go.Figure:
    """Two panels over the fraction of pixels changed: deletion (the target's probability as the
    most important pixels go; lower area = more faithful) and insertion (as they come back on the
    mean-colour image; higher area = more faithful). Legend entries carry the areas. Baselines are
    dashed."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=["Deletion (lower area is better)",
                                                        "Insertion (higher area is better)"])
    x = np.asarray(fractions)
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#7f7f7f", "#bcbd22"]
    for j, name in enumerate(deletion):
        colour = palette[j % len(palette)]
        dash = "dash" if name in _BASELINE_TITLES else "solid"
        for col, curves in ((1, deletion), (2, insertion)):
            y = np.asarray(curves[name])
            area = float(((y[1:] + y[:-1]) / 2 * np.diff(x)).sum())
            fig.add_trace(go.Scatter(x=x, y=y, mode="lines", line=dict(color=colour, dash=dash),
                                     name=f"{_title(name)}: {area:.3f}", legendgroup=f"{name}{col}",
                                     legend="legend" if col == 1 else "legend2"), row=1, col=col)
    fig.update_xaxes(title="fraction of pixels changed", range=[0, 1])
    fig.update_yaxes(title="probability of the class", range=[0, 1.02], row=1, col=1)
    fig.update_yaxes(range=[0, 1.02], row=1, col=2)
    fig.update_layout(width=900, height=430, title=title or None, margin=dict(l=60, r=20, t=70, b=150),
                      legend=dict(orientation="h", x=0.0, y=-0.2, xanchor="left", yanchor="top", title="area"),
                      legend2=dict(orientation="h", x=0.56, y=-0.2, xanchor="left", yanchor="top", title="area"))
    return fig


def report_curves(report: FaithfulnessReport) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """``(deletion, insertion)`` mean curves of a report, by method name, for
    :func:`faithfulness_figure`."""
    return ({s.name: s.mean_deletion for s in report.scores}, {s.name: s.mean_insertion for s in report.scores})

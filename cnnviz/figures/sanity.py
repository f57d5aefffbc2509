"""Pictures of the cascading-randomisation sanity check: the maps as layers go random, and the
correlation with the trained model's maps step by step."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..inspect.sanity import SanityResult
from .attribution import TITLES, colorize

__all__ = ["sanity_curve_figure", "sanity_grid_figure"]


def sanity_grid_figure(image: np.ndarray, result: SanityResult, colormap: str = "jet", panel_px: int = 110
                       ) -> go.Figure:
    """Rows = methods, columns = the input then the steps ("trained", "+ <layer>", ...):
    each cell the first image's map at that step; hovering shows its Spearman correlation with
    the trained map. ``image``: ``(H, W, 3) uint8``, the first image of the result."""
    n_methods, n_steps = result.maps.shape[:2]
    cols = n_steps + 1
    fig = make_subplots(rows=n_methods, cols=cols, column_titles=["input", *result.steps],
                        row_titles=[TITLES.get(m, m) for m in result.methods],
                        horizontal_spacing=0.008, vertical_spacing=0.02)
    fig.add_trace(go.Image(z=np.asarray(image), hoverinfo="skip"), row=1, col=1)
    for i, method in enumerate(result.methods):
        for k, step in enumerate(result.steps):
            rho = result.spearman[i, k, 0]
            text = "undefined (constant map)" if np.isnan(rho) else f"{rho:.2f}"
            fig.add_trace(go.Image(z=colorize(result.maps[i, k], colormap), name=method,
                                   hovertemplate=f"{method}, {step}<br>Spearman vs trained: {text}<extra></extra>"),
                          row=i + 1, col=k + 2)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_annotations(font_size=11)
    fig.update_layout(width=panel_px * cols + 60, height=panel_px * n_methods + 90,
                      margin=dict(l=10, r=40, t=60, b=10))
    return fig


def sanity_curve_figure(result: SanityResult, threshold: float | None = 0.5) -> go.Figure:
    """Mean Spearman correlation with the trained maps per method against the randomisation
    step, error bars one standard deviation over the images (undefined correlations left
    out); a dotted line at ``threshold`` (the verdict's, ``None`` for none)."""
    mean, std, undefined = result.mean(), result.std(), result.undefined()
    x = list(range(len(result.steps)))
    fig = go.Figure()
    for i, method in enumerate(result.methods):
        fig.add_trace(go.Scatter(
            x=x, y=mean[i], mode="lines+markers", name=TITLES.get(method, method), cliponaxis=False,
            error_y=dict(type="data", array=np.nan_to_num(std[i]), visible=True, thickness=1),
            customdata=np.stack([np.asarray(result.steps, dtype=object), undefined[i]], -1),
            hovertemplate="%{customdata[0]}: %{y:.2f}<br>undefined: %{customdata[1]}<extra>"
                          + TITLES.get(method, method) + "</extra>"))
    if threshold is not None:
        fig.add_hline(y=threshold, line_dash="dot", line_color="grey")
    fig.add_hline(y=0, line_color="lightgrey")
    fig.update_xaxes(tickvals=x, ticktext=list(result.steps), tickangle=-45, title="layers randomised (top-down)")
    fig.update_yaxes(range=[-0.2, 1.0], title="Spearman rank correlation with the trained map")
    fig.update_layout(width=720, height=440, margin=dict(l=60, r=20, t=30, b=110), legend_title="method")
    return fig

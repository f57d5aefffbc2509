"""Figures of feature maps: a grid of channels strongest first, and one channel enlarged."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ..inspect.feature_maps import FeatureMaps, channel_grid, grid_cols, tile

__all__ = ["feature_channel_figure", "feature_grid_figure"]


def feature_grid_figure(fm: FeatureMaps, index: int = 0, max_channels: int = 64, cols: int | None = None,
                        gap: int = 1, colorscale: str = "Viridis") -> go.Figure:
    """Image ``index``'s channels of ``fm`` as one heatmap grid, strongest (by mean activation)
    first, at most ``max_channels``; each tile min-max scaled on its own (for raw values see
    :func:`feature_channel_figure`). Hover shows the channel number. One ``go.Heatmap`` trace;
    gaps are blank."""
    if not 0 <= index < len(fm.maps):
        raise ValueError(f"image index {index} out of range: {len(fm.maps)} images")
    maps, order = fm.maps[index], fm.order[index]
    shown = order[:max_channels]
    c, h, w = maps.shape
    cols = grid_cols(len(shown), cols)
    z = channel_grid(maps, order, max_channels, cols, gap)
    # hover: the channel number per cell (int16 keeps the figure small; -1 in the gaps)
    channel = tile(np.broadcast_to(shown[:, None, None], (len(shown), h, w)).astype(np.int16), cols, gap,
                   fill=-1)
    fig = go.Figure(go.Heatmap(
        z=z, customdata=channel, colorscale=colorscale, zmin=0, zmax=1, showscale=False,
        hoverongaps=False,
        hovertemplate="channel %{customdata}<br>%{z:.2f} of its range<extra></extra>"))
    fig.update_yaxes(autorange="reversed", scaleanchor="x", visible=False)
    fig.update_xaxes(visible=False)
    fig.update_layout(
        title=f"{fm.layer}: {len(shown)} of {c} channels ({h}x{w}), strongest mean activation first"
              "<br><sup>each channel scaled to its own min-max</sup>",
        margin=dict(l=10, r=10, t=70, b=10), plot_bgcolor="white",
    )
    return fig


def feature_channel_figure(fm: FeatureMaps, channel: int, index: int = 0,
                           colorscale: str = "Viridis") -> go.Figure:
    """One channel of image ``index`` enlarged: a heatmap of its raw values with a colour bar."""
    if not 0 <= index < len(fm.maps):
        raise ValueError(f"image index {index} out of range: {len(fm.maps)} images")
    if not 0 <= channel < fm.num_channels:
        raise ValueError(f"channel {channel} out of range: {fm.layer} has {fm.num_channels} channels")
    z = fm.maps[index, channel]
    rank = fm.rank(channel, index)
    fig = go.Figure(go.Heatmap(
        z=z, colorscale=colorscale, colorbar=dict(title="activation"),
        hovertemplate="row %{y}, col %{x}<br>%{z:.3g}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", scaleanchor="x", constrain="domain")
    fig.update_xaxes(constrain="domain")
    fig.update_layout(
        title=f"{fm.layer}, channel {channel} (rank {rank} of {fm.num_channels}, "
              f"mean {fm.score[index, channel]:.3g})",
        margin=dict(l=10, r=10, t=60, b=10),
    )
    return fig

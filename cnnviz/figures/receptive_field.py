"""Figures of receptive fields: a unit's box and effective field on the image; growth by layer
as an HTML table of bars (no Plotly for the page to load)."""

from __future__ import annotations

import html
from typing import Sequence

import numpy as np
import plotly.graph_objects as go

from ..inspect.receptive_field import LayerRF

__all__ = ["receptive_field_figure", "rf_growth_html"]

# transparent at 0, opaque red at 1: the image shows through where the gradient is small
_GLOW = [[0.0, "rgba(255,0,0,0)"], [0.5, "rgba(255,80,0,0.6)"], [1.0, "rgba(255,230,0,1)"]]


def receptive_field_figure(image: np.ndarray, box: tuple[int, int, int, int] | None = None,
                           erf: np.ndarray | None = None, alpha: float = 0.7,
                           title: str | None = None) -> go.Figure:
    """The input ``image`` (``(H, W, 3) uint8``) with a unit's theoretical field ``box``
    (``(top, left, bottom, right)``, bottom/right exclusive, from ``unit_box``) drawn as a
    rectangle and its effective field ``erf`` (``(H, W)``, e.g. ``gradient_rf``) laid over as
    a heatmap scaled to its maximum, transparent where it is zero, with opacity ``alpha``.

    Traces: one ``go.Image``, plus one ``go.Heatmap`` when ``erf`` is given."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"expected an image (H, W, 3), got shape {image.shape}")
    h, w = image.shape[:2]
    fig = go.Figure(go.Image(z=image, hovertemplate="y %{y}, x %{x}<extra></extra>"))
    if erf is not None:
        erf = np.asarray(erf, dtype=np.float32)
        if erf.shape != (h, w):
            raise ValueError(f"the gradient map {erf.shape} does not match the image {(h, w)}")
        peak = float(erf.max())
        z = erf / peak if peak > 0 else erf
        fig.add_trace(go.Heatmap(
            z=z, colorscale=_GLOW, zmin=0, zmax=1, opacity=alpha, showscale=True,
            colorbar=dict(title="|grad|<br>(rel.)"), name="effective field",
            hovertemplate="y %{y}, x %{x}<br>|d unit / d pixel| %{z:.2f} of max<extra></extra>"))
    if box is not None:
        top, left, bottom, right = box
        fig.add_shape(type="rect", x0=left - 0.5, x1=right - 0.5, y0=top - 0.5, y1=bottom - 0.5,
                      line=dict(color="cyan", width=2), fillcolor="rgba(0,0,0,0)")
    fig.update_xaxes(range=[-0.5, w - 0.5], visible=False, constrain="domain")
    fig.update_yaxes(range=[h - 0.5, -0.5], visible=False, scaleanchor="x", constrain="domain")
    fig.update_layout(title=title or "Receptive field: theory (box) and gradient (glow)",
                      margin=dict(l=10, r=10, t=60, b=10))
    return fig


def rf_growth_html(rfs: Sequence[LayerRF], image_size: int | None = None, bar_px: int = 320) -> str:
    """The theoretical receptive field of every layer, in forward order, as an HTML table (inline
    styles only): layer, type, a bar of the field's side (rows) ``bar_px`` wide at the largest
    of the fields and ``image_size``, with its length in pixels; a dashed line marks
    ``image_size`` in every bar; then the jump, unit (0, 0)'s centre and the output size."""
    top = max([r.size[0] for r in rfs] + [float(image_size or 0)]) or 1.0
    mark = (f'<div style="position:absolute;left:{image_size / top * bar_px:.1f}px;top:0;bottom:0;'
            'border-left:2px dashed #555"></div>' if image_size else "")
    cell = 'style="padding:2px 8px;text-align:{}"'
    rows = []
    for r in rfs:
        bar = (f'<div style="position:relative;width:{bar_px}px;height:16px">'
               f'<div style="width:{r.size[0] / top * bar_px:.1f}px;height:16px;background:#4c72b0"></div>{mark}</div>')
        rows.append(f"<tr><td {cell.format('left')}><code>{html.escape(r.name)}</code></td>"
                    f"<td {cell.format('left')}>{html.escape(r.kind)}</td><td {cell.format('left')}>{bar}</td>"
                    f"<td {cell.format('right')}>{r.size[0]:g}</td><td {cell.format('right')}>{r.jump[0]:g}</td>"
                    f"<td {cell.format('right')}>{r.start[0]:g}</td>"
                    f"<td {cell.format('right')}>{r.out_size[0]} x {r.out_size[1]}</td></tr>")
    key = f" (dashed: the image, {image_size} px)" if image_size else ""
    heads = ["layer", "type", f"field{key}", "field (px)", "jump (px)", "unit (0, 0) centre", "output"]
    head = "".join(f'<th {cell.format("left" if i < 3 else "right")}>{h}</th>' for i, h in enumerate(heads))
    return f'<table style="border-collapse:collapse"><tr>{head}</tr>{"".join(rows)}</table>'

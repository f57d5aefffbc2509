"""Figures of the convolution, step by step: the window on the padded input, the output map
filling in, and the patch x kernel products that make one output pixel."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ..inspect.convolution import ConvOutput, ConvStep

__all__ = ["conv_products_figure", "conv_window_figure", "step_equation"]

CHANNEL_NAMES = ("red", "green", "blue")
PADDING_GREY = 200  # uint8 grey of padding cells in the input panel
WINDOW = "#d62728"  # the current window and output pixel
NEXT = "#ff7f0e"  # the next window (where the stride moves it)
FONT = 16


def _names(n: int, names: tuple[str, ...]) -> list[str]:
    return [names[c] if c < len(names) and n == len(names) else f"channel {c}" for c in range(n)]


def step_equation(step: ConvStep, digits: int = 4) -> str:
    """``"sum of 75 products = 1.2345, + bias 0.1000 = 1.3345"``; ``"... (no bias) = ..."`` for a
    layer without one."""
    f = f"{{:.{digits}f}}"
    head = f"sum of {step.num_products} products = {f.format(step.total)}"
    if not step.has_bias:
        return f"{head} (no bias) = {f.format(step.value)}"
    return f"{head}, + bias {f.format(step.bias)} = {f.format(step.value)}"


def _display(out: ConvOutput) -> np.ndarray:
    """``(Hp, Wp, 3) uint8``: the image where it is, grey padding around it (a normalised input
    without an image is shown as the min-max scaled mean over its channels)."""
    hp, wp = out.padded.shape[1:]
    rgb = np.full((hp, wp, 3), PADDING_GREY, dtype=np.uint8)
    t, _, l, _ = out.padding
    h, w = out.image_size
    if out.image is not None:
        rgb[t:t + h, l:l + w] = out.image
    else:
        mean = out.padded[:, t:t + h, l:l + w].mean(axis=0)
        lo, hi = float(mean.min()), float(mean.max())
        grey = ((mean - lo) / (hi - lo) * 255 if hi > lo else np.full_like(mean, 128)).round().astype(np.uint8)
        rgb[t:t + h, l:l + w] = grey[..., None]
    return rgb


def _axes(rows: int, cols: int, hgap: float, vgap: float, ticks: bool = True
          ) -> tuple[dict, list[tuple[float, float]]]:
    """Layout axes of a ``rows x cols`` grid of square-celled panels, ``x``/``y`` numbered row by
    row (a hand-built ``make_subplots``: several times faster to build, which a Play frame
    needs), and the x domains of the columns."""
    w, h = (1 - hgap * (cols - 1)) / cols, (1 - vgap * (rows - 1)) / rows
    xdom = [(j * (w + hgap), j * (w + hgap) + w) for j in range(cols)]
    plain = dict(showgrid=False, zeroline=False, constrain="domain", showticklabels=ticks)
    axes: dict = {}
    for r in range(rows):
        for c in range(cols):
            i = r * cols + c + 1
            n = "" if i == 1 else str(i)
            top = 1 - r * (h + vgap)
            axes[f"xaxis{n}"] = dict(domain=xdom[c], anchor=f"y{n}", scaleanchor=f"y{n}", **plain)
            axes[f"yaxis{n}"] = dict(domain=(top - h, top), anchor=f"x{n}", autorange="reversed", **plain)
    return axes, xdom


def _box(top: float, left: float, h: float, w: float, color: str, axis: str, dash: str = "solid",
         width: float = 3) -> dict:
    return dict(type="rect", xref=f"x{axis}", yref=f"y{axis}", x0=left - 0.5, x1=left + w - 0.5,
                y0=top - 0.5, y1=top + h - 0.5, line=dict(color=color, width=width, dash=dash))


def _title(text: str, x: float, sub: str = "") -> dict:
    if sub:
        text += f"<br><span style='font-size:{FONT - 2}px'>{sub}</span>"
    return dict(text=text, x=x, y=1.0, xref="paper", yref="paper", xanchor="center", yanchor="bottom",
                yshift=6, showarrow=False, font_size=FONT)


def _geometry_words(out: ConvOutput) -> str:
    t, b, l, r = out.padding
    pad = f"padding {t}" if len({t, b, l, r}) == 1 else f"padding top {t}, bottom {b}, left {l}, right {r}"
    stride = f"stride {out.stride[0]}" if out.stride[0] == out.stride[1] else f"stride {out.stride}"
    dil = "" if out.dilation == (1, 1) else f", dilation {out.dilation[0]}"
    return f"{pad} (grey), {stride}{dil}"


def conv_window_figure(out: ConvOutput, step: ConvStep) -> go.Figure:
    """Left: the padded input (padding grey, the image's edge dotted) with the kernel's window
    outlined in red and the next window (one stride on) dashed in orange. Right: the output map
    filled in up to ``step`` (later pixels blank), the current pixel outlined; diverging colour
    scale centred on 0 over the whole map's range, so colours stay put while it fills."""
    hp, wp = out.padded.shape[1:]
    oh, ow = out.out_size
    kh, kw = out.kernel_size
    sh, sw = out.span
    axes, xdom = _axes(1, 2, 0.12, 0)
    axes["xaxis2"]["domain"] = (xdom[1][0], xdom[1][1] - 0.06)  # room for the colour bar
    data: list = [go.Image(z=_display(out), hovertemplate="padded row %{y}, col %{x}<extra></extra>")]
    t, _, l, _ = out.padding
    h, w = out.image_size
    shapes = [_box(t, l, h, w, "black", "", dash="dot", width=1.5)] if any(out.padding) else []
    if step.position + 1 < out.num_positions:
        nt, nl, _, _ = out.window(step.position + 1)
        shapes.append(_box(nt, nl, sh, sw, NEXT, "", dash="dash", width=2))
    shapes.append(_box(step.top, step.left, sh, sw, WINDOW, ""))
    if out.dilation != (1, 1):
        ty, tx = np.meshgrid(step.top + out.dilation[0] * np.arange(kh),
                             step.left + out.dilation[1] * np.arange(kw), indexing="ij")
        data.append(go.Scatter(x=tx.ravel(), y=ty.ravel(), mode="markers", hoverinfo="skip",
                               marker=dict(color=WINDOW, size=6), showlegend=False))
    filled = np.full(out.num_positions, np.nan, dtype=np.float32)
    filled[:step.position + 1] = out.output.ravel()[:step.position + 1]
    peak = float(np.abs(out.output).max()) or 1.0
    data.append(go.Heatmap(
        z=filled.reshape(oh, ow), zmin=-peak, zmax=peak, zmid=0, colorscale="RdBu_r", hoverongaps=False,
        colorbar=dict(title=dict(text="output"), thickness=14, x=1.0, xanchor="right"), xaxis="x2", yaxis="y2",
        hovertemplate="row %{y}, col %{x}<br>%{z:.4f}<extra></extra>"))
    shapes.append(_box(step.row, step.col, 1, 1, "black", "2"))
    titles = [
        _title(f"Input {out.image_size[0]} x {out.image_size[1]}, padded to {hp} x {wp}", sum(xdom[0]) / 2,
               f"{_geometry_words(out)}; window {sh} x {sw}"),
        _title(f"Output map {oh} x {ow} (kernel {out.channel})", sum(axes["xaxis2"]["domain"]) / 2,
               "filled up to the current pixel"),
    ]
    return go.Figure(data=data, layout=dict(
        **axes, shapes=shapes, annotations=titles,
        title=dict(text=f"Output pixel (row {step.row}, col {step.col}) = {step.value:.4f}", font_size=FONT + 4),
        height=560, margin=dict(l=10, r=10, t=120, b=10), plot_bgcolor="white", font_size=FONT - 2))


def _cells(values: np.ndarray, show: bool, digits: int = 2) -> dict:
    if not show:
        return {}
    return dict(text=np.vectorize(lambda v: f"{v:.{digits}f}")(values), texttemplate="%{text}",
                textfont=dict(size=FONT if values.shape[-1] <= 3 else FONT - 3))


def conv_products_figure(out: ConvOutput, step: ConvStep,
                         channel_names: tuple[str, ...] = CHANNEL_NAMES) -> go.Figure:
    """One row per input channel: the input patch (grey scale over the whole padded input's
    range), the kernel and their element-wise product (both diverging, centred on 0: the kernel
    over its own range, the product over the largest product at any position), with each row's
    sum beside it and the whole sum + bias in the title. Values are printed in the cells for
    kernels of at most 5 x 5 and on hover always."""
    c_in = out.in_channels
    kh, kw = out.kernel_size
    names = _names(c_in, channel_names)
    axes, xdom = _axes(c_in, 3, 0.06, 0.05, ticks=False)
    show = max(kh, kw) <= 5
    lo, hi = float(out.padded.min()), float(out.padded.max())
    kpeak = float(np.abs(out.kernel).max()) or 1.0
    ppeak = float(np.abs(out.patches() * out.kernel).max()) or 1.0
    where = np.where(step.on_padding, " (padding)", "")
    rows, cols = np.meshgrid(np.arange(kh), np.arange(kw), indexing="ij")
    custom = np.stack([rows, cols, where], axis=-1)
    sums = step.channel_sums
    data, notes = [], [_title(t, sum(d) / 2) for t, d in
                       zip(("input patch (normalised)", "x kernel", "= products"), xdom)]
    for c in range(c_in):
        hover = f"{names[c]}, tap (%{{customdata[0]}}, %{{customdata[1]}})%{{customdata[2]}}<br>"
        for j, (z, axis, what) in enumerate(((step.patch[c], "coloraxis", "input"),
                                             (out.kernel[c], "coloraxis2", "weight"),
                                             (step.product[c], "coloraxis3", "product"))):
            n = "" if c == 0 and j == 0 else str(3 * c + j + 1)
            data.append(go.Heatmap(z=z, coloraxis=axis, customdata=custom, xgap=1, ygap=1, xaxis=f"x{n}",
                                   yaxis=f"y{n}", hovertemplate=hover + what + " %{z:.4f}<extra></extra>",
                                   **_cells(z, show)))
        first, last = "" if c == 0 else str(3 * c + 1), str(3 * c + 3)
        notes.append(dict(text=f"<b>{names[c]}</b>", xref=f"x{first} domain", yref=f"y{first} domain",
                          x=-0.04, y=0.5, xanchor="right", showarrow=False, font_size=FONT))
        notes.append(dict(text=f"sum {sums[c]:+.3f}", xref=f"x{last} domain", yref=f"y{last} domain",
                          x=1.04, y=0.5, xanchor="left", showarrow=False, font_size=FONT))

    def bar(col: int, title: str) -> dict:
        return dict(orientation="h", x=sum(xdom[col]) / 2, xanchor="center", y=-0.04, yanchor="top",
                    len=0.22, thickness=12, title=dict(text=title, side="bottom"))

    return go.Figure(data=data, layout=dict(
        **axes, annotations=notes,
        coloraxis=dict(colorscale="gray", cmin=lo, cmax=hi, colorbar=bar(0, "input")),
        coloraxis2=dict(colorscale="RdBu_r", cmin=-kpeak, cmax=kpeak, colorbar=bar(1, "weight")),
        coloraxis3=dict(colorscale="RdBu_r", cmin=-ppeak, cmax=ppeak, colorbar=bar(2, "product")),
        title=dict(text=step_equation(step), font_size=FONT + 4),
        height=250 * c_in + 200, margin=dict(l=70, r=120, t=110, b=90), plot_bgcolor="white",
        font_size=FONT - 2))

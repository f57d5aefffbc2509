"""Pictures of the convolution, step by step: the window on the padded input, the output map
filling in (two pictures), and the patch x kernel products that make one output pixel (an HTML
table with the numbers in the cells).

Pictures and HTML rather than Plotly figures: a Play frame rebuilds them all, and a page with a
Plotly figure took a third of the floor page's time more to open (measured)."""

from __future__ import annotations

import html

import numpy as np

from ..inspect.convolution import ConvOutput, ConvStep
from .clicks import dot, enlarge, outline
from .pictures import diverging_colours

__all__ = ["conv_products_html", "conv_window_pictures", "geometry_words", "step_equation"]

CHANNEL_NAMES = ("red", "green", "blue")
PADDING_GREY = 200  # uint8 grey of padding cells in the input panel
WINDOW = (214, 39, 40)  # the current window
NEXT = (255, 127, 14)  # the next window (where the stride moves it)
UNFILLED = 235  # uint8 grey of output pixels not computed yet


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


def geometry_words(out: ConvOutput) -> str:
    """``"padding 2 (grey), stride 1"``, with the dilation when there is one."""
    t, b, l, r = out.padding
    pad = f"padding {t}" if len({t, b, l, r}) == 1 else f"padding top {t}, bottom {b}, left {l}, right {r}"
    stride = f"stride {out.stride[0]}" if out.stride[0] == out.stride[1] else f"stride {out.stride}"
    dil = "" if out.dilation == (1, 1) else f", dilation {out.dilation[0]}"
    return f"{pad} (grey), {stride}{dil}"


def conv_window_pictures(out: ConvOutput, step: ConvStep, width: int = 360) -> tuple[np.ndarray, np.ndarray]:
    """Two ``(H, W, 3) uint8`` pictures at least ``width`` pixels wide, every cell a square block:

    * the padded input (padding grey) with the kernel's window outlined in red and the next
      window (one stride on) in orange; with dilation, the taps are red dots;
    * the output map filled in up to ``step`` (later pixels light grey), on a diverging scale
      centred on 0 over the whole map's largest ``|value|`` (so colours stay put while it
      fills), the current pixel outlined in black."""
    kh, kw = out.kernel_size
    sh, sw = out.span
    big, f = enlarge(_display(out), width)
    if step.position + 1 < out.num_positions:
        big = outline(big, out.window(step.position + 1), f, NEXT, thickness=max(1, f // 6))
    big = outline(big, (step.top, step.left, step.top + sh, step.left + sw), f, WINDOW, thickness=max(2, f // 3))
    if out.dilation != (1, 1):
        for ty in step.top + out.dilation[0] * np.arange(kh):
            for tx in step.left + out.dilation[1] * np.arange(kw):
                big = dot(big, ty, tx, f, WINDOW, radius=max(1, f // 4))
    oh, ow = out.out_size
    peak = float(np.abs(out.output).max()) or 1.0
    rgb = diverging_colours(out.output, peak).reshape(oh * ow, 3)
    rgb[step.position + 1:] = UNFILLED
    obig, of = enlarge(rgb.reshape(oh, ow, 3), width)
    obig = outline(obig, (step.row, step.col, step.row + 1, step.col + 1), of, (0, 0, 0), thickness=max(1, of // 4))
    return big, obig


def _table(values: np.ndarray, colours: np.ndarray, tips: list[str], padding: np.ndarray, digits: int | None,
           cell: int) -> str:
    """One ``(kh, kw)`` block of coloured cells, numbers in them when ``digits`` is set, a
    tooltip each; taps on the padding get a dotted border."""
    rows = []
    for r in range(values.shape[0]):
        tds = []
        for c in range(values.shape[1]):
            bg = colours[r, c]
            ink = "#000" if 0.299 * bg[0] + 0.587 * bg[1] + 0.114 * bg[2] > 140 else "#fff"
            border = "1px dotted #555" if padding[r, c] else "1px solid #fff"
            text = f"{values[r, c]:.{digits}f}" if digits is not None else ""
            tds.append(f'<td title="{html.escape(tips[r * values.shape[1] + c])}" style="background:rgb'
                       f'({bg[0]},{bg[1]},{bg[2]});color:{ink};border:{border};width:{cell}px;height:{cell}px;'
                       f'padding:0;text-align:center;font-size:12px">{text}</td>')
        rows.append("<tr>" + "".join(tds) + "</tr>")
    return '<table style="border-collapse:collapse;margin:0">' + "".join(rows) + "</table>"


def conv_products_html(out: ConvOutput, step: ConvStep, channel_names: tuple[str, ...] = CHANNEL_NAMES,
                       digits: int = 2) -> str:
    """One row per input channel: the input patch (grey over the whole padded input's range) x
    the kernel = their element-wise products (both diverging, centred on 0: the kernel over its
    own largest ``|weight|``, the products over the largest product at any position), then the
    row's sum. Values are printed in the cells for kernels of at most 5 x 5 (``digits``
    decimals) and in every cell's tooltip; taps on the padding have a dotted border. An HTML
    fragment (tables, inline styles only) for ``st.html`` or a notebook."""
    kh, kw = out.kernel_size
    names = _names(out.in_channels, channel_names)
    show = digits if max(kh, kw) <= 5 else None
    cell = 40 if show is not None else max(8, 200 // max(kh, kw))
    lo, hi = float(out.padded.min()), float(out.padded.max())
    grey = np.rint(np.clip((step.patch - lo) / ((hi - lo) or 1.0), 0, 1) * 255).astype(np.uint8)
    patch_rgb = np.repeat(grey[..., None], 3, -1)
    kpeak = float(np.abs(out.kernel).max()) or 1.0
    ppeak = float(np.abs(out.patches() * out.kernel).max()) or 1.0
    pad = np.asarray(step.on_padding, bool)
    sign = '<td style="font-size:22px;padding:0 10px;border:none">{}</td>'
    rows = []
    for c in range(out.in_channels):
        def tips(what: str, z: np.ndarray) -> list[str]:
            return [f"{names[c]}, tap ({r}, {k}){' (padding)' if pad[r, k] else ''}: {what} {z[r, k]:.4f}"
                    for r in range(kh) for k in range(kw)]

        blocks = [_table(step.patch[c], patch_rgb[c], tips("input", step.patch[c]), pad, show, cell)]
        for z, peak, what in ((out.kernel[c], kpeak, "weight"), (step.product[c], ppeak, "product")):
            blocks.append(_table(z, diverging_colours(z, peak), tips(what, z), pad, show, cell))
        rows.append(f'<tr><td style="font-weight:bold;padding-right:10px;border:none">{html.escape(names[c])}</td>'
                    f'<td style="border:none">{blocks[0]}</td>{sign.format("&times;")}'
                    f'<td style="border:none">{blocks[1]}</td>{sign.format("=")}'
                    f'<td style="border:none">{blocks[2]}</td>'
                    f'<td style="padding-left:10px;border:none">sum {step.channel_sums[c]:+.3f}</td></tr>')
    heads = "".join(f'<th style="font-weight:normal;border:none;text-align:center">{h}</th>' for h in
                    ("", "input patch (normalised)", "", "kernel", "", "products", ""))
    return ('<table style="border-collapse:separate;border-spacing:0 8px;border:none">'
            f"<tr>{heads}</tr>{''.join(rows)}</table>")

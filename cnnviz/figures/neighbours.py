"""Nearest-neighbour figures: AlexNet's figure 4 for one image (a Plotly figure), AlexNet's figure 4
for several query images (a picture drawn at its final size, for slides, pages and files), and
neighbour purity per class (a Vega-Lite chart, Altair, for pages)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import altair as alt
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..class_names import class_display_name, class_display_names  # noqa: F401 (class_display_name also imported from here)
from ..inspect.neighbours import PurityResult, QueryNeighbours
from .pictures import TextCanvas, fitted_thumbnail, line_height, text_width, wrap_text


def _caption(captions: Sequence[str] | None, i: int) -> str:
    return captions[i] if captions is not None and i < len(captions) else ""


def _grid(feature_images: np.ndarray, pixel_images: np.ndarray | None,
          feature_captions: Sequence[str] | None, pixel_captions: Sequence[str] | None,
          ) -> tuple[go.Figure, int, int]:
    """:func:`neighbours_figure`'s empty subplots, captions as titles: ``(figure, rows, cols)``."""
    k = len(feature_images)
    cols = max(k, 2, len(pixel_images) if pixel_images is not None else 0)
    rows = 2 if pixel_images is None else 3
    specs: list[list[dict | None]] = [[{"type": "image"}, {"type": "bar", "colspan": cols - 1}]
                                      + [None] * (cols - 2)]
    titles = ["test image", "top predictions"]
    specs.append([{"type": "image"}] * cols)
    titles += [_caption(feature_captions, i) for i in range(cols)]
    if pixel_images is not None:
        specs.append([{"type": "image"}] * cols)
        titles += [_caption(pixel_captions, i) for i in range(cols)]
    fig = make_subplots(rows=rows, cols=cols, specs=specs, subplot_titles=titles,
                        row_heights=[1.0] * rows, vertical_spacing=0.16, horizontal_spacing=0.02)
    return fig, rows, cols


def neighbours_figure(
    query: np.ndarray,
    top_classes: Sequence[tuple[str, float]],
    feature_images: np.ndarray,
    pixel_images: np.ndarray | None = None,
    feature_captions: Sequence[str] | None = None,
    pixel_captions: Sequence[str] | None = None,
    title: str = "",
) -> go.Figure:
    """A test image, its top predictions, and its nearest training images (AlexNet figure 4).

    ``query``: ``(H, W, 3) uint8``; ``top_classes``: ``(class name, probability)`` pairs, most
    probable first (e.g. the top 5); ``feature_images``: ``(k, H, W, 3) uint8`` nearest in
    feature space; ``pixel_images``: the same for raw pixels (row left out when ``None``);
    captions (class, distance) go above each neighbour.

    Traces: 1 image + 1 bar + ``k`` feature images (+ ``k`` pixel images).
    """
    fig, rows, cols = _grid(feature_images, pixel_images, feature_captions, pixel_captions)
    fig.add_trace(go.Image(z=np.asarray(query, np.uint8), hoverinfo="skip", name="test image"), 1, 1)
    names = [c for c, _ in top_classes][::-1]  # most probable at the top
    probs = [float(p) for _, p in top_classes][::-1]
    fig.add_trace(go.Bar(x=probs, y=names, orientation="h", name="probability",
                         text=[f"{n}  {p:.1%}" for n, p in zip(names, probs)], textposition="outside",
                         cliponaxis=False, hovertemplate="%{y}: %{x:.1%}<extra></extra>"), 1, 2)
    # the axis runs past 100% to leave room for the bar labels; ticks stop at 100%
    fig.update_xaxes(range=[0, 1.35], tickvals=[0, 0.25, 0.5, 0.75, 1], tickformat=".0%", row=1, col=2)
    fig.update_yaxes(showticklabels=False, row=1, col=2)  # class names ride on the bars
    for i, img in enumerate(feature_images):
        fig.add_trace(go.Image(z=np.asarray(img, np.uint8), name=_caption(feature_captions, i),
                               hoverinfo="name"), 2, i + 1)
    if pixel_images is not None:
        for i, img in enumerate(pixel_images):
            fig.add_trace(go.Image(z=np.asarray(img, np.uint8), name=_caption(pixel_captions, i),
                                   hoverinfo="name"), 3, i + 1)
    for r in range(1, rows + 1):
        for c in range(1, cols + 1):
            if r == 1 and c == 2:
                continue
            if r == 1 and c > 2:
                break
            fig.update_xaxes(visible=False, row=r, col=c)
            fig.update_yaxes(visible=False, row=r, col=c)
    fig.update_annotations(font_size=11)
    row_names = {2: "nearest in feature space", 3: "nearest in pixel space"}
    for r in range(2, rows + 1):  # a label over each neighbour row, left-aligned
        top = fig.get_subplot(r, 1).yaxis.domain[1]
        fig.add_annotation(text=f"<b>{row_names[r]}</b>", xref="paper", yref="paper", x=0, y=top + 0.075,
                           xanchor="left", yanchor="bottom", showarrow=False, font_size=12)
    fig.update_layout(title=title or None, showlegend=False, height=170 * rows + 60,
                      margin=dict(l=40, r=10, t=60 if title else 40, b=10))
    return fig


def purity_chart(result: PurityResult, classes: Sequence[str], pixels: PurityResult | None = None,
                 height: int = 300) -> alt.LayerChart:
    """Bar per class of mean neighbour purity (fraction of the ``k`` nearest training images that
    share the test image's class), with the overall mean as a dashed rule. With ``pixels`` (the
    same measure in raw pixel space), grouped bars compare the two spaces (grey: pixels). Class
    names are written whole and slanted past 8 classes; the chart grows by their height, so
    ``height`` (px) stays the room of the bars and the rest."""
    names = class_display_names(list(classes)[: len(result.per_class)])
    spaces = [("penultimate features", result)] + ([("raw pixels", pixels)] if pixels is not None else [])
    labels = [f"{label} (overall {res.overall:.1%})" for label, res in spaces]
    bars = pd.DataFrame([{"class": c, "space": lab, "purity": float(np.nan_to_num(res.per_class[i], nan=0.0)),
                          "test images": int(res.support[i])}
                         for lab, (_, res) in zip(labels, spaces) for i, c in enumerate(names)])
    overall = pd.DataFrame({"space": labels, "overall": [res.overall for _, res in spaces]})
    colour = alt.Color("space:N", title=None, sort=labels,
                       legend=alt.Legend(orient="bottom", labelLimit=0) if pixels else None,
                       scale=alt.Scale(domain=labels, range=["#1f77b4", "#aaaaaa"][: len(labels)]))
    chart = alt.Chart(bars).mark_bar().encode(
        x=alt.X("class:N", sort=names, title=None,  # names whole: no ellipsis
                axis=alt.Axis(labelAngle=-45 if len(names) > 8 else 0, labelLimit=0, labelOverlap=False)),
        xOffset=alt.XOffset("space:N", sort=labels), y=alt.Y("purity:Q", title="same-class neighbours",
                                                             scale=alt.Scale(domain=[0, 1.05]),
                                                             axis=alt.Axis(format="%")),
        color=colour, tooltip=["space:N", "class:N", alt.Tooltip("purity:Q", format=".1%"), "test images:Q"])
    rules = alt.Chart(overall).mark_rule(strokeDash=[5, 3]).encode(y="overall:Q", color=colour)
    where = result.metric if pixels is None else f"features {result.metric}, pixels {pixels.metric}"
    slanted = round(0.71 * 7 * max(map(len, names), default=0)) if len(names) > 8 else 0  # ~7 px a letter at 45°
    return alt.layer(chart, rules).properties(
        title=f"{result.k}-nearest-neighbour purity by class ({where})", height=height + slanted)


# -- AlexNet's figure 4: rows of a query image and its nearest training images ------------------

LABEL_PX = 20  # the labels' font size: the smallest text of a slide
DIFFERENT = (200, 40, 20)  # frame and label of a neighbour of another class than its query
SAME = (90, 90, 90)
_MARK = "\u2717 "  # the ballot x before the class of a neighbour of another class


@dataclass(frozen=True)
class QueryRowsLayout:
    """Where :func:`draw_query_rows` put things: ``thumb`` (px a side), ``rows`` (the top of each
    row's thumbnails), ``columns`` (the left of the query's and each neighbour's thumbnail) and
    ``band`` (each row's label height)."""

    thumb: int
    rows: tuple[int, ...]
    columns: tuple[int, ...]
    band: tuple[int, ...]


@dataclass
class _Label:
    text: str
    left: float  # the span of the thumbnails it names
    right: float
    colour: tuple[int, int, int]
    line: bool  # a run of several thumbnails: a rule either side of the text shows the span
    width: float = 0.0
    x: float = 0.0


def _place(labels: list[_Label], lo: float, hi: float, gap: float) -> bool:
    """Put each label's ``x`` (its left end) as near the centre of its span as labels that do not
    overlap allow, inside ``[lo, hi]``; False when they cannot all fit on one line."""
    if sum(lab.width for lab in labels) + gap * (len(labels) - 1) > hi - lo:
        return False
    for lab in labels:
        lab.x = min(max(lo, (lab.left + lab.right - lab.width) / 2), hi - lab.width)
    for a, b in zip(labels, labels[1:]):  # push right
        b.x = max(b.x, a.x + a.width + gap)
    labels[-1].x = min(labels[-1].x, hi - labels[-1].width)
    for a, b in zip(labels[-2::-1], labels[:0:-1]):  # push left
        a.x = min(a.x, b.x - gap - a.width)
    return labels[0].x >= lo - 0.5


def _row_labels(result: QueryNeighbours, q: int, classes: Sequence[str], columns: Sequence[float],
                thumb: int) -> list[_Label]:
    """The labels of row ``q``: the query's class, then one per run of neighbours of one class."""
    def name(c: int) -> str:
        return class_display_name(classes[c]) if 0 <= c < len(classes) else "unknown class"

    qc = int(result.query_labels[q])
    out = [_Label(name(qc), columns[0], columns[0] + thumb, (20, 20, 20), False)]
    labels, same = result.labels[q], result.same[q]
    j = 0
    while j < result.k:
        e = j
        while e + 1 < result.k and labels[e + 1] == labels[j] and same[e + 1] == same[j]:
            e += 1
        text = name(int(labels[j])) if same[j] or qc < 0 else _MARK + name(int(labels[j]))
        out.append(_Label(text, columns[j + 1], columns[e + 1] + thumb, SAME if same[j] or qc < 0 else DIFFERENT,
                          e > j))
        j = e + 1
    return out


def _row_lines(labs: list[_Label], cells: list[tuple[float, float]], lo: float, hi: float, size: int) -> int:
    """Lay out one row's labels: each on one line where the row's labels can share one with every
    label under the middle of the thumbnails it names; else each wrapped to its own cell.
    Returns the number of lines."""
    for lab in labs:
        lab.width = text_width(lab.text, size)
    if _place(labs, lo, hi, 18) and all(lab.x <= (lab.left + lab.right) / 2 <= lab.x + lab.width for lab in labs):
        return 1
    lines = 1
    for lab, (a, b) in zip(labs, cells):
        wrapped = wrap_text(lab.text, size, b - a)
        lines = max(lines, len(wrapped))
        lab.width = max(text_width(t, size) for t in wrapped)
        lab.x = min(max(a, (lab.left + lab.right - lab.width) / 2), b - lab.width)
    return lines


def draw_query_rows(canvas: TextCanvas, box: tuple[int, int, int, int], result: QueryNeighbours,
                    query_images: np.ndarray, train_images: np.ndarray, classes: Sequence[str],
                    min_thumb: int = 120, size: int = LABEL_PX) -> QueryRowsLayout:
    """AlexNet's figure 4 inside ``box`` ``(left, top, right, bottom)`` of ``canvas``: one row per
    query, the query image (``query_images[result.queries[q]]``) on the left and its nearest
    training images (``train_images[result.indices[q]]``) to its right, nearest first.

    Under each thumbnail its class, in full (one line where the row's names can share one, else
    wrapped); a run of neighbours of one class shares one label with a rule spanning it. A
    neighbour of another class than its query has a red frame and its class marked with a cross.
    Thumbnails are as large as fit (whole multiples of the image's size where that reaches
    ``min_thumb``), never smaller than ``min_thumb`` unless ``box`` is too small for it."""
    x0, y0, x1, y1 = box
    n_rows, k = len(result), result.k
    if n_rows == 0:
        raise ValueError("no query to draw: the result holds no query image")
    side = int(max(np.asarray(query_images).shape[1:3]))
    gap_q, row_gap, frame, min_gap, under = 36, 6, 4, 14, 2
    lh = line_height(size)

    qnames = [text_width(class_display_name(classes[c]) if 0 <= c < len(classes) else "unknown class", size)
              for c in result.query_labels]
    q_text = min(max(qnames), 220)  # the query column: room for its name on up to a few lines

    def geometry(thumb: int):
        qcol = max(thumb, q_text)
        start = x0 + frame + qcol + gap_q  # each neighbour centred in a cell of 1/k of the room left
        pitch = (x1 - start) / k
        columns = [x0 + frame + (qcol - thumb) // 2] + [start + j * pitch + (pitch - thumb) / 2 for j in range(k)]
        rows = []
        for q in range(n_rows):
            labs = _row_labels(result, q, classes, columns, thumb)
            labs[0].left, labs[0].right = x0 + frame, x0 + frame + qcol
            # each label's cell: its thumbnails and half the gaps either side, cells apart by min_gap
            cuts = [x0 - min_gap / 2] + [(a.right + b.left) / 2 for a, b in zip(labs, labs[1:])] + [x1 + min_gap / 2]
            cells = [(a + min_gap / 2, b - min_gap / 2) for a, b in zip(cuts, cuts[1:])]
            rows.append((labs, _row_lines(labs, cells, x0, x1, size)))
        return columns, rows

    def height(thumb: int, lines: list[int]) -> int:
        return n_rows * (thumb + under) + lh * sum(lines) + row_gap * (n_rows - 1)

    def fit(lines: list[int]) -> int:
        room_h = (y1 - y0 - lh * sum(lines) - under * n_rows - row_gap * (n_rows - 1)) / n_rows
        room_w = (x1 - x0 - 2 * frame - gap_q - q_text) / k - 24
        best = int(max(1, min(room_h, room_w)))
        whole = best // side * side
        return whole if whole >= min(min_thumb, best) and whole > 0 else best

    thumb = fit([1] * n_rows)
    for _ in range(4):  # the labels a size allows, then the size those labels leave, until they agree
        columns, rows = geometry(thumb)
        smaller = fit([n for _, n in rows])
        if smaller >= thumb:
            break
        thumb = smaller
    columns, rows = geometry(thumb)
    while thumb > 8 and height(thumb, [n for _, n in rows]) > y1 - y0:
        thumb -= 2
        columns, rows = geometry(thumb)
    bands = [lh * n for _, n in rows]
    total = height(thumb, [n for _, n in rows])
    y = y0 + max(0, (y1 - y0 - total) // 2)
    tops = []
    qimg, timg = np.asarray(query_images), np.asarray(train_images)
    for q in range(n_rows):
        tops.append(y)
        canvas.paste(fitted_thumbnail(qimg[result.queries[q]], thumb), columns[0], y)
        for j in range(k):
            x = int(round(columns[j + 1]))
            canvas.paste(fitted_thumbnail(timg[result.indices[q, j]], thumb), x, y)
            if result.query_labels[q] >= 0 and not result.same[q, j]:
                canvas.draw.rectangle([x - frame, y - frame, x + thumb + frame - 1, y + thumb + frame - 1],
                                      outline=DIFFERENT, width=frame)
        labs, lines = rows[q]
        ly = y + thumb + under
        for n, lab in enumerate(labs):
            wrapped = [lab.text] if lines == 1 else wrap_text(lab.text, size, lab.width + 0.5)
            for i, t in enumerate(wrapped):
                canvas.text(lab.x + lab.width / 2, ly + i * lh, t, size, lab.colour, align="center", block=lab.text)
            if lab.line:  # a rule from the run's first thumbnail to its last, the text in its middle
                mid = ly + lh // 2
                a = max(lab.left + 2, labs[n - 1].x + labs[n - 1].width + 8) if n else lab.left + 2
                b = min(lab.right - 2, labs[n + 1].x - 8) if n + 1 < len(labs) else lab.right - 2
                for u, v, end in ((a, lab.x - 8, a), (lab.x + lab.width + 8, b, b)):
                    if v - u > 4:
                        canvas.draw.line([(u, mid), (v, mid)], fill=lab.colour, width=2)
                        if end in (lab.left + 2, lab.right - 2):  # a tick where the run ends
                            canvas.draw.line([(end, mid - 7), (end, mid)], fill=lab.colour, width=2)
        y += thumb + under + bands[q] + row_gap
    return QueryRowsLayout(thumb, tuple(tops), tuple(int(round(c)) for c in columns), tuple(bands))


def query_rows_picture(result: QueryNeighbours, query_images: np.ndarray, train_images: np.ndarray,
                       classes: Sequence[str], width: int = 1600, height: int = 900,
                       title: str | None = None, min_thumb: int = 120) -> TextCanvas:
    """AlexNet's figure 4 for several queries as a ``width`` x ``height`` picture (a title line,
    then :func:`draw_query_rows`); ``.image`` is the PIL image, ``.texts`` what it says."""
    canvas = TextCanvas(width, height)
    top = 16
    if title is None:
        share = f", {result.same_count} of {result.same.size} of the same class" if (result.query_labels >= 0).any() else ""
        title = (f"{len(result)} held-out images (left) and their {result.k} nearest training images in the "
                 f"network's features{share}")
    top = canvas.paragraph(24, top, title, 24, width - 48, bold=True) + 12
    draw_query_rows(canvas, (24, top, width - 24, height - 12), result, query_images, train_images, classes,
                    min_thumb)
    return canvas

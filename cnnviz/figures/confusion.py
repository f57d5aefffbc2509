"""Confusion matrices and per-class precision/recall/F1 bars: Vega-Lite charts (Altair) for pages,
which a browser draws for a fraction of a Plotly figure's cost, and a Plotly heatmap for the
lecture deck."""

from __future__ import annotations

from typing import Sequence

import altair as alt
import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ..inspect.confusion import ConfusionResult
from .neighbours import class_display_name


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


CHART_PX = 13  # class names, cell values and titles of the page's charts: never under 12 px
TITLE_LIMIT = 2000  # px: a title is never cut to a narrow chart's width (Vega's default), e.g. 3 classes


def _shown(result: ConfusionResult, classes: Sequence[int] | None) -> list[int]:
    shown = list(range(result.num_classes)) if classes is None else [int(c) for c in classes]
    if not shown or any(not 0 <= c < result.num_classes for c in shown) or len(set(shown)) < len(shown):
        raise ValueError(f"classes to show must be distinct class numbers in 0..{result.num_classes - 1}")
    return shown


def _display_names(classes: Sequence[str]) -> list[str]:
    """Every class name in full (underscores as spaces); a name that two classes share gets its
    number, so a category axis keeps them apart."""
    names = [class_display_name(c) for c in classes]
    if len(set(names)) < len(names):
        names = [f"{n} ({i})" for i, n in enumerate(names)]
    return names


OTHER = "all other classes"


def confusion_chart(result: ConfusionResult, normalised: bool = False, show_values: bool | None = None,
                    title: str | None = None, classes: Sequence[int] | None = None) -> alt.LayerChart:
    """The confusion matrix as coloured cells, true classes down the side, predicted along the
    bottom, every name in full at 13 px; ``normalised`` colours by the row-normalised rate instead
    of the count. ``classes``: the class numbers to show, in order (default: all); a block of
    some classes gets a last column, "all other classes", with the rest of each row, so every row
    still adds up to its images. Cell values (13 px) are written in when ``show_values``
    (default: 20 classes shown or fewer; with more, cells shrink to colour only and the text
    stays the same size). A click selects a cell: the selection ``cell`` carries its ``true``
    and ``pred`` class numbers (``pred`` -1 for the other classes). Hover gives the count and
    the rate."""
    shown = _shown(result, classes)
    k = len(shown)
    names = _display_names(result.classes)
    counts, rates, support = result.counts, result.normalised, result.support
    other = k < result.num_classes
    if show_values is None:
        show_values = k <= 20
    columns = [(j, names[j]) for j in shown] + ([(-1, OTHER)] if other else [])
    rows = []
    for i in shown:
        rest = int(support[i] - counts[i, shown].sum())
        for j, label in columns:
            n = int(counts[i, j]) if j >= 0 else rest
            rate = float(rates[i, j]) if j >= 0 else (rest / support[i] if support[i] else 0.0)
            rows.append({"true class": names[i], "predicted class": label, "true": i, "pred": j,
                         "images": n, "of": int(support[i]), "rate": rate,
                         "value": rate if normalised else float(n),
                         "text": (f"{rate:.0%}" if normalised else str(n)) if n else ""})
    df = pd.DataFrame(rows)
    top = 1.0 if normalised else max(float(df["value"].max()), 1.0)
    df["dark"] = df["value"] > 0.6 * top  # white text on dark cells
    cell = alt.selection_point(name="cell", fields=["true", "pred"], on="click")
    step = 30 if show_values else 16  # px a cell: three digits at 13 px (20 fit a 1280 px window), else colour
    axis = dict(labelLimit=0, labelFontSize=CHART_PX, titleFontSize=CHART_PX, labelOverlap=False)
    x = alt.X("predicted class:N", sort=[c for _, c in columns], title="predicted",
              axis=alt.Axis(labelAngle=-45, **axis))
    y = alt.Y("true class:N", sort=[names[i] for i in shown], title="true", axis=alt.Axis(**axis))
    rect = alt.Chart(df).mark_rect(stroke="white", strokeWidth=1).encode(
        x=x, y=y,
        color=alt.condition(alt.datum.images == 0, alt.value("#f7f7f7"),  # an empty cell: off-white
                            alt.Color("value:Q", title="rate" if normalised else "images",
                                      scale=alt.Scale(scheme="blues", domain=[0, top]),
                                      legend=alt.Legend(format=".0%" if normalised else "d", orient="top",
                                                        labelFontSize=CHART_PX, titleFontSize=CHART_PX))),
        opacity=alt.condition(cell, alt.value(1.0), alt.value(0.55)),
        tooltip=[alt.Tooltip("true class:N", title="true"), alt.Tooltip("predicted class:N", title="predicted"),
                 alt.Tooltip("images:Q"), alt.Tooltip("of:Q", title="of true class"),
                 alt.Tooltip("rate:Q", format=".1%")],
    ).add_params(cell)
    layers = [rect]
    if show_values:
        layers.append(alt.Chart(df).mark_text(fontSize=CHART_PX).encode(
            x=x, y=y, text="text:N",
            color=alt.condition(alt.datum.dark, alt.value("white"), alt.value("black"))))
    head = title if title is not None else (
        f"confusion (row-normalised), accuracy {result.accuracy:.1%}" if normalised
        else f"confusion (counts), accuracy {result.accuracy:.1%}")
    return alt.layer(*layers).properties(title=alt.TitleParams(head, fontSize=CHART_PX + 1, limit=TITLE_LIMIT),
                                         width=alt.Step(step), height=alt.Step(step))


def class_metrics_chart(result: ConfusionResult, title: str = "precision, recall and F1 by class, lowest F1 first",
                        classes: Sequence[int] | None = None) -> alt.Chart:
    """Horizontal bars of per-class precision, recall and F1, one group per class with its name in
    full (13 px), sorted by F1, lowest first (ties: the lower class number); ``classes``: the
    class numbers to show (default: all). Hover gives the class, the value and its images."""
    shown = _shown(result, classes)
    names = _display_names(result.classes)
    f1 = np.nan_to_num(result.f1)
    order = sorted(shown, key=lambda i: (f1[i], i))
    metrics = ("precision", "recall", "F1")
    df = pd.DataFrame([{"class": names[i], "metric": label, "value": float(np.nan_to_num(values[i])),
                        "images": int(result.support[i])}
                       for label, values in zip(metrics, (result.precision, result.recall, result.f1))
                       for i in order])
    axis = dict(labelFontSize=CHART_PX, titleFontSize=CHART_PX)
    return alt.Chart(df, title=alt.TitleParams(title, fontSize=CHART_PX + 1, limit=TITLE_LIMIT)).mark_bar().encode(
        y=alt.Y("class:N", sort=[names[i] for i in order], title=None,
                axis=alt.Axis(labelLimit=0, labelOverlap=False, **axis)),
        yOffset=alt.YOffset("metric:N", sort=list(metrics)),
        x=alt.X("value:Q", title=None, scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%", **axis)),
        color=alt.Color("metric:N", sort=list(metrics), title=None,
                        scale=alt.Scale(domain=list(metrics), range=["#4c78a8", "#f58518", "#54a24b"]),
                        legend=alt.Legend(orient="top", labelFontSize=CHART_PX)),
        tooltip=[alt.Tooltip("class:N"), "metric:N", alt.Tooltip("value:Q", format=".1%"), "images:Q"],
    ).properties(height=alt.Step(7))


# -- the confusion matrix as a picture drawn at its final size (slides and files) ---------------

_DARK_BLUE = np.array([8, 48, 107], np.float64)


def most_confused(result: ConfusionResult) -> tuple[int, int, int] | None:
    """``(true class, predicted class, images)`` of the largest off-diagonal count (the first
    such pair on a tie), or None when nothing is confused."""
    off = np.asarray(result.counts, np.int64).copy()
    np.fill_diagonal(off, 0)
    if not off.size or off.max() <= 0:
        return None
    i, j = np.unravel_index(int(off.argmax()), off.shape)
    return int(i), int(j), int(off[i, j])


def draw_confusion(canvas, box: tuple[int, int, int, int], result: ConfusionResult, size: int = 20,
                   max_cell: int = 64) -> tuple[int, int]:
    """The confusion matrix inside ``box`` of a :class:`~cnnviz.figures.pictures.TextCanvas`:
    one row per true class, labelled ``n  class name`` in full, and one column per predicted
    class, numbered as the rows; each cell coloured by its row's rate (white: never, dark blue:
    always) with its count written in. Cells are square, as large as fit (at most ``max_cell``).
    Returns the ``(width, height)`` drawn. Where the box is too small for ``size`` px text in a
    cell, counts are left out rather than drawn smaller."""
    from .pictures import line_height, text_width  # noqa: PLC0415

    x0, y0, x1, y1 = box
    k = result.num_classes
    names = [f"{i + 1}  {str(c).replace('_', ' ')}" for i, c in enumerate(result.classes)]
    lh = line_height(size)
    label_w = int(max(text_width(n, size) for n in names)) + 12
    head = lh + 8
    corner = "true \u2193  predicted \u2192"
    label_w = max(label_w, int(text_width(corner, size)) + 12 - 0)
    cell = int(min(max_cell, (x1 - x0 - label_w) / max(k, 1), (y1 - y0 - head) / max(k, 1)))
    if cell < lh:  # no room for names beside the rows: the numbers alone
        label_w = int(text_width(str(k), size)) + 12
        cell = int(min(max_cell, (x1 - x0 - label_w) / max(k, 1), (y1 - y0 - head) / max(k, 1)))
    cell = max(cell, 2)
    counts, rates = np.asarray(result.counts), np.asarray(result.normalised)
    show = cell >= lh + 2 and cell >= text_width(str(int(counts.max(initial=0))), size) + 6
    gx, gy = x0 + label_w, y0 + head
    canvas.text(x0, y0, corner, size, (90, 90, 90)) if label_w > text_width(corner, size) else None
    for j in range(k):
        if cell >= text_width(str(j + 1), size) + 2:
            canvas.text(gx + j * cell + cell / 2, y0 + 2, str(j + 1), size, (60, 60, 60), align="center")
    for i in range(k):
        y = gy + i * cell
        if cell >= lh:
            label = names[i] if label_w > text_width(str(k), size) + 12 else str(i + 1)
            canvas.text(x0, y + (cell - lh) / 2, label, size, (20, 20, 20))
        for j in range(k):
            x = gx + j * cell
            t = float(rates[i, j])
            colour = tuple(int(v) for v in np.rint(255 + (_DARK_BLUE - 255) * t))
            canvas.draw.rectangle([x, y, x + cell - 2, y + cell - 2], fill=colour,
                                  outline=(225, 225, 225) if not counts[i, j] else None)
            if show and counts[i, j]:
                canvas.text(x + (cell - 1) / 2, y + (cell - 1 - lh) / 2, str(int(counts[i, j])), size,
                            (255, 255, 255) if t > 0.5 else (20, 20, 20), align="center")
    return label_w + k * cell, head + k * cell

"""Charts of faithfulness: deletion and insertion curves, one line per method or baseline map (a
Vega-Lite chart, Altair: a page draws it for a fraction of a Plotly figure's cost)."""

from __future__ import annotations

from typing import Mapping

import altair as alt
import numpy as np
import pandas as pd

from ..inspect.faithfulness import FaithfulnessReport
from .attribution import TITLES

__all__ = ["faithfulness_chart", "report_curves"]

_BASELINE_TITLES = {"random": "random map (baseline)", "sobel": "Sobel edges (baseline)"}


def _title(name: str) -> str:
    return TITLES.get(name) or _BASELINE_TITLES.get(name, name)


def faithfulness_chart(fractions: np.ndarray, deletion: Mapping[str, np.ndarray],
                       insertion: Mapping[str, np.ndarray], title: str = "", panel_width: int = 290
                       ) -> alt.HConcatChart:
    """Two panels over the fraction of pixels changed: deletion (the target's probability as the
    most important pixels go; lower area = more faithful) and insertion (as they come back on the
    mean-colour image; higher area = more faithful). Each panel's legend carries the areas;
    baselines are dashed; hover gives the values. ``panel_width``: each plot's width in px (the
    default fits both panels and their legends in a page's column at 1280 px)."""
    x = np.asarray(fractions, np.float64)
    names = list(deletion)
    panels = []
    for curves, head in ((deletion, "Deletion (lower area is better)"),
                         (insertion, "Insertion (higher area is better)")):
        rows, labels = [], []
        for name in names:
            y = np.asarray(curves[name], np.float64)
            area = float(((y[1:] + y[:-1]) / 2 * np.diff(x)).sum())
            label = f"{_title(name)}: {area:.3f}"
            labels.append(label)
            rows += [{"fraction": f, "probability": p, "map": label, "baseline": name in _BASELINE_TITLES}
                     for f, p in zip(x.tolist(), y.tolist())]
        panels.append(alt.Chart(pd.DataFrame(rows), title=head).mark_line().encode(
            x=alt.X("fraction:Q", title="fraction of pixels changed", scale=alt.Scale(domain=[0, 1])),
            y=alt.Y("probability:Q", title="probability of the class", scale=alt.Scale(domain=[0, 1.02])),
            color=alt.Color("map:N", sort=labels, title="area",
                            legend=alt.Legend(orient="bottom", columns=1, labelLimit=panel_width)),
            strokeDash=alt.StrokeDash("baseline:N", legend=None, scale=alt.Scale(domain=[False, True],
                                                                                 range=[[1, 0], [6, 4]])),
            tooltip=[alt.Tooltip("map:N"), alt.Tooltip("fraction:Q", format=".2f"),
                     alt.Tooltip("probability:Q", format=".3f")],
        ).properties(width=panel_width, height=260))
    chart = alt.hconcat(*panels).resolve_scale(color="independent")
    return chart.properties(title=title) if title else chart


def report_curves(report: FaithfulnessReport) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """``(deletion, insertion)`` mean curves of a report, by method name, for
    :func:`faithfulness_chart`."""
    return ({s.name: s.mean_deletion for s in report.scores}, {s.name: s.mean_insertion for s in report.scores})

"""The lecture sequence: the steps a lecture walks through, in order, as plain data.

The dashboard's present mode moves through these steps with the keyboard (each step is a page
and the query parameters that set it up); ``cnnviz figures --deck`` draws one slide per step.
Nothing here imports Streamlit or torch.

Moving past either end stops there: :func:`next_step` of the last step and
:func:`previous_step` of the first are None (a lecture does not jump back to its start).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

__all__ = ["KEEP_PARAMS", "LECTURE_SEQUENCE", "LectureStep", "current_step", "next_step", "previous_step",
           "step_label", "step_query"]


@dataclass(frozen=True)
class LectureStep:
    """One step: ``name`` (also the slide's file name), ``title`` (shown as "step 3 of 7: title"),
    ``page`` (the dashboard page, relative to ``dashboard/``), ``params`` (the query parameters
    that set the page up for this step) and ``caption`` (one sentence for the slide)."""

    name: str
    title: str
    page: str
    params: Mapping[str, str] = field(default_factory=dict)
    caption: str = ""


LECTURE_SEQUENCE: tuple[LectureStep, ...] = (
    LectureStep("kernels", "First-layer kernels", "views/filters.py", {"epoch": "final"},
                "The first convolution's kernels drawn as colour images: edges, stripes and colour blobs."),
    LectureStep("kernels_over_epochs", "Kernels over training", "views/filters.py", {"epoch": "first"},
                "The same kernels saved during training, from initialisation (noise) to the end."),
    LectureStep("feature_maps", "Feature maps", "views/feature_maps.py", {"img": "0"},
                "What one layer's channels respond to in one image, strongest channels first."),
    LectureStep("receptive_field", "A receptive field", "views/receptive_fields.py", {"img": "0"},
                "The pixels one unit can see (box) and how much each of them moves it (glow)."),
    LectureStep("convolution", "The convolution, step by step", "views/convolution.py",
                {"img": "0", "ch": "0", "pos": "0"},
                "One kernel slides over the image; each output pixel is a sum of products."),
    LectureStep("neighbours", "Nearest neighbours", "views/neighbours.py", {"q5": "0"},
                "Five held-out images and the training images nearest to them in the network's features, "
                "as in AlexNet's figure 4."),
    LectureStep("mistakes", "Mistakes", "views/mistakes.py", {},
                "Which classes the network confuses, and its most confident mistakes."),
    LectureStep("unit", "One unit of a deeper layer", "views/units.py", {},
                "One channel of a middle layer: the image made to excite it, and the training images it fires on most."),
)

# Query parameters a step change keeps (the shared sidebar's choices and present mode); the
# page's own parameters are replaced by the next step's.
KEEP_PARAMS: tuple[str, ...] = ("model", "data", "present")


def _check(i: int) -> int:
    if not 0 <= i < len(LECTURE_SEQUENCE):
        raise IndexError(f"step {i} out of range: the lecture has steps 0 to {len(LECTURE_SEQUENCE) - 1}")
    return i


def next_step(i: int | None) -> int | None:
    """The step after ``i`` (None: a page outside the sequence, whose next step is the first);
    None after the last step."""
    if i is None:
        return 0
    return _check(i) + 1 if _check(i) + 1 < len(LECTURE_SEQUENCE) else None


def previous_step(i: int | None) -> int | None:
    """The step before ``i``; None before the first step or outside the sequence."""
    if i is None:
        return None
    return _check(i) - 1 if _check(i) > 0 else None


def current_step(page: str | None, step: str | None = None) -> int | None:
    """Which step a page shows: the URL's ``step`` (1-based, as shown) when that step is on
    ``page``; else the first step on ``page``; None when ``page`` is not in the sequence."""
    if page is None:
        return None
    if step is not None and step.isascii() and step.isdecimal() and len(step) < 4:
        i = int(step) - 1
        if 0 <= i < len(LECTURE_SEQUENCE) and LECTURE_SEQUENCE[i].page == page:
            return i
    return next((i for i, s in enumerate(LECTURE_SEQUENCE) if s.page == page), None)


def step_query(i: int, current: Mapping[str, str]) -> dict[str, str]:
    """The query parameters of step ``i``: :data:`KEEP_PARAMS` from ``current`` (the URL now),
    ``step`` (1-based) and the step's own parameters."""
    s = LECTURE_SEQUENCE[_check(i)]
    kept = {k: str(current[k]) for k in KEEP_PARAMS if k in current}
    return {**kept, "step": str(i + 1), **s.params}


def step_label(i: int) -> str:
    """``"step 3 of 7: Feature maps"``."""
    return f"step {_check(i) + 1} of {len(LECTURE_SEQUENCE)}: {LECTURE_SEQUENCE[i].title}"

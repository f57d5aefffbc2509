"""The lecture sequence (cnnviz.lecture_sequence): its order, its pages, and moving through it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from cnnviz.lecture_sequence import (
    KEEP_PARAMS, LECTURE_SEQUENCE, current_step, next_step, previous_step, step_label, step_query,
)

DASHBOARD = Path(__file__).resolve().parent.parent / "dashboard"


def test_the_steps_in_order():
    assert [(s.name, s.page) for s in LECTURE_SEQUENCE] == [
        ("kernels", "views/filters.py"),
        ("kernels_over_epochs", "views/filters.py"),
        ("feature_maps", "views/feature_maps.py"),
        ("receptive_field", "views/receptive_fields.py"),
        ("convolution", "views/convolution.py"),
        ("neighbours", "views/neighbours.py"),
        ("mistakes", "views/mistakes.py"),
        ("unit", "views/units.py"),
    ]
    assert [dict(s.params) for s in LECTURE_SEQUENCE] == [
        {"epoch": "final"}, {"epoch": "first"}, {"img": "0"}, {"img": "0"}, {"img": "0", "ch": "0", "pos": "0"},
        {"q5": "0"}, {}, {}]
    assert step_label(2) == "step 3 of 8: Feature maps"
    assert all(s.title and s.caption.endswith(".") for s in LECTURE_SEQUENCE)


def test_every_step_is_a_page_of_the_dashboard():
    """Each page is a file in dashboard/views and one of the pages app.py registers (its PAGE_FILES)."""
    app = ast.parse((DASHBOARD / "app.py").read_text())
    table = next(n.value for n in ast.walk(app) if isinstance(n, ast.Assign)
                 and any(getattr(t, "id", "") == "PAGE_FILES" for t in n.targets))
    registered = {row.elts[0].value for row in table.elts}
    assert len(registered) == 11
    for s in LECTURE_SEQUENCE:
        assert (DASHBOARD / s.page).is_file(), s.page
        assert s.page in registered, s.page


def test_next_and_previous_stop_at_the_ends():
    n = len(LECTURE_SEQUENCE)
    assert [next_step(i) for i in range(n)] == [1, 2, 3, 4, 5, 6, 7, None]
    assert [previous_step(i) for i in range(n)] == [None, 0, 1, 2, 3, 4, 5, 6]
    assert next_step(None) == 0 and previous_step(None) is None  # off the sequence: -> starts it
    with pytest.raises(IndexError, match="step 8 out of range"):
        next_step(8)


def test_which_step_a_page_shows():
    assert current_step("views/filters.py") == 0  # the first step on the page
    assert current_step("views/filters.py", "2") == 1  # the URL's step, when it is on that page
    assert current_step("views/filters.py", "3") == 0  # step 3 is not on Filters
    assert current_step("views/filters.py", "²") == 0 and current_step("views/filters.py", "-1") == 0
    assert current_step("views/mistakes.py", None) == 6
    assert current_step("views/model.py", "1") is None and current_step(None) is None


def test_a_step_keeps_model_data_and_present_and_replaces_the_rest():
    url = {"model": "tiny", "data": "/d", "present": "1", "ch": "5", "layer": "features.4", "step": "2"}
    assert KEEP_PARAMS == ("model", "data", "present")
    assert step_query(4, url) == {"model": "tiny", "data": "/d", "present": "1", "step": "5",
                                  "img": "0", "ch": "0", "pos": "0"}
    assert step_query(6, {"model": "tiny"}) == {"model": "tiny", "step": "7"}

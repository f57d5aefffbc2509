"""AppTest for present mode (dashboard/present.py, in the shared sidebar): the URL's present=1,
the CSS injected only then, the step bar, the keys registered, and walking the lecture sequence
with the buttons the keys press."""

from __future__ import annotations

import json
import re

from dashboard_fixtures import clickable_images, dashboard_env, errors, open_page, tiny_dashboard  # noqa: F401

from cnnviz.lecture_sequence import LECTURE_SEQUENCE


def present_css(at) -> list[str]:
    """Bodies of the injected present-mode style sheets (st.html sends them to the event block)."""
    return [h.proto.body for h in at.get("html") if "<style>" in h.proto.body and "stSidebar" in h.proto.body]


def shortcuts(at) -> dict[str, list[str]]:
    """The key map streamlit-shortcuts was given on this run (from its iframe's script)."""
    frames = [e.proto.srcdoc for e in at.sidebar.get("iframe") if "streamlit-shortcuts" in e.proto.srcdoc]
    assert len(frames) == 1, frames
    return json.loads(re.search(r"const shortcuts = (\{.*?\});", frames[0]).group(1))


def bar_text(at) -> str:
    return next(m.value for m in at.markdown if "leave present mode" in m.value)


def test_present_mode_is_off_by_default(dashboard_env):
    at = open_page("filters")
    assert not at.exception, errors(at)
    assert at.sidebar.toggle(key="present_toggle").value is False
    assert "present" not in at.query_params
    assert present_css(at) == []
    assert not [b for b in at.button if b.key in ("lecture_next", "lecture_prev")]
    assert shortcuts(at) == {"present_enter": ["p"], "present_exit": [], "lecture_next": [], "lecture_prev": []}
    assert at.sidebar.button(key="present_enter").label == "Present"  # what p presses (hidden by CSS)
    keys = [h.proto.body for h in at.sidebar.get("html") if "__cnnvizKeys" in h.proto.body]
    assert len(keys) == 1 and "forTheField" in keys[0] and '"arrowright"' in keys[0]
    assert at.button(key="f_deck_build").label == "Download the lecture deck"


def test_a_link_with_present_opens_in_present_mode(dashboard_env):
    at = open_page("filters", {"present": "1", "model": "tiny"})
    assert not at.exception, errors(at)
    assert at.sidebar.toggle(key="present_toggle").value is True
    assert at.query_params["present"] == "1"
    css = present_css(at)
    assert len(css) == 1  # once per run
    assert "font-size: 21.6px" in css[0]  # 1.35 x 16 px
    assert 'section[data-testid="stSidebar"]' in css[0] and "display: none" in css[0]
    assert '.stMain .stElementContainer:has([data-testid="stSlider"])' in css[0]
    assert bar_text(at).startswith("**step 1 of 7: First-layer kernels**")
    assert at.button(key="lecture_prev").disabled and not at.button(key="lecture_next").disabled
    assert shortcuts(at) == {"present_enter": [], "present_exit": ["p", "escape"],
                             "lecture_next": ["arrowright", "pagedown"], "lecture_prev": ["arrowleft", "pageup"]}
    assert not [b for b in at.button if b.key == "present_enter"]
    assert not [b for b in at.button if b.key == "f_deck_build"]  # no deck building in front of the class
    assert [t.value for t in at.title] == ["First-layer filters"]  # the page itself is all there
    assert "f_click" in clickable_images(at)  # the kernel grid


def test_the_step_buttons_walk_the_sequence_and_stop_at_the_ends(dashboard_env):
    at = open_page("filters", {"present": "1", "model": "tiny", "filter": "3"})
    titles = []
    for i in range(1, len(LECTURE_SEQUENCE)):
        at.button(key="lecture_next").click().run()
        assert not at.exception, errors(at)
        step = LECTURE_SEQUENCE[i]
        at.switch_page(step.page)  # AppTest reruns the page it was last switched to, not the one it is on
        assert bar_text(at).startswith(f"**step {i + 1} of 7: {step.title}**")
        for k, v in step.params.items():
            if k != "epoch":  # the tiny checkpoint has no snapshots: Filters drops the epoch
                assert at.query_params[k] == v, (step.name, k)
        assert at.query_params["step"] == str(i + 1)
        assert at.query_params["present"] == "1" and at.query_params["model"] == "tiny"
        if step.page != "views/filters.py":
            assert "filter" not in at.query_params  # Filters' own choices stay behind
        titles.append(at.title[0].value)
    assert titles == ["First-layer filters", "Feature maps", "Receptive fields", "The convolution, step by step",
                      "Nearest neighbours", "Mistakes"]
    assert at.button(key="lecture_next").disabled  # the last step: the next key does nothing
    assert not at.button(key="lecture_prev").disabled

    at.button(key="lecture_prev").click().run()
    assert not at.exception, errors(at)
    assert bar_text(at).startswith("**step 6 of 7: Nearest neighbours**") and at.query_params["step"] == "6"


def test_a_page_outside_the_sequence_starts_it(dashboard_env):
    at = open_page("model", {"present": "1"})
    assert not at.exception, errors(at)
    assert bar_text(at).startswith("**not a lecture step: → starts at step 1**")
    assert at.button(key="lecture_prev").disabled
    at.button(key="lecture_next").click().run()
    assert bar_text(at).startswith("**step 1 of 7: First-layer kernels**")
    assert at.title[0].value == "First-layer filters" and at.query_params["step"] == "1"


def test_the_toggle_leaves_and_enters_present_mode_and_survives_a_page_change(dashboard_env):
    at = open_page("convolution", {"present": "1", "ch": "2"})
    assert not at.exception, errors(at)
    assert bar_text(at).startswith("**step 5 of 7: The convolution, step by step**")
    at.button(key="present_exit").click().run()  # what p and Esc press
    assert not at.exception, errors(at)
    assert "present" not in at.query_params and at.query_params["ch"] == "2"
    assert present_css(at) == [] and not [m for m in at.markdown if "leave present mode" in m.value]
    assert at.sidebar.toggle(key="present_toggle").value is False
    assert shortcuts(at)["lecture_next"] == []

    at.sidebar.button(key="present_enter").click().run()  # what p presses outside present mode
    assert at.query_params["present"] == "1" and len(present_css(at)) == 1
    assert at.sidebar.toggle(key="present_toggle").value is True
    at.sidebar.toggle(key="present_toggle").set_value(False).run()  # the mouse's way
    assert "present" not in at.query_params and present_css(at) == []
    at.sidebar.toggle(key="present_toggle").set_value(True).run()
    assert at.query_params["present"] == "1" and len(present_css(at)) == 1
    at.switch_page("views/feature_maps.py").run()  # the sidebar's page links drop the URL's parameters
    assert not at.exception, errors(at)
    assert at.sidebar.toggle(key="present_toggle").value is True and at.query_params["present"] == "1"
    assert len(present_css(at)) == 1 and bar_text(at).startswith("**step 3 of 7: Feature maps**")

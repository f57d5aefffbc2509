"""AppTest for present mode (dashboard/present.py, in the shared sidebar): the URL's present=1,
each lecture step drawn as a slide (title, one line, a figure, no input widgets, no sidebar), the
step bar, the key script and the buttons it presses, and walking the lecture sequence."""

from __future__ import annotations

import html
import re

from dashboard_fixtures import clickable_images, dashboard_env, errors, open_page, tiny_dashboard  # noqa: F401

from cnnviz.lecture_sequence import LECTURE_SEQUENCE, step_label

INPUTS = ("selectbox", "radio", "slider", "select_slider", "number_input", "text_input", "toggle", "checkbox",
          "multiselect", "file_uploader", "color_picker", "pills")


def html_bodies(at) -> list[str]:
    return [h.proto.body for h in at.get("html")]


def slide_css(at) -> list[str]:
    """Bodies of the injected slide style sheets (st.html sends style-only HTML to the event block)."""
    return [b for b in html_bodies(at) if b.startswith("<style>") and ".st-key-slide " in b]


def slide_title(at) -> str:
    found = [re.search(r'<h1 class="cv-title">(.*?)</h1>', b) for b in html_bodies(at)]
    titles = [m.group(1) for m in found if m]
    assert len(titles) == 1, titles
    return html.unescape(titles[0])


def slide_texts(at) -> list[str]:
    return [html.unescape(m.group(1)) for b in html_bodies(at) for m in [re.search(r'<p class="cv-text">(.*?)</p>', b)]
            if m]


def slide_figures(at) -> list[str]:
    return [b for b in html_bodies(at) if b.startswith('<div class="cv-fig">')]


def bar_text(at) -> str:
    return next(m.value for m in at.markdown if "p / Esc: leave" in m.value)


OWN = {"views/feature_maps.py", "views/receptive_fields.py", "views/convolution.py", "views/units.py",
       "views/mistakes.py"}  # the steps' pages drawn through present.py's slide (Filters and Neighbours: their own)


def key_scripts(at) -> list[str]:
    return [b for b in html_bodies(at) if "__cnnvizKeys" in b]


def input_widgets(at) -> list[str]:
    return [f"{kind}:{w.key or w.label}" for kind in INPUTS for w in at.get(kind)]


def test_present_mode_is_off_by_default(dashboard_env):
    at = open_page("filters")
    assert not at.exception, errors(at)
    assert at.sidebar.toggle(key="present_toggle").value is False
    assert "Lecture: press p or turn on Present" in [c.value for c in at.sidebar.caption]
    assert "present" not in at.query_params
    assert slide_css(at) == [] and slide_figures(at) == []
    assert not [b for b in at.button if b.key in ("lecture_next", "lecture_prev", "present_exit")]
    assert at.sidebar.button(key="present_enter").label == "Present"  # what p presses (out of sight)
    scripts = key_scripts(at)
    assert len(scripts) == 1 and "typingIn" in scripts[0] and "ArrowRight" in scripts[0]
    assert "__streamlitShortcuts" not in scripts[0] and not at.get("iframe")  # no component frame for keys
    assert [t.value for t in at.title] == ["First-layer filters"]


def test_a_link_with_present_opens_a_slide(dashboard_env):
    at = open_page("feature_maps", {"present": "1", "model": "tiny"})
    assert not at.exception, errors(at)
    assert at.query_params["present"] == "1"
    assert len(slide_css(at)) == 1  # once per run
    assert "position: fixed" in slide_css(at)[0] and "stSidebar" not in slide_css(at)[0]
    assert "data-testid" not in slide_css(at)[0]  # own keyed containers only
    assert bar_text(at).endswith("p / Esc: leave")
    assert not at.button(key="lecture_prev").disabled and not at.button(key="lecture_next").disabled
    assert at.button(key="present_exit").label == "Exit"
    assert len(key_scripts(at)) == 1
    assert not [b for b in at.button if b.key == "present_enter"]
    assert input_widgets(at) == []  # the page leaves its widgets out, the sidebar too
    assert not at.sidebar.get("toggle") and not at.sidebar.get("selectbox")
    assert slide_title(at) == "step 3 of 8: Feature maps" and [t.value for t in at.title] == []
    assert slide_texts(at) == [LECTURE_SEQUENCE[2].caption]
    figs = slide_figures(at)
    assert len(figs) == 1 and figs[0].count("<img ") == 2 and "data:image/png;base64," in figs[0]
    assert not clickable_images(at)  # pictures, not the clickable ones


def test_the_first_step_has_its_title_and_keys(dashboard_env):
    at = open_page("filters", {"present": "1", "model": "tiny"})
    assert not at.exception, errors(at)
    assert slide_title(at) == "step 1 of 8: First-layer kernels"
    assert at.button(key="lecture_prev").disabled and not at.button(key="lecture_next").disabled
    assert not [b for b in at.button if b.key in ("present_enter", "f_deck_build")]


def test_every_step_is_a_slide_and_the_buttons_walk_the_sequence(dashboard_env):
    at = open_page("filters", {"present": "1", "model": "tiny", "filter": "3"})
    seen = []
    for i in range(1, len(LECTURE_SEQUENCE)):
        at.button(key="lecture_next").click().run()
        assert not at.exception, errors(at)
        step = LECTURE_SEQUENCE[i]
        at.switch_page(step.page)  # AppTest reruns the page it was last switched to, not the one it is on
        assert slide_title(at) == step_label(i)
        for k, v in step.params.items():
            if k not in ("epoch", "layer", "ch") or step.name == "convolution":  # tiny: no snapshots, other layers
                assert at.query_params[k] == v, (step.name, k)
        assert at.query_params["step"] == str(i + 1)
        assert at.query_params["present"] == "1" and at.query_params["model"] == "tiny"
        if step.page != "views/filters.py":
            assert "filter" not in at.query_params  # Filters' own choices stay behind
        if step.page in OWN:
            assert input_widgets(at) == [], step.name
            seen.append((slide_title(at), len(slide_texts(at)), len(slide_figures(at))))
    assert seen == [(step_label(i), 1, 1) for i, s in enumerate(LECTURE_SEQUENCE)
                    if s.page in OWN]  # a title, one line and one figure each
    assert at.button(key="lecture_next").disabled  # the last step: the next key does nothing
    assert not at.button(key="lecture_prev").disabled

    at.button(key="lecture_prev").click().run()
    assert not at.exception, errors(at)
    assert slide_title(at) == "step 7 of 8: Mistakes" and at.query_params["step"] == "7"


def test_the_units_step_shows_its_favourite_image_and_top_images(dashboard_env):
    at = open_page("units", {"present": "1", "model": "tiny", "step": "8", "ch": "2"})
    assert not at.exception, errors(at)
    assert slide_title(at) == step_label(7)
    (text,) = slide_texts(at)
    assert text.startswith(f"{at.query_params['layer']}, channel 2: ") and "of the 9 training images" in text
    (fig,) = slide_figures(at)
    assert fig.count("<img ") == 2 and "its favourite image" in fig and "the 9 training images it fires on most" in fig


def test_the_units_step_picks_a_unit_of_one_class(dashboard_env):
    at = open_page("units", {"present": "1", "model": "tiny", "step": "8"})
    assert not at.exception, errors(at)
    (text,) = slide_texts(at)
    shown = int(at.query_params["ch"])
    assert text.startswith(f"{at.query_params['layer']}, channel {shown}: ")
    most = int(text.split(": ")[1].split(" of ")[0])
    for ch in range(3):  # no other channel has more of its top images in one class
        other = open_page("units", {"present": "1", "model": "tiny", "step": "8", "ch": str(ch)})
        assert int(slide_texts(other)[0].split(": ")[1].split(" of ")[0]) <= most


def test_a_page_outside_the_sequence_starts_it(dashboard_env):
    at = open_page("model", {"present": "1"})
    assert not at.exception, errors(at)
    assert bar_text(at).startswith("not a lecture step: → starts at step 1")
    assert at.button(key="lecture_prev").disabled
    at.button(key="lecture_next").click().run()
    assert slide_title(at) == "step 1 of 8: First-layer kernels" and at.query_params["step"] == "1"


def test_exit_and_enter_and_the_toggle_survive_a_page_change(dashboard_env):
    at = open_page("convolution", {"present": "1", "ch": "2"})
    assert not at.exception, errors(at)
    assert slide_title(at) == "step 5 of 8: The convolution, step by step"
    assert at.button(key="cv_play").label == "Play"  # Play stays on the slide
    assert slide_texts(at)[0].startswith("Output pixel (row 0, column 0): sum of ")
    at.button(key="present_exit").click().run()  # what p and Esc press
    assert not at.exception, errors(at)
    assert "present" not in at.query_params and at.query_params["ch"] == "2"
    assert slide_css(at) == [] and not [m for m in at.markdown if "p / Esc: leave" in m.value]
    assert at.sidebar.toggle(key="present_toggle").value is False
    assert at.number_input(key="cv_ch").value == 2  # the page's widgets are back, on the URL's values

    at.sidebar.button(key="present_enter").click().run()  # what p presses outside present mode
    assert at.query_params["present"] == "1" and len(slide_css(at)) == 1
    at.button(key="present_exit").click().run()
    at.sidebar.toggle(key="present_toggle").set_value(True).run()  # the mouse's way
    assert at.query_params["present"] == "1" and len(slide_css(at)) == 1
    at.switch_page("views/feature_maps.py").run()  # the sidebar's page links drop the URL's parameters
    assert not at.exception, errors(at)
    assert at.query_params["present"] == "1" and len(slide_css(at)) == 1
    assert slide_title(at) == "step 3 of 8: Feature maps"


def test_the_pages_outside_the_lecture_are_slides_too(dashboard_env):
    for page, title, figures in [("model", "Model", 0), ("attributions", "Attributions", 1), ("predict", "Predict", 0),
                                 ("camera", "Camera", 0)]:
        at = open_page(page, {"present": "1", "model": "tiny"})
        assert not at.exception, (page, errors(at))
        assert slide_title(at) == title and [t.value for t in at.title] == []
        assert len(slide_texts(at)) == 1 and len(slide_figures(at)) == figures, page
        assert input_widgets(at) == [], page  # the upload field, the camera, the pickers: left out

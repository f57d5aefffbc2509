"""AppTest for choosing by clicking and drawing an input: the pages honour the URL's unit
(``uy``/``ux``, Receptive fields) and pixel (``py``/``px``, Feature maps), the typed pixel shows
every channel there, and a drawing (a stand-in canvas: AppTest cannot draw) is classified.
The clicks themselves are in tests/test_click_browser.py; their arithmetic in tests/test_clicks.py."""

from __future__ import annotations

import sys
from types import ModuleType, SimpleNamespace

import numpy as np
import pytest

from dashboard_fixtures import (  # noqa: F401 (fixtures)
    clickable_images, dashboard_env, dashboard_env_no_data, errors, figures, grid_heading, open_page, tiny_dashboard,
    title,
)

MIDDLE_CONV = "features.8"  # alexnet_style on 32 px: 8x8 map, units centred at 3 + 4i


def bars(fig: dict) -> list[str]:
    return list(fig["data"][0]["x"])


def enlarged_caption(at) -> str:
    """The caption of the enlarged channel ("<layer>, channel <c> (rank ...")."""
    return next(c.value for c in at.caption if ", channel " in c.value and " (rank " in c.value)


def channel_of(at) -> int:
    """The enlarged channel's number, from its caption."""
    return int(enlarged_caption(at).split(", channel ")[1].split(" ")[0])


def test_receptive_fields_shows_the_image_to_click_and_keeps_the_urls_unit(dashboard_env):
    at = open_page("receptive_fields", {"img": "1", "layer": MIDDLE_CONV, "ch": "1", "uy": "6", "ux": "1"})
    assert not at.exception and not at.error, errors(at)
    assert any(c.value.startswith("Channel 1's 8 x 8 map") and c.value.endswith("red square: unit (6, 1).")
               for c in at.caption)
    assert [at.number_input(key=f"rf_{k}_{MIDDLE_CONV}").value for k in ("uy", "ux")] == [6, 1]
    assert any("Click the image to pick a unit" in c.value for c in at.caption)
    assert (at.query_params["uy"], at.query_params["ux"]) == ("6", "1")
    # the row and column inputs still work (inside their expander) and move the unit in the URL
    at.number_input(key=f"rf_uy_{MIDDLE_CONV}").set_value(2).run()
    assert not at.exception, errors(at)
    assert any(c.value.endswith("red square: unit (2, 1).") for c in at.caption)
    assert at.query_params["uy"] == "2"


def test_feature_maps_shows_every_channel_at_the_urls_pixel(dashboard_env):
    # pixel (13, 30): features.8's units are centred at 3 + 4i, so row 13 is halfway between
    # units 2 and 3 (halfway goes to the lower) and column 30 nearest unit 7 (centre 31)
    at = open_page("feature_maps", {"layer": MIDDLE_CONV, "py": "13", "px": "30"})
    assert not at.exception and not at.error, errors(at)
    figs = figures(at)
    assert title(figs["fm_pixel"]).startswith(f"{MIDDLE_CONV} at map position (2, 7) of 8x8, under pixel (13, 30)<br>")
    assert (at.number_input(key="fm_py").value, at.number_input(key="fm_px").value) == (13, 30)
    # no channel in the link: the enlarged channel is the strongest at that spot (the first bar)
    assert channel_of(at) == int(bars(figs["fm_pixel"])[0])
    assert enlarged_caption(at).endswith("red square: map position (2, 7).")  # marked
    q = at.query_params
    assert (q["py"], q["px"], q["ch"]) == ("13", "30", bars(figs["fm_pixel"])[0])
    # a channel in the link wins, and is the red bar
    at = open_page("feature_maps", {"layer": MIDDLE_CONV, "py": "13", "px": "30", "ch": "2"})
    figs = figures(at)
    assert channel_of(at) == 2
    colours = figs["fm_pixel"]["data"][0]["marker"]["color"]
    assert colours[bars(figs["fm_pixel"]).index("2")] == "#c44e52"


def test_feature_maps_typed_pixel_switches_to_the_strongest_channel_there(dashboard_env):
    at = open_page("feature_maps", {"layer": "features.0"})
    assert not at.exception, errors(at)
    assert "fm_pixel" not in figures(at) and "py" not in at.query_params
    at.number_input(key="fm_py").set_value(0).run()  # a row alone chooses nothing yet
    assert "fm_pixel" not in figures(at)
    at.number_input(key="fm_px").set_value(31).run()
    assert not at.exception and not at.error, errors(at)
    figs = figures(at)
    first = int(bars(figs["fm_pixel"])[0])
    assert title(figs["fm_pixel"]).startswith("features.0 at map position (0, 31) of 32x32, under pixel (0, 31)<br>")
    assert channel_of(at) == first == at.number_input(key="fm_ch_features.0").value
    assert (at.query_params["py"], at.query_params["px"]) == ("0", "31")
    assert len(bars(figs["fm_pixel"])) == 8  # all of features.0's 8 channels
    # another layer keeps the pixel; it opens on the strongest channel at the position under it
    at.selectbox(key="fm_layer").select("features.4").run()
    assert not at.exception, errors(at)
    figs = figures(at)
    assert title(figs["fm_pixel"]).startswith("features.4 at map position (0, 15) of 16x16")
    assert channel_of(at) == int(bars(figs["fm_pixel"])[0])


def test_feature_maps_pixel_on_a_layer_without_spatial_layout(dashboard_env):
    at = open_page("feature_maps", {"layer": "fc6.1", "py": "3", "px": "4"})
    assert not at.exception and not at.error, errors(at)
    assert title(figures(at)["fm_pixel"]).startswith("fc6.1 at map position (0, 0) of 1x1")
    assert any("no spatial layout" in c.value for c in at.caption)


@pytest.mark.parametrize("py,px", [("32", "3"), ("-1", "3"), ("3", "²")])
def test_feature_maps_ignores_a_pixel_off_the_image(dashboard_env, py, px):
    at = open_page("feature_maps", {"py": py, "px": px})
    assert not at.exception and not at.error, errors(at)
    assert "fm_pixel" not in figures(at)


class FakeCanvas:
    """Stands in for streamlit_drawable_canvas.st_canvas (AppTest cannot draw): returns a 280 px
    white canvas with a dark stroke, or nothing drawn yet."""

    def __init__(self, drawn: bool):
        self.drawn, self.calls = drawn, []

    def __call__(self, **kw):
        self.calls.append(kw)
        rgba = np.full((kw["height"], kw["width"], 4), 255, np.uint8)
        if self.drawn:
            rgba[100:180, 60:220, :3] = (20, 20, 20)
        return SimpleNamespace(image_data=rgba)


@pytest.fixture
def fake_canvas(monkeypatch):
    """Installs a FakeCanvas as the module the widget imports (the real one can only be imported
    where Streamlit's runtime has registered its components)."""
    def install(drawn: bool) -> FakeCanvas:
        fake = FakeCanvas(drawn)
        module = ModuleType("streamlit_drawable_canvas")
        module.st_canvas = fake
        monkeypatch.setitem(sys.modules, "streamlit_drawable_canvas", module)
        return fake
    return install


def test_predict_draw_shows_the_canvas_and_nothing_before_a_stroke(dashboard_env):
    """The real canvas component: it renders in AppTest and, with nothing drawn, gives no table."""
    at = open_page("predict")
    at.radio(key="p_src").set_value("draw").run()
    assert not at.exception and not at.error, errors(at)
    assert not at.dataframe
    assert at.color_picker(key="p_draw_colour").value == "#000000"
    assert any(c.value.startswith("Draw with the mouse") for c in at.caption)
    at.button(key="p_draw_clear").click().run()
    assert not at.exception, errors(at)


def test_predict_classifies_a_drawing(dashboard_env, fake_canvas):
    fake = fake_canvas(True)
    at = open_page("predict")
    at.radio(key="p_src").set_value("draw").run()
    at.color_picker(key="p_draw_colour").set_value("#ff0000").run()
    at.slider(key="p_draw_width").set_value(30).run()
    assert not at.exception and not at.error, errors(at)
    table = at.dataframe[0].value
    assert list(table["id"]) == ["drawing"] and table["character"][0] in dashboard_env.classes
    last = fake.calls[-1]
    assert (last["stroke_color"], last["stroke_width"], last["background_color"]) == ("#ff0000", 30, "#ffffff")
    assert last["return_image_data"] and last["key"] == "p_draw_canvas_0"
    at.button(key="p_draw_clear").click().run()  # a new, empty canvas
    assert fake.calls[-1]["key"] == "p_draw_canvas_1"


def test_feature_maps_of_a_drawing(dashboard_env_no_data, fake_canvas):
    fake_canvas(True)
    at = open_page("feature_maps")
    assert at.radio(key="fm_src").value == "upload"  # without data the default is still upload
    at.radio(key="fm_src").set_value("draw").run()
    assert not at.exception and not at.error, errors(at)
    assert grid_heading(at).startswith(f"**{MIDDLE_CONV}: ")
    assert any(c.value.startswith("your drawing") for c in at.caption)


def test_feature_maps_before_anything_is_drawn(dashboard_env, fake_canvas):
    fake_canvas(False)
    at = open_page("feature_maps")
    at.radio(key="fm_src").set_value("draw").run()
    assert not at.exception and not at.error, errors(at)
    assert "fm_grid" not in clickable_images(at)

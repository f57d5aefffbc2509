"""AppTest for the Feature maps, Receptive fields and Attributions pages on a tiny checkpoint."""

from __future__ import annotations

import io
import re

import numpy as np
from PIL import Image

from cnnviz.figures.attribution import TITLES
from cnnviz.inspect.attribution import METHODS

from dashboard_fixtures import (  # noqa: F401 (fixtures)
    clickable_images, dashboard_env, dashboard_env_no_data, errors, figures, grid_heading, open_page, tiny_dashboard,
    title,
)

MIDDLE_CONV = "features.8"  # alexnet_style convs: features.0, .4, .8, .11, .14


def png(size: tuple[int, int] = (50, 40)) -> bytes:
    """An upload of another size than the model's input, with some texture."""
    rng = np.random.default_rng(1)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def enlarged_caption(at) -> str:
    """The Feature maps page's caption of the enlarged channel ("<layer>, channel <c> (rank ...")."""
    return next(c.value for c in at.caption if ", channel " in c.value and " (rank " in c.value)


def evidence(at) -> str:
    """The Attributions page's heading of its pictures ("Evidence for '<class>' (...): <image>")."""
    return next(m.value for m in at.markdown if m.value.startswith("**Evidence for"))


def panel_titles(at) -> list[str]:
    """The titles under the Attributions page's pictures: "input", then one per method."""
    pics = next(im for im in at.image if im.captions and im.captions[0] == "input")
    return list(pics.captions)


def rf_caption(at, part: str) -> str:
    """The Receptive fields page's caption that holds ``part``."""
    return next(c.value for c in at.caption if part in c.value)


def box_columns(at) -> tuple[int, int]:
    """The first and last input column of the unit's theoretical field, from the caption."""
    m = re.search(r"columns (\d+)-(\d+)", rf_caption(at, "Click the image"))
    return int(m.group(1)), int(m.group(2))


def tile_columns(grid: np.ndarray) -> int:
    """Columns of tiles in a grid picture: runs of pixel columns that are not all white (the gaps)."""
    filled = (grid < 255).any(axis=(0, 2))
    return int(filled[0]) + int((filled[1:] & ~filled[:-1]).sum())


def test_feature_maps_page_follows_layer_and_channel(dashboard_env):
    at = open_page("feature_maps")
    assert not at.exception and not at.error, errors(at)
    assert at.selectbox(key="fm_layer").value == MIDDLE_CONV
    assert grid_heading(at).startswith(f"**{MIDDLE_CONV}: ")
    assert tile_columns(clickable_images(at)["fm_grid"]) == 7  # 48 maps of 8x8, about square
    assert at.query_params["layer"] == MIDDLE_CONV

    at.selectbox(key="fm_layer").select("features.0").run()
    assert not at.exception, errors(at)
    assert grid_heading(at).startswith("**features.0: 8 of 8 channels (32x32)**")
    assert tile_columns(clickable_images(at)["fm_grid"]) == 3  # 8 maps of 32x32
    ch = at.number_input(key="fm_ch_features.0")
    assert f"channel {ch.value} " in enlarged_caption(at)
    other = (ch.value + 1) % 8
    ch.set_value(other).run()
    assert enlarged_caption(at).startswith(f"features.0, channel {other} ")
    assert at.query_params["ch"] == str(other) and at.query_params["layer"] == "features.0"


def test_feature_maps_page_opens_the_layer_and_channel_of_a_link(dashboard_env):
    at = open_page("feature_maps", {"layer": "features.4", "ch": "3"})
    assert not at.exception, errors(at)
    assert at.selectbox(key="fm_layer").value == "features.4"
    assert enlarged_caption(at).startswith("features.4, channel 3 ")


def test_feature_maps_page_without_data_says_how_to_get_it_and_offers_upload(dashboard_env_no_data):
    at = open_page("feature_maps")
    assert not at.exception, errors(at)
    assert any("CNNVIZ_DATA" in i.value and "To get it" in i.value for i in at.info), [i.value for i in at.info]
    assert at.radio(key="fm_src").value == "upload"
    assert len(at.get("file_uploader")) == 1
    assert "fm_grid" not in clickable_images(at)

    at.file_uploader(key="fm_upload").set_value(("noise.png", png(), "image/png")).run()
    assert not at.exception and not at.error, errors(at)
    assert grid_heading(at).startswith(f"**{MIDDLE_CONV}: ")
    assert not at.info  # the how-to-get-data message goes once an image is there


def test_an_upload_that_is_huge_or_not_an_image_gets_one_clear_message(dashboard_env_no_data):
    from test_data import png_header  # noqa: PLC0415

    at = open_page("feature_maps")
    at.file_uploader(key="fm_upload").set_value(("huge.png", png_header(20_000, 20_000), "image/png")).run()
    assert not at.exception, errors(at)
    assert [e.value for e in at.error] == [
        "huge.png: image is too large to decode safely (over 80,000,000 pixels): resize it first."]
    assert "fm_grid" not in clickable_images(at)
    at.file_uploader(key="fm_upload").set_value(("notes.png", b"plain text, not a picture", "image/png")).run()
    assert not at.exception, errors(at)
    assert len(at.error) == 1 and at.error[0].value.startswith("notes.png: not a readable image")
    assert at.error[0].value.endswith(": use a PNG, JPEG or another common image format.")


def test_receptive_fields_and_attributions_pages_take_an_upload(dashboard_env_no_data):
    for page, key in (("receptive_fields", "rf"), ("attributions", "attr")):
        at = open_page(page)
        at.file_uploader(key=f"{key}_upload").set_value(("noise.png", png(), "image/png")).run()
        assert not at.exception and not at.error, (page, errors(at))
        if key == "rf":  # the unit's map, and the clicked image with its field
            assert any(" map for this image (dark " in c.value for c in at.caption), page
        else:
            assert panel_titles(at)[0] == "input", page
    assert "noise.png" in evidence(at)
    target = next(s for s in at.selectbox if s.label == "Target class")
    assert target.format_func(target.value).endswith("(predicted)")


def test_receptive_fields_page_follows_layer_and_unit(dashboard_env):
    at = open_page("receptive_fields")
    assert not at.exception and not at.error, errors(at)
    assert not figures(at)  # the field by layer is a table of bars: no Plotly to load
    growth = at.get("html")[0].proto.body
    assert growth.count("<tr>") == 1 + len(at.selectbox(key="rf_layer").options)  # a row per layer
    assert at.selectbox(key="rf_layer").value == MIDDLE_CONV
    assert rf_caption(at, "red square").endswith("red square: unit (4, 4).")
    assert at.query_params["uy"] == at.query_params["ux"] == "4"  # centre of the 8x8 map
    left_before = box_columns(at)[0]

    at.number_input(key=f"rf_ux_{MIDDLE_CONV}").set_value(0).run()
    assert not at.exception, errors(at)
    assert rf_caption(at, "red square").endswith("red square: unit (4, 0).")
    assert box_columns(at)[0] < left_before  # the box moved left
    assert at.query_params["ux"] == "0"

    at.selectbox(key="rf_layer").select("features.0").run()
    assert not at.exception, errors(at)
    assert "Click the image to pick a unit**: the one of features.0's" in rf_caption(at, "Click the image")


def test_attributions_page_follows_target_class_and_methods(dashboard_env):
    classes = dashboard_env.classes
    at = open_page("attributions")
    assert not at.exception and not at.error, errors(at)
    assert at.multiselect(key="attr_methods").value == list(METHODS)
    layer = at.selectbox(key="attr_layer").value
    assert panel_titles(at) == ["input"] + [TITLES[m] + (f" ({layer})" if m == "grad_cam" else "")
                                            for m in METHODS]  # the input, then one overlay per method
    assert not figures(at)  # pictures and Vega-Lite charts: no Plotly to load
    target = next(s for s in at.selectbox if s.label == "Target class")
    assert f"'{classes[target.value]}'" in evidence(at)  # the predicted class

    other = (target.value + 1) % len(classes)
    target.select(other).run()
    assert not at.exception, errors(at)
    assert f"Evidence for '{classes[other]}'" in evidence(at)
    assert at.query_params["target"] == str(other)

    at.multiselect(key="attr_methods").set_value(["grad_cam"]).run()
    at.selectbox(key="attr_layer").select("features.4").run()
    assert not at.exception, errors(at)
    assert panel_titles(at) == ["input", "Grad-CAM (features.4)"]


def test_attributions_page_honours_a_mistakes_link(dashboard_env):
    classes = dashboard_env.classes
    at = open_page("attributions", {"img": "1", "target": "2"})
    assert not at.exception, errors(at)
    assert next(s for s in at.selectbox if s.label == "Target class").value == 2
    t = evidence(at)
    assert f"Evidence for '{classes[2]}'" in t and "test #1" in t

    at.number_input(key="attr_n").set_value(0).run()  # another image: back to its predicted class
    assert not at.exception, errors(at)
    target = next(s for s in at.selectbox if s.label == "Target class")
    assert target.format_func(target.value).endswith("(predicted)")
    assert "test #0" in evidence(at)


def test_receptive_fields_page_opens_the_unit_of_a_link(dashboard_env):
    at = open_page("receptive_fields", {"img": "1", "layer": MIDDLE_CONV, "ch": "1", "uy": "2", "ux": "5"})
    assert not at.exception and not at.error, errors(at)
    assert at.selectbox(key="rf_layer").value == MIDDLE_CONV
    assert rf_caption(at, "red square").startswith("Channel 1's 8 x 8 map")
    assert rf_caption(at, "red square").endswith("red square: unit (2, 5).")
    assert [at.number_input(key=f"rf_{k}_{MIDDLE_CONV}").value for k in ("ch", "uy", "ux")] == [1, 2, 5]

"""AppTest for the Convolution page (the first convolution, step by step) on a tiny checkpoint.

The tiny checkpoint is alexnet_style at 32 px: its first convolution ``features.0`` has 8
kernels of 3x5x5, stride 1, padding 2, no bias (BatchNorm follows): a 32x32 output map.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnviz.checkpoints import checkpoint_data, load_checkpoint
from cnnviz.inputs import to_input

from dashboard_fixtures import dashboard_env, errors, figures, open_page, tiny_dashboard  # noqa: F401

N_POSITIONS = 32 * 32


@pytest.fixture
def maps(dashboard_env):
    """``maps(img)``: the first convolution's output ``(8, 32, 32)`` for test image ``img``,
    computed here with F.conv2d, independently of the page."""
    ckpt = load_checkpoint(dashboard_env.checkpoints / f"{dashboard_env.name}.json")
    ds = checkpoint_data(ckpt.meta, dashboard_env.tree, "test")
    conv = ckpt.model.first_conv

    def compute(img: int) -> np.ndarray:
        x = to_input(ds.images[img], ckpt.meta.normalization)
        with torch.no_grad():
            return F.conv2d(x, conv.weight.detach().float().cpu(), None, conv.stride, conv.padding)[0].numpy()

    return compute


def shown(at) -> tuple[int, int, float]:
    """Row, column and value of the output pixel the page states above its figures."""
    text = next(m.value for m in at.markdown if m.value.startswith("#### Output pixel"))
    m = re.match(r"#### Output pixel \(row (\d+), column (\d+)\): sum of 75 products = (\S+) \(no bias\) = (\S+)$",
                 text)
    assert m, text
    assert m.group(3) == m.group(4)  # no bias: the value is the sum
    return int(m.group(1)), int(m.group(2)), float(m.group(4))


def map_caption(at) -> str:
    """The caption of the output map picture ("Output map 32 x 32 (kernel k), filled up to ...")."""
    return next(c for im in at.image for c in im.captions if c.startswith("Output map"))


def channel_sums(at) -> list[float]:
    """The per-channel sums the products table states ("sum +0.123")."""
    body = at.get("html")[0].proto.body
    return [float(v) for v in re.findall(r"sum ([+-]\d+\.\d+)</td>", body)]


def test_convolution_page_opens_on_the_first_kernel_and_pixel(dashboard_env, maps):
    at = open_page("convolution")
    assert not at.exception and not at.error and not at.warning, errors(at)
    assert not figures(at)  # pictures and a table: no Plotly to load
    assert at.query_params["ch"] == "0" and at.query_params["pos"] == "0"
    assert any("stride 1" in c.value and "padding 2" in c.value and "= 32" in c.value for c in at.caption)
    row, col, value = shown(at)
    assert (row, col) == (0, 0)
    assert value == pytest.approx(maps(0)[0, 0, 0], abs=1e-4)
    assert map_caption(at).startswith("Output map 32 x 32 (kernel 0), filled up to pixel (0, 0)")
    sums = channel_sums(at)
    assert len(sums) == 3 and sum(sums) == pytest.approx(value, abs=2e-3)  # red + green + blue


def test_convolution_page_opens_the_kernel_and_position_of_a_link(dashboard_env, maps):
    at = open_page("convolution", {"img": "1", "ch": "3", "pos": "40"})
    assert not at.exception and not at.error, errors(at)
    assert at.number_input(key="cv_ch").value == 3
    assert at.slider(key="cv_pos").value == 40
    row, col, value = shown(at)
    assert (row, col) == (1, 8)
    assert value == pytest.approx(maps(1)[3, 1, 8], abs=1e-4)
    assert map_caption(at).startswith("Output map 32 x 32 (kernel 3), filled up to pixel (1, 8)")

    at = open_page("convolution", {"ch": "99", "pos": "99999"})  # out of range: the defaults
    assert not at.exception and not at.error, errors(at)
    assert at.number_input(key="cv_ch").value == 0 and at.slider(key="cv_pos").value == 0


def test_moving_the_slider_shows_that_pixels_sum(dashboard_env, maps):
    at = open_page("convolution")
    at.number_input(key="cv_ch").set_value(5).run()
    at.slider(key="cv_pos").set_value(100).run()
    assert not at.exception and not at.error and not at.warning, errors(at)
    row, col, value = shown(at)
    assert (row, col) == (3, 4)
    assert value == pytest.approx(maps(0)[5, 3, 4], abs=1e-4)
    assert at.query_params["pos"] == "100" and at.query_params["ch"] == "5"
    assert map_caption(at).startswith("Output map 32 x 32 (kernel 5), filled up to pixel (3, 4)")
    assert sum(channel_sums(at)) == pytest.approx(value, abs=2e-3)


def position(at) -> int:
    """The output position the page shows (from its statement of the pixel: 32 columns)."""
    row, col, _ = shown(at)
    assert at.query_params["pos"] == str(row * 32 + col)
    return row * 32 + col


def test_play_advances_pauses_and_stops_at_the_end(dashboard_env):
    at = open_page("convolution", {"pos": "10"})
    at.number_input(key="cv_step").set_value(4).run()
    at.button(key="cv_play").click().run()  # the first frame shows where it is
    assert not at.exception, errors(at)
    assert at.button(key="cv_play").label == "Pause"
    assert position(at) == 10
    assert not at.slider  # a progress bar, not the slider, while playing
    at.run()  # each later run (the fragment's timer, here a rerun) moves one step on
    assert position(at) == 14
    at.run()
    assert position(at) == 18

    at.button(key="cv_play").click().run()  # pause: the slider is back where playing got to
    assert at.button(key="cv_play").label == "Play"
    assert at.slider(key="cv_pos").value == 18 and position(at) == 18
    at.run()
    assert at.slider(key="cv_pos").value == 18

    at.slider(key="cv_pos").set_value(N_POSITIONS - 6).run()
    at.button(key="cv_play").click().run()
    at.run()
    assert position(at) == N_POSITIONS - 2
    at.run()  # the last step stops at the last pixel, not past it
    assert position(at) == N_POSITIONS - 1
    at.run()  # after one frame there it stops by itself
    assert not at.exception, errors(at)
    assert at.button(key="cv_play").label == "Play" and not at.session_state["cv_playing"]
    assert at.slider(key="cv_pos").value == N_POSITIONS - 1 and position(at) == N_POSITIONS - 1
    at.run()
    assert position(at) == N_POSITIONS - 1

    at.button(key="cv_play").click().run()  # play from the end starts again at the first pixel
    assert position(at) == 0 and at.button(key="cv_play").label == "Pause"

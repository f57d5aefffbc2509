"""Choosing by clicking and drawing, without a browser: a click on the enlarged image -> the input
pixel, a pixel -> the unit / map position under it (known strides and paddings), every channel
there, and a canvas's RGBA -> the model's input. Known answers by hand."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from torch import nn

from cnnviz.data import Preprocess
from cnnviz.drawing import drawing_image
from cnnviz.figures.clicks import (RED, channels_at, channels_at_figure, click_pixel, dot, enlarge, map_position,
                                   outline)
from cnnviz.inspect.feature_maps import FeatureMaps
from cnnviz.inspect.receptive_field import LayerRF, nearest_unit, receptive_fields


def by_name(model: nn.Module, size: int) -> dict[str, LayerRF]:
    return {r.name: r for r in receptive_fields(model, size)}


# -- the enlarged image and the click's pixel ---------------------------------------------------

def test_enlarge_repeats_each_pixel_a_whole_number_of_times():
    img = np.arange(32 * 32 * 3, dtype=np.uint8).reshape(32, 32, 3)
    big, f = enlarge(img, 320)
    assert f == 10 and big.shape == (320, 320, 3)
    assert (big[10:20, 30:40] == img[1, 3]).all()
    assert enlarge(np.zeros((227, 227, 3), np.uint8), 320)[1] == 2  # at least 320 wide
    assert enlarge(np.zeros((400, 300, 3), np.uint8), 320)[1] == 2
    assert enlarge(np.zeros((10, 500, 3), np.uint8), 320)[0].shape == (10, 500, 3)  # already wide: factor 1


@pytest.mark.parametrize("x,y,pixel", [
    (0, 0, (0, 0)), (9, 9, (0, 0)), (10, 0, (0, 1)), (0, 10, (1, 0)), (35, 127, (12, 3)),
    (319, 319, (31, 31)), (320, 320, (31, 31)),  # the far edge is the last pixel
    (-1, 5, None), (5, 321, None),
])
def test_click_on_a_32px_image_shown_320px_wide(x, y, pixel):
    assert click_pixel(x, y, 320, 320, 32) == pixel


def test_every_shown_pixel_maps_back_to_the_pixel_it_shows():
    """Whatever the display size: the shown pixel's colour is the colour of the input pixel found."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)
    big, f = enlarge(img, 320)
    assert f == 8
    for y in range(0, big.shape[0], 3):
        for x in range(0, big.shape[1], 7):
            r, c = click_pixel(x, y, big.shape[1], big.shape[0], img.shape[:2])
            assert (img[r, c] == big[y, x]).all(), (x, y)
    # shown smaller than its natural size (a narrow column): 320 -> 288 wide, 9 px per input pixel
    assert click_pixel(8, 0, 288, 288, 32) == (0, 0) and click_pixel(9, 0, 288, 288, 32) == (0, 1)
    assert click_pixel(8.99, 17.5, 288, 288, 32) == (1, 0)
    assert click_pixel(5, 5, 0, 0, 32) is None  # not shown yet


def test_outline_and_dot_mark_input_pixels_on_the_enlarged_image():
    big, f = enlarge(np.zeros((8, 8, 3), np.uint8), 80)
    boxed = outline(big, (2, 3, 5, 7), f, thickness=1)
    assert (boxed[20, 30:70] == RED).all() and (boxed[49, 30:70] == RED).all()  # top and bottom rows
    assert (boxed[20:50, 30] == RED).all() and (boxed[20:50, 69] == RED).all()  # left and right columns
    assert (boxed[21:49, 31:69] == 0).all() and (big == 0).all()  # inside untouched, input not changed
    clipped = outline(big, (-3, -3, 2, 2), f, thickness=1)
    assert (clipped[0, 0:20] == RED).all() and (clipped[19, 0:20] == RED).all()
    d = dot(big, 2, 3, f, radius=2)
    assert (d[23:27, 33:37] == RED).all() and d.any(-1).sum() == 16  # 4x4 around pixel (2, 3)'s centre
    assert (dot(big, 1.5, 1.5, f, radius=1)[19:21, 19:21] == RED).all()  # between four pixels
    assert not dot(big, -5, 40, f).any()  # off the image


# -- pixel -> unit / map position ---------------------------------------------------------------

def test_nearest_unit_for_a_stride_2_padding_1_convolution():
    """Conv 3x3, stride 2, padding 1 on 32 px: unit i is centred on pixel 2i (start 0, jump 2), so
    pixels 2i and 2i+1 (halfway: the lower unit) belong to unit i."""
    rf = by_name(nn.Sequential(nn.Conv2d(3, 2, 3, stride=2, padding=1)), 32)["0"]
    assert (rf.start, rf.jump, rf.out_size) == ((0, 0), (2, 2), (16, 16))
    assert [nearest_unit(rf, p, p)[0] for p in range(8)] == [0, 0, 1, 1, 2, 2, 3, 3]
    assert nearest_unit(rf, 31, 30) == (15, 15) and nearest_unit(rf, 4, 17) == (2, 8)


def test_nearest_unit_for_a_pool_and_an_unpadded_conv():
    # 2x2 max pool: unit i covers pixels 2i, 2i+1 (centre 2i + 0.5)
    pool = by_name(nn.Sequential(nn.MaxPool2d(2)), 8)["0"]
    assert pool.start == (0.5, 0.5)
    assert [nearest_unit(pool, p, 0)[0] for p in range(8)] == [0, 0, 1, 1, 2, 2, 3, 3]
    # 5x5 conv without padding: unit 0 is centred on pixel 2; pixels before it clip to unit 0
    valid = by_name(nn.Sequential(nn.Conv2d(3, 2, 5)), 16)["0"]
    assert valid.start == (2, 2) and valid.out_size == (12, 12)
    assert [nearest_unit(valid, p, p)[0] for p in (0, 1, 2, 3, 13, 14, 15)] == [0, 0, 0, 1, 11, 11, 11]


def test_nearest_unit_alexnet_conv1_and_every_unit_finds_itself():
    """AlexNet's conv1 (11x11, stride 4, padding 2) on 224 px: centres 3, 7, 11, ...; pixel 5 is
    halfway between units 0 and 1 (goes to 0), 6 is nearer unit 1."""
    model = nn.Sequential(nn.Conv2d(3, 2, 11, 4, 2), nn.ReLU(), nn.MaxPool2d(3, 2), nn.Conv2d(2, 2, 5, padding=2),
                          nn.AdaptiveAvgPool2d(5), nn.Flatten(), nn.Linear(50, 3))
    rfs = by_name(model, 224)
    conv1 = rfs["0"]
    assert (conv1.start[0], conv1.jump[0], conv1.out_size[0]) == (3, 4, 55)
    assert [nearest_unit(conv1, p, 0)[0] for p in (0, 3, 5, 6, 9, 223)] == [0, 0, 0, 1, 1, 54]
    for name in ("0", "2", "3", "4"):  # including an adaptive pool with a fractional jump
        rf = rfs[name]
        for i in range(rf.out_size[0]):
            assert nearest_unit(rf, *rf.center(i, rf.out_size[1] - 1 - i)) == (i, rf.out_size[1] - 1 - i), name
    assert nearest_unit(rfs["6"], 100, 7) == (0, 0)  # a Linear: one unit sees everything


def test_map_position_with_and_without_the_receptive_field():
    rf = by_name(nn.Sequential(nn.Conv2d(3, 2, 3, stride=2, padding=1)), 32)["0"]
    assert map_position(5, 30, 32, (16, 16), rf) == nearest_unit(rf, 5, 30) == (2, 15)
    # by proportion (a model the geometry cannot follow): the same fraction of the map
    assert map_position(5, 30, 32, (16, 16)) == (2, 15)
    assert map_position(31, 0, 32, (6, 6)) == (5, 0) and map_position(10, 10, (32, 32), (1, 1)) == (0, 0)


# -- every channel at one position --------------------------------------------------------------

def fm_of(maps: np.ndarray) -> FeatureMaps:
    score = maps.mean((2, 3))
    return FeatureMaps(maps=maps, score=score, order=np.argsort(-score, axis=1, kind="stable"), layer="conv",
                       shape=maps.shape)


def test_channels_at_a_position_strongest_first_and_the_bar_chart():
    maps = np.zeros((1, 4, 3, 3), np.float32)
    maps[0, :, 1, 2] = [0.5, -1.0, 2.0, 0.5]
    fm = fm_of(maps)
    order, values = channels_at(fm, 1, 2)
    assert order.tolist() == [2, 0, 3, 1] and values.tolist() == [2.0, 0.5, 0.5, -1.0]
    fig = channels_at_figure(fm, 1, 2, max_channels=3, highlight=0, where=", under pixel (5, 9)")
    bar = fig.data[0]
    assert list(bar.x) == ["2", "0", "3"] and list(bar.y) == [2.0, 0.5, 0.5]
    assert list(bar.marker.color) == ["#4c72b0", "#c44e52", "#4c72b0"]  # the enlarged channel in red
    assert fig.layout.title.text == ("conv at map position (1, 2) of 3x3, under pixel (5, 9)<br><sup>the strongest "
                                     "3 of 4 channels, strongest first; red: channel 0</sup>")
    with pytest.raises(ValueError, match="outside conv's 3x3 map"):
        channels_at(fm, 3, 0)


# -- a drawing as the model's input ------------------------------------------------------------

def canvas(size: int = 280) -> np.ndarray:
    rgba = np.full((size, size, 4), 255, np.uint8)  # the canvas's white background, opaque
    return rgba


def test_a_blank_canvas_is_no_image():
    assert drawing_image(None, Preprocess(32)) is None
    assert drawing_image(canvas(), Preprocess(32)) is None
    clear = np.zeros((50, 50, 4), np.uint8)  # transparent: nothing drawn either
    assert drawing_image(clear, Preprocess(32)) is None


def test_a_drawing_is_resized_as_uploads_are():
    rgba = canvas()
    rgba[70:210, 120:160, :3] = (0, 0, 200)  # a blue bar in the middle
    pre = Preprocess(32)
    img = drawing_image(rgba, pre)
    assert img.shape == (32, 32, 3) and img.dtype == np.uint8
    np.testing.assert_array_equal(img, pre.apply(Image.fromarray(rgba, "RGBA")))  # the uploads' resize
    assert (img[16, 16] == (0, 0, 200)).all() and (img[2, 2] == 255).all()
    # a transparent canvas with strokes: composited on white, as an RGBA upload is
    strokes = np.zeros((100, 100, 4), np.uint8)
    strokes[30:70, :, :] = (0, 0, 0, 255)
    out = drawing_image(strokes, Preprocess(10))
    assert (out[4:6] == 0).all() and (out[0] == 255).all()
    # a wide canvas with the "pad" resize keeps its aspect: the fill above and below
    wide = np.zeros((50, 100, 4), np.uint8)
    wide[..., 3] = 255
    assert (drawing_image(wide, Preprocess(20, "pad", (9, 9, 9)))[0] == 9).all()
    with pytest.raises(ValueError, match="uint8"):
        drawing_image(np.zeros((5, 5), np.float32), pre)

"""Static pictures for pages (``cnnviz.figures.pictures``): known colours on hand-made maps."""

import numpy as np
import pytest

from cnnviz.figures.pictures import glow_image, heat_image, maps_image, viridis_lut


def test_viridis_lut_ends_are_plotlys_and_it_is_read_only() -> None:
    lut = viridis_lut()
    assert lut.shape == (256, 3) and lut.dtype == np.uint8
    assert tuple(lut[0]) == (68, 1, 84) and tuple(lut[-1]) == (253, 231, 37)  # #440154, #fde725
    with pytest.raises(ValueError):
        lut[0, 0] = 1


def test_heat_image_colours_min_dark_max_yellow_and_enlarges() -> None:
    z = np.array([[0.0, 1.0], [2.0, 4.0]], np.float32)
    pic, factor, lo, hi = heat_image(z, width=10)
    assert (factor, lo, hi) == (5, 0.0, 4.0)
    assert pic.shape == (10, 10, 3)
    lut = viridis_lut()
    assert (pic[:5, :5] == lut[0]).all()  # the minimum
    assert (pic[5:, 5:] == lut[255]).all()  # the maximum
    assert (pic[5:, :5] == lut[128]).all()  # 2 of 0..4: 127.5 rounds to 128
    marked, _, _, _ = heat_image(z, width=10, mark=(0, 1))
    red = np.array((230, 30, 30), np.uint8)
    assert (marked[0, 5:] == red).all() and (marked[4, 5:] == red).all()  # the top right cell's outline
    assert (marked[2, 6:9] == lut[64]).all()  # its inside keeps its colour (1 of 0..4)
    assert (marked[:, :5] == pic[:, :5]).all()  # nothing else changes
    flat, _, lo, hi = heat_image(np.full((3, 3), 7.0), width=3)
    assert (lo, hi) == (7.0, 7.0) and (flat == lut[0]).all()
    with pytest.raises(ValueError, match="expected one map"):
        heat_image(np.zeros((2, 2, 2)))


def test_glow_image_leaves_the_image_where_the_field_is_zero() -> None:
    image = np.full((2, 2, 3), 100, np.uint8)
    field = np.array([[0.0, 0.0], [0.5, 1.0]])
    out = glow_image(image, field, alpha=1.0)
    assert (out[0] == 100).all()
    assert tuple(out[1, 1]) == (255, 230, 0)  # opaque yellow at the peak
    # halfway: orange at 0.6 opacity over grey
    assert tuple(out[1, 0]) == (round(100 * 0.4 + 255 * 0.6), round(100 * 0.4 + 80 * 0.6), 40)
    assert (glow_image(image, np.zeros((2, 2))) == image).all()
    with pytest.raises(ValueError, match="expected an image"):
        glow_image(image, np.zeros((3, 3)))


def test_maps_image_tiles_each_map_on_its_own_scale() -> None:
    maps = np.stack([np.array([[0.0, 1.0], [0.0, 1.0]]), np.array([[5.0, 5.0], [9.0, 9.0]])]).astype(np.float32)
    pic = maps_image(maps, cols=2, tile_px=2, gap_color=(1, 2, 3))
    lut = viridis_lut()
    assert pic.shape == (2, 5, 3)  # two 2x2 tiles and a one-pixel gap
    assert (pic[:, 2] == (1, 2, 3)).all()
    assert (pic[0, 0] == lut[0]).all() and (pic[0, 1] == lut[255]).all()
    assert (pic[0, 3] == lut[0]).all() and (pic[1, 3] == lut[255]).all()

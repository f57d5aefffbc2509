"""Static pictures for pages (``cnnviz.figures.pictures``): known colours on hand-made maps."""

import numpy as np
import pytest

from cnnviz.figures.pictures import (
    diverging_lut, glow_image, heat_image, maps_image, tile_at, tile_clicked, viridis_lut, weights_image,
)


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


def test_diverging_lut_runs_blue_white_red() -> None:
    lut = diverging_lut()
    assert lut.shape == (256, 3) and lut.dtype == np.uint8
    assert tuple(lut[0]) == (5, 48, 97) and tuple(lut[-1]) == (103, 0, 31)  # RdBu's ends, reversed
    assert (np.abs(lut[127:129].astype(int) - 247) <= 1).all()  # the middle stop, #f7f7f7, sits between 127 and 128
    with pytest.raises(ValueError):
        lut[0, 0] = 1


def test_weights_image_colours_each_weight_and_separates_channels() -> None:
    w = np.array([[[-1.0, 0.0]], [[1.0, 0.5]]], np.float32)  # 2 channels of 1x2
    pic = weights_image(w, cell=3, gap=2)
    lut = diverging_lut()
    assert pic.shape == (3, 2 * 2 * 3 + 2, 3)
    assert (pic[:, :3] == lut[0]).all() and (pic[:, 3:6] == lut[128]).all()  # -1 blue; 0 -> 127.5 rounds to 128
    assert (pic[:, 6:8] == 255).all()  # the gap
    assert (pic[:, 8:11] == lut[255]).all() and (pic[:, 11:] == lut[191]).all()  # 1 red; 0.5 -> 191.25
    with pytest.raises(ValueError, match="expected weights"):
        weights_image(np.zeros((2, 2)))


def test_tile_at_reads_the_tile_size_from_the_picture() -> None:
    # 5 tiles of 4 high x 6 wide, 3 per row, 2-pixel gaps: 2 rows (10 x 22 pixels)
    shape = (2 * 4 + 2, 3 * 6 + 2 * 2)
    assert tile_at(shape, 5, 3, 2, 0, 0) == 0
    assert tile_at(shape, 5, 3, 2, 5.9, 3.9) == 0
    assert tile_at(shape, 5, 3, 2, 6.5, 1) is None  # the separator
    assert tile_at(shape, 5, 3, 2, 8, 1) == 1
    assert tile_at(shape, 5, 3, 2, 9, 7) == 4  # second row, second column
    assert tile_at(shape, 5, 3, 2, 17, 7) is None  # the sixth cell is empty
    assert tile_at(shape, 5, 3, 2, 1, 10) is None and tile_at(shape, 5, 3, 2, -1, 1) is None  # outside
    assert tile_at(shape, 0, 3, 2, 1, 1) is None
    # the same grid shown at half its size: the click is scaled back
    assert tile_clicked({"x": 4.5, "y": 3.5, "width": 11}, shape, 5, 3, 2) == 4
    assert tile_clicked(None, shape, 5, 3, 2) is None
    assert tile_clicked({"x": 1, "y": 1, "width": 0}, shape, 5, 3, 2) is None

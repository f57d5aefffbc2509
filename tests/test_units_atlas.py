"""The unit atlas on a tiny trained checkpoint: ``cnnviz units`` (PNG per channel, one offline
HTML page) and the dashboard's Units page."""

from __future__ import annotations

import numpy as np
from PIL import Image

from cnnviz.checkpoints import checkpoint_data, load_checkpoint
from cnnviz.cli import main
from cnnviz.lecture import default_feature_layer

from dashboard_fixtures import (  # noqa: F401  (fixtures)
    charts, dashboard_env, errors, figures, open_page, tiny_dashboard,
)


def test_cli_units_writes_a_png_per_channel_and_an_offline_page(tiny_dashboard, tmp_path, capsys):
    ckpt_path = tiny_dashboard.checkpoints / "tiny.json"
    layer = default_feature_layer(load_checkpoint(ckpt_path))
    out = tmp_path / "atlas"
    rc = main(["units", str(ckpt_path), "--data", str(tiny_dashboard.tree), "--out", str(out),
               "--channels", "0,3", "-k", "4"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert captured.out.strip().endswith(f"2 units of {layer}: {out / 'atlas.html'}")
    assert sorted(p.name for p in out.iterdir()) == ["atlas.html", "unit_000.png", "unit_003.png"]
    grid = np.asarray(Image.open(out / "unit_000.png"))
    # favourite image (as tall as a grid) | top 4 (2x2 cells of 64 px, 4-px gaps) | bottom 4, 16-px gaps
    side = 2 * 64 + 4
    assert grid.shape == (side, 3 * side + 2 * 16, 3)
    page = (out / "atlas.html").read_text()
    assert "<script" not in page and "http" not in page  # nothing fetched from the network
    assert page.count("<tr>") == 3  # header + 2 channels
    assert "knock-out on" in page and "class that loses most" in page and "favourite | top 4" in page
    rc = main(["units", str(ckpt_path), "--data", str(tiny_dashboard.tree), "--out", str(tmp_path / "b"),
               "--channels", "1", "--steps", "0"])
    assert rc == 0
    side9 = 3 * 64 + 2 * 4  # without a favourite image: top 9 | bottom 9
    assert np.asarray(Image.open(tmp_path / "b" / "unit_001.png")).shape == (side9, 2 * side9 + 16, 3)
    assert "favourite" not in (tmp_path / "b" / "atlas.html").read_text()


def test_cli_units_refuses_a_channel_the_layer_lacks(tiny_dashboard, tmp_path, capsys):
    ckpt_path = tiny_dashboard.checkpoints / "tiny.json"
    ckpt = load_checkpoint(ckpt_path)
    layer = default_feature_layer(ckpt)
    width = ckpt.model.get_submodule(layer).out_channels
    rc = main(["units", str(ckpt_path), "--data", str(tiny_dashboard.tree), "--out", str(tmp_path / "a"),
               "--channels", f"1,{width}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert err == [f"cnnviz units: error: --layer/--channels: {layer} has channels 0-{width - 1}; no channel {width}"]
    assert not (tmp_path / "a").exists()


def test_units_page_shows_patches_histogram_and_knockout(dashboard_env):
    at = open_page("units")
    assert not at.exception, errors(at)
    assert not at.error, errors(at)
    assert not figures(at)  # pictures and Vega-Lite charts: no Plotly to load
    hist, knock = list(charts(at).values())
    ckpt = load_checkpoint(dashboard_env.checkpoints / "tiny.json")
    n_train = len(checkpoint_data(ckpt.meta, dashboard_env.tree, "train"))  # without its validation images
    assert hist.frame(0)["images"].sum() == n_train  # every training image's peak is counted once
    assert len(hist.frame(1)) == 1  # one mark: the top 9's lowest peak
    assert list(knock.frame(0)["class"]) == dashboard_env.classes
    # its favourite image and the whole image of the chosen patch; the top-9 and bottom-9 grids
    # are clickable images
    assert len(at.get("image")) == 2
    assert any("red box: its " in c.value for c in at.caption)
    assert at.selectbox(key="u_whole").options[9].startswith("bottom 1: ")


def test_units_page_keeps_layer_and_channel_in_the_url(dashboard_env):
    at = open_page("units")
    layer = at.query_params["layer"]
    at = open_page("units", {"layer": layer, "ch": "2"})
    assert not at.exception, errors(at)
    assert at.number_input(key=f"u_ch_{layer}").value == 2
    assert at.query_params["ch"] == "2"


def test_feature_maps_links_the_enlarged_channel_to_its_unit(dashboard_env):
    at = open_page("feature_maps", {"layer": "features.8", "ch": "3"})
    assert not at.exception, errors(at)
    links = [el.proto for el in at.get("page_link")]
    assert [(p.label, p.page) for p in links] == [("What channel 3 of features.8 detects", "units")], links
    assert "layer=features.8" in links[0].query_string and "ch=3" in links[0].query_string


def test_tile_at_maps_a_click_to_its_patch():
    from cnnviz.figures.pictures import tile_at
    from cnnviz.figures.units import patch_grid

    grid = patch_grid([np.zeros((5, 5, 3), np.uint8)] * 7, cols=3, cell=96, gap=4)
    assert grid.shape == (3 * 96 + 2 * 4, 3 * 96 + 2 * 4, 3)
    assert tile_at(grid.shape, 7, 3, 4, 0, 0) == 0
    assert tile_at(grid.shape, 7, 3, 4, 95.9, 95.9) == 0
    assert tile_at(grid.shape, 7, 3, 4, 97, 10) is None  # the separator
    assert tile_at(grid.shape, 7, 3, 4, 100, 10) == 1
    assert tile_at(grid.shape, 7, 3, 4, 10, 200 + 5) == 6  # third row, first column
    assert tile_at(grid.shape, 7, 3, 4, 110, 205) is None  # the eighth cell is empty
    assert tile_at(grid.shape, 7, 3, 4, 10, 400) is None  # below the grid

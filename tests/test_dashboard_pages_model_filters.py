"""AppTests of the Model and Filters pages (the two that work with no dataset) on a tiny
checkpoint, plus one with training snapshots and one whose first convolution is frozen."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from streamlit.testing.v1 import AppTest

from cnnviz.checkpoints import load_checkpoint, snapshots_path
from cnnviz.data import Preprocess
from cnnviz.figures.filters import lecture_grid
from cnnviz.inspect.filters import first_layer_filters
from cnnviz.train import train_checkpoint
from dashboard.glossary import explain

from dashboard_fixtures import (  # noqa: F401 (fixtures)
    SIZE, _point_dashboard, charts, clickable_images, dashboard_env, dashboard_env_no_data, errors, figures, open_page,
    markdown_table, tiny_dashboard,
)


def grid(at) -> np.ndarray:
    """The Filters page's kernel grid: its ``(H, W, 3)`` pixels (a click-to-enlarge picture)."""
    return clickable_images(at)["f_click"]


def copy_tiny(tiny_dashboard, ckdir):
    """A checkpoint folder of its own holding a copy of the tiny checkpoint."""
    ckdir.mkdir()
    for f in tiny_dashboard.checkpoints.glob("tiny.*"):
        shutil.copy(f, ckdir / f.name)
    return ckdir


def test_model_page_without_data(dashboard_env_no_data):
    at = open_page("model")
    assert not at.exception, errors(at)
    ckpt = load_checkpoint(dashboard_env_no_data.checkpoints / "tiny")
    metrics = {m.label: m.value for m in at.metric}
    n_params = sum(p.numel() for p in ckpt.model.parameters())
    assert metrics["Parameters"] == f"{n_params / 1e6:.2f} M"
    assert metrics["Classes"] == "3"
    assert metrics["Penultimate features"] == f"{ckpt.model.embed_dim}-d"
    penultimate = next(m for m in at.metric if m.label == "Penultimate features")
    assert penultimate.proto.help == explain("penultimate features", "d (dimensions)")  # the glossary's words
    assert [md.value for md in at.markdown if md.value.startswith("Architecture")] == [
        f"Architecture: **{ckpt.meta.arch}**"]  # a line of its own: as a metric it was cut at 1280 px

    table = markdown_table(at, "layer")
    assert [r["layer"] for r in table] == ckpt.model.layer_names()
    first = ckpt.model.first_conv
    row = next(r for r in table if r["layer"] == "features.0")
    assert row["type"] == "Conv2d"
    assert row["receptive field (px)"] == str(first.kernel_size[0])  # one conv: its kernel
    assert row["jump (px)"] == str(first.stride[0])
    assert row["parameters"] == str(sum(p.numel() for p in first.parameters()))
    rf = np.array([float(r["receptive field (px)"]) for r in table if r["receptive field (px)"]])
    assert len(rf) and (np.diff(rf) >= 0).all()  # receptive fields only grow with depth

    curves = charts(at)["#0"]
    acc, loss = curves.frame(0), curves.frame(1)
    assert acc["curve"].iloc[0] == "train accuracy (augmented)" and set(loss["curve"]) == {"train loss"}
    assert list(loss["epoch"]) == [h["epoch"] for h in ckpt.meta.history]
    assert not figures(at)  # no Plotly on the page
    assert not at.info  # nothing asks for data on this page


def test_filters_page_toggles_order_and_enlarges(dashboard_env_no_data):
    ckpt = load_checkpoint(dashboard_env_no_data.checkpoints / "tiny")
    n = ckpt.model.first_conv.out_channels
    at = open_page("filters")
    assert not at.exception, errors(at)
    heading = next(m.value for m in at.markdown if "kernels" in m.value)
    assert heading.startswith(f"**{n} kernels, 3x5x5**; normalisation: each filter min-max scaled")
    filters = first_layer_filters(ckpt.model)
    pixels = grid(at)
    assert pixels.shape[1] >= 560  # lecture size on screen
    assert np.array_equal(pixels, lecture_grid(filters, None, min_width=560, gap=2))  # every kernel, as learned
    assert any("No epoch snapshots" in c.value for c in at.caption)
    assert not at.info  # alexnet_style trains its first layer

    at.radio(key="f_norm").set_value("global").run()
    assert not at.exception, errors(at)
    assert "one min-max scale shared" in next(m.value for m in at.markdown if "kernels" in m.value)
    assert not np.array_equal(grid(at), pixels)

    at.selectbox(key="f_order").set_value("norm").run()
    shared = first_layer_filters(ckpt.model, normalize="global")
    order = shared.order_by("norm")
    assert int(order[0]) == int(np.argmax(shared.norms))  # strongest filter first
    assert np.array_equal(grid(at), lecture_grid(shared, order, min_width=560, gap=2))

    at.number_input(key="f_idx").set_value(2).run()
    assert not at.exception, errors(at)
    peak = np.abs(filters.weights[2]).max()
    assert any(c.value.startswith(f"Filter 2's weights per input channel (red, green, blue), each divided by "
                                  f"the filter's largest |weight| ({peak:.3g})") for c in at.caption)
    assert at.query_params["filter"] == "2"
    assert at.image[0].proto.imgs[0].caption == "filter 2"


def test_filters_page_opens_the_filter_of_a_link(dashboard_env_no_data):
    at = open_page("filters", {"filter": "1"})
    assert not at.exception, errors(at)
    assert at.number_input(key="f_idx").value == 1
    assert any(c.value.startswith("Filter 1's weights") for c in at.caption)


@pytest.fixture
def snapshot_env(tiny_dashboard, tmp_path, monkeypatch):
    """The tiny checkpoint copied with a snapshot at epoch 1 holding the negated kernels."""
    ckdir = copy_tiny(tiny_dashboard, tmp_path / "checkpoints")
    ckpt = load_checkpoint(ckdir / "tiny")
    w = ckpt.model.first_conv.weight.detach()
    save_file({"epoch1/features.0.weight": (-w).contiguous()}, str(snapshots_path(ckdir / "tiny.safetensors")))
    _point_dashboard(monkeypatch, ckdir, tiny_dashboard.empty)
    return ckdir


def test_filters_page_shows_training_snapshots(snapshot_env):
    at = open_page("filters")
    assert not at.exception, errors(at)
    slider = at.select_slider(key="f_epoch")
    assert list(slider.options) == ["1", "final"] and slider.value == "final"
    final = grid(at)
    slider.set_value(1).run()
    assert not at.exception, errors(at)
    early = grid(at)
    # per-filter min-max scaling of negated weights inverts every kernel pixel (255 - v, up to
    # rounding); the white separators stay white
    white = (final == 255).all(-1) & (early == 255).all(-1)
    assert np.abs(early.astype(int) + final.astype(int) - 255)[~white].max() <= 1


@pytest.fixture
def frozen_env(tiny_dashboard, tmp_path_factory, monkeypatch):
    """A tiny ``cifar_fast`` checkpoint: its first convolution (whitening) is never trained."""
    base = tmp_path_factory.mktemp("frozen")
    torch.manual_seed(0)
    train_checkpoint(tiny_dashboard.tree, base / "checkpoints" / "whiten", dataset="folder", model="cifar_fast",
                     model_kwargs=dict(widths=[8, 8, 8]), preprocess=Preprocess(SIZE),
                     overrides=dict(epochs=1, precision="fp32", batch_size=8, device="cpu"),
                     progress=False, cache_dir=base / "cache")
    _point_dashboard(monkeypatch, base / "checkpoints", tiny_dashboard.empty)
    return base


def test_filters_page_says_when_the_first_layer_is_not_trained(frozen_env):
    at = open_page("filters")
    assert not at.exception, errors(at)
    assert len(at.info) == 1 and "does not train its first convolution" in at.info[0].value
    heading = next(m.value for m in at.markdown if "kernels" in m.value)
    assert heading.startswith("**24 kernels, 3x2x2**")  # 2x2x3 whitening: 24
    whiten = load_checkpoint(frozen_env / "checkpoints" / "whiten")
    assert np.array_equal(grid(at), lecture_grid(first_layer_filters(whiten.model), None, min_width=560, gap=2))


def test_model_page_switches_to_an_imported_checkpoint(tiny_dashboard, tmp_path, monkeypatch):
    from cnnviz.checkpoints import import_weights  # noqa: PLC0415

    ckdir = copy_tiny(tiny_dashboard, tmp_path / "checkpoints")
    tiny = load_checkpoint(ckdir / "tiny")
    import_weights(ckdir / "tiny.safetensors", ckdir / "mine", "alexnet_style", tiny.meta.classes, SIZE,
                   arch_kwargs=tiny.meta.arch_kwargs)
    _point_dashboard(monkeypatch, ckdir, tiny_dashboard.empty)

    at = open_page("model", {"model": "tiny"})
    assert not at.exception, errors(at)
    assert "Training curves" in [s.value for s in at.subheader] and not at.info
    at.sidebar.selectbox[0].select("mine").run()
    assert not at.exception, errors(at)
    assert at.query_params["model"] == "mine"
    assert len(at.info) == 1 and "Imported with `cnnviz import` from tiny.safetensors" in at.info[0].value
    assert "Training curves" not in [s.value for s in at.subheader]
    assert not any(m.label.endswith("accuracy") for m in at.metric)
    assert [r["layer"] for r in markdown_table(at, "layer")] == tiny.model.layer_names()


def test_static_table_is_markdown_with_escaped_cells():
    def page():
        import pandas as pd
        from dashboard.widgets import static_table
        static_table(pd.DataFrame({"layer": ["a|b", "c"], "size": [3.0, 2.5], "note": [None, "x\ny"]}))

    at = AppTest.from_function(page).run()
    assert at.markdown[0].value == ("| layer | size | note |\n| --- | ---: | --- |\n"
                                    "| a\\|b | 3 |  |\n| c | 2.5 | x y |")
    assert markdown_table(at, "layer") == [{"layer": "a|b", "size": "3", "note": ""},
                                           {"layer": "c", "size": "2.5", "note": "x y"}]

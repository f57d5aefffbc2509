"""`cnnviz figures --deck`: the lecture sequence as slides (PNGs at least 1,200 px wide) and one
offline deck.html, on a tiny untrained checkpoint with training snapshots and a tiny class tree."""

from __future__ import annotations

import base64
import io
import re
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from cnnviz.checkpoints import CheckpointMeta, load_checkpoint, save_checkpoint
from cnnviz.cli import main
from cnnviz.data import Preprocess
from cnnviz.inputs import Normalization
from cnnviz.lecture import build_lecture_deck
from cnnviz.lecture_sequence import LECTURE_SEQUENCE
from cnnviz.models import get_model
from conftest import make_class_tree

KW = dict(width=0.125, fc6=16, fc7=32)


@pytest.fixture
def tiny(tmp_path):
    """An alexnet_style checkpoint at 32 px (first layer 8 kernels of 3x5x5) with snapshots at
    epochs 0 and 2, and a class tree (train/ and test/, three colours) for it."""
    tree = make_class_tree(tmp_path / "data")
    torch.manual_seed(0)
    model = get_model("alexnet_style", 3, 32, **KW)
    w = model.first_conv.weight.detach()
    snaps = {0: {"features.0.weight": torch.randn_like(w)}, 2: {"features.0.weight": 0.5 * w}}
    meta = CheckpointMeta("alexnet_style", tree.classes, Preprocess(32), Normalization((0.5,) * 3, (0.25,) * 3),
                          arch_kwargs=KW)
    return save_checkpoint(tmp_path / "ck" / "tiny", model, meta, snaps), tree.root


def offline_problems(html: str) -> list[str]:
    """Every external reference in ``html``: any http(s) URL, any src that is not a data: URI,
    any href that is neither that nor an anchor on the page, any CSS url() that is not data:."""
    bad = re.findall(r"https?://[^\s\"'<>)]*", html)
    bad += [m for m in re.findall(r"""src\s*=\s*["']?([^"'\s>]*)""", html) if not m.startswith("data:")]
    bad += [m for m in re.findall(r"""href\s*=\s*["']?([^"'\s>]*)""", html) if not m.startswith(("data:", "#"))]
    bad += re.findall(r"url\(\s*['\"]?(?!data:)[^)]*\)", html)
    return bad


def slide_images(html: str) -> list[tuple[str, Image.Image]]:
    """``(alt text, picture)`` of each slide, decoded from its data URI."""
    found = re.findall(r'<section class="slide" id="s\d+"><img alt="([^"]*)" src="data:image/png;base64,([^"]+)">',
                       html)
    return [(alt, Image.open(io.BytesIO(base64.b64decode(b)))) for alt, b in found]


def test_the_deck_has_one_slide_per_step_offline(tiny, tmp_path, capsys):
    ckpt_path, data = tiny
    out = tmp_path / "figs"
    assert main(["figures", str(ckpt_path), "--out", str(out), "--data", str(data), "--deck", "-k", "3"]) == 0
    printed = capsys.readouterr().out
    assert f"deck: {out / 'deck.html'} (8 slides, " in printed and "no slide for" not in printed

    pngs = sorted((out / "deck").glob("*.png"))
    assert [p.name for p in pngs] == [f"{i + 1:02d}_{s.name}.png" for i, s in enumerate(LECTURE_SEQUENCE)]
    for p in pngs:
        img = Image.open(p)
        assert img.width >= 1200 and img.size == (1600, 900), p.name

    html = (out / "deck.html").read_text()
    assert offline_problems(html) == []
    slides = slide_images(html)
    assert [alt for alt, _ in slides] == [s.title for s in LECTURE_SEQUENCE]
    for (_, img), p in zip(slides, pngs):  # the deck embeds exactly the PNGs written
        assert np.array_equal(np.asarray(img), np.asarray(Image.open(p)))
    assert html.count("<script>") == 1 and all(k in html for k in ('ArrowRight', 'PageDown', 'ArrowLeft', 'PageUp'))
    assert 'id="count"' in html and '(at + 1) + " / " + slides.length' in html
    assert 50_000 < len(html) < 3_000_000  # eight embedded 1600 x 900 slides, no plotly.js

    # the figures it reuses are written as before, plus the kernels over the saved epochs
    assert {p.stem for p in out.glob("*.png")} == {"kernels", "kernels_over_epochs", "feature_maps", "neighbours",
                                                    "confusion"}
    epochs = Image.open(out / "kernels_over_epochs.png")
    assert epochs.width > 3 * 360  # initial, epoch 2 and final side by side


def test_the_kernel_slide_is_the_kernel_grid_enlarged(tiny, tmp_path):
    ckpt_path, _ = tiny
    out = tmp_path / "figs"
    assert main(["figures", str(ckpt_path), "--out", str(out), "--deck"]) == 0
    grid = np.asarray(Image.open(out / "kernels.png").convert("RGB"))
    slide = np.asarray(Image.open(out / "deck" / "01_kernels.png").convert("RGB"))
    # the grid is scaled by nearest neighbour: every colour of the grid is on the slide, no blends
    grid_colours = {tuple(c) for c in grid.reshape(-1, 3)}
    kernel_pixels = {tuple(c) for c in slide[160:-60, 48:-48].reshape(-1, 3)} - {(255, 255, 255)}
    assert kernel_pixels <= grid_colours and len(kernel_pixels) > 0.9 * (len(grid_colours) - 1)


def test_without_data_the_deck_has_the_steps_it_can_show(tiny, tmp_path, capsys, monkeypatch):
    ckpt_path, _ = tiny
    monkeypatch.setenv("CNNVIZ_DATA", str(tmp_path / "nowhere"))
    out = tmp_path / "figs"
    assert main(["figures", str(ckpt_path), "--out", str(out), "--deck"]) == 0
    printed = capsys.readouterr().out
    assert "(2 slides, " in printed
    assert "no slide for feature_maps: no image: give --image, or data with test images (--data)" in printed
    assert "no slide for mistakes: no labelled held-out images: give --data" in printed
    assert [p.name for p in sorted((out / "deck").glob("*.png"))] == ["01_kernels.png", "02_kernels_over_epochs.png"]
    html = (out / "deck.html").read_text()
    assert [alt for alt, _ in slide_images(html)] == ["First-layer kernels", "Kernels over training"]
    assert offline_problems(html) == []


def test_the_dashboards_deck_is_the_same_zip_in_memory(tiny, tmp_path):
    ckpt_path, data = tiny
    ckpt = load_checkpoint(ckpt_path)
    calls = []
    before = sorted(p for p in tmp_path.rglob("*") if "cache" not in p.parts)
    deck = build_lecture_deck(ckpt, data, k=3, report=lambda done, total: calls.append((done, total)))
    assert sorted(p for p in tmp_path.rglob("*") if "cache" not in p.parts) == before  # nothing written
    assert calls[-1] == (8, 8) and [d for d, _ in calls] == sorted(d for d, _ in calls)
    with zipfile.ZipFile(io.BytesIO(deck.zip_bytes())) as z:
        names = z.namelist()
        assert names == ["deck.html"] + [f"deck/{i + 1:02d}_{s.name}.png" for i, s in enumerate(LECTURE_SEQUENCE)]
        html = z.read("deck.html").decode()
        assert offline_problems(html) == [] and len(slide_images(html)) == 8
        assert Image.open(io.BytesIO(z.read("deck/03_feature_maps.png"))).size == (1600, 900)


def test_the_offline_check_finds_external_references():
    assert offline_problems('<img src="data:image/png;base64,AAAA"><a href="#2">') == []
    assert offline_problems('<img src="slide1.png"><a href="deck/2.html">') == ["slide1.png", "deck/2.html"]
    assert offline_problems('<script src="https://cdn.plot.ly/x.js"></script>') == [
        "https://cdn.plot.ly/x.js", "https://cdn.plot.ly/x.js"]
    assert offline_problems("body { background: url(http://x/y.png) }") == ["http://x/y.png", "url(http://x/y.png)"]


def test_many_snapshots_are_thinned_to_eight_panels(tiny):
    from cnnviz.lecture_slides import kernels_over_epochs_png  # noqa: PLC0415

    model = load_checkpoint(tiny[0]).model
    w = model.first_conv.weight.detach()
    one_row = kernels_over_epochs_png(model, {e: {"features.0.weight": w * (e + 1)} for e in range(3)})
    many = {e: {"features.0.weight": w * (e + 1)} for e in range(12)}
    two_rows = kernels_over_epochs_png(model, many)
    assert two_rows.width == one_row.width  # four panels a row
    assert two_rows.height == 2 * one_row.height + 24  # 7 of the 12 snapshots and the final kernels: two rows
    assert kernels_over_epochs_png(model, many, max_panels=4).size == one_row.size

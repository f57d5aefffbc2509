"""`cnnviz figures`: the lecture figures as PNG and HTML, offline."""

from __future__ import annotations

import pytest
from PIL import Image

from cnnviz.cli import main
from cnnviz.data import Preprocess
from cnnviz.lecture import write_lecture_figures
from cnnviz.train import train_checkpoint


@pytest.fixture(scope="module")
def trained(class_tree_session, tmp_path_factory):
    out = tmp_path_factory.mktemp("lecture") / "tiny"
    ckpt = train_checkpoint(class_tree_session.root, out, dataset="folder", model="alexnet_style",
                            model_kwargs=dict(width=0.125, fc6=16, fc7=32), preprocess=Preprocess(32),
                            val_fraction=0.25, overrides=dict(epochs=1, precision="fp32", batch_size=8),
                            progress=False, cache_dir=tmp_path_factory.mktemp("lecture-cache"))
    return ckpt, class_tree_session.root


def test_kernels_only_without_data(trained, tmp_path):
    ckpt, _ = trained
    res = write_lecture_figures(ckpt, tmp_path / "figs")
    assert set(res.png) == {"kernels"}
    img = Image.open(res.png["kernels"])
    conv = ckpt.model.first_conv
    assert img.mode == "RGB" and img.width >= 1200 and img.width > conv.kernel_size[1] * 4  # slide-wide
    html = res.html["kernels"].read_text()
    assert "plotly" in html and "cdn.plot.ly" not in html  # offline: local plotly.js
    assert (tmp_path / "figs" / "plotly.min.js").is_file()


def test_all_figures_with_data(trained, tmp_path, capsys):
    ckpt, root = trained
    code = main(["figures", str(ckpt.path), "--out", str(tmp_path / "all"), "--data", str(root), "-k", "3"])
    assert code == 0
    names = {p.stem for p in (tmp_path / "all").glob("*.png")}
    assert names == {"kernels", "feature_maps", "neighbours", "confusion"}
    assert {p.stem for p in (tmp_path / "all").glob("*.html")} == names
    conf = Image.open(tmp_path / "all" / "confusion.png")
    assert conf.width > 3 * 28 and conf.height > 3 * 28
    out = capsys.readouterr().out
    assert "confusion:" in out and "kernels:" in out

"""`cnnviz figures` with a layer or image that cannot be used: one line listing what can, exit 2,
nothing written."""

from __future__ import annotations

import pytest
import torch

from cnnviz.checkpoints import CheckpointMeta, load_checkpoint, save_checkpoint
from cnnviz.cli import main
from cnnviz.data import Preprocess
from cnnviz.inputs import Normalization
from cnnviz.lecture import FigureError, write_lecture_figures
from cnnviz.models import get_model
from conftest import COLORS, write_jpeg

EXTENSIONS = ".jpg, .jpeg, .png, .bmp, .gif, .webp, .tif, .tiff"


@pytest.fixture
def ckpt_path(tmp_path):
    torch.manual_seed(0)
    model = get_model("cifar_fast", 3, 16, widths=(8, 8, 8))
    meta = CheckpointMeta("cifar_fast", ["blue", "green", "red"], Preprocess(16),
                          Normalization((0.5,) * 3, (0.25,) * 3), arch_kwargs={"widths": (8, 8, 8)})
    return save_checkpoint(tmp_path / "tiny", model, meta)


def refusal(argv: list[str], capsys) -> str:
    rc = main(argv)
    captured = capsys.readouterr()
    assert rc == 2 and captured.out == "", captured
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cnnviz figures: error: "), captured.err
    return lines[0][len("cnnviz figures: error: "):]


def test_an_unknown_layer_lists_the_layers(ckpt_path, tmp_path, capsys):
    layers = load_checkpoint(ckpt_path).model.layer_names()
    msg = refusal(["figures", str(ckpt_path), "--out", str(tmp_path / "figs"), "--layer", "conv9"], capsys)
    assert msg == f"CifarFastNet has no layer 'conv9'; pick one of: {', '.join(layers)}"
    assert "block1.conv1" in layers
    assert not (tmp_path / "figs").exists()  # refused before anything was written


def test_a_missing_image(ckpt_path, tmp_path, capsys):
    missing = tmp_path / "nowhere.jpg"
    msg = refusal(["figures", str(ckpt_path), "--out", str(tmp_path / "figs"), "--image", str(missing)], capsys)
    assert msg == f"cannot show feature maps of {missing}: no image file there; give the path of an image ({EXTENSIONS})"
    assert not (tmp_path / "figs").exists()


def test_a_folder_as_image(ckpt_path, tmp_path, capsys):
    msg = refusal(["figures", str(ckpt_path), "--out", str(tmp_path / "figs"), "--image", str(tmp_path)], capsys)
    assert msg == (f"cannot show feature maps of {tmp_path}: a folder, not an image file; give the path of an "
                   f"image ({EXTENSIONS})")


def test_a_file_that_is_not_an_image(ckpt_path, tmp_path, capsys):
    fake = tmp_path / "notes.jpg"
    fake.write_text("these are not pixels")
    msg = refusal(["figures", str(ckpt_path), "--out", str(tmp_path / "figs"), "--image", str(fake)], capsys)
    assert msg.startswith(f"cannot show feature maps of {fake}: not a readable image (UnidentifiedImageError: ")
    assert msg.endswith("): use a PNG, JPEG or another common image format")
    assert not (tmp_path / "figs").exists()


def test_a_chosen_layer_and_image_are_used(ckpt_path, tmp_path):
    picture = write_jpeg(tmp_path / "red.jpg", COLORS["red"], (30, 20))
    res = write_lecture_figures(load_checkpoint(ckpt_path), tmp_path / "figs", image=picture, layer="block2.conv1")
    assert set(res.png) == {"kernels", "feature_maps"}
    assert "block2.conv1" in res.html["feature_maps"].read_text()
    with pytest.raises(FigureError, match="has no layer 'fc9'"):
        write_lecture_figures(load_checkpoint(ckpt_path), tmp_path / "figs", image=picture, layer="fc9")

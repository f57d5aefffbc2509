"""`cnnviz predict`: the competition's CSV from an unlabelled folder, unreadable files listed."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
import torch

from cnnviz.checkpoints import CheckpointMeta, load_checkpoint, save_checkpoint
from cnnviz.cli import main
from cnnviz.data import Preprocess
from cnnviz.inputs import Normalization
from cnnviz.models import get_model
from cnnviz.predict import decode_uploads, predict_folder

from conftest import jpeg_bytes

CHARACTERS = ["abraham_grampa_simpson", "bart_simpson", "lisa_simpson"]


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    model = get_model("alexnet_style", 3, 16, width=0.125, fc6=16, fc7=16)
    meta = CheckpointMeta(arch="alexnet_style", classes=CHARACTERS, preprocess=Preprocess(16, "pad"),
                          normalization=Normalization((0.5,) * 3, (0.25,) * 3),
                          arch_kwargs=dict(width=0.125, fc6=16, fc7=16), dataset="simpsons", tta="flip")
    return save_checkpoint(tmp_path / "ckpt" / "tiny", model, meta)


def test_predict_folder_gives_one_row_per_image_in_numeric_order(checkpoint, unlabelled):
    preds = predict_folder(load_checkpoint(checkpoint), unlabelled)
    assert preds.ids == ["1", "2", "10"]
    assert preds.probs.shape == (3, 3)
    np.testing.assert_allclose(preds.probs.sum(1), 1.0, rtol=1e-5)
    rows = list(csv.reader(io.StringIO(preds.to_csv())))
    assert rows[0] == ["id", "character"]
    assert [r[0] for r in rows[1:]] == ["1", "2", "10"]
    assert all(r[1] in CHARACTERS for r in rows[1:])


def test_predict_cli_writes_csv_and_lists_unreadable(checkpoint, unlabelled, tmp_path, capsys):
    (unlabelled / "11.jpg").write_bytes(jpeg_bytes((9, 9, 9))[:40])  # truncated
    out = tmp_path / "submission.csv"
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        code = main(["predict", str(checkpoint), str(unlabelled), "--out", str(out), "--probabilities"])
    assert code == 0
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["id", "character"] + CHARACTERS
    assert [r[0] for r in rows[1:]] == ["1", "2", "10"]
    assert abs(sum(float(x) for x in rows[1][2:]) - 1.0) < 1e-4
    err = capsys.readouterr().err
    assert "1 image(s) could not be read" in err and "11" in err


def test_predict_flat_labelled_folder_uses_file_stems(checkpoint, flat_labelled):
    preds = predict_folder(load_checkpoint(checkpoint), flat_labelled)
    assert sorted(preds.ids) == sorted(p.stem for p in flat_labelled.glob("*.jpg"))
    assert len(preds.top_k(2)[0]) == 2


def test_decode_uploads_reports_non_images_without_failing():
    files = [("ok.jpg", jpeg_bytes((1, 2, 3), (50, 20))), ("notes.txt", b"hello"),
             ("half.jpg", jpeg_bytes((1, 2, 3))[:30])]
    images, names, errors = decode_uploads(files, Preprocess(16, "pad"))
    assert images.shape == (1, 16, 16, 3) and images.dtype == np.uint8
    assert names == ["ok.jpg"]
    assert set(errors) == {"notes.txt", "half.jpg"}
    assert "not a readable image" in errors["notes.txt"]


def test_predict_cli_refuses_images_whose_ids_clash(checkpoint, unlabelled, tmp_path, capsys):
    (unlabelled / "2.png").write_bytes(jpeg_bytes((1, 2, 3)))  # 2.jpg and 2.png: two rows with id 2
    out = tmp_path / "submission.csv"
    assert main(["predict", str(checkpoint), str(unlabelled), "--out", str(out)]) == 2
    assert capsys.readouterr().err == (
        f"cnnviz predict: error: 2.jpg and 2.png in {unlabelled} share the id 2: ids are file names "
        "without the extension and must be unique; rename or remove one of them\n")
    assert not out.exists()

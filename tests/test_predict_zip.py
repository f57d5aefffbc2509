"""Predictions for an uploaded zip (the competition's test set), decoded in memory: the same ids and
CSV as the zip on disk, non-images listed, and clear errors for non-zips, empty zips and bombs."""

from __future__ import annotations

import builtins
import io
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

import cnnviz.predict as predict_mod
from cnnviz.checkpoints import CheckpointMeta, load_checkpoint, save_checkpoint
from cnnviz.data import Budget, DatasetError, Preprocess, load_dataset
from cnnviz.inputs import Normalization
from cnnviz.models import get_model
from cnnviz.predict import decode_zip, predict_folder, predict_zip

from conftest import FLAT_LABELLED, jpeg_bytes

CHARACTERS = ["abraham_grampa_simpson", "bart_simpson", "lisa_simpson"]
PRE = Preprocess(16, "pad")


def png_bytes(color: tuple[int, int, int], size: tuple[int, int] = (18, 26)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def make_zip(members: dict[str, bytes], dirs: tuple[str, ...] = (),
             compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for d in dirs:
            zf.writestr(zipfile.ZipInfo(d), b"")
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def competition_zip() -> bytes:
    """``testset/<n>.jpg`` as the competition numbers them, plus what real zips carry along."""
    return make_zip({
        "testset/10.jpg": jpeg_bytes((0, 0, 255), (24, 16)),
        "testset/2.png": png_bytes((0, 255, 0)),
        "testset/1.jpg": jpeg_bytes((255, 0, 0), (16, 24)),
        "testset/11.jpg": jpeg_bytes((9, 9, 9))[:40],  # truncated
        "testset/sampleSubmission.csv": b"id,character\n1,bart_simpson\n",
        "testset/.DS_Store": b"\0\0\0\1Bud1",
        "__MACOSX/testset/._1.jpg": b"\0\5\x16\7 resource fork",
    }, dirs=("testset/", "__MACOSX/", "__MACOSX/testset/"))


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    model = get_model("alexnet_style", 3, 16, width=0.125, fc6=16, fc7=16)
    meta = CheckpointMeta(arch="alexnet_style", classes=CHARACTERS, preprocess=PRE,
                          normalization=Normalization((0.5,) * 3, (0.25,) * 3),
                          arch_kwargs=dict(width=0.125, fc6=16, fc7=16), dataset="simpsons", tta="flip")
    return load_checkpoint(save_checkpoint(tmp_path / "ckpt" / "tiny", model, meta))


def test_competition_zip_gives_numbered_ids_and_lists_non_images():
    images, ids, errors = decode_zip(competition_zip(), PRE, "testset.zip")
    assert ids == ["1", "2", "10"]  # numeric order, as the server-path zip gives them
    assert images.shape == (3, 16, 16, 3) and images.dtype == np.uint8
    assert images[0, 8, 8, 0] > 200 and images[2, 8, 8, 2] > 200  # 1.jpg red, 10.jpg blue
    assert set(errors) == {"testset/11.jpg", "testset/sampleSubmission.csv"}  # no __MACOSX, no dotfiles
    assert "not a readable image" in errors["testset/11.jpg"]
    assert errors["testset/sampleSubmission.csv"] == "not an image file"


def test_upload_matches_the_same_zip_on_disk(checkpoint, tmp_path):
    data = competition_zip()
    path = tmp_path / "testset.zip"
    path.write_bytes(data)
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        on_disk = predict_folder(checkpoint, path)
        decoded = load_dataset(path, None, PRE)
    preds, images, errors = predict_zip(checkpoint, data, "testset.zip")
    assert preds.ids == on_disk.ids == ["1", "2", "10"]
    assert preds.to_csv() == on_disk.to_csv()
    np.testing.assert_array_equal(images, decoded.images)
    np.testing.assert_allclose(preds.probs, on_disk.probs, rtol=1e-5, atol=1e-6)
    assert preds.unreadable == list(errors)
    rows = preds.to_csv().splitlines()
    assert rows[0] == "id,character" and len(rows) == 4
    assert all(r.split(",")[1] in CHARACTERS for r in rows[1:])


def test_flat_labelled_zip_uses_file_stems(tmp_path):
    data = make_zip({f"kaggle_simpson_testset/{stem}.jpg": jpeg_bytes(c, (30, 20))
                     for stem, c in FLAT_LABELLED.items()})
    images, ids, errors = decode_zip(data, PRE)
    assert sorted(ids) == sorted(FLAT_LABELLED) and not errors
    path = tmp_path / "kaggle_simpson_testset.zip"
    path.write_bytes(data)
    assert ids == load_dataset(path, None, PRE).ids
    assert images.shape == (len(FLAT_LABELLED), 16, 16, 3)


def test_nothing_is_written_to_disk(monkeypatch, cache_dir):
    def no_writes(file, mode="r", *a, **kw):
        assert not set(mode) & set("wax+"), f"wrote {file}"
        return real_open(file, mode, *a, **kw)

    real_open = builtins.open
    monkeypatch.setattr(builtins, "open", no_writes)
    monkeypatch.setattr(predict_mod, "load_dataset", None)  # and no route through the disk cache
    images, ids, _ = decode_zip(competition_zip(), PRE)
    assert len(ids) == 3
    assert not cache_dir.exists()


@pytest.mark.parametrize("data", [b"", b"id,character\n1,bart_simpson\n", jpeg_bytes((1, 2, 3))])
def test_bytes_that_are_not_a_zip(data):
    with pytest.raises(DatasetError, match="testset.zip is not a zip archive: upload a .zip"):
        decode_zip(data, PRE, "testset.zip")


@pytest.mark.parametrize("members", [
    {},
    {"notes.txt": b"hello", "__MACOSX/._1.jpg": b"fork", "test/.hidden.jpg": jpeg_bytes((1, 2, 3))},
])
def test_zip_without_images(members):
    with pytest.raises(DatasetError, match="no images in testset.zip"):
        decode_zip(make_zip(members, dirs=("test/",)), PRE, "testset.zip")


def test_zip_bombs_are_refused_before_decompressing():
    data = make_zip({f"test/{i}.jpg": b"\0" * 1000 for i in range(5)})
    with pytest.raises(DatasetError, match="holds 5 files, over the limit of 4"):
        decode_zip(data, PRE, max_members=4)
    with pytest.raises(DatasetError, match="unpacks to .* MB, over the limit"):
        decode_zip(data, PRE, max_bytes=4000)


def test_oversized_or_exotically_compressed_members_are_listed():
    data = make_zip({"test/1.jpg": jpeg_bytes((1, 2, 3)), "test/2.jpg": b"\0" * 20_000})
    images, ids, errors = decode_zip(data, PRE, budget=Budget(file_bytes=10_000))
    assert ids == ["1"]
    assert errors == {"test/2.jpg": "20,000 bytes, over the limit of 10,000 bytes for one image"}
    data = make_zip({"test/1.jpg": jpeg_bytes((1, 2, 3))}, compression=zipfile.ZIP_BZIP2)
    images, ids, errors = decode_zip(data, PRE)
    assert ids == [] and images.shape == (0, 16, 16, 3)
    assert "other than deflate" in errors["test/1.jpg"]


def test_zip_whose_images_are_all_unreadable_predicts_nothing(checkpoint):
    preds, images, errors = predict_zip(checkpoint, make_zip({"test/1.jpg": b"nope"}))
    assert preds.ids == [] and preds.probs.shape == (0, 3) and len(images) == 0
    assert list(errors) == ["test/1.jpg"]
    assert preds.to_csv() == "id,character\n"

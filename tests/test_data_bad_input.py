"""Bad input the data layer meets in the wild: 16-bit greyscale, broken links, clashing ids,
impossible preprocessing, and data without the labels training needs."""

from __future__ import annotations

import io
import os
import zipfile

import numpy as np
import pytest
from PIL import Image

from cnnviz.data import (DatasetError, ImageDataset, Preprocess, PreprocessError, decode_image,
                         load_dataset, resolve_source)
from cnnviz.predict import decode_zip

from conftest import write_jpeg

PRE16 = Preprocess(16)


# --------------------------------------------------------------------------------------------
# 16-bit greyscale


def grey16_png(values: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(values.astype(np.uint16)).save(buf, "PNG")
    data = buf.getvalue()
    assert data[24] == 16 and data[25] == 0, "not a 16-bit greyscale PNG"  # IHDR bit depth, colour type
    return data


def test_16_bit_greyscale_png_keeps_its_gradient():
    gradient = np.arange(256).reshape(16, 16)
    out = decode_image(grey16_png(gradient * 257), PRE16)  # 0, 257, ... 65535: exactly 0 ... 255
    assert out.dtype == np.uint8 and out.shape == (16, 16, 3)
    np.testing.assert_array_equal(out[..., 0], gradient)
    assert (out == out[..., :1]).all()  # grey stays grey


def test_16_bit_values_between_steps_round_to_the_nearest_8_bit_level():
    values = np.array([[0, 128, 129, 385, 32767, 32768, 65406, 65535]] * 8)
    out = decode_image(grey16_png(values), Preprocess(8))
    np.testing.assert_array_equal(out[0, :, 0], [0, 0, 1, 1, 127, 128, 254, 255])


def test_32_bit_integer_greyscale_in_16_bit_range_is_scaled():
    img = Image.fromarray(np.full((4, 4), 65535 // 2, np.int32))
    assert img.mode == "I"
    assert (Preprocess(4).apply(img) == 127).all()
    small = Image.fromarray(np.full((4, 4), 77, np.int32))  # already 8-bit values: kept
    assert (Preprocess(4).apply(small) == 77).all()


# --------------------------------------------------------------------------------------------
# A broken link in an image folder


def test_broken_symlink_is_skipped_and_counted(tmp_path):
    root = tmp_path / "tree"
    for cls in ("cat", "dog"):
        for i in range(2):
            write_jpeg(root / cls / f"{i}.jpg", (200, 100, 0), (20, 20))
    os.symlink(tmp_path / "gone.jpg", root / "dog" / "9.jpg")
    for _ in range(2):  # decoded, then from the cache: the same single warning
        with pytest.warns(UserWarning) as record:
            ds = load_dataset(root, None, PRE16)
        msgs = [str(w.message) for w in record]
        assert msgs == [f"skipped 1 unreadable image(s) in {root}: dog/9.jpg"]
        assert ds.skipped == ["dog/9.jpg"] and len(ds) == 4 and ds.counts() == {"cat": 2, "dog": 2}


# --------------------------------------------------------------------------------------------
# Ids that clash in flat folders


def test_numbered_images_with_the_same_stem_are_refused(unlabelled):
    write_jpeg(unlabelled / "2.png", (1, 2, 3))
    with pytest.raises(DatasetError) as e:
        resolve_source(unlabelled)
    assert str(e.value) == (f"2.jpg and 2.png in {unlabelled} share the id 2: ids are file names "
                            "without the extension and must be unique; rename or remove one of them")


def test_flat_labelled_images_with_the_same_stem_are_refused(flat_labelled):
    write_jpeg(flat_labelled / "bart_simpson_1.png", (1, 2, 3))
    write_jpeg(flat_labelled / "lisa_simpson_3.jpeg", (1, 2, 3))
    with pytest.raises(DatasetError) as e:
        load_dataset(flat_labelled, None, PRE16)
    assert str(e.value) == (
        f"bart_simpson_1.jpg and bart_simpson_1.png in {flat_labelled} share the id bart_simpson_1 "
        "(and 1 more shared id(s)): ids are file names without the extension and must be unique; "
        "rename or remove one of them")


def test_uploaded_zip_with_clashing_ids_is_refused(unlabelled):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for p in unlabelled.glob("*.jpg"):
            zf.write(p, f"testset/{p.name}")
        zf.write(unlabelled / "1.jpg", "testset/1.png")
    with pytest.raises(DatasetError, match=r"^1.jpg and 1.png in testset.zip share the id 1: ids are"):
        decode_zip(buf.getvalue(), PRE16, "testset.zip")


def test_class_trees_may_reuse_file_names(class_tree):
    write_jpeg(class_tree.root / "test" / "red" / "000.png", (220, 40, 40))
    src = resolve_source(class_tree.root, "test")
    assert "red/000.jpg" in src.ids and "red/000.png" in src.ids  # ids are paths: unique


# --------------------------------------------------------------------------------------------
# Preprocessing that cannot work is refused when it is made, not image by image


@pytest.mark.parametrize("make", [lambda: Preprocess(32, "bogus"),
                                  lambda: Preprocess.from_dict({"size": 32, "mode": "bogus"})])
def test_unknown_resize_mode(make):
    with pytest.raises(PreprocessError) as e:
        make()
    assert str(e.value) == "unknown resize mode 'bogus': use squash, center_crop, pad"
    assert isinstance(e.value, DatasetError)  # the CLI prints it as a user error


@pytest.mark.parametrize("size", [0, -3, 2.5, True])
def test_size_below_one_or_not_whole(size):
    with pytest.raises(PreprocessError) as e:
        Preprocess(size)
    assert str(e.value) == f"resize size must be a whole number of pixels of 1 or more, not {size!r}"


def test_fill_must_be_rgb():
    with pytest.raises(PreprocessError, match=r"^fill must be three values 0-255 \(red, green, blue\), "
                                              r"not \(1, 2\)$"):
        Preprocess(8, "pad", (1, 2))
    with pytest.raises(PreprocessError):
        Preprocess(8, "pad", (0, 0, 256))
    assert Preprocess(8, "pad", [1, 2, 3]) == Preprocess(8, "pad", (1, 2, 3))


# --------------------------------------------------------------------------------------------
# Training needs labels of at least two classes


def test_require_labels_passes_labelled_data_through(class_tree):
    ds = load_dataset(class_tree.root, "test", PRE16)
    assert ds.require_labels() is ds
    assert ds.require_labels(min_classes=3) is ds


def test_one_class_is_not_enough_to_train(tmp_path):
    for i in range(3):
        write_jpeg(tmp_path / "data" / "train" / "cat" / f"pic{i}.jpg", (9, 9, 9))  # not numbered
    ds = load_dataset(tmp_path / "data", "train", PRE16)
    with pytest.raises(DatasetError) as e:
        ds.require_labels(min_classes=2)
    assert str(e.value) == (
        "training needs labelled images of at least 2 classes; found 1 class (cat): use a folder "
        "with one sub-folder of images per class (e.g. train/<class>/*.jpg) or a flat folder of "
        "<class>_<n>.jpg files")


def test_unlabelled_folder_cannot_train(unlabelled):
    ds = load_dataset(unlabelled, None, PRE16)
    with pytest.raises(DatasetError, match=r"^training needs labelled images of at least 2 classes; found 3 "
                                           r"unlabelled image\(s\) \(numbered files name no class\): "):
        ds.require_labels()


def test_require_labels_on_an_empty_set_and_another_purpose():
    empty = ImageDataset(np.zeros((0, 2, 2, 3), np.uint8), np.zeros(0, np.int64), ["a", "b"], [], "fp",
                         Preprocess(2))
    with pytest.raises(DatasetError, match=r"^fine-tuning needs labelled images of at least 2 classes; "
                                           r"found no images: "):
        empty.require_labels(purpose="fine-tuning")

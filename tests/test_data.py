"""Datasets as users have them: layouts, preprocessing, the cache, bad input, splits."""

from __future__ import annotations

import pickle
import shutil
import struct
import zlib
import warnings
import zipfile

import numpy as np
import pytest
from PIL import Image

import cnnviz.data as data_mod
import cnnviz.data.loading as loading_mod  # decode_image as the loader calls it
from cnnviz.data import (
    DatasetError,
    ImageDataset,
    Preprocess,
    SplitSpec,
    UnreadableImage,
    UnsafePickleError,
    decode_image,
    load_dataset,
    make_split,
    read_plain_pickle,
    resolve_source,
    stratified_split,
)
from conftest import CIFAR_LABEL_NAMES, FLAT_LABELLED, UNLABELLED, Evil, jpeg_bytes, zip_tree

PRE16 = Preprocess(16, "squash")


def color_distance(img: np.ndarray, color) -> float:
    """Largest per-channel distance between an image's mean colour and ``color``."""
    return float(np.abs(img.reshape(-1, 3).mean(0) - np.asarray(color, float)).max())


# --------------------------------------------------------------------------------------------
# Layouts


@pytest.mark.parametrize("split", ["train", "test"])
def test_class_tree_folder(class_tree, split, cache_dir):
    ds = load_dataset(class_tree.root, split, PRE16)
    counts = class_tree.n_train if split == "train" else class_tree.n_test
    assert ds.classes == ["blue", "green", "red"]
    assert len(ds) == sum(counts.values())
    assert ds.counts() == counts
    assert ds.ids == class_tree.ids(split)
    assert ds.labelled
    assert ds.images.shape == (len(ds), 16, 16, 3) and ds.images.dtype == np.uint8
    assert ds.labels.dtype == np.int64
    for img, label, ident in zip(ds.images, ds.labels, ds.ids):
        cls = ds.classes[label]
        assert ident.startswith(cls + "/")
        assert color_distance(img, class_tree.colors[cls]) < 8, ident
    assert ds.skipped == []
    assert any(cache_dir.iterdir()), "the decoded images were not cached under $CNNVIZ_CACHE"


def test_class_tree_given_directly_and_by_split(class_tree):
    direct = resolve_source(class_tree.root / "train")
    by_split = resolve_source(class_tree.root, "train")
    assert direct.layout == by_split.layout == "class_tree"
    assert direct.members == by_split.members
    assert direct.fingerprint == by_split.fingerprint
    assert direct.classes == ["blue", "green", "red"]


def test_root_with_two_trees_needs_a_split(class_tree):
    with pytest.raises(DatasetError) as e:
        resolve_source(class_tree.root)
    assert "several class trees" in str(e.value)
    assert "name the split" in str(e.value)


def test_zips_match_folders(class_tree, class_zips, tmp_path):
    for split in ("train", "test"):
        src = resolve_source(class_zips.root, split)
        assert src.path == class_zips.root / f"{split}.zip"
        assert src.layout == "class_tree"
        folder = load_dataset(class_tree.root, split, PRE16, cache_dir=tmp_path / "c1")
        zipped = load_dataset(class_zips.root, split, PRE16, cache_dir=tmp_path / "c2")
        assert zipped.classes == folder.classes == ["blue", "green", "red"]
        assert zipped.ids == folder.ids == class_tree.ids(split)
        np.testing.assert_array_equal(zipped.labels, folder.labels)
        np.testing.assert_array_equal(zipped.images, folder.images)  # same JPEG bytes, same pixels


def test_zip_of_a_tree_given_directly(class_zips):
    src = resolve_source(class_zips.root / "train.zip")
    assert src.classes == ["blue", "green", "red"]
    assert src.ids == tuple(class_zips.ids("train"))
    assert src.members[0] == "train/blue/000.jpg"


def test_zip_holding_train_and_test_picks_the_split(class_tree, tmp_path):
    path = zip_tree(class_tree.root, tmp_path / "both.zip", "dataset")
    train = resolve_source(path, "train")
    test = resolve_source(path, "test")
    assert len(train.members) == sum(class_tree.n_train.values())
    assert len(test.members) == sum(class_tree.n_test.values())
    assert all(m.startswith("dataset/test/") for m in test.members)


@pytest.mark.parametrize("split", ["train", "test"])
def test_cifar_batches(cifar_batches, split):
    ds = load_dataset(cifar_batches.root, split, Preprocess(32))
    rows = cifar_batches.train_data if split == "train" else cifar_batches.test_data
    labels = cifar_batches.train_labels if split == "train" else cifar_batches.test_labels
    assert ds.classes == CIFAR_LABEL_NAMES == sorted(CIFAR_LABEL_NAMES)
    assert len(ds) == len(rows) == (20 if split == "train" else 3)
    np.testing.assert_array_equal(ds.labels, labels)
    if split == "train":
        assert ds.ids[:5] == ["data_batch_1/0", "data_batch_1/1", "data_batch_1/2", "data_batch_1/3",
                              "data_batch_2/0"]
        assert ds.ids[-1] == "data_batch_5/3"
    else:
        assert ds.ids == ["test_batch/0", "test_batch/1", "test_batch/2"]
    # each row is 1024 red, then green, then blue values, row-major: pixel (y, x) of channel c
    # is rows[i, c * 1024 + y * 32 + x]
    assert ds.images.shape == (len(rows), 32, 32, 3) and ds.images.dtype == np.uint8
    for i, y, x, c in [(0, 0, 0, 0), (1, 0, 5, 1), (2, 7, 3, 2), (len(rows) - 1, 31, 30, 0)]:
        assert ds.images[i, y, x, c] == rows[i, c * 1024 + y * 32 + x]
    np.testing.assert_array_equal(ds.images, rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))


def test_cifar_batches_resized(cifar_batches):
    ds = load_dataset(cifar_batches.batches, "test", Preprocess(16))  # the batches folder itself
    assert ds.images.shape == (3, 16, 16, 3) and ds.images.dtype == np.uint8
    assert ds.classes == CIFAR_LABEL_NAMES


def test_cifar_batches_missing_file(cifar_batches):
    (cifar_batches.batches / "data_batch_3").unlink()
    with pytest.raises(DatasetError) as e:
        resolve_source(cifar_batches.root, "train")
    assert "data_batch_3" in str(e.value) and "re-download" in str(e.value)


def test_flat_labelled_folder(flat_labelled):
    ds = load_dataset(flat_labelled, None, PRE16)
    assert ds.classes == ["abraham_grampa_simpson", "bart_simpson", "lisa_simpson"]
    # ordered by character, then by number (3 before 12)
    assert ds.ids == ["abraham_grampa_simpson_3", "abraham_grampa_simpson_10", "bart_simpson_1",
                      "lisa_simpson_3", "lisa_simpson_7", "lisa_simpson_12"]
    assert [ds.classes[i] for i in ds.labels] == [
        "abraham_grampa_simpson", "abraham_grampa_simpson", "bart_simpson",
        "lisa_simpson", "lisa_simpson", "lisa_simpson"]
    assert ds.counts() == {"abraham_grampa_simpson": 2, "bart_simpson": 1, "lisa_simpson": 3}
    for img, ident in zip(ds.images, ds.ids):
        assert color_distance(img, FLAT_LABELLED[ident]) < 8, ident
    src = resolve_source(flat_labelled)
    assert src.layout == "flat_labelled"


def test_flat_labelled_found_as_the_test_split(flat_labelled):
    # a Simpsons root without test/ but with kaggle_simpson_testset/
    src = resolve_source(flat_labelled.parent, "test")
    assert src.layout == "flat_labelled"
    assert src.path == flat_labelled
    assert src.classes == ["abraham_grampa_simpson", "bart_simpson", "lisa_simpson"]


def test_unlabelled_numbered_folder(unlabelled):
    src = resolve_source(unlabelled)
    assert src.layout == "unlabelled"
    assert src.ids == ("1", "2", "10")  # numeric order, not "1", "10", "2"
    ds = load_dataset(unlabelled, None, PRE16)
    assert ds.ids == ["1", "2", "10"]
    assert ds.classes == []
    np.testing.assert_array_equal(ds.labels, [-1, -1, -1])
    assert not ds.labelled
    for img, ident in zip(ds.images, ds.ids):
        assert color_distance(img, UNLABELLED[ident]) < 8, ident


def test_zipped_flat_labelled_folder_is_not_one_class(flat_labelled, tmp_path):
    """Zipping kaggle_simpson_testset/ (as the Kaggle download and `zip -r` do) puts the folder
    inside the zip; resolve_source(root, "test") looks for exactly that zip."""
    root = tmp_path / "zipped_root"
    zip_tree(flat_labelled, root / "kaggle_simpson_testset.zip", "kaggle_simpson_testset")
    src = resolve_source(root, "test")
    assert src.path == root / "kaggle_simpson_testset.zip"
    assert src.classes == ["abraham_grampa_simpson", "bart_simpson", "lisa_simpson"]
    assert src.layout == "flat_labelled"


def test_zipped_unlabelled_folder_is_not_one_class(unlabelled, tmp_path):
    path = zip_tree(unlabelled, tmp_path / "testset.zip", "testset")
    src = resolve_source(path)
    assert src.layout == "unlabelled"
    assert src.labels is None
    assert src.ids == ("1", "2", "10")


def test_test_split_never_falls_back_to_the_training_tree(class_tree):
    shutil.rmtree(class_tree.root / "test")  # a root with train/ only
    try:
        src = resolve_source(class_tree.root, "test")
    except DatasetError:
        return
    train = resolve_source(class_tree.root, "train")
    assert src.fingerprint != train.fingerprint, (
        "asked for the test split of a root that has none, got the training images back")


# --------------------------------------------------------------------------------------------
# Preprocessing


@pytest.mark.parametrize("mode", ["squash", "center_crop", "pad"])
@pytest.mark.parametrize("size", [8, 16])
def test_every_mode_gives_square_uint8(class_tree, mode, size):
    pre = Preprocess(size, mode)
    ds = load_dataset(class_tree.root, "test", pre)
    assert ds.images.shape == (sum(class_tree.n_test.values()), size, size, 3)
    assert ds.images.dtype == np.uint8
    assert ds.preprocess == pre


def test_decode_image_resizes_any_frame():
    for w, h in [(20, 30), (30, 20), (41, 17), (16, 16), (5, 3)]:
        out = decode_image(jpeg_bytes((0, 128, 255), (w, h)), Preprocess(16, "center_crop"))
        assert out.shape == (16, 16, 3) and out.dtype == np.uint8
        assert color_distance(out, (0, 128, 255)) < 8


def _banded(w: int = 40, h: int = 10) -> Image.Image:
    """A wide white frame with 5-px green bands at its left and right edges."""
    arr = np.full((h, w, 3), 255, np.uint8)
    arr[:, :5] = arr[:, -5:] = (0, 255, 0)
    return Image.fromarray(arr)


def test_pad_puts_fill_around_a_wide_image():
    fill = (255, 0, 255)
    out = Preprocess(16, "pad", fill).apply(_banded())
    # 40x10 -> 16x4 centred: rows 0-5 and 10-15 are fill, rows 6-9 the picture
    assert out.shape == (16, 16, 3)
    assert (out[:6] == fill).all() and (out[10:] == fill).all()
    assert (out[7:9, 6:10] == 255).all()  # white middle of the picture
    assert out[8, 0, 1] > 200 and out[8, 0, 0] < 60  # green edge band kept
    # the whole picture is kept: pad does not cut the edges off
    assert not (out[6:10] == fill).all(-1).any()


def test_center_crop_cuts_the_sides_of_a_wide_image():
    out = Preprocess(10, "center_crop").apply(_banded())  # shorter side already 10 px
    assert out.shape == (10, 10, 3)
    assert (out == 255).all()  # only the white centre is left; the green bands are cut off


def test_squash_keeps_everything_stretched():
    out = Preprocess(16, "squash").apply(_banded())
    assert out.shape == (16, 16, 3)
    assert out[:, 0, 0].max() < 60 and out[:, 0, 1].min() > 200  # green at the left edge
    assert (out[:, 8] > 240).all()  # white in the middle


def test_preprocess_roundtrips_as_dict():
    pre = Preprocess(96, "pad", (10, 20, 30))
    assert Preprocess.from_dict(pre.to_dict()) == pre
    assert Preprocess(32, "pad", (1, 2, 3)).key() != Preprocess(32, "pad", (3, 2, 1)).key()


def test_non_rgb_images_become_rgb():
    buf = np.zeros((12, 12, 4), np.uint8)
    buf[..., 3] = 0  # fully transparent -> white background
    out = Preprocess(12).apply(Image.fromarray(buf, "RGBA"))
    assert (out == 255).all()
    grey = Preprocess(12).apply(Image.new("L", (12, 12), 77))
    assert (grey == 77).all() and grey.shape == (12, 12, 3)


# --------------------------------------------------------------------------------------------
# The cache


def test_second_load_comes_from_the_cache(class_tree, cache_dir, monkeypatch):
    calls = []
    real = loading_mod.decode_image

    def counting(data, pre, *limits):
        calls.append(pre.size)
        return real(data, pre, *limits)

    monkeypatch.setattr(loading_mod, "decode_image", counting)
    first = load_dataset(class_tree.root, "train", PRE16)
    n = sum(class_tree.n_train.values())
    assert len(calls) == n
    entries = [p for p in cache_dir.iterdir() if p.is_dir()]
    assert len(entries) == 1 and (entries[0] / "meta.json").is_file()

    def refuse(data, pre, *limits):
        raise AssertionError("decoded again instead of reading the cache")

    monkeypatch.setattr(loading_mod, "decode_image", refuse)
    second = load_dataset(class_tree.root, "train", PRE16)
    assert second.images.dtype == first.images.dtype == np.uint8
    np.testing.assert_array_equal(second.images, first.images)
    np.testing.assert_array_equal(second.labels, first.labels)
    assert second.labels.dtype == np.int64
    assert second.classes == first.classes and second.ids == first.ids
    assert second.fingerprint == first.fingerprint and second.preprocess == first.preprocess

    # other preprocessing is another cache entry: it decodes again
    monkeypatch.setattr(loading_mod, "decode_image", counting)
    third = load_dataset(class_tree.root, "train", Preprocess(8))
    assert len(calls) == 2 * n and third.images.shape[1:] == (8, 8, 3)
    assert len([p for p in cache_dir.iterdir() if p.is_dir()]) == 2


def test_cache_defaults_to_the_environment(cache_dir):
    assert data_mod.default_cache_dir() == cache_dir  # this suite never writes to ~/.cache


def test_cache_dir_argument_wins_over_environment(class_tree, cache_dir, tmp_path):
    other = tmp_path / "explicit"
    load_dataset(class_tree.root, "test", PRE16, cache_dir=other)
    assert any(other.iterdir())
    assert not cache_dir.exists() or not any(cache_dir.iterdir())


def test_changed_source_is_decoded_again(class_tree, monkeypatch):
    first = load_dataset(class_tree.root, "test", PRE16)
    path = class_tree.root / "test" / "red" / "000.jpg"
    new = jpeg_bytes((0, 0, 0), (33, 31))
    assert len(new) != path.stat().st_size  # the fingerprint looks at names and sizes
    path.write_bytes(new)
    second = load_dataset(class_tree.root, "test", PRE16)
    assert second.fingerprint != first.fingerprint
    i = second.ids.index("red/000.jpg")
    assert color_distance(second.images[i], (0, 0, 0)) < 8


# --------------------------------------------------------------------------------------------
# Bad input


def _unreadable_warnings(record) -> list[str]:
    return [str(w.message) for w in record if "unreadable" in str(w.message)]


def test_corrupt_image_is_skipped_with_one_warning(corrupt_tree):
    with pytest.warns(UserWarning) as record:
        ds = load_dataset(corrupt_tree, None, PRE16)
    msgs = _unreadable_warnings(record)
    assert len(msgs) == 1
    assert "skipped 1 unreadable image" in msgs[0] and "red/bad.jpg" in msgs[0]
    assert ds.skipped == ["red/bad.jpg"]
    assert len(ds) == 6 and "red/bad.jpg" not in ds.ids
    assert ds.counts() == {"green": 3, "red": 3}
    assert ds.images.shape == (6, 16, 16, 3)
    for img in ds.images:
        assert img.any(), "a skipped image left a black hole in the array"

    # from the cache: the same data, the same single warning
    with pytest.warns(UserWarning) as record2:
        again = load_dataset(corrupt_tree, None, PRE16)
    assert len(_unreadable_warnings(record2)) == 1
    assert again.skipped == ["red/bad.jpg"] and again.ids == ds.ids


def test_clean_data_gives_no_warning(class_tree):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_dataset(class_tree.root, "test", PRE16)


def test_missing_path(tmp_path):
    with pytest.raises(DatasetError) as e:
        load_dataset(tmp_path / "nowhere", "train", PRE16)
    msg = str(e.value)
    assert "no dataset at" in msg and str(tmp_path / "nowhere") in msg
    assert "--data" in msg


def test_empty_class_folder(empty_class_tree):
    with pytest.raises(DatasetError) as e:
        load_dataset(empty_class_tree, "train", PRE16)
    msg = str(e.value)
    assert "green" in msg and "hold no images" in msg
    assert "add images to them or remove them" in msg


def test_empty_class_folder_in_a_zip(tmp_path):
    path = tmp_path / "train.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("train/", "")
        zf.writestr("train/cat/", "")
        zf.writestr("train/cat/0.jpg", jpeg_bytes((1, 1, 1)))
        zf.writestr("train/dog/", "")
    with pytest.raises(DatasetError) as e:
        resolve_source(path)
    assert "dog" in str(e.value) and "hold no images" in str(e.value)


def test_zip_without_class_folders(zip_without_classes):
    with pytest.raises(DatasetError) as e:
        load_dataset(zip_without_classes, None, PRE16)
    msg = str(e.value)
    assert "cannot tell how" in msg
    assert "one sub-folder per class" in msg and "<class>_<n>.jpg" in msg


def test_zip_without_images(tmp_path):
    path = tmp_path / "notes.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("train/readme.txt", "hello")
    with pytest.raises(DatasetError) as e:
        resolve_source(path)
    assert "no images in" in str(e.value) and "one sub-folder per class" in str(e.value)


def test_file_that_is_not_a_zip(tmp_path):
    path = tmp_path / "data.zip"
    path.write_bytes(b"this is not a zip")
    with pytest.raises(DatasetError) as e:
        resolve_source(path)
    assert "not a zip archive" in str(e.value)


def _write_evil(path, marker):
    with open(path, "wb") as f:
        pickle.dump(Evil(marker), f, protocol=2)


@pytest.mark.parametrize("victim", ["test_batch", "batches.meta"])
def test_malicious_cifar_pickle_is_refused_unrun(cifar_batches, tmp_path, victim):
    marker = tmp_path / "pwned"
    _write_evil(cifar_batches.batches / victim, marker)
    with pytest.raises(UnsafePickleError) as e:
        load_dataset(cifar_batches.root, "test", Preprocess(32))
    assert isinstance(e.value, DatasetError)
    assert "refused to unpickle" in str(e.value) and "system" in str(e.value)
    assert not marker.exists()


def test_read_plain_pickle_allows_plain_data(cifar_batches):
    d = read_plain_pickle(cifar_batches.batches / "test_batch")
    assert d["labels"] == [7, 0, 9]
    np.testing.assert_array_equal(d["data"], cifar_batches.test_data)


# --------------------------------------------------------------------------------------------
# Splits


LABELS = np.repeat(np.arange(4), [10, 20, 7, 13])  # class sizes 10, 20, 7, 13


def test_stratified_split_counts_and_cover():
    train, val = stratified_split(LABELS, 0.3, seed=0)
    assert train.dtype == val.dtype == np.int64
    assert (np.diff(train) > 0).all() and (np.diff(val) > 0).all()  # sorted, no repeats
    assert np.intersect1d(train, val).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(len(LABELS)))
    per_class = np.bincount(LABELS[val], minlength=4)
    expected = [round(n * 0.3) for n in (10, 20, 7, 13)]
    assert expected == [3, 6, 2, 4]
    np.testing.assert_array_equal(per_class, expected)


def test_stratified_split_is_seeded():
    a = stratified_split(LABELS, 0.3, seed=7)
    b = stratified_split(LABELS, 0.3, seed=7)
    c = stratified_split(LABELS, 0.3, seed=8)
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[1], c[1])
    np.testing.assert_array_equal(np.bincount(LABELS[c[1]]), np.bincount(LABELS[a[1]]))


def test_stratified_split_edge_cases():
    labels = np.array([0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2])
    _, val = stratified_split(labels, 0.1, seed=0)
    # a 2-image class still gives one to validation; a single image stays in training
    assert np.bincount(labels[val], minlength=3).tolist() == [1, 1, 0]
    train, val = stratified_split(labels, 0.0, seed=0)
    assert val.size == 0 and train.tolist() == list(range(len(labels)))
    with pytest.raises(ValueError):
        stratified_split(labels, 1.0, seed=0)


def test_split_spec_applies_to_its_dataset_only(class_tree):
    full = load_dataset(class_tree.root, "train", PRE16)
    spec = make_split(full, 0.25, seed=3)
    assert spec.n_total == len(full) and spec.fingerprint == full.fingerprint
    assert SplitSpec.from_dict(spec.to_dict()) == spec
    train, val = spec.apply(full)
    assert len(train) + len(val) == len(full)
    assert set(train.ids).isdisjoint(val.ids)
    assert sorted(train.ids + val.ids) == sorted(full.ids)
    assert [full.ids[i] for i in spec.val_indices] == val.ids
    _, expected_val = stratified_split(full.labels, 0.25, 3)
    assert list(spec.val_indices) == expected_val.tolist()

    test = load_dataset(class_tree.root, "test", PRE16)
    with pytest.raises(DatasetError) as e:
        spec.apply(test)
    assert "not the training set" in str(e.value) and "--data" in str(e.value)
    # same fingerprint but another size is refused too
    with pytest.raises(DatasetError):
        spec.apply(full.subset(np.arange(len(full) - 1)))


# --------------------------------------------------------------------------------------------
# Relabelling onto a checkpoint's class order


def _tiny_ds(classes, labels) -> ImageDataset:
    n = len(labels)
    return ImageDataset(np.zeros((n, 2, 2, 3), np.uint8), np.asarray(labels, np.int64), list(classes),
                        [str(i) for i in range(n)], "fp", Preprocess(2))


def test_relabel_maps_onto_another_order():
    ds = _tiny_ds(["blue", "green", "red"], [0, 1, 2, 2, 0, -1])
    target = ["red", "yellow", "blue", "green"]
    out = ds.relabel(target)
    assert out.classes == target
    assert out.labels.tolist() == [2, 3, 0, 0, 2, -1]
    for old, new in zip(ds.labels[:-1], out.labels[:-1]):
        assert ds.classes[old] == target[new]
    assert ds.relabel(["blue", "green", "red"]) is ds


def test_relabel_refuses_unknown_classes():
    ds = _tiny_ds(["blue", "green", "red"], [0, 1, 2])
    with pytest.raises(DatasetError) as e:
        ds.relabel(["red", "green"])
    assert "blue" in str(e.value) and "does not know" in str(e.value)


def png_header(width: int, height: int) -> bytes:
    """The first bytes of an RGB PNG claiming ``width`` x ``height``: enough for PIL to read
    the size (as a huge upload would), too little to decode."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)  # the start of the first row only
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [(10_000, 9_000), (20_000, 20_000)], ids=["over-our-limit", "pil-bomb"])
def test_decode_image_refuses_huge_images_with_a_resize_hint(side):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with pytest.raises(UnreadableImage, match="resize it first") as e:
            decode_image(png_header(*side), Preprocess(16))
    assert "not a readable image" not in str(e.value)
    assert "80,000,000" in str(e.value)


def test_decode_image_names_what_is_not_an_image():
    with pytest.raises(UnreadableImage, match="not a readable image"):
        decode_image(b"%PDF-1.7 not an image", Preprocess(16))
    with pytest.raises(UnreadableImage, match="not a readable image"):
        decode_image(jpeg_bytes((10, 20, 30), (32, 32))[:200], Preprocess(16))  # truncated JPEG

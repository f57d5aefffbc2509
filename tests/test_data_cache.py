"""The decoded-image cache finds its own damage (truncated, zeroed, half-deleted entries), says so
once, rebuilds the entry, and is whole again on the next run."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import cnnviz.data.loading as loading_mod
from cnnviz.data import CACHE_VERSION, Preprocess, load_dataset

PRE16 = Preprocess(16)


def _entry(cache_dir):
    entries = [p for p in cache_dir.iterdir() if p.is_dir()]
    assert len(entries) == 1
    assert entries[0].name.startswith(f"v{CACHE_VERSION}-class_tree-16squash-")
    return entries[0]


def _truncate(entry):
    path = entry / "images.npy"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _zero(entry):  # same size, same header, wrong content
    images = np.load(entry / "images.npy")
    np.save(entry / "images.npy", np.zeros_like(images))


def _zero_labels(entry):
    labels = np.load(entry / "labels.npy")
    np.save(entry / "labels.npy", np.zeros_like(labels))


def _cut_meta(entry):
    text = (entry / "meta.json").read_text()
    (entry / "meta.json").write_text(text[: len(text) // 2])


def _drop_labels(entry):
    (entry / "labels.npy").unlink()


def _fewer_ids(entry):
    meta = json.loads((entry / "meta.json").read_text())
    meta["ids"] = meta["ids"][:-1]
    (entry / "meta.json").write_text(json.dumps(meta))


DAMAGE = {
    _truncate: "ValueError: ",
    _zero: "images.npy does not match its recorded shape and checksum",
    _zero_labels: "labels.npy does not match its recorded shape and checksum",
    _cut_meta: "JSONDecodeError: ",
    _drop_labels: "FileNotFoundError: ",
    _fewer_ids: "its images, labels and ids differ in number",
}


@pytest.mark.parametrize("damage", list(DAMAGE), ids=[f.__name__.strip("_") for f in DAMAGE])
def test_damaged_entry_is_found_rebuilt_and_whole_again(class_tree, cache_dir, monkeypatch, damage):
    first = load_dataset(class_tree.root, "train", PRE16)
    entry = _entry(cache_dir)
    damage(entry)

    with pytest.warns(UserWarning) as record:
        second = load_dataset(class_tree.root, "train", PRE16)
    msgs = [str(w.message) for w in record]
    assert len(msgs) == 1
    prefix = f"the cached images of {class_tree.root / 'train'} were damaged ({DAMAGE[damage]}"
    assert msgs[0].startswith(prefix), msgs[0]
    assert msgs[0].endswith(f"); decoding them again into {entry}")
    np.testing.assert_array_equal(second.images, first.images)
    np.testing.assert_array_equal(second.labels, first.labels)
    assert second.ids == first.ids and second.classes == first.classes

    def refuse(*args):
        raise AssertionError("decoded again: the rebuilt entry was not used")

    monkeypatch.setattr(loading_mod, "decode_image", refuse)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning the third time: the entry is whole
        third = load_dataset(class_tree.root, "train", PRE16)
    np.testing.assert_array_equal(third.images, first.images)
    assert _entry(cache_dir) == entry


def test_entry_replaced_by_a_file_is_rebuilt(class_tree, cache_dir):
    first = load_dataset(class_tree.root, "test", PRE16)
    entry = _entry(cache_dir)
    for p in entry.iterdir():
        p.unlink()
    entry.rmdir()
    entry.write_bytes(b"")
    with pytest.warns(UserWarning, match=r"were damaged \(NotADirectoryError: "):
        second = load_dataset(class_tree.root, "test", PRE16)
    np.testing.assert_array_equal(second.images, first.images)
    assert entry.is_dir() and (entry / "meta.json").is_file()


def test_entry_records_shapes_and_checksums(class_tree, cache_dir):
    ds = load_dataset(class_tree.root, "test", PRE16)
    meta = json.loads((_entry(cache_dir) / "meta.json").read_text())
    assert meta["images"]["shape"] == [len(ds), 16, 16, 3] and meta["images"]["dtype"] == "uint8"
    assert meta["labels"]["shape"] == [len(ds)] and meta["labels"]["dtype"] == "int64"
    assert isinstance(meta["images"]["crc32"], int) and isinstance(meta["labels"]["crc32"], int)
    assert meta["preprocess"] == PRE16.to_dict() and meta["ids"] == ds.ids

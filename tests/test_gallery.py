"""Demo galleries (cnnviz.gallery), where a checkpoint's data is found (cnnviz.locate), the
gallery branch of checkpoint_data, the ``cnnviz gallery`` command, and the galleries shipped in
checkpoints/ checked against the real datasets at ../shared/data (skipped when absent)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnviz import gallery, gallery_make
from cnnviz.checkpoint_meta import CheckpointMeta
from cnnviz.checkpoints import checkpoint_data, load_checkpoint, save_checkpoint
from cnnviz.cli import main
from cnnviz.data import (CIFAR10_CLASSES, Preprocess, SplitSpec, dataset_home, decode_image, is_downloaded,
                         load_dataset, make_split, resolve_source)
from cnnviz.data.download import CIFAR10_FILES
from cnnviz.gallery import (CODECS, GalleryError, find_gallery, gallery_fits, gallery_paths, is_gallery,
                            load_gallery_split, read_gallery_meta)
from cnnviz.gallery_make import make_gallery, stratified_sample, try_codecs
from cnnviz.inputs import Normalization
from cnnviz.locate import DataChoice, locate_data
from cnnviz.models import get_model

from conftest import COLORS, N_TEST, N_TRAIN, SIZES

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
SIZE = 16
PRE = Preprocess(SIZE)
CLASS_ORDER = ["red", "blue", "green"]  # a checkpoint's own order, not the loader's sorted one
SORTED = sorted(COLORS)  # blue, green, red
ATTR = "tiny test images, made by the test itself"


# --------------------------------------------------------------------------------------------
# tiny data: textured JPEGs (so lossy codecs really lose something) of several frame sizes


def write_textured(path: Path, color: tuple[int, int, int], size: tuple[int, int], rng: np.random.Generator) -> None:
    w, h = size
    img = np.clip(np.asarray(color, np.float32) + rng.normal(0, 40, (h, w, 3)), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path, "JPEG", quality=95)


def make_tree(root: Path, with_test: bool = True, seed: int = 0) -> Path:
    """``root/train/<class>/<n>.jpg`` + ``root/test/<class>/<n>.jpg`` (N_TRAIN / N_TEST images per
    class), or without ``with_test`` a single class tree ``root/<class>/<n>.jpg`` of N_TRAIN."""
    rng = np.random.default_rng(seed)
    splits = (("train", N_TRAIN), ("test", N_TEST)) if with_test else (("", N_TRAIN),)
    for split, counts in splits:
        for cls, n in counts.items():
            for i in range(n):
                size = SIZES[int(rng.integers(len(SIZES)))]
                write_textured(root / split / cls / f"{i:03d}.jpg", COLORS[cls], size, rng)
    return root


def make_meta(data: Path, cache: Path, dataset: str = "folder", classes=None, val_fraction: float | None = 0.25,
              pre: Preprocess = PRE) -> CheckpointMeta:
    """A checkpoint description for the tiny data, its split made as training makes it."""
    split = None
    if val_fraction is not None:
        full = load_dataset(data, "train", pre, cache_dir=cache)
        split = make_split(full.relabel(classes or CLASS_ORDER), val_fraction, seed=0)
    return CheckpointMeta(arch="cifar_fast", classes=list(classes or CLASS_ORDER), preprocess=pre,
                          normalization=Normalization((0.5, 0.5, 0.5), (0.25, 0.25, 0.25)),
                          arch_kwargs={"widths": (8, 8, 8)}, dataset=dataset, split=split)


def save_tiny_checkpoint(path: Path, meta: CheckpointMeta) -> Path:
    torch.manual_seed(0)
    model = get_model("cifar_fast", len(meta.classes), meta.preprocess.size, widths=(8, 8, 8))
    return save_checkpoint(path, model, meta)


def counts_by_name(labels, classes) -> dict[str, int]:
    out: dict[str, int] = {}
    for lbl in labels:
        out[classes[lbl]] = out.get(classes[lbl], 0) + 1
    return out


@dataclasses.dataclass
class Made:
    data: Path
    meta: CheckpointMeta
    out: Path
    gm: gallery.GalleryMeta
    cache: Path

    @property
    def zip(self) -> Path:
        return gallery_paths(self.out)[0]


@pytest.fixture(scope="module")
def tt_data(tmp_path_factory) -> tuple[Path, Path]:
    """A train/test tree and its decode cache, built once."""
    base = tmp_path_factory.mktemp("gallery-tt")
    return make_tree(base / "data"), base / "cache"


@pytest.fixture(scope="module")
def flat_data(tmp_path_factory) -> tuple[Path, Path]:
    """A single class tree (no test split) and its decode cache, built once."""
    base = tmp_path_factory.mktemp("gallery-flat")
    return make_tree(base / "data", with_test=False, seed=1), base / "cache"


@pytest.fixture(scope="module")
def tt_png(tt_data, tmp_path_factory) -> Made:
    data, cache = tt_data
    meta = make_meta(data, cache)
    out = tmp_path_factory.mktemp("gallery-out") / "tiny"
    gm = make_gallery(meta, data, out, made_for="tiny", n_train=6, n_heldout=3, codec="png",
                      attribution=ATTR, cache_dir=cache)
    return Made(data, meta, out, gm, cache)


@pytest.fixture(scope="module")
def tt_jpeg(tt_data, tmp_path_factory) -> Made:
    data, cache = tt_data
    meta = make_meta(data, cache)
    out = tmp_path_factory.mktemp("gallery-jpeg") / "tiny"
    gm = make_gallery(meta, data, out, made_for="tiny", n_train=10, n_heldout=5, codec="jpeg90",
                      attribution=ATTR, cache_dir=cache)
    return Made(data, meta, out, gm, cache)


@pytest.fixture(scope="module")
def flat_val(flat_data, tmp_path_factory) -> Made:
    """A gallery whose held-out part is the validation split, for a checkpoint whose classes are
    in the loader's (sorted) order, as training makes them."""
    data, cache = flat_data
    meta = make_meta(data, cache, classes=SORTED)
    out = tmp_path_factory.mktemp("gallery-val") / "tiny"
    gm = make_gallery(meta, data, out, made_for="tiny", n_train=6, n_heldout=4, codec="webp-lossless",
                      attribution=ATTR, cache_dir=cache)
    return Made(data, meta, out, gm, cache)


# --------------------------------------------------------------------------------------------
# stratified_sample


def test_stratified_sample_proportions_8_and_2():
    labels = np.array([0] * 8 + [1] * 2)
    got = stratified_sample(labels, 5, seed=0)
    assert got.dtype == np.int64
    assert len(got) == 5 and len(set(got.tolist())) == 5
    assert got.tolist() == sorted(got.tolist())
    assert np.bincount(labels[got]).tolist() == [4, 1]


def test_stratified_sample_largest_remainder_and_minimum_one():
    # exact shares 1.905, 1.905, 0.19: floors 1, 1, 0 -> the singleton class still gets 1, and the
    # one image left goes to the first class with the largest remainder
    labels = np.array([0] * 10 + [1] * 10 + [2])
    got = stratified_sample(labels, 4, seed=3)
    assert np.bincount(labels[got], minlength=3).tolist() == [2, 1, 1]
    assert 20 in got.tolist()  # the only image of class 2
    # 9 of class 0, 1 of class 1, n=5: 4.5 and 0.5 -> 4 and 1
    labels = np.array([1] + [0] * 9)
    got = stratified_sample(labels, 5)
    assert np.bincount(labels[got]).tolist() == [4, 1] and 0 in got.tolist()
    # mixed order of labels: 6 of class 2, 3 of class 5, n=3 -> 2 and 1
    labels = np.array([2, 5, 2, 2, 5, 2, 2, 5, 2])
    got = stratified_sample(labels, 3, seed=1)
    assert sorted(labels[got].tolist()) == [2, 2, 5]


def test_stratified_sample_all_when_n_covers_everything():
    labels = np.array([3, 1, 1, 0, 3])
    for n in (5, 6, 100):
        assert stratified_sample(labels, n).tolist() == [0, 1, 2, 3, 4]


def test_stratified_sample_seeded():
    labels = np.repeat(np.arange(4), 25)
    a, b = stratified_sample(labels, 20, seed=7), stratified_sample(labels, 20, seed=7)
    c = stratified_sample(labels, 20, seed=8)
    assert a.tolist() == b.tolist()
    assert a.tolist() != c.tolist()
    for got in (a, c):
        assert np.bincount(labels[got]).tolist() == [5, 5, 5, 5]
        assert got.tolist() == sorted(set(got.tolist()))


# --------------------------------------------------------------------------------------------
# try_codecs


def _test_images() -> np.ndarray:
    ramp = np.arange(8, dtype=np.uint8) * 32
    gradient = np.stack(np.broadcast_arrays(ramp[None, :], ramp[:, None], (ramp[None, :] + ramp[:, None]) // 2), -1)
    noise = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    return np.stack([gradient.astype(np.uint8), noise])


def _pil_bytes(img: np.ndarray, codec: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, **CODECS[codec][1])
    return buf.getvalue()


def test_try_codecs_lossless_and_lossy():
    images = _test_images()
    trials = {t.codec: t for t in try_codecs(images)}
    assert list(trials) == list(CODECS)
    for codec in ("png", "webp-lossless"):
        t = trials[codec]
        assert (t.images, t.max_abs_error, t.mean_abs_error, t.psnr_db) == (2, 0, 0.0, None), t
    j = trials["jpeg90"]
    assert j.images == 2 and j.max_abs_error > 0 and j.mean_abs_error > 0
    assert isinstance(j.psnr_db, float) and np.isfinite(j.psnr_db) and 10 < j.psnr_db < 60
    # measured independently: the same PIL settings, decoded again
    diffs = [np.asarray(Image.open(io.BytesIO(_pil_bytes(im, "jpeg90"))).convert("RGB")).astype(float) - im
             for im in images]
    assert j.max_abs_error == int(max(np.abs(d).max() for d in diffs))
    assert j.mean_abs_error == pytest.approx(np.mean([np.abs(d).mean() for d in diffs]), abs=1e-4)
    mse = np.mean([(d ** 2).mean() for d in diffs])
    assert j.psnr_db == pytest.approx(10 * np.log10(255 ** 2 / mse), abs=0.006)
    for codec, t in trials.items():
        assert t.bytes == sum(len(_pil_bytes(im, codec)) for im in images), codec


def test_try_codecs_subset_and_bytes_for():
    images = _test_images()
    (t,) = try_codecs(images, ["png"])
    assert t.codec == "png"
    assert t.bytes_for(2) == t.bytes
    assert t.bytes_for(0) == 0
    assert t.bytes_for(4) == 2 * t.bytes
    assert t.bytes_for(2000) == 1000 * t.bytes
    assert t.bytes_for(1) == int(round(t.bytes / 2))


# --------------------------------------------------------------------------------------------
# make_gallery / load_gallery_split round trip (a dataset with a test split)


def test_gallery_paths_and_is_gallery(tmp_path):
    z, j = tmp_path / "a.b.gallery.zip", tmp_path / "a.b.gallery.json"
    for given in (tmp_path / "a.b", z, j):
        assert gallery_paths(given) == (z, j)
    assert not is_gallery(z)
    z.write_bytes(b"")
    assert not is_gallery(z)  # its sidecar is missing
    j.write_text("{}")
    assert is_gallery(z) and is_gallery(j)
    assert not is_gallery(tmp_path / "a.b")  # a prefix is not a gallery path
    (tmp_path / "x.zip").write_bytes(b"")
    assert not is_gallery(tmp_path / "x.zip")


def test_make_gallery_round_trip_lossless(tt_png):
    m, gm = tt_png, tt_png.gm
    zip_path, json_path = gallery_paths(m.out)
    assert zip_path.is_file() and json_path.is_file()
    assert zip_path.name == "tiny.gallery.zip" and json_path.name == "tiny.gallery.json"
    assert read_gallery_meta(json_path) == gm == read_gallery_meta(zip_path)
    assert gm.format == "cnnviz-gallery/1"
    assert (gm.dataset, gm.classes, gm.made_for, gm.codec, gm.attribution) == (
        "folder", CLASS_ORDER, "tiny", "png", ATTR)
    assert gm.preprocess == {"size": SIZE, "mode": "squash", "fill": [0, 0, 0]}
    assert (gm.max_abs_error, gm.mean_abs_error) == (0, 0.0)
    assert gm.zip_sha256 == hashlib.sha256(zip_path.read_bytes()).hexdigest()
    assert [t.codec for t in gm.trials] == list(CODECS) and all(t.images == 9 for t in gm.trials)
    split = m.meta.split.to_dict()
    del split["val_indices"]
    assert gm.split == split

    # the training part: 6 of the 18 training images left beside the 6 validation ones
    full = load_dataset(m.data, "train", PRE, cache_dir=m.cache).relabel(CLASS_ORDER)
    val = set(m.meta.split.val_indices)
    assert len(val) == 6  # round(8, 6, 10 x 0.25) = 2 each
    assert (gm.train.source_split, gm.train.source_fingerprint, gm.train.source_size) == (
        "train", full.fingerprint, 18)
    assert not set(gm.train.indices) & val
    assert counts_by_name(gm.train.labels, CLASS_ORDER) == {"blue": 2, "green": 1, "red": 3}
    assert list(gm.train.ids) == [full.ids[i] for i in gm.train.indices]
    assert list(gm.train.labels) == [int(full.labels[i]) for i in gm.train.indices]

    train = load_gallery_split(zip_path, "train")
    assert len(train) == 6 and train.classes == CLASS_ORDER and train.preprocess == PRE
    assert train.ids == list(gm.train.ids) and train.labels.tolist() == list(gm.train.labels)
    assert train.images.shape == (6, SIZE, SIZE, 3) and train.images.dtype == np.uint8
    np.testing.assert_array_equal(train.images, full.images[list(gm.train.indices)])
    # and against the source files decoded independently
    for k, ident in enumerate(gm.train.ids):
        src = decode_image((m.data / "train" / ident).read_bytes(), PRE)
        np.testing.assert_array_equal(train.images[k], src)
        assert ident.split("/")[0] == CLASS_ORDER[gm.train.labels[k]]

    # the held-out part comes from test/: 3 of its 9 images, one per class
    test = load_dataset(m.data, "test", PRE, cache_dir=m.cache).relabel(CLASS_ORDER)
    assert (gm.heldout.source_split, gm.heldout.source_fingerprint, gm.heldout.source_size) == (
        "test", test.fingerprint, 9)
    assert counts_by_name(gm.heldout.labels, CLASS_ORDER) == {"blue": 1, "green": 1, "red": 1}
    assert list(gm.heldout.ids) == [test.ids[i] for i in gm.heldout.indices]
    held = load_gallery_split(json_path, "test")
    assert len(held) == 3 and held.ids == list(gm.heldout.ids)
    assert held.labels.tolist() == [int(test.labels[i]) for i in gm.heldout.indices]
    np.testing.assert_array_equal(held.images, test.images[list(gm.heldout.indices)])
    assert held.fingerprint == f"gallery-{gm.zip_sha256[:12]}-heldout"
    assert train.fingerprint == f"gallery-{gm.zip_sha256[:12]}-train"

    # the zip holds exactly these files, named by class and position
    with zipfile.ZipFile(zip_path) as zf:
        names = sorted(zf.namelist())
    expected = [f"train/{CLASS_ORDER[lbl]}/{k:05d}.png" for k, lbl in enumerate(gm.train.labels)]
    expected += [f"heldout/{CLASS_ORDER[lbl]}/{k:05d}.png" for k, lbl in enumerate(gm.heldout.labels)]
    assert names == sorted(expected)

    with pytest.raises(GalleryError) as e:
        load_gallery_split(zip_path, "val")
    assert str(e.value) == "the gallery tiny.gallery.zip holds test images, not val images: use the test split"


def test_make_gallery_lossy_within_measured_error(tt_jpeg):
    m, gm = tt_jpeg, tt_jpeg.gm
    assert gm.codec == "jpeg90"
    assert gm.max_abs_error > 0 and gm.mean_abs_error > 0
    full = load_dataset(m.data, "train", PRE, cache_dir=m.cache).relabel(CLASS_ORDER)
    test = load_dataset(m.data, "test", PRE, cache_dir=m.cache).relabel(CLASS_ORDER)
    train, held = load_gallery_split(m.zip, "train"), load_gallery_split(m.zip, "test")
    assert (len(train), len(held)) == (10, 5)
    assert counts_by_name(gm.train.labels, CLASS_ORDER) == {"blue": 3, "green": 2, "red": 5}  # 3.33, 2.22, 4.44
    assert counts_by_name(gm.heldout.labels, CLASS_ORDER) == {"blue": 2, "green": 1, "red": 2}  # of 3, 2, 4
    errs = []
    for part, src in ((train, full.images[list(gm.train.indices)]), (held, test.images[list(gm.heldout.indices)])):
        errs += [np.abs(a.astype(np.int16) - b) for a, b in zip(part.images, src)]
    assert max(int(e.max()) for e in errs) == gm.max_abs_error  # the bound is measured on these very images
    assert gm.mean_abs_error == pytest.approx(np.mean([e.mean() for e in errs]), abs=1e-4)
    assert train.ids == [full.ids[i] for i in gm.train.indices]
    assert held.ids == [test.ids[i] for i in gm.heldout.indices]
    with zipfile.ZipFile(m.zip) as zf:
        assert all(n.endswith(".jpg") for n in zf.namelist())


def test_make_gallery_auto_picks_a_lossless_codec_when_it_fits(tt_data, tmp_path):
    data, cache = tt_data
    meta = make_meta(data, cache)
    gm = make_gallery(meta, data, tmp_path / "g", made_for="tiny", n_train=4, n_heldout=3,
                      attribution=ATTR, cache_dir=cache)
    lossless = [t for t in gm.trials if t.psnr_db is None]
    assert {t.codec for t in lossless} == {"png", "webp-lossless"}
    assert gm.codec == min(lossless, key=lambda t: t.bytes).codec
    assert gm.max_abs_error == 0


def test_make_gallery_refuses_unknown_codec_and_missing_attribution(tt_data, tmp_path):
    data, cache = tt_data
    meta = make_meta(data, cache)
    with pytest.raises(GalleryError) as e:
        make_gallery(meta, data, tmp_path / "g", made_for="x", codec="gif", attribution=ATTR, cache_dir=cache)
    assert str(e.value) == ("unknown codec 'gif': use auto or one of png, webp-lossless, jpeg95, webp95, "
                            "jpeg90, webp90")
    with pytest.raises(GalleryError) as e:
        make_gallery(meta, data, tmp_path / "g", made_for="x", n_train=3, n_heldout=3, cache_dir=cache)
    assert str(e.value) == ("no attribution line is known for a 'folder' dataset: give its source and "
                            "licence with --attribution")
    assert list(tmp_path.iterdir()) == []


def test_make_gallery_refuses_another_training_set(tt_data, flat_data, tmp_path):
    data, cache = tt_data
    meta = make_meta(data, cache)
    other, other_cache = flat_data
    fp = load_dataset(other, "train", PRE, cache_dir=other_cache).fingerprint
    with pytest.raises(GalleryError) as e:
        make_gallery(meta, other, tmp_path / "g", made_for="x", n_train=3, n_heldout=3, attribution=ATTR,
                     cache_dir=other_cache)
    assert str(e.value) == (f"{other} is not the training set this checkpoint was trained on (fingerprint "
                            f"{fp}, expected {meta.split.fingerprint}): point --data at it")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------
# no test split: the held-out part is the checkpoint's validation split


def test_gallery_without_test_split_takes_heldout_from_val(flat_val):
    m, gm = flat_val, flat_val.gm
    full = load_dataset(m.data, "train", PRE, cache_dir=m.cache).relabel(SORTED)
    val = m.meta.split.val_indices
    assert gm.heldout.source_split == "val"
    assert gm.heldout.source_fingerprint == full.fingerprint == m.meta.split.fingerprint
    assert gm.heldout.source_size == len(val) == 6
    assert set(gm.heldout.indices) <= set(val)
    assert not set(gm.heldout.indices) & set(gm.train.indices)
    assert not set(gm.train.indices) & set(val)
    assert gm.train.source_size == 18
    assert len(gm.train) == 6 and len(gm.heldout) == 4
    assert list(gm.heldout.ids) == [full.ids[i] for i in gm.heldout.indices]
    assert gm.describe() == "demo gallery: 6 of 18 training images, 4 of 6 held-out validation images"

    held = load_gallery_split(m.zip, "val")
    np.testing.assert_array_equal(held.images, full.images[list(gm.heldout.indices)])
    assert held.labels.tolist() == [int(full.labels[i]) for i in gm.heldout.indices]
    with pytest.raises(GalleryError) as e:
        load_gallery_split(m.zip, "test")
    assert str(e.value) == "the gallery tiny.gallery.zip holds val images, not test images: use the val split"


def test_checkpoint_data_reads_a_gallery(flat_val):
    m, gm = flat_val, flat_val.gm
    val = checkpoint_data(m.meta, m.zip, "val")
    assert val.ids == list(gm.heldout.ids) and val.classes == SORTED
    assert val.labels.tolist() == list(gm.heldout.labels)
    train = checkpoint_data(m.meta, gallery_paths(m.out)[1], "train")
    assert train.ids == list(gm.train.ids)
    with pytest.raises(GalleryError, match="holds val images, not test images: use the val split"):
        checkpoint_data(m.meta, m.zip, "test")
    # another class order: the same images relabelled to it
    other = dataclasses.replace(m.meta, classes=CLASS_ORDER)
    again = checkpoint_data(other, m.zip, "val")
    assert again.classes == CLASS_ORDER
    assert again.labels.tolist() != val.labels.tolist()
    assert [again.classes[i] for i in again.labels] == [SORTED[i] for i in gm.heldout.labels]
    assert [again.classes[i] for i in again.labels] == [ident.split("/")[0] for ident in gm.heldout.ids]
    np.testing.assert_array_equal(again.images, val.images)


def test_val_heldout_follows_the_checkpoints_class_order(flat_data, tmp_path):
    """A checkpoint whose classes are not in sorted order (e.g. imported weights): the held-out
    images taken from its validation split keep their real classes."""
    data, cache = flat_data
    meta = make_meta(data, cache, classes=CLASS_ORDER)
    gm = make_gallery(meta, data, tmp_path / "g", made_for="x", n_train=3, n_heldout=4, codec="png",
                      attribution=ATTR, cache_dir=cache)
    assert gm.heldout.source_split == "val"
    full = load_dataset(data, "train", PRE, cache_dir=cache).relabel(CLASS_ORDER)
    assert [CLASS_ORDER[lbl] for lbl in gm.train.labels] == [i.split("/")[0] for i in gm.train.ids]  # right
    assert list(gm.heldout.labels) == [int(full.labels[i]) for i in gm.heldout.indices]
    assert [CLASS_ORDER[lbl] for lbl in gm.heldout.labels] == [i.split("/")[0] for i in gm.heldout.ids]
    held = load_gallery_split(gallery_paths(tmp_path / "g")[0], "val")
    np.testing.assert_array_equal(held.images, full.images[list(gm.heldout.indices)])
    assert held.labels.tolist() == [int(full.labels[i]) for i in gm.heldout.indices]


def test_gallery_without_test_split_or_val_split_is_refused(flat_data, tmp_path):
    data, cache = flat_data
    meta = make_meta(data, cache, val_fraction=None)
    with pytest.raises(GalleryError) as e:
        make_gallery(meta, data, tmp_path / "g", made_for="x", n_train=3, n_heldout=3, attribution=ATTR,
                     cache_dir=cache)
    assert str(e.value) == (f"{data} has no test split and the checkpoint records no validation split, so "
                            "the gallery has no images the model never trained on: point --data at a dataset "
                            "with train/ and test/")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------
# size limit: refused before (estimate) or after writing (measured), nothing left either way


def test_size_limit_refused_with_nothing_written(tt_data, tmp_path):
    data, cache = tt_data
    meta = make_meta(data, cache)
    out = tmp_path / "out" / "tiny"
    with pytest.raises(GalleryError) as e:
        make_gallery(meta, data, out, made_for="tiny", n_train=6, n_heldout=3, max_bytes=500,
                     attribution=ATTR, cache_dir=cache)
    assert "take fewer images (--train, --heldout)" in str(e.value)
    assert str(e.value).startswith("even ")
    assert not out.parent.exists()
    with pytest.raises(GalleryError) as e:
        make_gallery(meta, data, out, made_for="tiny", n_train=6, n_heldout=3, codec="png", max_bytes=500,
                     attribution=ATTR, cache_dir=cache)
    assert str(e.value).startswith("png needs about ")
    assert str(e.value).endswith("choose another codec or take fewer images")
    assert not out.parent.exists()


def test_size_limit_checked_on_the_written_zip_too(tt_data, tmp_path, monkeypatch):
    data, cache = tt_data
    meta = make_meta(data, cache)
    monkeypatch.setattr(gallery_make, "_fits", lambda *a: True)  # an estimate that was too low
    out = tmp_path / "out" / "tiny"
    with pytest.raises(GalleryError) as e:
        make_gallery(meta, data, out, made_for="tiny", n_train=6, n_heldout=3, codec="png", max_bytes=1000,
                     attribution=ATTR, cache_dir=cache)
    assert str(e.value).startswith("the gallery came to ")
    assert str(e.value).endswith("take fewer images or choose a smaller codec")
    assert list(out.parent.iterdir()) == []  # no zip, no sidecar, no temporaries


# --------------------------------------------------------------------------------------------
# gallery_fits / find_gallery


def test_gallery_fits(tt_png, flat_val):
    gm, meta = tt_png.gm, tt_png.meta
    assert gallery_fits(gm, meta)
    assert gallery_fits(gm, dataclasses.replace(meta, split=None))  # a test split fits any checkpoint
    assert not gallery_fits(gm, dataclasses.replace(meta, dataset="cifar10"))
    assert not gallery_fits(gm, dataclasses.replace(meta, classes=["red", "green", "blue"]))  # other order
    assert not gallery_fits(gm, dataclasses.replace(meta, classes=CLASS_ORDER + ["pink"]))
    assert not gallery_fits(gm, dataclasses.replace(meta, preprocess=Preprocess(SIZE + 1)))
    assert not gallery_fits(gm, dataclasses.replace(meta, preprocess=Preprocess(SIZE, "center_crop")))
    # a "test" part that is in fact this checkpoint's training set
    same = dataclasses.replace(gm, heldout=dataclasses.replace(gm.heldout,
                                                                source_fingerprint=meta.split.fingerprint))
    assert not gallery_fits(same, meta)

    vg, vmeta = flat_val.gm, flat_val.meta
    assert gallery_fits(vg, vmeta)
    assert not gallery_fits(vg, dataclasses.replace(vmeta, split=None))
    other_val = dataclasses.replace(vmeta.split, val_indices=tuple(i for i in range(24)
                                                                  if i not in vmeta.split.val_indices)[:6])
    assert not gallery_fits(vg, dataclasses.replace(vmeta, split=other_val))
    other_fp = dataclasses.replace(vmeta.split, fingerprint="0123456789abcdef")
    assert not gallery_fits(vg, dataclasses.replace(vmeta, split=other_fp))
    # a larger validation split that holds the gallery's held-out images still fits
    wider = dataclasses.replace(vmeta.split, val_indices=tuple(sorted(set(vmeta.split.val_indices) | {0, 1})))
    assert gallery_fits(vg, dataclasses.replace(vmeta, split=wider))


def _copy_gallery(src_out: Path, folder: Path, name: str, **changes) -> Path:
    """Copy a gallery under another name, changing fields of its sidecar."""
    z, j = gallery_paths(src_out)
    dz, dj = gallery_paths(folder / name)
    folder.mkdir(parents=True, exist_ok=True)
    dz.write_bytes(z.read_bytes())
    d = json.loads(j.read_text())
    d.update(changes)
    dj.write_text(json.dumps(d))
    return dz


def test_find_gallery_prefers_its_own_and_skips_what_does_not_fit(tt_png, tmp_path):
    meta = tt_png.meta
    folder = tmp_path / "ck"
    ckpt = folder / "tiny.safetensors"
    assert find_gallery(ckpt, meta) is None  # the folder does not even exist
    a = _copy_gallery(tt_png.out, folder, "aaa")
    assert find_gallery(ckpt, meta) == a
    own = _copy_gallery(tt_png.out, folder, "tiny")
    assert find_gallery(ckpt, meta) == own
    assert find_gallery(folder / "tiny.json", meta) == own
    assert find_gallery(folder / "other.safetensors", meta) == a  # not its own: the first by name
    # its own gallery for another dataset kind, classes or preprocessing: the other one fits
    for change in ({"dataset": "cifar10"}, {"classes": ["red", "green", "blue"]},
                   {"preprocess": {"size": 32, "mode": "squash", "fill": [0, 0, 0]}}):
        own = _copy_gallery(tt_png.out, folder, "tiny", **change)
        assert find_gallery(ckpt, meta) == a, change
    a.unlink()  # half a gallery is no gallery
    assert find_gallery(ckpt, meta) is None
    _copy_gallery(tt_png.out, folder, "bbb", format="something-else/9")  # unreadable: skipped
    (folder / "ccc.gallery.zip").write_bytes(b"")
    (folder / "ccc.gallery.json").write_text("not json")
    assert find_gallery(ckpt, meta) is None
    c = _copy_gallery(tt_png.out, folder, "ddd")
    assert find_gallery(ckpt, meta) == c


def test_find_gallery_val_split_needs_the_same_val_indices(flat_val, tmp_path):
    meta = flat_val.meta
    folder = tmp_path / "ck"
    z = _copy_gallery(flat_val.out, folder, "tiny")
    assert find_gallery(folder / "tiny.json", meta) == z
    others = tuple(i for i in range(meta.split.n_total) if i not in meta.split.val_indices)[:6]
    other = dataclasses.replace(meta, split=dataclasses.replace(meta.split, val_indices=others))
    assert find_gallery(folder / "tiny.json", other) is None


# --------------------------------------------------------------------------------------------
# locate_data: given > $CNNVIZ_DATA/<dataset> > user data folder > gallery


@pytest.fixture
def cifar_kind(tt_data, tmp_path) -> tuple[CheckpointMeta, Path, Path]:
    """A "cifar10" checkpoint description (on the tiny data) with its gallery beside
    ``<tmp>/ck/tiny.json``; returns ``(meta, checkpoint path, gallery zip)``."""
    data, cache = tt_data
    meta = make_meta(data, cache, dataset="cifar10")
    gm = make_gallery(meta, data, tmp_path / "ck" / "tiny", made_for="tiny", n_train=5, n_heldout=2,
                      codec="png", cache_dir=cache)
    assert gm.attribution == gallery_make.ATTRIBUTIONS["cifar10"]
    return meta, tmp_path / "ck" / "tiny.json", gallery_paths(tmp_path / "ck" / "tiny")[0]


def _fake_cifar_home(complete: bool = True) -> Path:
    batches = dataset_home("cifar10") / "cifar-10-batches-py"
    batches.mkdir(parents=True)
    for f in CIFAR10_FILES[: None if complete else -1]:
        (batches / f).write_bytes(b"")
    return dataset_home("cifar10")


def test_locate_data_order(cifar_kind, tmp_path, monkeypatch, cache_dir):
    meta, ckpt, zip_path = cifar_kind
    monkeypatch.delenv("CNNVIZ_DATA", raising=False)
    assert dataset_home("cifar10") == cache_dir / "datasets" / "cifar10"

    # 4. only the gallery
    choice = locate_data(meta, ckpt)
    assert choice == DataChoice(zip_path, "gallery", read_gallery_meta(zip_path))
    assert choice.describe() == "demo gallery: 5 of 18 training images, 2 of 9 test images"
    assert locate_data(meta, None) is None
    assert locate_data(meta, tmp_path / "elsewhere" / "x.json") is None

    # 3. an incomplete user copy is passed over, a complete one wins over the gallery
    _fake_cifar_home(complete=False)
    assert not is_downloaded("cifar10")
    assert locate_data(meta, ckpt).origin == "gallery"
    (dataset_home("cifar10") / "cifar-10-batches-py" / CIFAR10_FILES[-1]).write_bytes(b"")
    assert is_downloaded("cifar10")
    choice = locate_data(meta, ckpt)
    assert choice == DataChoice(cache_dir / "datasets" / "cifar10", "user")
    assert choice.describe() == f"full dataset: {cache_dir / 'datasets' / 'cifar10'} (the user data folder)"

    # 2. $CNNVIZ_DATA/<dataset> when that folder exists
    env = tmp_path / "env"
    env.mkdir()
    monkeypatch.setenv("CNNVIZ_DATA", str(env))
    assert locate_data(meta, ckpt).origin == "user"  # no env/cifar10
    (env / "cifar10").mkdir()
    choice = locate_data(meta, ckpt)
    assert choice == DataChoice(env / "cifar10", "env")
    assert choice.describe() == f"full dataset: {env / 'cifar10'} ($CNNVIZ_DATA)"

    # 1. the path given wins over everything
    choice = locate_data(meta, ckpt, tmp_path / "mine")
    assert choice == DataChoice(tmp_path / "mine", "given")
    assert choice.describe() == f"full dataset: {tmp_path / 'mine'}"
    assert locate_data(meta, ckpt, f"  {tmp_path / 'mine'}  ").path == tmp_path / "mine"
    assert locate_data(meta, ckpt, "   ").origin == "env"  # blank: not given
    assert locate_data(meta, ckpt, "").origin == "env"
    given = locate_data(meta, ckpt, str(gallery_paths(zip_path)[1]))  # a gallery given by hand
    assert given.origin == "given" and given.gallery == read_gallery_meta(zip_path)
    assert given.describe() == "demo gallery: 5 of 18 training images, 2 of 9 test images"


def test_locate_data_user_folder_only_for_known_datasets(tt_png, tmp_path, monkeypatch, cache_dir):
    """A "folder" checkpoint never looks in the user data folder, even when one is there."""
    monkeypatch.delenv("CNNVIZ_DATA", raising=False)
    _fake_cifar_home()
    (cache_dir / "datasets" / "folder" / "cifar-10-batches-py").mkdir(parents=True)
    meta = tt_png.meta
    z = _copy_gallery(tt_png.out, tmp_path / "ck", "tiny")
    choice = locate_data(meta, tmp_path / "ck" / "tiny.safetensors")
    assert choice is not None and (choice.path, choice.origin) == (z, "gallery")
    assert choice.describe() == "demo gallery: 6 of 18 training images, 3 of 9 test images"
    # the user folder for "cifar10" is no reason to take it for a folder checkpoint
    assert locate_data(meta, tmp_path / "nothing" / "tiny.json") is None


def test_locate_data_skips_a_gallery_that_does_not_fit(cifar_kind, monkeypatch):
    meta, ckpt, _ = cifar_kind
    monkeypatch.delenv("CNNVIZ_DATA", raising=False)
    assert locate_data(dataclasses.replace(meta, preprocess=Preprocess(32)), ckpt) is None
    assert locate_data(dataclasses.replace(meta, dataset="simpsons"), ckpt) is None


# --------------------------------------------------------------------------------------------
# the `cnnviz gallery` command


@pytest.fixture
def cli_checkpoint(tt_data, tmp_path) -> tuple[Path, Path]:
    data, cache = tt_data
    meta = make_meta(data, cache, dataset="cifar10")
    weights = save_tiny_checkpoint(tmp_path / "ck" / "tiny", meta)
    return weights, data


def test_cli_gallery(cli_checkpoint, tmp_path, capsys):
    weights, data = cli_checkpoint
    out = tmp_path / "ck" / "demo"
    rc = main(["gallery", str(weights), "--data", str(data), "--out", str(out), "--train", "6", "--heldout", "3"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    lines = captured.out.splitlines()
    assert len(lines) == len(CODECS) + 2
    gm = read_gallery_meta(out.with_name("demo.gallery.json"))
    for line, codec in zip(lines, CODECS):
        assert line.split()[0] == codec
        assert "for 9 (measured on 9)" in line
        assert ("lossless" in line) == (codec in ("png", "webp-lossless"))
    zip_path = out.with_name("demo.gallery.zip")
    assert lines[-2] == (f"chose {gm.codec}: {zip_path.stat().st_size / 1e6:.2f} MB, max pixel error 0, "
                         "mean 0.000 (0-255, all 9 images)")
    assert gm.codec in ("png", "webp-lossless")
    assert lines[-1] == ("demo gallery: 6 of 18 training images, 3 of 9 test images; "
                         f"saved {zip_path} and {out.with_name('demo.gallery.json')}")
    assert (gm.made_for, len(gm.train), len(gm.heldout)) == ("tiny", 6, 3)
    assert gm.attribution == gallery_make.ATTRIBUTIONS["cifar10"]
    assert find_gallery(weights, load_checkpoint(weights).meta) == zip_path


def test_cli_gallery_codec_choice(cli_checkpoint, tmp_path, capsys):
    weights, data = cli_checkpoint
    out = tmp_path / "g" / "demo"
    rc = main(["gallery", str(weights), "--data", str(data), "--out", str(out), "--train", "4", "--heldout", "3",
               "--codec", "jpeg95", "--attribution", "mine"])
    assert rc == 0, capsys.readouterr().err
    gm = read_gallery_meta(out.with_name("demo.gallery.zip"))
    assert (gm.codec, gm.attribution) == ("jpeg95", "mine")
    assert gm.max_abs_error > 0
    assert capsys.readouterr().out.splitlines()[-2].startswith("chose jpeg95: ")


def _error_lines(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if ln.startswith("cnnviz ")]


def test_cli_gallery_size_limit(cli_checkpoint, tmp_path, capsys):
    weights, data = cli_checkpoint
    out = tmp_path / "g" / "demo"
    rc = main(["gallery", str(weights), "--data", str(data), "--out", str(out), "--train", "6", "--heldout", "3",
               "--max-mb", "0.0001"])
    captured = capsys.readouterr()
    assert rc == 2
    assert captured.out == ""
    errors = _error_lines(captured.err)
    assert len(errors) == 1, captured.err
    assert errors[0].startswith("cnnviz gallery: error: even ")
    assert errors[0].endswith(" MB limit: take fewer images (--train, --heldout)")
    assert captured.err.rstrip("\n").splitlines()[-1] == errors[0]
    assert not out.parent.exists()


def test_cli_gallery_needs_attribution_for_other_datasets(tt_data, tmp_path, capsys):
    data, cache = tt_data
    weights = save_tiny_checkpoint(tmp_path / "ck" / "tiny", make_meta(data, cache))
    rc = main(["gallery", str(weights), "--data", str(data), "--out", str(tmp_path / "ck" / "demo")])
    captured = capsys.readouterr()
    assert rc == 2
    assert _error_lines(captured.err) == [
        "cnnviz gallery: error: no attribution line is known for a 'folder' dataset: give its source and "
        "licence with --attribution"]
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["tiny.json", "tiny.safetensors"]


def test_cli_gallery_parser():
    from cnnviz.cli import build_parser

    args = build_parser().parse_args(["gallery", "ck", "--data", "d", "--out", "o"])
    assert (args.checkpoint, args.data, args.out) == ("ck", "d", "o")
    assert (args.train, args.heldout, args.codec, args.max_mb, args.attribution) == (None, None, None, None, None)
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["gallery", "ck", "--data", "d", "--out", "o", "--codec", "gif"])
    assert e.value.code == 2
    with pytest.raises(SystemExit):
        build_parser().parse_args(["gallery", "ck", "--out", "o"])  # --data is required


# --------------------------------------------------------------------------------------------
# the galleries shipped in checkpoints/, against the real datasets


def _shipped_checkpoints() -> list[Path]:
    return sorted(p for p in (ROOT / "checkpoints").glob("*.json")
                  if not p.name.endswith(".gallery.json") and p.with_suffix(".safetensors").is_file())


def _shared(rel: str) -> Path:
    path = SHARED / rel
    if not path.exists():
        pytest.skip(f"shared data {path} is absent (expected at ../shared/data beside the checkout)")
    return path


def _ckpt_meta(path: Path) -> CheckpointMeta:
    return CheckpointMeta.from_dict(json.loads(path.read_text()))


def test_shipped_checkpoints_are_there():
    names = {p.stem for p in _shipped_checkpoints()}
    assert {"cifar10_cnn", "cifar10_fast", "simpsons_cnn", "simpsons_lecture"} <= names


@pytest.mark.parametrize("ckpt", _shipped_checkpoints(), ids=lambda p: p.stem)
def test_shipped_checkpoint_has_a_fitting_gallery(ckpt, monkeypatch):
    meta = _ckpt_meta(ckpt)
    found = find_gallery(ckpt, meta)
    assert found is not None, f"no gallery fits {ckpt.name}"
    assert found.stat().st_size <= 12_000_000
    gm = read_gallery_meta(found)
    assert gallery_fits(gm, meta)
    assert gm.zip_sha256 == hashlib.sha256(found.read_bytes()).hexdigest()
    if meta.split is not None:
        assert not set(gm.train.indices) & set(meta.split.val_indices)
        assert gm.train.source_fingerprint == meta.split.fingerprint
    if gm.heldout.source_split == "val":
        assert set(gm.heldout.indices) <= set(meta.split.val_indices)
    else:
        assert gm.heldout.source_split == "test"
        assert meta.split is None or gm.heldout.source_fingerprint != meta.split.fingerprint
    # with no data anywhere, the views get this gallery
    monkeypatch.delenv("CNNVIZ_DATA", raising=False)
    choice = locate_data(meta, ckpt)
    assert choice is not None and (choice.path, choice.origin) == (found, "gallery")


def _shipped(name: str) -> tuple[Path, gallery.GalleryMeta]:
    z = ROOT / "checkpoints" / f"{name}.gallery.zip"
    assert is_gallery(z), f"{z} is missing"
    return z, read_gallery_meta(z)


def _check_against_source(zip_path: Path, gm: gallery.GalleryMeta, part_name: str, source_zip: Path,
                          prefix: str, n_check: int = 150) -> None:
    """Compare ``n_check`` images spread over one part of a gallery with the source images they
    came from, decoded and preprocessed: every error within the sidecar's bound."""
    part: gallery.GalleryPart = getattr(gm, part_name)
    pre = Preprocess.from_dict(gm.preprocess)
    ext = CODECS[gm.codec][0]
    src = resolve_source(source_zip)
    assert src.fingerprint == part.source_fingerprint
    assert all(m.startswith(prefix) for m in src.members[:10])
    # indices are positions in the source as the loader lists it; ids are its ids
    assert [src.ids[i] for i in part.indices] == list(part.ids)
    assert [gm.classes.index(src.labels[i]) for i in part.indices] == list(part.labels)
    worst = 0
    with zipfile.ZipFile(zip_path) as gz, zipfile.ZipFile(source_zip) as sz:
        for k in np.linspace(0, len(part) - 1, n_check).astype(int):
            ident = part.ids[k]
            name = f"{part_name}/{gm.classes[part.labels[k]]}/{k:05d}.{ext}"
            with Image.open(io.BytesIO(gz.read(name))) as im:
                got = np.asarray(im.convert("RGB"))
            want = decode_image(sz.read(prefix + ident), pre)
            assert got.shape == want.shape == (pre.size, pre.size, 3)
            err = int(np.abs(got.astype(np.int16) - want).max())
            assert err <= gm.max_abs_error, (ident, err, gm.max_abs_error)
            worst = max(worst, err)
    if gm.max_abs_error == 0:
        assert worst == 0


def test_shipped_cifar10_gallery():
    z, gm = _shipped("cifar10")
    assert z.stat().st_size <= 12_000_000
    assert (gm.dataset, gm.classes) == ("cifar10", list(CIFAR10_CLASSES))
    assert gm.preprocess == {"size": 32, "mode": "squash", "fill": [0, 0, 0]}
    assert (len(gm.train), len(gm.heldout)) == (5000, 1000)
    assert gm.heldout.source_split == "test" and gm.heldout.source_size == 10_000
    assert gm.heldout.source_fingerprint != gm.train.source_fingerprint
    assert counts_by_name(gm.train.labels, gm.classes) == {c: 500 for c in CIFAR10_CLASSES}
    assert counts_by_name(gm.heldout.labels, gm.classes) == {c: 100 for c in CIFAR10_CLASSES}
    assert len(set(gm.train.indices)) == 5000 and len(set(gm.heldout.indices)) == 1000
    assert gm.attribution == gallery_make.ATTRIBUTIONS["cifar10"]
    for name in ("cifar10_cnn", "cifar10_fast"):
        meta = _ckpt_meta(ROOT / "checkpoints" / f"{name}.json")
        assert gallery_fits(gm, meta)
        assert not set(gm.train.indices) & set(meta.split.val_indices)
        assert gm.train.source_size == meta.split.n_total - len(meta.split.val_indices)
    _check_against_source(z, gm, "train", _shared("cifar10/train.zip"), "train/")
    _check_against_source(z, gm, "heldout", _shared("cifar10/test.zip"), "test/")


def test_shipped_simpsons_gallery():
    z, gm = _shipped("simpsons")
    assert z.stat().st_size <= 12_000_000
    assert gm.dataset == "simpsons" and len(gm.classes) == 20
    assert len(gm.train) >= 3000 and len(gm.heldout) >= 600
    assert set(gm.train.labels) == set(range(20)) and set(gm.heldout.labels) == set(range(20))
    assert gm.heldout.source_split == "val"
    assert len(set(gm.train.indices)) == len(gm.train) and len(set(gm.heldout.indices)) == len(gm.heldout)
    meta = _ckpt_meta(ROOT / "checkpoints" / "simpsons_cnn.json")
    assert gallery_fits(gm, meta) and gm.classes == meta.classes
    assert set(gm.heldout.indices) <= set(meta.split.val_indices)
    assert not set(gm.train.indices) & set(meta.split.val_indices)
    assert gm.heldout.source_size == len(meta.split.val_indices)
    assert gm.heldout.source_fingerprint == gm.train.source_fingerprint == meta.split.fingerprint
    assert gm.attribution == gallery_make.ATTRIBUTIONS["simpsons"]
    source = _shared("simpsons/train.zip")
    _check_against_source(z, gm, "train", source, "simpsons_dataset/")
    _check_against_source(z, gm, "heldout", source, "simpsons_dataset/")


def test_shipped_gallery_parts_load(tmp_path):
    """Every file of each shipped gallery is where its sidecar says (load_gallery_split's checks)."""
    for name, held in (("cifar10", "test"), ("simpsons", "val")):
        z, gm = _shipped(name)
        part = load_gallery_split(z, held)
        assert len(part) == len(gm.heldout) and part.ids == list(gm.heldout.ids)
        assert part.images.shape[1:] == (gm.preprocess["size"],) * 2 + (3,)


@pytest.mark.parametrize("args,got", [(["--train", "0"], "got 0, 3 and 12 MB"),
                                      (["--heldout", "-2"], "got 6, -2 and 12 MB"),
                                      (["--max-mb", "0"], "got 6, 3 and 0 MB")])
def test_cli_gallery_refuses_empty_parts_and_no_room(cli_checkpoint, tmp_path, capsys, args, got):
    weights, data = cli_checkpoint
    out = tmp_path / "g" / "demo"
    base = {"--train": "6", "--heldout": "3"}
    base.update(dict(zip(args[::2], args[1::2])))
    argv = ["gallery", str(weights), "--data", str(data), "--out", str(out)]
    for k, v in base.items():
        argv += [k, v]
    rc = main(argv)
    errors = _error_lines(capsys.readouterr().err)
    assert rc == 2
    assert errors == ["cnnviz gallery: error: a gallery needs at least 1 training and 1 held-out image and a "
                      f"size limit above 0 ({got})"]
    assert not out.parent.exists()


def test_held_out_data_takes_the_galleries_held_out_part(flat_val, tt_png):
    from cnnviz.checkpoints import held_out_data

    name, held = held_out_data(flat_val.meta, flat_val.zip)
    assert name == "val" and held.ids == list(flat_val.gm.heldout.ids)
    name, held = held_out_data(tt_png.meta, tt_png.zip)
    assert name == "test" and held.ids == list(tt_png.gm.heldout.ids)


def test_a_gallery_decoded_once_is_read_back_and_a_new_zip_decoded_again(tt_png, tmp_path, monkeypatch):
    import os  # noqa: PLC0415

    import cnnviz.gallery as gallery  # noqa: PLC0415

    zip_path, _ = gallery_paths(tt_png.out)
    first = load_gallery_split(zip_path, "train", cache_dir=tmp_path)
    assert list((tmp_path / "galleries").glob("*-train-*.npz"))

    def no_decode(*a):
        raise AssertionError("decoded again")

    monkeypatch.setattr(gallery, "decode_member", no_decode)
    again = load_gallery_split(zip_path, "train", cache_dir=tmp_path)  # read back: no JPEG decoded
    np.testing.assert_array_equal(again.images, first.images)
    assert (again.ids, again.fingerprint, again.labels.tolist()) == (first.ids, first.fingerprint,
                                                                    first.labels.tolist())
    st = zip_path.stat()
    os.utime(zip_path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # the zip changed on disk
    with pytest.raises(AssertionError, match="decoded again"):
        load_gallery_split(zip_path, "train", cache_dir=tmp_path)
    os.utime(zip_path, ns=(st.st_atime_ns, st.st_mtime_ns))

"""Budgets: pixels per image and per folder/zip/upload, read from headers before decoding; zip
members bounded by the size they declare and by what they really inflate to."""

from __future__ import annotations

import functools
import io
import struct
import time
import warnings
import zipfile
import zlib
from pathlib import Path

import pytest
from PIL import Image

import cnnviz.data.loading as loading_mod
import cnnviz.predict as predict_mod
from cnnviz.data import (MAX_TOTAL_PIXELS, Budget, Container, DatasetError, Preprocess, UnreadableImage,
                         decode_image, declared_pixels, load_dataset)
from cnnviz.predict import MAX_UPLOAD_PIXELS, decode_uploads, decode_zip

from conftest import jpeg_bytes, write_jpeg
from test_data import png_header

PRE = Preprocess(16)
BIG = 8900  # 8900 x 8900 = 79,210,000 pixels: each image alone is under the 80,000,000 limit


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


@functools.cache
def black_png(width: int, height: int) -> bytes:
    """A complete RGB PNG of black rows, written row block by row block (a 8900x8900 one is
    about 230 kB and never held decoded in memory here)."""
    row = bytes(1 + 3 * width)  # filter byte 0, then black pixels
    z = zlib.compressobj(9)
    parts = [z.compress(row * min(100, height - y)) for y in range(0, height, 100)]
    idat = b"".join(parts) + z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def png_bytes(color, size=(20, 20)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def big_zip(n: int = 200) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(n):
            zf.writestr(f"big/{i}.png", black_png(BIG, BIG))
    return buf.getvalue()


def test_black_png_is_a_real_png():
    out = decode_image(black_png(30, 250), PRE)
    assert out.shape == (16, 16, 3) and not out.any()
    with Image.open(io.BytesIO(black_png(BIG, BIG))) as img:
        assert img.size == (BIG, BIG) and img.mode == "RGB"
    assert declared_pixels(black_png(BIG, BIG)) == 79_210_000


# --------------------------------------------------------------------------------------------
# One image


def test_one_image_over_its_pixel_limit_is_refused_from_its_header():
    with pytest.raises(UnreadableImage) as e:
        decode_image(png_bytes((1, 2, 3), (40, 30)), PRE, max_pixels=1000)
    assert str(e.value) == "image is too large: 40x30 pixels, over the limit of 1,000: resize it first"
    assert decode_image(png_bytes((1, 2, 3), (40, 25)), PRE, max_pixels=1000).shape == (16, 16, 3)


def test_image_over_the_limit_in_a_folder_is_skipped_and_counted(tmp_path):
    for i in range(2):
        write_jpeg(tmp_path / "d" / "cat" / f"{i}.jpg", (200, 0, 0), (20, 20))
        write_jpeg(tmp_path / "d" / "dog" / f"{i}.jpg", (0, 0, 200), (20, 20))
    write_jpeg(tmp_path / "d" / "dog" / "huge.jpg", (0, 0, 200), (60, 60))
    with pytest.warns(UserWarning, match=r"skipped 1 unreadable image\(s\) in .*: dog/huge.jpg"):
        ds = load_dataset(tmp_path / "d", None, PRE, budget=Budget(image_pixels=1000))
    assert ds.skipped == ["dog/huge.jpg"] and len(ds) == 4


# --------------------------------------------------------------------------------------------
# All images of a zip, a folder or an upload together


def test_zip_of_200_huge_pngs_is_refused_at_once_without_decoding(tmp_path, monkeypatch):
    path = tmp_path / "big.zip"
    path.write_bytes(big_zip())
    assert path.stat().st_size < 200_000  # 15.8 billion pixels declared in a 134 kB zip

    def no_decoding(*args):
        raise AssertionError("decoded an image of a set that is over its pixel budget")

    monkeypatch.setattr(loading_mod, "decode_image", no_decoding)
    t0 = time.perf_counter()
    with pytest.raises(DatasetError) as e:
        load_dataset(path, None, PRE)
    elapsed = time.perf_counter() - t0
    assert str(e.value) == (
        f"{path} is too large to decode: 101 of its 200 images already hold 8,000,210,000 pixels, "
        "over the limit of 8,000,000,000 for one folder, zip or upload: resize the images first, "
        "or split them into smaller sets")
    assert MAX_TOTAL_PIXELS == 8_000_000_000
    assert elapsed < 5, f"took {elapsed:.1f} s to refuse"  # about 0.05 s on a quiet machine


def test_uploaded_zip_of_huge_pngs_is_refused_before_decoding(monkeypatch):
    monkeypatch.setattr(predict_mod, "decode_image", None)  # any decoding would fail loudly
    with pytest.raises(DatasetError) as e:
        decode_zip(big_zip(20), PRE, "big.zip")
    assert str(e.value) == (
        "big.zip is too large to decode: 13 of its 20 images already hold 1,029,730,000 pixels, "
        "over the limit of 1,000,000,000 for one folder, zip or upload: resize the images first, "
        "or split them into smaller sets")
    assert MAX_UPLOAD_PIXELS == 1_000_000_000


def test_folder_over_a_small_total_budget_is_refused(class_tree):
    # 15 test JPEGs of 400 to 720 pixels each
    with pytest.raises(DatasetError, match=r"test is too large to decode: \d of its 9 images already "
                                           r"hold \d,\d\d\d pixels, over the limit of 2,000 "):
        load_dataset(class_tree.root, "test", PRE, budget=Budget(total_pixels=2000))
    assert len(load_dataset(class_tree.root, "test", PRE, budget=Budget(total_pixels=10_000))) == 9


def test_uploads_past_the_budget_are_listed_not_decoded():
    files = [(f"{i}.png", png_bytes((i, 0, 0), (30, 20))) for i in range(5)]  # 600 pixels each
    images, names, errors = decode_uploads(files, PRE, Budget(total_pixels=1900))
    assert names == ["0.png", "1.png", "2.png"] and images.shape == (3, 16, 16, 3)
    assert list(errors) == ["3.png", "4.png"]
    assert errors["3.png"] == ("not decoded: the images uploaded with it hold over 1,900 pixels "
                               "together; resize them first, or upload fewer at a time")


# --------------------------------------------------------------------------------------------
# Zip members: the size they declare, and what they really inflate to


def _zip_with_zeros(path: Path, n_bytes: int) -> Path:
    """A class tree zip whose ``train/b/big.png`` is ``n_bytes`` of zeros (deflates ~1000:1)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for cls, color in (("a", (200, 0, 0)), ("b", (0, 0, 200))):
            for i in range(2):
                zf.writestr(f"train/{cls}/{i}.png", png_bytes(color))
        zf.writestr("train/b/big.png", bytes(n_bytes))
    return path


@pytest.fixture
def inflated(monkeypatch) -> list[int]:
    """Sizes of every chunk read out of any zip member from here on."""
    sizes: list[int] = []
    real = zipfile.ZipExtFile.read

    def counting(self, n=-1):
        data = real(self, n)
        sizes.append(len(data))
        return data

    monkeypatch.setattr(zipfile.ZipExtFile, "read", counting)
    return sizes


def test_member_declaring_more_than_the_limit_is_refused_unread(tmp_path, inflated):
    path = _zip_with_zeros(tmp_path / "train.zip", 3 * 2**20)
    assert path.stat().st_size < 30_000  # a small zip declaring 3 MB (think: 3 MB declaring 3 GB)
    box = Container(path, max_bytes=2**20)
    with pytest.raises(UnreadableImage) as e:
        box.read("train/b/big.png")
    assert str(e.value) == "3 MB, over the limit of 1 MB for one image"
    assert sum(inflated) == 0
    with pytest.warns(UserWarning, match=r"skipped 1 unreadable image\(s\) in .*: b/big.png"):
        ds = load_dataset(path, None, PRE, budget=Budget(file_bytes=2**20))
    assert len(ds) == 4 and ds.skipped == ["b/big.png"]
    assert max(inflated) < 2**20  # the four real images and headers only


def test_uploaded_member_declaring_more_than_the_limit_is_listed_unread(tmp_path, inflated):
    data = _zip_with_zeros(tmp_path / "up.zip", 3 * 2**20).read_bytes()
    images, ids, errors = decode_zip(data, PRE, "up.zip", budget=Budget(file_bytes=2**20))
    assert ids == ["a/0.png", "a/1.png", "b/0.png", "b/1.png"]
    assert errors == {"train/b/big.png": "3 MB, over the limit of 1 MB for one image"}
    assert sum(inflated) < 20_000  # headers, then the four images: not the 3 MB


def _lie_about_size(data: bytes, member: str, declared: int) -> bytes:
    """Rewrite the uncompressed size that the zip's central directory declares for ``member``."""
    out = bytearray(data)
    at = out.find(b"PK\x01\x02")  # central directory entries
    while at >= 0:
        name_len = struct.unpack_from("<H", out, at + 28)[0]
        if out[at + 46:at + 46 + name_len].decode() == member:
            struct.pack_into("<I", out, at + 24, declared)
        at = out.find(b"PK\x01\x02", at + 4)
    return bytes(out)


def test_member_whose_directory_lies_is_not_read_to_its_end(tmp_path, inflated):
    path = tmp_path / "liar.zip"
    path.write_bytes(_lie_about_size(_zip_with_zeros(tmp_path / "honest.zip", 3 * 2**20).read_bytes(),
                                     "train/b/big.png", 1000))
    box = Container(path, max_bytes=2**20)
    assert dict(box.list())["train/b/big.png"] == 1000
    with pytest.raises(UnreadableImage) as e:
        box.read("train/b/big.png")
    assert str(e.value) == "cannot be read from the zip (BadZipFile: Bad CRC-32 for file 'train/b/big.png')"
    assert sum(inflated) <= 1000  # of the 3 MB it really holds
    with pytest.warns(UserWarning, match=r"skipped 1 unreadable image\(s\) in .*: b/big.png"):
        assert len(load_dataset(path, None, PRE)) == 4


def test_members_compressed_otherwise_than_deflate_are_refused_unread(tmp_path, inflated):
    path = tmp_path / "bz.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_BZIP2) as zf:  # bzip2 inflates without a bound
        zf.writestr("x/1.png", png_bytes((1, 2, 3)))
    with pytest.raises(UnreadableImage, match="compressed with a method other than deflate: re-zip it"):
        Container(path).read("x/1.png")
    assert inflated == []


def test_declared_pixels_reads_headers_only():
    assert declared_pixels(jpeg_bytes((1, 1, 1), (50, 40))) == 2000
    assert declared_pixels(png_header(9000, 9000)) == 0  # over 80,000,000: refused one by one later
    assert declared_pixels(png_header(9000, 9000), max_pixels=10**8) == 81_000_000
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        assert declared_pixels(png_header(20_000, 20_000), max_pixels=10**9) == 0  # PIL's own refusal
    assert declared_pixels(b"not an image") == 0

"""From encoded bytes to the network's square ``uint8`` input, within budgets.

A :class:`Preprocess` says how any frame becomes ``(size, size, 3) uint8``; :func:`decode_image`
applies it to one file's bytes. Sizes are checked from the image header before anything is
decoded: one image may not declare more than :data:`MAX_IMAGE_PIXELS`, and one folder, zip or
upload may not declare more than a :class:`Budget`'s ``total_pixels`` in all.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import BinaryIO, Iterable, Literal

import numpy as np
from PIL import Image

from .errors import DatasetError, PreprocessError, UnreadableImage

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
RESIZE_MODES = ("squash", "center_crop", "pad")

# Limit for a single decoded image, in pixels: larger files are refused as likely hostile.
MAX_IMAGE_PIXELS = 80_000_000
# Limit for all images of one folder or zip together (CIFAR-10 holds 61 million pixels, the
# Simpsons' training set 363 million): over it, the whole set is refused before decoding.
MAX_TOTAL_PIXELS = 8_000_000_000
# Limit for one image file, in bytes (a zip member: as declared and as actually inflated).
# Large enough for any image under MAX_IMAGE_PIXELS, even stored uncompressed.
MAX_FILE_BYTES = 256 * 2**20


@dataclass(frozen=True)
class Budget:
    """What one folder, zip or upload may ask to have decoded.

    ``image_pixels``: one image's declared ``width * height``; ``total_pixels``: all images of
    the set together; ``file_bytes``: one image file (a zip member is bounded both by the size
    its directory declares and by what it really inflates to).
    """

    image_pixels: int = MAX_IMAGE_PIXELS
    total_pixels: int = MAX_TOTAL_PIXELS
    file_bytes: int = MAX_FILE_BYTES


def is_image_name(name: str) -> bool:
    """Whether a file name has one of :data:`IMAGE_EXTENSIONS` (any case)."""
    return name.lower().endswith(IMAGE_EXTENSIONS)


@dataclass(frozen=True)
class Preprocess:
    """How any image becomes the network's square input; recorded in every checkpoint.

    ``mode``: ``"squash"`` resizes to ``size x size`` ignoring aspect ratio, ``"center_crop"``
    resizes the shorter side to ``size`` and crops the centre, ``"pad"`` fits the longer side
    and pads with ``fill`` (keeps characters that stand off-centre in the frame). Raises
    :class:`PreprocessError` for an unknown mode, a size below 1 or a fill that is not RGB.
    """

    size: int = 32
    mode: Literal["squash", "center_crop", "pad"] = "squash"
    fill: tuple[int, int, int] = (0, 0, 0)

    def __post_init__(self) -> None:
        if self.mode not in RESIZE_MODES:
            raise PreprocessError(f"unknown resize mode {self.mode!r}: use {', '.join(RESIZE_MODES)}")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size <= 0:
            raise PreprocessError(f"resize size must be a whole number of pixels of 1 or more, "
                                  f"not {self.size!r}")
        fill = tuple(self.fill)
        if len(fill) != 3 or not all(isinstance(v, (int, np.integer)) and 0 <= v <= 255 for v in fill):
            raise PreprocessError(f"fill must be three values 0-255 (red, green, blue), not {self.fill!r}")
        object.__setattr__(self, "fill", tuple(int(v) for v in fill))

    def to_dict(self) -> dict:
        return {"size": self.size, "mode": self.mode, "fill": list(self.fill)}

    @classmethod
    def from_dict(cls, d: dict) -> "Preprocess":
        return cls(size=int(d["size"]), mode=d["mode"], fill=tuple(d.get("fill", (0, 0, 0))))

    def key(self) -> str:
        return f"{self.size}{self.mode}" + ("" if self.mode != "pad" else "-".join(map(str, self.fill)))

    def apply(self, img: Image.Image) -> np.ndarray:
        """PIL image of any size/mode -> ``(size, size, 3) uint8``."""
        s = self.size
        if img.mode != "RGB":
            img = _to_rgb(img)
        w, h = img.size
        if (w, h) == (s, s):
            return np.asarray(img, dtype=np.uint8)
        if self.mode == "squash":
            out = img.resize((s, s), Image.BILINEAR, reducing_gap=3.0)
        elif self.mode == "center_crop":
            scale = s / min(w, h)
            nw, nh = max(s, round(w * scale)), max(s, round(h * scale))
            img = img.resize((nw, nh), Image.BILINEAR, reducing_gap=3.0)
            left, top = (nw - s) // 2, (nh - s) // 2
            out = img.crop((left, top, left + s, top + s))
        else:  # pad
            scale = s / max(w, h)
            nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
            img = img.resize((nw, nh), Image.BILINEAR, reducing_gap=3.0)
            out = Image.new("RGB", (s, s), tuple(self.fill))
            out.paste(img, ((s - nw) // 2, (s - nh) // 2))
        return np.asarray(out, dtype=np.uint8)


_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in _SIXTEEN_BIT_MODES or img.mode == "I":
        img = _wide_grey_to_l(img)
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        bg = Image.new("RGB", img.size, (255, 255, 255))
        bg.paste(img, mask=img.getchannel("A"))
        return bg
    return img.convert("RGB")


def _wide_grey_to_l(img: Image.Image) -> Image.Image:
    """16-bit (``I;16``) or 32-bit (``I``) greyscale -> ``L``, scaled from 0-65535 to 0-255.

    PIL's own conversion clips at 255, which turns every 16-bit photo solid white. An ``I``
    image is taken as 16-bit when it comes from a PNG or holds values over 255.
    """
    arr = np.asarray(img).astype(np.int64)
    if img.mode != "I" or img.format == "PNG" or arr.max(initial=0) > 255:
        arr = (np.clip(arr, 0, 65535) + 128) // 257
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def _too_large(width: int, height: int, limit: int) -> UnreadableImage:
    return UnreadableImage(f"image is too large: {width}x{height} pixels, over the limit of "
                           f"{limit:,}: resize it first")


def decode_image(data: bytes, pre: Preprocess, max_pixels: int | None = None) -> np.ndarray:
    """Encoded image bytes -> ``(size, size, 3) uint8``; raises :class:`UnreadableImage`.

    An image whose header declares more than ``max_pixels`` (default :data:`MAX_IMAGE_PIXELS`)
    is refused before any pixel is decoded.
    """
    limit = MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > limit:
                raise _too_large(img.width, img.height, limit)
            if img.format == "JPEG":
                img.draft("RGB", (pre.size * 2, pre.size * 2))  # decode JPEG at reduced scale
            img.load()
            return pre.apply(img)
    except UnreadableImage:
        raise
    except Image.DecompressionBombError:  # PIL refuses far larger frames before our check runs
        raise UnreadableImage(f"image is too large to decode safely (over {limit:,} pixels): "
                              "resize it first") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise UnreadableImage(f"not a readable image ({type(e).__name__}: {e}): use a PNG, JPEG or another "
                              "common image format") from e


def declared_pixels(fp: BinaryIO | bytes, max_pixels: int | None = None) -> int:
    """``width * height`` as an image's header declares it, read lazily (nothing is decoded).

    0 for what will not be decoded anyway: unreadable headers and images over ``max_pixels``
    (default :data:`MAX_IMAGE_PIXELS`), which :func:`decode_image` refuses one by one.
    """
    limit = MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    try:
        with Image.open(io.BytesIO(fp) if isinstance(fp, bytes) else fp) as img:
            n = img.width * img.height
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError):
        return 0
    return n if n <= limit else 0


def check_total_pixels(declared: Iterable[int], n: int, what: str, limit: int) -> int:
    """Sum images' declared pixel counts, refusing with :class:`DatasetError` as soon as the
    running total passes ``limit`` (the rest are not looked at). Returns the total."""
    total = 0
    for k, px in enumerate(declared, 1):
        total += px
        if total > limit:
            raise DatasetError(
                f"{what} is too large to decode: {k:,} of its {n:,} images already hold {total:,} "
                f"pixels, over the limit of {limit:,} for one folder, zip or upload: resize the "
                "images first, or split them into smaller sets")
    return total

"""Static pictures (``uint8`` RGB arrays) of maps and fields: what a page shows as an image
where an interactive figure would cost the browser more than it gives (one drawn Plotly figure
costs about as much as the rest of a page)."""

from __future__ import annotations

import dataclasses
import functools
from typing import Sequence

import numpy as np

from ..inspect.feature_maps import channel_grid, grid_cols
from .clicks import outline

__all__ = ["DrawnText", "TextCanvas", "diverging_colours", "diverging_lut", "fitted_thumbnail", "font", "glow_image",
           "heat_image", "line_height", "maps_image", "text_width", "tile_at", "tile_clicked", "viridis_lut",
           "weights_image", "wrap_text"]


def _lut(colours: Sequence[str]) -> np.ndarray:
    """``(256, 3) uint8``: a Plotly colour scale's colours (``#rrggbb`` or ``rgb(r, g, b)``),
    evenly spaced and interpolated (read-only)."""
    from plotly.colors import hex_to_rgb, unlabel_rgb  # noqa: PLC0415

    stops = np.array([hex_to_rgb(c) if c.startswith("#") else unlabel_rgb(c) for c in colours], np.float64)
    pos = np.linspace(0, 1, len(stops))
    t = np.linspace(0, 1, 256)
    lut = np.stack([np.interp(t, pos, stops[:, k]) for k in range(3)], 1).round().astype(np.uint8)
    lut.setflags(write=False)
    return lut


@functools.cache
def viridis_lut() -> np.ndarray:
    """``(256, 3) uint8``: Plotly's Viridis colour scale, interpolated (read-only)."""
    from plotly.colors import sequential  # noqa: PLC0415

    return _lut(sequential.Viridis)


@functools.cache
def diverging_lut() -> np.ndarray:
    """``(256, 3) uint8``: Plotly's RdBu reversed (blue, white in the middle, red), interpolated
    (read-only); entry ``round((v + 1) * 127.5)`` colours a value ``v`` in ``[-1, 1]``."""
    from plotly.colors import diverging  # noqa: PLC0415

    return _lut(diverging.RdBu[::-1])


def diverging_colours(values: np.ndarray, peak: float = 1.0) -> np.ndarray:
    """``uint8`` RGB (shape ``values.shape + (3,)``) of ``values`` on :func:`diverging_lut` over
    ``[-peak, peak]``: blue below 0, white at 0, red above; beyond ``peak`` clipped (a ``peak``
    of 0 counts as 1)."""
    t = np.clip(np.asarray(values, np.float64) / (peak or 1.0), -1, 1)
    return diverging_lut()[np.rint((t + 1) * 127.5).astype(np.uint8)]


def maps_image(maps: np.ndarray, cols: int | None = None, tile_px: int = 48,
               gap_color: Sequence[int] = (255, 255, 255), gap: int | None = None) -> np.ndarray:
    """Channel maps ``(k, h, w)`` as one ``uint8`` RGB picture: tiles in a grid (about square
    unless ``cols``), each min-max scaled on its own and coloured with Viridis, enlarged to
    about ``tile_px`` pixels a side by repeating pixels; ``gap`` pixels (default a quarter of
    the enlargement, at least 1) in ``gap_color`` between tiles."""
    maps = np.asarray(maps, np.float32)
    if maps.ndim != 3 or not len(maps):
        raise ValueError(f"expected maps (k, h, w) with k >= 1, got shape {maps.shape}")
    h, w = maps.shape[1:]
    scale = max(1, int(round(tile_px / max(h, w))))
    big = np.repeat(np.repeat(maps, scale, axis=1), scale, axis=2)
    grid = channel_grid(big, max_channels=len(maps), cols=grid_cols(len(maps), cols),
                        gap=max(1, scale // 4) if gap is None else int(gap))
    gaps = np.isnan(grid)
    rgb = viridis_lut()[np.clip(np.nan_to_num(grid) * 255, 0, 255).astype(np.uint8)]
    rgb[gaps] = np.asarray(gap_color, np.uint8)
    return rgb


def heat_image(z: np.ndarray, width: int = 320, mark: tuple[int, int] | None = None
               ) -> tuple[np.ndarray, int, float, float]:
    """One map ``(h, w)`` coloured with Viridis from its minimum (dark) to its maximum (yellow)
    and enlarged by repeating pixels to at least ``width`` px: ``(picture, factor, lo, hi)``.
    A constant map is all dark. ``mark``: a map position ``(row, column)`` outlined in red."""
    z = np.asarray(z, np.float32)
    if z.ndim != 2 or not z.size:
        raise ValueError(f"expected one map (h, w), got shape {z.shape}")
    lo, hi = float(z.min()), float(z.max())
    t = (z - lo) / (hi - lo) if hi > lo else np.zeros_like(z)
    factor = max(1, -(-width // max(z.shape)))
    rgb = viridis_lut()[np.clip(t * 255, 0, 255).round().astype(np.uint8)]
    big = np.repeat(np.repeat(rgb, factor, axis=0), factor, axis=1)
    if mark is not None:
        big = outline(big, (mark[0], mark[1], mark[0] + 1, mark[1] + 1), factor)
    return big, factor, lo, hi


def glow_image(image: np.ndarray, field: np.ndarray, alpha: float = 0.7) -> np.ndarray:
    """``image`` (``(H, W, 3) uint8``) with ``field`` (``(H, W)``, e.g. a gradient magnitude)
    laid over it scaled to its maximum: transparent at zero, through orange to opaque yellow at
    the maximum times ``alpha`` (the colours of the receptive-field figure's glow)."""
    image = np.asarray(image)
    field = np.asarray(field, np.float32)
    if image.ndim != 3 or image.shape[-1] != 3 or field.shape != image.shape[:2]:
        raise ValueError(f"expected an image (H, W, 3) and a field (H, W), got {image.shape} and {field.shape}")
    peak = float(field.max())
    t = np.clip(field / peak, 0, 1) if peak > 0 else np.zeros_like(field)
    # 0 -> transparent red, 0.5 -> orange at 0.6 opacity, 1 -> opaque yellow
    colour = np.stack([np.full_like(t, 255.0), np.interp(t, [0, 0.5, 1], [0, 80, 230]), np.zeros_like(t)], -1)
    a = (alpha * np.interp(t, [0, 0.5, 1], [0, 0.6, 1]))[..., None]
    return (image.astype(np.float32) * (1 - a) + colour * a).round().clip(0, 255).astype(np.uint8)


def weights_image(weights: np.ndarray, cell: int = 16, gap: int = 8) -> np.ndarray:
    """One kernel's weights per input channel ``(C, kh, kw)`` in ``[-1, 1]`` (as
    ``channel_images`` gives them) side by side as one ``uint8`` RGB picture: each weight a
    ``cell``-pixel square coloured on :func:`diverging_lut` (red excites, blue inhibits, white
    is 0), ``gap`` white pixels between channels."""
    w = np.asarray(weights, np.float32)
    if w.ndim != 3 or not w.size:
        raise ValueError(f"expected weights (C, kh, kw), got shape {w.shape}")
    rgb = diverging_colours(w)  # (C, kh, kw, 3)
    big = rgb.repeat(cell, axis=1).repeat(cell, axis=2)
    c, kh, kw = w.shape
    out = np.full((kh * cell, c * kw * cell + (c - 1) * gap, 3), 255, np.uint8)
    for i in range(c):
        out[:, i * (kw * cell + gap): i * (kw * cell + gap) + kw * cell] = big[i]
    return out


def tile_at(grid_shape: tuple[int, ...], n: int, cols: int, gap: int, x: float, y: float) -> int | None:
    """Which of the ``n`` tiles of a grid picture of ``grid_shape`` lies under its pixel
    ``(x, y)``: the grid is laid out ``cols`` per row with ``gap``-pixel separators and equal
    tiles (``rows * (tile + gap) - gap`` pixels, as :func:`maps_image`, ``grid_image`` and
    ``patch_grid`` draw). None for a separator, an empty cell or outside the picture."""
    rows = -(-n // cols)
    if n <= 0 or not (0 <= x < grid_shape[1] and 0 <= y < grid_shape[0]):
        return None
    th, tw = (grid_shape[0] + gap) / rows - gap, (grid_shape[1] + gap) / cols - gap
    col, row = int(x // (tw + gap)), int(y // (th + gap))
    inside = x - col * (tw + gap) < tw and y - row * (th + gap) < th
    i = row * cols + col
    return i if inside and col < cols and i < n else None


def tile_clicked(click: dict | None, grid_shape: tuple[int, ...], n: int, cols: int, gap: int) -> int | None:
    """:func:`tile_at` for a click on the grid picture as the browser shows it, at any width:
    ``click`` holds ``x``, ``y`` and the shown ``width`` (streamlit-image-coordinates' value).
    None for no click, a separator or an empty cell."""
    if not click or not click.get("width"):
        return None
    scale = grid_shape[1] / click["width"]
    return tile_at(grid_shape, n, cols, gap, click["x"] * scale, click["y"] * scale)


# -- text at its final size: fonts, wrapping and a canvas that records what it draws -------------

#: TrueType files tried in order (DejaVu ships with most Linux systems, ``fonts-dejavu-core``).
FONT_FILES = {False: ("DejaVuSans.ttf", "LiberationSans-Regular.ttf", "Arial.ttf", "arial.ttf"),
              True: ("DejaVuSans-Bold.ttf", "LiberationSans-Bold.ttf", "Arial Bold.ttf", "arialbd.ttf")}


@functools.lru_cache(maxsize=64)
def font(size: int, bold: bool = False):
    """A TrueType font at ``size`` px: DejaVu Sans (bold with ``bold``), else another common
    sans-serif, else Pillow's own scalable default; Pillow's fixed bitmap font only when it
    has no FreeType at all (then text cannot reach ``size``)."""
    from PIL import ImageFont  # noqa: PLC0415

    for name in FONT_FILES[bold] + (FONT_FILES[False] if bold else ()):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # Pillow without FreeType
        return ImageFont.load_default()


def text_width(text: str, size: int, bold: bool = False) -> float:
    """How many pixels ``text`` takes on one line at ``size`` px."""
    return float(font(size, bold).getlength(text))


def line_height(size: int, bold: bool = False) -> int:
    """The height of one line of text at ``size`` px: ascent + descent of the font."""
    f = font(size, bold)
    try:
        ascent, descent = f.getmetrics()
    except AttributeError:  # pragma: no cover - bitmap font
        return size
    return int(ascent + descent)


def _split_word(word: str, size: int, width: float, bold: bool) -> list[str]:
    """A word too long for ``width`` in pieces that fit, broken after ``_`` or ``-`` where it can,
    else between letters; every letter is kept."""
    pieces, rest = [], word
    while rest and text_width(rest, size, bold) > width:
        cut = max(1, max((i + 1 for i, ch in enumerate(rest[:-1]) if ch in "_-/"
                          and text_width(rest[:i + 1], size, bold) <= width), default=0))
        if cut == 1:  # no break mark fits: as many letters as fit
            while cut < len(rest) and text_width(rest[:cut + 1], size, bold) <= width:
                cut += 1
        pieces.append(rest[:cut])
        rest = rest[cut:]
    return pieces + ([rest] if rest else [])


def wrap_text(text: str, size: int, width: float, bold: bool = False) -> list[str]:
    """``text`` broken into lines no wider than ``width`` px at ``size`` px, at spaces; a word
    wider than a line is broken inside (after ``_`` or ``-`` where it can). Nothing is cut:
    the lines hold every character of ``text`` but the spaces they break at."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        trial = f"{line} {word}" if line else word
        if text_width(trial, size, bold) <= width:
            line = trial
            continue
        if line:
            lines.append(line)
        parts = _split_word(word, size, width, bold)
        lines.extend(parts[:-1])
        line = parts[-1] if parts else ""
    return lines + ([line] if line else [])


@dataclasses.dataclass(frozen=True)
class DrawnText:
    """One line of text drawn on a :class:`TextCanvas`: the ``text`` of the line, ``block`` (the
    whole text it was wrapped from), the font ``size`` in px and ``box`` ``(left, top, right,
    bottom)``: the line's box on the picture, from the font's ascent to its descent."""

    text: str
    block: str
    size: int
    box: tuple[int, int, int, int]

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]


class TextCanvas:
    """A picture drawn at its final size: text in TrueType at the size it is shown, pixel images
    enlarged by whole factors only. Every line of text drawn is recorded in ``texts``."""

    def __init__(self, width: int, height: int, background: Sequence[int] = (255, 255, 255)):
        from PIL import Image, ImageDraw  # noqa: PLC0415

        self.image = Image.new("RGB", (int(width), int(height)), tuple(background))
        self.draw = ImageDraw.Draw(self.image)
        self.texts: list[DrawnText] = []

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size

    def text(self, x: float, y: float, text: str, size: int, fill: Sequence[int] = (20, 20, 20),
             bold: bool = False, align: str = "left", block: str | None = None) -> tuple[int, int, int, int]:
        """One line with its top at ``y``; ``align``: ``x`` is the line's left end, centre or right
        end. Returns the line's box."""
        f = font(size, bold)
        w = text_width(text, size, bold)
        x0 = x - w / 2 if align == "center" else x - w if align == "right" else x
        x0, y0 = int(round(x0)), int(round(y))
        self.draw.text((x0, y0), text, fill=tuple(fill), font=f)
        left, _, right, _ = self.draw.textbbox((x0, y0), text, font=f)
        box = (int(left), y0, int(max(right, x0 + w)), y0 + line_height(size, bold))
        self.texts.append(DrawnText(text, text if block is None else block, size, box))
        return box

    def paragraph(self, x: float, y: float, text: str, size: int, width: float, fill: Sequence[int] = (20, 20, 20),
                  bold: bool = False, align: str = "left", pitch: int | None = None) -> int:
        """``text`` wrapped to ``width`` px (never cut), lines ``pitch`` px apart (default the line
        height); ``align`` places each line in ``[x, x + width]``. Returns the y below the last line."""
        pitch = pitch or line_height(size, bold)
        lines = wrap_text(text, size, width, bold)
        at = {"left": x, "center": x + width / 2, "right": x + width}[align]
        for i, line in enumerate(lines):
            self.text(at, y + i * pitch, line, size, fill, bold, align, block=text)
        return int(round(y + (len(lines) - 1) * pitch + line_height(size, bold))) if lines else int(y)

    def paste(self, picture, x: int, y: int, scale: int = 1) -> tuple[int, int, int, int]:
        """``picture`` (``(H, W, 3) uint8`` or a PIL image) enlarged ``scale`` times by repeating
        pixels, its top-left corner at ``(x, y)``. Returns its box."""
        from PIL import Image  # noqa: PLC0415

        img = picture if isinstance(picture, Image.Image) else Image.fromarray(np.asarray(picture, np.uint8))
        scale = max(1, int(scale))
        if scale > 1:
            img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
        self.image.paste(img.convert("RGB"), (int(x), int(y)))
        return int(x), int(y), int(x) + img.width, int(y) + img.height


def fitted_thumbnail(image: np.ndarray, side: int):
    """``image`` at ``side`` px on its longer side: enlarged by repeating pixels when ``side`` is a
    whole multiple of its size, else resampled smoothly (a photograph, not a kernel)."""
    from PIL import Image  # noqa: PLC0415

    img = Image.fromarray(np.asarray(image, np.uint8))
    big = max(img.size)
    w, h = max(1, round(img.width * side / big)), max(1, round(img.height * side / big))
    return img.resize((w, h), Image.NEAREST if side % big == 0 else Image.LANCZOS)

"""Lecture figures for a checkpoint, written as PNG (for slides) and HTML (interactive), offline.

``write_lecture_figures`` is what ``cnnviz figures`` runs: kernels always (and their evolution
over the epochs saved during training); feature maps for an image (given, or the first test
image); nearest neighbours and the confusion matrix when data is given. PNGs are composed with
Pillow (no browser needed); HTML files share one local copy of plotly.js, so they open without
the network.

With ``deck=True`` (``cnnviz figures --deck``) the same pictures, plus a receptive field, the
first convolution and the most confident mistakes, become one slide per step of the lecture
sequence (:mod:`cnnviz.lecture_sequence`): 1,600 x 900 PNGs and one self-contained
``deck.html``. :func:`build_lecture_deck` makes that deck in memory (the dashboard's download).
"""

from __future__ import annotations

import base64
import html as html_lib
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw
from torch import nn

from .checkpoints import Checkpoint, CheckpointError, checkpoint_data, held_out_data, load_snapshots
from .data import IMAGE_EXTENSIONS, ImageDataset, Preprocess, UnreadableImage, decode_image
from .evaluate import softmax
from .figures.attribution import colorize, overlay
from .figures.clicks import dot, outline
from .figures.confusion import confusion_heatmap, draw_confusion, most_confused
from .figures.feature_maps import feature_grid_figure
from .figures.filters import filter_grid_figure, grid_image, lecture_grid
from .figures.neighbours import (DIFFERENT, class_display_name, draw_query_rows, neighbours_figure,
                                 query_rows_picture)
from .figures.pictures import DrawnText, TextCanvas, fitted_thumbnail, font, line_height, text_width, wrap_text
from .hooks import resolve_layers
from .inspect.confusion import confusion_from_logits
from .inspect.convolution import conv_output
from .inspect.effective_rf import gradient_rf
from .inspect.feature_maps import channel_grid, feature_maps
from .inspect.features import cached_features
from .inspect.filters import FilterSet, first_layer_filters, first_layer_filters_from_state
from .inspect.neighbours import NeighbourIndex, QueryNeighbours, pixel_vectors, query_neighbours
from .inspect.receptive_field import layer_rf, unit_box
from .lecture_sequence import LECTURE_SEQUENCE, LectureStep


class FigureError(ValueError):
    """A figure cannot be made as asked (an unknown layer, an unreadable image); the message
    lists what can be used instead."""


@dataclass
class LectureFigures:
    """Paths written, by figure name (``kernels``, ``kernels_over_epochs`` (PNG only),
    ``feature_maps``, ``neighbours``, ``confusion``); with a deck, ``deck.html``, its slides in
    order and ``missing``: the lecture steps left out of it, with the reason."""

    png: dict[str, Path] = field(default_factory=dict)
    html: dict[str, Path] = field(default_factory=dict)
    deck: Path | None = None
    slides: list[Path] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)


def default_feature_layer(ckpt: Checkpoint) -> str:
    """A middle convolutional layer: detailed enough to see parts, coarse enough to read."""
    names = [n for n in ckpt.model.layer_names() if isinstance(ckpt.model.get_submodule(n), nn.Conv2d)]
    names = names or ckpt.model.layer_names()
    return names[len(names) // 2]


def _check_layer(ckpt: Checkpoint, layer: str) -> None:
    try:
        resolve_layers(ckpt.model, layer)
    except ValueError as e:  # names the valid layers
        raise FigureError(str(e)) from None


def _read_picture(image: str | Path, pre: Preprocess) -> np.ndarray:
    """The image file at ``image`` as the model's input ``(S, S, 3) uint8``."""
    path = Path(image)
    if not path.is_file():
        what = "a folder, not an image file" if path.is_dir() else "no image file there"
        raise FigureError(f"cannot show feature maps of {path}: {what}; give the path of an image "
                          f"({', '.join(IMAGE_EXTENSIONS)})")
    try:
        return decode_image(path.read_bytes(), pre).copy()  # writable, as tensors want
    except UnreadableImage as e:
        raise FigureError(f"cannot show feature maps of {path}: {e}") from None


def _save_html(fig, path: Path) -> Path:
    fig.write_html(str(path), include_plotlyjs="directory", full_html=True)
    return path


def class_bars_png(top: list[tuple[str, float]], width: int = 260, row: int = 18,
                   color: tuple[int, int, int] = (31, 119, 180)) -> Image.Image:
    """Top-k class probabilities as horizontal bars, AlexNet figure 4 style: one row per class,
    the bar ``p * (width - 120)`` pixels long after a 120-px label column, the value after it."""
    img = Image.new("RGB", (width, 16 + row * len(top)), "white")
    draw = ImageDraw.Draw(img)
    draw.text((4, 2), "top classes", fill="black")
    span = width - 160
    for i, (name, p) in enumerate(top):
        y = 16 + i * row
        draw.text((4, y + 3), name[:18], fill="black")
        if p > 0:
            draw.rectangle([120, y + 3, 120 + max(1, round(p * span)) - 1, y + row - 4], fill=color)
        draw.text((124 + round(p * span), y + 3), f"{p:.0%}", fill="black")
    return img


# -- the figures, in memory first: written by write_lecture_figures, reused by the deck ----------

Box = tuple[int, int, int, int]
Draw = Callable[[TextCanvas, Box], None]


@dataclass
class SlideContent:
    """What one slide shows below its title: ``draw(canvas, box)`` draws it inside ``box`` of a
    1600 x 900 canvas at its final size; ``caption``: the measured facts the slide states;
    ``header``: ``"stacked"`` (caption under the title) or ``"side"`` (caption beside it, for a
    slide that needs the height)."""

    draw: Draw
    caption: str
    header: str = "stacked"


@dataclass
class LecturePictures:
    """What :func:`write_lecture_figures` writes, still in memory: ``png`` pictures and ``figs``
    Plotly figures by name; ``slides``: what each lecture step's slide shows (with ``deck``);
    ``missing``: why a lecture step has no picture."""

    png: dict[str, Image.Image] = field(default_factory=dict)
    figs: dict[str, object] = field(default_factory=dict)
    slides: dict[str, SlideContent] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)


Report = Callable[[int, int], None]
_STAGES = 7  # kernels, their evolution, held-out images, feature maps, field and convolution, neighbours, slides
LABEL_PX = 22  # labels on slides; captions 24 px, titles 40 px; nothing under 20 px


def _font(size: int):
    """The figures' TrueType font at ``size`` px (see :func:`cnnviz.figures.pictures.font`)."""
    return font(size)


def _panel(picture: np.ndarray | Image.Image, label: str, width: int, size: int = 22) -> Image.Image:
    """``picture`` enlarged by a whole factor (nearest neighbour) to about ``width`` px, a label
    above in ``size`` px type, wrapped to the picture's width."""
    img = picture if isinstance(picture, Image.Image) else Image.fromarray(np.asarray(picture, dtype=np.uint8))
    f = max(1, width // max(img.width, 1))
    lines = wrap_text(label, size, max(img.width * f, 200))
    head = len(lines) * line_height(size) + 8
    canvas = TextCanvas(max(img.width * f, max(int(text_width(t, size)) + 4 for t in lines)), img.height * f + head)
    canvas.paragraph(2, 2, label, size, canvas.size[0] - 4)
    canvas.paste(img, 0, head, f)
    return canvas.image


def _row(panels: list[Image.Image], gap: int = 24) -> Image.Image:
    out = Image.new("RGB", (sum(p.width for p in panels) + gap * (len(panels) - 1), max(p.height for p in panels)),
                    "white")
    x = 0
    for p in panels:
        out.paste(p, (x, 0))
        x += p.width + gap
    return out


def _stack(rows: list[Image.Image], gap: int = 24) -> Image.Image:
    out = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows) + gap * (len(rows) - 1)), "white")
    y = 0
    for r in rows:
        out.paste(r, (0, y))
        y += r.height + gap
    return out


def _fit_scale(native: tuple[int, int], room: tuple[float, float]) -> int:
    """The largest whole factor that fits a ``(w, h)`` picture into ``(w, h)`` of room (at least 1)."""
    return max(1, int(min(room[0] / max(native[0], 1), room[1] / max(native[1], 1))))


def draw_panels(canvas: TextCanvas, box: Box, panels: list[tuple[np.ndarray, str]], size: int = LABEL_PX,
                gap: int = 40, max_scale: int | None = None) -> None:
    """Pixel pictures side by side inside ``box``, each labelled above (wrapped to its width,
    ``size`` px), all enlarged by one whole factor, as large as fit; centred in the box."""
    x0, y0, x1, y1 = box
    lh = line_height(size)
    natives = [(p.shape[1], p.shape[0]) for p, _ in panels]
    for scale in range(max(1, int((y1 - y0) / max(h for _, h in natives))), 0, -1):
        if max_scale is not None and scale > max_scale:
            continue
        widths = [w * scale for w, _ in natives]
        if sum(widths) + gap * (len(panels) - 1) > x1 - x0 and scale > 1:
            continue
        heads = [len(wrap_text(label, size, max(w, 240))) * lh + 10 for w, (_, label) in zip(widths, panels)]
        if max(heads) + max(h for _, h in natives) * scale <= y1 - y0 or scale == 1:
            break
    head = max(heads)
    cols = [max(w, 240) for w in widths]
    total_w = sum(cols) + gap * (len(panels) - 1)
    total_h = head + max(h for _, h in natives) * scale
    x = x0 + max(0, (x1 - x0 - total_w) // 2)
    y = y0 + max(0, (y1 - y0 - total_h) // 2)
    for (pic, label), w, col in zip(panels, widths, cols):
        canvas.paragraph(x, y, label, size, col, align="center" if col > w else "left")
        canvas.paste(pic, x + (col - w) // 2, y + head, scale)
        x += col + gap


def _kernel_grid_layout(n: int, kernel: tuple[int, int], room: tuple[float, float], gap_ratio: float = 0.25
                        ) -> tuple[int, int]:
    """``(cols, scale)``: the columns and whole enlargement that draw ``n`` kernels of
    ``(kh, kw)`` largest inside ``room`` ``(w, h)``."""
    best = (max(1, n), 1)
    best_scale = 0
    kh, kw = kernel
    for cols in range(1, n + 1):
        rows = -(-n // cols)
        for scale in range(64, 0, -1):
            gap = max(1, int(scale * gap_ratio))
            if cols * (kw * scale + gap) - gap <= room[0] and rows * (kh * scale + gap) - gap <= room[1]:
                if scale > best_scale:
                    best, best_scale = (cols, scale), scale
                break
    return best


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}" + ("" if n == 1 else "s")


def kernel_caption(filters: FilterSet) -> str:
    """What this layer's kernels are, measured: how many, their size, how many are oriented edge
    and stripe detectors (how many grey, at how many of four orientations) and what the others
    are (colour or grey blobs, or noise-like), and the structure score."""
    n, (kh, kw) = len(filters), filters.kernel_size
    ks, ko = filters.structure, filters.orientation
    colour = filters.colorfulness >= 1 / 3
    noisy = ks.scores <= ks.noise_p99
    head = f"{n} kernels of {kh}x{kw}"
    if ko is None:
        return (f"{head}, too small to have an orientation: {int(colour.sum())} colour, {n - int(colour.sum())} grey; "
                f"structure {ks.mean:.2f} (0 = white noise, 1 = one clean pattern).")
    rest = ~ko.oriented
    parts = [_count(int((rest & colour & ~noisy).sum()), "colour blob"),
             _count(int((rest & ~colour & ~noisy).sum()), "grey blob")]
    if (rest & noisy).any():
        parts.append(f"{int((rest & noisy).sum())} no more structured than noise")
    oriented = (f"{_count(ko.count, 'oriented edge and stripe detector')} ({filters.grey_oriented} grey) at "
                f"{ko.orientations()} of 4 orientations" if ko.count else "none oriented (no edge or stripe detector)")
    return (f"{head}: {oriented}; the other {int(rest.sum())}: {', '.join(parts)}. "
            f"Structure {ks.mean:.2f} (0 = white noise, 1 = one clean pattern).")


def _kernels_slide(filters: FilterSet, order: np.ndarray) -> SlideContent:
    def draw(canvas: TextCanvas, box: Box) -> None:
        x0, y0, x1, y1 = box
        cols, scale = _kernel_grid_layout(len(filters), filters.kernel_size, (x1 - x0, y1 - y0))
        grid = grid_image(filters.images[order], cols, scale, max(1, scale // 4))
        canvas.paste(grid, x0 + (x1 - x0 - grid.shape[1]) // 2, y0 + (y1 - y0 - grid.shape[0]) // 2)

    return SlideContent(draw, kernel_caption(filters) + " Ordered by colourfulness.")


def _epoch_stages(model: nn.Module, snapshots: dict[int, dict], max_panels: int) -> list[tuple[str, FilterSet]]:
    epochs = list(snapshots)
    if len(epochs) > max_panels - 1:
        picks = np.unique(np.round(np.linspace(0, len(epochs) - 1, max_panels - 1)).astype(int))
        epochs = [epochs[i] for i in picks]
    stages = [("initial" if e == 0 else f"epoch {e}", first_layer_filters_from_state(model, snapshots[e], "per_filter"))
              for e in epochs]
    stages.append(("final", first_layer_filters(model, normalize="per_filter")))
    return stages


def kernels_over_epochs_png(model: nn.Module, snapshots: dict[int, dict], order: np.ndarray | None = None,
                            per_row: int = 4, panel_width: int = 360, max_panels: int = 8) -> Image.Image:
    """The first-layer kernels at the saved epochs and at the end, side by side (``per_row``
    grids a row, the row at least 1,200 px wide), each labelled ("initial" for epoch 0), in
    ``order``, each filter min-max scaled. At most ``max_panels``: with more snapshots, the
    first, the last and evenly spaced ones between."""
    stages = _epoch_stages(model, snapshots, max_panels)
    per = min(per_row, len(stages))
    panel_width = max(panel_width, -(-(1200 - 24 * (per - 1)) // per))
    panels = [_panel(lecture_grid(f, order, min_width=panel_width), label, panel_width) for label, f in stages]
    return _stack([_row(panels[i:i + per_row]) for i in range(0, len(panels), per_row)])


def _epochs_slide(stages: list[tuple[str, FilterSet]], order: np.ndarray) -> SlideContent:
    def draw(canvas: TextCanvas, box: Box) -> None:
        x0, y0, x1, y1 = box
        n = len(stages)
        f0 = stages[0][1]
        lh = line_height(LABEL_PX) + 8
        best = None
        for per_row in range(1, n + 1):
            rows = -(-n // per_row)
            room = ((x1 - x0 - 32 * (per_row - 1)) / per_row, (y1 - y0 - rows * lh - 24 * (rows - 1)) / rows)
            cols, scale = _kernel_grid_layout(len(f0), f0.kernel_size, room)
            if best is None or scale > best[2]:
                best = (per_row, cols, scale)
        per_row, cols, scale = best
        grids = [(label, grid_image(f.images[order], cols, scale, max(1, scale // 4))) for label, f in stages]
        gw, gh = grids[0][1].shape[1], grids[0][1].shape[0]
        rows = -(-n // per_row)
        total_w = min(n, per_row) * gw + 32 * (min(n, per_row) - 1)
        total_h = rows * (gh + lh) + 24 * (rows - 1)
        left, top = x0 + (x1 - x0 - total_w) // 2, y0 + max(0, (y1 - y0 - total_h) // 2)
        for i, (label, grid) in enumerate(grids):
            r, c = divmod(i, per_row)
            x, y = left + c * (gw + 32), top + r * (gh + lh + 24)
            canvas.text(x + gw / 2, y, label, LABEL_PX, align="center")
            canvas.paste(grid, x, y + lh)

    first, last = stages[0][1], stages[-1][1]
    facts = [f"structure {first.structure.mean:.2f} at {'initialisation' if stages[0][0] == 'initial' else stages[0][0]}, {last.structure.mean:.2f} at the end "
             f"(0 = white noise)"]
    if first.orientation is not None and last.orientation is not None:
        facts.append(f"oriented kernels {first.orientation.count} then {last.orientation.count} of {len(last)}")
    return SlideContent(draw, f"The same {len(last)} kernels saved during training ({len(stages) - 1} snapshots "
                              f"and the final ones): {'; '.join(facts)}.")


def _feature_maps_slide(grid_rgb: np.ndarray, fm, shown: int, what: str) -> SlideContent:
    maps = fm.maps[0]
    silent = int((np.abs(maps).reshape(len(maps), -1).max(1) == 0).sum())
    h, w = maps.shape[1:]

    def draw(canvas: TextCanvas, box: Box) -> None:
        x0, y0, x1, y1 = box
        scale = _fit_scale((grid_rgb.shape[1], grid_rgb.shape[0]), (x1 - x0, y1 - y0))
        canvas.paste(grid_rgb, x0 + (x1 - x0 - grid_rgb.shape[1] * scale) // 2,
                     y0 + (y1 - y0 - grid_rgb.shape[0] * scale) // 2, scale)

    silent_text = f"; {silent} of {len(maps)} channels are silent (all zero) on it" if silent else ""
    return SlideContent(draw, f"{fm.layer}: its {shown} most active of {len(maps)} channels ({h}x{w} maps) on "
                              f"{what}, strongest first, each scaled on its own (white: strongest){silent_text}.")


def _half_mass_side(field: np.ndarray, cy: float, cx: float) -> int:
    """The side of the smallest square around ``(cy, cx)`` holding half of ``field``'s sum."""
    total = float(field.sum())
    if total <= 0:
        return 0
    h, w = field.shape
    for r in range(max(h, w)):
        t, b = max(0, int(round(cy - r))), min(h, int(round(cy + r)) + 1)
        left, right = max(0, int(round(cx - r))), min(w, int(round(cx + r)) + 1)
        if field[t:b, left:right].sum() >= total / 2:
            return 2 * r + 1
    return max(h, w)


def _receptive_field_slide(ckpt: Checkpoint, picture: np.ndarray, layer: str, channel: int) -> SlideContent:
    """The centre unit of ``layer``'s ``channel`` on ``picture``: its theoretical field (red box,
    centre dot) beside its effective field (``|d unit / d pixel|`` as a glow over the image)."""
    model, meta = ckpt.model, ckpt.meta
    rf = layer_rf(model, layer, meta.input_size)
    uy, ux = rf.out_size[0] // 2, rf.out_size[1] // 2
    box_ = unit_box(rf, uy, ux, meta.input_size)
    erf = gradient_rf(model, layer, channel, uy, ux, image=picture, norm=meta.normalization)
    peak = float(erf.max())
    glow_small = overlay(picture, erf / peak if peak > 0 else erf, 0.6, "hot")
    cy, cx = rf.center(uy, ux)
    half = _half_mass_side(np.asarray(erf, np.float64), cy, cx)
    side = f"{rf.size[0]:.0f}x{rf.size[1]:.0f}"

    def draw(canvas: TextCanvas, box: Box) -> None:
        x0, y0, x1, y1 = box
        room = ((x1 - x0 - 60) / 2, y1 - y0 - 3 * line_height(LABEL_PX) - 10)
        f = _fit_scale((picture.shape[1], picture.shape[0]), room)
        big = np.repeat(np.repeat(np.asarray(picture, np.uint8), f, 0), f, 1)
        theory = dot(outline(big, box_, f, thickness=max(3, f // 3)), cy, cx, f, radius=max(3, f // 2))
        glow = np.repeat(np.repeat(glow_small, f, 0), f, 1)
        draw_panels(canvas, box, [(theory, f"in theory: {side} px (red box)"),
                                  (glow, "in practice: |d unit / d pixel| (bright: moves it most)")], gap=60,
                    max_scale=1)

    return SlideContent(draw, f"{layer}, channel {channel}, its centre unit ({uy}, {ux}): it can see {side} px in "
                              f"theory; half of its gradient lies within the central {half}x{half} px.")


def _convolution_slide(ckpt: Checkpoint, picture: np.ndarray, channel: int = 0) -> SlideContent:
    """Kernel ``channel`` of the first convolution on ``picture``: the padded input with the
    window of the centre output pixel, the kernel, and the whole output map with that pixel."""
    out = conv_output(ckpt.model, picture, ckpt.meta.normalization, channel)
    t, b, l, r = out.padding
    padded = np.pad(np.asarray(picture, dtype=np.uint8), ((t, b), (l, r), (0, 0)), constant_values=160)
    oh, ow = out.out_size
    pos = out.position(oh // 2, ow // 2)
    s = out.step(pos)
    k = out.kernel
    kimg = np.moveaxis(k[:3] if len(k) >= 3 else np.repeat(k[:1], 3, 0), 0, -1)
    kimg = np.rint((kimg - kimg.min()) / max(float(kimg.max() - kimg.min()), 1e-12) * 255).astype(np.uint8)
    omap = out.output
    grey = colorize((omap - omap.min()) / max(float(omap.max() - omap.min()), 1e-12), "gray")
    (kh, kw), sy = out.kernel_size, out.stride[0]
    bias = f" + bias {s.bias:.3f}" if s.has_bias else ""

    def draw(canvas: TextCanvas, box: Box) -> None:
        x0, y0, x1, y1 = box
        room_h = y1 - y0 - 3 * line_height(LABEL_PX) - 10
        room_w = (x1 - x0 - 2 * 40) * 0.4
        f = _fit_scale((padded.shape[1], padded.shape[0]), (room_w, room_h))
        window = outline(np.repeat(np.repeat(padded, f, 0), f, 1), out.window(pos), f)
        of = _fit_scale((grey.shape[1], grey.shape[0]), (room_w, room_h))
        obig = outline(np.repeat(np.repeat(grey, of, 0), of, 1), (s.row, s.col, s.row + 1, s.col + 1), of,
                       thickness=max(2, of // 3))
        kf = _fit_scale((kw, kh), ((x1 - x0) * 0.2 - 40, room_h))
        kbig = np.repeat(np.repeat(kimg, kf, 0), kf, 1)
        draw_panels(canvas, box, [(window, f"input, {t} px of padding (grey), stride {sy}"),
                                  (kbig, f"kernel {channel}: {out.in_channels}x{kh}x{kw}"),
                                  (obig, f"output pixel ({s.row}, {s.col})")], max_scale=1)

    return SlideContent(draw, f"Kernel {channel} ({out.in_channels}x{kh}x{kw}) slides over the padded image at "
                              f"stride {sy}: output pixel ({s.row}, {s.col}) = {s.num_products} products{bias} = "
                              f"{s.value:.3f}; its whole output is a {oh}x{ow} map.")


def draw_mistakes(canvas: TextCanvas, box: Box, images: np.ndarray, labels: np.ndarray, probs: np.ndarray,
                  classes: list[str], n: int = 8, min_thumb: int = 120) -> int:
    """The most confident mistakes inside ``box``: thumbnails (a whole multiple of the image size,
    at least ``min_thumb`` px where the box allows) with the true class, the predicted one and
    its probability beside each, in full. Returns how many were drawn."""
    x0, y0, x1, y1 = box
    pred = probs.argmax(1)
    wrong = np.flatnonzero(pred != np.asarray(labels))
    wrong = wrong[np.argsort(-probs[wrong, pred[wrong]], kind="stable")]
    lh = line_height(LABEL_PX)
    canvas.text(x0, y0, "most confident mistakes", LABEL_PX, bold=True)
    y0 += lh + 12
    if not len(wrong):
        canvas.text(x0, y0, "none: every image here is classified right", LABEL_PX, (90, 90, 90))
        return 0
    side = images.shape[1]
    thumb = max(side, -(-min_thumb // side) * side)
    cols = max(1, min(2, int((x1 - x0 + 24) // (thumb + 12 + 190 + 24))))  # 190 px: "taken for" and a name
    col_w = (x1 - x0 - 24 * (cols - 1)) / cols
    rows = max(1, int((y1 - y0 + 14) // (thumb + 14)))
    shown = wrong[:min(n, rows * cols)]
    for i, w in enumerate(shown):
        c, r = divmod(i, rows)
        x, y = int(x0 + c * (col_w + 24)), int(y0 + r * (thumb + 14))
        canvas.paste(fitted_thumbnail(images[w], thumb), x, y)
        tx, tw = x + thumb + 12, col_w - thumb - 12
        ty = canvas.paragraph(tx, y, class_display_name(classes[labels[w]]), LABEL_PX, tw)
        ty = canvas.paragraph(tx, ty, f"taken for {class_display_name(classes[pred[w]])}", LABEL_PX, tw,
                              fill=DIFFERENT)
        canvas.text(tx, ty, f"at {probs[w, pred[w]]:.0%}", LABEL_PX, (90, 90, 90))
    return len(shown)


def _mistakes_slide(conf, images: np.ndarray, labels: np.ndarray, logits: np.ndarray,
                    classes: list[str]) -> SlideContent:
    probs = softmax(logits)

    def draw(canvas: TextCanvas, box: Box) -> None:
        x0, y0, x1, y1 = box
        k = len(classes)
        side = images.shape[1]
        thumb_w = max(side, -(-120 // side) * side) + 12 + 300
        room = x1 - x0 - thumb_w - 48
        w, _ = draw_confusion(canvas, (x0, y0, x0 + int(room), y1), conf, 20, max_cell=56 if k <= 12 else 40)
        draw_mistakes(canvas, (x0 + w + 48, y0, x1, y1), images, labels, probs, classes)

    worst = most_confused(conf)
    pair = "" if worst is None else (f"; most confused: {class_display_name(classes[worst[0]])} taken for "
                                     f"{class_display_name(classes[worst[1]])} ({_count(worst[2], 'image')})")
    wrong = int((probs.argmax(1) != np.asarray(labels)).sum())
    return SlideContent(draw, f"Accuracy {conf.accuracy:.1%} on {len(labels):,} held-out images ({wrong} mistakes)"
                              f"{pair}. Rows: the true class; columns: the predicted one.")


def lecture_pictures(ckpt: Checkpoint, data: str | Path | None = None, image: str | Path | None = None,
                     layer: str | None = None, k: int = 6, progress: bool = False, deck: bool = False,
                     figures: bool = True, report: Report | None = None, queries: int = 5,
                     seed: int = 0) -> LecturePictures:
    """The lecture figures of ``ckpt`` in memory (see :func:`write_lecture_figures`); with
    ``deck``, also what each slide shows; without ``figures``, no Plotly figures.
    ``report(done, total)`` is called as each stage ends."""
    if layer is not None:
        _check_layer(ckpt, layer)
    given_picture = _read_picture(image, ckpt.meta.preprocess) if image is not None else None
    tell = report or (lambda done, total: None)
    res = LecturePictures()
    model, meta = ckpt.model, ckpt.meta

    filters = first_layer_filters(model, normalize="per_filter")
    order = filters.order_by("color")
    res.png["kernels"] = Image.fromarray(lecture_grid(filters, order))  # slide-wide, sharp pixels
    if figures:
        res.figs["kernels"] = filter_grid_figure(filters, order=order)
    if deck:
        res.slides["kernels"] = _kernels_slide(filters, order)
    tell(1, _STAGES)

    try:
        snaps = load_snapshots(ckpt)
    except CheckpointError as e:
        snaps, res.missing["kernels_over_epochs"] = {}, str(e)
    if snaps:
        try:
            res.png["kernels_over_epochs"] = kernels_over_epochs_png(model, snaps, order)
            if deck:
                res.slides["kernels_over_epochs"] = _epochs_slide(_epoch_stages(model, snaps, 8), order)
        except ValueError as e:  # snapshots without the first layer's weights
            res.missing["kernels_over_epochs"] = f"the snapshots cannot be drawn: {e}"
    else:
        res.missing.setdefault("kernels_over_epochs", "no epoch snapshots in this checkpoint "
                                                      "(train with --snapshot-epochs to save some)")
    tell(2, _STAGES)

    test: ImageDataset | None = None
    held = "test"
    if data is not None:
        held, test = held_out_data(ckpt.meta, data, progress=progress)
    tell(3, _STAGES)
    if given_picture is not None:
        picture, what = given_picture, f"the image {Path(image).name}"
    elif test is not None and len(test):
        picture = test.images[0]
        known = test.labelled and test.labels[0] >= 0
        what = (f"a held-out image of {class_display_name(meta.classes[test.labels[0]])}" if known
                else "the first held-out image")
    else:
        picture = None
    if picture is not None:
        layer = layer or default_feature_layer(ckpt)
        fm = feature_maps(model, picture, layer, meta.normalization)
        grid = channel_grid(fm.maps[0], fm.order[0], max_channels=64)
        rgb = colorize(np.nan_to_num(grid, nan=1.0), "gray")
        scale = max(4, -(-1200 // rgb.shape[1]))  # at least 1,200 px wide
        res.png["feature_maps"] = Image.fromarray(rgb).resize((rgb.shape[1] * scale, rgb.shape[0] * scale),
                                                              Image.NEAREST)
        if figures:
            res.figs["feature_maps"] = feature_grid_figure(fm)
        tell(4, _STAGES)
        if deck:
            res.slides["feature_maps"] = _feature_maps_slide(rgb, fm, min(64, fm.maps.shape[1]), what)
            _deck_pictures(ckpt, picture, layer, int(fm.order[0, 0]), res)
    else:
        for name in ("feature_maps", "receptive_field", "convolution"):
            res.missing[name] = "no image: give --image, or data with test images (--data)"
        tell(4, _STAGES)
    tell(5, _STAGES)

    if test is not None and test.labelled and data is not None:
        _neighbours_and_confusion(ckpt, data, test, res, k, progress, held, figures, deck, queries, seed)
    else:
        why = "no labelled held-out images: give --data" if data is None else "the held-out images have no labels"
        res.missing["neighbours"] = res.missing["mistakes"] = why
    tell(6, _STAGES)
    return res


def _deck_pictures(ckpt: Checkpoint, picture: np.ndarray, layer: str, channel: int, res: LecturePictures) -> None:
    """The receptive field and convolution slides of the deck, into ``res.slides`` (or why not
    into ``res.missing``: a model whose geometry or first convolution cannot be followed)."""
    try:
        res.slides["receptive_field"] = _receptive_field_slide(ckpt, picture, layer, channel)
    except (ValueError, RuntimeError) as e:
        res.missing["receptive_field"] = f"cannot follow {layer}'s receptive field: {e}"
    try:
        res.slides["convolution"] = _convolution_slide(ckpt, picture, 0)
    except (ValueError, RuntimeError, TypeError) as e:
        res.missing["convolution"] = f"cannot show the first convolution: {e}"


def neighbours_caption(result: QueryNeighbours, dims: int, pixel_same: int | None = None) -> str:
    """The Neighbours slide's measured facts: how many of the neighbours share their query's
    class in the features (and, given ``pixel_same``, in raw pixels)."""
    total = result.same.size
    text = (f"{len(result)} held-out images (left) and their {result.k} nearest training images in the {dims:,}-d "
            f"penultimate features: {result.same_count} of {total} ({result.same_count / max(total, 1):.0%}) share "
            f"the query's class")
    if pixel_same is not None:
        text += f"; nearest in raw pixels, {pixel_same} of {total} ({pixel_same / max(total, 1):.0%}) would"
    return text + ". Red frame, \u2717: another class."


def _neighbours_and_confusion(ckpt: Checkpoint, data: str | Path, test: ImageDataset, res: LecturePictures,
                              k: int, progress: bool, held: str, figures: bool, deck: bool, queries: int = 5,
                              seed: int = 0) -> None:
    """AlexNet's figure 4 (``queries`` held-out images and their ``k`` nearest training images in
    the penultimate features) and the confusion matrix of the held-out split (and, for the deck,
    its most confident mistakes) into ``res``."""
    meta = ckpt.meta
    train = checkpoint_data(meta, data, "train", progress=progress)
    tr = cached_features(ckpt, train, "train", progress=progress)
    te = cached_features(ckpt, test, held, progress=progress)
    index = NeighbourIndex(tr.features, metrics=("euclidean",))
    classes = list(meta.classes)
    rows = query_neighbours(index, te.features, train.labels, test.labels, count=queries, k=k, seed=seed)
    pix = NeighbourIndex.from_images(train.images)
    by_pixels = pix.query(pixel_vectors(test.images[rows.queries]), k)
    pixel_same = int((np.asarray(train.labels)[by_pixels.indices] == rows.query_labels[:, None]).sum())
    if figures:
        q = int(rows.queries[0])
        probs = softmax(te.logits[q:q + 1])[0]
        top = [(classes[i], float(probs[i])) for i in np.argsort(-probs)[:5]]
        res.figs["neighbours"] = neighbours_figure(
            test.images[q], top, train.images[rows.indices[0]], train.images[by_pixels.indices[0]],
            [classes[train.labels[i]] for i in rows.indices[0]],
            [classes[train.labels[i]] for i in by_pixels.indices[0]],
            title=f"test image of {classes[test.labels[q]]}: nearest training images")
    caption = neighbours_caption(rows, tr.features.shape[1], pixel_same)
    res.png["neighbours"] = query_rows_picture(rows, test.images, train.images, classes, 1600, 900, caption).image
    if deck:
        res.slides["neighbours"] = SlideContent(
            lambda canvas, box: draw_query_rows(canvas, box, rows, test.images, train.images, classes), caption,
            "side")

    conf = confusion_from_logits(test.labels, te.logits, classes)
    res.png["confusion"] = confusion_picture(conf)
    if figures:
        res.figs["confusion"] = confusion_heatmap(conf, normalised=True)
    if deck:
        res.slides["mistakes"] = _mistakes_slide(conf, test.images, test.labels, te.logits, classes)


def confusion_picture(conf, width: int = 1600) -> Image.Image:
    """The confusion matrix as a ``width``-px picture (at least 1,200): a title with the accuracy
    and the most confused pair, then :func:`~cnnviz.figures.confusion.draw_confusion`."""
    width = max(1200, width)
    k = conf.num_classes
    cell = 56 if k <= 12 else 40
    height = 140 + line_height(20) + 8 + k * cell
    canvas = TextCanvas(width, height)
    worst = most_confused(conf)
    pair = "" if worst is None else (f"; most confused: {class_display_name(conf.classes[worst[0]])} taken for "
                                     f"{class_display_name(conf.classes[worst[1]])} ({_count(worst[2], 'image')})")
    top = canvas.paragraph(24, 16, f"Confusion matrix: accuracy {conf.accuracy:.1%} on {int(conf.support.sum()):,} "
                                   f"images{pair}", 24, width - 48, bold=True) + 16
    w, h = draw_confusion(canvas, (24, top, width - 24, height - 12), conf, 20, max_cell=cell)
    return canvas.image.crop((0, 0, width, min(height, top + h + 16)))


# -- the deck: one slide per lecture step -----------------------------------------------------

SLIDE_SIZE = (1600, 900)
TITLE_PX, CAPTION_PX, SIDE_CAPTION_PX, FOOTER_PX = 40, 24, 22, 20


@dataclass
class Slide:
    """One slide: its lecture step, its number (1-based, among the slides drawn), picture and
    ``texts``: every line of text on it, as drawn (see :class:`~cnnviz.figures.pictures.DrawnText`)."""

    step: LectureStep
    number: int
    image: Image.Image
    texts: tuple[DrawnText, ...] = ()
    _png: bytes | None = None

    @property
    def file_name(self) -> str:
        return f"{self.number:02d}_{self.step.name}.png"

    def png(self) -> bytes:
        if self._png is None:
            buf = io.BytesIO()
            self.image.save(buf, "PNG", optimize=True)
            self._png = buf.getvalue()
        return self._png


@dataclass
class LectureDeck:
    """The lecture sequence as slides (steps without a picture left out, with the reason in
    ``missing``): PNGs and one offline HTML file (every image a ``data:`` URI, arrow keys and
    PageUp/PageDown to move, a slide counter)."""

    title: str
    slides: list[Slide]
    missing: dict[str, str] = field(default_factory=dict)

    def html(self) -> str:
        return deck_html(self.title, self.slides)

    def zip_bytes(self) -> bytes:
        """``deck.html`` and ``deck/NN_step.png`` as a zip, in memory."""
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:  # PNGs are compressed already
            z.writestr("deck.html", self.html())
            for s in self.slides:
                z.writestr(f"deck/{s.file_name}", s.png())
        return buf.getvalue()

    def write(self, out: str | Path) -> tuple[Path, list[Path]]:
        """``out/deck.html`` and ``out/deck/NN_step.png`` (slides of an earlier deck there are
        removed first); returns their paths."""
        out = Path(out)
        folder = out / "deck"
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("[0-9][0-9]_*.png"):
            old.unlink()
        pngs = []
        for s in self.slides:
            (folder / s.file_name).write_bytes(s.png())
            pngs.append(folder / s.file_name)
        (out / "deck.html").write_text(self.html(), encoding="utf-8")
        return out / "deck.html", pngs


def compose_slide(content: SlideContent, title: str, footer: str, size: tuple[int, int] = SLIDE_SIZE,
                  margin: int = 48) -> TextCanvas:
    """A ``size`` slide drawn at its final resolution: ``title`` (40 px) and the content's
    caption (24 px, wrapped, never cut) on top, or side by side for a ``"side"`` header (22 px); the
    content drawn in the room left; ``footer`` (20 px, grey) at the bottom, or under the title
    for a side header."""
    canvas = TextCanvas(*size)
    w, h = size
    if content.header == "side":
        title_w = max(text_width(title, TITLE_PX, True), text_width(footer, FOOTER_PX)) + 8
        canvas.text(margin, 10, title, TITLE_PX, (20, 20, 20), bold=True)
        left_bottom = canvas.text(margin, 10 + line_height(TITLE_PX, True) + 2, footer, FOOTER_PX, (130, 130, 130))[3]
        cap_bottom = canvas.paragraph(margin + title_w + 32, 12, content.caption, SIDE_CAPTION_PX,
                                      w - 2 * margin - title_w - 32, fill=(60, 60, 60))
        top, bottom = max(left_bottom, cap_bottom) + 8, h - 6
    else:
        canvas.text(margin, 24, title, TITLE_PX, (20, 20, 20), bold=True)
        top = canvas.paragraph(margin, 24 + line_height(TITLE_PX, True) + 6, content.caption, CAPTION_PX,
                               w - 2 * margin, fill=(60, 60, 60)) + 20
        bottom = h - 24 - line_height(FOOTER_PX) - 12
        canvas.text(margin, h - 20 - line_height(FOOTER_PX), footer, FOOTER_PX, (130, 130, 130))
    content.draw(canvas, (margin, top, w - margin, bottom))
    return canvas


def lecture_deck(ckpt: Checkpoint, pictures: LecturePictures) -> LectureDeck:
    """One slide per step of :data:`~cnnviz.lecture_sequence.LECTURE_SEQUENCE` that has content
    in ``pictures.slides`` (from :func:`lecture_pictures` with ``deck=True``), in order; each
    slide's caption states what this model's picture shows."""
    chosen = [(step, pictures.slides[step.name]) for step in LECTURE_SEQUENCE if step.name in pictures.slides]
    missing = {s.name: pictures.missing.get(s.name, "no picture") for s in LECTURE_SEQUENCE
               if s.name not in pictures.slides}
    total = len(chosen)
    slides = []
    for i, (step, content) in enumerate(chosen):
        canvas = compose_slide(content, step.title, f"{i + 1} / {total}   {ckpt.name} ({ckpt.meta.arch})")
        slides.append(Slide(step, i + 1, canvas.image, tuple(canvas.texts)))
    return LectureDeck(f"{ckpt.name}: a CNN made visible", slides, missing)


def build_lecture_deck(ckpt: Checkpoint, data: str | Path | None = None, k: int = 6,
                       report: Report | None = None) -> LectureDeck:
    """The deck of ``ckpt`` in memory (nothing written to disk but the feature caches the
    dashboard shares); ``report(done, total)`` as each stage ends, for a progress bar."""
    pictures = lecture_pictures(ckpt, data, k=k, deck=True, figures=False, report=report)
    deck = lecture_deck(ckpt, pictures)
    if report is not None:
        report(_STAGES, _STAGES)
    return deck


_DECK_SCRIPT = """(function () {
  var slides = document.querySelectorAll("section.slide"), count = document.getElementById("count"), at = 0;
  function show(i) {
    at = Math.max(0, Math.min(slides.length - 1, i));
    for (var k = 0; k < slides.length; k++) slides[k].className = k === at ? "slide on" : "slide";
    count.textContent = (at + 1) + " / " + slides.length;
    history.replaceState(null, "", "#" + (at + 1));
  }
  document.addEventListener("keydown", function (e) {
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    var go = {ArrowRight: 1, PageDown: 1, " ": 1, ArrowLeft: -1, PageUp: -1}[e.key];
    if (go) { show(at + go); e.preventDefault(); }
    else if (e.key === "Home") show(0);
    else if (e.key === "End") show(slides.length - 1);
  });
  document.addEventListener("click", function (e) { show(at + (e.clientX < window.innerWidth / 3 ? -1 : 1)); });
  var n = parseInt(location.hash.slice(1), 10);
  show(isNaN(n) ? 0 : n - 1);
})();"""


def deck_html(title: str, slides: list[Slide]) -> str:
    """One self-contained HTML file: each slide's PNG as a ``data:`` URI, the navigation script
    inline; nothing is fetched from anywhere."""
    esc = html_lib.escape
    sections = "\n".join(
        f'<section class="slide" id="s{s.number}"><img alt="{esc(s.step.title)}" '
        f'src="data:image/png;base64,{base64.b64encode(s.png()).decode("ascii")}"></section>' for s in slides)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<style>
html, body {{ margin: 0; height: 100%; background: #fff; overflow: hidden; }}
section.slide {{ display: none; width: 100vw; height: 100vh; align-items: center; justify-content: center; }}
section.slide.on {{ display: flex; }}
section.slide img {{ max-width: 100vw; max-height: 100vh; object-fit: contain; }}
#count {{ position: fixed; right: 1em; bottom: .6em; color: #999; font: 14px sans-serif; }}
</style></head>
<body>
{sections}
<div id="count" title="arrow keys or PageUp/PageDown: previous/next slide; Home/End: first/last"></div>
<script>{_DECK_SCRIPT}</script>
</body></html>
"""


def write_lecture_figures(ckpt: Checkpoint, out_dir: str | Path, data: str | Path | None = None,
                          image: str | Path | None = None, layer: str | None = None, k: int = 6,
                          progress: bool = False, deck: bool = False) -> LectureFigures:
    """Write the lecture figures of ``ckpt`` into ``out_dir`` and return their paths: kernels
    always, their evolution when the checkpoint holds epoch snapshots, feature maps for an image
    (given, or the first held-out image), neighbours and the confusion matrix with labelled data.
    With ``deck``, also the lecture sequence as slides: ``deck/NN_step.png`` and ``deck.html``.

    ``layer`` and ``image`` are checked before anything is written: an unknown layer or an
    unreadable image raises :class:`FigureError` listing what can be used."""
    pictures = lecture_pictures(ckpt, data, image, layer, k, progress, deck=deck)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    res = LectureFigures()
    for name, picture in pictures.png.items():
        picture.save(out / f"{name}.png")
        res.png[name] = out / f"{name}.png"
    for name, fig in pictures.figs.items():
        res.html[name] = _save_html(fig, out / f"{name}.html")
    if deck:
        made = lecture_deck(ckpt, pictures)
        res.deck, res.slides = made.write(out)
        res.missing = made.missing
    return res

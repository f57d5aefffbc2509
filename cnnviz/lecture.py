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
from PIL import Image, ImageDraw, ImageFont
from torch import nn

from .checkpoints import Checkpoint, CheckpointError, checkpoint_data, held_out_data, load_snapshots
from .data import IMAGE_EXTENSIONS, ImageDataset, Preprocess, UnreadableImage, decode_image
from .evaluate import softmax
from .figures.attribution import colorize, overlay
from .figures.clicks import dot, enlarge, outline
from .figures.confusion import confusion_heatmap
from .figures.feature_maps import feature_grid_figure
from .figures.filters import filter_grid_figure, lecture_grid
from .figures.neighbours import neighbours_figure
from .hooks import resolve_layers
from .inspect.confusion import confusion_from_logits
from .inspect.convolution import conv_output
from .inspect.effective_rf import gradient_rf
from .inspect.feature_maps import channel_grid, feature_maps
from .inspect.features import cached_features
from .inspect.filters import first_layer_filters, first_layer_filters_from_state
from .inspect.neighbours import NeighbourIndex
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


def _labelled_strip(images: list[np.ndarray], captions: list[str], scale: int, title: str) -> Image.Image:
    """Images side by side, each with a caption above; a title line on top."""
    tiles = [Image.fromarray(im).resize((im.shape[1] * scale, im.shape[0] * scale), Image.NEAREST) for im in images]
    w = sum(t.width for t in tiles) + 6 * (len(tiles) + 1)
    h = max(t.height for t in tiles) + 40
    canvas = Image.new("RGB", (max(w, 300), h), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((6, 2), title, fill="black")
    x = 6
    for t, cap in zip(tiles, captions):
        draw.text((x, 16), cap[: max(4, t.width // 6)], fill="black")
        canvas.paste(t, (x, 34))
        x += t.width + 6
    return canvas


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


def confusion_png(counts: np.ndarray, classes: list[str], cell: int = 28) -> Image.Image:
    """Row-normalised confusion matrix as a picture: true classes down, predicted across."""
    k = len(classes)
    rates = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    label_w = 8 * max(len(c) for c in classes) + 10
    img = Image.new("RGB", (label_w + k * cell + 10, label_w + k * cell + 10), "white")
    draw = ImageDraw.Draw(img)
    colours = colorize(1 - rates, "gray")  # white = never, black = always
    for i in range(k):
        draw.text((4, label_w + i * cell + cell // 3), classes[i], fill="black")
        for j in range(k):
            x0, y0 = label_w + j * cell, label_w + i * cell
            draw.rectangle([x0, y0, x0 + cell - 1, y0 + cell - 1], fill=tuple(int(v) for v in colours[i, j]))
            if counts[i, j]:
                draw.text((x0 + 3, y0 + cell // 3), str(int(counts[i, j])),
                          fill="white" if rates[i, j] > 0.5 else "black")
    for j in range(k):  # column labels, rotated
        lbl = Image.new("RGB", (label_w, cell), "white")
        ImageDraw.Draw(lbl).text((2, cell // 3), classes[j], fill="black")
        img.paste(lbl.rotate(90, expand=True), (label_w + j * cell, 0))
    return img


# -- the figures, in memory first: written by write_lecture_figures, reused by the deck ----------

@dataclass
class LecturePictures:
    """What :func:`write_lecture_figures` writes, still in memory: ``png`` pictures and ``figs``
    Plotly figures by name, ``extra`` pictures only the deck shows (``receptive_field``,
    ``convolution``, ``mistakes``), and ``missing``: why a lecture step has no picture."""

    png: dict[str, Image.Image] = field(default_factory=dict)
    figs: dict[str, object] = field(default_factory=dict)
    extra: dict[str, Image.Image] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)


Report = Callable[[int, int], None]
_STAGES = 7  # kernels, their evolution, held-out images, feature maps, field and convolution, neighbours, slides


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's built-in font at ``size`` px (its small bitmap font without FreeType)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # Pillow without FreeType
        return ImageFont.load_default()


def _text_width(draw: ImageDraw.ImageDraw, text: str, font) -> int:
    left, _, right, _ = draw.textbbox((0, 0), text, font=font)
    return right - left


def _panel(picture: np.ndarray | Image.Image, label: str, width: int, size: int = 22) -> Image.Image:
    """``picture`` enlarged by a whole factor (nearest neighbour) to about ``width`` px, a label above."""
    img = picture if isinstance(picture, Image.Image) else Image.fromarray(np.asarray(picture, dtype=np.uint8))
    f = max(1, width // max(img.width, 1))
    img = img.resize((img.width * f, img.height * f), Image.NEAREST)
    font = _font(size)
    text_w = _text_width(ImageDraw.Draw(img), label, font) + 4
    canvas = Image.new("RGB", (max(img.width, text_w), img.height + size + 10), "white")
    ImageDraw.Draw(canvas).text((2, 2), label, fill="black", font=font)
    canvas.paste(img, (0, size + 10))
    return canvas


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


def kernels_over_epochs_png(model: nn.Module, snapshots: dict[int, dict], order: np.ndarray | None = None,
                            per_row: int = 4, panel_width: int = 360, max_panels: int = 8) -> Image.Image:
    """The first-layer kernels at the saved epochs and at the end, side by side (``per_row``
    grids a row), each labelled ("initial" for epoch 0), in ``order``, each filter min-max
    scaled. At most ``max_panels``: with more snapshots, the first, the last and evenly spaced
    ones between."""
    epochs = list(snapshots)
    if len(epochs) > max_panels - 1:
        picks = np.unique(np.round(np.linspace(0, len(epochs) - 1, max_panels - 1)).astype(int))
        epochs = [epochs[i] for i in picks]
    stages = [("initial" if e == 0 else f"epoch {e}", first_layer_filters_from_state(model, snapshots[e], "per_filter"))
              for e in epochs]
    stages.append(("final", first_layer_filters(model, normalize="per_filter")))
    panels = [_panel(lecture_grid(f, order, min_width=panel_width), label, panel_width) for label, f in stages]
    return _stack([_row(panels[i:i + per_row]) for i in range(0, len(panels), per_row)])


def receptive_field_png(ckpt: Checkpoint, picture: np.ndarray, layer: str, channel: int) -> Image.Image:
    """The centre unit of ``layer``'s ``channel`` on ``picture``: its theoretical field (red box,
    centre dot) beside its effective field (``|d unit / d pixel|`` as a glow over the image)."""
    model, meta = ckpt.model, ckpt.meta
    rf = layer_rf(model, layer, meta.input_size)
    uy, ux = rf.out_size[0] // 2, rf.out_size[1] // 2
    box = unit_box(rf, uy, ux, meta.input_size)
    big, factor = enlarge(picture, 480)
    theory = dot(outline(big, box, factor), *rf.center(uy, ux), factor)
    erf = gradient_rf(model, layer, channel, uy, ux, image=picture, norm=meta.normalization)
    peak = float(erf.max())
    glow, _ = enlarge(overlay(picture, erf / peak if peak > 0 else erf, 0.6, "hot"), 480)
    side = f"{rf.size[0]:.0f} x {rf.size[1]:.0f}"
    return _row([_panel(theory, f"{layer}, channel {channel}, unit ({uy}, {ux}): {side} px in theory", 480),
                 _panel(glow, "in practice: |d unit / d pixel| (bright: moves it most)", 480)])


def convolution_png(ckpt: Checkpoint, picture: np.ndarray, channel: int = 0) -> Image.Image:
    """Kernel ``channel`` of the first convolution on ``picture``: the padded input with the
    window of the centre output pixel, the kernel, and the whole output map with that pixel."""
    out = conv_output(ckpt.model, picture, ckpt.meta.normalization, channel)
    t, b, l, r = out.padding
    padded = np.pad(np.asarray(picture, dtype=np.uint8), ((t, b), (l, r), (0, 0)), constant_values=160)
    oh, ow = out.out_size
    pos = out.position(oh // 2, ow // 2)
    s = out.step(pos)
    big, factor = enlarge(padded, 480)
    window = outline(big, out.window(pos), factor)
    k = out.kernel
    kimg = np.moveaxis(k[:3] if len(k) >= 3 else np.repeat(k[:1], 3, 0), 0, -1)
    kimg = (kimg - kimg.min()) / max(float(kimg.max() - kimg.min()), 1e-12)
    omap = out.output
    grey = colorize((omap - omap.min()) / max(float(omap.max() - omap.min()), 1e-12), "gray")
    obig, ofactor = enlarge(grey, 480)
    obig = outline(obig, (s.row, s.col, s.row + 1, s.col + 1), ofactor, thickness=max(2, ofactor // 3))
    (kh, kw), sy = out.kernel_size, out.stride[0]
    bias = f" + bias {s.bias:.3f}" if s.has_bias else ""
    return _row([_panel(window, f"input (padding {t}, grey), window at stride {sy}", 480),
                 _panel(np.rint(kimg * 255).astype(np.uint8), f"kernel {channel}: {out.in_channels} x {kh} x {kw}",
                        240),
                 _panel(obig, f"output pixel ({s.row}, {s.col}) = {s.num_products} products{bias} = {s.value:.3f}",
                        480)])


def mistakes_png(confusion: Image.Image, images: np.ndarray, labels: np.ndarray, logits: np.ndarray,
                 classes: list[str], n: int = 6) -> Image.Image:
    """The confusion matrix beside the ``n`` most confident mistakes (true class, predicted
    class and its probability under each)."""
    probs = softmax(logits)
    pred = probs.argmax(1)
    wrong = np.flatnonzero(pred != np.asarray(labels))
    wrong = wrong[np.argsort(-probs[wrong, pred[wrong]], kind="stable")][:n]
    conf = confusion.resize((confusion.width * 2, confusion.height * 2), Image.NEAREST)
    if not len(wrong):
        return _row([conf, _panel(np.full((8, 8, 3), 255, np.uint8), "no mistakes on these images", 200)])
    panels = [_panel(images[i], f"{classes[labels[i]][:10]} -> {classes[pred[i]][:10]} {probs[i, pred[i]]:.0%}",
                     120, 18) for i in wrong]
    strip = _stack([_row(panels[i:i + 3]) for i in range(0, len(panels), 3)])
    title = _panel(np.full((1, 1, 3), 255, np.uint8), "most confident mistakes: true -> predicted", 1)
    return _row([conf, _stack([title, strip], gap=4)], gap=48)


def lecture_pictures(ckpt: Checkpoint, data: str | Path | None = None, image: str | Path | None = None,
                     layer: str | None = None, k: int = 6, progress: bool = False, deck: bool = False,
                     figures: bool = True, report: Report | None = None) -> LecturePictures:
    """The lecture figures of ``ckpt`` in memory (see :func:`write_lecture_figures`); with
    ``deck``, also the pictures only the deck shows; without ``figures``, no Plotly figures.
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
    tell(1, _STAGES)

    try:
        snaps = load_snapshots(ckpt)
    except CheckpointError as e:
        snaps, res.missing["kernels_over_epochs"] = {}, str(e)
    if snaps:
        try:
            res.png["kernels_over_epochs"] = kernels_over_epochs_png(model, snaps, order)
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
        picture = given_picture
    elif test is not None and len(test):
        picture = test.images[0]
    else:
        picture = None
    if picture is not None:
        layer = layer or default_feature_layer(ckpt)
        fm = feature_maps(model, picture, layer, meta.normalization)
        grid = channel_grid(fm.maps[0], fm.order[0], max_channels=64)
        rgb = colorize(np.nan_to_num(grid, nan=1.0), "gray")
        res.png["feature_maps"] = Image.fromarray(rgb).resize((rgb.shape[1] * 4, rgb.shape[0] * 4), Image.NEAREST)
        if figures:
            res.figs["feature_maps"] = feature_grid_figure(fm)
        tell(4, _STAGES)
        if deck:
            _deck_pictures(ckpt, picture, layer, int(fm.order[0, 0]), res)
    else:
        for name in ("feature_maps", "receptive_field", "convolution"):
            res.missing[name] = "no image: give --image, or data with test images (--data)"
        tell(4, _STAGES)
    tell(5, _STAGES)

    if test is not None and test.labelled and data is not None:
        _neighbours_and_confusion(ckpt, data, test, res, k, progress, held, figures, deck)
    else:
        why = "no labelled held-out images: give --data" if data is None else "the held-out images have no labels"
        res.missing["neighbours"] = res.missing["mistakes"] = why
    tell(6, _STAGES)
    return res


def _deck_pictures(ckpt: Checkpoint, picture: np.ndarray, layer: str, channel: int, res: LecturePictures) -> None:
    """The receptive field and convolution pictures of the deck, into ``res.extra`` (or why not
    into ``res.missing``: a model whose geometry or first convolution cannot be followed)."""
    try:
        res.extra["receptive_field"] = receptive_field_png(ckpt, picture, layer, channel)
    except (ValueError, RuntimeError) as e:
        res.missing["receptive_field"] = f"cannot follow {layer}'s receptive field: {e}"
    try:
        res.extra["convolution"] = convolution_png(ckpt, picture, 0)
    except (ValueError, RuntimeError, TypeError) as e:
        res.missing["convolution"] = f"cannot show the first convolution: {e}"


def _neighbours_and_confusion(ckpt: Checkpoint, data: str | Path, test: ImageDataset, res: LecturePictures,
                              k: int, progress: bool, held: str, figures: bool, deck: bool) -> None:
    """Nearest training images of the first test image (features vs pixels) and the confusion
    matrix of the held-out split (and, for the deck, its most confident mistakes) into ``res``."""
    meta = ckpt.meta
    train = checkpoint_data(meta, data, "train", progress=progress)
    tr = cached_features(ckpt, train, "train", progress=progress)
    te = cached_features(ckpt, test, held, progress=progress)
    index = NeighbourIndex(tr.features, metrics=("euclidean",))
    pix = NeighbourIndex.from_images(train.images)
    q = 0
    probs = softmax(te.logits[q:q + 1])[0]
    top = [(meta.classes[i], float(probs[i])) for i in np.argsort(-probs)[:5]]
    nf = index.query(te.features[q], k)
    npix = pix.query(test.images[q].reshape(-1).astype(np.float32), k)
    if figures:
        res.figs["neighbours"] = neighbours_figure(
            test.images[q], top, train.images[nf.indices[0]], train.images[npix.indices[0]],
            [meta.classes[train.labels[i]] for i in nf.indices[0]],
            [meta.classes[train.labels[i]] for i in npix.indices[0]],
            title=f"test image of {meta.classes[test.labels[q]]}: nearest training images")
    scale = max(1, 96 // meta.input_size)
    query = _labelled_strip([test.images[q]], [meta.classes[test.labels[q]]], scale, "test image (true class)")
    bars = class_bars_png(top)
    first = Image.new("RGB", (query.width + bars.width + 12, max(query.height, bars.height)), "white")
    first.paste(query, (0, 0))
    first.paste(bars, (query.width + 12, 0))
    rows = [
        first,
        _labelled_strip(list(train.images[nf.indices[0]]), [meta.classes[train.labels[i]] for i in nf.indices[0]],
                        scale, "nearest in feature space"),
        _labelled_strip(list(train.images[npix.indices[0]]), [meta.classes[train.labels[i]] for i in npix.indices[0]],
                        scale, "nearest in pixel space"),
    ]
    sheet = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows)), "white")
    y = 0
    for r in rows:
        sheet.paste(r, (0, y))
        y += r.height
    res.png["neighbours"] = sheet

    conf = confusion_from_logits(test.labels, te.logits, meta.classes)
    res.png["confusion"] = confusion_png(conf.counts, meta.classes)
    if figures:
        res.figs["confusion"] = confusion_heatmap(conf, normalised=True)
    if deck:
        res.extra["mistakes"] = mistakes_png(res.png["confusion"], test.images, test.labels, te.logits,
                                             list(meta.classes))


# -- the deck: one slide per lecture step -----------------------------------------------------

SLIDE_SIZE = (1600, 900)
_SLIDE_SOURCES = {"kernels": "png", "kernels_over_epochs": "png", "feature_maps": "png", "receptive_field": "extra",
                  "convolution": "extra", "neighbours": "png", "mistakes": "extra"}


@dataclass
class Slide:
    """One slide: its lecture step, its number (1-based, among the slides drawn) and picture."""

    step: LectureStep
    number: int
    image: Image.Image
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


def _wrap(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if line and _text_width(draw, trial, font) > width:
            lines.append(line)
            line = word
        else:
            line = trial
    return lines + ([line] if line else [])


def slide_image(picture: Image.Image, title: str, caption: str, footer: str,
                size: tuple[int, int] = SLIDE_SIZE, margin: int = 48) -> Image.Image:
    """A ``size`` slide: ``title`` and ``caption`` on top, ``picture`` scaled to fill the space
    left and centred, ``footer`` at the bottom. Scaling is by nearest neighbour (sharp pixels,
    never blurred): by the largest whole factor when the picture fits twice or more, else by
    the exact factor that fits (cells a pixel uneven at most)."""
    title_font, caption_font, footer_font = _font(52), _font(28), _font(20)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    cap_lines = _wrap(probe, caption, caption_font, size[0] - 2 * margin)
    top = margin + 64 + 38 * len(cap_lines) + 16
    bottom = 48
    room_w, room_h = size[0] - 2 * margin, size[1] - top - bottom
    f = min(room_w / max(picture.width, 1), room_h / max(picture.height, 1))
    f = float(int(f)) if f >= 2 else f
    pic = picture.convert("RGB").resize((max(1, round(picture.width * f)), max(1, round(picture.height * f))),
                                        Image.NEAREST)
    w = max(size[0], pic.width + 2 * margin)
    h = max(size[1], top + pic.height + bottom)
    img = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(img)
    draw.text((margin, margin - 8), title, fill=(20, 20, 20), font=title_font)
    for i, line in enumerate(cap_lines):
        draw.text((margin, margin + 64 + 38 * i), line, fill=(70, 70, 70), font=caption_font)
    img.paste(pic, ((w - pic.width) // 2, top + (h - top - bottom - pic.height) // 2))
    draw.text((margin, h - bottom + 12), footer, fill=(140, 140, 140), font=footer_font)
    return img


def lecture_deck(ckpt: Checkpoint, pictures: LecturePictures) -> LectureDeck:
    """One slide per step of :data:`~cnnviz.lecture_sequence.LECTURE_SEQUENCE` that has a picture
    in ``pictures`` (from :func:`lecture_pictures` with ``deck=True``), in order."""
    chosen = []
    for step in LECTURE_SEQUENCE:
        source = getattr(pictures, _SLIDE_SOURCES[step.name])
        if step.name in source:
            chosen.append((step, source[step.name]))
    missing = {s.name: pictures.missing.get(s.name, "no picture") for s in LECTURE_SEQUENCE
               if s.name not in {c[0].name for c in chosen}}
    total = len(chosen)
    slides = [Slide(step, i + 1, slide_image(pic, step.title, step.caption,
                                             f"{i + 1} / {total}   {ckpt.name} ({ckpt.meta.arch})"))
              for i, (step, pic) in enumerate(chosen)]
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

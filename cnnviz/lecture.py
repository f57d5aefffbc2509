"""Lecture figures for a checkpoint, written as PNG (for slides) and HTML (interactive), offline.

``write_lecture_figures`` is what ``cnnviz figures`` runs: kernels always; feature maps for an
image (given, or the first test image); nearest neighbours and the confusion matrix when data is
given. PNGs are composed with Pillow (no browser needed); HTML files share one local copy of
plotly.js, so they open without the network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from torch import nn

from .checkpoints import Checkpoint, checkpoint_data, held_out_data
from .data import IMAGE_EXTENSIONS, ImageDataset, Preprocess, UnreadableImage, decode_image
from .evaluate import softmax
from .figures.attribution import colorize
from .figures.confusion import confusion_heatmap
from .figures.feature_maps import feature_grid_figure
from .figures.filters import filter_grid_figure, lecture_grid
from .figures.neighbours import neighbours_figure
from .hooks import resolve_layers
from .inspect.confusion import confusion_from_logits
from .inspect.feature_maps import channel_grid, feature_maps
from .inspect.features import cached_features
from .inspect.filters import first_layer_filters
from .inspect.neighbours import NeighbourIndex


class FigureError(ValueError):
    """A figure cannot be made as asked (an unknown layer, an unreadable image); the message
    lists what can be used instead."""


@dataclass
class LectureFigures:
    """Paths written, by figure name (``kernels``, ``feature_maps``, ``neighbours``, ``confusion``)."""

    png: dict[str, Path] = field(default_factory=dict)
    html: dict[str, Path] = field(default_factory=dict)


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


def write_lecture_figures(ckpt: Checkpoint, out_dir: str | Path, data: str | Path | None = None,
                          image: str | Path | None = None, layer: str | None = None, k: int = 6,
                          progress: bool = False) -> LectureFigures:
    """Write the lecture figures of ``ckpt`` into ``out_dir`` and return their paths.

    ``layer`` and ``image`` are checked before anything is written: an unknown layer or an
    unreadable image raises :class:`FigureError` listing what can be used."""
    if layer is not None:
        _check_layer(ckpt, layer)
    given_picture = _read_picture(image, ckpt.meta.preprocess) if image is not None else None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    res = LectureFigures()
    model, meta = ckpt.model, ckpt.meta

    filters = first_layer_filters(model, normalize="per_filter")
    order = filters.order_by("color")
    Image.fromarray(lecture_grid(filters, order)).save(out / "kernels.png")  # slide-wide, sharp pixels
    res.png["kernels"] = out / "kernels.png"
    res.html["kernels"] = _save_html(filter_grid_figure(filters, order=order), out / "kernels.html")

    test: ImageDataset | None = None
    held = "test"
    if data is not None:
        held, test = held_out_data(ckpt.meta, data, progress=progress)
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
        Image.fromarray(rgb).resize((rgb.shape[1] * 4, rgb.shape[0] * 4), Image.NEAREST).save(out / "feature_maps.png")
        res.png["feature_maps"] = out / "feature_maps.png"
        res.html["feature_maps"] = _save_html(feature_grid_figure(fm), out / "feature_maps.html")

    if test is not None and test.labelled and data is not None:
        _write_neighbours_and_confusion(ckpt, data, test, out, res, k, progress, held)
    return res


def _write_neighbours_and_confusion(ckpt: Checkpoint, data: str | Path, test: ImageDataset, out: Path,
                                    res: LectureFigures, k: int, progress: bool, held: str = "test") -> None:
    """Nearest training images of the first test image (features vs pixels) and the confusion
    matrix of the test split, as PNG and HTML into ``out``, recorded in ``res``."""
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
    fig = neighbours_figure(test.images[q], top, train.images[nf.indices[0]], train.images[npix.indices[0]],
                            [meta.classes[train.labels[i]] for i in nf.indices[0]],
                            [meta.classes[train.labels[i]] for i in npix.indices[0]],
                            title=f"test image of {meta.classes[test.labels[q]]}: nearest training images")
    res.html["neighbours"] = _save_html(fig, out / "neighbours.html")
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
    sheet.save(out / "neighbours.png")
    res.png["neighbours"] = out / "neighbours.png"

    conf = confusion_from_logits(test.labels, te.logits, meta.classes)
    confusion_png(conf.counts, meta.classes).save(out / "confusion.png")
    res.png["confusion"] = out / "confusion.png"
    res.html["confusion"] = _save_html(confusion_heatmap(conf, normalised=True), out / "confusion.html")

"""Lecture figures for a checkpoint, written as PNG (for slides) and HTML (interactive), offline.

``write_lecture_figures`` is what ``cnnviz figures`` runs: kernels always (and their evolution
over the epochs saved during training); feature maps for an image (given, or the first test
image); nearest neighbours and the confusion matrix when data is given. PNGs are composed with
Pillow (no browser needed); HTML files share one local copy of plotly.js, so they open without
the network.

With ``deck=True`` (``cnnviz figures --deck``) the same pictures, plus a receptive field, the
first convolution, the most confident mistakes and one unit of a middle layer, become one slide
per step of the lecture sequence (:mod:`cnnviz.lecture_sequence`): 1,600 x 900 PNGs and one
self-contained ``deck.html``. :func:`build_lecture_deck` makes that deck in memory (the
dashboard's download). What each slide shows is drawn by :mod:`cnnviz.lecture_slides`, in the
frame of :mod:`cnnviz.deck`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image
from torch import nn

from .basis import accuracy_basis
from .checkpoints import Checkpoint, CheckpointError, checkpoint_data, held_out_data, load_snapshots
from .data import IMAGE_EXTENSIONS, ImageDataset, Preprocess, UnreadableImage, decode_image
from .deck import LectureDeck, Slide, SlideContent, compose_slide
from .evaluate import softmax
from .figures.attribution import colorize
from .figures.confusion import confusion_heatmap, draw_confusion, most_confused
from .figures.feature_maps import feature_grid_figure
from .figures.filters import filter_grid_figure, lecture_grid
from .figures.neighbours import class_display_name, draw_query_rows, neighbours_figure, query_rows_picture
from .figures.pictures import TextCanvas, line_height
from .gallery import is_gallery, read_gallery_meta
from .hooks import resolve_layers
from .inspect.confusion import confusion_from_logits
from .inspect.feature_maps import channel_grid, feature_maps
from .inspect.features import cached_features
from .inspect.filters import first_layer_filters
from .inspect.neighbours import NeighbourIndex, pixel_vectors, query_neighbours
from .lecture_sequence import LECTURE_SEQUENCE
from .lecture_slides import (convolution_slide, count_text, epoch_stages, epochs_slide, feature_maps_slide, kernels_over_epochs_png,
                             kernels_slide, mistakes_slide, neighbours_caption, receptive_field_slide, unit_slide)


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
_STAGES = 8  # kernels, their evolution, held-out images, feature maps, field and convolution, neighbours, a unit, slides
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
        res.slides["kernels"] = kernels_slide(filters, order)
    tell(1, _STAGES)

    try:
        snaps = load_snapshots(ckpt)
    except CheckpointError as e:
        snaps, res.missing["kernels_over_epochs"] = {}, str(e)
    if snaps:
        try:
            res.png["kernels_over_epochs"] = kernels_over_epochs_png(model, snaps, order)
            if deck:
                res.slides["kernels_over_epochs"] = epochs_slide(epoch_stages(model, snaps, 8), order)
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
            res.slides["feature_maps"] = feature_maps_slide(rgb, fm, min(64, fm.maps.shape[1]), what)
            _deck_pictures(ckpt, picture, layer, int(fm.order[0, 0]), res)
    else:
        for name in ("feature_maps", "receptive_field", "convolution"):
            res.missing[name] = "no image: give --image, or data with test images (--data)"
        tell(4, _STAGES)
    tell(5, _STAGES)

    if test is not None and test.labelled and data is not None:
        train = _neighbours_and_confusion(ckpt, data, test, res, k, progress, held, figures, deck, queries, seed)
        tell(6, _STAGES)
        if deck:
            _unit_picture(ckpt, train, res, progress)
    else:
        why = "no labelled held-out images: give --data" if data is None else "the held-out images have no labels"
        res.missing["neighbours"] = res.missing["mistakes"] = res.missing["unit"] = why
    tell(7, _STAGES)
    return res


def _deck_pictures(ckpt: Checkpoint, picture: np.ndarray, layer: str, channel: int, res: LecturePictures) -> None:
    """The receptive field and convolution slides of the deck, into ``res.slides`` (or why not
    into ``res.missing``: a model whose geometry or first convolution cannot be followed)."""
    try:
        res.slides["receptive_field"] = receptive_field_slide(ckpt, picture, layer, channel)
    except (ValueError, RuntimeError) as e:
        res.missing["receptive_field"] = f"cannot follow {layer}'s receptive field: {e}"
    try:
        res.slides["convolution"] = convolution_slide(ckpt, picture, 0)
    except (ValueError, RuntimeError, TypeError) as e:
        res.missing["convolution"] = f"cannot show the first convolution: {e}"


def _neighbours_and_confusion(ckpt: Checkpoint, data: str | Path, test: ImageDataset, res: LecturePictures,
                              k: int, progress: bool, held: str, figures: bool, deck: bool, queries: int = 5,
                              seed: int = 0) -> ImageDataset:
    """AlexNet's figure 4 (``queries`` held-out images and their ``k`` nearest training images in
    the penultimate features) and the confusion matrix of the held-out split (and, for the deck,
    its most confident mistakes) into ``res``; returns the training images it read."""
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
    gallery = read_gallery_meta(data) if is_gallery(data) else None
    basis = accuracy_basis(len(test), held, gallery).describe(detail=False)
    res.png["confusion"] = confusion_picture(conf, basis=basis)
    if figures:
        res.figs["confusion"] = confusion_heatmap(conf, normalised=True)
    if deck:
        res.slides["mistakes"] = mistakes_slide(conf, test.images, test.labels, te.logits, classes, basis)
    return train


def _unit_picture(ckpt: Checkpoint, train: ImageDataset, res: LecturePictures, progress: bool) -> None:
    """The deck's unit slide, of the middle convolution, into ``res.slides`` (or why not into
    ``res.missing``: a model without convolutions whose units cannot be followed)."""
    layer = default_feature_layer(ckpt)
    try:
        res.slides["unit"] = unit_slide(ckpt, train, layer, progress)
    except (ValueError, RuntimeError) as e:
        res.missing["unit"] = f"cannot show a unit of {layer}: {e}"


def confusion_picture(conf, width: int = 1600, basis: str | None = None) -> Image.Image:
    """The confusion matrix as a ``width``-px picture (at least 1,200): a title with the accuracy
    (on ``basis``, by default ``N images``) and the most confused pair, then
    :func:`~cnnviz.figures.confusion.draw_confusion`."""
    width = max(1200, width)
    k = conf.num_classes
    cell = 56 if k <= 12 else 40
    height = 140 + line_height(20) + 8 + k * cell
    canvas = TextCanvas(width, height)
    worst = most_confused(conf)
    pair = "" if worst is None else (f"; most confused: {class_display_name(conf.classes[worst[0]])} taken for "
                                     f"{class_display_name(conf.classes[worst[1]])} ({count_text(worst[2], 'image')})")
    basis = basis or f"{int(conf.support.sum()):,} images"
    top = canvas.paragraph(24, 16, f"Confusion matrix: accuracy {conf.accuracy:.1%} on {basis}{pair}", 24,
                           width - 48, bold=True) + 16
    w, h = draw_confusion(canvas, (24, top, width - 24, height - 12), conf, 20, max_cell=cell)
    return canvas.image.crop((0, 0, width, min(height, top + h + 16)))


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

"""What each slide of the lecture deck shows, measured on the model it is drawn for: the
first-layer kernels (and over the saved epochs), feature maps, a receptive field, the first
convolution step by step, the most confident mistakes beside the confusion matrix, and one unit
of a deeper layer (its favourite image and the training images it fires on most). Each returns a
:class:`~cnnviz.deck.SlideContent`: a caption of facts and a function that draws into a box."""

from __future__ import annotations

import numpy as np
from PIL import Image
from torch import nn

from .checkpoints import Checkpoint
from .data import ImageDataset
from .deck import LABEL_PX, Box, SlideContent, draw_panels, fit_scale
from .evaluate import softmax
from .figures.attribution import colorize, overlay
from .figures.clicks import dot, outline
from .figures.confusion import draw_confusion, most_confused
from .figures.filters import grid_image, lecture_grid
from .figures.neighbours import DIFFERENT, class_display_name
from .figures.pictures import TextCanvas, fitted_thumbnail, line_height, text_width, wrap_text
from .figures.units import patch_grid
from .inspect.convolution import conv_output
from .inspect.effective_rf import gradient_rf
from .inspect.filters import FilterSet, first_layer_filters, first_layer_filters_from_state
from .inspect.neighbours import QueryNeighbours
from .inspect.receptive_field import layer_rf, unit_box
from .inspect.units import cached_unit_examples, unit_crop, unit_patch
from .inspect.visualise import cached_visualisation

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


def count_text(n: int, thing: str) -> str:
    """``"1 image"``, ``"2 images"``."""
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
    parts = [count_text(int((rest & colour & ~noisy).sum()), "colour blob"),
             count_text(int((rest & ~colour & ~noisy).sum()), "grey blob")]
    if (rest & noisy).any():
        parts.append(f"{int((rest & noisy).sum())} no more structured than noise")
    oriented = (f"{count_text(ko.count, 'oriented edge and stripe detector')} ({filters.grey_oriented} grey) at "
                f"{ko.orientations()} of 4 orientations" if ko.count else "none oriented (no edge or stripe detector)")
    return (f"{head}: {oriented}; the other {int(rest.sum())}: {', '.join(parts)}. "
            f"Structure {ks.mean:.2f} (0 = white noise, 1 = one clean pattern).")


def kernels_slide(filters: FilterSet, order: np.ndarray) -> SlideContent:
    def draw(canvas: TextCanvas, box: Box) -> None:
        x0, y0, x1, y1 = box
        cols, scale = _kernel_grid_layout(len(filters), filters.kernel_size, (x1 - x0, y1 - y0))
        grid = grid_image(filters.images[order], cols, scale, max(1, scale // 4))
        canvas.paste(grid, x0 + (x1 - x0 - grid.shape[1]) // 2, y0 + (y1 - y0 - grid.shape[0]) // 2)

    return SlideContent(draw, kernel_caption(filters) + " Ordered by colourfulness.")


def epoch_stages(model: nn.Module, snapshots: dict[int, dict], max_panels: int) -> list[tuple[str, FilterSet]]:
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
    stages = epoch_stages(model, snapshots, max_panels)
    per = min(per_row, len(stages))
    panel_width = max(panel_width, -(-(1200 - 24 * (per - 1)) // per))
    panels = [_panel(lecture_grid(f, order, min_width=panel_width), label, panel_width) for label, f in stages]
    return _stack([_row(panels[i:i + per_row]) for i in range(0, len(panels), per_row)])


def epochs_slide(stages: list[tuple[str, FilterSet]], order: np.ndarray) -> SlideContent:
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


def feature_maps_slide(grid_rgb: np.ndarray, fm, shown: int, what: str) -> SlideContent:
    maps = fm.maps[0]
    silent = int((np.abs(maps).reshape(len(maps), -1).max(1) == 0).sum())
    h, w = maps.shape[1:]

    def draw(canvas: TextCanvas, box: Box) -> None:
        x0, y0, x1, y1 = box
        scale = fit_scale((grid_rgb.shape[1], grid_rgb.shape[0]), (x1 - x0, y1 - y0))
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


def receptive_field_slide(ckpt: Checkpoint, picture: np.ndarray, layer: str, channel: int) -> SlideContent:
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
        f = fit_scale((picture.shape[1], picture.shape[0]), room)
        big = np.repeat(np.repeat(np.asarray(picture, np.uint8), f, 0), f, 1)
        theory = dot(outline(big, box_, f, thickness=max(3, f // 3)), cy, cx, f, radius=max(3, f // 2))
        glow = np.repeat(np.repeat(glow_small, f, 0), f, 1)
        draw_panels(canvas, box, [(theory, f"in theory: {side} px (red box)"),
                                  (glow, "in practice: |d unit / d pixel| (bright: moves it most)")], gap=60,
                    max_scale=1)

    return SlideContent(draw, f"{layer}, channel {channel}, its centre unit ({uy}, {ux}): it can see {side} px in "
                              f"theory; half of its gradient lies within the central {half}x{half} px.")


def convolution_slide(ckpt: Checkpoint, picture: np.ndarray, channel: int = 0) -> SlideContent:
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
        f = fit_scale((padded.shape[1], padded.shape[0]), (room_w, room_h))
        window = outline(np.repeat(np.repeat(padded, f, 0), f, 1), out.window(pos), f)
        of = fit_scale((grey.shape[1], grey.shape[0]), (room_w, room_h))
        obig = outline(np.repeat(np.repeat(grey, of, 0), of, 1), (s.row, s.col, s.row + 1, s.col + 1), of,
                       thickness=max(2, of // 3))
        kf = fit_scale((kw, kh), ((x1 - x0) * 0.2 - 40, room_h))
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


def mistakes_slide(conf, images: np.ndarray, labels: np.ndarray, logits: np.ndarray,
                   classes: list[str], basis: str | None = None) -> SlideContent:
    """The confusion matrix beside the most confident mistakes; ``basis``: what the accuracy was
    measured on (e.g. ``300 validation images of the demo gallery (of the 2,348), one view
    each``), by default ``N held-out images``."""
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
                                     f"{class_display_name(classes[worst[1]])} ({count_text(worst[2], 'image')})")
    wrong = int((probs.argmax(1) != np.asarray(labels)).sum())
    basis = basis or f"{len(labels):,} held-out images"
    return SlideContent(draw, f"Accuracy {conf.accuracy:.1%} on {basis}: {count_text(wrong, 'mistake')}"
                              f"{pair}. Rows: the true class; columns: the predicted one.")


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


UNIT_TOP = 9  # training images a unit's slide shows, as on the Units page


def unit_slide(ckpt: Checkpoint, train: ImageDataset, layer: str, progress: bool = False) -> SlideContent:
    """One unit of ``layer``: the channel whose ``UNIT_TOP`` strongest training images are most
    often of one class (see :meth:`~cnnviz.inspect.units.UnitExamples.purest`), its favourite
    image (optimised from noise, seeded) beside those images cropped to the unit's receptive
    field. Both passes are cached on disk, as the Units page's are."""
    ex = cached_unit_examples(ckpt, train, "train", layer, progress=progress)
    channel, cls, count = ex.purest(train.labels, UNIT_TOP) if train.labelled else (0, -1, 0)
    size = ckpt.meta.input_size
    rf = layer_rf(ckpt.model, layer, size)
    top = ex.top(channel, UNIT_TOP)
    patches = [unit_patch(train.images[i], unit_crop(rf, *ex.peak_at(int(i), channel), size)) for i in top]
    favourite = cached_visualisation(ckpt, layer, [channel], progress=progress).images[0]
    side = f"{rf.size[0]:.0f}x{rf.size[1]:.0f}"

    def draw(canvas: TextCanvas, box: Box) -> None:
        x0, y0, x1, y1 = box
        room_w, room_h = (x1 - x0 - 60) / 2, y1 - y0 - 3 * line_height(LABEL_PX) - 10
        f = fit_scale((favourite.shape[1], favourite.shape[0]), (room_w, room_h))
        big = np.repeat(np.repeat(favourite, f, 0), f, 1)
        cols = min(3, len(patches))
        rows = -(-len(patches) // cols)
        gap = 6
        cell = int(max(8, min((room_w - gap * (cols - 1)) / cols, (room_h - gap * (rows - 1)) / rows)))
        grid = patch_grid(patches, cols=cols, cell=cell, gap=gap)
        draw_panels(canvas, box, [(big, "its favourite image (optimised from noise)"),
                                  (grid, f"the {len(patches)} training images it fires on most, cropped to "
                                         f"the {side} px it sees")], gap=60, max_scale=1)

    what = (f"{count} of the {len(top)} training images it fires on most are {class_display_name(ckpt.meta.classes[cls])}"
            if cls >= 0 else f"the {len(top)} training images it fires on most")
    return SlideContent(draw, f"{layer}, channel {channel} of {ex.channels}: {what}. Left: the picture that excites "
                              f"it most; right: where it fires, in real images.")

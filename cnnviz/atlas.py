"""The unit atlas of one layer, written for offline use (``cnnviz units``): per channel a PNG of its
top and bottom training patches, and one self-contained HTML page (images inline, no script) with
each channel's patches, the classes of its top images and what knocking it out costs each class."""

from __future__ import annotations

import base64
import html
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from . import distributed as dist_
from .checkpoints import Checkpoint, CheckpointError, checkpoint_data, held_out_data
from .data import DatasetError
from .evaluate import predict_logits
from .figures.filters import png_bytes
from .figures.units import patch_grid
from .inspect.receptive_field import layer_rf
from .inspect.units import UnitExamples, cached_unit_examples, check_channels, compare_knockout, knocked_logits, \
    unit_crop, unit_patch
from .inspect.visualise import cached_visualisation

__all__ = ["AtlasResult", "write_unit_atlas"]


@dataclass
class AtlasResult:
    """What :func:`write_unit_atlas` wrote: the HTML page and one PNG per channel."""

    layer: str
    html: Path
    png: dict[int, Path] = field(default_factory=dict)


def _patches(ckpt: Checkpoint, images: np.ndarray, ex: UnitExamples, rf, channel: int, which: np.ndarray
             ) -> list[np.ndarray]:
    size = ckpt.meta.input_size
    return [unit_patch(images[i], unit_crop(rf, *ex.peak_at(int(i), channel), size)) for i in which]


def _img_tag(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def write_unit_atlas(ckpt: Checkpoint, data: str | Path, out_dir: str | Path, layer: str,
                     channels: Sequence[int] | None = None, k: int = 9, steps: int = 256,
                     progress: bool = False, distributed: bool = False) -> AtlasResult:
    """Write the atlas of ``layer`` (``channels``, default all) for ``ckpt`` into ``out_dir``:
    ``unit_<channel>.png`` (its favourite image, then the top-``k`` patches, then the
    bottom-``k``) and ``atlas.html``. Top and bottom images come from the training images at
    ``data``; the knock-out from its held-out images (the test split, else the checkpoint's
    validation split); the favourite images from ``steps`` steps of feature visualisation, all
    channels in one batch (``steps=0``: none).

    ``distributed``: every rank of the process group (``torchrun``) calls it; the passes over
    the training and held-out images are shared, and rank 0 makes the favourite images and
    writes the files (the others return the same paths)."""
    width = check_channels(ckpt.model, layer, channels or [])
    chosen = list(range(width)) if channels is None else [int(c) for c in channels]
    meta = ckpt.meta
    writer = not distributed or dist_.is_main()
    progress = progress and writer
    with dist_.leader_first(distributed):
        train = checkpoint_data(meta, data, "train", progress=progress)
    ex = cached_unit_examples(ckpt, train, "train", layer, progress=progress, distributed=distributed)
    rf = layer_rf(ckpt.model, layer, meta.input_size)
    with dist_.leader_first(distributed):
        try:
            held_name, held = held_out_data(meta, data, progress=progress)
        except (DatasetError, CheckpointError):  # no test split and no recorded validation split
            held_name, held = "test", None
    knock = held is not None and len(held) > 0 and held.labelled
    before = predict_logits(ckpt.model, held.images, meta.normalization, distributed=distributed) if knock else None

    favourite = None
    if steps and writer:  # an optimisation, not a pass over the data: rank 0 alone
        favourite = cached_visualisation(ckpt, layer, chosen, steps=steps, progress=progress).images
    out = Path(out_dir)
    if writer:
        out.mkdir(parents=True, exist_ok=True)
    res = AtlasResult(layer, out / "atlas.html")
    rows = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(chosen), desc=f"atlas of {layer}", unit="channel")
    try:
        for pos, c in enumerate(chosen):
            after = (knocked_logits(ckpt.model, held.images, layer, [c], meta.normalization, distributed=distributed)
                     if knock else None)
            res.png[c] = out / f"unit_{c:03d}.png"
            if not writer:
                continue
            top, bottom = ex.top(c, k), ex.bottom(c, k)
            cols = int(np.ceil(np.sqrt(k)))
            grid_top = patch_grid(_patches(ckpt, train.images, ex, rf, c, top), cols=cols, cell=64)
            grid_bottom = patch_grid(_patches(ckpt, train.images, ex, rf, c, bottom), cols=cols, cell=64)
            gap = np.full((grid_top.shape[0], 16, 3), 255, np.uint8)
            parts = [grid_top, gap, grid_bottom]
            if favourite is not None:
                parts = [patch_grid([favourite[pos]], cols=1, cell=grid_top.shape[0]), gap] + parts
            both = np.concatenate(parts, axis=1)
            png = png_bytes(both)
            res.png[c].write_bytes(png)
            classes = Counter(meta.classes[train.labels[i]] for i in top if train.labels[i] >= 0)
            cells = [f"<td><b>{c}</b></td>", f"<td>{_img_tag(png, f'channel {c}: top and bottom {k}')}</td>",
                     f"<td>{html.escape(', '.join(f'{n} {m}' for n, m in classes.most_common(3)))}</td>",
                     f"<td>{ex.peak[top, c].min():.2f} to {ex.peak[top, c].max():.2f}</td>"]
            if knock:
                r = compare_knockout(layer, [c], held.labels, before, after)
                change = np.nan_to_num(r.recall_change)
                worst = int(np.argmin(change))
                cells.append(f"<td>{(r.accuracy_after - r.accuracy_before) * 100:+.1f}</td>"
                             f"<td>{html.escape(meta.classes[worst])} {change[worst] * 100:+.1f}</td>")
            rows.append("<tr>" + "".join(cells) + "</tr>")
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    knock_head = ("<th>accuracy change (points)</th><th>class that loses most (recall points)</th>" if knock else "")
    where = (f"knock-out on {len(held):,} {held_name} images" if knock else "no labelled held-out images: no knock-out")
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(ckpt.name)}: units of {html.escape(layer)}</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:4px 10px;border-bottom:1px solid #ddd;vertical-align:middle}}
img{{image-rendering:pixelated}}</style></head><body>
<h1>{html.escape(ckpt.name)}: units of {html.escape(layer)}</h1>
<p>Each row is one channel: {"its favourite image (optimised from noise to excite it most), then " if steps else ""}the {k} training images (of {len(train):,}) where it fires most, cropped to the
receptive field of its strongest unit ({rf.size[0]:.0f} px; grey where the field reaches past the image); right,
the {k} where it fires least. {html.escape(where)}.</p>
<table><tr><th>channel</th><th>{"favourite | " if steps else ""}top {k} | bottom {k}</th><th>classes of the top {k}</th><th>top peaks</th>{knock_head}</tr>
{chr(10).join(rows)}
</table></body></html>"""
    if writer:
        res.html.write_text(page, encoding="utf-8")
    if distributed:
        dist_.barrier()
    return res

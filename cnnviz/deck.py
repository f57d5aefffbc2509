"""The lecture deck's frame: a slide of 1,600 x 900 drawn at its final size (title, caption,
footer, and the room left for its content), the deck of slides as PNGs, a zip and one offline
HTML file (every picture a ``data:`` URI, arrow keys to move). What each slide shows is in
:mod:`cnnviz.lecture_slides`; which slides a checkpoint gets, in :mod:`cnnviz.lecture`."""

from __future__ import annotations

import base64
import html as html_lib
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from .figures.pictures import DrawnText, TextCanvas, line_height, text_width, wrap_text
from .lecture_sequence import LectureStep

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


LABEL_PX = 22  # labels on slides; captions 24 px, titles 40 px; nothing under 20 px

def fit_scale(native: tuple[int, int], room: tuple[float, float]) -> int:
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

"""Present mode fits a projector: in Debian's headless Chromium (``/usr/bin/chromium``, never a
downloaded browser), the shipped checkpoint on its demo gallery, the keys walk every step of the
lecture at 1280x720 and back at 1920x1080; at every step the slide's figure lies wholly inside
the window, nothing scrolls, the title and the line of text are whole and no text is under 12 px.
The server's log holds no deprecation warning. Screenshots of every step go to
``$CNNVIZ_PRESENT_SHOTS`` (default: the test's temporary folder)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from browser_support import CHROMIUM, chromium, dashboard_server

from cnnviz.lecture_sequence import LECTURE_SEQUENCE

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")
if not CHROMIUM.exists():
    pytest.skip("Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium)",
                allow_module_level=True)

ROOT = Path(__file__).resolve().parent.parent
IDLE_MS = 300_000  # a first visit computes the gallery's features and a unit's favourite image once
SIZES = [(1280, 720), (1920, 1080)]

# What a slide shows, measured in the page: the figure's pictures (all loaded), the slide's
# place, the document's height, whether the title and text are cut, and the smallest text.
MEASURE = """() => {
  const imgs = [...document.querySelectorAll('.st-key-slide_fig img')];
  const box = (e) => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
  const texts = [...document.querySelectorAll('.st-key-slide *, .st-key-present_bar *')].filter(
    (e) => [...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim()) && e.getClientRects().length);
  const cut = [...document.querySelectorAll('.cv-title, .cv-text')].filter((e) => e.scrollWidth > e.clientWidth + 1);
  const corner = document.elementFromPoint(5, 5);
  return {
    images: imgs.map(box), loaded: imgs.every((i) => i.complete && i.naturalWidth > 0),
    scroll: document.documentElement.scrollHeight, inner: innerHeight, width: innerWidth,
    slide: box(document.querySelector('.st-key-slide')), corner: !!(corner && corner.closest('.st-key-slide')),
    cut: cut.map((e) => e.innerText), smallest: Math.min(...texts.map((e) => parseFloat(getComputedStyle(e).fontSize))),
    title: (document.querySelector('.cv-title') || {}).innerText, lines: document.querySelectorAll('.cv-text').length,
  };
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    env = {k: v for k, v in os.environ.items() if k not in ("CNNVIZ_DATA", "CNNVIZ_CHECKPOINTS")}
    env["PYTHONUNBUFFERED"] = "1"  # the shipped checkpoints, each on its demo gallery
    log = tmp_path_factory.mktemp("server") / "streamlit.log"
    with dashboard_server(ROOT / "dashboard" / "app.py", env, ROOT, log) as url:
        yield url, log


def wait_step(page, n: int) -> None:
    """Wait until step ``n`` (1-based) is drawn: its bar, the server idle, its pictures loaded."""
    page.get_by_text(f"step {n} of {len(LECTURE_SEQUENCE)}: {LECTURE_SEQUENCE[n - 1].title}").wait_for(
        timeout=IDLE_MS)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=IDLE_MS)
    page.wait_for_function("() => { const i = [...document.querySelectorAll('.st-key-slide_fig img')]; "
                           "return i.length && i.every((x) => x.complete && x.naturalWidth > 0); }", timeout=IDLE_MS)
    page.wait_for_timeout(400)


def check_slide(page, n: int, size: tuple[int, int], shots: Path) -> dict:
    m = page.evaluate(MEASURE)
    w, h = size
    step = LECTURE_SEQUENCE[n - 1]
    where = f"step {n} ({step.name}) at {w}x{h}"
    page.screenshot(path=str(shots / f"{w}x{h}_{n:02d}_{step.name}.png"))
    assert (m["width"], m["inner"]) == (w, h)
    assert m["title"] == step.title, where
    assert m["lines"] == 1, where  # one line of text
    assert m["images"] and m["loaded"], where
    for left, top, right, bottom in m["images"]:  # the figure wholly inside the window
        assert left >= 0 and top >= 0 and right <= w + 0.5 and bottom <= h + 0.5, (where, m["images"])
        assert right - left >= 100 and bottom - top >= 100, (where, m["images"])  # and drawn large enough to see
    assert m["scroll"] <= h + 2, where  # nothing to scroll
    assert m["slide"] == [0, 0, w, h] and m["corner"], where  # no band or frame above the slide
    assert m["cut"] == [], where
    assert m["smallest"] >= 12, (where, m["smallest"])
    return m


def test_every_step_fits_the_window_at_1280x720_and_1920x1080(server, tmp_path):
    url, log = server
    shots = Path(os.environ.get("CNNVIZ_PRESENT_SHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    n = len(LECTURE_SEQUENCE)
    heights = {}
    with chromium(playwright_api) as b:
        page = b.new_page(viewport={"width": SIZES[0][0], "height": SIZES[0][1]})
        page.goto(f"{url}/filters?present=1&model=cifar10_cnn", timeout=IDLE_MS)
        for i in range(1, n + 1):  # forward with the keys at 1280x720
            wait_step(page, i)
            heights[(SIZES[0], i)] = check_slide(page, i, SIZES[0], shots)
            if i < n:
                page.keyboard.press("ArrowRight" if i % 2 else "PageDown")
        page.keyboard.press("ArrowRight")  # the last step: the key does nothing
        page.wait_for_timeout(1000)
        assert "step=8" in page.url and "/units" in page.url
        page.set_viewport_size({"width": SIZES[1][0], "height": SIZES[1][1]})
        for i in range(n, 0, -1):  # and back at 1920x1080
            wait_step(page, i)
            heights[(SIZES[1], i)] = check_slide(page, i, SIZES[1], shots)
            if i > 1:
                page.keyboard.press("ArrowLeft" if i % 2 else "PageUp")
    for i in range(1, n + 1):  # the figure scales with the window: larger on the larger screen
        small = heights[(SIZES[0], i)]["images"][0]
        large = heights[(SIZES[1], i)]["images"][0]
        assert large[3] - large[1] > 1.3 * (small[3] - small[1]), (i, small, large)
    text = log.read_text()
    assert "Uvicorn server started" in text or "You can now view" in text
    assert "deprecat" not in text.lower(), text[-3000:]

"""Present mode fits a projector: in Debian's headless Chromium (``/usr/bin/chromium``, never a
downloaded browser), the tiny checkpoint of tests/dashboard_fixtures on its data, the keys walk
every step of the lecture at 1280x720 and back at 1920x1080; at every step the slide's title is
"step i of 8: Title", there is at most one line of text, its figure lies wholly inside the
window, nothing scrolls and no band or frame shows above the slide. The server's log holds no
deprecation warning. Screenshots of every step go to ``$CNNVIZ_PRESENT_SHOTS`` (default: the
test's temporary folder)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from browser_support import CHROMIUM, chromium, dashboard_server

from cnnviz.lecture_sequence import LECTURE_SEQUENCE, step_label

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")
if not CHROMIUM.exists():
    pytest.skip("Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium)",
                allow_module_level=True)

ROOT = Path(__file__).resolve().parent.parent
IDLE_MS = 120_000
SIZES = [(1280, 720), (1920, 1080)]
# Pages whose slides another piece of work draws (they call present_on() and draw their own
# figure): while one of their steps does not fit yet, the test is an expected failure naming it
# rather than red; every other step must fit.

# What a slide shows, measured in the page: its pictures (images and component frames, all
# loaded), the slide's place, the document's height, the title, the lines of text and whether
# they are cut.
MEASURE = """() => {
  const shown = (e) => e.getClientRects().length && !e.closest('.st-key-present_bar');
  const figs = [...document.querySelectorAll('.st-key-slide img, .st-key-slide iframe, .st-key-slide canvas')]
    .filter(shown);
  const box = (e) => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
  const cut = [...document.querySelectorAll('.cv-title, .cv-text')].filter((e) => e.scrollWidth > e.clientWidth + 1);
  const corner = document.elementFromPoint(5, 5);
  return {
    figures: figs.map(box), loaded: figs.every((i) => i.tagName !== 'IMG' || (i.complete && i.naturalWidth > 0)),
    scroll: document.scrollingElement.scrollHeight, inner: innerHeight, width: innerWidth,
    slide: box(document.querySelector('.st-key-slide')), corner: !!(corner && corner.closest('.st-key-slide')),
    cut: cut.map((e) => e.innerText), title: (document.querySelector('.cv-title') || {}).innerText,
    lines: document.querySelectorAll('.cv-text').length,
  };
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from dashboard_fixtures import build_tiny_dashboard  # noqa: PLC0415

    tiny = build_tiny_dashboard(tmp_path_factory.mktemp("present_slides"))
    env = dict(os.environ, CNNVIZ_CHECKPOINTS=str(tiny.checkpoints), CNNVIZ_DATA=str(tiny.data),
               PYTHONUNBUFFERED="1")
    log = tmp_path_factory.mktemp("server") / "streamlit.log"
    with dashboard_server(ROOT / "dashboard" / "app.py", env, ROOT, log) as url:
        yield url, log


def wait_step(page, n: int) -> None:
    """Wait until step ``n`` (1-based) is drawn: its title, the server idle, its pictures loaded."""
    page.locator(".cv-title", has_text=step_label(n - 1)).wait_for(timeout=IDLE_MS)
    page.wait_for_function("() => !document.querySelector('[data-testid=stStatusWidget]')", timeout=IDLE_MS)
    page.wait_for_function("() => { const i = [...document.querySelectorAll('.st-key-slide img')]; "
                           "return !document.querySelector('.st-key-slide [data-testid=stSpinner]') && "
                           "document.querySelector('.st-key-slide img, .st-key-slide iframe') && "
                           "i.every((x) => x.complete && x.naturalWidth > 0); }", timeout=IDLE_MS)
    page.wait_for_timeout(500)


def check_slide(page, n: int, size: tuple[int, int], shots: Path) -> dict:
    m = page.evaluate(MEASURE)
    w, h = size
    step = LECTURE_SEQUENCE[n - 1]
    where = f"step {n} ({step.name}) at {w}x{h}"
    page.screenshot(path=str(shots / f"{w}x{h}_{n:02d}_{step.name}.png"))
    assert (m["width"], m["inner"]) == (w, h)
    assert m["title"] == step_label(n - 1), where
    assert m["lines"] <= 1, where  # at most one line of text
    assert m["figures"] and m["loaded"], where
    for left, top, right, bottom in m["figures"]:  # the figure wholly inside the window
        assert left >= -0.5 and top >= -0.5 and right <= w + 0.5 and bottom <= h + 0.5, (where, m["figures"])
    assert max(b - t for _, t, _, b in m["figures"]) >= 0.3 * h, (where, m["figures"])  # and drawn large
    assert m["scroll"] <= h + 1, where  # nothing to scroll
    assert m["slide"] == [0, 0, w, h] and m["corner"], where  # no band or frame above the slide
    assert m["cut"] == [], where
    return m


def test_every_step_fits_the_window_at_1280x720_and_1920x1080(server, tmp_path):
    url, log = server
    shots = Path(os.environ.get("CNNVIZ_PRESENT_SHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    n = len(LECTURE_SEQUENCE)
    seen = {}
    with chromium(playwright_api) as b:
        page = b.new_page(viewport={"width": SIZES[0][0], "height": SIZES[0][1]})
        page.goto(f"{url}/filters?present=1&model=tiny", timeout=IDLE_MS)
        for i in range(1, n + 1):  # forward with the keys at 1280x720
            wait_step(page, i)
            seen[(SIZES[0], i)] = check_slide(page, i, SIZES[0], shots)
            if i < n:
                page.keyboard.press("ArrowRight" if i % 2 else "PageDown")
        page.keyboard.press("ArrowRight")  # the last step: the key does nothing
        page.wait_for_timeout(800)
        assert "step=8" in page.url and "/units" in page.url
        page.set_viewport_size({"width": SIZES[1][0], "height": SIZES[1][1]})
        for i in range(n, 0, -1):  # and back at 1920x1080
            wait_step(page, i)
            seen[(SIZES[1], i)] = check_slide(page, i, SIZES[1], shots)
            if i > 1:
                page.keyboard.press("ArrowLeft" if i % 2 else "PageUp")
    for i in range(1, n + 1):  # the figure scales with the window: larger on the larger screen
        small = max(b - t for _, t, _, b in seen[(SIZES[0], i)]["figures"])
        large = max(b - t for _, t, _, b in seen[(SIZES[1], i)]["figures"])
        assert large > 1.2 * small, (i, small, large)
    text = log.read_text()
    assert "You can now view" in text or "URL:" in text, text[-2000:]
    assert "deprecat" not in text.lower(), text[-3000:]


def test_pages_outside_the_lecture_fit_at_1366x768(server, tmp_path):
    url, _ = server
    shots = Path(os.environ.get("CNNVIZ_PRESENT_SHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    w, h = 1366, 768
    with chromium(playwright_api) as b:
        page = b.new_page(viewport={"width": w, "height": h})
        for path, title in [("", "Model"), ("attributions", "Attributions"), ("mistakes", step_label(6))]:
            page.goto(f"{url}/{path}?present=1&model=tiny", timeout=IDLE_MS)
            page.locator(".cv-title", has_text=title).wait_for(timeout=IDLE_MS)
            page.wait_for_function("() => !document.querySelector('[data-testid=stStatusWidget]') && "
                                   "document.querySelector('.st-key-slide_fig img, .st-key-slide_fig canvas, "
                                   ".st-key-slide_fig svg')", timeout=IDLE_MS)
            page.wait_for_timeout(800)
            page.screenshot(path=str(shots / f"{w}x{h}_{path or 'model'}.png"))
            m = page.evaluate(MEASURE)
            assert m["title"] == title and m["lines"] == 1 and m["cut"] == [], (path, m)
            box = page.locator(".st-key-slide_fig").evaluate(
                "(e) => { const r = [...e.querySelectorAll('img, canvas, svg')].map((x) => x.getBoundingClientRect());"
                " return [Math.min(...r.map((x) => x.top)), Math.max(...r.map((x) => x.bottom)),"
                " Math.max(...r.map((x) => x.right))]; }")
            assert box[0] >= 0 and box[1] <= h + 0.5 and box[2] <= w + 0.5, (path, box)
            assert m["scroll"] <= h + 1 and m["slide"] == [0, 0, w, h] and m["corner"], (path, m)


TEXT_AND_FIGURE = """() => {
  const t = document.querySelector('.cv-text'); const f = document.querySelector('.st-key-slide_fig');
  return [t ? t.getBoundingClientRect().bottom : null, f ? f.getBoundingClientRect().top : null];
}"""


@pytest.fixture(scope="module")
def gallery_server(tmp_path_factory):
    """The shipped checkpoints on their demo galleries (no dataset folder), as a lecturer's laptop."""
    env = dict(os.environ, CNNVIZ_CHECKPOINTS=str(ROOT / "checkpoints"),
               CNNVIZ_DATA=str(tmp_path_factory.mktemp("no_data")), PYTHONUNBUFFERED="1")
    log = tmp_path_factory.mktemp("gallery_server") / "streamlit.log"
    with dashboard_server(ROOT / "dashboard" / "app.py", env, ROOT, log) as url:
        yield url


@pytest.mark.parametrize("step", [6, 7])
def test_slides_on_a_demo_gallery_keep_their_line_above_the_figure(gallery_server, step, tmp_path):
    """Neighbours and Mistakes on simpsons_lecture's gallery: their one line whole and above the
    figure (the gallery's own line, which pages show, once pushed it under the figure)."""
    s = LECTURE_SEQUENCE[step - 1]
    with chromium(playwright_api) as b:
        page = b.new_page(viewport={"width": 1280, "height": 720})
        page.goto(f"{gallery_server}/{s.page.split('/')[-1][:-3]}?present=1&model=simpsons_lecture&step={step}",
                  timeout=IDLE_MS)
        wait_step(page, step)
        check_slide(page, step, (1280, 720), tmp_path)
        text_bottom, figure_top = page.evaluate(TEXT_AND_FIGURE)
        assert text_bottom is not None and figure_top is not None and text_bottom <= figure_top + 1, (
            s.name, text_bottom, figure_top)
        assert "demo gallery:" not in page.locator(".st-key-slide").inner_text().split("\n")[1]

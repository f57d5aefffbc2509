"""End to end in a real headless Chromium: start the dashboard, open every page, use a widget.

Uses Debian's Chromium (``/usr/bin/chromium``, installed by ``.ci/run``) driven by Playwright's
Python package; no browser is downloaded. By default the server gets a tiny checkpoint and a tiny
dataset made here. To make the README's screenshots with the shipped models and real data, run

    CNNVIZ_SCREENSHOTS=docs/screenshots CNNVIZ_BROWSER_CHECKPOINTS=checkpoints \\
    CNNVIZ_BROWSER_DATA=../shared/data .venv/bin/python -m pytest tests/test_browser.py
"""

from __future__ import annotations

import json
import os
from urllib.parse import parse_qs, urlparse
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
from browser_support import CHROMIUM, chromium, dashboard_server

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")
if not CHROMIUM.exists():
    pytest.skip("Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium)",
                allow_module_level=True)

# (url path, text that must be visible, the widget to use) -- each action names the text it
# makes appear, which must not be on the page before it
PAGES = [
    ("model", "Layers", "expander"),
    ("filters", "Enlarge filter", "normalisation"),
    ("feature_maps", "strongest mean activation first", "layer"),
    ("receptive_fields", "One unit", "layer"),
    ("units", "Knock-out", "patch"),
    ("neighbours", "nearest in feature space", "k"),
    ("mistakes", "Confusion", "row-normalised"),
    ("attributions", "Grad-CAM", None),
    ("predict", "a sample of held-out images", "upload"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A dashboard server on a free localhost port; stopped at the end."""
    ckpt_dir = os.environ.get("CNNVIZ_BROWSER_CHECKPOINTS")
    data = os.environ.get("CNNVIZ_BROWSER_DATA")
    if not ckpt_dir:
        from dashboard_fixtures import build_tiny_dashboard  # noqa: PLC0415

        tiny = build_tiny_dashboard(tmp_path_factory.mktemp("browser"))
        ckpt_dir, data = tiny.checkpoints, tiny.data
    env = dict(os.environ, CNNVIZ_CHECKPOINTS=str(ckpt_dir), CNNVIZ_DATA=str(data or ""),
               PYTHONUNBUFFERED="1")
    log = tmp_path_factory.mktemp("server") / "streamlit.log"
    with dashboard_server(ROOT / "dashboard" / "app.py", env, ROOT, log) as url:
        first = sorted(p for p in Path(ckpt_dir).glob("*.json") if p.with_suffix(".safetensors").is_file())[0]
        yield url, log, json.loads(first.read_text())["classes"]


@pytest.fixture(scope="module")
def browser():
    with chromium(playwright_api) as b:
        yield b


# Seconds a page may take to finish running: the first visit with real data computes the
# features of a whole dataset (override with CNNVIZ_BROWSER_TIMEOUT).
IDLE_MS = int(float(os.environ.get("CNNVIZ_BROWSER_TIMEOUT", "120")) * 1000)


def _wait_idle(page) -> None:
    """Wait until Streamlit has finished running the script (no 'Running...' indicator)."""
    page.wait_for_timeout(300)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=IDLE_MS)


# True when ``text`` is in the page's visible text or in a visible Plotly figure or Vega-Lite
# chart (drawn as SVG; Streamlit keeps earlier versions of a keyed chart in the page, hidden).
SHOWS_TEXT = """(text) => document.body.innerText.includes(text) || Array.from(
    document.querySelectorAll('.js-plotly-plot, [data-testid=stVegaLiteChart]')).some(p => p.checkVisibility()
        && Array.from(p.querySelectorAll('text')).some(t => t.textContent.includes(text)))"""


def _shows(page, text: str) -> bool:
    return page.evaluate(SHOWS_TEXT, text)


def _wait_shows(page, text: str) -> None:
    page.wait_for_function(SHOWS_TEXT, arg=text, timeout=IDLE_MS)


def _pick_option(page, label: str) -> str:
    """Open the select box labelled ``label``, choose its second option; returns that option."""
    page.locator("[data-testid=stSelectbox]").filter(has_text=label).first.locator("[role=combobox]").click()
    options = page.locator("[role=option]")
    options.first.wait_for(timeout=30_000)
    target = options.nth(1 if options.count() > 1 else 0)
    name = target.inner_text().strip()
    target.click()
    return name


def _act(page, action: str, classes: list[str], tmp_path: Path) -> str:
    """Use one widget; returns a text that the change makes appear."""
    def absent(text: str) -> str:
        assert not _shows(page, text), f"{text!r} shows before the action"
        return text

    if action == "patch":  # a click on the fifth top patch shows its whole image
        text = absent("top 5: ")
        grid = page.frame_locator("iframe[title*='streamlit_image_coordinates']").first.locator("img")
        box = grid.bounding_box()
        grid.click(position={"x": box["width"] / 2, "y": box["height"] / 2})
        return text
    if action == "expander":
        text = absent(", ".join(classes[:2]))
        page.locator("[data-testid=stExpander] summary").filter(has_text="Classes").first.click()
        return text
    if action == "normalisation":
        text = absent("one min-max scale shared")
        page.get_by_text("all filters together", exact=True).first.click()
        return text
    if action == "layer":  # Feature maps titles its grid "<layer>: ...", Receptive fields says "<layer>'s h x w"
        name = _pick_option(page, "Layer")
        return name + (": " if "/feature_maps" in page.url else "'s ")
    if action == "k":
        k = int(parse_qs(urlparse(page.url).query)["k"][0])  # the page keeps k in the URL
        page.get_by_role("slider").first.press("ArrowRight")
        return f"k={k + 1}"  # checked in the URL below
    if action == "row-normalised":
        text = absent("confusion (row-normalised)")
        page.get_by_text("row-normalised", exact=True).first.click()
        return text
    if action == "upload":
        from PIL import Image  # noqa: PLC0415

        text = absent("1 image; most predicted")
        page.get_by_text("upload images or a zip", exact=True).first.click()
        _wait_idle(page)
        img = tmp_path / "browser_upload.png"
        Image.new("RGB", (40, 30), (200, 50, 50)).save(img)
        page.locator("input[type=file]").first.set_input_files(str(img))
        return text
    raise ValueError(action)


@pytest.mark.parametrize("path,title,action", PAGES, ids=[p[0] for p in PAGES])
def test_page_in_chromium(server, browser, path, title, action, tmp_path):
    url, log, classes = server
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        # the default page (Model) is served at the root URL; its url_path is not an address
        page.goto(f"{url}/{'' if path == 'model' else path}", wait_until="networkidle")
        _wait_shows(page, title)
        _wait_idle(page)
        if action is not None:
            after = _act(page, action, classes, tmp_path)
            if after.startswith("k="):
                page.wait_for_function("(q) => location.search.includes(q)", arg=after, timeout=IDLE_MS)
                after = "nearest in feature space"
            else:
                _wait_shows(page, after)
            _wait_idle(page)
            assert _shows(page, after), after
        assert not page.locator("[data-testid=stException]").count(), page.locator(
            "[data-testid=stException]").first.inner_text()
        assert not _shows(page, "Page not found")
        shots = os.environ.get("CNNVIZ_SCREENSHOTS")
        if shots:
            Path(shots).mkdir(parents=True, exist_ok=True)
            page.evaluate("document.querySelectorAll('*').forEach(e => { if (e.scrollTop) e.scrollTop = 0; })")
            page.wait_for_timeout(300)
            page.screenshot(path=str(Path(shots) / f"{path}.png"), full_page=False)
    finally:
        page.close()


def test_one_click_opens_a_mistake_card_and_the_sanity_check_runs(server, browser):
    """From the list of all mistakes, one click on "Mistake card" shows its heatmaps and nearest
    training images; on Attributions the sanity check draws its curves after one click."""
    url, log, classes = server
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        k = len(classes)
        page.goto(f"{url}/mistakes?true={k}&pred={k}", wait_until="networkidle")
        _wait_shows(page, "Order mistakes by")
        _wait_idle(page)
        assert not _shows(page, "Mistake card:")
        page.get_by_role("button", name="Mistake card").first.click()
        _wait_shows(page, "Mistake card:")
        _wait_idle(page)
        for text in ("(predicted)", "(true)", "Nearest training images", "pushed"):
            assert _shows(page, text), text
        assert "card=" in page.url
        shots = os.environ.get("CNNVIZ_SCREENSHOTS")
        if shots:
            page.get_by_text("Mistake card:").first.scroll_into_view_if_needed()
            page.wait_for_timeout(500)
            page.screenshot(path=str(Path(shots) / "mistake_card.png"), full_page=False)

        page.goto(f"{url}/attributions", wait_until="networkidle")
        _wait_shows(page, "Can I trust this?")
        _wait_idle(page)
        page.get_by_role("tab", name="Sanity check").click()
        page.get_by_role("button", name="Randomise the layers from the top down").click()
        page.wait_for_function("() => /decorrelates|barely changes/.test(document.body.innerText)", timeout=IDLE_MS)
        _wait_idle(page)
        if shots:
            page.get_by_text("Can I trust this?").first.scroll_into_view_if_needed()
            page.wait_for_timeout(500)
            page.screenshot(path=str(Path(shots) / "trust.png"), full_page=False)
        assert not page.locator("[data-testid=stException]").count(), page.locator(
            "[data-testid=stException]").first.inner_text()
    finally:
        page.close()


def test_log_has_no_file_watcher_error(server, browser):
    """Streamlit's watcher trips over torch.classes; the app must start without that error."""
    _, log, _ = server
    text = log.read_text()
    assert "torch.classes" not in text and "Traceback" not in text, text[-2000:]


# What a session sees of a page: its visible text, then its pictures' addresses (Streamlit names
# a picture by a hash of its bytes, so equal addresses are equal pictures), in document order.
SEEN = """() => [document.querySelector('[data-testid=stMain]').innerText].concat(Array.from(
    document.querySelectorAll('[data-testid=stMain] [data-testid=stImage] img')).filter(
        i => i.checkVisibility()).map(i => new URL(i.src).pathname))"""


# True once at least ``n`` visible pictures have loaded and every visible Vega-Lite chart has
# drawn (its SVG or canvas).
DRAWN = """(n) => Array.from(document.querySelectorAll('[data-testid=stMain] [data-testid=stImage] img')).filter(
    i => i.checkVisibility() && i.complete && i.naturalWidth).length >= n
  && Array.from(document.querySelectorAll('[data-testid=stVegaLiteChart]')).filter(c => c.checkVisibility())
    .every(c => c.querySelector('canvas, svg.marks'))"""


def _settled(page) -> list:
    """What the page shows once nothing is left to load (no widget still a placeholder while its
    code loads: under eight sessions at once that takes a while) and two looks a second apart
    agree (a chart draws its axes and legend after its marks)."""
    last = None
    for _ in range(IDLE_MS // 1000):
        page.wait_for_function("() => !document.querySelector('[data-testid^=stSkeleton]')", timeout=IDLE_MS)
        now = page.evaluate(SEEN)
        if now == last:
            return now
        last = now
        page.wait_for_timeout(1000)
    raise AssertionError(f"the page kept changing: {last}")


@pytest.mark.parametrize("path, ready", [("attributions?img=1&target=2", "Evidence for")])
def test_eight_sessions_at_once_see_what_one_session_sees(server, browser, path, ready):
    """The heaviest page (five attribution methods: gradients, Captum's hooks, guided backprop),
    opened by eight sessions at the same moment on one server (one shared model, no locks),
    shows each session exactly what a session alone sees. The other views' calls are checked
    the same way, eight threads at once, in tests/test_shared_model.py."""
    url, _, _ = server

    def open_pages(n: int, plots: int = 1) -> list:
        contexts = [browser.new_context(viewport={"width": 1400, "height": 1000}) for _ in range(n)]
        pages = [c.new_page() for c in contexts]
        for page in pages:  # all requests are out before any page is waited for
            page.goto(f"{url}/{path}", wait_until="commit")
        seen = []
        for page in pages:
            _wait_shows(page, ready)
            _wait_idle(page)
            page.wait_for_function(DRAWN, arg=plots, timeout=IDLE_MS)  # drawn after the script
            assert not page.locator("[data-testid=stException]").count()
            seen.append(_settled(page))
        for c in contexts:
            c.close()
        return seen

    alone = open_pages(1)[0]
    assert len(alone) >= 2 and alone[1], alone  # text and at least one loaded picture
    together = open_pages(8, len(alone) - 1)
    assert [s == alone for s in together] == [True] * 8, [s for s in together if s != alone][:1]

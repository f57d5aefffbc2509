"""Present mode in a real headless Chromium (Debian's ``/usr/bin/chromium`` through Playwright; no
browser is downloaded): a link with present=1 opens a slide ("step 3 of 8: Feature maps") without
the sidebar or the page's widgets, the arrow and PageDown keys walk the lecture sequence across
pages, ``p`` leaves present
mode, and ``p`` typed in a text field stays in the field; and the lecture deck opens from a file, offline, and
moves with the keys. Uses the tiny checkpoint of tests/dashboard_fixtures."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from browser_support import CHROMIUM, chromium, dashboard_server

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")
if not CHROMIUM.exists():
    pytest.skip("Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium)",
                allow_module_level=True)

ROOT = Path(__file__).resolve().parent.parent
IDLE_MS = 120_000


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from dashboard_fixtures import build_tiny_dashboard  # noqa: PLC0415

    tiny = build_tiny_dashboard(tmp_path_factory.mktemp("present_browser"))
    env = dict(os.environ, CNNVIZ_CHECKPOINTS=str(tiny.checkpoints), CNNVIZ_DATA=str(tiny.data),
               PYTHONUNBUFFERED="1")
    log = tmp_path_factory.mktemp("server") / "streamlit.log"
    with dashboard_server(ROOT / "dashboard" / "app.py", env, ROOT, log) as url:
        yield url, tiny


def wait_idle(page) -> None:
    page.wait_for_timeout(300)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=IDLE_MS)


def query(page) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def wait_url(page, path: str, **want: str) -> None:
    """Wait until the URL's path ends with ``path`` and its query holds every ``name=value``."""
    page.wait_for_function(
        "([path, want]) => { const q = new URLSearchParams(location.search); "
        "return location.pathname.endsWith(path) && "
        "Object.entries(want).every(([k, v]) => v === null ? !q.has(k) : q.get(k) === v); }",
        arg=[path, want], timeout=IDLE_MS)


def wait_keys(page, present: bool) -> None:
    """Wait until the key script runs and the buttons of this mode's keys are on the page."""
    page.wait_for_function(
        "(present) => !!window.__cnnvizKeys && "
        "!!document.querySelector(present ? '.st-key-lecture_next button' : '.st-key-present_enter button')",
        arg=present, timeout=IDLE_MS)


def font_px(page, selector: str) -> float:
    return page.evaluate("(s) => parseFloat(getComputedStyle(document.querySelector(s)).fontSize)", selector)


def test_present_mode_keys_walk_the_lecture_and_p_leaves(server):
    server, _ = server
    with chromium(playwright_api) as b:
        page = b.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{server}/feature_maps?present=1&step=3", timeout=IDLE_MS)
        page.locator(".cv-title", has_text="step 3 of 8: Feature maps").wait_for(timeout=IDLE_MS)
        wait_idle(page)
        wait_keys(page, True)
        assert not page.locator("[data-testid=stSidebar]").is_visible()  # no sidebar: no widgets, no navigation
        assert font_px(page, ".cv-title") == pytest.approx(50.0)  # 5% of the window's 1,000 px
        page.locator(".st-key-slide_fig img").first.wait_for(state="visible", timeout=IDLE_MS)  # the maps
        assert page.locator("[data-testid=stRadio], [data-testid=stSelectbox], [data-testid=stSlider]").count() == 0
        assert page.locator(".st-key-present_bar").is_visible()

        page.keyboard.press("ArrowRight")
        wait_url(page, "/receptive_fields", step="4", img="0", present="1", model="tiny")
        page.locator(".cv-title", has_text="step 4 of 8: A receptive field").wait_for(timeout=IDLE_MS)
        wait_idle(page)
        page.keyboard.press("PageDown")  # a presenter's clicker: the next page
        wait_url(page, "/convolution", step="5", pos="0", present="1", model="tiny")
        page.locator(".cv-title", has_text="step 5 of 8: The convolution, step by step").wait_for(timeout=IDLE_MS)
        wait_idle(page)
        page.keyboard.press("ArrowLeft")  # the keys outlive page changes
        wait_url(page, "/receptive_fields", step="4", present="1", model="tiny")
        page.locator(".cv-title", has_text="step 4 of 8: A receptive field").wait_for(timeout=IDLE_MS)
        wait_idle(page)

        page.keyboard.press("p")
        wait_url(page, "/receptive_fields", present=None, step="4")
        wait_idle(page)
        page.locator("section[data-testid=stSidebar]").wait_for(state="visible", timeout=IDLE_MS)
        assert page.locator(".stMain h1").first.inner_text().startswith("Receptive fields")
        assert not page.locator(".st-key-slide").count()
        assert page.get_by_text("Lecture: press p or turn on Present").is_visible()
        assert not page.locator(".st-key-present_bar").count()
        keys_box = page.locator(".st-key-present_keys").bounding_box()  # p's button: in the page, out of sight
        assert page.locator(".st-key-present_enter button").count() == 1
        assert keys_box["width"] == 0 and keys_box["height"] == 0
        wait_keys(page, False)

        page.keyboard.press("ArrowRight")  # outside present mode the arrows are the page's
        page.wait_for_timeout(1000)
        assert urlparse(page.url).path.endswith("/receptive_fields") and query(page)["step"] == "4"

        field = page.locator("[data-testid=stSidebar] input[type=text]").first  # the dataset folder
        field.click()
        field.press("End")
        field.press("p")  # typed into the field, not a present-mode key
        page.wait_for_timeout(1000)
        assert field.input_value().endswith("p")
        assert "present" not in query(page)
        assert page.locator("section[data-testid=stSidebar]").is_visible()
        field.press("Backspace")

        page.locator(".stMain h1").first.click()  # focus off the field: p enters present mode again
        page.keyboard.press("p")
        wait_url(page, "/receptive_fields", present="1")
        page.locator(".cv-title", has_text="step 4 of 8: A receptive field").wait_for(timeout=IDLE_MS)


def test_the_deck_opens_offline_and_moves_with_the_keys(server, tmp_path):
    from cnnviz.checkpoints import load_checkpoint  # noqa: PLC0415
    from cnnviz.lecture import build_lecture_deck  # noqa: PLC0415

    _, tiny = server
    deck = build_lecture_deck(load_checkpoint(tiny.checkpoints / "tiny.json"), tiny.tree, k=3)
    html, _ = deck.write(tmp_path)
    n = len(deck.slides)
    assert n == 7  # the tiny checkpoint has no snapshots: every step but the kernels over training
    with chromium(playwright_api) as b:
        page = b.new_page(viewport={"width": 1280, "height": 720})
        asked = []
        page.route("**/*", lambda route: (asked.append(route.request.url), route.continue_()
                                          if route.request.url.startswith("file://") else route.abort()))
        page.goto(html.as_uri())
        counter = page.locator("#count")
        assert counter.inner_text() == f"1 / {n}"
        shown = "() => { const s = document.querySelector('section.slide.on img'); " \
                "return [s.alt, s.naturalWidth, s.naturalHeight, s.getBoundingClientRect().width]; }"
        alt, w, h, on_screen = page.evaluate(shown)
        assert (alt, w, h) == ("First-layer kernels", 1600, 900) and 1200 <= on_screen <= 1280
        page.keyboard.press("ArrowRight")
        assert counter.inner_text() == f"2 / {n}" and page.evaluate(shown)[0] == "Feature maps"
        page.keyboard.press("PageDown")
        page.keyboard.press("PageUp")
        page.keyboard.press("PageDown")
        assert counter.inner_text() == f"3 / {n}" and page.evaluate(shown)[0] == "A receptive field"
        page.keyboard.press("End")
        page.keyboard.press("ArrowRight")  # stays on the last
        assert counter.inner_text() == f"{n} / {n}" and page.evaluate(shown)[0] == "One unit of a deeper layer"
        page.keyboard.press("ArrowLeft")
        assert counter.inner_text() == f"{n - 1} / {n}" and urlparse(page.url).fragment == str(n - 1)
        assert page.locator("section.slide.on").count() == 1
        assert [u for u in asked if not u.startswith("file://")] == []  # nothing from the network

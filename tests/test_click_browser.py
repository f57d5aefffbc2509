"""Choosing by clicking and drawing, in a real headless Chromium (Debian's ``/usr/bin/chromium``
through Playwright; no browser is downloaded): a click on the Receptive fields image picks the unit
centred nearest it, a click on the Feature maps image picks the pixel and one on its channel grid
the channel, a click on a Filters kernel enlarges it, a click on a confusion-matrix cell shows
its images, and a stroke drawn with the mouse on Predict's canvas is classified. Uses the tiny
checkpoint of tests/dashboard_fixtures."""

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
LAYER = "features.8"  # the tiny model's middle convolution: 8x8 units centred at 3 + 4i
IDLE_MS = 120_000
CLICK_IMAGE = "iframe[title*='streamlit_image_coordinates']"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from dashboard_fixtures import build_tiny_dashboard  # noqa: PLC0415

    tiny = build_tiny_dashboard(tmp_path_factory.mktemp("click_browser"))
    env = dict(os.environ, CNNVIZ_CHECKPOINTS=str(tiny.checkpoints), CNNVIZ_DATA=str(tiny.data),
               PYTHONUNBUFFERED="1")
    log = tmp_path_factory.mktemp("server") / "streamlit.log"
    with dashboard_server(ROOT / "dashboard" / "app.py", env, ROOT, log) as url:
        yield url, tiny


@pytest.fixture(scope="module")
def rf(server):
    """The receptive field of LAYER in the tiny checkpoint, by the library."""
    from cnnviz.checkpoints import load_checkpoint  # noqa: PLC0415
    from cnnviz.inspect.receptive_field import layer_rf  # noqa: PLC0415

    _, tiny = server
    ckpt = load_checkpoint(tiny.checkpoints / f"{tiny.name}.json")
    return layer_rf(ckpt.model, LAYER, ckpt.meta.input_size), ckpt.meta.input_size


@pytest.fixture
def page(server):
    with chromium(playwright_api) as b:
        p = b.new_page(viewport={"width": 1400, "height": 1000})
        yield p
        assert not p.locator("[data-testid=stException]").count(), p.locator(
            "[data-testid=stException]").first.inner_text()


def wait_idle(page) -> None:
    page.wait_for_timeout(300)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=IDLE_MS)


def query(page) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def wait_query(page, **want: int) -> None:
    """Wait until the URL holds every ``name=value`` of ``want``."""
    page.wait_for_function("(want) => { const q = new URLSearchParams(location.search); "
                           "return Object.entries(want).every(([k, v]) => q.get(k) === String(v)); }",
                           arg={k: str(v) for k, v in want.items()}, timeout=IDLE_MS)


def clickable(page, key: str):
    """The picture of the click-to-choose image with widget key ``key``."""
    img = page.frame_locator(f".st-key-{key} {CLICK_IMAGE}").locator("img")
    img.wait_for(timeout=IDLE_MS)
    return img


def click_input_pixel(page, y: int, x: int, size: int, key: str) -> None:
    """Click the middle of input pixel ``(y, x)`` on the enlarged image, however large it is shown."""
    img = clickable(page, key)
    box = img.bounding_box()
    img.click(position={"x": (x + 0.5) * box["width"] / size, "y": (y + 0.5) * box["height"] / size})


def click_tile(page, key: str, i: int, n: int) -> None:
    """Click the middle of tile ``i`` of a grid picture of ``n`` equal tiles, about square
    (``ceil(sqrt(n))`` per row, as ``grid_cols`` lays them out)."""
    import math  # noqa: PLC0415

    img = clickable(page, key)
    box = img.bounding_box()
    cols = math.ceil(math.sqrt(n))
    rows = -(-n // cols)
    r, c = divmod(i, cols)
    img.click(position={"x": (c + 0.5) * box["width"] / cols, "y": (r + 0.5) * box["height"] / rows})


def test_click_picks_the_unit_and_the_pixel_and_a_drawing_is_classified(server, rf, page):
    from cnnviz.inspect.receptive_field import nearest_unit  # noqa: PLC0415

    url, tiny = server
    layer_rf, size = rf

    # Receptive fields: a click near the bottom-left picks the unit centred nearest it
    page.goto(f"{url}/receptive_fields?layer={LAYER}", wait_until="networkidle")
    page.get_by_text("Click the image to pick a unit").first.wait_for(timeout=IDLE_MS)
    wait_idle(page)
    before = (query(page)["uy"], query(page)["ux"])
    uy, ux = nearest_unit(layer_rf, 25, 6)
    assert (uy, ux) == (5, 1) and before == ("4", "4")  # pixel (25, 6): centres 23 and 7 are nearest
    click_input_pixel(page, 25, 6, size, "rf_click")
    wait_query(page, uy=uy, ux=ux)
    wait_idle(page)
    page.get_by_text(f"unit ({uy}, {ux})").first.wait_for(timeout=IDLE_MS)

    # Feature maps: a click picks the pixel; every channel there is shown, strongest first
    page.goto(f"{url}/feature_maps?layer={LAYER}", wait_until="networkidle")
    page.get_by_text("Click a spot").first.wait_for(timeout=IDLE_MS)
    wait_idle(page)
    assert "py" not in query(page)
    click_input_pixel(page, 13, 30, size, "fm_click")
    wait_query(page, py=13, px=30)
    wait_idle(page)
    where = nearest_unit(layer_rf, 13, 30)
    page.wait_for_function("(t) => Array.from(document.querySelectorAll('.js-plotly-plot text'))"
                           ".some(e => e.textContent.includes(t))",
                           arg=f"at map position ({where[0]}, {where[1]})", timeout=IDLE_MS)
    assert int(query(page)["ch"]) >= 0
    # a click on the channel grid's second tile enlarges the second strongest channel
    strongest = page.get_by_text("Strongest channels:").first.inner_text()
    second = int(strongest.split("Strongest channels: ")[1].split(",")[1])
    n_shown = int(page.get_by_text(f"{LAYER}: ").first.inner_text().split(": ")[1].split(" of ")[0])
    click_tile(page, "fm_grid", 1, n_shown)
    wait_query(page, ch=second)
    wait_idle(page)
    page.get_by_text(f"{LAYER}, channel {second} (rank 2 ").first.wait_for(timeout=IDLE_MS)

    # Filters: a click on a kernel of the grid enlarges it
    page.goto(f"{url}/filters", wait_until="networkidle")
    page.get_by_text("Click a kernel to enlarge it").first.wait_for(timeout=IDLE_MS)
    wait_idle(page)
    assert query(page)["filter"] == "0"
    click_tile(page, "f_click", 4, 8)  # the tiny model's 8 kernels, as learned
    wait_query(page, filter=4)
    wait_idle(page)
    page.get_by_text("Filter 4's weights").first.wait_for(timeout=IDLE_MS)

    # Mistakes: a click on a cell of the confusion matrix (a Vega-Lite chart) shows its images
    page.goto(f"{url}/mistakes", wait_until="networkidle")
    page.get_by_text("Images of a cell").first.wait_for(timeout=IDLE_MS)
    wait_idle(page)
    now = (int(query(page)["true"]), int(query(page)["pred"]))
    t, p = next(c for c in ((0, 2), (2, 0)) if c != now)
    cell = page.locator(f"[data-testid=stVegaLiteChart] svg.marks path[aria-label^='predicted: {tiny.classes[p]}; "
                        f"true: {tiny.classes[t]};']").first
    cell.wait_for(timeout=IDLE_MS)
    cell.click()
    wait_query(page, true=t, pred=p)
    wait_idle(page)
    page.get_by_text(f"{tiny.classes[t]} images predicted as {tiny.classes[p]}").first.wait_for(timeout=IDLE_MS)

    # Predict: draw a stroke with the mouse; the drawing is classified
    page.goto(f"{url}/predict", wait_until="networkidle")
    page.get_by_text("a sample of held-out images").first.wait_for(timeout=IDLE_MS)
    wait_idle(page)
    page.get_by_text("draw an image", exact=True).first.click()
    canvas = page.locator("canvas").last
    canvas.wait_for(timeout=IDLE_MS)
    wait_idle(page)
    assert not page.get_by_text("1 image; most predicted").count()
    box = page.locator("canvas").first.bounding_box()
    page.mouse.move(box["x"] + 60, box["y"] + 60)
    page.mouse.down()
    for i in range(1, 16):
        page.mouse.move(box["x"] + 60 + 10 * i, box["y"] + 60 + 8 * i)
    page.mouse.up()
    page.get_by_text("1 image; most predicted").first.wait_for(timeout=IDLE_MS)
    wait_idle(page)
    assert page.locator("[data-testid=stDataFrame]").first.is_visible()
    page.get_by_text("What the model sees").first.wait_for(timeout=IDLE_MS)

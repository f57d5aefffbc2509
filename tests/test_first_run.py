"""A first run as a new user has it: a copy of the repository with nothing beside it, HOME and
every cache in an empty folder, no ``$CNNVIZ_DATA``, no network. Headless Chromium (Debian's, at
``/usr/bin/chromium``) visits every page of every shipped checkpoint: each must show an image or
a figure from the demo gallery, and none the dataset hint or an exception."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
from browser_support import CHROMIUM, chromium, dashboard_server

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")
if not CHROMIUM.exists():
    pytest.skip("Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium)",
                allow_module_level=True)
if not (ROOT / ".git").exists():
    pytest.skip("needs a git checkout to copy the repository's files", allow_module_level=True)

# every page that shows the data (Camera shows the user's camera, tested in test_camera_browser.py)
PAGES = ["model", "filters", "feature_maps", "receptive_fields", "convolution", "units", "neighbours", "mistakes",
         "attributions", "predict"]
SHIPPED = sorted(p.stem for p in (ROOT / "checkpoints").glob("*.json") if p.with_suffix(".safetensors").is_file())
HINT = "This page needs the dataset"
IDLE_MS = int(float(os.environ.get("CNNVIZ_BROWSER_TIMEOUT", "180")) * 1000)


def _repository_files() -> list[str]:
    """What a clone holds: the tracked files, plus new files git does not ignore (so the test
    sees the working tree a commit would record)."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                         check=True, capture_output=True).stdout
    return [f for f in out.decode().split("\0") if f and (ROOT / f).is_file()]


@pytest.fixture(scope="module")
def fresh_server(tmp_path_factory):
    """The dashboard from a copy of the repository in an empty folder, with an empty HOME."""
    base = tmp_path_factory.mktemp("fresh")
    clone, home = base / "clone", base / "home"
    for rel in _repository_files():
        (clone / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, clone / rel)
    home.mkdir()
    assert not (clone.parent / "shared").exists()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CNNVIZ_") and k not in ("XDG_CACHE_HOME", "XDG_DATA_HOME", "TORCH_HOME")}
    env |= {"HOME": str(home), "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(clone)}
    log = base / "streamlit.log"
    with dashboard_server(clone / "dashboard" / "app.py", env, clone, log) as url:
        yield url, home, log


@pytest.fixture(scope="module")
def browser():
    with chromium(playwright_api) as b:
        yield b


def _wait_idle(page) -> None:
    page.wait_for_timeout(500)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=IDLE_MS)


VISUALS = """() => {
    const main = document.querySelector('[data-testid="stMain"]') || document.body;
    const shown = e => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
    const imgs = Array.from(main.querySelectorAll('img')).filter(i => i.naturalWidth > 0 && shown(i));
    const plots = Array.from(main.querySelectorAll('[data-testid="stPlotlyChart"], [data-testid="stVegaLiteChart"]'))
        .filter(p => shown(p) && p.querySelector('svg, canvas'));
    const frames = Array.from(main.querySelectorAll('iframe')).filter(f => {  // click-to-choose pictures
        try { return shown(f) && Array.from(f.contentDocument.images).some(i => i.naturalWidth > 0); }
        catch (e) { return false; } });
    const tables = Array.from(main.querySelectorAll('[data-testid="stDataFrame"] canvas')).filter(shown);
    return imgs.length + plots.length + tables.length + frames.length;
}"""


def _has_visuals(page) -> bool:
    """True once the page's main area (not the sidebar) shows an image (also inside a
    click-to-choose frame), a drawn chart (Plotly or Vega-Lite) or a data table with image cells
    (a canvas); waits up to 30 s for figures to draw."""
    try:
        page.wait_for_function(f"() => ({VISUALS})() > 0", timeout=30_000)
        return True
    except playwright_api.TimeoutError:
        return False


@pytest.mark.parametrize("name", SHIPPED)
def test_every_page_shows_real_images_on_a_fresh_offline_machine(fresh_server, browser, name):
    url, home, log = fresh_server
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    problems = []
    try:
        for view in PAGES:
            page.goto(f"{url}/{view}?model={name}")
            page.wait_for_selector("[data-testid=stSidebar]", timeout=IDLE_MS)
            _wait_idle(page)
            text = page.inner_text("body")
            if HINT in text:
                problems.append(f"{view}: shows the dataset hint")
            if page.locator("[data-testid=stException]").count():
                problems.append(f"{view}: exception {page.locator('[data-testid=stException]').first.inner_text()[:300]}")
            if "demo gallery" not in text:
                problems.append(f"{view}: does not say it shows the demo gallery")
            if not _has_visuals(page):
                problems.append(f"{view}: no image or figure")
    finally:
        page.close()
    assert not problems, f"{name}: {problems}\nserver log:\n{log.read_text()[-3000:]}"
    # nothing was downloaded or looked for outside the clone and the empty HOME
    assert not (home / ".cache" / "cnnviz" / "datasets").exists()

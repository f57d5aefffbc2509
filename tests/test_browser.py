"""End to end in a real headless Chromium: start the dashboard, open every page, use a widget.

Uses Debian's Chromium (``/usr/bin/chromium``, installed by ``.ci/run``) driven by Playwright's
Python package; no browser is downloaded. By default the server gets a tiny checkpoint and a tiny
dataset made here. To make the README's screenshots with the shipped models and real data, run

    CNNVIZ_SCREENSHOTS=docs/screenshots CNNVIZ_BROWSER_CHECKPOINTS=checkpoints \\
    CNNVIZ_BROWSER_DATA=../shared/data .venv/bin/python -m pytest tests/test_browser.py
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")
if not CHROMIUM.exists():
    pytest.skip("Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium)",
                allow_module_level=True)

# (url path, text that must be visible, what to do with one widget, text visible after it)
PAGES = [
    ("model", "Training curves", None, "Layers"),
    ("filters", "First-layer filters", ("radio", "by norm"), "Enlarge filter"),
    ("feature_maps", "Feature maps", ("select", "Layer"), "Layer"),
    ("receptive_fields", "Receptive field", ("select", "Layer"), "Layer"),
    ("neighbours", "Neighbours", ("slider", None), "nearest"),
    ("mistakes", "Mistakes", ("radio", "row-normalised"), "Confusion"),
    ("attributions", "Attributions", None, "Grad-CAM"),
    ("predict", "Predict", None, "Upload"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A dashboard server on a free localhost port; stopped at the end."""
    ckpt_dir = os.environ.get("CNNVIZ_BROWSER_CHECKPOINTS")
    data = os.environ.get("CNNVIZ_BROWSER_DATA")
    if not ckpt_dir:
        from dashboard_fixtures import build_tiny_dashboard  # noqa: PLC0415

        tiny = build_tiny_dashboard(tmp_path_factory.mktemp("browser"))
        ckpt_dir, data = tiny.checkpoints, tiny.data
    port = _free_port()
    env = dict(os.environ, CNNVIZ_CHECKPOINTS=str(ckpt_dir), CNNVIZ_DATA=str(data or ""),
               PYTHONUNBUFFERED="1")
    log = tmp_path_factory.mktemp("server") / "streamlit.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard" / "app.py"),
             "--server.port", str(port), "--server.headless", "true", "--server.address", "127.0.0.1"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.5)
        else:
            raise RuntimeError(f"the dashboard did not start:\n{log.read_text()}")
        yield f"http://127.0.0.1:{port}", log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage"])
        yield b
        b.close()


# Seconds a page may take to finish running: the first visit with real data computes the
# features of a whole dataset (override with CNNVIZ_BROWSER_TIMEOUT).
IDLE_MS = int(float(os.environ.get("CNNVIZ_BROWSER_TIMEOUT", "120")) * 1000)


def _wait_idle(page) -> None:
    """Wait until Streamlit has finished running the script (no 'Running...' indicator)."""
    page.wait_for_timeout(300)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=IDLE_MS)


@pytest.mark.parametrize("path,title,action,after", PAGES, ids=[p[0] for p in PAGES])
def test_page_in_chromium(server, browser, path, title, action, after):
    url, log = server
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(f"{url}/{path}", wait_until="networkidle")
        page.get_by_text(title, exact=False).first.wait_for(timeout=IDLE_MS)
        _wait_idle(page)
        if action is not None:
            kind, label = action
            if kind == "radio":
                page.get_by_text(label, exact=True).first.click()
            elif kind == "select":
                page.locator("[data-testid=stSelectbox]").filter(has_text=label).first.locator(
                    "[role=combobox]").click()
                options = page.locator("[role=option]")
                options.first.wait_for(timeout=30_000)
                options.nth(1 if options.count() > 1 else 0).click()
            elif kind == "slider":
                page.get_by_role("slider").first.press("ArrowRight")
            _wait_idle(page)
        page.get_by_text(after, exact=False).first.wait_for(timeout=IDLE_MS)
        assert not page.locator("[data-testid=stException]").count(), page.locator(
            "[data-testid=stException]").first.inner_text()
        shots = os.environ.get("CNNVIZ_SCREENSHOTS")
        if shots:
            Path(shots).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(shots) / f"{path}.png"), full_page=False)
    finally:
        page.close()


def test_log_has_no_file_watcher_error(server, browser):
    """Streamlit's watcher trips over torch.classes; the app must start without that error."""
    _, log = server
    text = log.read_text()
    assert "torch.classes" not in text and "Traceback" not in text, text[-2000:]

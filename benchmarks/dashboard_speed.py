"""Dashboard latency in headless Chromium with the shipped CIFAR-10 model and the real data:

* first render of the Filters page once the model is loaded (a new browser context = a new
  Streamlit session and a first visit with an empty browser cache): from the start of
  navigation until its text, widgets and images show, and until both its Plotly figures are
  drawn, read from the page's own clock (``performance.now()``); and the same for a minimal
  Streamlit page, the framework's floor;
* warm widget changes: from the click, dispatched inside the page, until the changed text is in
  the document, also timed inside the page (Playwright's own actionability checks, 50-250 ms
  each on this machine, are not the app's latency);
* the browser main thread's busy time for each (Chrome's ``TaskDuration`` metric), to tell the
  browser's share from the server's. The server-side script time is printed by
  ``benchmarks/dashboard_script_speed.py``.

    python benchmarks/dashboard_speed.py [--runs 5]

Needs Debian's chromium (/usr/bin/chromium) and playwright (pip install -e '.[test]').
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

from _common import ROOT, SHARED

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-sync",
        "--disable-component-update", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def idle(page, timeout_ms: int = 600_000) -> None:
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')",
                           timeout=timeout_ms)


# Click ``el`` inside the page and resolve with the milliseconds until ``text`` is shown: in
# the page's visible text or a visible Plotly figure (checked on every DOM mutation and frame).
CLICK_UNTIL_TEXT = """([el, text]) => new Promise((resolve, reject) => {
    const t0 = performance.now();
    // Streamlit keeps earlier versions of a keyed chart in the page, hidden: only shown ones count
    const done = () => document.body.innerText.includes(text) || Array.from(
        document.querySelectorAll('.js-plotly-plot')).some(p => p.checkVisibility({opacityProperty: true,
            visibilityProperty: true}) && Array.from(p.querySelectorAll('text')).some(t => t.textContent.includes(text)));
    const check = () => { if (done()) { obs.disconnect(); resolve(performance.now() - t0); return true; } return false; };
    const obs = new MutationObserver(check);
    obs.observe(document.body, {subtree: true, childList: true, characterData: true});
    setTimeout(() => { obs.disconnect(); reject(new Error('timed out waiting for ' + text)); }, 30000);
    el.click();
    const tick = () => { if (!check()) requestAnimationFrame(tick); };
    requestAnimationFrame(tick);
})"""


def busy_ms(cdp) -> float:
    """The browser main thread's busy time so far (Chrome's TaskDuration), in ms."""
    return 1000 * next(m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]
                       if m["name"] == "TaskDuration")


def click_until(page, locator, text: str, cdp) -> tuple[float, float]:
    """(ms from an in-page click on ``locator`` until ``text`` shows, main-thread busy ms)."""
    handle = locator.element_handle()
    b0 = busy_ms(cdp)
    ms = page.evaluate(CLICK_UNTIL_TEXT, [handle, text])
    idle(page)
    return ms, busy_ms(cdp) - b0


def layer_changes(page, cdp, runs: int, start: int = 0) -> list[tuple[float, float]]:
    """``click_until`` for each of ``runs`` layer changes on the open Feature maps page, to the
    4th-9th layers in turn from the ``start``-th (each change picks another layer than the last)."""
    out = []
    for i in range(start, start + runs):
        box = page.locator("[data-testid=stSelectbox]").filter(has_text="Layer").first
        box.locator("[role=combobox]").click()
        opts = page.locator("[role=option]")
        opts.first.wait_for()
        target = opts.nth(3 + i % 6)
        name = target.inner_text().strip()
        out.append(click_until(page, target, f"{name}: ", cdp))
    return out


def summary(name: str, pairs: list[tuple[float, float]]) -> None:
    ms = [p[0] for p in pairs]
    busy = [p[1] for p in pairs]
    print(f"{name}: median {statistics.median(ms):.0f} ms, max {max(ms):.0f} ms "
          f"(browser main thread busy: median {statistics.median(busy):.0f} ms)")


# The framework's own floor: a Streamlit page with a title, a number input, a small image and
# a 2x2 Plotly heatmap.
MINIMAL_APP = """import numpy as np
import plotly.graph_objects as go
import streamlit as st
st.set_page_config(layout="wide")
st.title("minimal")
st.number_input("n", 0, 10, 1)
st.image(np.full((64, 64, 3), 128, np.uint8))
st.plotly_chart(go.Figure(go.Heatmap(z=[[1, 2], [3, 4]])))
"""


def start_server(app: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """``streamlit run app`` on a free port; returns the process and its URL once healthy."""
    port = free_port()
    # run from the repository root, as the README does, so the project's .streamlit/config.toml
    # applies (no file watcher); the minimal app gets the same setting on the command line
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(port),
                               "--server.headless", "true", "--server.fileWatcherType", "none"],
                              cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)
            break
        except OSError:
            time.sleep(0.5)
    return server, url


# Recorded from the first animation frame of a new page: when each part first shows, on the
# page's own clock (ms since navigation start). "content": the title, a number input and an
# image (the page's text, widgets and pictures); "figures": the given number of drawn Plotly
# figures, visible (Streamlit keeps hidden stale copies of keyed charts).
RENDER_TIMELINE = """(() => { window.__render = {};
  const visible = (sel) => Array.from(document.querySelectorAll(sel)).filter(e => e.checkVisibility());
  const tick = () => {
    const r = window.__render, want = window.__wantFigures || 1;
    if (!('content' in r) && visible('h1').length && visible('[data-testid=stNumberInput] input').length
        && visible('[data-testid=stImage] img').length) r.content = performance.now();
    if (!('figures' in r) && visible('.js-plotly-plot .main-svg').length >= want) r.figures = performance.now();
    if (!('content' in r && 'figures' in r)) requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick); })()"""


def first_renders(browser, url: str, runs: int, figures: int) -> list[tuple[float, float, float]]:
    """Per new browser context (a new Streamlit session with an empty browser cache, as a first
    visit): (ms until the text, widgets and images show, ms until ``figures`` Plotly figures are
    drawn, main-thread busy ms by then)."""
    out = []
    for _ in range(runs):
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.add_init_script(f"window.__wantFigures = {figures};" + RENDER_TIMELINE)
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        cdp.send("Performance.enable")
        page.goto(url, wait_until="commit")
        page.wait_for_function("() => 'content' in window.__render && 'figures' in window.__render",
                               timeout=60_000, polling=100)
        r = page.evaluate("window.__render")
        out.append((r["content"], r["figures"], busy_ms(cdp)))
        context.close()
    return out


def render_summary(name: str, runs: list[tuple[float, float, float]]) -> None:
    content, figs, busy = ([r[i] for r in runs] for i in range(3))
    print(f"{name}: text, widgets and images {min(content):.0f}-{max(content):.0f} ms "
          f"(median {statistics.median(content):.0f}); Plotly figures drawn {min(figs):.0f}-{max(figs):.0f} ms "
          f"(median {statistics.median(figs):.0f}); browser main thread busy median {statistics.median(busy):.0f} ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    env = dict(os.environ, CNNVIZ_CHECKPOINTS=str(ROOT / "checkpoints"), CNNVIZ_DATA=str(SHARED))
    server, url = start_server(ROOT / "dashboard" / "app.py", env)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            warm = browser.new_page(viewport={"width": 1400, "height": 1000})
            for path in ("", "filters", "feature_maps"):  # Model (the root), then load the test split once
                warm.goto(f"{url}/{path}?model=cifar10_fast", wait_until="networkidle")
                warm.get_by_text("Layer" if path != "filters" else "Enlarge filter").first.wait_for(timeout=600_000)
                idle(warm)
            warm.close()

            first_renders(browser, f"{url}/filters?model=cifar10_fast", 1, figures=2)  # browser warm-up
            render_summary("first render of Filters (model loaded, new session, first visit)",
                           first_renders(browser, f"{url}/filters?model=cifar10_fast", a.runs, figures=2))

            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            cdp = page.context.new_cdp_session(page)
            cdp.send("Performance.enable")
            page.goto(f"{url}/filters?model=cifar10_fast", wait_until="networkidle")
            page.locator(".js-plotly-plot").first.wait_for()
            idle(page)
            toggles = []
            for i in range(a.runs * 2):
                label, expect = (("all filters together", "one min-max scale shared") if i % 2 == 0
                                 else ("each filter", "each filter min-max scaled"))
                toggles.append(click_until(page, page.get_by_text(label, exact=True).first, expect, cdp))
            summary("Filters, normalisation toggle (warm)", toggles)

            page.goto(f"{url}/feature_maps?model=cifar10_fast", wait_until="networkidle")
            page.get_by_text("strongest mean activation first").first.wait_for(timeout=60_000)
            idle(page)
            summary("Feature maps, layer change (warm)", layer_changes(page, cdp, a.runs * 2))
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)
    with tempfile.TemporaryDirectory() as tmp:
        app = Path(tmp) / "minimal.py"
        app.write_text(MINIMAL_APP)
        server, url = start_server(app, dict(os.environ))
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
                first_renders(browser, url, 1, figures=1)  # browser warm-up, as above
                render_summary("floor: a minimal Streamlit page (title, number input, image, one 2x2 "
                               "Plotly heatmap)", first_renders(browser, url, a.runs, figures=1))
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=20)


if __name__ == "__main__":
    main()

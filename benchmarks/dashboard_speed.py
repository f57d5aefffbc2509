"""Dashboard speed against the framework's floor, in headless Chromium, with the shipped
checkpoints (``checkpoints/``, default model ``cifar10_cnn``) on their demo gallery: a fresh
server with an empty cnnviz cache (``$CNNVIZ_CACHE`` in a temporary folder, no ``$CNNVIZ_DATA``),
and beside it a minimal Streamlit page (title, number input, image, one 2x2 Plotly heatmap), the
framework's floor, in the same run.

* first visit ever of each page (the server computes and caches features, unit peaks, cleanlab's
  issues, attributions...): once, untimed by the targets, reported on its own;
* first render of each page in a new browser context (a new Streamlit session with an empty
  browser cache), ``--repeats`` times, interleaved with the floor page (floor, page A, floor,
  page B, ...) so the machine's drift affects both alike. Read from the page's own clock
  (``performance.now()`` since navigation start, checked every animation frame): "text" is when
  all the page's text, widgets, images (loaded), component frames and tables are shown; "figures"
  when all its figures (Plotly or Vega-Lite charts) are drawn. "All" is what the page holds once its script has
  finished and nothing has changed for a second. Target: each median at most 1.25x the floor
  page's median in the same run;
* warm interactions on the open page: from the click or key press, seen inside the page, until
  the changed text shows (on the page or in a drawn Plotly figure), median and max of
  ``--clicks``, after one untimed first change (reported as "first": it may compute what later
  ones find cached); "settled" adds: the script finished, nothing left of the previous run,
  images loaded, figures drawn. Target: median until shown at most 300 ms;
* the browser main thread's busy time for each (Chrome's ``TaskDuration``), to tell the
  browser's share from the server's (``benchmarks/dashboard_script_speed.py`` times the server);
* the Camera page live: a browser whose fake camera (Chromium's ``--use-fake-device-for-media-stream``)
  sends ``--camera-fps`` frames a second to the page; after START, the frame rate the page shows
  (frames through the model per second) sampled for ``--live-seconds``, its ms per frame and the
  frames dropped. Target: at least 10 frames/s (the browser, the WebRTC decoding and the model
  share the machine's cores).

    python benchmarks/dashboard_speed.py [--repeats 3] [--clicks 5] [--pages filters,units] \
        [--model cifar10_cnn] [--first-visit-timeout 300] [--cache-dir DIR] [--live-seconds 10] \
        [--camera-fps 30]

Exit status 0 always (a benchmark); the last line says how many targets were met. Needs Debian's
chromium (/usr/bin/chromium) and playwright (pip install -e '.[test]'); never downloads a browser.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from playwright.sync_api import sync_playwright

from _common import ROOT

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-sync",
        "--disable-component-update", "--no-first-run"]
CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1400, "height": 1000}
# The dashboard's pages by URL path ("" is Model: /model shows "Page not found").
PAGES = {"model": "", "filters": "filters", "feature_maps": "feature_maps", "receptive_fields": "receptive_fields",
         "convolution": "convolution", "units": "units", "neighbours": "neighbours", "mistakes": "mistakes",
         "attributions": "attributions", "predict": "predict", "camera": "camera"}
LIVE_TARGET_FPS = 10.0
# The Camera page's live caption: "12.3 frames/s · 14 ms per frame on fp32 · 3 of 250 frames dropped"
LIVE_CAPTION = re.compile(r"([0-9.]+) frames/s · ([0-9]+) ms per frame on (.+?) · "
                          r"([0-9,]+) of ([0-9,]+) frames dropped")
RENDER_TARGET = 1.25  # x the floor page's median
FIRST_TARGET = 2.0  # the heavy pages' first visit ever, x the floor's first visit
FIRST_TARGET_PAGES = ("neighbours", "units", "mistakes")
CLICK_TARGET_MS = 300.0
QUIET_MS = 1000  # a page has rendered once nothing changed for this long and nothing runs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Streamlit's script state, on its root element for its own end-to-end tests: "running",
# "notRunning", ...
SCRIPT_STATE = "document.querySelector('[data-testid=stApp]')?.dataset.testScriptState"


def idle(page, timeout_ms: int = 600_000) -> None:
    """Waits until the app's script has finished (no status widget, the script not running)."""
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]') && "
                           f"{SCRIPT_STATE} === 'notRunning'", timeout=timeout_ms)


# Click ``el`` inside the page and resolve with the milliseconds until ``text`` is shown: in
# the page's visible text or a visible Plotly figure (checked on every DOM mutation and frame).
# (Used by ``layer_changes``, which ``dashboard_contention.py`` shares.)
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


def start_server(app: Path, env: dict[str, str], log: Path | None = None) -> tuple[subprocess.Popen, str]:
    """``streamlit run app`` on a free port; returns the process and its URL once healthy (its
    output goes to ``log``, else nowhere)."""
    port = free_port()
    # run from the repository root, as the README does, so the project's .streamlit/config.toml
    # applies (no file watcher); the minimal app gets the same setting on the command line
    out = open(log, "w") if log is not None else subprocess.DEVNULL
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(port),
                               "--server.headless", "true", "--server.fileWatcherType", "none"],
                              cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                              start_new_session=True)  # its own process group: stop_server ends its children too
    if log is not None:
        out.close()
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)
            return server, url
        except OSError:
            if server.poll() is not None:
                break
            time.sleep(0.5)
    server.terminate()
    tail = log.read_text()[-3000:] if log is not None and log.exists() else ""
    raise RuntimeError(f"streamlit run {app} did not start\n{tail}")


def stop_server(server: subprocess.Popen) -> None:
    """Stops a ``start_server`` server, and whatever it started (e.g. a stuck worker pool)."""
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=20)
    try:
        os.killpg(server.pid, signal.SIGKILL)  # the group start_server made for it: its leftover children
    except (ProcessLookupError, PermissionError):
        pass


# A Plotly chart (Streamlit's element) counts as drawn once its SVG holds a trace (scatter, bar,
# heatmap or image) or its WebGL canvas is there (scattergl), or its SVG for a figure without
# data or with WebGL traces only (drawn, if at all, where the page cannot see).
DRAWN = """((c) => { const p = c.querySelector('.js-plotly-plot');
  return !!p && !!p.querySelector('.main-svg') && (!p.data || !p.data.length
    || !!p.querySelector('.main-svg .trace, .main-svg .hm, .main-svg .im, .gl-container canvas')
    || p.data.every(t => /gl|3d|splom|parcoords|mapbox|map$/.test(t.type || ''))); })"""

# A Vega-Lite chart (``st.altair_chart``, ``st.line_chart``...) counts as drawn once vega-embed has
# put its SVG (Streamlit's renderer here) or a canvas in the element, with a non-zero size.
VEGA_DRAWN = """((c) => { const v = c.querySelector('canvas, svg.marks');
  return !!v && v.getBoundingClientRect().width > 0; })"""

# Recorded every animation frame from the start of a new page, on the page's own clock (ms since
# navigation start), whenever it changes: how many of the page's parts are shown. [0] element
# containers (text, widgets, ...; not spinners, progress bars, stale ones or skeletons, which
# stand in for an element whose code is loading), [1] loaded images,
# [2] loaded component frames (and the images in them), [3] drawn tables, [4] drawn Plotly
# and Vega-Lite charts, [5] such charts present, [6] parts present but not yet loaded or drawn, [7] 1 while
# the script runs. Streamlit keeps hidden stale copies of keyed charts: only shown parts count.
RENDER_TIMELINE = """(() => { if (window !== window.top) return;
  const r = window.__render = {timeline: [], lastChange: 0, stop: false};
  const shown = (e) => e.checkVisibility({opacityProperty: true, visibilityProperty: true});
  const drawn = """ + DRAWN + """;
  const vegaDrawn = """ + VEGA_DRAWN + """;
  const sig = () => {
    let els = 0, imgs = 0, frames = 0, grids = 0, figs = 0, plots = 0, pending = 0;
    for (const c of document.querySelectorAll('[data-testid=stElementContainer]')) {
      if (c.getAttribute('data-stale') === 'true' || !shown(c)
          || c.querySelector('[data-testid=stSpinner], [data-testid=stProgress]')) continue;
      if (c.querySelector('[data-testid^=stSkeleton]')) pending++;  // its code is still loading
      else els++;
    }
    for (const i of document.querySelectorAll('[data-testid=stImage] img'))
      if (shown(i)) { if (i.complete && i.naturalWidth) imgs++; else pending++; }
    for (const f of document.querySelectorAll('iframe')) {
      if (!shown(f)) continue;
      try {
        const d = f.contentDocument;
        if (d && d.readyState === 'complete' && Array.from(d.images).every(i => i.complete && i.naturalWidth))
          frames++; else pending++;
      } catch (e) { frames++; }  // another origin: counted once shown
    }
    for (const g of document.querySelectorAll('[data-testid=stDataFrame]'))
      if (shown(g)) { if (g.querySelector('canvas')) grids++; else pending++; }
    for (const c of document.querySelectorAll('[data-testid=stPlotlyChart]'))
      if (shown(c)) { plots++; if (drawn(c)) figs++; else pending++; }
    for (const c of document.querySelectorAll('[data-testid=stVegaLiteChart]'))  // Altair / st.*_chart
      if (shown(c)) { plots++; if (vegaDrawn(c)) figs++; else pending++; }
    return [els, imgs, frames, grids, figs, plots, pending, """ + SCRIPT_STATE + """ === 'notRunning' ? 0 : 1];
  };
  const tick = () => {
    if (r.stop) return;
    const s = sig(), last = r.timeline.length ? r.timeline[r.timeline.length - 1][1] : null;
    if (!last || s.some((v, i) => v !== last[i])) { const now = performance.now(); r.timeline.push([now, s]); r.lastChange = now; }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick); })()"""

# The page has rendered: a title, the script finished, nothing pending, nothing changed for
# ``quiet`` ms.
RENDERED = """(quiet) => { const r = window.__render, last = r && r.timeline.length && r.timeline[r.timeline.length - 1][1];
  return !!last && !!document.querySelector('h1') && last[6] === 0 && last[7] === 0
    && !document.querySelector('[data-testid=stStatusWidget], [data-testid=stSpinner], [data-testid=stProgress]')
    && performance.now() - r.lastChange > quiet; }"""


@dataclass
class Render:
    text: float | None = None  # ms: all text, widgets, images, frames and tables shown
    figures: float | None = None  # ms: all figures (Plotly, Vega-Lite) drawn (None: the page has none)
    busy: float = 0.0
    parts: list[int] = field(default_factory=list)  # the final counts (see RENDER_TIMELINE)
    error: str | None = None

    def describe_parts(self) -> str:
        if not self.parts:
            return ""
        els, imgs, frames, grids, figs, plots = self.parts[:6]
        s = f"{els} elements, {imgs} images, {frames} frames, {grids} tables, {figs} figures"
        return s + (f" ({plots - figs} figures never drawn!)" if plots != figs else "")


def visit(browser, url: str, timeout_ms: int) -> Render:
    """A first render of ``url`` in a new browser context (a new Streamlit session, an empty
    browser cache), from the page's own timeline."""
    context = browser.new_context(viewport=VIEWPORT)
    try:
        context.add_init_script(RENDER_TIMELINE)
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        cdp.send("Performance.enable")
        page.goto(url, wait_until="commit")
        try:
            page.wait_for_function(RENDERED, arg=QUIET_MS, timeout=timeout_ms, polling=200)
        except Exception as e:  # say what the page showed then
            last = page.evaluate("() => window.__render && window.__render.timeline.slice(-1)[0]")
            raise RuntimeError(f"not rendered after {timeout_ms / 1000:.0f} s; last counts {last}, "
                               "[elements, images, frames, tables, figures, charts, pending, running]") from e
        timeline = page.evaluate("() => { window.__render.stop = true; return window.__render.timeline; }")
        busy = busy_ms(cdp)
        problem = page.evaluate("""() => { const e = document.querySelector('[data-testid=stException]');
            if (e) return e.innerText.slice(0, 300);
            return document.body.innerText.includes('Page not found') ? 'Page not found' : null; }""")
    finally:
        context.close()
    final = timeline[-1][1]
    text = next(t for t, s in timeline if all(s[k] >= final[k] for k in range(4)))
    figures = next(t for t, s in timeline if s[4] >= final[4]) if final[4] else None
    return Render(text, figures, busy, final, problem)


def first_line(e: BaseException) -> str:
    return f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0][:300]}"


def safe_visit(browser, url: str, timeout_ms: int) -> Render:
    try:
        return visit(browser, url, timeout_ms)
    except Exception as e:  # noqa: BLE001 (a benchmark reports and goes on)
        return Render(error=first_line(e))


# Armed before an interaction: from the first pointerdown, keydown or click the page sees until
# ``text`` shows (visible text or a shown Plotly figure), then until the page has settled too
# (no stale element left, images loaded, figures drawn, no spinner), checked every frame.
ARM = """(text) => {
  const s = window.__act = {t0: null, text: null, settled: null, error: null};
  const drawn = """ + DRAWN + """;
  const vegaDrawn = """ + VEGA_DRAWN + """;
  const shown = (e) => e.checkVisibility({opacityProperty: true, visibilityProperty: true});
  const textShown = () => document.body.innerText.includes(text) || Array.from(
      document.querySelectorAll('.js-plotly-plot, [data-testid=stVegaLiteChart]')).some(p => shown(p)
          && Array.from(p.querySelectorAll('text')).some(t => t.textContent.includes(text)));
  const count = (sel, f) => Array.from(document.querySelectorAll(sel)).filter(f).length;
  const unsettled = () => {  // what still differs from a settled page
    const n = {stale: count('[data-testid=stElementContainer][data-stale=true]', shown),
               images: count('[data-testid=stImage] img', i => shown(i) && !(i.complete && i.naturalWidth)),
               charts: count('[data-testid=stPlotlyChart]', c => shown(c) && !drawn(c))
                 + count('[data-testid=stVegaLiteChart]', c => shown(c) && !vegaDrawn(c)),
               busy: count('[data-testid=stSpinner], [data-testid=stProgress], [data-testid^=stSkeleton]', shown),
               running: """ + SCRIPT_STATE + """ === 'notRunning' ? 0 : 1};
    return Object.entries(n).filter(([k, v]) => v).map(([k, v]) => k + ' ' + v).join(', ');
  };
  if (textShown()) { s.error = 'already shown before the change: ' + text; return; }
  const types = ['pointerdown', 'keydown', 'click'];
  const start = () => { if (s.t0 === null) s.t0 = performance.now(); types.forEach(t => window.removeEventListener(t, start, true)); };
  types.forEach(t => window.addEventListener(t, start, true));
  const tick = () => {
    if (s.error !== null) return;
    if (s.t0 !== null) {
      const now = performance.now();
      if (s.text === null && textShown()) s.text = now - s.t0;
      if (s.text !== null && !unsettled()) { s.settled = now - s.t0; return; }
    }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
  setTimeout(() => { if (s.settled === null) s.error = (s.t0 === null ? 'no click or key press seen'
      : s.text === null ? 'timed out waiting for ' + text : 'shown, but not settled after 60 s: ' + unsettled()); }, 60000);
}"""


def timed(page, cdp, text: str, action: Callable[[], None]) -> tuple[float, float, float]:
    """(ms until ``text`` shows, ms until settled, main-thread busy ms) of ``action``."""
    b0 = busy_ms(cdp)
    page.evaluate(ARM, text)
    if page.evaluate("window.__act.error") is None:
        action()
        page.wait_for_function("() => window.__act.settled !== null || window.__act.error !== null",
                               timeout=70_000, polling=100)
    got = page.evaluate("window.__act")
    if got["error"] is not None:
        raise RuntimeError(got["error"])
    idle(page)
    return got["text"], got["settled"], busy_ms(cdp) - b0


def in_page_click(page, locator) -> Callable[[], None]:
    """A click dispatched inside the page (Playwright's actionability checks are not the app's)."""
    handle = locator.element_handle()
    return lambda: page.evaluate("el => el.click()", handle)


def widget(page, testid: str, label: str):
    """The Streamlit widget ``testid`` whose label is exactly ``label`` (or starts with it)."""
    return page.locator(f"[data-testid={testid}]").filter(
        has=page.locator("[data-testid=stWidgetLabel]", has_text=re.compile(rf"^\s*{re.escape(label)}"))).first


def select_value(page, label: str) -> str:
    """The shown value of the select box ``label``."""
    return widget(page, "stSelectbox", label).locator("input[role=combobox]").input_value().strip()


def open_options(page, label: str) -> tuple[object, list[str]]:
    """Opens the select box ``label`` (untimed) and returns its option locator and texts. The box
    is scrolled into view first: a list opened while the page still scrolls closes again."""
    box = widget(page, "stSelectbox", label).locator("[role=combobox]")
    box.scroll_into_view_if_needed()
    time.sleep(0.3)
    box.click()
    opts = page.locator("[role=option]")
    opts.first.wait_for()
    time.sleep(0.2)  # let the list settle (it draws only the options near the chosen one)
    return opts, [s.strip() for s in opts.all_inner_texts()]


def click_option(page, text: str) -> Callable[[], None]:
    """An in-page click on the open list's option ``text``, found when clicked (the list may
    have drawn its options anew since it opened)."""
    return lambda: page.evaluate("""(text) => { const o = Array.from(document.querySelectorAll('[role=option]'))
        .find(o => o.innerText.trim() === text); if (!o) throw new Error('no option ' + text); o.click(); }""", text)


def select(page, label: str, pick: Callable[[list[str], str], int], expect: Callable[[str], str]
           ) -> tuple[str, Callable[[], None]]:
    """Prepares choosing option ``pick(texts, current)`` of select box ``label``: returns the
    text to wait for and the in-page click."""
    current = select_value(page, label)
    _, texts = open_options(page, label)
    i = pick(texts, current)
    return expect(texts[i]), click_option(page, texts[i])


def other(texts: list[str], current: str, first: list) -> int:
    """Alternates between the first option chosen (the one after the current) and the current one."""
    if not first:
        first.append(current)
        return next(i for i, t in enumerate(texts) if t != current)
    back = next((i for i, t in enumerate(texts) if t == first[0]), None)
    return back if back is not None and texts[back] != current else next(i for i, t in enumerate(texts)
                                                                            if t != current)


@dataclass
class Interaction:
    page: str
    name: str
    ready: str  # page text shown once the page is ready
    step: Callable  # (page, i, state) -> (text to wait for, action)
    note: str = ""


def _filters(page, i, state):
    label, text = (("all filters together", "one min-max scale shared") if i % 2 == 0
                   else ("each filter", "each filter min-max scaled"))
    return text, in_page_click(page, page.get_by_text(label, exact=True).first)


def _layer(suffix: str):
    def step(page, i, state):
        current = select_value(page, "Layer")
        _, texts = open_options(page, "Layer")
        j = 3 + i % 6
        if texts[j] == current:
            j = 3 + (i + 1) % 6
        return f"{texts[j]}{suffix}", click_option(page, texts[j])
    return step


def _convolution(page, i, state):
    row, col = map(int, re.search(r"Output pixel \(row (\d+), column (\d+)\)", page.inner_text("body")).groups())
    ow = int(re.search(r"columns = \([^)]*\) // \d+ \+ 1 = (\d+)", page.inner_text("body")).group(1))
    row, col = (row, col + 1) if col + 1 < ow else (row + 1, 0)
    thumb = widget(page, "stSlider", "Output position").locator("input[type=range]").first
    thumb.focus()
    return f"filled up to pixel ({row}, {col})", lambda: page.keyboard.press("ArrowRight")  # the map's caption


def _units(page, i, state):
    box = widget(page, "stNumberInput", "Channel (of")
    ch = int(box.locator("input").input_value())
    up = i % 2 == 0
    button = box.locator("[data-testid=stNumberInputStepUp]" if up else "[data-testid=stNumberInputStepDown]")
    return f"where channel {ch + 1 if up else ch - 1} fires most", in_page_click(page, button)


def _neighbours(page, i, state):
    return select(page, "Feature distance", lambda t, c: other(t, c, state),
                  lambda o: f"feature space ({o} distance)")


def _mistakes(page, i, state):
    return select(page, "Order mistakes by", lambda t, c: (t.index(c) + 1) % len(t),
                  lambda o: f", by {o.lower()}.")


def _attributions(page, i, state):
    return select(page, "Target class", lambda t, c: other(t, c, state),
                  lambda o: f"Evidence for '{o.split(' (')[0]}'")


INTERACTIONS = [
    Interaction("filters", "Filters, normalisation toggle", "Enlarge filter", _filters),
    Interaction("feature_maps", "Feature maps, layer change", "Strongest channels:", _layer(": "),
                "a new layer each time"),
    Interaction("receptive_fields", "Receptive fields, layer change", "Click the image to pick a unit",
                _layer("'s "), "a new layer each time"),
    Interaction("convolution", "Convolution, position slider +1 (key)", "Output pixel (row", _convolution),
    Interaction("units", "Units, channel +1/-1", "fires most", _units, "two channels, both cached after the first"),
    Interaction("neighbours", "Neighbours, feature distance", "feature space (", _neighbours,
                "two metrics, both cached after the first"),
    Interaction("mistakes", "Mistakes, order change", ", by ", _mistakes, "three orders in turn"),
    Interaction("attributions", "Attributions, target class", "Can I trust this?", _attributions,
                "two classes, both cached after the first"),
]


@dataclass
class Clicks:
    shown: list[float] = field(default_factory=list)
    settled: list[float] = field(default_factory=list)
    busy: list[float] = field(default_factory=list)
    first: tuple[float, float] | None = None
    error: str | None = None


def run_interaction(browser, url: str, query: str, it: Interaction, clicks: int) -> Clicks:
    """One untimed first change, then ``clicks`` timed ones, on one open page."""
    out = Clicks()
    page = browser.new_page(viewport=VIEWPORT)
    try:
        cdp = page.context.new_cdp_session(page)
        cdp.send("Performance.enable")
        page.goto(f"{url}/{PAGES[it.page]}{query}", wait_until="commit")
        page.get_by_text(it.ready).first.wait_for(timeout=600_000)
        idle(page)
        time.sleep(0.5)
        state: list = []
        for i in range(clicks + 1):
            text, action = it.step(page, i, state)
            shown, settled, busy = timed(page, cdp, text, action)
            if i == 0:
                out.first = (shown, settled)
            else:
                out.shown.append(shown)
                out.settled.append(settled)
                out.busy.append(busy)
    except Exception as e:  # noqa: BLE001 (a benchmark reports and goes on)
        out.error = first_line(e)
    finally:
        page.context.close()
    return out


@dataclass
class Live:
    """The Camera page streaming the fake camera: the page's own figures, sampled every half second."""
    start_s: float | None = None  # from START to the first live prediction
    fps: list[float] = field(default_factory=list)  # frames through the model per second (page's 2 s window)
    ms: list[float] = field(default_factory=list)  # the model's ms per frame
    runtime: str = ""
    received: int = 0  # frames that reached the server (at the last sample)
    dropped: int = 0  # frames skipped because a newer one came
    camera_fps: float | None = None  # frames that reached the server per second while sampled
    error: str | None = None


def camera_live(pw, url: str, query: str, seconds: float, camera_fps: int) -> Live:
    """Opens the Camera page in a browser whose fake camera sends ``camera_fps`` frames a second
    (permission granted), presses START and reads the live caption for ``seconds`` after a 2 s
    warm-up."""
    out = Live()
    fake = [f"--use-fake-device-for-media-stream=fps={camera_fps}", "--use-fake-ui-for-media-stream"]
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS + fake)
    try:
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(f"{url}/{PAGES['camera']}{query}", wait_until="commit")
        page.get_by_text("Press START").first.wait_for(timeout=300_000)
        idle(page)
        webrtc = page.frame_locator("iframe[title*='webrtc']").first
        start = webrtc.get_by_role("button", name=re.compile("^start$", re.I))
        t0 = time.perf_counter()
        start.click(timeout=60_000)
        page.wait_for_function("(p) => new RegExp(p).test(document.body.innerText)", arg=LIVE_CAPTION.pattern,
                               timeout=120_000, polling=100)
        out.start_s = time.perf_counter() - t0
        time.sleep(2.0)  # warm-up: the page's rate is over the last 2 s
        counts: list[tuple[float, int]] = []  # (when, frames received) at each sample
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(0.5)
            m = LIVE_CAPTION.search(page.inner_text("body"))
            if m is None:
                continue
            fps, ms_, out.runtime, dropped, received = m.groups()
            out.fps.append(float(fps))
            out.ms.append(float(ms_))
            out.dropped, out.received = int(dropped.replace(",", "")), int(received.replace(",", ""))
            counts.append((time.monotonic(), out.received))
        if len(counts) >= 2:
            (t_a, n_a), (t_b, n_b) = counts[0], counts[-1]
            out.camera_fps = (n_b - n_a) / (t_b - t_a)
    except Exception as e:  # noqa: BLE001 (a benchmark reports and goes on)
        out.error = first_line(e)
    finally:
        browser.close()
    return out


def med(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def ms(x: float | None) -> str:
    return "-" if x is None else f"{x:.0f}"


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the servers on the way out
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3, help="first renders of each page (and as many floor pages "
                    "before each)")
    ap.add_argument("--clicks", type=int, default=5, help="timed changes per interaction (after one untimed)")
    ap.add_argument("--pages", default=",".join(PAGES),
                    help=f"comma-separated, of: {', '.join(PAGES)} (default: all)")
    ap.add_argument("--live-seconds", type=float, default=10,
                    help="seconds the Camera page streams the fake camera, sampled (0: no live measurement)")
    ap.add_argument("--camera-fps", type=int, default=30,
                    help="frames per second the fake camera sends (a webcam's usual 30; Chromium's default is 20)")
    ap.add_argument("--model", default="cifar10_cnn", help="shipped checkpoint (in checkpoints/)")
    ap.add_argument("--dwell", type=float, default=0,
                    help="seconds spent on the first page before the others' first visits (a user reading it "
                         "while the dashboard's background warm-up fills the heavy pages' caches)")
    ap.add_argument("--first-visit-timeout", type=float, default=300,
                    help="seconds a page's first visit ever may take (it computes what later visits find cached); "
                         "a page whose first visit fails is not measured further")
    ap.add_argument("--cache-dir", default=None,
                    help="cnnviz cache for the server (default: a new empty one, removed afterwards)")
    a = ap.parse_args()
    wanted = [p.strip() for p in a.pages.split(",") if p.strip()]
    unknown = [p for p in wanted if p not in PAGES]
    if unknown:
        ap.error(f"unknown pages {unknown}: choose from {list(PAGES)}")
    pages = [p for p in PAGES if p in wanted]  # the app's order
    interactions = [it for it in INTERACTIONS if it.page in pages] if a.clicks > 0 else []
    live_wanted = "camera" in pages and a.live_seconds > 0
    n_targets = len(pages) + len(interactions) + live_wanted

    tmp = Path(tempfile.mkdtemp(prefix="dashboard_speed_"))
    cache = Path(a.cache_dir) if a.cache_dir else tmp / "cache"
    env = {k: v for k, v in os.environ.items() if k != "CNNVIZ_DATA"}
    env |= {"CNNVIZ_CHECKPOINTS": str(ROOT / "checkpoints"), "CNNVIZ_CACHE": str(cache)}
    query = f"?model={a.model}"
    print(f"dashboard: model {a.model} on its demo gallery, cnnviz cache {cache}"
          f"{' (new, empty)' if not a.cache_dir else ''}; pages: {', '.join(pages)}; {a.repeats} first renders "
          f"each, {a.clicks} timed clicks per interaction; floor: a minimal Streamlit page (title, number input, "
          f"image, one 2x2 Plotly heatmap) on another server in the same run", flush=True)

    first_ever: dict[str, Render] = {}
    floor: list[Render] = []
    renders: dict[str, list[Render]] = {p: [] for p in pages}
    clicks: dict[str, Clicks] = {}
    live: Live | None = None
    timed_pages: list[str] = []
    t_start = time.perf_counter()
    servers = []
    try:
        (tmp / "minimal.py").write_text(MINIMAL_APP)
        servers.append(start_server(ROOT / "dashboard" / "app.py", env, tmp / "dashboard.log"))
        servers.append(start_server(tmp / "minimal.py", dict(os.environ), tmp / "minimal.log"))
        (_, url), (_, floor_url) = servers
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            # first visits ever: the floor's (the browser's own warm-up), then each page's, which
            # computes and caches what later visits find (model, gallery, features, peaks, ...)
            first_ever["floor"] = safe_visit(browser, floor_url, 120_000)
            for n, p in enumerate(pages):
                first_ever[p] = safe_visit(browser, f"{url}/{PAGES[p]}{query}", int(a.first_visit_timeout * 1000))
                print(f"  first visit ever of {p}: " + (first_ever[p].error or f"{ms(first_ever[p].text)} / "
                                                       f"{ms(first_ever[p].figures)} ms"), flush=True)
                if n == 0 and a.dwell > 0:  # a user reading the first page while the warm-up runs
                    time.sleep(a.dwell)
            timed_pages = [p for p in pages if first_ever[p].error is None]
            for r in range(a.repeats):  # interleaved: floor, page A, floor, page B, ...
                for p in timed_pages:
                    floor.append(safe_visit(browser, floor_url, 120_000))
                    renders[p].append(safe_visit(browser, f"{url}/{PAGES[p]}{query}", 300_000))
                print(f"  first renders: round {r + 1} of {a.repeats} done", flush=True)
            for it in interactions:
                if it.page not in timed_pages:
                    continue
                clicks[it.name] = run_interaction(browser, url, query, it, a.clicks)
                c = clicks[it.name]
                print(f"  {it.name}: {'error' if c.error else ms(med(c.shown)) + ' ms'}", flush=True)
            browser.close()
            if live_wanted and "camera" in timed_pages:
                live = camera_live(pw, url, query, a.live_seconds, a.camera_fps)
                print(f"  camera live: {live.error or ms(med(live.fps)) + ' frames/s'}", flush=True)
    except Exception:  # noqa: BLE001 (a benchmark reports what it has and exits 0)
        print("benchmark stopped early:\n" + traceback.format_exc())
        for log in ("dashboard.log", "minimal.log"):
            if (tmp / log).exists():
                print(f"--- {log} (tail)\n{(tmp / log).read_text()[-2000:]}")
    finally:
        for server, _ in servers:
            stop_server(server)
    wall = time.perf_counter() - t_start

    met = 0
    print()
    print("first visit ever (a fresh server and cnnviz cache, pages in this order; each computes what it is "
          "first to need; not a target) - text, widgets and images / figures drawn, ms:")
    for p, rd in first_ever.items():
        what = rd.error or f"{ms(rd.text)} / {ms(rd.figures)}   ({rd.describe_parts()})"
        print(f"  {p:<17} {what}")
    floor_ok = [f.text for f in floor if f.error is None and f.text]
    base_ms = med(floor_ok) if floor_ok else (first_ever["floor"].text if "floor" in first_ever
                                              and first_ever["floor"].error is None else None)
    if base_ms:
        dwell = f" after {a.dwell:.0f} s on the first page" if a.dwell else ""
        print(f"first visit ever / the floor page's median first render ({ms(base_ms)} ms text), target "
              f"{FIRST_TARGET}x for {', '.join(FIRST_TARGET_PAGES)}{dwell}:")
        for p, rd in first_ever.items():
            if p == "floor" or rd.error is not None or not rd.text:
                continue
            ratio = rd.text / base_ms
            mark = ("  pass" if ratio <= FIRST_TARGET else "  MISS") if p in FIRST_TARGET_PAGES else ""
            print(f"  {p:<17} {ratio:5.2f}x{mark}")

    ok = [f for f in floor if f.error is None]
    f_text, f_figs = med([f.text for f in ok]), med([f.figures for f in ok if f.figures is not None])
    print()
    if ok:
        print(f"floor page, first render in a new session ({len(ok)} visits, one before each page's): text, widgets "
              f"and image median {ms(f_text)} ms ({ms(min(f.text for f in ok))}-{ms(max(f.text for f in ok))}); "
              f"figure drawn median {ms(f_figs)} ms ({ms(min(f.figures for f in ok))}-"
              f"{ms(max(f.figures for f in ok))}); browser main thread busy median {ms(med([f.busy for f in ok]))} ms")
    bad = len(floor) - len(ok)
    if bad:
        print(f"floor page: {bad} visit(s) failed: {next(f.error for f in floor if f.error)}")

    print()
    print(f"first render, new session, empty browser cache (median of {a.repeats}; target: at most "
          f"{RENDER_TARGET}x the floor's median, text and figures):")
    print(f"  {'page':<17} {'text ms':>8} {'figs ms':>8} {'text x':>7} {'figs x':>7} {'busy ms':>8}  result")
    for p in pages:
        good = [r for r in renders[p] if r.error is None]
        errors = [r.error for r in renders[p] if r.error is not None]
        if p in first_ever and first_ever[p].error is not None:
            print(f"  {p:<17} FAIL: not measured, its first visit failed ({first_ever[p].error})")
            continue
        if not good or f_text is None:
            print(f"  {p:<17} FAIL: {errors[0] if errors else 'not measured'}")
            continue
        t, f = med([r.text for r in good]), med([r.figures for r in good if r.figures is not None])
        tx = t / f_text
        fx = f / f_figs if f is not None and f_figs else None
        passed = tx <= RENDER_TARGET and (fx is None or fx <= RENDER_TARGET) and not errors
        met += passed
        note = (f"  ({len(errors)} failed: {errors[0]})" if errors else "") + ("  (no figures)" if f is None else "")
        print(f"  {p:<17} {ms(t):>8} {ms(f):>8} {tx:>6.2f}x {'-' if fx is None else f'{fx:.2f}x':>7} "
              f"{ms(med([r.busy for r in good])):>8}  {'PASS' if passed else 'FAIL'}{note}")

    if interactions:
        print()
        print(f"warm interactions on the open page (ms from the click or key press until the changed text shows; "
              f"median and max of {a.clicks} after one untimed first; target: median at most {CLICK_TARGET_MS:.0f} ms):")
        print(f"  {'interaction':<40} {'median':>6} {'max':>6} {'settled':>8} {'first':>6} {'busy':>6}  result")
        for it in interactions:
            c = clicks.get(it.name)
            if c is None or c.error is not None or not c.shown:
                why = c.error if c else ("not run: the page's first visit failed" if it.page in first_ever
                                         and first_ever[it.page].error else "not run")
                print(f"  {it.name:<40} FAIL: {why}")
                continue
            m = med(c.shown)
            passed = m <= CLICK_TARGET_MS
            met += passed
            first = f"{ms(c.first[0])}" if c.first else "-"
            print(f"  {it.name:<40} {ms(m):>6} {ms(max(c.shown)):>6} {ms(med(c.settled)):>8} {first:>6} "
                  f"{ms(med(c.busy)):>6}  {'PASS' if passed else 'FAIL'}" + (f"  ({it.note})" if it.note else ""))
        print("  (settled: median until the script has finished, nothing of the previous run is left, images are "
              "loaded and figures drawn; "
              "first: the untimed first change; busy: the browser main thread's median busy ms per change)")
    if live_wanted:
        print()
        print(f"Camera page live, Chromium's fake camera at {a.camera_fps} frames/s ({a.live_seconds:.0f} s sampled "
              f"every 0.5 s after a 2 s warm-up; target: median at least {LIVE_TARGET_FPS:.0f} frames/s through the "
              "model):")
        if live is None or live.error is not None or not live.fps:
            why = (live.error or "no live caption read") if live else "not run: the page's first visit failed"
            print(f"  FAIL: {why}")
        else:
            m = med(live.fps)
            passed = m >= LIVE_TARGET_FPS
            met += passed
            cam = f"{live.camera_fps:.1f}" if live.camera_fps is not None else "-"
            print(f"  {m:.1f} frames/s median ({min(live.fps):.1f}-{max(live.fps):.1f}), {med(live.ms):.0f} ms per "
                  f"frame on {live.runtime}; {cam} frames/s reached the server; {live.dropped:,} of "
                  f"{live.received:,} frames dropped; first prediction {live.start_s:.1f} s after START  "
                  f"{'PASS' if passed else 'FAIL'}")
    shutil.rmtree(tmp, ignore_errors=True)  # the logs, and the cache unless --cache-dir named one
    print()
    print(f"wall time {wall / 60:.1f} min")
    print(f"targets met: {met} of {n_targets}")


if __name__ == "__main__":
    main()

"""Nothing cut, nothing too small: every page of the dashboard, opened in a real headless Chromium
(Debian's ``/usr/bin/chromium`` through Playwright; no browser is downloaded) on a shipped
checkpoint and its demo gallery, at 1280x720, shows no visible text that overflows its box, a
clipping ancestor or the window to the right, no visible text under 12 px, and no picture
wider than its frame (a component's iframe, such as the Feature maps page's clickable grid).
The Feature maps page is also opened at 1400x900 on every shipped model.

One server, one browser page visiting the pages in turn."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from browser_support import CHROMIUM, chromium, dashboard_server

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")
if not CHROMIUM.exists():
    pytest.skip("Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium)",
                allow_module_level=True)

ROOT = Path(__file__).resolve().parent.parent
CHECKPOINTS = ROOT / "checkpoints"
MODEL = "simpsons_lecture"  # the model the dashboard opens on (the most oriented first-layer kernels)
MODELS = sorted(p.stem for p in CHECKPOINTS.glob("*.json")
                if p.with_suffix(".safetensors").is_file() and not p.name.endswith(".gallery.json"))
IDLE_MS = 180_000
MIN_FONT_PX = 12.0

# The problems on the page, as lines: every visible element with text of its own (in the page
# and in same-origin iframes, such as Streamlit's components) whose computed font-size is under
# ``minPx``, whose text overflows its own box (overflow hidden or clip, or an ellipsis), whose box
# reaches past the right edge of an ancestor that clips it, or past the window's (the frame's)
# right edge, or that a chart has shortened with an ellipsis; and every picture (img, canvas) cut the same way, and every iframe whose content
# is wider than the frame.
PROBLEMS = r"""(minPx) => {
  const out = [];
  const clips = (cs) => ['hidden', 'clip'].includes(cs.overflowX);
  const name = (el) => {
    const box = el.closest('[data-testid]');
    const text = (el.innerText || el.textContent || el.getAttribute('alt') || el.tagName).trim().replace(/\s+/g, ' ');
    return `${box ? box.dataset.testid : el.tagName.toLowerCase()} "${text.slice(0, 60)}"`;
  };
  const scan = (doc, where) => {
    const win = doc.defaultView;
    const right = doc.documentElement.clientWidth;
    for (const el of doc.querySelectorAll('body *')) {
      if (!el.checkVisibility({visibilityProperty: true, opacityProperty: true})) continue;
      const picture = el.tagName === 'IMG' || el.tagName === 'CANVAS';
      const text = Array.from(el.childNodes).some(n => n.nodeType === 3 && n.textContent.trim());
      if (!picture && !text) continue;
      const r = el.getBoundingClientRect();
      if (r.width < 2 || r.height < 2) continue;  // nothing to see, or visually hidden for screen readers
      const cs = win.getComputedStyle(el);
      const what = where + name(el);
      if (text && parseFloat(cs.fontSize) < minPx - 0.01) out.push(`${what}: font ${cs.fontSize}`);
      if (text && (clips(cs) || cs.textOverflow === 'ellipsis') && el.scrollWidth > el.clientWidth + 1)
        out.push(`${what}: text ${el.scrollWidth} px wide in a ${el.clientWidth} px box`);
      if (text && el instanceof win.SVGElement && /\u2026\s*$/.test(el.textContent))
        out.push(`${what}: shortened by the chart`);  // Vega-Lite cuts long labels with an ellipsis
      if (r.right > right + 1) { out.push(`${what}: right edge at ${Math.round(r.right)} px, past the window's ${right}`); continue; }
      for (let a = el.parentElement; a && a !== doc.body; a = a.parentElement) {
        const ar = a.getBoundingClientRect();
        if (clips(win.getComputedStyle(a)) && r.right > ar.right + 1) {
          out.push(`${what}: right edge at ${Math.round(r.right)} px, cut by ${name(a).split(' ')[0]} at ${Math.round(ar.right)}`);
          break;
        }
      }
    }
    for (const frame of doc.querySelectorAll('iframe')) {
      if (!frame.checkVisibility() || frame.getBoundingClientRect().width < 1) continue;
      let inner;
      try { inner = frame.contentDocument; } catch (e) { continue; }
      if (!inner || !inner.body) continue;
      const label = `${where}iframe[${frame.title || frame.name}] `;
      const wide = Math.max(inner.documentElement.scrollWidth, inner.body.scrollWidth);
      if (wide > frame.clientWidth + 1) out.push(`${label}: content ${wide} px wide in a ${frame.clientWidth} px frame`);
      scan(inner, label);
    }
  };
  scan(document, '');
  return out;
}"""


def layout_problems(page, min_px: float = MIN_FONT_PX) -> list[str]:
    """What is cut, overflows or is too small on ``page`` as it is now (see :data:`PROBLEMS`)."""
    return page.evaluate(PROBLEMS, min_px)


# True once the script has finished, nothing is a placeholder, and every visible picture in the
# page and in its component frames has loaded.
SETTLED = """() => !document.querySelector('[data-testid=stStatusWidget], [data-testid^=stSkeleton]')
  && [document].concat(Array.from(document.querySelectorAll('iframe')).map(f => {
       try { return f.contentDocument; } catch (e) { return null; } }).filter(d => d && d.body))
     .every(d => d.readyState === 'complete' && Array.from(d.querySelectorAll('img')).every(
       i => !i.checkVisibility() || (i.complete && i.naturalWidth > 0)))
  && Array.from(document.querySelectorAll('[data-testid=stVegaLiteChart]')).filter(c => c.checkVisibility())
       .every(c => c.querySelector('canvas, svg.marks'))"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The dashboard on the shipped checkpoints and their demo galleries (no dataset)."""
    env = dict(os.environ, CNNVIZ_CHECKPOINTS=str(CHECKPOINTS), CNNVIZ_DATA=str(tmp_path_factory.mktemp("no_data")),
               PYTHONUNBUFFERED="1")
    log = tmp_path_factory.mktemp("server") / "streamlit.log"
    with dashboard_server(ROOT / "dashboard" / "app.py", env, ROOT, log) as url:
        yield url


@pytest.fixture(scope="module")
def tab():
    """One browser page, reused by every case (each visit is a new session of the app)."""
    with chromium(playwright_api) as b:
        page = b.new_page(viewport={"width": 1280, "height": 720})
        yield page
        page.close()


def open_page(tab, url: str, path: str, model: str, size: tuple[int, int]) -> None:
    """Go to ``path`` on ``model`` at window ``size`` and wait until it has settled."""
    tab.set_viewport_size({"width": size[0], "height": size[1]})
    tab.goto(f"{url}/{path}{'&' if '?' in path else '?'}model={model}", wait_until="domcontentloaded")
    tab.locator("[data-testid=stMain] h1").first.wait_for(timeout=IDLE_MS)
    tab.wait_for_timeout(300)
    tab.wait_for_function(SETTLED, timeout=IDLE_MS)
    tab.wait_for_timeout(500)  # charts draw their axes after their marks
    tab.wait_for_function(SETTLED, timeout=IDLE_MS)
    assert not tab.locator("[data-testid=stException]").count(), tab.locator(
        "[data-testid=stException]").first.inner_text()
    shots = os.environ.get("CNNVIZ_SCREENSHOTS")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=str(Path(shots) / f"{path.split('?')[0] or 'model'}_{model}_{size[0]}x{size[1]}.png"))


# every page of dashboard/app.py, by its URL path (Model's is the root)
PAGES = ["", "filters", "feature_maps", "receptive_fields", "convolution", "units", "neighbours", "mistakes",
         "attributions", "predict", "camera"]


def test_the_list_is_every_page():
    tree = ast.parse((ROOT / "dashboard" / "app.py").read_text())
    files = next(ast.literal_eval(n.value) for n in ast.walk(tree)
                 if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", None) == "PAGE_FILES")
    assert sorted(Path(f).stem for f, _, _ in files) == sorted(p or "model" for p in PAGES)


@pytest.mark.parametrize("path", [pytest.param(p, id=p or "model") for p in PAGES])
def test_page_has_nothing_cut_or_too_small_at_1280x720(server, tab, path):
    open_page(tab, server, path, MODEL, (1280, 720))
    problems = layout_problems(tab)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("model", MODELS)
def test_feature_maps_grid_fits_its_column_at_1400x900(server, tab, model):
    """The issue's case: at 1400 px the grid's last column of tiles was cut in half."""
    open_page(tab, server, "feature_maps", model, (1400, 900))
    problems = layout_problems(tab)
    assert not problems, "\n".join(problems)


def test_the_check_finds_what_it_is_for(server, tab):
    """The check itself: on the Model page, which passes, a caption cut by an ellipsis, one past
    the window, one at 10 px, a chart's label shortened with an ellipsis and a picture wider than
    its frame are each reported."""
    open_page(tab, server, "", MODEL, (1280, 720))
    assert layout_problems(tab) == []
    tab.evaluate("""() => {
      const main = document.querySelector('[data-testid=stMain]');
      const add = (css, text) => { const d = document.createElement('div'); d.style.cssText = css;
                                   d.textContent = text; main.prepend(d); };
      add('flex:none;width:80px;overflow:hidden;white-space:nowrap;text-overflow:ellipsis', 'cut-cut-cut-cut-cut-cut-cut');
      add('position:fixed;left:1250px;top:300px;white-space:nowrap', 'past-the-edge');
      add('font-size:10px', 'tiny-text');
      const f = document.createElement('iframe'); f.style.cssText = 'flex:none;width:100px;height:50px;border:0';
      f.srcdoc = '<body style=margin:0><img style=display:block src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" width=300 height=20></body>';
      main.prepend(f);
      const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg'); svg.style.cssText = 'flex:none';
      svg.setAttribute('width', '200'); svg.setAttribute('height', '30');
      svg.innerHTML = '<text x="0" y="20" font-size="13">abraham_grampa_simps\u2026</text>';
      main.prepend(svg);
    }""")
    tab.wait_for_timeout(500)
    found = layout_problems(tab)
    assert any("cut-cut" in p and "text" in p and "80 px box" in p for p in found), found
    assert any("past-the-edge" in p and "past the window's 1280" in p for p in found), found
    assert any("tiny-text" in p and "font 10px" in p for p in found), found
    assert any("content 300 px wide in a 100 px frame" in p for p in found), found
    assert any("abraham_grampa_simps" in p and "shortened by the chart" in p for p in found), found

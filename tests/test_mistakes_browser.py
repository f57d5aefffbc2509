"""The Mistakes page of the shipped simpsons_cnn (20 classes, its demo gallery) in headless
Chromium at a projector's 1280x720: every class name of the confusion matrix and the bar chart
drawn in full, every text of both charts at least 12 px, the charts inside the page's column, and
nothing on the page cut, overflowing or under 12 px (``layout_problems``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from browser_support import CHROMIUM, chromium, dashboard_server
from test_no_overflow_browser import layout_problems

ROOT = Path(__file__).resolve().parent.parent
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
if not CHROMIUM.exists():
    pytest.skip("Debian's chromium is not installed at /usr/bin/chromium", allow_module_level=True)

# Every visible Vega-Lite chart: its title, bounding box, its texts with their computed sizes.
CHARTS = """() => Array.from(document.querySelectorAll('[data-testid=stVegaLiteChart]'))
  .filter(c => c.checkVisibility()).map(c => {
    const svg = c.querySelector('svg'); const r = svg.getBoundingClientRect();
    const texts = Array.from(svg.querySelectorAll('text')).filter(t => t.textContent.trim());
    return {left: r.left, right: r.right, title: (texts.find(t => t.closest('.role-title')) || {}).textContent || '',
            texts: texts.map(t => [t.textContent, parseFloat(getComputedStyle(t).fontSize)])};
  })"""
COLUMN = "() => { const r = document.querySelector('[data-testid=stMainBlockContainer]').getBoundingClientRect(); " \
         "return [r.left, r.right]; }"


def test_simpsons_mistakes_are_readable_at_1280x720(tmp_path):
    classes = json.loads((ROOT / "checkpoints" / "simpsons_cnn.json").read_text())["classes"]
    names = {c.replace("_", " ") for c in classes}
    env = dict(os.environ, CNNVIZ_CHECKPOINTS=str(ROOT / "checkpoints"), CNNVIZ_DATA=str(tmp_path / "none"),
               PYTHONUNBUFFERED="1")
    with dashboard_server(ROOT / "dashboard" / "app.py", env, ROOT, tmp_path / "streamlit.log") as url, \
            chromium(playwright_api) as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.goto(f"{url}/mistakes?model=simpsons_cnn")
        page.wait_for_function("() => document.querySelectorAll('[data-testid=stVegaLiteChart] svg text').length > 100",
                               timeout=180_000)
        page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=180_000)
        charts = page.evaluate(CHARTS)
        left, right = page.evaluate(COLUMN)
        problems = layout_problems(page)  # nothing cut, overflowing or under 12 px anywhere on the page
    matrix = next(c for c in charts if c["title"].startswith("confusion (counts)"))
    bars = next(c for c in charts if c["title"].startswith("precision, recall and F1"))
    for chart, copies in ((matrix, 2), (bars, 1)):  # the matrix names each class on both axes
        texts = [t for t, _ in chart["texts"]]
        assert all(texts.count(n) == copies for n in names), sorted(set(names) - set(texts))
        assert not [t for t in texts if "…" in t]  # nothing cut with an ellipsis
        small = [(t, px) for t, px in chart["texts"] if px < 12]
        assert not small, small
        assert left - 1 <= chart["left"] and chart["right"] <= right + 1, (chart["title"], chart["right"], right)
    assert problems == [], problems
    counts = [px for t, px in matrix["texts"] if t.isdigit() and t not in {"0", "20", "40", "60"}]
    assert len(counts) >= 20 and min(counts) >= 12  # the cells' numbers

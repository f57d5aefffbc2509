"""Dashboard latency in headless Chromium with the shipped CIFAR-10 model and the real data:

* first render of a page once the model is loaded (cold Streamlit session, warm caches);
* warm widget changes: time from the click until the changed figure is on screen.

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
import time
import urllib.request

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


def timed(action, done) -> float:
    """Milliseconds from ``action()`` until ``done()`` returns (it waits for the new state)."""
    t0 = time.perf_counter()
    action()
    done()
    return (time.perf_counter() - t0) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    port = free_port()
    env = dict(os.environ, CNNVIZ_CHECKPOINTS=str(ROOT / "checkpoints"), CNNVIZ_DATA=str(SHARED))
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard" / "app.py"),
                               "--server.port", str(port), "--server.headless", "true"],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            warm = browser.new_page(viewport={"width": 1400, "height": 1000})
            for path in ("model", "filters", "feature_maps"):  # load the model and the test split once
                warm.goto(f"{url}/{path}?model=cifar10_fast", wait_until="networkidle")
                warm.get_by_text("Layer" if path != "filters" else "Enlarge filter").first.wait_for(timeout=600_000)
                idle(warm)
            warm.close()

            first = []
            for _ in range(a.runs):
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                first.append(timed(lambda: page.goto(f"{url}/filters?model=cifar10_fast"),
                                   lambda: page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)))
                page.close()
            print(f"first render of Filters (model loaded, new session): median {statistics.median(first):.0f} ms "
                  f"(runs: {', '.join(f'{t:.0f}' for t in first)})")

            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{url}/filters?model=cifar10_fast", wait_until="networkidle")
            page.locator(".js-plotly-plot").first.wait_for()
            idle(page)
            toggles = []
            for i in range(a.runs * 2):
                label, expect = (("all filters together", "one min-max scale shared") if i % 2 == 0
                                 else ("each filter", "each filter min-max scaled"))
                toggles.append(timed(lambda: page.get_by_text(label, exact=True).first.click(),
                                     lambda: page.get_by_text(expect, exact=False).first.wait_for(timeout=30_000)))
            print(f"Filters, normalisation toggle (warm): median {statistics.median(toggles):.0f} ms, "
                  f"max {max(toggles):.0f} ms")

            page.goto(f"{url}/feature_maps?model=cifar10_fast", wait_until="networkidle")
            page.get_by_text("strongest mean activation first").first.wait_for(timeout=60_000)
            idle(page)
            layers = []
            for i in range(a.runs * 2):
                box = page.locator("[data-testid=stSelectbox]").filter(has_text="Layer").first
                box.locator("[role=combobox]").click()
                opts = page.locator("[role=option]")
                opts.first.wait_for()
                target = opts.nth(3 + i % 6)
                name = target.inner_text().strip()
                layers.append(timed(target.click,
                                    lambda: page.get_by_text(f"{name}: ", exact=False).first.wait_for(timeout=30_000)))
            print(f"Feature maps, layer change (warm): median {statistics.median(layers):.0f} ms, "
                  f"max {max(layers):.0f} ms")
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)


if __name__ == "__main__":
    main()

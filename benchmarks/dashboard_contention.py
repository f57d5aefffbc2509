"""One session's clicks while another session uploads the worst zip (issue: bounded work per
request). In headless Chromium against one server with the shipped CIFAR-10 model and the real
data:

* session A changes the layer on Feature maps (timed inside the page, as in
  ``dashboard_speed.py``), first alone, then while session B uploads, again and again, a
  ~130 KB zip of 200 PNGs of 8900 x 8900 pixels (15.8 billion pixels: about 280 s of CPU to
  decode) on Predict;
* the same while B uploads a zip of one small image (the control: what any other session's
  rerun costs A on this machine, where the server and Chromium share two cores);
* prints the medians, their ratios to A alone (the target is at most 2x), and how long B
  waits for the upload's answer.

    python benchmarks/dashboard_contention.py [--runs 6]

Needs Debian's chromium (/usr/bin/chromium) and playwright (pip install -e '.[test]').
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image
from playwright.sync_api import sync_playwright

from _common import ROOT, SHARED
from dashboard_speed import ARGS, idle, start_server
from dashboard_speed import layer_changes as timed_layer_changes


def layer_changes(page, cdp, runs: int, start: int = 0) -> list[float]:
    """ms for each of ``runs`` layer changes on the open Feature maps page."""
    return [ms for ms, _ in timed_layer_changes(page, cdp, runs, start)]


def worst_zip(path: Path, n: int = 200, side: int = 8900) -> Path:
    """``n`` copies of one ``side`` x ``side`` black PNG (PNG compresses it to ~600 bytes)."""
    buf = io.BytesIO()
    Image.fromarray(np.zeros((side, side), np.uint8)).save(buf, "PNG", optimize=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(n):
            z.writestr(f"{i}.png", buf.getvalue())
    return path


def contended_clicks(a_page, cdp, b_page, archive: Path, answer: str, runs: int) -> tuple[list[float], list[float]]:
    """A's layer changes while B uploads ``archive`` each time; and B's seconds until ``answer``."""
    clicks, answers = [], []
    for i in range(runs):
        t0 = time.perf_counter()
        b_page.locator("input[type=file]").nth(1).set_input_files(str(archive))  # B's upload goes out
        clicks += layer_changes(a_page, cdp, 1, start=i)  # A clicks meanwhile, another layer each time
        b_page.get_by_text(answer).first.wait_for(timeout=600_000)
        answers.append(time.perf_counter() - t0)
        b_page.locator("input[type=file]").nth(1).set_input_files([])
        idle(b_page)
    return clicks, answers


def small_zip(path: Path) -> Path:
    """The control: a zip of one ordinary 32 x 32 PNG."""
    buf = io.BytesIO()
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(buf, "PNG")
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("1.png", buf.getvalue())
    return path


def report(name: str, clicks: list[float], alone: float, answers: list[float] | None = None) -> None:
    med = statistics.median(clicks)
    print(f"{name}: median {med:.0f} ms (max {max(clicks):.0f}), ratio to alone {med / alone:.2f}"
          + (f"; the uploader's answer after a median {statistics.median(answers):.2f} s" if answers else ""))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=6)
    a = ap.parse_args()
    env = dict(os.environ, CNNVIZ_CHECKPOINTS=str(ROOT / "checkpoints"), CNNVIZ_DATA=str(SHARED))
    server, url = start_server(ROOT / "dashboard" / "app.py", env)
    with tempfile.TemporaryDirectory() as tmp:
        worst = worst_zip(Path(tmp) / "worst.zip")
        control = small_zip(Path(tmp) / "1.zip")
        print(f"worst zip: {worst.stat().st_size / 1024:.0f} KB, 200 PNGs of 8900 x 8900")
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
                a_page = browser.new_page(viewport={"width": 1400, "height": 1000})
                cdp = a_page.context.new_cdp_session(a_page)
                cdp.send("Performance.enable")
                a_page.goto(f"{url}/feature_maps", wait_until="networkidle")
                a_page.get_by_text("strongest mean activation first").first.wait_for(timeout=600_000)
                idle(a_page)
                layer_changes(a_page, cdp, 2)  # warm-up
                alone = statistics.median(layer_changes(a_page, cdp, a.runs))

                b_page = browser.new_page(viewport={"width": 1400, "height": 1000})
                b_page.goto(f"{url}/predict", wait_until="networkidle")
                b_page.get_by_text("the competition's test set as a .zip").first.wait_for(timeout=60_000)
                idle(b_page)
                ordinary = contended_clicks(a_page, cdp, b_page, control, "Download CSV", a.runs)
                worst_case = contended_clicks(a_page, cdp, b_page, worst, "too large", a.runs)
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=20)
    print(f"Feature maps layer change alone: median {alone:.0f} ms")
    report("... while another session uploads a zip of one small image (control)", ordinary[0], alone, ordinary[1])
    report("... while another session uploads the worst zip (target: ratio <= 2)", worst_case[0], alone,
           worst_case[1])


if __name__ == "__main__":
    main()

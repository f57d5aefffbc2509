"""One session's clicks while another session uploads the worst zip (issue: bounded work per
request). In headless Chromium against one server with the shipped CIFAR-10 model and the real
data:

* session A changes the layer on Feature maps (timed inside the page, as in
  ``dashboard_speed.py``), first alone, then while session B uploads, again and again, a
  ~130 KB zip of 200 PNGs of 8900 x 8900 pixels (15.8 billion pixels: about 280 s of CPU to
  decode) on Predict;
* prints both medians and their ratio (the target is at most 2x), and how long B waits for
  the upload's answer.

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


def layer_changes(page, cdp, runs: int) -> list[float]:
    """ms for each of ``runs`` layer changes on the open Feature maps page."""
    return [ms for ms, _ in timed_layer_changes(page, cdp, runs)]


def worst_zip(path: Path, n: int = 200, side: int = 8900) -> Path:
    """``n`` copies of one ``side`` x ``side`` black PNG (PNG compresses it to ~600 bytes)."""
    buf = io.BytesIO()
    Image.fromarray(np.zeros((side, side), np.uint8)).save(buf, "PNG", optimize=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(n):
            z.writestr(f"{i}.png", buf.getvalue())
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=6)
    a = ap.parse_args()
    env = dict(os.environ, CNNVIZ_CHECKPOINTS=str(ROOT / "checkpoints"), CNNVIZ_DATA=str(SHARED))
    server, url = start_server(ROOT / "dashboard" / "app.py", env)
    with tempfile.TemporaryDirectory() as tmp:
        archive = worst_zip(Path(tmp) / "worst.zip")
        print(f"worst zip: {archive.stat().st_size / 1024:.0f} KB, 200 PNGs of 8900 x 8900")
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
                alone = layer_changes(a_page, cdp, a.runs)

                b_page = browser.new_page(viewport={"width": 1400, "height": 1000})
                b_page.goto(f"{url}/predict", wait_until="networkidle")
                b_page.get_by_text("the competition's test set as a .zip").first.wait_for(timeout=60_000)
                idle(b_page)
                contended, answers = [], []
                for i in range(a.runs):
                    t0 = time.perf_counter()
                    # B's upload goes out; A clicks while the server handles it
                    b_page.locator("input[type=file]").nth(1).set_input_files(str(archive))
                    contended += layer_changes(a_page, cdp, 1)
                    b_page.get_by_text("too large").first.wait_for(timeout=600_000)
                    answers.append(time.perf_counter() - t0)
                    b_page.locator("input[type=file]").nth(1).set_input_files([])
                    idle(b_page)
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=20)
    med_a, med_c = statistics.median(alone), statistics.median(contended)
    print(f"Feature maps layer change alone: median {med_a:.0f} ms (max {max(alone):.0f})")
    print(f"... while another session uploads the worst zip: median {med_c:.0f} ms (max {max(contended):.0f})")
    print(f"ratio {med_c / med_a:.2f} (target <= 2.00)")
    print(f"the uploader's answer ('too large'): median {statistics.median(answers):.2f} s")


if __name__ == "__main__":
    main()

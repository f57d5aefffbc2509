"""Server-side time of the dashboard's script runs (no browser), with the shipped CIFAR-10
model and the real data, through Streamlit's AppTest:

* Filters in a new session once the model is cached;
* a warm normalisation toggle on Filters; a warm layer change on Feature maps.

    python benchmarks/dashboard_script_speed.py [--runs 6]

Compare with benchmarks/dashboard_speed.py (the same interactions in Chromium): the
difference is the browser's share.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from _common import ROOT, SHARED

os.environ.setdefault("CNNVIZ_CHECKPOINTS", str(ROOT / "checkpoints"))
os.environ.setdefault("CNNVIZ_DATA", str(SHARED))
sys.path.insert(0, str(ROOT))

from streamlit.testing.v1 import AppTest  # noqa: E402

APP = str(ROOT / "dashboard" / "app.py")


def page(name: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=600)
    at.switch_page(f"views/{name}.py")
    at.query_params["model"] = "cifar10_fast"
    return at


def timed_run(at: AppTest) -> float:
    t0 = time.perf_counter()
    at.run()
    if at.exception:
        raise SystemExit(f"the page raised: {at.exception[0].message}")
    return (time.perf_counter() - t0) * 1000


def report(name: str, ms: list[float]) -> None:
    print(f"{name}: median {statistics.median(ms):.0f} ms, max {max(ms):.0f} ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=6)
    a = ap.parse_args()
    filters = page("filters")
    print(f"Filters, first run in this process (loads the model): {timed_run(filters):.0f} ms")
    report("Filters, new session, model cached", [timed_run(page("filters")) for _ in range(a.runs)])
    toggles = []
    for i in range(a.runs):
        filters.radio(key="f_norm").set_value("global" if i % 2 == 0 else "per_filter")
        toggles.append(timed_run(filters))
    report("Filters, normalisation toggle", toggles)
    fm = page("feature_maps")
    print(f"Feature maps, first run (loads the test split): {timed_run(fm):.0f} ms")
    names = fm.selectbox(key="fm_layer").options
    layers = []
    for i in range(a.runs):
        fm.selectbox(key="fm_layer").set_value(names[3 + i % 6])
        layers.append(timed_run(fm))
    report("Feature maps, layer change", layers)


if __name__ == "__main__":
    main()

"""What one kind of Streamlit element adds to a first render, against the framework's floor page
(``dashboard_speed.py``'s minimal page: title, number input, image, one Plotly heatmap), in
headless Chromium, in the same run.

Each variant is the floor page plus one thing the dashboard's pages use (a second Plotly figure,
a slider, a data frame, a component frame, the dashboard's sidebar, ...). Variants are visited
in turn, each in a new browser context (a new session, an empty browser cache), ``--repeats``
times; the figure is the median time until everything is shown and drawn, and its ratio to the
floor page's median: how much of ``dashboard_speed.py``'s 1.25x budget one kind of element
takes on its own.

    python benchmarks/streamlit_element_cost.py [--repeats 5] [--variants floor,slider,sidebar]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

import dashboard_speed as ds

def key_script() -> str:
    """The dashboard's key script (dashboard/present.py), pasted into the generated page."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from dashboard.present import KEY_SCRIPT  # noqa: PLC0415

    return KEY_SCRIPT


APP = '''import numpy as np
import plotly.graph_objects as go
import streamlit as st

st.set_page_config(layout="wide")
KEY_SCRIPT = None  # the dashboard's key script, pasted in by key_script()
v = st.query_params.get("v", "floor")
st.title("minimal")
st.number_input("n", 0, 10, 1)
st.image(np.full((64, 64, 3), 128, np.uint8))
st.plotly_chart(go.Figure(go.Heatmap(z=[[1, 2], [3, 4]])))
rng = np.random.default_rng(0)
if v == "figure":
    st.plotly_chart(go.Figure(go.Heatmap(z=rng.random((64, 64)))))
elif v == "three_figures":
    for i in range(3):
        st.plotly_chart(go.Figure(go.Heatmap(z=rng.random((64, 64)))), key=f"f{i}")
elif v == "picture":
    st.image((rng.random((300, 300, 3)) * 255).astype(np.uint8))
elif v == "captions":
    for i in range(20):
        st.caption(f"caption {i} with **bold** text")
elif v == "selectbox":
    st.selectbox("s", ["a", "b"])
elif v == "slider":
    st.slider("s", 0, 10, 1)
elif v == "radio":
    st.radio("r", ["a", "b", "c"], horizontal=True)
elif v == "toggle":
    st.toggle("t")
elif v == "button":
    st.button("b")
elif v == "expander":
    with st.expander("more"):
        st.write("hidden")
elif v == "dataframe":
    st.dataframe({"a": list(range(10)), "b": list(range(10))})
elif v == "table":
    st.table({"a": list(range(10)), "b": list(range(10))})
elif v == "click_image":
    from streamlit_image_coordinates import streamlit_image_coordinates
    streamlit_image_coordinates(np.full((64, 64, 3), 100, np.uint8), key="c")
elif v == "shortcuts":  # the dashboard's key binding alone (its script in the page, no frame)
    st.html(KEY_SCRIPT, unsafe_allow_javascript=True)
    st.button("Present", key="present_enter")
elif v in ("sidebar", "sidebar_plain", "chrome"):
    # the widgets of the dashboard's shared sidebar, without its computations; "sidebar_plain"
    # without the key binding; "chrome" adds the 11-page menu with icons
    st.sidebar.toggle("Present", key="present")
    if v != "sidebar_plain":
        with st.sidebar.container(key="keys"):
            st.html(KEY_SCRIPT, unsafe_allow_javascript=True)
            st.button("Present", key="present_enter")
    with st.sidebar:
        st.header("Model")
        st.selectbox("Checkpoint", ["cifar10_cnn", "cifar10_fast"])
        st.caption("cifar_lecture, 10 classes, 32 px (cifar10)")
        st.text_input("Dataset folder or zip", "/data/cifar10")
        st.caption("demo gallery: 5,000 of 48,000 training images")
        st.button("Download the full CIFAR-10 (170 MB)")
elif v == "icon":  # one Material Symbols icon in a caption (the font loads for it)
    st.caption(":material/ads_click: click the image")
if v in ("navigation", "navigation_icons", "chrome"):  # the dashboard's 11-page menu, with or without icons
    icons = ["account_tree", "grid_on", "layers", "center_focus_strong", "calculate", "psychology",
             "scatter_plot", "report", "visibility", "upload", "videocam"]

    def page() -> None:
        pass

    st.navigation([st.Page(page, title=f"Page {i}", url_path=f"p{i}", default=i == 0,
                           icon=f":material/{name}:" if v != "navigation" else None)
                   for i, name in enumerate(icons)]).run()
'''
VARIANTS = ["floor", "figure", "three_figures", "picture", "captions", "selectbox", "slider", "radio", "toggle",
            "button", "expander", "dataframe", "table", "click_image", "shortcuts", "sidebar_plain", "sidebar",
            "icon", "navigation", "navigation_icons", "chrome"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, of: " + ", ".join(VARIANTS))
    args = ap.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"unknown variants: {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    if "floor" not in variants:
        variants.insert(0, "floor")
    with tempfile.TemporaryDirectory() as tmp:
        app = Path(tmp) / "app.py"
        app.write_text(APP.replace("KEY_SCRIPT = None", f"KEY_SCRIPT = {key_script()!r}"))
        server, url = ds.start_server(app, dict(os.environ))
        runs: dict[str, list[ds.Render]] = {v: [] for v in variants}
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=ds.CHROMIUM, args=ds.ARGS)
                ds.safe_visit(browser, f"{url}/?v=floor", 60_000)  # the server's first run, untimed
                for r in range(args.repeats):
                    for v in variants:
                        runs[v].append(ds.safe_visit(browser, f"{url}/?v={v}", 60_000))
                    print(f"  round {r + 1} of {args.repeats} done", flush=True)
                browser.close()
        finally:
            ds.stop_server(server)

    def shown(r: ds.Render) -> float:
        return max(r.text or 0.0, r.figures or 0.0)

    ok = {v: [r for r in rs if r.error is None] for v, rs in runs.items()}
    floor = statistics.median(shown(r) for r in ok["floor"])
    print(f"\nfirst render, new session, median of {args.repeats} (all shown and drawn); ratio to the floor page")
    print(f"  {'variant':15s} {'ms':>7s} {'x floor':>8s} {'busy ms':>8s}")
    for v in variants:
        if not ok[v]:
            print(f"  {v:15s} failed: {runs[v][0].error}")
            continue
        t = statistics.median(shown(r) for r in ok[v])
        busy = statistics.median(r.busy for r in ok[v])
        print(f"  {v:15s} {t:7.0f} {t / floor:7.2f}x {busy:8.0f}")


if __name__ == "__main__":
    main()

"""cnnviz dashboard: `streamlit run dashboard/app.py`. A router and frame: the shared sidebar
picks the checkpoint and dataset; each page is one file in views/."""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a plain checkout too

from cnnviz.runtime import threads_here  # noqa: E402
from dashboard.state import freeze_imports  # noqa: E402

st.set_page_config(page_title="cnnviz", page_icon=":material/grid_view:", layout="wide")
freeze_imports(len(sys.modules))  # what the last run imported leaves the collection after each rerun

PAGES = [
    st.Page("views/model.py", title="Model", icon=":material/account_tree:", default=True, url_path="model"),
    st.Page("views/filters.py", title="Filters", icon=":material/grid_on:", url_path="filters"),
    st.Page("views/feature_maps.py", title="Feature maps", icon=":material/layers:", url_path="feature_maps"),
    st.Page("views/receptive_fields.py", title="Receptive fields", icon=":material/center_focus_strong:",
            url_path="receptive_fields"),
    st.Page("views/convolution.py", title="Convolution", icon=":material/calculate:", url_path="convolution"),
    st.Page("views/units.py", title="Units", icon=":material/psychology:", url_path="units"),
    st.Page("views/neighbours.py", title="Neighbours", icon=":material/scatter_plot:", url_path="neighbours"),
    st.Page("views/mistakes.py", title="Mistakes", icon=":material/report:", url_path="mistakes"),
    st.Page("views/attributions.py", title="Attributions", icon=":material/visibility:", url_path="attributions"),
    st.Page("views/predict.py", title="Predict", icon=":material/upload:", url_path="predict"),
    st.Page("views/camera.py", title="Camera", icon=":material/videocam:", url_path="camera"),
]
# Each page script runs torch on one CPU thread: one image gains little from more, and two
# threads that wait for each other while the browser or another session holds a core made a
# single forward pass 2-4x slower. Passes over a dataset take all cores (``on_all_cores``).
with threads_here(1):
    st.navigation(PAGES).run()

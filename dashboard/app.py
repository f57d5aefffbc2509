"""cnnviz dashboard: `streamlit run dashboard/app.py`. A router and frame: the shared sidebar
picks the checkpoint and dataset; each page is one file in views/."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a plain checkout too

from cnnviz.runtime import threads_here  # noqa: E402
from dashboard.present import SLIDE, present_on, set_current_page  # noqa: E402
from dashboard.state import freeze_imports  # noqa: E402

st.set_page_config(page_title="cnnviz", page_icon=":material/grid_view:", layout="wide")
freeze_imports(len(sys.modules))  # what the last run imported leaves the collection after each rerun
# Streamlit draws inline code in a caption at 0.75 of the caption's 14 px, 10.5 px: too small to read
st.html("<style>[data-testid=stCaptionContainer] code { font-size: 0.875em; }</style>")

# (file, title, icon): each page's URL path is its file name (``/filters``); Model is the root.
PAGE_FILES = [
    ("views/model.py", "Model", ":material/account_tree:"),
    ("views/filters.py", "Filters", ":material/grid_on:"),
    ("views/feature_maps.py", "Feature maps", ":material/layers:"),
    ("views/receptive_fields.py", "Receptive fields", ":material/center_focus_strong:"),
    ("views/convolution.py", "Convolution", ":material/calculate:"),
    ("views/units.py", "Units", ":material/psychology:"),
    ("views/neighbours.py", "Neighbours", ":material/scatter_plot:"),
    ("views/mistakes.py", "Mistakes", ":material/report:"),
    ("views/attributions.py", "Attributions", ":material/visibility:"),
    ("views/predict.py", "Predict", ":material/upload:"),
    ("views/camera.py", "Camera", ":material/videocam:"),
]
PAGES = [st.Page(f, title=t, icon=i, url_path=Path(f).stem, default=f == "views/model.py") for f, t, i in PAGE_FILES]
BY_PATH = {Path(f).stem: (f, t) for f, t, _ in PAGE_FILES}
# Present mode leaves the navigation out (the lecture's keys move between pages) and runs the
# page in the slide's keyed container, so a slide has the whole window; the page st.navigation
# picked (its public url_path; the default page's is "") is recorded for present mode's title.
present = present_on()
page = st.navigation(PAGES, position="hidden" if present else "sidebar")
set_current_page(*BY_PATH.get(page.url_path, BY_PATH["model"]))
# Each page script runs torch on one CPU thread: one image gains little from more, and two
# threads that wait for each other while the browser or another session holds a core made a
# single forward pass 2-4x slower. Passes over a dataset take all cores (``on_all_cores``).
with threads_here(1), (st.container(key=SLIDE) if present else nullcontext()):
    page.run()

"""cnnviz dashboard: `streamlit run dashboard/app.py`."""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a plain checkout too

st.set_page_config(page_title="cnnviz", page_icon=":material/grid_view:", layout="wide")

pages = [
    st.Page("views/model.py", title="Model", icon=":material/account_tree:", default=True),
]
st.navigation(pages).run()

"""Present mode for lectures: large type, no sidebar and no input widgets, and the keyboard to
walk the lecture sequence (:mod:`cnnviz.lecture_sequence`) page by page.

:func:`present_frame` runs at the top of the shared sidebar, so every page has it:

* a **Present** toggle in the sidebar, kept in the URL as ``present=1`` (a shared link opens in
  present mode) and in the session (so it survives the sidebar's page links, which drop the URL);
* keys, registered with ``streamlit-shortcuts``: ``p`` enters present mode; in present mode ``p``
  or Esc leaves it, and ArrowRight/PageDown, ArrowLeft/PageUp go to the next/previous step (a
  presenter's clicker sends PageDown/PageUp); at either end of the sequence the key does nothing.
  Outside present mode the arrows and Esc are left to the page.
* in present mode: the CSS below (once per run), and a small bar in the bottom-right corner with
  "step 3 of 7: Feature maps", the buttons the keys press (Back, Exit, Next), and a hint of the keys.

Two things streamlit-shortcuts 1.2 gets wrong here, worked around by :data:`KEY_SCRIPT`: its one
keydown listener is created inside the iframe of its first ``add_shortcuts`` call, and stops
being called once Streamlit replaces that iframe (after a page change or two the keys are dead);
and it presses its element whatever has the focus (an arrow key in a slider would also change
page, ``p`` typed in a text field would leave present mode). KEY_SCRIPT, run in the page itself,
replaces that listener with one of its own that reads the same key map (``add_shortcuts`` keeps
filling it) and leaves a key alone when it is meant for the focused field: any mapped key in a
text field, arrows and PageUp/PageDown in a slider, radio group, select box or number field.
The keys press buttons only: a click from a key handler does not change Streamlit's toggle.
"""

from __future__ import annotations

import json
from pathlib import Path

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx
from streamlit_shortcuts import add_shortcuts

from cnnviz.lecture_sequence import (
    LECTURE_SEQUENCE, current_step, next_step, previous_step, step_label, step_query,
)

TOGGLE, ENTER, EXIT, NEXT, PREV = "present_toggle", "present_enter", "present_exit", "lecture_next", "lecture_prev"
BAR, KEYS_BOX = "present_bar", "present_keys"
NEXT_KEYS, PREV_KEYS = ["arrowright", "pagedown"], ["arrowleft", "pageup"]
ENTER_KEYS, EXIT_KEYS = ["p"], ["p", "escape"]
_STATE = "_present"  # the mode; the toggle widget's own state is dropped when the page changes

# Input widgets hidden in present mode (buttons stay: Play on the Filters and Convolution pages).
HIDDEN_WIDGETS = ("stTextInput", "stNumberInput", "stSelectbox", "stMultiSelect", "stRadio", "stCheckbox",
                  "stSlider", "stFileUploader", "stTextArea", "stDateInput", "stTimeInput", "stColorPicker",
                  "stButtonGroup", "stDownloadButton", "stPageLink")
PRESENT_CSS = """<style>
html { font-size: 21.6px !important; } /* 1.35 x Streamlit's 16 px: every rem-sized text and gap */
.stMain h1 { font-size: 3.2rem; }
section[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], [data-testid="stExpandSidebarButton"],
header[data-testid="stHeader"] { display: none !important; }
[data-testid="stMainBlockContainer"] { padding-top: 2rem !important; }
""" + ", ".join(f'.stMain .stElementContainer:has([data-testid="{w}"])' for w in HIDDEN_WIDGETS) + """ {
  display: none !important; }
.st-key-present_bar { position: fixed; right: 1rem; bottom: .5rem; z-index: 999990; width: auto !important;
  background: #fff; border: 1px solid #eee; border-radius: 6px; padding: 2px 6px; gap: 6px !important; }
.st-key-present_bar .stElementContainer { width: auto !important; }
.st-key-present_bar * { font-size: 12px !important; line-height: 1.3 !important; color: #aaa; }
.st-key-present_bar:hover * { color: #333; }
.st-key-present_bar button { min-height: 0 !important; padding: 1px 8px !important; }
</style>"""

_KEYS = sorted({*NEXT_KEYS, *PREV_KEYS, *EXIT_KEYS})
_MOVE_KEYS = sorted({*NEXT_KEYS, *PREV_KEYS})
KEY_SCRIPT = """<script>
(function () {
  if (window.__cnnvizKeys) return;
  window.__cnnvizKeys = true;
  var keys = %s, moves = %s;
  var typing = /^(text|search|email|password|url|tel|number|date|time|datetime-local|month|week)$/;
  function forTheField(e, key) {
    var t = e.target;
    if (!t || !t.closest || keys.indexOf(key) < 0) return false;
    if (t.isContentEditable || t.tagName === "TEXTAREA" || (t.tagName === "INPUT" && typing.test(t.type || "text")))
      return true;
    return moves.indexOf(key) >= 0 && (t.tagName === "SELECT" || (t.tagName === "INPUT" && t.type === "radio") ||
      !!t.closest('[role="slider"], [role="radio"], [role="radiogroup"], [role="listbox"], [role="combobox"], ' +
                  '[role="spinbutton"], [data-testid="stSlider"]'));
  }
  // streamlit-shortcuts' matching, on its map, from a listener that lives as long as the page.
  function listener(e) {
    var key = (e.key || "").toLowerCase(), map = window.__streamlitShortcutsMap || {};
    if (forTheField(e, key)) return;
    for (var name in map) {
      var list = Array.isArray(map[name]) ? map[name] : [map[name]];
      for (var i = 0; i < list.length; i++) {
        var parts = String(list[i]).toLowerCase().split("+");
        var main = parts.filter(function (p) { return ["ctrl", "alt", "shift", "meta", "cmd"].indexOf(p) < 0; })[0];
        if (parts.indexOf("ctrl") >= 0 === e.ctrlKey && parts.indexOf("alt") >= 0 === e.altKey &&
            parts.indexOf("shift") >= 0 === e.shiftKey &&
            (parts.indexOf("meta") >= 0 || parts.indexOf("cmd") >= 0) === e.metaKey && key === main) {
          var el = document.querySelector(".st-key-" + name + " button");
          if (!el || el.disabled) return;
          e.preventDefault();
          el.click();
          return;
        }
      }
    }
  }
  window.__streamlitShortcutsMap = window.__streamlitShortcutsMap || {};
  if (window.__streamlitShortcutsListener) document.removeEventListener("keydown", window.__streamlitShortcutsListener);
  window.__streamlitShortcutsListener = listener;
  window.__streamlitShortcutsInitialized = true;  // its iframes now only add to the map
  document.addEventListener("keydown", listener);
})();
</script>""" % (json.dumps(_KEYS), json.dumps(_MOVE_KEYS))
# The key plumbing (the script, streamlit-shortcuts' iframe, p's enter button; the toggle is what
# a mouse uses) out of sight and out of the sidebar's layout, yet rendered, so the iframe runs.
KEYS_CSS = ("<style>.st-key-present_keys { position: absolute !important; width: 0 !important; height: 0 !important; "
            "min-width: 0 !important; overflow: hidden; margin: 0 !important; padding: 0 !important; "
            "border: 0 !important; }</style>")


def current_page() -> str | None:
    """The running page's file relative to ``dashboard/`` (``"views/filters.py"``), or None
    (read from the script run's page registry: Streamlit has no public call for it)."""
    ctx = get_script_run_ctx()
    if ctx is None:
        return None
    info = ctx.pages_manager.get_pages().get(ctx.pages_manager.current_page_script_hash)
    path = (info or {}).get("script_path")
    if not path:
        return None
    p = Path(path)
    return f"{p.parent.name}/{p.name}" if p.parent.name == "views" else p.name


def present_on() -> bool:
    """True in present mode (the session's choice, else the URL's ``present=1``)."""
    ss = st.session_state
    if _STATE not in ss:
        ss[_STATE] = st.query_params.get("present") == "1"
    return bool(ss[_STATE])


def _toggled() -> None:
    st.session_state[_STATE] = bool(st.session_state[TOGGLE])


def _set(on: bool) -> None:
    st.session_state[_STATE] = on


def _go(step: int) -> None:
    st.switch_page(LECTURE_SEQUENCE[step].page, query_params=step_query(step, st.query_params))


def present_frame() -> bool:
    """The Present toggle, keys and (in present mode) CSS and step bar; True in present mode."""
    present = present_on()
    st.session_state[TOGGLE] = present
    st.sidebar.toggle("Present", key=TOGGLE, on_change=_toggled,
                      help="Lecture mode: large type, no sidebar or input widgets. Keys: p to enter, p or Esc "
                           "to leave, → / PageDown and ← / PageUp for the next and previous step of the "
                           "lecture (Filters, their training, feature maps, a receptive field, the "
                           "convolution, neighbours, mistakes). Kept in the URL as present=1.")
    if present:
        st.query_params["present"] = "1"
    else:
        st.query_params.pop("present", None)
    st.html(KEYS_CSS)
    with st.sidebar.container(key=KEYS_BOX):  # in both modes (the sidebar stays in the page when hidden)
        st.html(KEY_SCRIPT, unsafe_allow_javascript=True)
        if present:
            add_shortcuts(**{ENTER: [], EXIT: EXIT_KEYS, NEXT: NEXT_KEYS, PREV: PREV_KEYS})
        else:  # the step keys off again: arrows scroll, Esc is the page's
            add_shortcuts(**{ENTER: ENTER_KEYS, EXIT: [], NEXT: [], PREV: []})
            st.button("Present", key=ENTER, on_click=_set, args=(True,))
    if not present:
        return False

    st.html(PRESENT_CSS)
    page = current_page()
    at = current_step(page, st.query_params.get("step"))
    after, before = next_step(at), previous_step(at)
    with st.container(key=BAR, horizontal=True, vertical_alignment="center", gap="small"):
        back = st.button("Back", key=PREV, icon=":material/chevron_left:", disabled=before is None,
                         help="Previous step of the lecture (← or PageUp)")
        where = step_label(at) if at is not None else "not a lecture step: → starts at step 1"
        st.markdown(f"**{where}** · ← → / PgUp PgDn: step · p / Esc: leave present mode")
        st.button("Exit", key=EXIT, on_click=_set, args=(False,), help="Leave present mode (p or Esc)")
        forward = st.button("Next", key=NEXT, icon=":material/chevron_right:", disabled=after is None,
                            help="Next step of the lecture (→ or PageDown)")
    if forward and after is not None:
        _go(after)
    if back and before is not None:
        _go(before)
    return True

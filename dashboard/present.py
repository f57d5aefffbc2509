"""Present mode for lectures: each step of the lecture sequence (:mod:`cnnviz.lecture_sequence`)
as a slide that fits the screen, and the keyboard to walk the sequence page by page.

* ``app.py`` records the page :func:`st.navigation` returned (:func:`set_current_page`) and, in
  present mode, hides the navigation and runs the page inside the keyed container ``slide``
  (laid over the whole window through its ``st-key-slide`` class: nothing of the page's frame
  shows, nothing scrolls); :func:`present_frame` (run by the shared sidebar) then draws either
  the **Present** toggle in the sidebar, or, in present mode, the slide's title ("step 3 of 8:
  Feature maps") and the step bar.
* Present mode is kept in the URL as ``present=1`` (a shared link opens in present mode) and in
  the session (so it survives the sidebar's page links, which drop the URL).
* In present mode a page draws a slide instead of itself: :func:`slide` (a place for a Play
  button), at most one line of :func:`slide_text`, and :func:`slide_figure`, which scales its
  pictures to the room left (any other picture on the slide is held to that room too). Pages
  leave their input widgets out and take their choices from the URL (the step's parameters)
  and the session.
* Keys, handled by :data:`KEY_SCRIPT` (one listener on the page, which presses this module's own
  keyed buttons): ``p`` enters present mode; in present mode ``p`` or Esc leaves it, and
  ArrowRight/PageDown, ArrowLeft/PageUp go to the next/previous step (a presenter's clicker
  sends PageDown/PageUp); at either end of the sequence the key does nothing. Outside present
  mode the arrows and Esc are left to the page, and a key meant for a focused field (any key in
  a text field, arrows and PageUp/PageDown in a slider, radio group or select box) stays there.
"""

from __future__ import annotations

import base64
import html
import io
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import streamlit as st
from PIL import Image

from cnnviz.lecture_sequence import (
    LECTURE_SEQUENCE, LectureStep, current_step, next_step, previous_step, step_label, step_query,
)
from dashboard.state import Context, eval_split, split_data, url_int

TOGGLE, ENTER, EXIT, NEXT, PREV = "present_toggle", "present_enter", "present_exit", "lecture_next", "lecture_prev"
BAR, KEYS_BOX, SLIDE, HEAD, TOOLS, FIGURE = ("present_bar", "present_keys", "slide", "slide_head", "slide_tools",
                                             "slide_fig")
HOW_TO = "Lecture: press p or turn on Present"
_STATE = "_present"  # the mode; the toggle widget's own state is dropped when the page changes
_PAGE = "_present_page"  # the page being run (file, title), as app.py's st.navigation returned it
_RUN = threading.local()  # this run's title placeholder and tools row (a run is one script thread)

# Own classes only: the st-key-<key> class of this module's keyed containers, and the classes of
# the slide's HTML. Sizes follow the window's height, so a slide looks the same on any screen.
SLIDE_CSS = """<style>
.st-key-slide { position: fixed; inset: 0; z-index: 999990; overflow: hidden; box-sizing: border-box;
  padding: 2.2vh 2.5vw 0 2.5vw; gap: 1.2vh; background: #fff; }
.st-key-slide_head { gap: 1.5vw; }
.cv-title { margin: 0; padding: 0; font-size: max(24px, 5vh); line-height: 1.15; font-weight: 700; color: #111;
  white-space: nowrap; }
.cv-text { margin: 0; font-size: max(15px, 2.7vh); line-height: 1.3; color: #333; white-space: nowrap;
  overflow: hidden; text-overflow: ellipsis; }
/* the figure: the room under the title and the line of text, whatever Streamlit wraps around it */
.st-key-slide .st-key-slide_fig { position: fixed; left: 2.5vw; top: 15.5vh; width: 95vw; height: 79vh;
  container-type: size; overflow: hidden; }
.cv-fig { display: flex; justify-content: center; align-items: flex-start; gap: 2cqw; height: 100cqh; }
.cv-panel { display: flex; flex-direction: column; align-items: center; margin: 0; }
.cv-panel img { display: block; }
.cv-panel img.px { image-rendering: pixelated; }
/* a picture a page draws itself (not through slide_figure): held to the room under the title */
.st-key-slide img { max-height: 78vh; max-width: 95vw; object-fit: contain; }
.cv-panel figcaption { margin-top: .5vh; font-size: max(14px, 2.2vh); line-height: 1.3; color: #333;
  white-space: nowrap; }
.st-key-present_bar { position: fixed; right: 1vw; bottom: .6vh; z-index: 999991; background: #fff; gap: 6px; }
.st-key-present_bar p, .st-key-present_bar button { font-size: 14px; line-height: 1.3; color: #666; }
.st-key-present_bar button { min-height: 0; padding: 1px 10px; }
</style>"""
# The key plumbing (the script and p's button; the toggle is what a mouse uses) out of sight and
# out of the sidebar's layout, yet rendered, so the script runs and the button can be pressed.
KEYS_CSS = ("<style>.st-key-present_keys { position: absolute; width: 0; height: 0; min-width: 0; "
            "overflow: hidden; margin: 0; padding: 0; border: 0; }</style>")
KEY_SCRIPT = """<script>
(function () {
  if (window.__cnnvizKeys) return;
  window.__cnnvizKeys = true;
  var moves = {ArrowRight: "lecture_next", PageDown: "lecture_next", ArrowLeft: "lecture_prev", PageUp: "lecture_prev"};
  var typing = /^(text|search|email|password|url|tel|number|date|time|datetime-local|month|week)$/;
  function typingIn(t) {
    return !!t && (t.isContentEditable || t.tagName === "TEXTAREA" ||
                   (t.tagName === "INPUT" && typing.test(t.type || "text")));
  }
  function movingIn(t) {  // a control the arrows move: a slider, a radio group, a select box
    return !!t && !!t.closest && (t.tagName === "SELECT" || (t.tagName === "INPUT" && t.type === "radio") ||
      !!t.closest('[role="slider"], [role="radio"], [role="radiogroup"], [role="listbox"], [role="combobox"], ' +
                  '[role="spinbutton"]'));
  }
  function button(key) {
    var b = document.querySelector(".st-key-" + key + " button");
    return b && !b.disabled ? b : null;
  }
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.altKey || e.metaKey || e.isComposing || typingIn(e.target)) return;
    var b = null;
    if (e.key === "p" && !e.shiftKey) b = button("present_exit") || button("present_enter");
    else if (e.key === "Escape") b = button("present_exit");
    else if (moves[e.key] && !movingIn(e.target)) b = button(moves[e.key]);
    if (b) { e.preventDefault(); b.click(); }
  });
})();
</script>"""


# -- the mode and the page ---------------------------------------------------------------------

def present_on() -> bool:
    """True in present mode (the session's choice, else the URL's ``present=1``)."""
    ss = st.session_state
    if _STATE not in ss:
        ss[_STATE] = st.query_params.get("present") == "1"
    return bool(ss[_STATE])


def set_current_page(page: str, title: str = "") -> None:
    """Record the page being run (its file relative to ``dashboard/``, ``"views/filters.py"``, and
    its title): ``app.py`` calls this with the page :func:`st.navigation` returned."""
    st.session_state[_PAGE] = (page, title)


def current_page() -> str | None:
    """The page being run, as :func:`set_current_page` recorded it (None before that)."""
    return (st.session_state.get(_PAGE) or (None, ""))[0]


def current_page_title() -> str:
    return (st.session_state.get(_PAGE) or (None, ""))[1]


def current_lecture_step() -> LectureStep | None:
    """The lecture step the running page shows (the URL's ``step`` when it is on this page),
    or None for a page outside the sequence."""
    at = current_step(current_page(), st.query_params.get("step"))
    return None if at is None else LECTURE_SEQUENCE[at]


def keep_choices(*keys: str) -> None:
    """Keep the session's values of these widget keys through runs that leave their widgets out
    (Streamlit forgets a widget's value once a run does not draw it; writing it back keeps it)."""
    for key in keys:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


def _toggled() -> None:
    st.session_state[_STATE] = bool(st.session_state[TOGGLE])


def _set(on: bool) -> None:
    st.session_state[_STATE] = on


def _go(step: int) -> None:
    st.switch_page(LECTURE_SEQUENCE[step].page, query_params=step_query(step, st.query_params))


def present_frame() -> bool:
    """The key script and, outside present mode, the Present toggle (with a line on how to start)
    in the sidebar; in present mode the slide's title row and the step bar. True in present mode."""
    present = present_on()
    if present:
        st.query_params["present"] = "1"
    else:
        st.query_params.pop("present", None)
    _RUN.title = _RUN.tools = None
    if not present:
        st.session_state[TOGGLE] = False
        st.sidebar.toggle("Present", key=TOGGLE, on_change=_toggled,
                          help="Lecture slides: each step of the lecture (the kernels, their training, feature "
                               "maps, a receptive field, the convolution, neighbours, mistakes, a unit) fills "
                               "the screen. Keys: p to enter, p or Esc to leave, → / PageDown and ← / PageUp for "
                               "the next and previous step. Kept in the URL as present=1.")
        st.sidebar.caption(HOW_TO)
        st.html(KEYS_CSS)
        with st.sidebar.container(key=KEYS_BOX):
            st.html(KEY_SCRIPT, unsafe_allow_javascript=True)
            st.button("Present", key=ENTER, on_click=_set, args=(True,))
        return False

    st.html(SLIDE_CSS)
    at = current_step(current_page(), st.query_params.get("step"))
    after, before = next_step(at), previous_step(at)
    with st.container(key=HEAD, horizontal=True, vertical_alignment="center"):
        _RUN.title = st.empty()
        _RUN.tools = st.container(key=TOOLS, horizontal=True, width="content")
    _RUN.at = at
    _title(step_label(at) if at is not None else (current_page_title() or "cnnviz"))
    with st.container(key=BAR, horizontal=True, vertical_alignment="center", gap="small", width="content"):
        st.html(KEY_SCRIPT, unsafe_allow_javascript=True)
        back = st.button("Back", key=PREV, icon=":material/chevron_left:", disabled=before is None,
                         help="Previous step of the lecture (← or PageUp)")
        where = "← → / PgUp PgDn: step" if at is not None else "not a lecture step: → starts at step 1"
        st.markdown(f"{where} · p / Esc: leave", width="content")
        st.button("Exit", key=EXIT, on_click=_set, args=(False,), help="Leave present mode (p or Esc)")
        forward = st.button("Next", key=NEXT, icon=":material/chevron_right:", disabled=after is None,
                            help="Next step of the lecture (→ or PageDown)")
    if forward and after is not None:
        _go(after)
    if back and before is not None:
        _go(before)
    return True


def _title(text: str) -> None:
    if _RUN.title is not None:
        _RUN.title.html(f'<h1 class="cv-title">{html.escape(text)}</h1>', width="content")


# -- slides -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Panel:
    """One picture of a slide's figure: ``picture`` ``(H, W, 3) uint8``, the ``label`` under it
    (one short line, or none) and ``sharp``: scaled with square pixels (an enlarged small image,
    a kernel) rather than smoothly (a picture with drawn text)."""

    picture: np.ndarray
    label: str = ""
    sharp: bool = True


@contextmanager
def slide(title: str | None = None) -> Iterator[object]:
    """Inside the ``with`` block a page draws its slide: at most one :func:`slide_text` and one
    :func:`slide_figure` (:func:`present_frame` drew the title: "step 3 of 8: Feature maps", or
    ``title`` on a page outside the lecture). Yields a container in the title row for a button
    (Play). The slide itself is the keyed container ``app.py`` runs the page in."""
    if title and getattr(_RUN, "at", None) is None:
        _title(title)
    yield _RUN.tools if getattr(_RUN, "tools", None) is not None else st.container()


def slide_text(text: str) -> None:
    """The slide's one line of text, under its title."""
    st.html(f'<p class="cv-text">{html.escape(text)}</p>')


def _data_uri(picture: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(np.asarray(picture, np.uint8)).save(buf, "PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def figure_html(panels: Sequence[Panel]) -> str:
    """The panels side by side at one height, as large as the figure's room allows (its width and
    height in container units, ``cqw``/``cqh``), labels under them: HTML for :func:`slide_figure`."""
    if not panels:
        raise ValueError("a slide figure needs at least one picture")
    ratio = sum(p.picture.shape[1] / p.picture.shape[0] for p in panels)
    label = "calc(max(14px, 2.2vh) * 1.3 + 0.5vh)" if any(p.label for p in panels) else "0px"
    gaps = f"{2 * (len(panels) - 1)}cqw"
    height = f"min(calc(100cqh - {label}), calc((100cqw - {gaps}) / {ratio:.5f}))"
    parts = []
    for p in panels:
        h, w = p.picture.shape[:2]
        cap = f"<figcaption>{html.escape(p.label)}</figcaption>" if p.label else ""
        parts.append(f'<figure class="cv-panel"><img class="{"px" if p.sharp else "smooth"}" alt="{html.escape(p.label)}" '
                     f'style="height: {height}; aspect-ratio: {w} / {h};" src="{_data_uri(p.picture)}">{cap}</figure>')
    return f'<div class="cv-fig">{"".join(parts)}</div>'


def slide_figure(panels: Sequence[Panel]) -> None:
    """The slide's figure: ``panels`` side by side, scaled to the room under the title and text."""
    with st.container(key=FIGURE):
        st.html(figure_html(panels))


ROOM = 2.1  # the figure's room, width / height, on a 16:9 screen (and about as much at 1280x720)


def grid_columns(n: int, tile_aspect: float = 1.0, room: float = ROOM) -> int:
    """How many columns lay ``n`` tiles (``tile_aspect``: width / height) out largest in a room
    of aspect ``room``."""
    return max(range(1, max(n, 1) + 1), key=lambda c: min(room / (c * tile_aspect), 1 / -(-n // c)))


def held_out_image(ctx: Context) -> tuple[np.ndarray, str, int | None] | None:
    """The image a present-mode page shows without its picker: the URL's ``img`` of the
    evaluation split (as the picker would choose it), or None without data."""
    if ctx.data is None or not ctx.data.exists():
        return None
    split = eval_split(ctx)
    ds = split_data(ctx, split)
    if ds is None or not len(ds):
        return None
    i = url_int("img", 0, len(ds) - 1, 0)
    st.query_params["img"] = str(i)
    label = int(ds.labels[i]) if ds.labelled else None
    return ds.images[i], f"{split} #{i}: {ds.ids[i]}", label


def no_slide(why: str) -> None:
    """A slide's figure cannot be drawn: say why, in its place."""
    slide_text(why)


CHART_PX = 380  # a chart's height on a slide: inside the figure's room at 1280x720 (79% of 720 px)


def slide_figure_chart(chart) -> None:
    """The slide's figure as an Altair chart (its height fixed: a chart cannot follow the window's)."""
    with st.container(key=FIGURE):
        st.altair_chart(chart.properties(height=CHART_PX), width="stretch")

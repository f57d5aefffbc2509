"""The warm-up: when a model and its data are first opened (on any page), a background thread
fills the disk caches of the heavy pages (:func:`cnnviz.warm.warm_caches`), so that their first
visit reads what a pass over the data computed while the user was elsewhere. A page that needs
a step still running waits for it (:func:`wait_for`) instead of computing the same thing beside
it. One thread per model and data for the server's life; ``CNNVIZ_WARM=0`` turns it off (the
tests do, to keep their caches their own)."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

import streamlit as st

from cnnviz.checkpoints import Checkpoint
from cnnviz.runtime import threads_here
from cnnviz.warm import STEPS, WarmReport, warm_caches


@dataclass
class WarmUp:
    """One warm-up's progress: an event per step of :data:`cnnviz.warm.STEPS`, set when it is done
    (or skipped, or when the warm-up stopped on an error); ``report`` once finished."""

    events: dict[str, threading.Event] = field(default_factory=lambda: {s: threading.Event() for s in STEPS})
    report: WarmReport | None = None
    error: str | None = None

    def run(self, ckpt: Checkpoint, data: str) -> None:
        try:
            with threads_here(1):  # one core: the page scripts keep the other
                self.report = warm_caches(ckpt, data, done=lambda step: self.events[step].set())
        except Exception as e:  # noqa: BLE001 - the page that needs the data reports it itself
            self.error = f"{type(e).__name__}: {e}"
        finally:
            for ev in self.events.values():
                ev.set()

    def running(self, step: str) -> bool:
        return not self.events[step].is_set()


def enabled() -> bool:
    return os.environ.get("CNNVIZ_WARM", "1").strip() != "0"


@st.cache_resource(show_spinner=False, max_entries=8)
def _start(sha: str, data: str, _ckpt: Checkpoint) -> WarmUp:
    warm = WarmUp()
    threading.Thread(target=warm.run, args=(_ckpt, data), name=f"cnnviz-warm-{sha[:8]}", daemon=True).start()
    return warm


def start(ckpt: Checkpoint, data: str) -> WarmUp | None:
    """The warm-up of ``ckpt`` on ``data``, started on the first call (None when turned off)."""
    return _start(ckpt.sha256, data, ckpt) if enabled() else None


def wait_for(ckpt: Checkpoint, data: str, step: str, timeout: float = 600.0) -> None:
    """Wait, with a spinner, until the warm-up of ``ckpt`` on ``data`` has done ``step`` (at
    once when it has, or when there is no warm-up)."""
    warm = start(ckpt, data)
    if warm is None or not warm.running(step):
        return
    with st.spinner(f"Preparing the {step} in the background since this model was opened; almost there..."):
        warm.events[step].wait(timeout)

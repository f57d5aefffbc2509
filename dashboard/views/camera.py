"""Camera page: the browser's camera through the model, live. Frames reach the server over WebRTC
(streamlit-webrtc); a per-session :class:`cnnviz.live.LiveClassifier` processes only the newest
one, so a model slower than the camera drops frames instead of falling behind. The top-5 classes,
the strongest feature maps of one layer, the frame rate and the dropped frames refresh several
times a second."""

from __future__ import annotations

import html
import json
import os
import time

import av
import numpy as np
import streamlit as st
from streamlit_webrtc import WebRtcMode, webrtc_streamer

from dashboard.glossary import explain
from dashboard.present import present_on, slide_text
from dashboard.state import sidebar
from dashboard.widgets import pick_layer
from cnnviz.checkpoints import Checkpoint
from cnnviz.figures.projection import thumbnails_b64
from cnnviz.figures.pictures import maps_image
from cnnviz.live import LiveClassifier

REFRESH_S = 0.25  # how often the live panel redraws
NO_FRAMES_S = 8.0  # seconds after START without a frame before the page says what to do
ICE_ENV = "CNNVIZ_ICE_SERVERS"
# 320x240 is plenty for a model that sees 32-64 px, and a quarter of the pixels of 640x480 to
# decode, convert and send back on a small server
CONSTRAINTS = {"video": {"width": {"ideal": 320}, "height": {"ideal": 240}}, "audio": False}
PREDICT_HINT = "Without a camera, classify a photo on the Predict page (upload)."
NO_CAMERA = ("Allow the camera for this site (the camera icon in the browser's address bar), close other "
             "programs that use it, and press START again; browsers offer the camera only on https:// "
             "pages and on localhost. " + PREDICT_HINT)
TRANSLATIONS = {
    "device_access_denied": "The browser refused the camera. " + NO_CAMERA,
    "device_not_available": "No camera found: connect one and press START again. " + PREDICT_HINT,
    "media_api_not_available": ("This page cannot ask for the camera: browsers offer it only on https:// pages "
                                "and on localhost. " + PREDICT_HINT),
}


def rtc_configuration() -> dict:
    """ICE servers from ``$CNNVIZ_ICE_SERVERS``, a JSON list such as
    ``[{"urls": ["stun:stun.l.google.com:19302"]}]``; else none: a browser on the same machine
    or network reaches the server directly, and nothing outside is contacted."""
    text = os.environ.get(ICE_ENV, "").strip()
    if not text:
        return {"iceServers": []}
    try:
        servers = json.loads(text)
        if not isinstance(servers, list) or not all(isinstance(s, dict) and "urls" in s for s in servers):
            raise ValueError
    except ValueError:
        st.warning(f"${ICE_ENV} is not a JSON list of ICE servers (each with \"urls\"); using none.")
        return {"iceServers": []}
    return {"iceServers": servers}


def classifier(ckpt: Checkpoint) -> LiveClassifier:
    """This session's classifier for ``ckpt`` (another checkpoint closes the old one)."""
    key = (ckpt.sha256, str(ckpt.path))
    held = st.session_state.get("cam_live")
    if held is not None and held[0] == key and not held[1].closed:
        return held[1]
    if held is not None:
        held[1].close(timeout=0)
    live = LiveClassifier(ckpt)
    st.session_state["cam_live"] = (key, live)
    return live


def frame_callback(live: LiveClassifier):
    """The WebRTC thread's callback: hand the frame over (never waits) and send it back as is.
    It must not touch ``st`` (another thread)."""
    def on_frame(frame: av.VideoFrame) -> av.VideoFrame:
        live.submit(frame.to_ndarray(format="rgb24"))
        return frame

    return on_frame


@st.fragment(run_every=REFRESH_S)
def live_panel(live: LiveClassifier, started: float, received_at_start: int) -> None:
    """The newest result: top-5 bars, frame rate and drops, the layer's strongest maps."""
    res, stats = live.latest(), live.stats()
    if stats.received <= received_at_start:
        if time.monotonic() - started > NO_FRAMES_S:
            st.warning("No frames arrive from the camera. " + NO_CAMERA + " On a server reached over "
                       f"the network, the connection may also need ICE servers (set ${ICE_ENV}).")
        else:
            st.info("Waiting for the camera's first frames...")
        return
    if stats.errors:
        st.error(f"{stats.errors} frame{'s' if stats.errors != 1 else ''} could not be classified: "
                 f"{stats.last_error}")
    if res is None:
        st.info("Classifying the first frame...")
        return
    st.subheader(f"{res.top[0][0]} ({res.top[0][1]:.0%})")
    for name, p in res.top:
        st.progress(min(max(p, 0.0), 1.0), text=f"{name}: {p:.1%}")
    st.caption(f"**{stats.fps:.1f} frames/s** · {res.ms:.0f} ms per frame on {res.runtime} · "
               f"{stats.dropped:,} of {stats.received:,} frames dropped (only the newest frame is "
               "classified; the rest are skipped, never queued)")
    c, h, w = res.layer_shape if len(res.layer_shape) == 3 else (res.layer_shape[0], 1, 1)
    left, right = st.columns([3, 1])
    with left:
        picture(maps_image(res.maps, tile_px=64),
                f"{res.layer}: the {len(res.channels)} strongest of {c} channels ({h}x{w}), strongest mean "
                "activation first: " + ", ".join(str(int(ch)) for ch in res.channels[:8])
                + ("..." if len(res.channels) > 8 else ""))
    size = res.image.shape[0]
    with right:
        zoom = max(1, 128 // size)
        picture(np.repeat(np.repeat(res.image, zoom, 0), zoom, 1), f"what the model sees ({size}x{size})")


def picture(image: np.ndarray, caption: str) -> None:
    """An image inlined in the page at its own size (a data URI). ``st.image`` would serve it
    from a file that the next refresh deletes, often before the browser has fetched it."""
    uri = thumbnails_b64(image[None], max(image.shape[:2]))[0]
    st.markdown(f'<figure style="margin:0;text-align:center"><img src="{uri}" alt="" style="max-width:100%">'
                f'<figcaption style="font-size:0.8rem;opacity:0.7">{html.escape(caption)}</figcaption></figure>',
                unsafe_allow_html=True)


ctx = sidebar()
if present_on():  # a slide has no upload field or camera: say where they are
    slide_text("The camera page classifies your camera's frames live: press p (or Esc) to leave present mode and use it.")
else:
    st.title("Camera")
if ctx is not None and not present_on():
    meta = ctx.ckpt.meta
    st.caption(f"Your camera through the model, live: each frame is resized as the model was trained "
               f"({meta.preprocess.size} px, {meta.preprocess.mode}) and classified among its "
               f"{len(meta.classes)} classes in one pass (no test-time augmentation), with the feature maps "
               "of one layer. Frames go to the server that runs the dashboard; nothing is stored.",
               help=explain("test-time augmentation", "feature map"))
    live = classifier(ctx.ckpt)
    cam_col, panel_col = st.columns([2, 3])
    with cam_col:
        layer, _ = pick_layer(ctx, live.layer_names, "cam_layer",
                              help="Whose feature maps to show, strongest mean activation first; the default "
                                   "is a middle convolution.\n\n" + explain("feature map", "mean activation"))
        live.set_layer(layer)
        stream = webrtc_streamer(
            key="camera", mode=WebRtcMode.SENDRECV, rtc_configuration=rtc_configuration(),
            media_stream_constraints=CONSTRAINTS, video_frame_callback=frame_callback(live),
            async_processing=True, translations=TRANSLATIONS)
    active = stream.state.playing or stream.state.signalling
    if active:
        if "cam_started" not in st.session_state:
            st.session_state["cam_started"] = (time.monotonic(), live.stats().received)
    else:
        st.session_state.pop("cam_started", None)
    with panel_col:
        if active:
            live_panel(live, *st.session_state["cam_started"])
        else:
            st.info("Press START and allow the camera when the browser asks. No picture? " + NO_CAMERA)
            st.page_link("views/predict.py", label="Predict: classify uploaded photos", icon=":material/upload:")

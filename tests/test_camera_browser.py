"""The Camera page: an AppTest that it opens with its camera control, and end to end in a real
headless Chromium whose fake camera (``--use-fake-device-for-media-stream``, permission granted
by ``--use-fake-ui-for-media-stream``) streams over WebRTC to the dashboard on loopback (no ICE
servers) until the page shows live predictions.

Uses Debian's Chromium (``/usr/bin/chromium``) driven by Playwright's Python package; no browser
is downloaded. Without it the browser test is skipped; the AppTests run anyway."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from browser_support import CHROMIUM, chromium, dashboard_server
from dashboard_fixtures import (  # noqa: F401 (fixtures)
    dashboard_env, errors, open_page, tiny_dashboard,
)

ROOT = Path(__file__).resolve().parent.parent
FAKE_CAMERA = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
LIVE_S = float(os.environ.get("CNNVIZ_BROWSER_TIMEOUT", "120"))


# -- AppTest --------------------------------------------------------------------------------

@pytest.fixture
def webrtc_outside_a_server(monkeypatch):
    """AppTest runs without Streamlit's server, whose session list streamlit-webrtc reads;
    its lookup then answers None (as it does for any run outside a live session)."""
    import streamlit_webrtc.component as component

    monkeypatch.setattr(component, "get_this_session_info", lambda: None)


def webrtc_args(at) -> dict:
    found = [el.proto for el in at.get("component_instance") if "webrtc" in el.proto.component_name]
    assert len(found) == 1, [el.proto.component_name for el in at.get("component_instance")]
    return json.loads(found[0].json_args)


def test_camera_page_opens_with_the_start_control(dashboard_env, webrtc_outside_a_server, monkeypatch):
    monkeypatch.delenv("CNNVIZ_ICE_SERVERS", raising=False)
    at = open_page("camera")
    assert not at.exception, errors(at)
    args = webrtc_args(at)  # the component that draws START and the camera picture
    assert args["mode"] == "SENDRECV" and args["rtc_configuration"] == {"iceServers": []}
    assert args["media_stream_constraints"]["audio"] is False
    assert any("Press START" in i.value and "Predict" in i.value for i in at.info)
    assert at.selectbox(key="cam_layer").value == at.query_params["layer"]  # a middle convolution


def test_camera_page_keeps_the_layer_in_the_url(dashboard_env, webrtc_outside_a_server):
    at = open_page("camera", {"layer": "features.0"})
    assert not at.exception, errors(at)
    assert at.selectbox(key="cam_layer").value == "features.0"


def test_ice_servers_come_from_the_environment(dashboard_env, webrtc_outside_a_server, monkeypatch):
    servers = [{"urls": ["stun:stun.example.org:3478"]}]
    monkeypatch.setenv("CNNVIZ_ICE_SERVERS", json.dumps(servers))
    at = open_page("camera")
    assert not at.exception, errors(at)
    assert webrtc_args(at)["rtc_configuration"] == {"iceServers": servers}
    monkeypatch.setenv("CNNVIZ_ICE_SERVERS", "stun:oops")
    at = open_page("camera")
    assert webrtc_args(at)["rtc_configuration"] == {"iceServers": []}
    assert any("CNNVIZ_ICE_SERVERS" in w.value for w in at.warning)


# -- Chromium with a fake camera ------------------------------------------------------------

@pytest.fixture(scope="module")
def playwright_api():
    api = pytest.importorskip("playwright.sync_api",
                              reason="playwright is not installed (pip install -e '.[test]')")
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    return api


@pytest.fixture(scope="module")
def server(playwright_api, tmp_path_factory):
    from dashboard_fixtures import build_tiny_dashboard  # noqa: PLC0415

    tiny = build_tiny_dashboard(tmp_path_factory.mktemp("camera"))
    env = dict(os.environ, CNNVIZ_CHECKPOINTS=str(tiny.checkpoints), CNNVIZ_DATA=str(tiny.data),
               PYTHONUNBUFFERED="1")
    env.pop("CNNVIZ_ICE_SERVERS", None)
    log = tmp_path_factory.mktemp("server") / "streamlit.log"
    with dashboard_server(ROOT / "dashboard" / "app.py", env, ROOT, log) as url:
        yield url, log, tiny.classes


# True once the page shows a frame rate above zero, one of the classes with its probability as a
# progress bar's label ("red: 40.1%") and the maps' picture with the model's input.
LIVE = """([classes]) => {
    const text = document.body.innerText;
    const fps = text.match(/([0-9]+[.][0-9]) frames\\/s/);
    return fps !== null && parseFloat(fps[1]) > 0 && text.includes('what the model sees') &&
        classes.some(c => new RegExp(c + ': [0-9.]+%').test(text));
}"""


def press_start(browser, url: str):
    """Opens the Camera page in ``browser`` and presses START; returns the page and the
    streamlit-webrtc frame."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{url}/camera", wait_until="networkidle")
    page.get_by_text("Press START", exact=False).first.wait_for(timeout=LIVE_S * 1000)
    webrtc = page.frame_locator("iframe[title*='webrtc']").first
    webrtc.get_by_role("button", name=re.compile("^start$", re.I)).click(timeout=LIVE_S * 1000)
    return page, webrtc


def test_fake_camera_gives_live_predictions(server, playwright_api):
    url, log, classes = server
    with chromium(playwright_api, FAKE_CAMERA) as browser:
        page, webrtc = press_start(browser, url)
        try:
            try:
                page.wait_for_function(LIVE, arg=[classes], timeout=LIVE_S * 1000)
            except Exception:
                raise AssertionError(f"no live predictions; page:\n{page.inner_text('body')[-1500:]}\n"
                                     f"server log:\n{log.read_text()[-3000:]}") from None
            text = page.inner_text("body")
            shown = [c for c in classes if re.search(rf"{c}: [0-9.]+%", text)]
            assert sorted(shown) == sorted(classes), text  # the tiny model has 3 classes: all in the top 5
            assert "frames dropped" in text and "strongest mean activation first" in text, text
            assert not page.locator("[data-testid=stException]").count(), page.locator(
                "[data-testid=stException]").first.inner_text()
            shots = os.environ.get("CNNVIZ_SCREENSHOTS")
            if shots:
                Path(shots).mkdir(parents=True, exist_ok=True)
                page.wait_for_timeout(2000)
                page.screenshot(path=str(Path(shots) / "camera.png"), full_page=False)
            webrtc.get_by_role("button", name=re.compile("^stop$", re.I)).click()
            page.get_by_text("Press START", exact=False).first.wait_for(timeout=30_000)
        finally:
            page.close()
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]


@pytest.mark.parametrize("flags, error", [
    # no camera at all: the fake capture factory with no devices, permission granted
    (["--use-fake-device-for-media-stream=device-count=0", "--use-fake-ui-for-media-stream"], "NotFoundError"),
    # a camera, but the permission refused (headless Chromium refuses a prompt no one answers)
    (["--use-fake-device-for-media-stream"], "NotAllowedError"),
], ids=["no-camera", "permission-refused"])
def test_without_a_camera_or_permission_the_page_says_what_to_do(server, playwright_api, flags, error):
    url, log, _ = server
    with chromium(playwright_api, flags) as browser:
        page, webrtc = press_start(browser, url)
        try:
            webrtc.get_by_text(error, exact=False).first.wait_for(timeout=LIVE_S * 1000)  # the browser's own reason
            page.wait_for_timeout(1000)  # the page reruns on the component's change
            text = page.inner_text("body")
            assert "Allow the camera for this site" in text and "press START again" in text, text
            assert "Without a camera, classify a photo on the Predict page" in text, text
            assert "frames/s" not in text and not page.locator("[data-testid=stException]").count()
            webrtc.get_by_role("button", name=re.compile("^start$", re.I)).wait_for()  # START can be pressed again
        finally:
            page.close()
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]

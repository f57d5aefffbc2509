"""AppTest for the Filters page's Play button: it steps through the training snapshots from
initialisation to the end and stops at the last, Pause keeps the epoch, and the URL's ``epoch``
follows (AppTest does not fire the fragment's ``run_every`` timer: each ``at.run()`` stands for
one frame, as in test_dashboard_convolution.py). And its "Download the lecture deck" button."""

from __future__ import annotations

import io
import shutil
import zipfile

import numpy as np
import pytest
from safetensors.torch import save_file

from cnnviz.checkpoints import load_checkpoint, snapshots_path

from dashboard_fixtures import (  # noqa: F401 (fixtures)
    _point_dashboard, clickable_images, dashboard_env, downloads, errors, open_page, tiny_dashboard,
)


def grid(at) -> np.ndarray:
    """The kernel grid's pixels ``(H, W, 3)``."""
    return clickable_images(at)["f_click"]


@pytest.fixture
def played(tiny_dashboard, tmp_path, monkeypatch):
    """The tiny checkpoint with snapshots at epochs 0, 1 and 2: its kernels negated, mirrored
    left-right and mirrored top-bottom, so every frame looks different."""
    ckdir = tmp_path / "checkpoints"
    ckdir.mkdir()
    for f in tiny_dashboard.checkpoints.glob("tiny.*"):
        shutil.copy(f, ckdir / f.name)
    w = load_checkpoint(ckdir / "tiny").model.first_conv.weight.detach()
    save_file({"epoch0/features.0.weight": (-w).contiguous(), "epoch1/features.0.weight": w.flip(-1).contiguous(),
               "epoch2/features.0.weight": w.flip(-2).contiguous()}, str(snapshots_path(ckdir / "tiny.safetensors")))
    _point_dashboard(monkeypatch, ckdir, tiny_dashboard.empty)
    return ckdir


def playing_text(at) -> str:
    bars = at.get("progress")
    assert len(bars) == 1, "no progress bar: not playing"
    return bars[0].proto.text


def test_play_steps_through_the_snapshots_and_stops_at_the_last(played):
    at = open_page("filters")
    assert not at.exception, errors(at)
    slider = at.select_slider(key="f_epoch")
    assert list(slider.options) == ["initial", "1", "2", "final"] and slider.value == "final"
    assert at.query_params["epoch"] == "final"
    assert at.button(key="f_play").label == "Play training"
    seen = {}
    for e in (0, 1, 2, "final"):  # what the slider shows at each epoch
        at.select_slider(key="f_epoch").set_value(e).run()
        assert at.query_params["epoch"] == str(e)
        seen[e] = grid(at)
    mask = seen["final"] < 255  # not the white gaps
    # per-filter min-max scaling of negated weights inverts every kernel pixel (255 - v, up to rounding)
    assert np.abs(seen[0].astype(int) + seen["final"].astype(int) - 255)[mask].max() <= 1
    assert not np.array_equal(seen[1], seen["final"]) and not np.array_equal(seen[1], seen[2])

    at.button(key="f_play").click().run()  # from the end: starts again at initialisation
    assert not at.exception, errors(at)
    assert at.button(key="f_play").label == "Pause" and not at.select_slider
    frames = [(playing_text(at), at.query_params["epoch"], grid(at))]
    for _ in range(3):
        at.run()  # one frame of the fragment's timer
        frames.append((playing_text(at), at.query_params["epoch"], grid(at)))
    assert [(t, e) for t, e, _ in frames] == [
        ("Training epoch: initial (playing)", "0"), ("Training epoch: 1 (playing)", "1"),
        ("Training epoch: 2 (playing)", "2"), ("Training epoch: final (playing)", "final")]
    for (_, e, g), want in zip(frames, (0, 1, 2, "final")):
        assert np.array_equal(g, seen[want]), e

    at.run()  # after one frame at the end it stops by itself, on the last snapshot
    assert not at.exception, errors(at)
    assert at.button(key="f_play").label == "Play training" and not at.session_state["f_playing"]
    assert at.select_slider(key="f_epoch").value == "final" and at.query_params["epoch"] == "final"
    assert not at.get("progress")
    at.run()
    assert at.query_params["epoch"] == "final" and np.array_equal(grid(at), seen["final"])


def test_pause_keeps_the_epoch_in_the_slider_and_the_url(played):
    at = open_page("filters", {"epoch": "1"})
    assert at.select_slider(key="f_epoch").value == 1
    at.button(key="f_play").click().run()  # from the middle: plays on from there
    assert playing_text(at) == "Training epoch: 1 (playing)"
    at.run()
    assert at.query_params["epoch"] == "2"
    at.button(key="f_play").click().run()
    assert not at.exception, errors(at)
    assert at.button(key="f_play").label == "Play training"
    assert at.select_slider(key="f_epoch").value == 2 and at.query_params["epoch"] == "2"
    at.run()
    assert at.select_slider(key="f_epoch").value == 2 and at.query_params["epoch"] == "2"


def test_the_urls_epoch_opens_and_a_new_one_is_followed(played):
    assert open_page("filters", {"epoch": "first"}).select_slider(key="f_epoch").value == 0
    assert open_page("filters", {"epoch": "2"}).select_slider(key="f_epoch").value == 2
    assert open_page("filters", {"epoch": "9"}).select_slider(key="f_epoch").value == "final"
    at = open_page("filters", {"epoch": "2"})
    at.query_params["epoch"] = "first"  # a lecture step to the same page: the new URL wins
    at.run()
    assert not at.exception, errors(at)
    assert at.select_slider(key="f_epoch").value == 0 and at.query_params["epoch"] == "0"


def test_the_lecture_deck_is_built_in_memory_and_offered_as_a_zip(dashboard_env, downloads, tmp_path):
    at = open_page("filters")
    assert not at.exception, errors(at)
    assert not [b for b in at.get("download_button") if b.proto.id.endswith("f_deck_zip")]
    at.button(key="f_deck_build").click().run()
    assert not at.exception and not at.error, errors(at)
    zips = [(d, name) for d, mime, name in downloads if mime == "application/zip"]
    assert len(zips) == 1 and zips[0][1] == "tiny_lecture_deck.zip"
    with zipfile.ZipFile(io.BytesIO(zips[0][0])) as z:  # no snapshots in this checkpoint: 7 of 8 steps
        assert z.namelist() == ["deck.html", "deck/01_kernels.png", "deck/02_feature_maps.png",
                                "deck/03_receptive_field.png", "deck/04_convolution.png", "deck/05_neighbours.png",
                                "deck/06_mistakes.png", "deck/07_unit.png"]
        html = z.read("deck.html").decode()
    assert "http://" not in html and "https://" not in html and html.count('src="data:image/png;base64,') == 7
    assert any(c.value.startswith("No slide for kernels over epochs: no epoch snapshots") for c in at.caption)
    label = next(b.proto.label for b in at.get("download_button") if b.proto.id.endswith("f_deck_zip"))
    assert label.startswith("Save the deck (7 slides, ") and label.endswith(" MB zip)")
    at.run()  # the built deck stays offered
    assert [b for b in at.get("download_button") if b.proto.id.endswith("f_deck_zip")]

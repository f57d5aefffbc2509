"""cnnviz.live: camera frames through the model, the newest frame only.

The same numbers as the Predict path for the same image; frames that arrive faster than the
model runs are dropped and counted, never queued, and the newest one is processed; the shared
model is never changed; the worker thread's settings stay on that thread."""

from __future__ import annotations

import io
import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from conftest import model_fingerprint

from cnnviz.checkpoints import Checkpoint, CheckpointMeta, load_checkpoint, save_checkpoint
from cnnviz.data import Preprocess, decode_image
from cnnviz.inputs import Normalization, to_input
from cnnviz.inspect.feature_maps import feature_maps
from cnnviz.figures.pictures import maps_image
from cnnviz.live import LiveClassifier, default_live_layer, frame_to_input
from cnnviz.models import get_model
from cnnviz.predict import predict_images
from cnnviz.runtime import fix_for_inference, resolve_runtime

SIZE = 32
CPU32 = resolve_runtime("cpu", "fp32")
CLASSES = ["ant", "bee", "cat", "dog", "eel", "fox", "gnu"]
NORM = Normalization((0.5,) * 3, (0.25,) * 3)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tiny alexnet_style checkpoint with 7 classes (its ReLUs are built with inplace=True) and
    test-time augmentation off."""
    torch.manual_seed(0)
    model = get_model("alexnet_style", len(CLASSES), SIZE, width=0.125, fc6=16, fc7=32)
    meta = CheckpointMeta(arch="alexnet_style", classes=CLASSES, preprocess=Preprocess(SIZE, "center_crop"),
                          normalization=NORM, arch_kwargs=dict(width=0.125, fc6=16, fc7=32), tta="none")
    return save_checkpoint(tmp_path_factory.mktemp("ck") / "tiny", model, meta)


@pytest.fixture(scope="module")
def ckpt(saved):
    return load_checkpoint(saved, runtime=CPU32)


def frame(seed: int, shape=(48, 64)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)




# -- the same numbers as Predict --------------------------------------------------------------

def test_a_frame_is_preprocessed_as_an_uploaded_image(ckpt):
    f = frame(1, (37, 90))
    buf = io.BytesIO()
    Image.fromarray(f).save(buf, "PNG")
    np.testing.assert_array_equal(frame_to_input(f, ckpt.meta.preprocess),
                                  decode_image(buf.getvalue(), ckpt.meta.preprocess))
    for bad in (f[..., :2], f.astype(np.float32), f[0], np.zeros((0, 4, 3), np.uint8)):
        with pytest.raises(ValueError, match="RGB frame"):
            frame_to_input(bad, ckpt.meta.preprocess)


def test_top5_and_maps_equal_predict_and_feature_maps(ckpt):
    before = model_fingerprint(ckpt.model)
    live = LiveClassifier(ckpt, "features.3", max_maps=6)
    for seed in range(3):
        f = frame(seed)
        res = live.process(f)
        image = frame_to_input(f, ckpt.meta.preprocess)
        np.testing.assert_array_equal(res.image, image)
        want = predict_images(ckpt, image[None], ["x"]).top_k(5)[0]
        assert [c for c, _ in res.top] == [c for c, _ in want]
        np.testing.assert_allclose([p for _, p in res.top], [p for _, p in want], rtol=1e-5, atol=1e-6)
        fm = feature_maps(ckpt.model, image, "features.3", NORM)
        np.testing.assert_array_equal(res.channels, fm.order[0, :6])
        np.testing.assert_allclose(res.maps, fm.maps[0, fm.order[0, :6]], rtol=1e-5, atol=1e-5)
        assert res.layer == "features.3" and res.layer_shape == fm.shape[1:]
        assert res.frame == seed + 1 and res.stats.processed == seed + 1 and res.ms > 0
    assert live.latest() is res and live.runtime == CPU32
    assert model_fingerprint(ckpt.model) == before


def test_auto_runtime_picks_one_and_matches_predict_on_it(saved):
    bf16 = resolve_runtime("cpu", "bf16")
    ckpt = load_checkpoint(saved, runtime=bf16)
    live = LiveClassifier(ckpt)  # "auto": the checkpoint's bf16 against fp32, on the first frame
    assert live.runtime is None
    f = frame(7)
    res = live.process(f)
    assert live.runtime in (bf16, resolve_runtime("cpu", "fp32", channels_last=True))
    assert res.runtime == live.runtime.describe()
    want = predict_images(ckpt, frame_to_input(f, ckpt.meta.preprocess)[None], ["x"], runtime=live.runtime)
    tol = 1e-5 if live.runtime.dtype is None else 2e-2
    np.testing.assert_allclose(sorted(p for _, p in res.top), sorted(p for _, p in want.top_k(5)[0]), atol=tol)


def test_layers_default_change_and_refuse_unknown_names(ckpt):
    live = LiveClassifier(ckpt)
    assert live.layer == default_live_layer(ckpt.model)
    assert isinstance(ckpt.model.get_submodule(live.layer), nn.Conv2d)
    live.set_layer("fc8")
    res = live.process(frame(0))
    assert res.layer == "fc8" and res.layer_shape == (len(CLASSES),)
    assert res.maps.shape == (len(CLASSES), 1, 1)  # a linear layer gives 1x1 maps
    with pytest.raises(ValueError, match="no layer 'nope'"):
        live.set_layer("nope")
    with pytest.raises(ValueError, match="no layer"):
        LiveClassifier(ckpt, "nope")


def test_maps_image_is_a_colour_grid(ckpt):
    res = LiveClassifier(ckpt, max_maps=5).process(frame(3))
    img = maps_image(res.maps, tile_px=24)
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    h = res.maps.shape[1] * max(1, round(24 / max(res.maps.shape[1:])))
    assert img.shape[0] > h  # two rows of tiles for five maps (3 columns)
    assert (img == 255).all(axis=2).any()  # white gaps between tiles


# -- drop, never queue ------------------------------------------------------------------------

class SlowNet(nn.Module):
    """A tiny classifier whose forward pass records the first input value and the thread count,
    then waits for ``gate`` (when set) and sleeps ``delay`` seconds."""

    def __init__(self, delay: float = 0.0, gate: threading.Event | None = None):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.act = nn.ReLU(inplace=True)
        self.fc = nn.Linear(4, len(CLASSES))
        self.delay, self.gate = delay, gate
        self.seen: list[float] = []
        self.threads: list[int] = []
        self.entered = threading.Event()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(float(x[0, 0, 0, 0]))
        self.threads.append(torch.get_num_threads())
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(10)
        if self.delay:
            time.sleep(self.delay)
        return self.fc(self.act(self.conv(x)).mean((2, 3)))


def slow_checkpoint(model: SlowNet) -> Checkpoint:
    meta = CheckpointMeta(arch="slow", classes=CLASSES, preprocess=Preprocess(8), normalization=NORM)
    return Checkpoint(fix_for_inference(model, CPU32), meta, None, "slow", CPU32)


def solid(value: int) -> np.ndarray:
    return np.full((24, 40, 3), value, np.uint8)


def first_value(value: int) -> float:
    """What the model sees at pixel (0, 0) of channel 0 for a frame of one grey ``value``."""
    return float(to_input(solid(value)[:8, :8], NORM)[0, 0, 0, 0])


def test_frames_that_arrive_while_one_is_processed_are_dropped_and_the_newest_is_processed():
    gate = threading.Event()
    model = SlowNet(gate=gate)
    ckpt = slow_checkpoint(model)
    before = model_fingerprint(model)
    live = LiveClassifier(ckpt, "conv")
    assert live.submit(solid(10))
    assert model.entered.wait(10)  # frame 1 is in the model, held there
    for v in (20, 30, 40, 50):  # four more while it runs: only the last one may wait
        assert live.submit(solid(v))
    assert live.stats().dropped == 3
    gate.set()
    assert live.wait_idle(10)
    st = live.stats()
    assert (st.received, st.processed, st.dropped, st.errors) == (5, 2, 3, 0)
    assert model.seen == pytest.approx([first_value(10), first_value(50)])
    assert live.latest().frame == 5
    live.close()
    assert model_fingerprint(model) == before


def test_a_camera_faster_than_the_model_never_builds_a_queue():
    model = SlowNet(delay=0.05)
    live = LiveClassifier(slow_checkpoint(model), "conv", idle_timeout=5)
    frames_seen: list[int] = []
    stop = threading.Event()

    def reader() -> None:  # the dashboard's script thread, reading while frames come in
        while not stop.is_set():
            res = live.latest()
            if res is not None:
                frames_seen.append(res.frame)
            live.stats()
            time.sleep(0.005)

    t = threading.Thread(target=reader)
    t.start()
    waits = []
    n = 100
    for k in range(n):  # about 200 frames/s against a model that takes 50 ms per frame
        t0 = time.perf_counter()
        live.submit(solid(k))
        waits.append(time.perf_counter() - t0)
        time.sleep(0.005)
    assert live.wait_idle(10)
    stop.set()
    t.join()
    st = live.stats()
    assert 0 < st.fps <= 21  # at most one frame per 50 ms
    assert st.received == n and st.processed + st.dropped == n
    assert 2 <= st.processed < n // 2 and st.dropped > n // 2
    assert live.latest().frame == n  # the last frame is always processed
    assert max(waits) < 0.04  # submit never waits for the model
    assert frames_seen == sorted(frames_seen)  # results only move forward
    live.close()


def test_close_drops_the_waiting_frame_and_refuses_more():
    gate = threading.Event()
    model = SlowNet(gate=gate)
    live = LiveClassifier(slow_checkpoint(model), "conv")
    live.submit(solid(1))
    assert model.entered.wait(10)
    live.submit(solid(2))
    gate.set()
    live.close()
    assert live.closed and not live.submit(solid(3))
    st = live.stats()
    assert st.received == 2 and st.processed + st.dropped == 2


def test_the_worker_stops_when_idle_and_starts_again():
    model = SlowNet()
    live = LiveClassifier(slow_checkpoint(model), "conv", idle_timeout=0.2)
    live.submit(solid(1))
    assert live.wait_idle(10)
    deadline = time.time() + 5
    while live._worker is not None and time.time() < deadline:
        time.sleep(0.05)
    assert live._worker is None
    live.submit(solid(2))
    assert live.wait_idle(10)
    assert live.stats().processed == 2 and live.latest().frame == 2
    live.close()


def test_a_bad_frame_is_counted_and_the_stream_goes_on():
    live = LiveClassifier(slow_checkpoint(SlowNet()), "conv")
    live.submit(np.zeros((4, 4), np.uint8))
    assert live.wait_idle(10)
    live.submit(solid(5))
    assert live.wait_idle(10)
    st = live.stats()
    assert st.errors == 1 and "RGB frame" in st.last_error and st.processed == 1
    live.close()


def test_thread_count_is_set_for_the_forward_pass_only():
    before = torch.get_num_threads()
    model = SlowNet()
    live = LiveClassifier(slow_checkpoint(model), "conv", threads=2)
    live.process(solid(1))  # on this thread
    live.submit(solid(2))  # on the worker thread
    assert live.wait_idle(10)
    assert model.threads == [2, 2]
    assert torch.get_num_threads() == before
    seen = []
    t = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    t.start()
    t.join()
    assert seen == [before]  # threads started later keep the process's setting
    live.close()

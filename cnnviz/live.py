"""Live classification of camera frames: the latest frame only, never a queue.

A :class:`LiveClassifier` takes RGB frames of any size (``(H, W, 3) uint8``), preprocesses each
as the checkpoint records (:class:`~cnnviz.data.Preprocess`), runs one forward pass on a private
:func:`~cnnviz.hooks.model_view` without gradients, and publishes a :class:`LiveResult`: the
top classes, the strongest channel maps of one layer, the time it took and the frame counts.

Frames are handed over with :meth:`LiveClassifier.submit`, which never blocks: it keeps the newest
frame in a one-frame slot that a background thread works from. A frame that arrives while another
waits in the slot replaces it and the replaced one counts as dropped, so when inference is slower
than the camera the results follow the camera's latest picture instead of falling behind.
:meth:`LiveClassifier.latest` reads the newest result from any thread (a dashboard's script
thread while a WebRTC thread submits). :meth:`LiveClassifier.process` does the same work
synchronously on the calling thread (benchmarks, tests, scripts).

Live predictions use no test-time augmentation: they are one forward pass, so they can differ
slightly from :func:`cnnviz.predict.predict_images` on a checkpoint that records TTA.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from PIL import Image

from .checkpoints import Checkpoint
from .data import Preprocess
from .hooks import capture, model_view, resolve_layers, valid_layer_names
from .inputs import to_input
from .runtime import Runtime, check_runtime, device_of, threads_here, tune_cpu_process

__all__ = ["LiveClassifier", "LiveResult", "LiveStats", "default_live_layer", "frame_to_input"]


def frame_to_input(frame: np.ndarray, preprocess: Preprocess) -> np.ndarray:
    """One RGB frame ``(H, W, 3) uint8`` of any size -> the model's ``(S, S, 3) uint8`` input,
    resized as ``preprocess`` says (squash, centre crop or pad), exactly as an uploaded image
    would be. Raises ``ValueError`` for another shape or dtype."""
    arr = np.asarray(frame)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8 or 0 in arr.shape:
        raise ValueError(f"expected an RGB frame (H, W, 3) uint8, got shape {arr.shape} {arr.dtype}")
    out = preprocess.apply(Image.fromarray(np.ascontiguousarray(arr), "RGB"))
    return out if out.flags.writeable else out.copy()  # torch warns on read-only arrays


def default_live_layer(model: torch.nn.Module) -> str:
    """The layer shown when none is asked for: the middle convolution (as the dashboard's layer
    pickers default), else the first layer."""
    names = valid_layer_names(model)
    convs = [n for n in names if isinstance(model.get_submodule(n), torch.nn.Conv2d)]
    return convs[len(convs) // 2] if convs else names[0]


@dataclass(frozen=True)
class LiveStats:
    """Counts since the classifier was made. ``received``: frames handed in; ``processed``:
    frames that went through the model; ``dropped``: frames replaced by a newer one (or
    discarded at :meth:`LiveClassifier.close`) before they were processed; ``errors``: frames
    whose processing raised (``last_error`` says why). ``fps``: frames processed per second
    over the last ``fps_window`` seconds (0 once none finished in it); ``ms``: the last
    frame's processing time."""

    received: int
    processed: int
    dropped: int
    errors: int
    fps: float
    ms: float
    last_error: str | None = None


@dataclass(frozen=True, eq=False)
class LiveResult:
    """What one frame gave.

    * ``top``: the ``top_k`` most probable ``(class, probability)`` pairs, most probable first.
    * ``layer``, ``layer_shape``: the layer shown and its output shape for one image, e.g.
      ``(C, h, w)`` (a layer without spatial layout, ``(D,)``, gives 1x1 maps).
    * ``channels``: ``(k,) int64`` the ``k`` strongest channels by mean activation, strongest
      first (ties by index, as :func:`cnnviz.inspect.feature_maps` orders them); ``maps``:
      ``(k, h, w) float32`` their raw activations.
    * ``image``: ``(S, S, 3) uint8`` the model's input made from the frame.
    * ``ms``: milliseconds from the raw frame to this result (preprocessing, forward pass,
      top classes and maps); ``frame``: the frame's number among those received (1 first).
    * ``runtime``: where and how it ran, e.g. ``"cpu fp32 channels_last"``.
    * ``stats``: the counts when this result was published.
    """

    top: list[tuple[str, float]]
    layer: str
    layer_shape: tuple[int, ...]
    channels: np.ndarray
    maps: np.ndarray
    image: np.ndarray
    ms: float
    frame: int
    runtime: str
    stats: LiveStats


class LiveClassifier:
    """Classify a stream of frames with ``ckpt``'s model, the newest frame first and only.

    ``layer``: whose maps each result carries (default :func:`default_live_layer`; change it
    any time with :meth:`set_layer`). ``runtime``: device and precision; it must name the
    model's device. ``"auto"`` (default) times the checkpoint's runtime (e.g. bf16 autocast
    on CPUs with fast bf16) against plain fp32 on the first frame and keeps the faster: one
    small image is often quicker without autocast's conversions. ``None``: the checkpoint's.
    ``threads``: CPU threads for one forward pass, set for the thread that runs it only
    (default 1: a single small image gains little from more, and on a busy machine threads
    that wait for each other cost far more than they give; None keeps torch's setting).
    ``top_k``: classes per result; ``max_maps``: channel maps per result.

    The shared model is never changed: the forward pass runs on a private view with its own
    hooks. All methods are thread-safe. The background thread starts with the first
    :meth:`submit` and ends after ``idle_timeout`` seconds without frames (the next
    :meth:`submit` starts another) or at :meth:`close`.
    """

    def __init__(self, ckpt: Checkpoint, layer: str | None = None, *,
                 runtime: Runtime | Literal["auto"] | None = "auto", threads: int | None = 1,
                 top_k: int = 5, max_maps: int = 16, idle_timeout: float = 10.0, fps_window: float = 2.0):
        self.classes = list(ckpt.meta.classes)
        self.preprocess = ckpt.meta.preprocess
        self.normalization = ckpt.meta.normalization
        if isinstance(runtime, str):
            if runtime != "auto":
                raise ValueError(f"runtime must be a Runtime, 'auto' or None, not {runtime!r}")
            own = check_runtime(ckpt.model, ckpt.runtime)
            fp32 = Runtime(own.device, None, own.channels_last)
            self._candidates = [own] if own.dtype is None else [own, fp32]
        else:
            self._candidates = [check_runtime(ckpt.model, runtime or ckpt.runtime)]
        self._runtime: Runtime | None = self._candidates[0] if len(self._candidates) == 1 else None
        self.threads = threads
        self.top_k = max(1, int(top_k))
        self.max_maps = max(1, int(max_maps))
        self.idle_timeout = float(idle_timeout)
        self.fps_window = float(fps_window)
        self._view = model_view(ckpt.model)
        self._layer = self._check_layer(layer if layer is not None else default_live_layer(self._view))
        if device_of(ckpt.model).type == "cpu":
            tune_cpu_process()
        self._cond = threading.Condition()  # guards everything below
        self._run_lock = threading.Lock()  # one forward pass at a time on the private view
        self._pending: tuple[int, np.ndarray] | None = None
        self._busy = False
        self._closed = False
        self._worker: threading.Thread | None = None
        self._latest: LiveResult | None = None
        self._received = self._processed = self._dropped = self._errors = 0
        self._last_ms = 0.0
        self._last_error: str | None = None
        self._done_at: deque[float] = deque(maxlen=4096)
        self._stream_start = 0.0

    # -- configuration ----------------------------------------------------------------------

    @property
    def layer(self) -> str:
        with self._cond:
            return self._layer

    @property
    def runtime(self) -> Runtime | None:
        """The runtime forward passes use (None while ``"auto"`` has not chosen yet)."""
        return self._runtime

    @property
    def layer_names(self) -> list[str]:
        return valid_layer_names(self._view)

    def _check_layer(self, layer: str) -> str:
        resolve_layers(self._view, layer)  # ValueError listing the valid names
        return layer

    def set_layer(self, layer: str) -> None:
        """Show ``layer``'s maps from the next frame on; an unknown name raises ``ValueError``."""
        self._check_layer(layer)
        with self._cond:
            self._layer = layer

    # -- frames in --------------------------------------------------------------------------

    def submit(self, frame: np.ndarray) -> bool:
        """Hand in a frame ``(H, W, 3) uint8`` without waiting; it replaces (and drops) a frame
        still waiting. The array is kept, not copied: do not write to it afterwards. Returns
        False, and keeps nothing, once the classifier is closed."""
        with self._cond:
            if self._closed:
                return False
            self._received += 1
            if self._pending is not None:
                self._dropped += 1
            self._pending = (self._received, frame)
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="cnnviz-live", daemon=True)
                self._worker.start()
            self._cond.notify_all()
            return True

    def process(self, frame: np.ndarray) -> LiveResult:
        """Process one frame now, on the calling thread, and return (and publish) its result;
        errors are raised, not recorded."""
        with self._cond:
            self._received += 1
            seq = self._received
        return self._run(seq, frame)

    def _work(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._closed:
                    if not self._cond.wait(self.idle_timeout) and self._pending is None:
                        self._worker = None  # idle: the next submit starts a new thread
                        return
                if self._closed:
                    self._worker = None
                    self._cond.notify_all()
                    return
                seq, frame = self._pending
                self._pending = None
                self._busy = True
            try:
                self._run(seq, frame)
            except Exception as e:  # noqa: BLE001 -- a bad frame must not end the stream
                with self._cond:
                    self._errors += 1
                    self._last_error = f"{type(e).__name__}: {e}"
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    # -- the work ---------------------------------------------------------------------------

    def _forward(self, image: np.ndarray, rt: Runtime) -> torch.Tensor:
        x = to_input(image, self.normalization, rt.device, rt.memory_format)
        with torch.no_grad(), rt.autocast():
            return self._view(x)

    def _choose_runtime(self, image: np.ndarray) -> Runtime:
        """The fastest candidate on ``image``: best of three timed passes each, after a warm-up."""
        best: dict[Runtime, float] = {}
        for rt in self._candidates:
            self._forward(image, rt)
        for _ in range(3):
            for rt in self._candidates:
                t0 = time.perf_counter()
                self._forward(image, rt)
                if rt.device.type == "cuda":
                    torch.cuda.synchronize(rt.device)
                best[rt] = min(best.get(rt, float("inf")), time.perf_counter() - t0)
        return min(self._candidates, key=best.__getitem__)

    def _run(self, seq: int, frame: np.ndarray) -> LiveResult:
        with self._run_lock, threads_here(self.threads):
            t0 = time.perf_counter()
            image = frame_to_input(frame, self.preprocess)
            if self._runtime is None:  # "auto": once, on the first frame (not counted in ms)
                t1 = time.perf_counter()
                self._runtime = self._choose_runtime(image)
                t0 += time.perf_counter() - t1
            rt, layer = self._runtime, self.layer
            x = to_input(image, self.normalization, rt.device, rt.memory_format)
            with torch.no_grad(), capture(self._view, layer) as acts:
                with rt.autocast():
                    logits = self._view(x)
                probs = torch.softmax(logits.float()[0], 0)
                p, idx = torch.topk(probs, min(self.top_k, probs.numel()))
                out = acts.get(layer)
                if not isinstance(out, torch.Tensor):
                    raise RuntimeError(f"layer {layer!r} gave no tensor in the forward pass")
                out = out[0].float()
                shape = tuple(out.shape)
                if out.ndim == 1:
                    out = out[:, None, None]
                elif out.ndim != 3:
                    raise ValueError(f"layer {layer!r} outputs shape {shape}: expected (C, h, w) or (D,)")
                score = out.mean(dim=(1, 2))
                order = torch.sort(score, descending=True, stable=True).indices[:self.max_maps]
                maps = out[order].contiguous().cpu().numpy()
            top = [(self.classes[i] if i < len(self.classes) else str(i), float(v))
                   for v, i in zip(p.tolist(), idx.tolist())]
            ms = (time.perf_counter() - t0) * 1000
        with self._cond:
            now = time.monotonic()
            if not self._done_at or now - self._done_at[-1] > self.fps_window:
                self._stream_start = now - ms / 1000  # the first frame after a pause
            self._processed += 1
            self._last_ms = ms
            self._done_at.append(now)
            result = LiveResult(top=top, layer=layer, layer_shape=shape, channels=order.cpu().numpy(),
                                maps=maps, image=image, ms=ms, frame=seq, runtime=rt.describe(),
                                stats=self._stats(now))
            if self._latest is None or seq >= self._latest.frame:
                self._latest = result
        return result

    # -- results out ------------------------------------------------------------------------

    def _fps(self, now: float) -> float:
        """Frames finished in the last ``fps_window`` seconds per second, over the window (or
        over the time since the stream (re)started, when that is shorter)."""
        recent = sum(1 for t in self._done_at if now - t <= self.fps_window)
        span = min(self.fps_window, now - self._stream_start)
        return recent / span if recent and span >= 0.25 else 0.0

    def _stats(self, now: float) -> LiveStats:
        return LiveStats(self._received, self._processed, self._dropped, self._errors,
                         self._fps(now), self._last_ms, self._last_error)

    def latest(self) -> LiveResult | None:
        """The newest result (None before the first frame is through)."""
        with self._cond:
            return self._latest

    def stats(self) -> LiveStats:
        """The counts now, with the frame rate over the last ``fps_window`` seconds."""
        with self._cond:
            return self._stats(time.monotonic())

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no frame waits and none is being processed; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending is None and not self._busy, timeout)

    def close(self, timeout: float | None = 5.0) -> None:
        """Stop the background thread; a frame still waiting counts as dropped. Later frames
        are refused. Safe to call twice."""
        with self._cond:
            self._closed = True
            if self._pending is not None:
                self._pending = None
                self._dropped += 1
            worker = self._worker
            self._cond.notify_all()
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout)

    @property
    def closed(self) -> bool:
        with self._cond:
            return self._closed

    def __enter__(self) -> "LiveClassifier":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

"""Where and how tensors run: device choice, mixed precision and memory format."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Literal, Union

import torch

from .distributed import local_device

Precision = Literal["auto", "bf16", "fp32"]
Progress = Union[bool, Callable[[int, int], None]]
"""``True`` for a tqdm bar, or a callback ``(done, total)`` (e.g. the dashboard's bar)."""


def progress_reporter(progress: Progress, total: int, desc: str
                      ) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """``(update(done, total), close())`` for a :data:`Progress` argument."""
    if progress is True:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=desc, unit="img")
        return (lambda done, _total: bar.update(done - bar.n)), bar.close
    if callable(progress):
        return progress, (lambda: None)
    return (lambda done, _total: None), (lambda: None)


def pick_device(name: str | None = "auto") -> torch.device:
    """``"auto"``/``None``: CUDA when present, else CPU; anything else is taken as given. Under
    ``torchrun`` (an initialised process group) CUDA without an index is this rank's GPU."""
    if name in (None, "auto"):
        return local_device(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} asked for but CUDA is not available: use --device cpu")
    return local_device(dev)


def cpu_has_fast_bf16() -> bool:
    """True when the CPU has native bf16 matrix units (AVX-512 BF16 or AMX)."""
    cpu = getattr(torch, "cpu", None)
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(bool(getattr(cpu, c, lambda: False)()) for c in checks)


@dataclass(frozen=True)
class Runtime:
    """A resolved device + precision + memory format, used for training and inference alike."""

    device: torch.device
    dtype: torch.dtype | None  # autocast dtype, or None for plain fp32
    channels_last: bool

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def describe(self) -> str:
        prec = "fp32" if self.dtype is None else str(self.dtype).replace("torch.", "")
        return f"{self.device} {prec}{' channels_last' if self.channels_last else ''}"


def resolve_runtime(device: str | None = "auto", precision: Precision = "auto",
                    channels_last: bool | None = None) -> Runtime:
    """Choose precision by what the hardware runs fast: bf16 autocast + channels_last on CUDA
    with bf16 support or on CPUs with AVX-512 BF16/AMX (measured 2-3x faster than fp32 there,
    see benchmarks/train_speed.py), else fp32."""
    dev = pick_device(device)
    if precision == "auto":
        fast = torch.cuda.is_bf16_supported() if dev.type == "cuda" else cpu_has_fast_bf16()
        precision = "bf16" if fast else "fp32"
    dtype = torch.bfloat16 if precision == "bf16" else None
    if channels_last is None:
        channels_last = dtype is not None or dev.type == "cuda"
    return Runtime(dev, dtype, channels_last)


def keep_cpu_memory_mapped() -> bool:
    """Ask glibc to keep freed memory instead of returning it to the OS (Linux only).

    Training allocates activation buffers of 30-130 MB every step; glibc serves those with
    fresh ``mmap`` calls and unmaps them on free, so every step page-faults and zeroes them
    again (about a fifth of the CPU time, as system time). Keeping them cached in the heap
    removes that. Returns True when the setting took effect.
    """
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_max = -1, -4
        return bool(libc.mallopt(m_mmap_max, 0)) and bool(libc.mallopt(m_trim_threshold, 1 << 40))
    except (OSError, AttributeError):  # not glibc
        return False


def tune_cpu_process() -> bool:
    """Process-wide settings for fast CPU work, applied by training and every inference pass:
    :func:`keep_cpu_memory_mapped`, and denormal floats flushed to zero (``FTZ``/``DAZ``).

    Activations far below zero make GELU's ``erf`` produce denormal intermediates, which x86
    cores compute many times slower: on the shipped CIFAR-10 model, GELU took 26-29 ms on a
    batch of real activations against 4-7 ms on random numbers of the same shape (one thread),
    and 5-8 ms on the real ones once flushed. Flushing turns magnitudes below ~1e-38 into zero
    and nothing else. Returns True when both settings took effect."""
    return keep_cpu_memory_mapped() & bool(torch.set_flush_denormal(True))


def set_threads(threads: int | None = None) -> int:
    """Use ``threads`` intra-op threads (default: all cores this process may use)."""
    if threads is None:
        threads = cpu_threads()
    torch.set_num_threads(max(1, threads))
    return torch.get_num_threads()


def cpu_threads() -> int:
    """The cores this process may use (its CPU affinity), the default of :func:`set_threads`."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@functools.cache
def _omp() -> ctypes.CDLL | None:
    """The OpenMP runtime torch ships with (``torch/lib/libgomp.so.1`` and the like), else
    None. Its per-thread setting is what torch's CPU kernels follow."""
    base = Path(torch.__file__).resolve().parent
    for folder in (base / "lib", base.parent / "torch.libs"):
        for pattern in ("libgomp*.so*", "libiomp5*", "libomp*.so*", "libomp*.dylib"):
            for path in sorted(folder.glob(pattern)):
                try:
                    lib = ctypes.CDLL(str(path))
                    lib.omp_set_num_threads, lib.omp_get_max_threads  # noqa: B018
                except (OSError, AttributeError):
                    continue
                return lib
    return None


@contextlib.contextmanager
def threads_here(n: int | None) -> Iterator[None]:
    """Run torch's CPU kernels on ``n`` threads for code inside the block, on the calling
    thread only (``None``: leave it as it is).

    ``torch.set_num_threads`` would also change the default of every thread started later in
    the process (a dashboard's other sessions); OpenMP's own setting is per thread, so it is
    set and restored here. Without a usable OpenMP runtime nothing changes."""
    lib = _omp() if n is not None else None
    if lib is None:
        yield
        return
    torch.get_num_threads()  # torch sets up this thread's OpenMP first, so it cannot undo ours
    prev = int(lib.omp_get_max_threads())
    lib.omp_set_num_threads(int(n))
    try:
        yield
    finally:
        lib.omp_set_num_threads(prev)


def device_of(model: torch.nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (CPU for a model with neither)."""
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def runtime_for(model: torch.nn.Module, precision: Precision = "auto") -> Runtime:
    """The runtime for inference on ``model`` where it is: its own device, ``precision`` as
    :func:`resolve_runtime` chooses it there. The model is never moved."""
    return resolve_runtime(str(device_of(model)), precision)


def check_runtime(model: torch.nn.Module, runtime: Runtime | None) -> Runtime:
    """``runtime`` (default :func:`runtime_for`), refused when it names another device than the
    model's: inference never moves a model that other callers may share."""
    if runtime is None:
        return runtime_for(model)
    dev = device_of(model)
    if runtime.device.type != dev.type or (runtime.device.index or 0) != (dev.index or 0):
        raise ValueError(f"the model is on {dev} but the runtime asks for {runtime.device}: load the "
                         f"checkpoint on that device (load_checkpoint(..., runtime=...)) instead")
    return runtime


def fix_for_inference(model: torch.nn.Module, runtime: Runtime) -> torch.nn.Module:
    """Put a freshly built or loaded model, once, into the form every view can share: on
    ``runtime``'s device and memory format, eval mode, no parameter gradients, no in-place
    activations. Call it before the model is shared; afterwards nothing changes it."""
    model.to(runtime.device, memory_format=runtime.memory_format)
    model.eval()
    model.requires_grad_(False)
    for m in model.modules():
        if getattr(m, "inplace", None) is True:
            m.inplace = False
    return model

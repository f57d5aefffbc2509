"""Where and how tensors run: device choice, mixed precision and memory format."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Callable, Iterator, Literal, Union

import torch

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
    """``"auto"``/``None``: CUDA when present, else CPU; anything else is taken as given."""
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} asked for but CUDA is not available: use --device cpu")
    return dev


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
    import ctypes
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
        threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    torch.set_num_threads(max(1, threads))
    return torch.get_num_threads()


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Put ``model`` in eval mode for the block and restore every submodule's mode after
    (a frozen BatchNorm inside a training model stays frozen)."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in modes:
            m.training = training

"""Timing and peak memory of a callable: medians of repeated runs, and the resident
high-water mark (Linux VmHWM, reset through /proc/self/clear_refs) or torch.cuda's peak
allocator statistics on a GPU."""

from __future__ import annotations

import ctypes
import functools
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch


def _status_mib(key: str) -> float:
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"{key}:\s+(\d+)", text).group(1)) / 1024


def measure(fn: Callable[[], object], repeats: int, device: torch.device) -> tuple[float, float]:
    """(median seconds, peak MiB above the level before the call) of ``fn``."""
    fn()  # warm-up: allocator pools, lazy init
    times = [_seconds(fn, device) for _ in range(repeats)]
    return statistics.median(times), _peak_mib(fn, device)


def _seconds(fn: Callable[[], object], device: torch.device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t0


def _peak_mib(fn: Callable[[], object], device: torch.device) -> float:
    """Peak MiB that one call of ``fn`` allocates above the level before it (on the CPU,
    exact for tensors only after :func:`_return_freed_memory`)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        Path("/proc/self/clear_refs").write_text("5")
        base = _status_mib("VmRSS")
        fn()
        peak = _status_mib("VmHWM") - base
    return max(peak, 0.0)


_M_MMAP_THRESHOLD = -3  # glibc mallopt parameter


@functools.cache
def _return_freed_memory() -> None:
    """Pin glibc's mmap threshold at 128 KiB, so that every tensor of that size or more gets
    its own mapping, returned to the system when freed.

    By default glibc raises the threshold (up to 32 MiB) each time a mapped block is freed;
    after that, tensors are carved from the heap, their pages stay resident when freed, and
    the next measurement reuses them without raising VmHWM (peaks of 0 MiB, or peaks that
    depend on what ran before). Process-wide: call it before any timing that is compared.
    """
    try:
        ctypes.CDLL(None).mallopt(_M_MMAP_THRESHOLD, 128 * 1024)
    except (OSError, AttributeError):  # not glibc: the resident-set mark is approximate
        pass


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()

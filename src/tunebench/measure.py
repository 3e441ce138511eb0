"""Peak memory of one run: RSS sampled on CPU, max allocated on CUDA."""

from __future__ import annotations

import ctypes
import gc
import os
import platform
import random
import resource
import threading
import time
from contextlib import contextmanager

import numpy as np
import peft
import sklearn
import torch
import transformers

from ._version import __version__


def rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux: lifetime peak is the best we have
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _release_freed_memory() -> None:
    """Give freed heap back to the OS so one run's peak does not inherit the previous run's."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def steady_heap(training: bool) -> None:
    """glibc's mmap threshold: 2 MB while training, 32 MB otherwise. glibc raises the threshold
    dynamically after large blocks are freed, so the activations of variable-length training batches
    come from the heap, which fragments and only grows: RSS ratchets up step after step. With 2 MB,
    a training tensor above it is mmapped and returned to the OS when freed (measured on this
    project's CPU: a full fine-tuning epoch peaked ~130 MB lower, LoRA ~190 MB, at no cost in speed).
    Forward-only passes in batches of 128 (extraction, evaluation) allocate large blocks whose page
    faults would then cost 60% more time, so they run at 32 MB (glibc's own ceiling). No-op off glibc."""
    try:
        ctypes.CDLL("libc.so.6").mallopt(-3, (2 if training else 32) * 2**20)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


@contextmanager
def training_heap():
    """`steady_heap(training=True)` for the duration, then back to 32 MB."""
    steady_heap(training=True)
    try:
        yield
    finally:
        steady_heap(training=False)


class PeakMemory:
    """`with PeakMemory() as m: ...` then `m.peak_mb` (process RSS, or CUDA max allocated)."""

    def __init__(self, device: torch.device | None = None, interval: float = 0.05):
        self.cuda = device is not None and device.type == "cuda"
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()

    def __enter__(self) -> PeakMemory:
        _release_freed_memory()
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
            return self
        self.peak = rss_bytes()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(self.interval)

    def __exit__(self, *exc) -> None:
        if self.cuda:
            self.peak = torch.cuda.max_memory_allocated()
            return
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())

    @property
    def peak_mb(self) -> float:
        return self.peak / 2**20


# Dense bf16 tensor-core peaks (TFLOP/s) from the vendors' data sheets (SXM parts; sparsity not counted),
# matched against torch.cuda.get_device_name: the denominator of MFU.
PEAK_BF16_TFLOPS = {
    "H200": 989.0,
    "H100 PCIe": 756.0,
    "H100": 989.0,
    "A100": 312.0,
    "L40S": 362.0,
    "L4": 121.0,
    "A10G": 70.0,
    "A10": 125.0,
    "RTX 4090": 165.0,
}


def peak_tflops(device: torch.device) -> float | None:
    """The device's dense bf16 peak, or None when unknown (CPUs, unlisted GPUs)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def matmul_params(model: torch.nn.Module) -> int:
    """Weights of the linear layers: what a token multiplies through (embedding lookups are not FLOPs)."""
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))


def training_mfu(model: torch.nn.Module, tokens_per_second: float, device: torch.device) -> float | None:
    """Model FLOPs utilisation of training every weight: 6 x linear weights x tokens/s over the peak
    (PaLM's definition without the attention term, so a slight underestimate)."""
    peak = peak_tflops(device)
    if peak is None or tokens_per_second <= 0:
        return None
    return 6 * matmul_params(model) * tokens_per_second / (peak * 1e12)


def extraction_rate(seconds: float, tokens: int, model: torch.nn.Module, device: torch.device) -> dict:
    """Frozen forward passes: tokens/s, and MFU (2 x linear weights x tokens/s over the peak) on a GPU."""
    if seconds <= 0 or tokens <= 0:
        return {}
    rate = tokens / seconds
    peak = peak_tflops(device)
    extra = {"extraction_mfu": round(2 * matmul_params(model) * rate / (peak * 1e12), 4)} if peak else {}
    return {"extraction_tokens_per_second": round(rate, 1), **extra}


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def library_versions() -> dict[str, str]:
    return {
        "tunebench": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "scikit-learn": sklearn.__version__,
    }

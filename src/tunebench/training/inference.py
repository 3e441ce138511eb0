"""What a trained model costs to use: latency per example at batch size 1 and throughput at batch size
32, through the same path `tunebench predict` takes (`predict_logits`: dynamic padding, autocast), on
the run's device, on the first dev rows, each the fastest of 3 timings. About a second per run on the
CPU for MiniLM; not part of the run key."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

import torch
from torch import nn

from .config import TrainConfig
from .loop import predict_logits

LATENCY_ROWS = 32  # rows timed one at a time
THROUGHPUT_ROWS = 128  # rows timed in batches of 32
REPEATS = 3  # each timing is the fastest of this many


def inference_cost(
    model: nn.Module,
    batches_of: Callable[[int], object],
    cfg: TrainConfig,
    device: torch.device,
    evaluating: Callable[[nn.Module], AbstractContextManager] = lambda model: nullcontext(),
) -> dict:
    """{"latency_ms": per example at batch 1, "examples_per_second": at batch 32}; `batches_of(n)` gives
    the batches object of the first n dev rows."""
    model.to(device)
    one, many = batches_of(LATENCY_ROWS), batches_of(THROUGHPUT_ROWS)
    with evaluating(model), torch.no_grad():
        predict_logits(model, batches_of(2), cfg.replace(eval_batch_size=1), device)  # warm-up
        latency = _best_of(
            REPEATS, lambda: predict_logits(model, one, cfg.replace(eval_batch_size=1), device)
        )
        batched = _best_of(
            REPEATS, lambda: predict_logits(model, many, cfg.replace(eval_batch_size=32), device)
        )
    return {
        "latency_ms": round(1000 * latency / max(len(one), 1), 2),
        "examples_per_second": round(len(many) / batched, 1),
    }


def _best_of(n: int, work: Callable[[], object]) -> float:
    """The fastest of `n` timings (timeit's rule: slower ones measured interference, not the code)."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        work()
        times.append(time.perf_counter() - t0)
    return min(times)

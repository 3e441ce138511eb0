"""What a trained model costs to use: latency per example at batch size 1 and throughput at batch size
32, through the same path `tunebench predict` takes (`predict_logits`: dynamic padding, autocast), on
the run's device, on the first dev rows, each the fastest of 3 timings. About 1.7 s per run on a
2-core CPU for MiniLM; not part of the run key. Predictors of the same architecture cost the same (head-only, last-k, full,
BitFit and LoRA, merged, all predict with MiniLM + one linear layer), so a compare measures each
architecture once (`memo`) and its later runs report that measurement."""

from __future__ import annotations

import hashlib
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
    memo: dict | None = None,
) -> dict:
    """{"latency_ms": per example at batch 1, "examples_per_second": at batch 32}; `batches_of(n)` gives
    the batches object of the first n dev rows. With `memo` (one dict per compare and dev split), a
    model whose `architecture` in its `evaluating` context was measured before on this device and
    precision is not timed again."""
    model.to(device)
    with evaluating(model), torch.no_grad():  # LoRA: the merged network its export predicts with
        key = (architecture(model), str(device), cfg.precision) if memo is not None else None
        if key in (memo or {}):
            return dict(memo[key])
        one, many = batches_of(LATENCY_ROWS), batches_of(THROUGHPUT_ROWS)
        predict_logits(model, batches_of(2), cfg.replace(eval_batch_size=1), device)  # warm-up
        latency = _best_of(
            REPEATS, lambda: predict_logits(model, one, cfg.replace(eval_batch_size=1), device)
        )
        batched = _best_of(
            REPEATS, lambda: predict_logits(model, many, cfg.replace(eval_batch_size=32), device)
        )
    cost = {
        "latency_ms": round(1000 * latency / max(len(one), 1), 2),
        "examples_per_second": round(len(many) / batched, 1),
    }
    if key is not None:
        memo[key] = dict(cost)
    return cost


def architecture(model: nn.Module) -> str:
    """A digest of what a forward pass in eval mode costs: every module's class and settings (its
    `extra_repr`: sizes, eps; a head's pooling; the attention implementation) and every parameter's and
    buffer's name, shape and dtype. Dropout is left out (nothing in eval mode). Two models with the same
    digest differ only in weight values."""
    h = hashlib.sha256()
    for name, m in model.named_modules():
        if isinstance(m, nn.modules.dropout._DropoutNd):
            continue
        config = getattr(m, "config", None)
        extra = (getattr(m, "pooling", None), getattr(config, "_attn_implementation", None))
        h.update(f"{name}|{type(m).__qualname__}|{m.extra_repr()}|{extra}".encode())
    for name, t in [*model.named_parameters(), *model.named_buffers()]:
        h.update(f"{name}|{tuple(t.shape)}|{t.dtype}".encode())
    return h.hexdigest()


def _best_of(n: int, work: Callable[[], object]) -> float:
    """The fastest of `n` timings (timeit's rule: slower ones measured interference, not the code)."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        work()
        times.append(time.perf_counter() - t0)
    return min(times)

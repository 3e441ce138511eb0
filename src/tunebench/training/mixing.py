"""Batches of several tasks for one shared model (the `multitask` strategy): each batch holds one task's
rows, built by that task's own batches object (its padding, its labels), with the task's index under
"task"; which task comes next is drawn by a seeded sampler.

Sampling (as in MT-DNN, Liu et al. 2019, and T5's examples-proportional and temperature mixing):
  proportional  every task's epoch of batches, shuffled together: each task in proportion to its size;
  temperature   as many batches as that, each drawn from task t with probability n_t^(1/T) / sum
                (T = 1 is proportional in expectation, larger T evens the tasks out); a task whose
                batches run out starts a new pass over them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch

from .loop import predict_logits

SAMPLING = ("proportional", "temperature")


class MixedBatches:
    """`parts`: one training batches object per task (`train_batches(batch_size, seed)`, `len`)."""

    def __init__(self, parts: list, sampling: str = "proportional", temperature: float = 2.0):
        if sampling not in SAMPLING:
            raise ValueError(sampling)
        self.parts, self.sampling, self.temperature = parts, sampling, temperature

    def __len__(self) -> int:
        return sum(len(p) for p in self.parts)

    def batches_per_epoch(self, batch_size: int) -> int:
        """Each task's batches of an epoch summed (what the training loop's schedule counts)."""
        return sum(math.ceil(len(p) / batch_size) for p in self.parts)

    def shares(self) -> np.ndarray:
        """Probability of drawing each task for a batch."""
        sizes = np.asarray([len(p) for p in self.parts], dtype=np.float64)
        weights = sizes if self.sampling == "proportional" else sizes ** (1.0 / self.temperature)
        return weights / weights.sum()

    def train_batches(self, batch_size: int, seed: int, rows=None) -> Iterator[dict[str, torch.Tensor]]:
        rng = np.random.default_rng(seed)
        streams = [_cycle(p, batch_size, seed * 100 + i) for i, p in enumerate(self.parts)]
        n = self.batches_per_epoch(batch_size)
        if self.sampling == "proportional":
            counts = [math.ceil(len(p) / batch_size) for p in self.parts]
            order = rng.permutation(np.repeat(np.arange(len(self.parts)), counts))
        else:
            order = rng.choice(len(self.parts), size=n, p=self.shares())
        for i in order:
            batch = next(streams[i])
            batch["task"] = torch.tensor(int(i))
            yield batch


def _cycle(part, batch_size: int, seed: int) -> Iterator[dict]:
    """A task's training batches, pass after pass (each pass reshuffled)."""
    passes = 0
    while True:
        empty = True
        for batch in part.train_batches(batch_size, seed * 1000 + passes):
            empty = False
            yield batch
        if empty:
            return
        passes += 1


class MixedDev:
    """Several tasks' dev (or test) batches: `predict` gives one output set per task, each from the
    model's view of that task (`MultiTaskModel.view`); the training loop evaluates through it."""

    def __init__(self, parts: list):
        self.parts = parts

    def predict(self, model, cfg, device) -> list:
        return [predict_logits(model.view(i), part, cfg, device) for i, part in enumerate(self.parts)]

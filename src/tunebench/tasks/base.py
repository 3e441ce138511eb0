"""What a task provides to the one training loop and to the strategies."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ..registry import Registry


class Task:
    """A task turns encoder outputs into predictions and scores them.

    The training loop only calls `loss` and `metrics`; strategies only call `build_head`.
    """

    name: ClassVar[str]
    primary_metric: ClassVar[str]  # selection metric on dev; higher is better
    summary: ClassVar[str] = ""

    def build_head(self, hidden_size: int, num_labels: int, pooling: str, dropout: float) -> nn.Module:
        raise NotImplementedError

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def metrics(self, logits: np.ndarray, labels: np.ndarray, label_names: list[str]) -> dict[str, Any]:
        raise NotImplementedError

    def encode(self, tokenizer, split, max_length: int) -> list[dict[str, list[int]]]:
        """Tokenize a split once; collate pads per batch."""
        raise NotImplementedError


TASKS: Registry[type[Task]] = Registry("task")

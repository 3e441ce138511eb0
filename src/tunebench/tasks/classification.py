"""Text (and text-pair) classification: pooled encoder output -> dropout -> linear."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.metrics import f1_score
from torch import nn

from .base import TASKS, Task


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, how: str) -> torch.Tensor:
    """(B, T, H), (B, T) -> (B, H). Mean ignores padding; cls takes the first token."""
    if how == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


class ClassificationHead(nn.Module):
    def __init__(self, hidden_size: int, num_labels: int, pooling: str, dropout: float):
        super().__init__()
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_size, num_labels)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.from_pooled(pool(hidden, attention_mask, self.pooling))

    def from_pooled(self, pooled: torch.Tensor) -> torch.Tensor:
        """Entry point for cached frozen features: (B, H) -> (B, C)."""
        return self.out(self.dropout(pooled))


@TASKS.register("text-classification")
class TextClassification(Task):
    primary_metric = "accuracy"
    summary = "label for a text (or a text pair): sentiment, topic, intent, NLI"

    def build_head(self, hidden_size: int, num_labels: int, pooling: str, dropout: float) -> nn.Module:
        return ClassificationHead(hidden_size, num_labels, pooling, dropout)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(logits.float(), labels)

    def metrics(self, logits: np.ndarray, labels: np.ndarray, label_names: list[str]) -> dict[str, Any]:
        preds = logits.argmax(-1)
        ids = list(range(len(label_names)))
        per_class = f1_score(labels, preds, labels=ids, average=None, zero_division=0)
        return {
            "accuracy": float((preds == labels).mean()),
            "macro_f1": float(per_class.mean()),
            "per_class_f1": {name: float(f) for name, f in zip(label_names, per_class)},
        }

    def encode(self, tokenizer, split, max_length: int) -> list[dict[str, list[int]]]:
        pairs = split.text_pairs
        enc = tokenizer(
            list(split.texts),
            list(pairs) if pairs is not None else None,
            truncation=True,
            max_length=max_length,
            padding=False,
            return_attention_mask=False,
        )
        rows = [{"input_ids": ids} for ids in enc["input_ids"]]
        if "token_type_ids" in enc:
            for row, tt in zip(rows, enc["token_type_ids"]):
                row["token_type_ids"] = tt
        return rows

"""Text (pair) regression: a number per text or text pair, e.g. STS-B similarity 0-5.

The cross-encoder ladder reads both texts in one sequence (pooled -> dropout -> linear, one output,
mean squared error). The bi-encoder strategies (`cosine`, `bi-encoder`) embed each text on its own.
Metrics are Pearson and Spearman correlation ×100, as GLUE and the STS papers report them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ...data import load_text_regression
from ..base import TASKS, Encoded, Task, pool_groups
from ..text_classification.task import ClassificationHead, TextPairs, _tokenizer, tokenize


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    x, y = x - x.mean(), y - y.mean()
    denom = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / denom) if denom > 0 else 0.0


def ranks(x: np.ndarray) -> np.ndarray:
    """Ranks starting at 1, ties sharing their mean rank (what Spearman's rho needs)."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    r = np.empty(len(x), dtype=np.float64)
    r[order] = np.arange(1, len(x) + 1)
    uniq, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    if len(uniq) < len(x):  # average the ranks within each tie group
        sums = np.bincount(inverse, weights=r)
        r = (sums / counts)[inverse]
    return r


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    return pearson(ranks(x), ranks(y))


@TASKS.register("text-regression")
class TextRegression(TextPairs, Task):
    primary_metric = "spearman"
    metric_scale = 100.0
    layer_probe = "sentence"
    summary = "a number for a text or text pair: semantic similarity (STS-B), ratings"
    auto_class = "AutoModelForSequenceClassification"
    pipeline_tag = "text-classification"
    regression = True
    feature_columns = True

    def load(self, cfg):
        return load_text_regression(cfg)

    def num_outputs(self, bundle) -> int:
        return 1

    def build_head(self, hidden_size: int, num_labels: int, pooling: str, dropout: float) -> nn.Module:
        return ClassificationHead(hidden_size, 1, pooling, dropout)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return nn.functional.mse_loss(logits.float().reshape(-1), labels.float())

    def metrics(self, logits: np.ndarray, labels: np.ndarray, label_names: list[str]) -> dict[str, Any]:
        pred = np.asarray(logits, dtype=np.float64).reshape(-1)
        gold = np.asarray(labels, dtype=np.float64)
        return {
            "spearman": 100 * spearman(pred, gold),
            "pearson": 100 * pearson(pred, gold),
            "mse": float(np.mean((pred - gold) ** 2)),
        }

    def predictions(self, outputs, enc, split, label_names: list[str]) -> list[dict]:
        scores = pool_groups(np.asarray(outputs), None if enc is None else enc.groups).reshape(-1)
        return [{"score": f"{x:.6f}"} for x in scores]

    def encode(self, backbone, split, max_length: int, long_text: str = "truncate") -> Encoded:
        enc = tokenize(_tokenizer(backbone), split.texts, split.text_pairs, max_length, long_text)
        labels = getattr(split, "labels", None)
        if labels is not None:
            labels = np.asarray(labels, dtype=np.float32)
            enc.targets = labels if enc.groups is None else labels[enc.groups]
        return enc

"""Text (and text-pair) classification: pooled encoder output -> dropout -> linear.

Long texts are truncated at the model's maximum length (default) or, with `long_text="chunk"`, cut
into overlapping windows: every window trains with its text's label, and a text's prediction is the
mean of its windows' logits (`Task.score` pools rows by `Encoded.groups`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.metrics import f1_score
from torch import nn

from ...backbones import pool
from ...data import load_text_classification
from ...errors import TunebenchError
from ..base import TASKS, Encoded, Task

CHUNK_STRIDE = 0.25  # share of a window repeated in the next one, so no sentence is only seen cut in half


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


def tokenize(tokenizer, texts, pairs, max_length: int, long_text: str = "truncate") -> Encoded:
    """Token rows for texts (and their pairs); `groups` maps chunk rows to texts when chunking."""
    texts, pairs = list(texts), None if pairs is None else list(pairs)
    kwargs = dict(truncation=True, max_length=max_length, padding=False, return_attention_mask=False)
    groups = None
    if long_text == "chunk":
        # Windows over the first text (for pairs the second text is repeated in every window).
        kwargs.update(
            truncation="only_first" if pairs is not None else True,
            stride=max(1, int(CHUNK_STRIDE * max_length)),
            return_overflowing_tokens=True,
        )
    elif long_text != "truncate":
        raise ValueError(f"long_text {long_text!r}")
    enc = tokenizer(texts, pairs, **kwargs)
    if long_text == "chunk":
        groups = np.asarray(enc["overflow_to_sample_mapping"], dtype=np.int64)
    rows = [{"input_ids": ids} for ids in enc["input_ids"]]
    if "token_type_ids" in enc:
        for row, tt in zip(rows, enc["token_type_ids"]):
            row["token_type_ids"] = tt
    return Encoded(rows, groups=groups)


def has_pairs(bundle) -> bool:
    return bundle is not None and getattr(bundle.train, "text_pairs", None) is not None


def pair_embeddings(source, split, pooling: str, layers: str) -> tuple[np.ndarray, np.ndarray]:
    """(u, v): frozen pooled embeddings of the first and the second texts of `split`, each (N, H)."""
    if getattr(split, "text_pairs", None) is None:
        raise TunebenchError("the bi-encoder strategies need text pairs; set --text-pair-col")
    tok, n = source.backbone.tokenizer, source.max_length
    u = source.pooled(tokenize(tok, split.texts, None, n).rows, pooling, layers)
    v = source.pooled(tokenize(tok, split.text_pairs, None, n).rows, pooling, layers)
    return u, v


def _tokenizer(backbone_or_tokenizer):
    return getattr(backbone_or_tokenizer, "tokenizer", backbone_or_tokenizer)


class TextPairs:
    """Text tasks whose data may hold pairs: they offer "text-pairs" then, and the two texts' embeddings."""

    def capabilities_of(self, bundle=None) -> frozenset[str]:
        return super().capabilities_of(bundle) | ({"text-pairs"} if has_pairs(bundle) else set())

    def frozen_pairs(self, source, split, pooling: str, layers: str) -> tuple[np.ndarray, np.ndarray]:
        return pair_embeddings(source, split, pooling, layers)


@TASKS.register("text-classification")
class TextClassification(TextPairs, Task):
    primary_metric = "accuracy"
    layer_probe = "sentence"
    summary = "label for a text (or a text pair): sentiment, topic, intent, NLI"
    auto_class = "AutoModelForSequenceClassification"
    pipeline_tag = "text-classification"
    classes = "example"
    feature_columns = True

    def load(self, cfg):
        return load_text_classification(cfg)

    def build_head(self, hidden_size: int, num_labels: int, pooling: str, dropout: float) -> nn.Module:
        return ClassificationHead(hidden_size, num_labels, pooling, dropout)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor, **options) -> torch.Tensor:
        return nn.functional.cross_entropy(logits.float(), labels, **options)

    def metrics(self, logits: np.ndarray, labels: np.ndarray, label_names: list[str]) -> dict[str, Any]:
        preds = logits.argmax(-1)
        ids = list(range(len(label_names)))
        per_class = f1_score(labels, preds, labels=ids, average=None, zero_division=0)
        never = sorted(set(np.asarray(labels).tolist()) - set(np.asarray(preds).tolist()))
        return {
            "accuracy": float((preds == labels).mean()),
            "macro_f1": float(per_class.mean()),
            "per_class_f1": {name: float(f) for name, f in zip(label_names, per_class)},
            "never_predicted": [label_names[i] for i in never],  # classes present but never chosen
        }

    def encode(self, backbone, split, max_length: int, long_text: str = "truncate") -> Encoded:
        enc = tokenize(_tokenizer(backbone), split.texts, split.text_pairs, max_length, long_text)
        labels = getattr(split, "labels", None)
        if labels is not None:
            labels = np.asarray(labels)
            enc.targets = labels if enc.groups is None else labels[enc.groups]
        return enc

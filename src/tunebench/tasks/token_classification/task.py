"""Token classification (NER): a tag per word, scored by entity-level F1 (conlleval / seqeval rules).

Words are split into sub-tokens; as in the BERT paper, a word's label sits on its first sub-token and
the other sub-tokens are ignored by the loss. Words cut off by the maximum length are predicted `O`,
so truncation costs recall instead of silently shrinking the test set.

Frozen features (the `features` strategy, BERT paper Table 7): one forward pass stores every layer's
hidden state at each word's first sub-token (cached on disk); by default a BiLSTM on a learned
weighted sum of all layers (strategies/tagger.py), or with `--opt features.classifier=logreg` a layer
combination of those vectors into the same logistic regression as for sentences.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ...data.conll import read_token_file
from ...data.token_bundle import TokenSplit, load_token_data
from ...errors import TunebenchError
from ...estimators import LinearProbe
from ...extract import layer_stack, select_layers
from ...training.batching import IGNORE
from ..base import TASKS, Encoded, Task
from .metrics import entity_scores
from .tagger import TaggerEstimator, WordSequences


class TokenHead(nn.Module):
    """Per-token dropout -> linear: (B, T, H) -> (B, T, C)."""

    def __init__(self, hidden_size: int, num_labels: int, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_size, num_labels)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.out(self.dropout(hidden))

    def from_pooled(self, features: torch.Tensor) -> torch.Tensor:
        """Head-only on cached word features: (N, H) -> (N, C), one row per word."""
        return self.out(self.dropout(features))


@TASKS.register("token-classification")
class TokenClassification(Task):
    primary_metric = "f1"
    layer_probe = "word"
    summary = "a tag per word: named entities (CoNLL IOB1/IOB2), entity-level F1"
    auto_class = "AutoModelForTokenClassification"
    pipeline_tag = "token-classification"
    classes = "token"
    token_level = True
    # CoNLL-2003, 2,000 training sentences: 3 epochs stop with dev F1 still rising (full 0.648 test
    # F1); 10 reach the plateau (full 0.804, lora 0.805; scripts/gpu-schedules.sh).
    schedule = {"*": {"epochs": 10, "patience": 3}}
    # Frozen features as in the BERT paper's best feature-based row: a BiLSTM on a learned weighted
    # sum of the layers (0.788 test F1 vs 0.562 for a linear layer on the last layer; scripts/table7.py)
    strategy_options = {"features": {"classifier": "bilstm", "layers": "weighted-all"}}

    def load(self, cfg):
        return load_token_data(cfg)

    def build_head(self, hidden_size: int, num_labels: int, pooling: str, dropout: float) -> nn.Module:
        return TokenHead(hidden_size, num_labels, dropout)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor, **options) -> torch.Tensor:
        if logits.dim() == 3:  # (B, T, C) per sub-token; (N, C) per word when head-only reads the cache
            logits, labels = logits.flatten(0, 1), labels.flatten()
        return nn.functional.cross_entropy(logits.float(), labels, ignore_index=IGNORE, **options)

    def class_counts(self, split, num_classes: int) -> np.ndarray:
        """Words per tag."""
        return np.bincount([t for tags in split.labels for t in tags], minlength=num_classes)

    def encode(self, backbone, split, max_length: int, long_text: str = "truncate") -> Encoded:
        tok = getattr(backbone, "tokenizer", backbone)
        if not getattr(tok, "is_fast", False):
            raise TunebenchError(
                "token classification needs a fast tokenizer (word ids); pick a model that has one"
            )
        enc = tok(
            split.tokens,
            is_split_into_words=True,
            truncation=True,
            max_length=max_length,
            padding=False,
            return_attention_mask=False,
        )
        labels = split.labels
        rows, targets, first, words = [], [], [], []
        for i, ids in enumerate(enc["input_ids"]):
            word_ids = enc.word_ids(i)
            pos = [p for p, w in enumerate(word_ids) if w is not None and (p == 0 or word_ids[p - 1] != w)]
            row = {"input_ids": ids}
            if "token_type_ids" in enc:
                row["token_type_ids"] = enc["token_type_ids"][i]
            rows.append(row)
            first.append(np.asarray(pos, dtype=np.int64))
            words.append(np.asarray([word_ids[p] for p in pos], dtype=np.int64))
            if labels is not None:
                t = np.full(len(ids), IGNORE, dtype=np.int64)
                t[pos] = [labels[i][word_ids[p]] for p in pos]
                targets.append(t)
        return Encoded(rows, targets if labels is not None else None, meta={"first": first, "words": words})

    # -- evaluation: back from sub-token logits to one tag per word -----------------------------------
    def word_predictions(self, outputs, enc: Encoded, split, label_names: list[str]) -> list[list[str]]:
        """Outputs per row (T_i, C) (fine-tuned models) or per kept word, end to end (frozen features)
        -> a tag per word; words cut off by the max length get `O`."""
        first, words = enc.meta["first"], enc.meta["words"]
        if not isinstance(outputs, list):  # (N_kept_words, C): split back into sentences
            cuts = np.cumsum([len(f) for f in first])[:-1]
            per_word = np.split(np.asarray(outputs), cuts)
        else:
            per_word = [o[f] for o, f in zip(outputs, first)]
        preds = []
        for i, tokens in enumerate(split.tokens):
            tags = ["O"] * len(tokens)
            for w, logit in zip(words[i], per_word[i]):
                tags[w] = label_names[int(np.argmax(logit))]
            preds.append(tags)
        return preds

    def score(self, outputs, enc: Encoded, split, label_names: list[str]) -> dict[str, Any]:
        s = entity_scores(split.tags, self.word_predictions(outputs, enc, split, label_names))
        return {
            "f1": s["f1"],
            "precision": s["precision"],
            "recall": s["recall"],
            "token_accuracy": s["token_accuracy"],
            "per_class_f1": {t: v["f1"] for t, v in sorted(s["per_type"].items())},
        }

    def metrics(self, logits, labels, label_names):  # the per-row `score` is what NER uses
        raise NotImplementedError("token classification is scored by `score` (entity-level F1)")

    # -- frozen features: every layer at each word's first sub-token -----------------------------------
    def head_on_cached_features(self) -> bool:
        return True  # the token head is per word: it trains on the cached last-layer word vectors

    def frozen_inputs(self, source, enc: Encoded, pooling: str, layers: str, sequences: bool = False):
        """(N_kept_words, D) for a linear classifier; with `sequences`, WordSequences for the tagger
        (a BiLSTM needs sentence boundaries; learned layer weights need every layer)."""
        words = word_features(source, enc)  # (N, L+1, H) float16
        if not sequences:
            return select_layers(words, layers)
        return WordSequences(
            layer_stack(words, layers), np.asarray([len(f) for f in enc.meta["first"]], dtype=np.int64)
        )

    def frozen_targets(self, enc: Encoded) -> np.ndarray:
        return np.concatenate([t[f] for t, f in zip(enc.targets, enc.meta["first"])])

    def frozen_estimator(self, strategy, n_classes: int | None, seed: int, device: str = "cpu"):
        """The BiLSTM tagger / learned layer weights on word sequences, else the linear probe per word."""
        if not strategy.sequences:
            return LinearProbe(strategy.classifier, strategy.C, strategy.grid, False, n_classes, seed)
        hidden = strategy.lstm_hidden if strategy.classifier == "bilstm" else 0
        return TaggerEstimator(hidden, strategy.tagger_lr, strategy.tagger_epochs, n_classes, seed, device)

    # -- prediction -------------------------------------------------------------------------------------
    def read_inputs(self, path: str, **columns):
        tokens, _ = read_token_file(path)
        return TokenSplit(tokens)

    def predictions(self, outputs, enc, split, label_names):
        tags = self.word_predictions(outputs, enc, split, label_names)
        return [{"tokens": " ".join(t), "tags": " ".join(g)} for t, g in zip(split.tokens, tags)]


def word_features(source, enc: Encoded) -> np.ndarray:
    """(N_kept_words, L+1, H) float16: every layer's hidden state at each word's first sub-token, in
    row order; cached under OUT/cache/features like the sentence pools."""
    first = enc.meta["first"]
    return source.token_states(enc.rows, "words", lambda i: first[i])

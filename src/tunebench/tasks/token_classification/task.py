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

import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ...data.conll import label_list, read_token_file, to_iob2
from ...data.named import DATASETS, get_dataset, locate
from ...errors import TunebenchError
from ...estimators import LinearProbe
from ...extract import layer_stack, select_layers
from ...training.batching import IGNORE
from ..base import TASKS, Encoded, Task
from .metrics import entity_scores
from .tagger import TaggerEstimator, WordSequences


@dataclass
class TokenSplit:
    tokens: list[list[str]]
    tags: list[list[str]] | None = None  # IOB2
    source: str = ""
    label_index: dict[str, int] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def labels(self) -> list[list[int]] | None:
        if self.tags is None:
            return None
        return [[self.label_index[t] for t in tags] for tags in self.tags]

    def subset(self, idx) -> TokenSplit:
        tags = None if self.tags is None else [self.tags[i] for i in idx]
        return TokenSplit([self.tokens[i] for i in idx], tags, self.source, self.label_index)


@dataclass
class TokenBundle:
    name: str
    train: TokenSplit
    dev: TokenSplit
    test: TokenSplit | None
    label_names: list[str]
    regression: bool = False

    def fingerprint(self) -> str:
        h = hashlib.sha256(json.dumps(self.label_names).encode())
        for name in ("train", "dev", "test"):
            s = getattr(self, name)
            h.update(json.dumps([name, None if s is None else [s.tokens, s.tags]]).encode())
        return h.hexdigest()[:16]

    def describe(self) -> str:
        parts = [
            f"{n} {len(getattr(self, n))} sentences" for n in ("train", "dev", "test") if getattr(self, n)
        ]
        types = sorted({n[2:] for n in self.label_names if n != "O"})
        return f"{self.name}: " + " · ".join(parts) + f" · entity types {', '.join(types)}"


def load_token_data(cfg) -> TokenBundle:
    """Named dataset (conll2003) or CoNLL/JSONL files; dev split off train when not given; seeded
    subsample of training sentences with --train-size; --eval-size caps dev and test."""
    if cfg.data in DATASETS and not Path(cfg.data).is_file():
        ds = get_dataset(cfg.data)
        if ds.task != "token-classification":
            raise TunebenchError(
                f"dataset '{cfg.data}' is for {ds.task}, not token-classification; pass --task {ds.task}"
            )
        paths = locate(ds, cfg.data_dir)
        name, train_p, dev_p, test_p = (
            ds.name,
            paths["train"],
            cfg.dev or paths.get("dev"),
            cfg.test or paths.get("test"),
        )
    else:
        name, train_p, dev_p, test_p = Path(cfg.data).name.split(".")[0], cfg.data, cfg.dev, cfg.test

    def read(path) -> TokenSplit | None:
        if path is None:
            return None
        tokens, tags = read_token_file(path)
        return TokenSplit(tokens, [to_iob2(t) for t in tags], str(path))

    train, dev, test = read(train_p), read(dev_p), read(test_p)
    rng = random.Random(cfg.seed)
    if dev is None:
        n_dev = round(cfg.dev_fraction * len(train))
        if n_dev < 1:
            raise TunebenchError(f"{train.source}: no dev set; give --dev FILE or a --dev-fraction above 0")
        order = list(range(len(train)))
        rng.shuffle(order)
        dev, train = train.subset(sorted(order[:n_dev])), train.subset(sorted(order[n_dev:]))
    if cfg.train_size is not None and cfg.train_size < len(train):
        train = train.subset(sorted(random.Random(cfg.seed).sample(range(len(train)), cfg.train_size)))
    elif cfg.train_size is not None and cfg.train_size > len(train):
        raise TunebenchError(
            f"train_size {cfg.train_size} is larger than the {len(train)} training sentences in {train.source}; "
            "lower --train-size or drop it"
        )
    if cfg.eval_size is not None:
        dev = _cap(dev, cfg.eval_size, cfg.seed)
        test = None if test is None else _cap(test, cfg.eval_size, cfg.seed)
    names = label_list(train.tags)
    index = {n: i for i, n in enumerate(names)}
    for split in (dev, test):
        if split is None:
            continue
        unknown = sorted({t for tags in split.tags for t in tags} - set(index))
        if unknown:
            raise TunebenchError(
                f"{split.source}: tags {', '.join(unknown[:5])} do not occur in train ({train.source}); "
                "fix the tags or add sentences with them to train"
            )
    for split in (train, dev, test):
        if split is not None:
            split.label_index = index
    return TokenBundle(name, train, dev, test, names)


def _cap(split: TokenSplit, n: int, seed: int) -> TokenSplit:
    return (
        split if len(split) <= n else split.subset(sorted(random.Random(seed).sample(range(len(split)), n)))
    )


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

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if logits.dim() == 3:  # (B, T, C) per sub-token; (N, C) per word when head-only reads the cache
            logits, labels = logits.flatten(0, 1), labels.flatten()
        return nn.functional.cross_entropy(logits.float(), labels, ignore_index=IGNORE)

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

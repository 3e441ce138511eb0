"""Tiny fixtures for the common test suite (tests/test_common.py): a 2-layer, 32-wide random BERT with
an offline word-level tokenizer, and synthetic data with a learnable signal. Each task package has a
`tiny.py` whose `tiny(root)` builds its fixture from these, so a new task brings its own, and the
suite runs every registered task x strategy in a minute on 2 CPU cores (litgpt-style tiny configs)."""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import BertConfig, BertModel, BertTokenizerFast

from .data import DataConfig

POSITIVE = ["good", "great", "fine", "nice", "superb", "lovely"]
NEGATIVE = ["bad", "awful", "poor", "worse", "dull", "ugly"]
FILLER = [
    "the",
    "a",
    "movie",
    "film",
    "plot",
    "was",
    "is",
    "actor",
    "scene",
    "very",
    "quite",
    "and",
    "story",
    "it",
]


@dataclass
class Tiny:
    """What `compare` needs to run a task's whole ladder in seconds."""

    data: DataConfig
    model: str
    train: dict = field(default_factory=lambda: {"epochs": 2, "batch_size": 16})
    options: dict[str, dict[str, str]] = field(default_factory=dict)  # beyond the strategies' tiny_options
    max_length: int | None = None
    # the loss-falls check: epochs and batch size at 10x each strategy's rate (at most 1e-2)
    fit: dict = field(default_factory=lambda: {"epochs": 6, "batch_size": 16})


def make_tiny_bert(path: Path, hidden: int = 32, layers: int = 2) -> Path:
    """Save a 2-layer, 32-wide random BERT and a word-level tokenizer under `path` (once)."""
    if (path / "config.json").is_file():
        return path
    path.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *POSITIVE, *NEGATIVE, *FILLER]
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tok = BertTokenizerFast(
        vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True, model_max_length=64
    )
    tok.save_pretrained(path)
    cfg = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=2 * hidden,
        max_position_embeddings=64,
        initializer_range=0.2,  # larger than BERT's 0.02 so a random tiny model has usable features
    )
    torch.manual_seed(0)
    BertModel(cfg, add_pooling_layer=False).save_pretrained(path)
    return path


def make_rows(n: int, seed: int) -> list[tuple[str, str]]:
    """Tiny reviews: filler words with 2-3 positive (label pos) or negative (neg) words."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = i % 2
        words = rng.choices(FILLER, k=rng.randint(2, 6))
        for _ in range(rng.randint(2, 3)):
            words.insert(rng.randrange(len(words) + 1), rng.choice(POSITIVE if label else NEGATIVE))
        rows.append((" ".join(words), "pos" if label else "neg"))
    return rows


def with_columns(rows: list[tuple[str, str]], seed: int, informative: bool = True) -> list[tuple]:
    """Rows + feature columns: `shop` (categorical, agreeing with the label 3 times in 4 when
    `informative`, else random; some missing), `price` (numeric, noise; some missing) and `user` (40
    levels: embedded)."""
    rng = random.Random(seed)
    out = []
    for text, label in rows:
        agree = rng.random() < (0.75 if informative else 0.5)
        shop = ("good" if label == "pos" else "bad") if agree else ("bad" if label == "pos" else "good")
        shop = "" if rng.random() < 0.05 else shop
        price = "" if rng.random() < 0.05 else f"{rng.gauss(20, 5):.2f}"
        out.append((text, label, shop, price, f"u{rng.randrange(40)}"))
    return out


COLUMNS_HEADER = ("sentence", "label", "shop", "price", "user")


def write_tsv(path: Path, rows, header=("sentence", "label")) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\")
        w.writerow(list(header))
        w.writerows(rows)
    return path

"""Shared fixtures: a tiny random BERT with an offline word-level tokenizer, and learnable data."""

from __future__ import annotations

import csv
import os
import random
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

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
SHARED_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"


def make_tiny_model(path: Path, hidden: int = 32, layers: int = 2) -> Path:
    """Save a 2-layer, 32-wide random BERT and a word-level tokenizer under `path`."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

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
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = i % 2
        words = rng.choices(FILLER, k=rng.randint(2, 6))
        for _ in range(rng.randint(2, 3)):
            words.insert(rng.randrange(len(words) + 1), rng.choice(POSITIVE if label else NEGATIVE))
        rows.append((" ".join(words), "pos" if label else "neg"))
    return rows


def write_tsv(path: Path, rows) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\")
        w.writerow(["sentence", "label"])
        w.writerows(rows)
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    return str(make_tiny_model(tmp_path_factory.mktemp("tiny-bert")))


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("tiny-data")
    return {
        "train": str(write_tsv(root / "train.tsv", make_rows(96, 1))),
        "dev": str(write_tsv(root / "dev.tsv", make_rows(48, 2))),
        "test": str(write_tsv(root / "test.tsv", make_rows(48, 3))),
    }


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DIR / "sst2").is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DIR

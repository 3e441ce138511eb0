"""`tunebench predict`: predictions for a file from any exported strategy, in the task's own form
(label + class probabilities, a score, word/tag pairs, answer text + score)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import TunebenchError


@dataclass
class Texts:
    """What a text task's `encode` needs from a split, without labels."""

    texts: list[str]
    text_pairs: list[str] | None = None

    def __len__(self) -> int:
        return len(self.texts)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def read_texts(path: str, text_col: str | None, text_pair_col: str | None) -> Texts:
    from .data.readers import read_table

    columns, _ = read_table(path)
    if text_col is None:
        text_col = next((c for c in ("sentence", "text", "review", "content") if c in columns), None)
        if text_col is None:
            raise TunebenchError(f"{path}: no text column found among {list(columns)}; pass --text-col NAME")
    for col in (text_col, text_pair_col):
        if col is not None and col not in columns:
            raise TunebenchError(
                f"{path}: no column '{col}' (columns: {', '.join(columns)}); pass --text-col NAME"
            )
    texts = ["" if t is None else str(t) for t in columns[text_col]]
    pairs = ["" if t is None else str(t) for t in columns[text_pair_col]] if text_pair_col else None
    return Texts(texts, pairs)


def predict(
    model: str | Path,
    data: str,
    out: str | Path | None = None,
    text_col: str | None = None,
    text_pair_col: str | None = None,
    batch_size: int = 128,
    device: str = "auto",
) -> list[dict]:
    """One dict per input example (the task decides the fields: label + prob_<class>, score, tokens/tags,
    answer + score); written as CSV to `out` if given."""
    from .artifacts import Predictor

    predictor = Predictor(model)
    task = predictor.task
    inputs = task.read_inputs(data, text_col=text_col, text_pair_col=text_pair_col)
    outputs, enc, per_example = predictor.outputs(inputs, batch_size, device)
    rows = task.predictions(outputs, enc if not per_example else None, inputs, predictor.label_names)
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        with open(out, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["row", *rows[0]] if rows else ["row"])
            w.writeheader()
            for i, r in enumerate(rows, 1):
                w.writerow({"row": i, **r})
    return rows

"""`tunebench predict`: label + class probabilities for a file, from any exported strategy."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import TunebenchError


@dataclass
class Texts:
    """What a task's `encode` needs from a split, without labels."""

    texts: list[str]
    text_pairs: list[str] | None = None


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
) -> tuple[list[str], np.ndarray]:
    """Returns (labels, probabilities (N, C)); writes a CSV with label and prob_<class> if `out` is given."""
    from .artifacts import Predictor

    predictor = Predictor(model)
    texts = read_texts(data, text_col, text_pair_col)
    probs = softmax(predictor.predict_logits(texts, batch_size, device))
    names = predictor.label_names
    labels = [names[i] for i in probs.argmax(-1)]
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        with open(out, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["row", "label", *[f"prob_{n}" for n in names]])
            for i, (label, p) in enumerate(zip(labels, probs)):
                w.writerow([i + 1, label, *[f"{x:.6f}" for x in p]])
    return labels, probs

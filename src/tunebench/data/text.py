"""Text data: the `TextSplit` / `DataBundle` the text tasks train on, the dev / test sets carved off
train when the data has none, and `read_texts`, the texts a model predicts on.

The loaders are `text_classification.load_text_classification` and `text_regression.load_text_regression`:
everything the user can get wrong is checked there, once, with a one-line `TunebenchError`, so the
training code can trust its inputs. Splits are seeded (`splits.py`) so that the same config always
gives the same bundle, and `DataBundle.fingerprint()` can key caches of features and results.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import TunebenchError
from .columns import FeatureColumns
from .config import DataConfig
from .readers import read_lines, read_table
from .splits import split_off
from .text_sources import TEXT_COLUMNS

__all__ = [
    "TEXT_COLUMNS",
    "DataBundle",
    "DataConfig",
    "TextSplit",
    "Texts",
    "carve_dev_test",
    "read_corpus",
    "read_texts",
]


@dataclass
class TextSplit:
    """One split: texts, label indices into `DataBundle.label_names`, optional second texts, and the
    values of the feature columns (`--feature-cols`): as read (`columns`) and transformed (`extra`, (N, D),
    set by `DataBundle.fit_columns`)."""

    texts: list[str]
    labels: list[int]
    text_pairs: list[str] | None = None
    source: str = ""
    columns: dict[str, list] | None = None
    extra: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, idx: list[int]) -> TextSplit:
        pairs = None if self.text_pairs is None else [self.text_pairs[i] for i in idx]
        columns = None if self.columns is None else {k: [v[i] for i in idx] for k, v in self.columns.items()}
        extra = None if self.extra is None else self.extra[np.asarray(idx, dtype=np.int64)]
        return TextSplit(
            [self.texts[i] for i in idx], [self.labels[i] for i in idx], pairs, self.source, columns, extra
        )


@dataclass
class DataBundle:
    """All splits of one dataset plus the label vocabulary (from train)."""

    name: str
    train: TextSplit
    dev: TextSplit
    test: TextSplit | None
    label_names: list[str] = field(default_factory=list)
    regression: bool = False  # labels are numbers to predict (label_names == ["score"])
    columns: FeatureColumns | None = None  # the feature columns, fitted on train (`fit_columns`)
    text_col: str | None = None  # the column the texts were read from (a corpus file's is looked up by it)

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    def fingerprint(self) -> str:
        """Stable hash of the data itself (not the name or paths), for cache keys."""
        h = hashlib.sha256(json.dumps(self.label_names).encode())
        for name, split in (("train", self.train), ("dev", self.dev), ("test", self.test)):
            payload = None if split is None else [split.texts, split.text_pairs, split.labels]
            if split is not None and split.columns is not None:  # only then: older keys stay as they were
                payload.append(split.columns)
            h.update(json.dumps([name, payload]).encode())
        if self.columns is not None:
            h.update(json.dumps([c.kind for c in self.columns.columns]).encode())
        return h.hexdigest()[:16]

    def fit_columns(self, columns: FeatureColumns | None) -> DataBundle:
        """The feature columns fitted on train and applied to every split (no-op without columns)."""
        if columns is not None:
            self.columns = columns.fit(self.train.columns)
            for split in (self.train, self.dev, self.test):
                if split is not None:
                    split.extra = self.columns.transform(split.columns)
        return self

    def describe(self) -> str:
        parts = [f"train {len(self.train)}", f"dev {len(self.dev)}"]
        if self.test is not None:
            parts.append(f"test {len(self.test)}")
        parts.append("regression" if self.regression else f"{self.num_labels} classes")
        if self.columns is not None:
            splits = {"train": self.train, "dev": self.dev, "test": self.test}
            parts.append(self.columns.describe({s: v.columns for s, v in splits.items() if v is not None}))
        return f"{self.name}: " + " · ".join(parts)


def carve_dev_test(
    train: TextSplit, dev: TextSplit | None, test: TextSplit | None, cfg: DataConfig
) -> tuple[TextSplit, TextSplit, TextSplit | None]:
    """(train, dev, test): a test set split off train by --test-fraction when there is none, then a
    dev set by --dev-fraction (both fractions of the full train set; seeded, stratified by label)."""
    n_total = len(train)
    if test is None and cfg.test_fraction > 0:
        n_test = round(cfg.test_fraction * n_total)
        train, test = _split_off(train, n_test, "test", f"test_fraction {cfg.test_fraction}", cfg.seed)
    if dev is None:
        if cfg.dev_fraction == 0:
            raise TunebenchError(
                f"{train.source}: no dev set; give a dev file with --dev FILE or a --dev-fraction above 0"
            )
        n_dev = round(cfg.dev_fraction * n_total)
        train, dev = _split_off(train, n_dev, "dev", f"dev_fraction {cfg.dev_fraction}", cfg.seed)
    return train, dev, test


def _split_off(train: TextSplit, n: int, what: str, why: str, seed: int) -> tuple[TextSplit, TextSplit]:
    if n < 1 or n >= len(train):
        raise TunebenchError(
            f"{train.source}: {why} of {len(train)} train rows gives {n} {what} rows; "
            f"give a {what} file with --{what} FILE or change --{what}-fraction"
        )
    return split_off(train, n, seed, train.labels)


# -- prediction inputs ------------------------------------------------------------------------


@dataclass
class Texts:
    """What a text task's `encode` needs from a split, without labels."""

    texts: list[str]
    text_pairs: list[str] | None = None
    extra: np.ndarray | None = None  # the feature columns, transformed as the export's were fitted

    def __len__(self) -> int:
        return len(self.texts)


def read_texts(path: str, text_col: str | None, text_pair_col: str | None) -> Texts:
    columns, _ = read_table(path)
    if text_col is None:
        text_col = next((c for c in TEXT_COLUMNS if c in columns), None)
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


def read_corpus(path: str, text_col: str | None, flag: str) -> list[str]:
    """The texts of a corpus file (--reference, --replay). A `.txt` file (optionally .gz) holds one text
    per line; a table (CSV/TSV/JSONL/Parquet) its text column: `text_col` (the data's) when it has one,
    else one of the usual names (sentence, text, ...), else its only column of text (not numbers)."""
    if Path(path).name.lower().removesuffix(".gz").endswith(".txt"):
        texts = read_lines(path)
    else:
        columns, _ = read_table(path)
        named = [c for c in (text_col, *TEXT_COLUMNS) if c is not None and c in columns]
        textual = [c for c, values in columns.items() if _is_text(values)]
        if not named and len(textual) != 1:
            raise TunebenchError(
                f"{flag} {path}: which column holds the text? columns: {', '.join(columns) or '(none)'}; "
                f"name it {text_col or 'text'} (as in the data) or keep one column of text"
            )
        col = named[0] if named else textual[0]
        texts = [str(v) for v in columns[col] if v is not None and str(v).strip()]
    if not texts:
        raise TunebenchError(
            f"{flag} {path}: no texts in the file; give one text per line (.txt) or a table with a text column"
        )
    return texts


def _is_text(values: list) -> bool:
    """Strings, not all of them numbers (CSV cells are strings whatever they hold)."""
    if any(v is not None and not isinstance(v, str) for v in values):
        return False
    strings = [v for v in values if v is not None and v.strip()]
    return bool(strings) and not all(_is_number(v) for v in strings)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True

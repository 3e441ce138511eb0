"""The common test suite's fixture: tiny reviews (positive vs negative words) on the tiny BERT."""

from __future__ import annotations

from pathlib import Path

from ...data import DataConfig
from ...testing import COLUMNS_HEADER, Tiny, make_rows, make_tiny_bert, with_columns, write_tsv


def tiny(root: Path) -> Tiny:
    splits = {s: write_tsv(root / f"{s}.tsv", make_rows(n, seed)) for s, n, seed in TINY_SPLITS}
    data = DataConfig(data=str(splits["train"]), dev=str(splits["dev"]), test=str(splits["test"]))
    return Tiny(data, str(make_tiny_bert(root / "tiny-bert")))


def tiny_columns(root: Path) -> Tiny:
    """The same reviews with feature columns (--feature-cols): a categorical column that mostly agrees
    with the label, a numeric one with missing values, a 40-level one that the fusion head embeds."""
    splits = {
        s: write_tsv(root / f"{s}.tsv", with_columns(make_rows(n, seed), seed), COLUMNS_HEADER)
        for s, n, seed in TINY_SPLITS
    }
    data = DataConfig(
        data=str(splits["train"]),
        dev=str(splits["dev"]),
        test=str(splits["test"]),
        feature_cols="shop,price,user",
    )
    return Tiny(data, str(make_tiny_bert(root / "tiny-bert")))


VARIANTS = {"columns": tiny_columns}  # more fixtures of this task for the common suite


TINY_SPLITS = (("train", 96, 1), ("dev", 48, 2), ("test", 48, 3))

"""The common test suite's fixture: tiny reviews (positive vs negative words) on the tiny BERT."""

from __future__ import annotations

from pathlib import Path

from ...data import DataConfig
from ...testing import Tiny, make_rows, make_tiny_bert, write_tsv


def tiny(root: Path) -> Tiny:
    splits = {s: write_tsv(root / f"{s}.tsv", make_rows(n, seed)) for s, n, seed in TINY_SPLITS}
    data = DataConfig(data=str(splits["train"]), dev=str(splits["dev"]), test=str(splits["test"]))
    return Tiny(data, str(make_tiny_bert(root / "tiny-bert")))


TINY_SPLITS = (("train", 96, 1), ("dev", 48, 2), ("test", 48, 3))

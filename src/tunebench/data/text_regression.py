"""Text regression data (STS-B): like text classification, with a number to predict per text (pair);
subsamples are stratified by quantile bins of the target so they keep its distribution."""

from __future__ import annotations

import numpy as np

from ..errors import TunebenchError
from .config import DataConfig
from .readers import Table
from .splits import cap, check_train_size, subsample
from .text import DataBundle, TextSplit, carve_dev_test
from .text_classification import declare_columns, read_columns
from .text_sources import LABEL_COLUMNS, TEXT_COLUMNS, pick_column, resolve_sources, text_values


def load_text_regression(cfg: DataConfig) -> DataBundle:
    """Like `load_text_classification`, with a number to predict per text (pair): STS-B similarity."""
    src = resolve_sources(cfg, "text-regression")
    text_col = pick_column(src.train, cfg.text_col or src.columns.get("text"), TEXT_COLUMNS, "text")
    label_col = pick_column(
        src.train, cfg.label_col or src.columns.get("label"), ("score", *LABEL_COLUMNS), "label"
    )
    pair_col = cfg.text_pair_col or src.columns.get("text_pair")
    if pair_col is not None:
        pick_column(src.train, pair_col, (), "text-pair")
    cols = (text_col, label_col, pair_col)
    features = declare_columns(cfg, src.train, cols)

    def split(table: Table | None) -> TextSplit | None:
        if table is None:
            return None
        if table.n_rows == 0:
            raise TunebenchError(f"{table.source}: no data rows; the file needs data rows")
        for col, role in zip(cols, ("text", "label", "text-pair")):
            if col is not None:
                pick_column(table, col, (), role)
        texts = text_values(table, text_col)
        pairs = text_values(table, pair_col) if pair_col else None
        return TextSplit(
            texts,
            [_number(table, i, v, label_col) for i, v in enumerate(table.columns[label_col])],
            pairs,
            table.source,
            read_columns(features, table),
        )

    train, dev, test = split(src.train), split(src.dev), split(src.test)
    train, dev, test = carve_dev_test(train, dev, test, cfg)
    if cfg.train_size is not None and cfg.train_size != len(train):
        check_train_size(cfg.train_size, len(train), "train rows available", train.source)
        train = subsample(train, cfg.train_size, cfg.seed, _bins(train.labels))
    if cfg.eval_size is not None:
        dev = _cap_numbers(dev, cfg.eval_size, cfg.seed)
        test = None if test is None else _cap_numbers(test, cfg.eval_size, cfg.seed)
    if len(set(train.labels)) < 2:
        raise TunebenchError(f"{train.source}: every training target is {train.labels[0]}; nothing to learn")
    bundle = DataBundle(src.name, train, dev, test, ["score"], regression=True, text_col=text_col)
    return bundle.fit_columns(features)


def _number(table: Table, i: int, v: object, col: str) -> float:
    try:
        x = float(v.strip() if isinstance(v, str) else v)
        if x != x or x in (float("inf"), float("-inf")):
            raise ValueError
        return x
    except (TypeError, ValueError, AttributeError):
        raise TunebenchError(
            f"{table.source} {table.where(i)}: target {v!r} in column '{col}' is not a number; "
            "text regression needs a numeric target (use --task text-classification for classes)"
        ) from None


def _bins(values: list[float], n: int = 5) -> list[int]:
    """Quantile bins of a numeric target, so subsamples keep its distribution (stratified by bin)."""
    edges = np.quantile(values, np.linspace(0, 1, n + 1)[1:-1])
    return np.searchsorted(edges, values, side="right").tolist()


def _cap_numbers(split: TextSplit, n: int, seed: int) -> TextSplit:
    return split if len(split) <= n else cap(split, n, seed, _bins(split.labels))

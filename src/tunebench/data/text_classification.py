"""Text classification data: from a `DataConfig` (a named dataset, the user's files or a Hub id) to a
`DataBundle` of texts and class indices, every bad label or missing value a one-line error."""

from __future__ import annotations

import re

from ..errors import TunebenchError
from .columns import FeatureColumns
from .config import DataConfig
from .readers import Table
from .splits import cap, check_train_size, long_tail, subsample
from .text import DataBundle, TextSplit, carve_dev_test
from .text_sources import LABEL_COLUMNS, TEXT_COLUMNS, pick_column, resolve_sources, text_values

_INT = re.compile(r"[-+]?\d+")
_DECIMAL = re.compile(r"[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?")


def load_text_classification(cfg: DataConfig) -> DataBundle:
    """Read, check, split and subsample the data described by `cfg`."""
    src = resolve_sources(cfg)
    text_col = pick_column(src.train, cfg.text_col or src.columns.get("text"), TEXT_COLUMNS, "text")
    label_col = pick_column(src.train, cfg.label_col or src.columns.get("label"), LABEL_COLUMNS, "label")
    pair_col = cfg.text_pair_col or src.columns.get("text_pair")
    if src.hub_test and all(v in (-1, None) for v in src.test.columns.get(label_col, [])):
        src.test = None  # an unlabeled test split cannot be evaluated: drop it
    if pair_col is not None:
        pick_column(src.train, pair_col, (), "text-pair")
    cols = (text_col, label_col, pair_col)
    features = declare_columns(cfg, src.train, cols)

    texts, pairs, keys = _extract(src.train, cols)
    label_names = _label_names(keys, src.train.source)
    index = {name: i for i, name in enumerate(label_names)}
    train = TextSplit(
        texts, [index[k] for k in keys], pairs, src.train.source, read_columns(features, src.train)
    )
    dev = _labeled_split(src.dev, cols, index, src.train.source, features)
    test = _labeled_split(src.test, cols, index, src.train.source, features)

    n_total = len(train)
    train, dev, test = carve_dev_test(train, dev, test, cfg)
    if cfg.long_tail is not None:
        train = long_tail(train, train.labels, len(label_names), cfg.long_tail, cfg.seed)
    if cfg.train_size is not None and cfg.train_size != len(train):
        after = " after taking out dev/test" if len(train) < n_total else ""
        check_train_size(cfg.train_size, len(train), "train rows available", train.source, after)
        train = subsample(train, cfg.train_size, cfg.seed, train.labels)
        present = sorted(set(train.labels))
        if len(present) < 2:
            raise TunebenchError(
                f"train_size {cfg.train_size} leaves only class '{label_names[present[0]]}' in train; "
                "at least 2 classes are needed, so use a larger --train-size"
            )
    if cfg.eval_size is not None:
        dev = cap(dev, cfg.eval_size, cfg.seed, dev.labels)
        test = None if test is None else cap(test, cfg.eval_size, cfg.seed, test.labels)
    bundle = DataBundle(src.name, train, dev, test, label_names, text_col=text_col)
    return bundle.fit_columns(features)


def declare_columns(cfg: DataConfig, train: Table, cols: tuple[str | None, ...]) -> FeatureColumns | None:
    """The --feature-cols columns of `train` (none of them the text, label or pair column)."""
    if not cfg.feature_cols:
        return None
    roles = dict(zip(cols, ("text", "label", "text-pair")))
    return FeatureColumns.declare(cfg.feature_cols, train, {c: r for c, r in roles.items() if c is not None})


def read_columns(features: FeatureColumns | None, table: Table) -> dict[str, list] | None:
    return None if features is None else features.read(table)


# ----------------------------------------------------------------------------- labels


MISSING = ("nan", "none", "null")  # what pandas, Python and JSON write for a missing cell


def _label_key(v: object) -> str | None:
    """Canonical string of a label: "1" for 1, 1.0 and " 1 "; None when missing."""
    if v is None or isinstance(v, bool):
        return None if v is None else str(v).lower()
    if isinstance(v, str):
        v = v.strip()
        if not v or v.lower() in MISSING:
            return None
        if _INT.fullmatch(v):
            return str(int(v))
        if not _DECIMAL.fullmatch(v):
            return v
        v = float(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v != v:  # NaN: a missing value in Parquet
            return None
        if v.is_integer():
            return str(int(v))
    raise ValueError(v)


def _extract(
    table: Table, cols: tuple[str, str, str | None]
) -> tuple[list[str], list[str] | None, list[str]]:
    text_col, label_col, pair_col = cols
    if table.n_rows == 0:
        raise TunebenchError(f"{table.source}: no data rows (only a header); the file needs data rows")
    for col, role in ((text_col, "text"), (label_col, "label"), (pair_col, "text-pair")):
        if col is not None:
            pick_column(table, col, (), role)
    texts = text_values(table, text_col)
    pairs = text_values(table, pair_col) if pair_col else None
    keys = []
    for i, v in enumerate(table.columns[label_col]):
        try:
            key = _label_key(v)
        except ValueError:
            raise TunebenchError(
                f"{table.source} {table.where(i)}: label {v!r} is not a class (use whole numbers or names); "
                "a number to predict? use --task text-regression"
            ) from None
        if key is None:
            raise TunebenchError(
                f"{table.source} {table.where(i)}: missing label in column '{label_col}'; "
                "fill it in or remove the row"
            )
        keys.append(key)
    return texts, pairs, keys


def _label_names(keys: list[str], source: str) -> list[str]:
    names = set(keys)
    if len(names) < 2:
        raise TunebenchError(
            f"{source}: every row has label '{keys[0]}'; text classification needs at least 2 classes in train"
        )
    if all(_INT.fullmatch(n) for n in names):
        return sorted(names, key=int)
    return sorted(names)


def _labeled_split(
    table: Table | None,
    cols: tuple[str, str, str | None],
    index: dict[str, int],
    train_source: str,
    features: FeatureColumns | None = None,
) -> TextSplit | None:
    if table is None:
        return None
    texts, pairs, keys = _extract(table, cols)
    labels = []
    for i, k in enumerate(keys):
        if k not in index:
            known = ", ".join(list(index)[:10]) + (", ..." if len(index) > 10 else "")
            raise TunebenchError(
                f"{table.source} {table.where(i)}: label '{k}' does not occur in train ({train_source}: "
                f"{known}); fix the label or add examples of it to train"
            )
        labels.append(index[k])
    return TextSplit(texts, labels, pairs, table.source, read_columns(features, table))

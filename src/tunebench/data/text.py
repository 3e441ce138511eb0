"""Text classification data: from a `DataConfig` (a named dataset or the user's files) to a `DataBundle`.

Everything the user can get wrong is checked here, once, with a one-line `TunebenchError`, so the
training code can trust its inputs. Splits are seeded and stratified so that the same config always
gives the same bundle, and `DataBundle.fingerprint()` can key caches of features and results.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tunebench.data.named import DATASETS, dataset_names, get_dataset, locate
from tunebench.data.readers import FORMATS, Table, describe_path, load_table, read_table
from tunebench.errors import TunebenchError

TEXT_COLUMNS = ("sentence", "text", "review", "content")
LABEL_COLUMNS = ("label", "labels", "class", "target")

_INT = re.compile(r"[-+]?\d+")
_DECIMAL = re.compile(r"[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?")
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def _bad(field_name: str, msg: str) -> TunebenchError:
    flag = "--" + field_name.replace("_", "-")
    return TunebenchError(f"data config: {field_name} ({flag}) {msg}")


@dataclass
class DataConfig:
    """Where the data is and how to split it; validated on construction."""

    data: str
    dev: str | None = None
    test: str | None = None
    data_dir: str | None = None
    text_col: str | None = None
    label_col: str | None = None
    text_pair_col: str | None = None
    train_size: int | None = None
    eval_size: int | None = None
    dev_fraction: float = 0.1
    test_fraction: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("data", "dev", "test", "data_dir"):
            value = getattr(self, name)
            if isinstance(value, os.PathLike):
                value = os.fspath(value)
                setattr(self, name, value)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                if name == "data":
                    raise TunebenchError("data config: data needs a dataset name or a file path")
                raise _bad(name, f"must be a non-empty path, got {value!r}")
        for name in ("text_col", "label_col", "text_pair_col"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise _bad(name, f"must be a non-empty column name, got {value!r}")
        cols = [c for c in (self.text_col, self.label_col, self.text_pair_col) if c is not None]
        if len(set(cols)) != len(cols):
            raise TunebenchError(
                f"data config: --text-col, --label-col and --text-pair-col must differ, got {cols}"
            )
        for name in ("train_size", "eval_size"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise _bad(name, f"must be a positive integer, got {value!r}")
        for name in ("dev_fraction", "test_fraction"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise _bad(name, f"must be a number in [0, 1), got {value!r}")
        if self.dev_fraction + self.test_fraction >= 1:
            raise TunebenchError(
                f"data config: dev_fraction + test_fraction must be below 1 "
                f"(got {self.dev_fraction} + {self.test_fraction}); lower one of them"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise _bad("seed", f"must be an integer, got {self.seed!r}")


@dataclass
class TextSplit:
    """One split: texts, label indices into `DataBundle.label_names`, optional second texts."""

    texts: list[str]
    labels: list[int]
    text_pairs: list[str] | None = None
    source: str = ""

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, idx: list[int]) -> TextSplit:
        pairs = None if self.text_pairs is None else [self.text_pairs[i] for i in idx]
        return TextSplit([self.texts[i] for i in idx], [self.labels[i] for i in idx], pairs, self.source)


@dataclass
class DataBundle:
    """All splits of one dataset plus the label vocabulary (from train)."""

    name: str
    train: TextSplit
    dev: TextSplit
    test: TextSplit | None
    label_names: list[str] = field(default_factory=list)
    regression: bool = False  # labels are numbers to predict (label_names == ["score"])

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    def fingerprint(self) -> str:
        """Stable hash of the data itself (not the name or paths), for cache keys."""
        h = hashlib.sha256(json.dumps(self.label_names).encode())
        for name, split in (("train", self.train), ("dev", self.dev), ("test", self.test)):
            payload = None if split is None else [split.texts, split.text_pairs, split.labels]
            h.update(json.dumps([name, payload]).encode())
        return h.hexdigest()[:16]

    def describe(self) -> str:
        parts = [f"train {len(self.train)}", f"dev {len(self.dev)}"]
        if self.test is not None:
            parts.append(f"test {len(self.test)}")
        parts.append("regression" if self.regression else f"{self.num_labels} classes")
        return f"{self.name}: " + " · ".join(parts)


@dataclass
class _Sources:
    name: str
    train: Table
    dev: Table | None
    test: Table | None
    columns: Mapping[str, str] = field(default_factory=dict)  # defaults from a named dataset
    hub_test: bool = False  # test split came from the Hub: may be unlabeled (GLUE uses label -1)


def load_text_classification(cfg: DataConfig) -> DataBundle:
    """Read, check, split and subsample the data described by `cfg`."""
    src = _resolve_sources(cfg)
    text_col = _pick_column(src.train, cfg.text_col or src.columns.get("text"), TEXT_COLUMNS, "text")
    label_col = _pick_column(src.train, cfg.label_col or src.columns.get("label"), LABEL_COLUMNS, "label")
    pair_col = cfg.text_pair_col or src.columns.get("text_pair")
    if src.hub_test and all(v in (-1, None) for v in src.test.columns.get(label_col, [])):
        src.test = None  # an unlabeled test split cannot be evaluated: drop it
    if pair_col is not None:
        _pick_column(src.train, pair_col, (), "text-pair")
    cols = (text_col, label_col, pair_col)

    texts, pairs, keys = _extract(src.train, cols)
    label_names = _label_names(keys, src.train.source)
    index = {name: i for i, name in enumerate(label_names)}
    train = TextSplit(texts, [index[k] for k in keys], pairs, src.train.source)
    dev = _labeled_split(src.dev, cols, index, src.train.source)
    test = _labeled_split(src.test, cols, index, src.train.source)

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

    if cfg.train_size is not None and cfg.train_size != len(train):
        if cfg.train_size > len(train):
            after = " after taking out dev/test" if len(train) < n_total else ""
            raise TunebenchError(
                f"train_size {cfg.train_size} is larger than the {len(train)} train rows available "
                f"in {train.source}{after}; lower --train-size or drop it"
            )
        train = train.subset(_take(train.labels, cfg.train_size, cfg.seed)[1])
        present = sorted(set(train.labels))
        if len(present) < 2:
            raise TunebenchError(
                f"train_size {cfg.train_size} leaves only class '{label_names[present[0]]}' in train; "
                "at least 2 classes are needed, so use a larger --train-size"
            )
    if cfg.eval_size is not None:
        dev = _cap(dev, cfg.eval_size, cfg.seed)
        test = None if test is None else _cap(test, cfg.eval_size, cfg.seed)
    return DataBundle(src.name, train, dev, test, label_names)


# ----------------------------------------------------------------------------- finding the files


def _looks_like_path(data: str) -> bool:
    name = data.lower().removesuffix(".gz")
    return os.path.exists(data) or Path(name).suffix in FORMATS or data.startswith((".", "/", "~"))


def _resolve_sources(cfg: DataConfig, task: str = "text-classification") -> _Sources:
    data = cfg.data
    if data in DATASETS and not os.path.isfile(data):
        ds = get_dataset(data)
        if ds.task != task:
            raise TunebenchError(f"dataset '{data}' is for {ds.task}, not {task}; pass --task {ds.task}")
        paths = locate(ds, cfg.data_dir)
        src = _Sources(ds.name, load_table(paths["train"], **ds.read), None, None, ds.columns)
        default_dev, default_test = paths.get("dev"), paths.get("test")
        read = dict(ds.read)
    elif _looks_like_path(data):
        name = Path(re.sub(r"\.gz$", "", data, flags=re.I)).stem
        src = _Sources(name, load_table(data), None, None)
        default_dev = default_test = None
        read = {}
    elif _HUB_ID.fullmatch(data):
        return _hub_sources(data, cfg)
    else:
        names = ", ".join(dataset_names(task))
        raise TunebenchError(
            f"unknown dataset '{data}': not a registered name ({names}) and no file {describe_path(data)}; "
            "give one of the names or the path of a data file"
        )
    src.dev = load_table(cfg.dev) if cfg.dev else load_table(default_dev, **read) if default_dev else None
    src.test = (
        load_table(cfg.test) if cfg.test else load_table(default_test, **read) if default_test else None
    )
    return src


def _hub_sources(hub_id: str, cfg: DataConfig) -> _Sources:
    """Fallback for ids like "stanfordnlp/sst2": the optional `datasets` package, if it can reach the Hub."""
    try:
        import datasets  # optional and slow to import, so only here
    except ImportError:
        raise TunebenchError(
            f"'{hub_id}' is not a local file, so it was taken as a Hugging Face Hub id, but the `datasets` "
            "package is not installed (pip install 'tunebench[hub]'); or give the path of a local data file"
        ) from None
    try:
        dd = datasets.load_dataset(hub_id)
    except Exception as e:  # network, auth, missing repo: all the same to the user
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise TunebenchError(
            f"could not load '{hub_id}' from the Hugging Face Hub ({first}); if you are offline, "
            "download the files and give their path"
        ) from None

    def table(split: str) -> Table:
        return Table(f"{hub_id}[{split}]", dd[split].to_dict(), len(dd[split]))

    splits = list(dd.keys())
    if "train" not in splits:
        raise TunebenchError(f"'{hub_id}' has no train split (it has: {', '.join(splits)})")
    dev_split = next((s for s in ("validation", "dev", "valid") if s in splits), None)
    dev = load_table(cfg.dev) if cfg.dev else (table(dev_split) if dev_split else None)
    test = load_table(cfg.test) if cfg.test else (table("test") if "test" in splits else None)
    src = _Sources(hub_id.split("/")[-1], table("train"), dev, test)
    src.hub_test = cfg.test is None and test is not None
    return src


# ----------------------------------------------------------------------------- columns and values


def _pick_column(table: Table, name: str | None, candidates: tuple[str, ...], role: str) -> str:
    available = list(table.columns)
    if name is not None and name in table.columns:
        return name
    if name is None:
        for cand in candidates:
            if cand in table.columns:
                return cand
        lower = {c.lower(): c for c in available}
        for cand in candidates:
            if cand in lower:
                return lower[cand]
    if table.n_rows == 0 and not available:
        raise TunebenchError(f"{table.source}: no rows; the file needs data rows")
    wanted = f"no column '{name}'" if name else f"no {role} column (looked for {', '.join(candidates)})"
    raise TunebenchError(
        f"{table.source}: {wanted}; columns are: {', '.join(available) or '(none)'}; "
        f"choose one with --{role}-col NAME"
    )


def _text_values(table: Table, col: str) -> list[str]:
    out = []
    for i, v in enumerate(table.columns[col]):
        if not isinstance(v, str):
            if v is not None and not isinstance(v, (int, float)):
                raise TunebenchError(
                    f"{table.source} {table.where(i)}: column '{col}' holds a {type(v).__name__}, not text"
                )
            v = "" if v is None else str(v)
        if "\r" in v:
            v = v.replace("\r", "")
        if not v.strip():
            raise TunebenchError(
                f"{table.source} {table.where(i)}: empty text in column '{col}'; fill it in or remove the row"
            )
        out.append(v)
    return out


def _label_key(v: object) -> str | None:
    """Canonical string of a label: "1" for 1, 1.0 and " 1 "; None when missing."""
    if v is None or isinstance(v, bool):
        return None if v is None else str(v).lower()
    if isinstance(v, str):
        v = v.strip()
        if not v:
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
            _pick_column(table, col, (), role)
    texts = _text_values(table, text_col)
    pairs = _text_values(table, pair_col) if pair_col else None
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
    table: Table | None, cols: tuple[str, str, str | None], index: dict[str, int], train_source: str
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
    return TextSplit(texts, labels, pairs, table.source)


# ----------------------------------------------------------------------------- seeded stratified splits


def _take(labels: list[int], n: int, seed: int) -> tuple[list[int], list[int]]:
    """Indices (rest, taken) with len(taken) == n, stratified by label when every class allows it."""
    from sklearn.model_selection import train_test_split  # sklearn import is slow; only when splitting

    idx = list(range(len(labels)))
    try:
        rest, taken = train_test_split(idx, test_size=n, stratify=labels, random_state=seed)
    except ValueError:  # a class with 1 row, or fewer rows than classes: fall back to a plain split
        rest, taken = train_test_split(idx, test_size=n, random_state=seed)
    return sorted(rest), sorted(taken)  # keep file order; the training loop shuffles


def _split_off(train: TextSplit, n: int, what: str, why: str, seed: int) -> tuple[TextSplit, TextSplit]:
    if n < 1 or n >= len(train):
        raise TunebenchError(
            f"{train.source}: {why} of {len(train)} train rows gives {n} {what} rows; "
            f"give a {what} file with --{what} FILE or change --{what}-fraction"
        )
    rest, taken = _take(train.labels, n, seed)
    return train.subset(rest), train.subset(taken)


def _cap(split: TextSplit, n: int, seed: int) -> TextSplit:
    return split if len(split) <= n else split.subset(_take(split.labels, n, seed)[1])


# ----------------------------------------------------------------------------- regression targets


def load_text_regression(cfg: DataConfig) -> DataBundle:
    """Like `load_text_classification`, with a number to predict per text (pair): STS-B similarity."""
    src = _resolve_sources(cfg, "text-regression")
    text_col = _pick_column(src.train, cfg.text_col or src.columns.get("text"), TEXT_COLUMNS, "text")
    label_col = _pick_column(
        src.train, cfg.label_col or src.columns.get("label"), ("score", *LABEL_COLUMNS), "label"
    )
    pair_col = cfg.text_pair_col or src.columns.get("text_pair")
    if pair_col is not None:
        _pick_column(src.train, pair_col, (), "text-pair")
    cols = (text_col, label_col, pair_col)

    def split(table: Table | None) -> TextSplit | None:
        if table is None:
            return None
        if table.n_rows == 0:
            raise TunebenchError(f"{table.source}: no data rows; the file needs data rows")
        for col, role in zip(cols, ("text", "label", "text-pair")):
            if col is not None:
                _pick_column(table, col, (), role)
        texts = _text_values(table, text_col)
        pairs = _text_values(table, pair_col) if pair_col else None
        return TextSplit(
            texts,
            [_number(table, i, v, label_col) for i, v in enumerate(table.columns[label_col])],
            pairs,
            table.source,
        )

    train, dev, test = split(src.train), split(src.dev), split(src.test)
    n_total = len(train)
    if test is None and cfg.test_fraction > 0:
        train, test = _split_off(
            train, round(cfg.test_fraction * n_total), "test", f"test_fraction {cfg.test_fraction}", cfg.seed
        )
    if dev is None:
        if cfg.dev_fraction == 0:
            raise TunebenchError(
                f"{train.source}: no dev set; give a dev file with --dev FILE or a --dev-fraction above 0"
            )
        train, dev = _split_off(
            train, round(cfg.dev_fraction * n_total), "dev", f"dev_fraction {cfg.dev_fraction}", cfg.seed
        )
    if cfg.train_size is not None and cfg.train_size != len(train):
        if cfg.train_size > len(train):
            raise TunebenchError(
                f"train_size {cfg.train_size} is larger than the {len(train)} train rows available "
                f"in {train.source}; lower --train-size or drop it"
            )
        train = train.subset(_take(_bins(train.labels), cfg.train_size, cfg.seed)[1])
    if cfg.eval_size is not None:
        dev = _cap_numbers(dev, cfg.eval_size, cfg.seed)
        test = None if test is None else _cap_numbers(test, cfg.eval_size, cfg.seed)
    if len(set(train.labels)) < 2:
        raise TunebenchError(f"{train.source}: every training target is {train.labels[0]}; nothing to learn")
    return DataBundle(src.name, train, dev, test, ["score"], regression=True)


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
    import numpy as np

    edges = np.quantile(values, np.linspace(0, 1, n + 1)[1:-1])
    return np.searchsorted(edges, values, side="right").tolist()


def _cap_numbers(split: TextSplit, n: int, seed: int) -> TextSplit:
    return split if len(split) <= n else split.subset(_take(_bins(split.labels), n, seed)[1])


# -- prediction inputs ------------------------------------------------------------------------


@dataclass
class Texts:
    """What a text task's `encode` needs from a split, without labels."""

    texts: list[str]
    text_pairs: list[str] | None = None

    def __len__(self) -> int:
        return len(self.texts)


def read_texts(path: str, text_col: str | None, text_pair_col: str | None) -> Texts:
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

"""Feature columns (`--feature-cols`): numeric and categorical columns read beside the text.

Declared as `name` (the kind inferred from train: numeric when every value there is a number) or
`name:num` / `name:cat`. Fitted on train only, the way scikit-learn's ColumnTransformer of
SimpleImputer + StandardScaler and OneHotEncoder(handle_unknown="ignore") would be:

- numeric: a missing value becomes the train mean, and a 0/1 "missing" column is added when train has
  missing values; then standardised with the mean and standard deviation of train's imputed values.
- categorical: every value seen in train is a level, a missing value is the level "(missing)"; a value
  train never had has no level (all zeros, or the embedding's "(other)" row). Up to `ONE_HOT_MAX` levels
  the column is one-hot; above, it is an integer code that the fusion head embeds (fastai's size rule),
  levels with fewer than `MIN_COUNT` training rows sharing "(other)".

A transformed row is float32: the dense part (numbers, flags, one-hots) then one code per embedded
column (codes below 2^24 are exact). The fitted parameters are plain JSON: exports carry them in the
manifest, no pickle.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import TunebenchError
from .readers import Table

KINDS = {"num": "numeric", "numeric": "numeric", "cat": "categorical", "categorical": "categorical"}
MISSING_VALUES = ("", "nan", "none", "null", "na", "n/a")  # what CSV writers, pandas and JSON leave
MISSING_LEVEL = "(missing)"
ONE_HOT_MAX = 16  # more levels than this: embedded in the fusion head instead of one-hot
MIN_COUNT = 2  # embedded columns: levels rarer than this in train share the "(other)" code
MAX_LEVELS = 10_000  # embedded columns keep at most this many (most frequent) levels
PROBE_LEVELS = 256  # the linear probe one-hot encodes an embedded column's most frequent levels
_NUMBER = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*|\s*[-+]?(inf|infinity)\s*", re.I)


def parse_spec(spec) -> tuple[str, ...]:
    """`--feature-cols a,b:cat,c:num` (or a list of such items) -> ("a", "b:cat", "c:num"), checked."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out, seen = [], set()
    for raw in items:
        if not isinstance(raw, str) or not raw.strip():
            raise TunebenchError(
                f"--feature-cols {spec!r}: an empty column name; give names separated by commas, e.g. age,city:cat"
            )
        name, _, kind = raw.strip().rpartition(":") if ":" in raw else (raw.strip(), "", "")
        name = name.strip()
        if kind and kind.strip().lower() not in KINDS:
            raise TunebenchError(
                f"--feature-cols {raw.strip()}: unknown kind '{kind}'; use NAME:num or NAME:cat (or NAME alone)"
            )
        if not name or name in seen:
            why = "an empty column name" if not name else f"column '{name}' is named twice"
            raise TunebenchError(f"--feature-cols {spec!r}: {why}")
        seen.add(name)
        out.append(f"{name}:{kind.strip().lower()}" if kind else name)
    return tuple(out)


def _missing(v) -> bool:
    if v is None:
        return True
    if isinstance(v, float):
        return math.isnan(v)
    return isinstance(v, str) and v.strip().lower() in MISSING_VALUES


def _number(v) -> float | None:
    """The value as a float, or None when it is not a number (booleans are not)."""
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str) and _NUMBER.fullmatch(v):
        return float(v)
    return None


def _level(v) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


@dataclass
class Column:
    """One feature column and, once fitted, its train statistics."""

    name: str
    kind: str  # "numeric" | "categorical"
    mean: float = 0.0
    std: float = 1.0
    indicator: bool = False  # numeric with missing values in train: a 0/1 "missing" column
    levels: list[str] = field(default_factory=list)  # categorical, most frequent first
    embed_dim: int = 0  # > 0: embedded (code 0 = "(other)"), else one-hot over `levels`

    @property
    def width(self) -> int:
        """Dense columns this column becomes (embedded columns are one code after the dense part)."""
        if self.kind == "numeric":
            return 1 + self.indicator
        return 0 if self.embed_dim else len(self.levels)


class FeatureColumns:
    """The declared columns: `read` a table's values, `fit` on train's, `transform` any split's."""

    def __init__(self, columns: list[Column], fitted: bool = False):
        self.columns = columns
        self.fitted = fitted

    # -- declaring and reading ---------------------------------------------------------------------
    @classmethod
    def declare(cls, spec: tuple[str, ...], train: Table, taken: dict[str, str]) -> FeatureColumns:
        """The columns of `spec` in `train`, each kind given or inferred from train's values. `taken`:
        column -> its role (text, label ...), which a feature column cannot also be."""
        columns = []
        for item in spec:
            name, _, kind = item.rpartition(":") if ":" in item else (item, "", "")
            if name in taken:
                raise TunebenchError(
                    f"--feature-cols: '{name}' is already the {taken[name]} column; name other columns"
                )
            values = _column(train, name)
            if not kind:
                present = [v for v in values if not _missing(v)]
                numeric = present and all(_number(v) is not None for v in present)
                columns.append(Column(name, "numeric" if numeric else "categorical"))
            else:
                columns.append(Column(name, KINDS[kind]))
        return cls(columns)

    def read(self, table: Table) -> dict[str, list]:
        """Column -> values of `table` (floats or None for numeric columns, strings or None for
        categorical ones); a non-number in a numeric column is one line naming its row."""
        out = {}
        for col in self.columns:
            values = []
            for i, v in enumerate(_column(table, col.name)):
                if _missing(v):
                    values.append(None)
                elif col.kind == "categorical":
                    values.append(_level(v))
                elif (x := _number(v)) is None or not math.isfinite(x):
                    raise TunebenchError(
                        f"{table.source} {table.where(i)}, column '{col.name}': {v!r} is not a number; fix "
                        f"the value, or declare the column categorical with --feature-cols {col.name}:cat"
                    )
                else:
                    values.append(x)
            out[col.name] = values
        return out

    # -- fitting and transforming ------------------------------------------------------------------
    def fit(self, values: dict[str, list]) -> FeatureColumns:
        """Train statistics of every column (a new fitted object; this one is unchanged)."""
        fitted = []
        for col in self.columns:
            v = values[col.name]
            if col.kind == "numeric":
                present = np.asarray([x for x in v if x is not None], dtype=np.float64)
                mean = float(present.mean()) if len(present) else 0.0
                # the spread after imputation, as SimpleImputer then StandardScaler computes it
                std = float(np.sqrt(((present - mean) ** 2).sum() / len(v))) if len(present) else 0.0
                fitted.append(
                    Column(col.name, col.kind, mean, std if std > 0 else 1.0, len(present) < len(v))
                )
                continue
            counts = Counter(MISSING_LEVEL if x is None else x for x in v)
            ranked = [lvl for lvl, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
            if len(ranked) <= ONE_HOT_MAX:
                fitted.append(Column(col.name, col.kind, levels=ranked))
            else:
                kept = [lvl for lvl in ranked if counts[lvl] >= MIN_COUNT][:MAX_LEVELS]
                dim = min(32, round(1.6 * (len(kept) + 1) ** 0.56))  # fastai's embedding size rule
                fitted.append(Column(col.name, col.kind, levels=kept, embed_dim=dim))
        return FeatureColumns(fitted, fitted=True)

    @property
    def n_dense(self) -> int:
        return sum(c.width for c in self.columns)

    @property
    def embedded(self) -> list[tuple[int, int]]:
        """(codes incl. "(other)", embedding size) per embedded column, in code order."""
        return [(len(c.levels) + 1, c.embed_dim) for c in self.columns if c.embed_dim]

    @property
    def width(self) -> int:
        return self.n_dense + len(self.embedded)

    def transform(self, values: dict[str, list]) -> np.ndarray:
        """(N, width) float32: the dense part, then one code per embedded column."""
        n = len(next(iter(values.values()))) if values else 0
        dense, codes = [], []
        for col in self.columns:
            v = values[col.name]
            if col.kind == "numeric":
                x = np.asarray([col.mean if a is None else a for a in v], dtype=np.float64)
                dense.append(((x - col.mean) / col.std)[:, None])
                if col.indicator:
                    dense.append(np.asarray([[a is None] for a in v], dtype=np.float64))
                continue
            index = {lvl: i for i, lvl in enumerate(col.levels)}
            ids = np.asarray([index.get(MISSING_LEVEL if a is None else a, -1) for a in v], dtype=np.int64)
            if col.embed_dim:
                codes.append((ids + 1)[:, None].astype(np.float64))  # -1 (unseen) -> 0, "(other)"
            else:
                onehot = np.zeros((n, len(col.levels)))
                known = ids >= 0
                onehot[np.flatnonzero(known), ids[known]] = 1.0
                dense.append(onehot)
        parts = dense + codes
        return np.concatenate(parts, 1).astype(np.float32) if parts else np.zeros((n, 0), np.float32)

    def probe_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """What a linear model reads of transformed rows: the dense part, and each embedded column
        one-hot over its `PROBE_LEVELS` most frequent levels (the rest in "(other)")."""
        parts = [matrix[:, : self.n_dense]]
        for j, (n_codes, _) in enumerate(self.embedded):
            codes = matrix[:, self.n_dense + j].astype(np.int64)
            width = min(n_codes, PROBE_LEVELS + 1)
            codes = np.where(codes < width, codes, 0)
            parts.append(np.eye(width, dtype=np.float32)[codes])
        return np.concatenate(parts, 1).astype(np.float32)

    def describe(self, splits: dict[str, dict[str, list]]) -> str:
        """One line: each column's kind and encoding, and its missing values per split."""
        out = []
        for col in self.columns:
            what = (
                f"numeric{', missing imputed + flagged' if col.indicator else ''}"
                if col.kind == "numeric"
                else f"categorical, {len(col.levels)} levels "
                + (f"embedded ({col.embed_dim})" if col.embed_dim else "one-hot")
            )
            missing = {s: sum(v is None for v in vals[col.name]) for s, vals in splits.items() if vals}
            if any(missing.values()):
                what += "; missing " + ", ".join(f"{n} {s}" for s, n in missing.items() if n)
            out.append(f"{col.name} ({what})")
        return "feature columns: " + "; ".join(out)

    # -- the export's form ---------------------------------------------------------------------------
    def to_json(self) -> list[dict]:
        return [asdict(c) for c in self.columns]

    @classmethod
    def from_json(cls, data: list[dict]) -> FeatureColumns:
        return cls([Column(**c) for c in data], fitted=True)


def _column(table: Table, name: str) -> list:
    if name not in table.columns:
        raise TunebenchError(
            f"{table.source}: no column '{name}' for --feature-cols (columns: {', '.join(table.columns)}); "
            "every split needs the feature columns: add it there or leave it out of --feature-cols"
        )
    return table.columns[name]

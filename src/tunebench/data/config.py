"""`DataConfig`: where a task's data is and how to split it (the --data, --dev, --train-size, ...
options), validated on construction so that every loader can trust it."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import TunebenchError
from .columns import parse_spec


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
    # make train long-tailed with this imbalance ratio (class i keeps n_max * ratio^(-i/(C-1)) rows,
    # splits.long_tail_indices); applied before --train-size
    long_tail: float | None = None
    # numeric and categorical columns read beside the text: "a,b:cat,c:num" or a list of such names
    # (data/columns.py); normalised to a tuple
    feature_cols: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.feature_cols is not None:
            self.feature_cols = parse_spec(self.feature_cols) or None
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
        if self.long_tail is not None and (
            isinstance(self.long_tail, bool)
            or not isinstance(self.long_tail, (int, float))
            or self.long_tail < 1
        ):
            raise _bad(
                "long_tail", f"must be an imbalance ratio >= 1 (e.g. 10 or 100), got {self.long_tail!r}"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise _bad("seed", f"must be an integer, got {self.seed!r}")

"""Seeded selection of rows, the same for every task: split a dev / test set off train, subsample
train (`--train-size`), cap an evaluation split (`--eval-size`).

With `labels` (class indices, or any strata such as quantile bins of a regression target) the
selection is stratified by scikit-learn's `train_test_split`, and falls back to its unstratified split
when a class is too small to stratify. Without labels (NER sentences have no single label) it is
Python's `random` seeded with `seed`: a shuffle to split off, `random.sample` to subsample. Either
way the indices come back sorted, so the rows keep their file order (the training loop shuffles), and
the same seed always selects the same rows.
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Sequence
from typing import Protocol, TypeVar

from sklearn.model_selection import train_test_split

from ..errors import TunebenchError


class Subsettable(Protocol):
    """A split: its length, and the split of the rows at some indices."""

    def __len__(self) -> int: ...

    def subset(self, idx: list[int]): ...


S = TypeVar("S", bound=Subsettable)


def split_indices(
    size: int, n: int, seed: int, labels: Sequence[Hashable] | None = None
) -> tuple[list[int], list[int]]:
    """Indices (rest, taken) of `size` rows with len(taken) == n; stratified by `labels` when given."""
    if labels is None:
        order = list(range(size))
        random.Random(seed).shuffle(order)
        return sorted(order[n:]), sorted(order[:n])
    idx = list(range(size))
    try:
        rest, taken = train_test_split(idx, test_size=n, stratify=labels, random_state=seed)
    except ValueError:  # a class with 1 row, or fewer rows than classes: fall back to a plain split
        rest, taken = train_test_split(idx, test_size=n, random_state=seed)
    return sorted(rest), sorted(taken)


def sample_indices(size: int, n: int, seed: int, labels: Sequence[Hashable] | None = None) -> list[int]:
    """`n` of `size` row indices, sorted; stratified by `labels` when given."""
    if labels is None:
        return sorted(random.Random(seed).sample(range(size), n))
    return split_indices(size, n, seed, labels)[1]


def split_off(split: S, n: int, seed: int, labels: Sequence[Hashable] | None = None) -> tuple[S, S]:
    """(the rest, `n` rows taken out of `split`): a dev or test set carved off train."""
    rest, taken = split_indices(len(split), n, seed, labels)
    return split.subset(rest), split.subset(taken)


def subsample(split: S, n: int, seed: int, labels: Sequence[Hashable] | None = None) -> S:
    """`n` rows of `split` (n <= len(split))."""
    return split.subset(sample_indices(len(split), n, seed, labels))


def cap(split: S, n: int, seed: int, labels: Sequence[Hashable] | None = None) -> S:
    """At most `n` rows of `split`: itself when it is no longer, else a seeded subsample."""
    return split if len(split) <= n else subsample(split, n, seed, labels)


def check_train_size(n: int, available: int, what: str, source: str, after: str = "") -> None:
    """One line when --train-size asks for more training rows than there are (`what`: "train rows
    available", "training sentences", ...; `after`: why there are fewer, e.g. dev/test taken out)."""
    if n > available:
        raise TunebenchError(
            f"train_size {n} is larger than the {available} {what} in {source}{after}; lower --train-size or drop it"
        )


def long_tail_indices(labels: Sequence[int], num_classes: int, ratio: float, seed: int) -> list[int]:
    """The long-tailed version of a training set (Cao et al. 2019, CIFAR-10-LT): class i (label order,
    i = 0 .. C-1) keeps n_max * ratio^(-i / (C - 1)) of its rows, n_max the largest class's count,
    each class's rows chosen by a generator seeded with `seed`; at least one row per class. Classes
    with fewer rows than their quota keep them all. Indices sorted."""
    by_class: dict[int, list[int]] = {c: [] for c in range(num_classes)}
    for i, y in enumerate(labels):
        by_class[int(y)].append(i)
    n_max = max(len(rows) for rows in by_class.values())
    rng = random.Random(seed)
    kept = []
    for c, rows in by_class.items():
        quota = max(1, int(n_max * ratio ** (-c / max(num_classes - 1, 1))))
        kept += rows if len(rows) <= quota else rng.sample(rows, quota)
    return sorted(kept)


def long_tail(split: S, labels: Sequence[int], num_classes: int, ratio: float, seed: int) -> S:
    """`split` made long-tailed with imbalance ratio `ratio` (see long_tail_indices)."""
    return split.subset(long_tail_indices(labels, num_classes, ratio, seed))

"""The common test suite's fixture: pairs of tiny reviews scored by how many of the two are positive."""

from __future__ import annotations

import csv
import random
from pathlib import Path

from ...data import DataConfig
from ...testing import Tiny, make_rows, make_tiny_bert


def write_pairs(path: Path, n: int, seed: int) -> str:
    """Pairs of tiny reviews; the score grows with the number of positive texts in the pair (0, 1, 2),
    plus noise: additive in the two texts, so a linear model on [u, v, ...] can learn it."""
    rng = random.Random(seed)
    a, b = make_rows(n, seed), make_rows(n, seed + 100)
    rng.shuffle(b)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["sentence1", "sentence2", "score"])
        for (t1, l1), (t2, l2) in zip(a, b):
            positives = (l1 == "pos") + (l2 == "pos")
            w.writerow([t1, t2, f"{1.0 + 1.5 * positives + rng.uniform(-0.5, 0.5):.2f}"])
    return str(path)


def tiny(root: Path) -> Tiny:
    data = DataConfig(
        data=write_pairs(root / "train.csv", 96, 1),
        dev=write_pairs(root / "dev.csv", 48, 2),
        test=write_pairs(root / "test.csv", 48, 3),
        text_col="sentence1",
        text_pair_col="sentence2",
        label_col="score",
    )
    return Tiny(data, str(make_tiny_bert(root / "tiny-bert")))

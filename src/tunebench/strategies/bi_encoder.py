"""The frozen bi-encoder family for text pairs: each text embedded on its own by the frozen backbone.

`cosine`: the cosine similarity of the two embeddings, no training at all (a 2-parameter linear map
only puts it on the label's scale, or turns it into class scores; correlations are unchanged).
`bi-encoder`: the SentEval / InferSent features [u, v, |u - v|, u * v] with a ridge regressor or a
logistic regression, regularisation chosen on dev. Both read the embedding cache, so they cost one
forward pass per distinct text.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import STRATEGIES
from .features import Features

PAIRS = {"text-pairs": "needs text pairs (--text-pair-col): it compares two separately embedded texts"}


def cosine(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity, (N, H) x (N, H) -> (N,)."""
    num = (u * v).sum(1)
    return num / np.maximum(np.linalg.norm(u, axis=1) * np.linalg.norm(v, axis=1), 1e-12)


@STRATEGIES.register("cosine")
@dataclass
class Cosine(Features):
    ladder = -2  # before the rest of the ladder when the data has pairs
    summary = "text pairs: cosine of the two frozen embeddings, no training (scale fitted only)"
    pairwise = True
    requires = PAIRS
    reads_feature_columns = False
    hints = None
    curve = False
    C: float = 1e4  # effectively unregularised: one slope and one offset

    def combine(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        return cosine(u, v)[:, None]  # (N, 1)


@STRATEGIES.register("bi-encoder")
@dataclass
class BiEncoder(Features):
    ladder = -1
    summary = "text pairs: frozen embeddings u, v -> [u, v, |u-v|, u*v] -> ridge / logistic regression"
    pairwise = True
    requires = PAIRS
    reads_feature_columns = False
    hints = None
    curve = False

    def combine(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        return np.concatenate([u, v, np.abs(u - v), u * v], 1)  # (N, 4H)

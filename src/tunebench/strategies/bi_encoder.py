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

from ..errors import TunebenchError
from .base import STRATEGIES
from .features import Features


def pair_embeddings(ctx, split: str, cfg, pooling: str, layers: str) -> tuple[np.ndarray, np.ndarray]:
    """(u, v): frozen pooled embeddings of the first and the second texts of `split`, each (N, H)."""
    from ..tasks.classification import tokenize

    data = ctx.split(split)
    if getattr(data, "text_pairs", None) is None:
        raise TunebenchError(
            f"{ctx.bundle.name}: the bi-encoder strategies need text pairs; set --text-pair-col"
        )
    tok = ctx.backbone.tokenizer
    u = ctx.pooled(tokenize(tok, data.texts, None, ctx.max_length).rows, cfg, pooling, layers)
    v = ctx.pooled(tokenize(tok, data.text_pairs, None, ctx.max_length).rows, cfg, pooling, layers)
    return u, v


def cosine(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity, (N, H) x (N, H) -> (N,)."""
    num = (u * v).sum(1)
    return num / np.maximum(np.linalg.norm(u, axis=1) * np.linalg.norm(v, axis=1), 1e-12)


@STRATEGIES.register("cosine")
@dataclass
class Cosine(Features):
    summary = "text pairs: cosine of the two frozen embeddings, no training (scale fitted only)"
    per_example_inputs = True
    C: float = 1e4  # effectively unregularised: one slope and one offset

    def inputs(self, ctx, split: str, cfg, pooling: str) -> np.ndarray:
        u, v = pair_embeddings(ctx, split, cfg, pooling, self.layers)
        return cosine(u, v)[:, None]  # (N, 1)


@STRATEGIES.register("bi-encoder")
@dataclass
class BiEncoder(Features):
    summary = "text pairs: frozen embeddings u, v -> [u, v, |u-v|, u*v] -> ridge / logistic regression"
    per_example_inputs = True

    def inputs(self, ctx, split: str, cfg, pooling: str) -> np.ndarray:
        u, v = pair_embeddings(ctx, split, cfg, pooling, self.layers)
        return np.concatenate([u, v, np.abs(u - v), u * v], 1)  # (N, 4H)

"""The fusion head of a run with feature columns (`--feature-cols`, data/columns.py): the pooled text
concatenated with the columns (standardised numbers, one-hot categories, embedded high-cardinality
ones), then an MLP, trained with the backbone by every gradient strategy."""

from __future__ import annotations

import torch
from torch import nn

from ..backbones import pool


class FusionHead(nn.Module):
    """pool(hidden) ⊕ columns -> dropout -> Linear(H) -> GELU -> dropout -> Linear(outputs).

    `extra` rows are what `FeatureColumns.transform` gives: `n_dense` floats, then one code per embedded
    column (`embedded`: (codes, size) each)."""

    # The MLP is new and wider than a linear head: it learns at least at head-only's rate, as a new
    # head does under discriminative fine-tuning (ULMFiT), while the backbone keeps its strategy's rate.
    min_lr = 1e-3

    def __init__(
        self,
        hidden_size: int,
        num_outputs: int,
        pooling: str,
        dropout: float,
        n_dense: int,
        embedded: list[tuple[int, int]],
    ):
        super().__init__()
        self.pooling, self.n_dense = pooling, n_dense
        self.embeddings = nn.ModuleList(nn.Embedding(n, d) for n, d in embedded)
        width = hidden_size + n_dense + sum(d for _, d in embedded)
        self.dropout = nn.Dropout(dropout)
        self.mlp = nn.Sequential(
            nn.Linear(width, hidden_size), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden_size, num_outputs)
        )

    def forward(
        self, hidden: torch.Tensor, attention_mask: torch.Tensor, extra: torch.Tensor
    ) -> torch.Tensor:
        return self.from_pooled(pool(hidden, attention_mask, self.pooling), extra)

    def from_pooled(self, pooled: torch.Tensor, extra: torch.Tensor) -> torch.Tensor:
        """(B, H) pooled text + (B, D) columns -> (B, outputs); also the entry for cached features."""
        parts = [pooled, extra[:, : self.n_dense].to(pooled.dtype)]
        codes = extra[:, self.n_dense :].long()
        parts += [emb(codes[:, j]).to(pooled.dtype) for j, emb in enumerate(self.embeddings)]
        return self.mlp(self.dropout(torch.cat(parts, -1)))

"""Frozen backbone as a feature extractor + a fitted estimator (no gradients through the backbone).

The strategy is only its settings; the runner reads the frozen inputs from the task (pooled vectors
from the on-disk cache, or word / window states for token tasks) and the task chooses the estimator
that fits them (`Task.frozen_estimator`: the linear probe of `estimators.py` on pooled vectors, the NER
tagger, the QA span reader). A rerun, another classifier, another pooling or another layer combination
costs no forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
from safetensors.numpy import save_file

from ..errors import TunebenchError
from ..estimators import CLASSIFIERS, DEFAULT_GRID
from ..extract import LAYER_CHOICES
from .base import STRATEGIES, Hints, Strategy

LEARNED_LAYERS = ("weighted-all", "weighted-last-4")  # token tasks: learned softmax weights over layers
POOLINGS = ("auto", "mean", "cls")
ESTIMATOR_FILE = "classifier.safetensors"


@STRATEGIES.register("features")
@dataclass
class Features(Strategy):
    ladder = 1
    curve = True
    summary = "frozen backbone -> pooled features (cached) -> logistic regression, C chosen on dev"
    kind = "estimator"
    hints = Hints(
        advice={
            "labels<100": 3,
            "labels<1k": 2,
            "labels>=10k:frozen-behind": -1,
            "task=text-classification": 1,
            "task=text-pair:frozen-behind": -2,
            "task=token-classification": 1,
            "gap=small": 1,
            "gap=large:frozen-miss": -2,
            "device=cpu:cached": 0.5,
        }
    )
    pairwise: ClassVar[bool] = False  # inputs from two separately embedded texts (cosine, bi-encoder)
    pooling: str = "auto"  # auto | mean | cls
    # last | second-last | mean-of-last-4 | concat-last-4 | mean-of-all | embeddings; for token tasks also
    # the learned weighted sums weighted-all | weighted-last-4 (BERT paper Table 7)
    layers: str = "last"
    # logreg | mlp | bilstm (NER: a BiLSTM over the sentence; QA: the span reader, whose linear form is
    # logreg). Tasks set their own default (Task.strategy_options).
    classifier: str = "logreg"
    C: float = 0.0  # 0: choose on dev from `grid`
    grid: str = DEFAULT_GRID  # inverse L2 strengths tried on dev
    # the torch tagger / reader of token tasks (bilstm or learned layer weights), trained by the one loop
    lstm_hidden: int = 128
    tagger_epochs: int = 20
    tagger_lr: float = 1e-3

    def __post_init__(self):
        if self.pooling not in POOLINGS:
            raise TunebenchError(f"--opt features.pooling={self.pooling}: choose {', '.join(POOLINGS)}")
        if self.layers not in LAYER_CHOICES + LEARNED_LAYERS:
            raise TunebenchError(
                f"--opt features.layers={self.layers}: choose from {', '.join(LAYER_CHOICES + LEARNED_LAYERS)}"
            )
        if self.classifier not in (*CLASSIFIERS, "bilstm"):
            raise TunebenchError(f"--opt features.classifier={self.classifier}: choose logreg, mlp or bilstm")
        if self.layers in LEARNED_LAYERS and self.classifier == "mlp":
            raise TunebenchError(
                f"--opt features.layers={self.layers}: learned layer weights need logreg or bilstm"
            )
        if self.C < 0:
            raise TunebenchError(f"--opt features.C={self.C}: must be > 0 (or 0 to choose it on dev)")

    @property
    def sequences(self) -> bool:
        """Token tasks with a BiLSTM or learned layer weights: a small torch model on word sequences."""
        return self.classifier == "bilstm" or self.layers in LEARNED_LAYERS

    def settings(self) -> dict:
        """The tagger's settings only when it is used, so runs stored before it existed keep their keys."""
        s = super().settings()
        if not self.sequences:
            for k in ("lstm_hidden", "tagger_epochs", "tagger_lr"):
                s.pop(k, None)
        return s

    def combine(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Pairwise strategies: the features of a pair from its two embeddings (N, H) x (N, H)."""
        raise NotImplementedError

    # -- export: the estimator's arrays (safetensors), no pickle -------------------------------------
    def save_estimator(self, out: Path, estimator) -> dict:
        """Write the fitted estimator; returns what the manifest records of it."""
        arrays = {k: np.ascontiguousarray(v) for k, v in estimator.state().items()}
        save_file(arrays, str(out / ESTIMATOR_FILE))
        return {"C": float(getattr(estimator, "C_", 0.0))}

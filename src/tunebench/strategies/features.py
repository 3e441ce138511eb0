"""Frozen backbone as a feature extractor + a scikit-learn classifier (fit/predict, no gradients).

Features come from the on-disk cache (`extract.py`), so a rerun, another classifier, another
pooling or another layer combination costs no forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..errors import TunebenchError
from ..extract import LAYER_CHOICES
from .base import STRATEGIES, Strategy
from .reader import SpanReader, TokenStates, load_reader, reader_logits, reader_state, train_reader
from .tagger import WordSequences, load_tagger, tagger_logits, tagger_state, train_tagger

LEARNED_LAYERS = ("weighted-all", "weighted-last-4")  # token tasks: learned softmax weights over layers


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


@STRATEGIES.register("features")
@dataclass
class Features(Strategy):
    summary = "frozen backbone -> pooled features (cached) -> logistic regression, C chosen on dev"
    kind = "features"
    pooling: str = "auto"  # auto | mean | cls
    # last | second-last | mean-of-last-4 | concat-last-4 | mean-of-all | embeddings; for token tasks also
    # the learned weighted sums weighted-all | weighted-last-4 (BERT paper Table 7)
    layers: str = "last"
    # logreg | mlp | bilstm (NER: a BiLSTM over the sentence; QA: the span reader of reader.py, whose
    # linear form is logreg). Tasks set their own default (Task.strategy_options).
    classifier: str = "logreg"
    C: float = 0.0  # 0: choose on dev from `grid`
    grid: str = "1e-4,1e-3,1e-2,0.1,1,10,100"  # inverse L2 strengths tried on dev
    # the torch tagger (token tasks: bilstm or learned layer weights), trained by the one loop
    lstm_hidden: int = 128
    tagger_epochs: int = 20
    tagger_lr: float = 1e-3
    per_example_inputs: ClassVar[bool] = False  # inputs one per example (bi-encoders), not one per row

    def __post_init__(self):
        if self.layers not in LAYER_CHOICES + LEARNED_LAYERS:
            raise TunebenchError(
                f"--opt features.layers={self.layers}: choose from {', '.join(LAYER_CHOICES + LEARNED_LAYERS)}"
            )
        if self.classifier not in ("logreg", "mlp", "bilstm"):
            raise TunebenchError(f"--opt features.classifier={self.classifier}: choose logreg, mlp or bilstm")
        if self.layers in LEARNED_LAYERS and self.classifier == "mlp":
            raise TunebenchError(
                f"--opt features.layers={self.layers}: learned layer weights need logreg or bilstm"
            )

    @property
    def uses_tagger(self) -> bool:
        """Token tasks with a BiLSTM or learned layer weights: a small torch model on word sequences."""
        return self.classifier == "bilstm" or self.layers in LEARNED_LAYERS

    def settings(self) -> dict:
        """The tagger's settings only when it is used, so runs stored before it existed keep their keys."""
        s = super().settings()
        if not self.uses_tagger:
            for k in ("lstm_hidden", "tagger_epochs", "tagger_lr"):
                s.pop(k, None)
        return s
        if self.pooling not in ("auto", "mean", "cls"):
            raise TunebenchError(f"--opt features.pooling={self.pooling}: choose auto, mean or cls")

    # -- what it reads: frozen pooled features of the task's encoded rows (from the cache) -------------
    def inputs(self, ctx, split: str, cfg, pooling: str) -> np.ndarray:
        return ctx.task.frozen_inputs(ctx, split, cfg, pooling, self.layers, sequences=self.uses_tagger)

    # -- scikit-learn style: fit returns self, learned state ends in _ ------------------------------
    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        X_dev: np.ndarray,
        y_dev: np.ndarray,
        seed: int,
        score=None,
        regression: bool = False,
        n_classes: int | None = None,
        loss=None,
        device: str = "cpu",
    ) -> Features:
        """Standardize, then one classifier (ridge regressor) per C in the grid; keep the best on dev.

        `score(dev_logits) -> float` (higher is better) is the task's selection metric; default: accuracy
        (regression: minus the mean squared error). `n_classes`: the size of the label set, so a class
        absent from the training labels still has its column (never predicted) and ids stay aligned.
        Token tasks get sequences instead of a matrix: QA's TokenStates train the span reader with the
        task's `loss`, NER's WordSequences the tagger."""
        self.tagger_ = None
        hidden = self.lstm_hidden if self.classifier == "bilstm" else 0
        if isinstance(X, TokenStates):  # extractive QA: span reader, trained by the loop
            self.regression_, self.C_, self.weights_ = False, 0.0, []
            self.tagger_ = train_reader(
                X,
                y,
                X_dev,
                y_dev,
                seed,
                score,
                loss,
                hidden=hidden,
                lr=self.tagger_lr,
                epochs=self.tagger_epochs,
                device=device,
            )
            return self
        if isinstance(X, WordSequences):  # token task: BiLSTM / learned layer weights, trained by the loop
            self.regression_, self.C_, self.weights_ = False, 0.0, []
            self.tagger_ = train_tagger(
                X,
                y,
                X_dev,
                y_dev,
                seed,
                score,
                n_classes,
                lstm_hidden=hidden,
                lr=self.tagger_lr,
                epochs=self.tagger_epochs,
                device=device,
            )
            return self
        self.mean_ = X.mean(0)
        self.scale_ = X.std(0) + 1e-6
        Z = self._standardize(X)
        self.regression_ = regression
        self.n_classes_ = n_classes
        if score is None:
            if regression:
                score = lambda out: -float(np.mean((out.reshape(-1) - y_dev) ** 2))  # noqa: E731
            else:
                score = lambda out: float((out.argmax(-1) == y_dev).mean())  # noqa: E731
        best = None
        grid = [self.C] if self.C > 0 else [float(c) for c in self.grid.split(",")]
        for c in grid:
            self.weights_ = self._weights(self._make(c, seed).fit(Z, y))
            s = score(self.decision(X_dev))
            if best is None or s > best[0]:
                best = (s, c, self.weights_)
        _, self.C_, self.weights_ = best
        return self

    def _weights(self, clf) -> list[np.ndarray]:
        """The fitted estimator as plain arrays [W0, b0, (W1, b1)], so decision/export need no sklearn."""
        if self.regression_:
            return [
                clf.coef_.reshape(-1, 1).astype(np.float32),
                np.atleast_1d(clf.intercept_).astype(np.float32),
            ]
        if self.classifier == "logreg":
            w, b = clf.coef_.T.astype(np.float32), clf.intercept_.astype(np.float32)
            if w.shape[1] == 1:  # binary: sklearn stores one column; make it two logits
                w, b = np.concatenate([-w / 2, w / 2], 1), np.concatenate([-b / 2, b / 2])
            return self._all_classes(clf.classes_, w, b)
        arrays = [a.astype(np.float32) for pair in zip(clf.coefs_, clf.intercepts_) for a in pair]
        w, b = arrays[-2], arrays[-1]
        if w.shape[1] == 1:  # binary MLP: one logistic output unit; make it two logits
            w, b = np.concatenate([-w / 2, w / 2], 1), np.concatenate([-b / 2, b / 2])
        return arrays[:-2] + self._all_classes(clf.classes_, w, b)

    def _all_classes(self, classes: np.ndarray, w: np.ndarray, b: np.ndarray) -> list[np.ndarray]:
        """Columns for classes sklearn saw -> columns for every label id (absent ones: never chosen)."""
        n = self.n_classes_ or int(classes.max()) + 1
        if len(classes) == n and np.array_equal(classes, np.arange(n)):
            return [w, b]
        W = np.zeros((w.shape[0], n), dtype=np.float32)
        B = np.full(n, -1e4, dtype=np.float32)
        W[:, classes], B[classes] = w, b
        return [W, B]

    def trainable_count(self) -> int:
        """Fitted weights (the standardization statistics are not counted)."""
        if getattr(self, "tagger_", None) is not None:
            return sum(p.numel() for p in self.tagger_.parameters())
        return int(sum(a.size for a in self.weights_))

    def _make(self, c: float, seed: int):
        if self.regression_:
            from sklearn.linear_model import Ridge

            return Ridge(alpha=1.0 / c)
        if self.classifier == "logreg":
            from sklearn.linear_model import LogisticRegression

            return LogisticRegression(C=c, max_iter=3000)
        from sklearn.neural_network import MLPClassifier

        # alpha is an L2 penalty, the inverse of C; early stopping on a held-out 10%.
        return MLPClassifier((256,), alpha=1.0 / c, early_stopping=True, max_iter=300, random_state=seed)

    def _standardize(self, X: np.ndarray) -> np.ndarray:
        return (X - self.mean_) / self.scale_

    def decision(self, X: np.ndarray) -> np.ndarray:
        """Logits (N, C), computed with numpy from the stored weights (what predict uses after export)."""
        if isinstance(X, TokenStates):
            return reader_logits(self.tagger_, X)
        if getattr(self, "tagger_", None) is not None:
            return tagger_logits(self.tagger_, X)
        h = self._standardize(X).astype(np.float32)
        w = self.weights_
        for i in range(0, len(w) - 2, 2):
            h = np.maximum(h @ w[i] + w[i + 1], 0.0)
        return h @ w[-2] + w[-1]

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return _softmax(self.decision(X))

    # -- export: plain arrays (safetensors), no pickle ---------------------------------------------
    def state(self) -> dict[str, np.ndarray]:
        if getattr(self, "tagger_", None) is not None:
            return (
                reader_state(self.tagger_)
                if isinstance(self.tagger_, SpanReader)
                else tagger_state(self.tagger_)
            )
        arrays = {"mean": self.mean_.astype(np.float32), "scale": self.scale_.astype(np.float32)}
        arrays.update({f"w{i}": a for i, a in enumerate(self.weights_)})
        return arrays

    def load_state(self, arrays: dict[str, np.ndarray], C: float) -> Features:
        self.tagger_ = (
            load_tagger(arrays)
            if "tagger.arch" in arrays
            else load_reader(arrays)
            if "reader.arch" in arrays
            else None
        )
        if self.tagger_ is not None:
            self.C_ = C
            return self
        self.mean_, self.scale_, self.C_ = arrays["mean"], arrays["scale"], C
        self.regression_ = False
        self.weights_ = [arrays[f"w{i}"] for i in range(len(arrays) - 2)]
        return self

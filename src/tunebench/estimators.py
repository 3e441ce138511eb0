"""The linear probe: standardized frozen features -> a scikit-learn classifier (or ridge regressor),
regularisation chosen on dev. A plain scikit-learn-style estimator: `__init__` stores its settings,
`fit` returns self, learned state ends in `_`, and the fitted model is kept as plain arrays so that
`decision_function`, `predict_proba` and the export need no scikit-learn and no pickle.

The `features` strategy (and `cosine`, `bi-encoder`, layer probes) use it on pooled vectors; token tasks
choose their own estimator for their frozen inputs (the NER tagger, the QA span reader).
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_limits  # ships with scikit-learn

DEFAULT_GRID = "1e-4,1e-3,1e-2,0.1,1,10,100"
CLASSIFIERS = ("logreg", "mlp")


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


class LinearProbe:
    """`classifier` logreg | mlp (one hidden layer of 256); `C` > 0 fixes the inverse L2 strength, 0 picks
    it from `grid` on dev. `regression`: ridge with alpha = 1/C. `n_classes`: the size of the label set,
    so a class absent from the training labels still has its (never chosen) column and ids stay aligned."""

    def __init__(
        self,
        classifier: str = "logreg",
        C: float = 0.0,
        grid: str = DEFAULT_GRID,
        regression: bool = False,
        n_classes: int | None = None,
        seed: int = 0,
    ):
        self.classifier = classifier
        self.C = C
        self.grid = grid
        self.regression = regression
        self.n_classes = n_classes
        self.seed = seed

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        X_dev: np.ndarray,
        y_dev: np.ndarray,
        score=None,
        class_weight: np.ndarray | None = None,
    ) -> LinearProbe:
        """Standardize, then one model per C; keep the best on dev. `score(dev_logits) -> float`, higher
        is better (the task's selection metric); default accuracy, or minus the MSE for regression.
        `class_weight` (C,): each training example weighs its class's entry (scikit-learn's
        `class_weight="balanced"` when the weights are n / (C * count))."""
        # One BLAS thread: these problems are small (a few thousand rows, a few hundred columns), and
        # OpenBLAS threads cost more to wake than they save on each of lbfgs's hundreds of products:
        # SST-2's 2,000 x 384 path takes 0.06 s on one thread, 1.1-1.2 s on two (2-core machine).
        # Binary fits are bit for bit the same; multinomial ones (matrix products, which threads split
        # differently) then no longer depend on the machine's core count.
        with threadpool_limits(1, user_api="blas"):
            best = self._path(X, y, X_dev, y_dev, score, class_weight)
        _, self.C_, self.weights_ = best
        return self

    def _path(self, X, y, X_dev, y_dev, score, class_weight) -> tuple:
        """(best dev score, its C, its weights) over the grid."""
        weight = None if class_weight is None else np.asarray(class_weight, dtype=np.float64)[y]
        self.mean_ = X.mean(0)
        self.scale_ = X.std(0) + 1e-6
        Z = self._standardize(X)
        if score is None:
            if self.regression:
                score = lambda out: -float(np.mean((out.reshape(-1) - y_dev) ** 2))  # noqa: E731
            else:
                score = lambda out: float((out.argmax(-1) == y_dev).mean())  # noqa: E731
        best, path = None, None
        grid = [self.C] if self.C > 0 else sorted(float(c) for c in self.grid.split(","))
        for c in grid:
            if self.classifier == "logreg" and not self.regression:
                # the regularisation path, strongest penalty first, each fit starting from the last
                # solution (as LogisticRegressionCV does): the same optima, in about half the iterations
                path = path or LogisticRegression(max_iter=3000, warm_start=True)
                clf = path.set_params(C=c).fit(Z, y, sample_weight=weight)
            else:
                clf = self._make(c).fit(Z, y, sample_weight=weight)
            self.weights_ = self._weights(clf)
            s = score(self.decision_function(X_dev))
            if best is None or s > best[0]:
                best = (s, c, self.weights_)
        return best

    def _make(self, c: float):
        if self.regression:
            return Ridge(alpha=1.0 / c)
        if self.classifier == "logreg":
            return LogisticRegression(C=c, max_iter=3000)
        # alpha is an L2 penalty, the inverse of C; early stopping on a held-out 10%.
        return MLPClassifier((256,), alpha=1.0 / c, early_stopping=True, max_iter=300, random_state=self.seed)

    def _weights(self, clf) -> list[np.ndarray]:
        """The fitted estimator as plain arrays [W0, b0, (W1, b1)]."""
        if self.regression:
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
        n = self.n_classes or int(classes.max()) + 1
        if len(classes) == n and np.array_equal(classes, np.arange(n)):
            return [w, b]
        W = np.zeros((w.shape[0], n), dtype=np.float32)
        B = np.full(n, -1e4, dtype=np.float32)
        W[:, classes], B[classes] = w, b
        return [W, B]

    def _standardize(self, X: np.ndarray) -> np.ndarray:
        return (X - self.mean_) / self.scale_

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Logits (N, C) (regression: (N, 1)), computed with numpy from the stored arrays."""
        h = self._standardize(X).astype(np.float32)
        w = self.weights_
        for i in range(0, len(w) - 2, 2):
            h = np.maximum(h @ w[i] + w[i + 1], 0.0)
        return h @ w[-2] + w[-1]

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return softmax(self.decision_function(X))

    @property
    def n_trainable_(self) -> int:
        """Fitted weights (the standardization statistics are not counted)."""
        return int(sum(a.size for a in self.weights_))

    # -- export: plain arrays (safetensors), no pickle ---------------------------------------------
    def state(self) -> dict[str, np.ndarray]:
        arrays = {"mean": self.mean_.astype(np.float32), "scale": self.scale_.astype(np.float32)}
        arrays.update({f"w{i}": a for i, a in enumerate(self.weights_)})
        return arrays

    def load_state(self, arrays: dict[str, np.ndarray], C: float = 0.0) -> LinearProbe:
        self.mean_, self.scale_, self.C_ = arrays["mean"], arrays["scale"], C
        self.weights_ = [arrays[f"w{i}"] for i in range(len(arrays) - 2)]
        return self

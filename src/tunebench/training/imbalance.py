"""Imbalanced classes: the loss's class weights, the class-balanced sampler, and which dev metric
selects (accuracy, or macro-F1 when the training labels are imbalanced).

Class weights "balanced" are scikit-learn's n / (C * count_c) (a class absent from training gets 0);
a FILE gives label -> weight (JSON object, or CSV rows `label,weight`), labels not listed weigh 1.
The balanced sampler draws each epoch's examples with replacement, every class equally likely, as
many as the training set has (torch's WeightedRandomSampler with weights 1 / count).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from ..errors import TunebenchError
from ..leaderboard import IMBALANCE_RATIO  # one threshold: macro-F1 selection and the rare-class column


def class_weights(option: str, counts: np.ndarray, label_names: list[str]) -> np.ndarray | None:
    """(C,) float32 loss weights for `--class-weights option`, None for "none"."""
    if option == "none":
        return None
    if option == "balanced":
        n, present = counts.sum(), counts > 0
        weights = np.zeros(len(counts), dtype=np.float64)
        weights[present] = n / (present.sum() * counts[present])
        return weights.astype(np.float32)
    given = _read_weights(Path(option))
    unknown = sorted(set(given) - set(label_names))
    if unknown:
        raise TunebenchError(
            f"--class-weights {option}: labels {unknown[:5]} are not in the training data "
            f"(its labels: {', '.join(label_names[:10])}{' ...' if len(label_names) > 10 else ''})"
        )
    return np.asarray([given.get(name, 1.0) for name in label_names], dtype=np.float32)


def _read_weights(path: Path) -> dict[str, float]:
    try:
        if path.suffix.lower() == ".json":
            raw = json.loads(path.read_text())
            if not isinstance(raw, dict):
                raise ValueError("expected an object of label -> weight")
            pairs = list(raw.items())
        else:
            with open(path, newline="") as f:
                pairs = [row[:2] for row in csv.reader(f) if row and row[0] not in ("label", "")]
        weights = {str(k): float(v) for k, v in pairs}
    except (ValueError, IndexError, json.JSONDecodeError) as err:
        raise TunebenchError(
            f"--class-weights {path}: cannot read label -> weight ({err}); give a JSON object "
            '{"label": weight} or CSV rows label,weight'
        ) from None
    bad = [k for k, v in weights.items() if not v >= 0]
    if bad:
        raise TunebenchError(f"--class-weights {path}: weights must be >= 0 (label {bad[0]!r})")
    return weights


def loss_options(cfg, counts: np.ndarray | None, label_names: list[str]) -> dict:
    """What the task's loss takes beside logits and labels: `weight`, `label_smoothing`."""
    options = {}
    weights = None if counts is None else class_weights(cfg.class_weights, counts, label_names)
    if weights is not None:
        options["weight"] = torch.from_numpy(weights)
    if cfg.label_smoothing:
        options["label_smoothing"] = cfg.label_smoothing
    return options


class BalancedBatches:
    """Training batches of `inner` (any of the batches types) drawn class-balanced with replacement;
    evaluation batches are `inner`'s own."""

    def __init__(self, inner, labels: np.ndarray):
        self.inner, self.labels = inner, np.asarray(labels)

    def __len__(self) -> int:
        return len(self.inner)

    def __getattr__(self, name):  # everything else (eval batches, lengths ...) is inner's
        return getattr(self.inner, name)

    def train_batches(self, batch_size: int, seed: int) -> Iterator[dict[str, torch.Tensor]]:
        counts = np.bincount(self.labels)
        p = 1.0 / counts[self.labels]
        rows = np.random.default_rng(seed).choice(len(self.labels), size=len(self.labels), p=p / p.sum())
        yield from self.inner.train_batches(batch_size, seed, rows=rows)


def selection_metric(select: str, task, counts: np.ndarray | None) -> tuple[str, str]:
    """(dev metric that selects epochs, C and the best strategy; why), for `--select select`."""
    metrics = {"accuracy": "accuracy", "macro-f1": "macro_f1"}
    if select != "auto":
        if task.classes != "example":
            raise TunebenchError(
                f"--select {select}: {task.name} selects by {task.primary_metric}; leave --select out"
            )
        return metrics[select], "--select"
    if task.classes != "example" or counts is None:
        return task.primary_metric, "the task's metric"
    present = counts[counts > 0]
    ratio = present.max() / present.min()
    if ratio >= IMBALANCE_RATIO:
        return "macro_f1", f"training classes imbalanced {ratio:.1f}:1 (>= {IMBALANCE_RATIO:g}:1)"
    return task.primary_metric, f"training classes balanced within {ratio:.1f}:1"


def check_options(cfg, task, strategy: str) -> None:
    """One line when an imbalance option asks for classes the task does not have."""
    if task.classes is None and (cfg.class_weights != "none" or cfg.label_smoothing):
        flag = "--class-weights" if cfg.class_weights != "none" else "--label-smoothing"
        raise TunebenchError(
            f"{flag} ({strategy}): {task.name} has no classes to weigh or smooth; leave it out"
        )
    if cfg.sampler == "balanced" and task.classes != "example":
        raise TunebenchError(
            f"--sampler balanced ({strategy}): {task.name} has no single class per example to balance; "
            "use --class-weights instead" + (" (a class per word)" if task.classes == "token" else "")
        )

"""What every run of one compare shares (`RunInputs`: the task, the backbone, the data and its encoded
splits, each tokenized once) and what a frozen-feature strategy reads of it (`frozen_inputs`)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .extract import FrozenSource
from .training.config import TrainConfig


@dataclass
class RunInputs:
    """What every run of one compare shares: the task, the backbone, the data and its encoded splits."""

    task: object
    backbone: object
    bundle: object
    out_dir: Path | None
    max_length: int
    long_text: str = "truncate"  # or "chunk": windows of long texts, predictions pooled per text
    enc: dict = field(default_factory=dict)  # split name -> Encoded
    use_test: bool = True  # False for search trials: selection sees dev only, test is never scored
    metric: str | None = None  # the dev metric that selects (--select); None: the task's primary one
    metric_reason: str = ""  # why that metric (imbalance.selection_metric), kept in every run record
    prefetch: frozenset = frozenset()  # prefix depths later runs read (runner.prefix_depths)
    # inference cost per predictor architecture (training/inference.py)
    costs: dict = field(default_factory=dict)

    def __post_init__(self):
        for name in ("train", "dev", "test"):
            split = getattr(self.bundle, name)
            if split is not None and name not in self.enc:
                enc = self.task.encode(self.backbone, split, self.max_length, self.long_text)
                self.enc[name] = enc.with_columns(split)

    @property
    def splits(self) -> list[str]:
        return [s for s in self.enc if s != "test" or self.use_test]

    @property
    def selection(self) -> str:
        return self.metric or self.task.primary_metric

    def class_counts(self) -> np.ndarray | None:
        """Training examples per class (per word for token tasks); None when the task has no classes."""
        if self.task.classes is None:
            return None
        return self.task.class_counts(self.bundle.train, len(self.bundle.label_names))

    def dev_batches(self, n: int):
        """The task's batches of the first `n` dev rows (what inference is timed on)."""
        dev = self.enc["dev"]
        extra = None if dev.extra is None else dev.extra[:n]
        first = replace(dev, rows=dev.rows[:n], targets=None, groups=None, extra=extra)
        return self.task.batches(first, self.backbone)

    def dev_only(self) -> RunInputs:
        """The same inputs (encodings shared, nothing re-encoded) without the test split."""
        return replace(self, use_test=False)

    def split(self, name: str):
        return getattr(self.bundle, name)

    @property
    def columns(self):
        """The data's feature columns (data.columns.FeatureColumns, fitted on train), or None."""
        return getattr(self.bundle, "columns", None)

    def head(self, pooling: str, dropout: float):
        """The head a run of these inputs trains (the fusion head when the data has feature columns)."""
        task, hidden = self.task, self.backbone.hidden_size
        return task.head_for(hidden, task.num_outputs(self.bundle), pooling, dropout, self.columns)

    def labels(self, name: str) -> np.ndarray:
        """One label per example (not per chunk)."""
        return self.task.example_labels(self.split(name))

    def score(self, name: str, outputs, per_example: bool = False) -> dict:
        enc = self.enc[name]
        if per_example:  # outputs already one per example (bi-encoder strategies never chunk)
            enc = replace(enc, groups=None)
        return self.task.score(outputs, enc, self.split(name), self.bundle.label_names)

    def source(self, cfg: TrainConfig, prefetch: bool = True) -> FrozenSource:
        """Frozen forward passes of the backbone, cached under the output folder; its all-layer passes
        also write the `prefetch` depths' prefix states unless `prefetch` is False."""
        return FrozenSource(
            self.backbone,
            self.out_dir,
            self.max_length,
            cfg.eval_batch_size,
            cfg.device,
            cfg.precision,
            self.prefetch if prefetch else frozenset(),
        )

    def label_counts(self, split: str) -> dict[str, int] | None:
        if self.task.regression or self.task.token_level:
            return None
        counts = np.bincount(self.labels(split), minlength=len(self.bundle.label_names))
        return {name: int(c) for name, c in zip(self.bundle.label_names, counts)}

    def unknown_share(self, split: str = "train") -> float:
        """Share of the split's text tokens that only the unknown token could stand for (emoji, scripts
        the vocabulary lacks): text the model never reads."""
        tok = getattr(self.backbone, "tokenizer", None)
        rows = self.enc[split].rows
        if getattr(tok, "unk_token_id", None) is None or not rows or "input_ids" not in rows[0]:
            return 0.0
        markers = set(tok.all_special_ids) - {tok.unk_token_id}  # [CLS], [SEP], padding are not text
        ids = [i for r in rows for i in r["input_ids"] if i not in markers]
        return ids.count(tok.unk_token_id) / max(len(ids), 1)

    def truncated_share(self, split: str = "train") -> float:
        """Share of examples cut at max length (0 for windows: chunked texts, QA contexts lose nothing)."""
        enc = self.enc[split]
        if enc.groups is not None or not enc.rows or "input_ids" not in enc.rows[0]:  # windows cut nothing
            return 0.0
        return sum(len(r["input_ids"]) >= self.max_length for r in enc.rows) / max(len(enc.rows), 1)


def frozen_inputs(task, strategy, source: FrozenSource, enc, split, pooling: str, columns=None):
    """What a `features`-kind strategy reads for one split: the task's frozen inputs, or for pairwise
    strategies the combination of the two texts' embeddings; with feature columns (`columns`, fitted)
    those beside them, or only those for the `metadata` baseline."""
    if strategy.pairwise:
        return strategy.combine(*task.frozen_pairs(source, split, pooling, strategy.layers))
    if not strategy.reads_text:
        return columns.probe_matrix(enc.extra)
    X = task.frozen_inputs(source, enc, pooling, strategy.layers, sequences=strategy.sequences)
    return X if columns is None else np.concatenate([X, columns.probe_matrix(enc.extra)], 1)

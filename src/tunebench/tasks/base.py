"""What a task provides to the runner, the one training loop and the strategies.

A task owns everything that differs between text classification, NER, QA, sentence pairs and
images: reading its data, turning a split into model rows (`encode`), the head, the loss, and how
the model's outputs become metrics (`score`: chunk pooling, word alignment, span decoding...). The
runner, the loop and the strategies never look inside a task's data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ..backbones import load_backbone
from ..data.text import read_texts
from ..errors import TunebenchError
from ..estimators import LinearProbe, softmax
from ..registry import Registry
from ..training.batching import TensorBatches, TokenBatches
from ..training.config import TrainConfig
from .fusion import FusionHead


@dataclass
class Encoded:
    """One split as the model sees it.

    `rows` are model inputs (token ids, ...), one per model example. `targets` is what the loss compares
    the outputs with, aligned with rows: an (N,) array of class ids or floats, an (N, 2) array of span
    positions, or a list of per-token label lists. `groups[i]` is the example row i came from when one
    example became several rows (chunks of a long text, QA windows); None when rows are examples.
    `extra`: the split's feature columns per row, when the data has them (`with_columns`).
    """

    rows: list[dict]
    targets: Any = None
    groups: np.ndarray | None = None
    meta: dict = field(default_factory=dict)
    # (N, D) the feature columns of each row (--feature-cols; a text's columns repeated for its chunks)
    extra: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def num_examples(self) -> int:
        return (
            len(self.rows) if self.groups is None else int(self.groups.max()) + 1 if len(self.groups) else 0
        )

    def with_columns(self, split) -> Encoded:
        """Each row's feature columns from the split's transformed `extra` (per example), if it has them."""
        extra = getattr(split, "extra", None)
        if extra is not None:
            self.extra = extra if self.groups is None else extra[self.groups]
        return self


def pool_groups(outputs: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
    """Mean of the outputs of each example's rows: (rows, C) -> (examples, C)."""
    if groups is None:
        return outputs
    n = int(groups.max()) + 1
    sums = np.zeros((n,) + outputs.shape[1:], dtype=np.float64)
    np.add.at(sums, groups, outputs)
    counts = np.bincount(groups, minlength=n).reshape((n,) + (1,) * (outputs.ndim - 1))
    return (sums / np.maximum(counts, 1)).astype(np.float32)


class Task:
    """A task turns backbone outputs into predictions and scores them."""

    name: ClassVar[str]
    primary_metric: ClassVar[str]  # selection metric on dev; higher is better
    metric_scale: ClassVar[float] = 1.0  # its best value (100 for metrics reported x100)
    summary: ClassVar[str] = ""
    modality: ClassVar[str] = "text"  # "text" or "image": which backbones fit
    regression: ClassVar[bool] = False  # float targets: ridge instead of logistic regression
    token_level: ClassVar[bool] = False  # outputs per token (NER, QA) rather than per example
    # What the task's backbone and data offer; a strategy lists what it `requires` (with the reason), so
    # `applies` needs no table of strategy names. Text encoders: transformer blocks with attention.
    capabilities: ClassVar[frozenset[str]] = frozenset({"transformer-blocks", "attention"})
    # True: `compare` without --strategies runs every strategy that applies (images: the ladder is the
    # whole list of methods that fit a CNN), else the strategies' default ladder
    ladder_all: ClassVar[bool] = False
    # What `tunebench probe` fits per layer: "sentence" (a pooled vector per example), "word" (each word's
    # first sub-token), or None (no layer probe for this task)
    layer_probe: ClassVar[str | None] = None
    default_model: ClassVar[str] = "minilm"  # the packaged all-MiniLM-L6-v2
    # What the task's labels are classes of: "example" (one class per text or image: class weights,
    # label smoothing, the balanced sampler and macro-F1 selection apply), "token" (a class per word:
    # class weights and label smoothing apply), or None (scores, spans)
    classes: ClassVar[str | None] = None
    # The transformers Auto class and pipeline an export of this task loads with (exporting.py);
    # None: exports stay in tunebench's own layout (image backbones are not transformers models)
    auto_class: ClassVar[str | None] = None
    pipeline_tag: ClassVar[str | None] = None
    # Whether the task's loader reads --feature-cols (one row per example: the fusion head applies)
    feature_columns: ClassVar[bool] = False
    # The training schedule on this task. The strategies' own `train_defaults` are the published ones
    # for sentence classification (3 epochs); a task whose head is new per token, span or image and
    # that is trained on a few thousand examples needs more steps. Keys: "*" (every gradient strategy)
    # or a strategy name; "epochs" and "patience" are raised to at least the value, other fields are set.
    schedule: ClassVar[dict[str, dict[str, Any]]] = {}
    # strategy name -> its options on this task, below the user's --opt (e.g. the frozen-feature
    # classifier that the task's literature uses)
    strategy_options: ClassVar[dict[str, dict[str, str]]] = {}

    def train_defaults(self, strategy: str, defaults: dict[str, Any]) -> dict[str, Any]:
        """A strategy's `train_defaults` adjusted by this task's `schedule`."""
        out = dict(defaults)
        for key in ("*", strategy):
            for k, v in self.schedule.get(key, {}).items():
                if k in ("epochs", "patience"):
                    v = max(v, out.get(k, getattr(TrainConfig, k)))
                out[k] = v
        return out

    # -- data ------------------------------------------------------------------------------------
    def load_bundle(self, cfg):
        """`load`, after the checks every task shares (what this task's loader reads of the config)."""
        if getattr(cfg, "feature_cols", None) and not self.feature_columns:
            raise TunebenchError(
                f"--feature-cols: {self.name} does not read feature columns; they are for one label per text "
                "(text-classification, text-regression)"
            )
        return self.load(cfg)

    def load(self, cfg):
        """DataConfig -> a bundle with train/dev/test splits, `label_names`, `name`, `describe()`,
        `fingerprint()`."""
        raise NotImplementedError

    def encode(self, backbone, split, max_length: int, long_text: str = "truncate") -> Encoded:
        """Tokenize a split once; collate pads per batch."""
        raise NotImplementedError

    def load_backbone(self, name: str, trust_remote_code: bool = False, pooling: str = "auto"):
        """The pre-trained model for this task's inputs (text encoders here; images override)."""
        return load_backbone(name, trust_remote_code, pooling)

    def num_outputs(self, bundle) -> int:
        return len(bundle.label_names)

    def batches(self, enc: Encoded, backbone):
        """Training/eval batches of an encoded split: token rows padded per batch."""
        return TokenBatches(enc.rows, enc.targets, backbone.tokenizer.pad_token_id or 0, enc.extra)

    def capabilities_of(self, bundle=None) -> frozenset[str]:
        """What this task offers with this data (text tasks add "text-pairs" when the data has pairs;
        "feature-columns" when it has --feature-cols)."""
        columns = getattr(bundle, "columns", None) is not None
        return self.capabilities | ({"feature-columns"} if columns else set())

    def applies(self, strategy, bundle=None) -> str | None:
        """None when the strategy (a registered class) runs on this task and data, else the reason."""
        offered = self.capabilities_of(bundle)
        if "feature-columns" in offered and not strategy.reads_feature_columns:
            return "it reads the two texts only, not the --feature-cols columns"
        return next((why for need, why in strategy.requires.items() if need not in offered), None)

    # -- model -----------------------------------------------------------------------------------
    def build_head(self, hidden_size: int, num_labels: int, pooling: str, dropout: float) -> nn.Module:
        raise NotImplementedError

    def head_for(
        self, hidden_size: int, num_outputs: int, pooling: str, dropout: float, columns=None
    ) -> nn.Module:
        """The head a run trains: the task's own, or with feature columns (a fitted
        data.columns.FeatureColumns) the fusion head that reads them beside the pooled text."""
        if columns is None:
            return self.build_head(hidden_size, num_outputs, pooling, dropout)
        return FusionHead(hidden_size, num_outputs, pooling, dropout, columns.n_dense, columns.embedded)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor, **options) -> torch.Tensor:
        """The training loss; tasks with `classes` take `weight` (C,) and `label_smoothing` options."""
        raise NotImplementedError

    def class_counts(self, split, num_classes: int) -> np.ndarray:
        """(C,) training examples per class (per word for token tasks): what class weights and the
        balanced sampler are computed from."""
        return np.bincount(self.example_labels(split), minlength=num_classes)

    # -- evaluation ------------------------------------------------------------------------------
    def metrics(self, logits: np.ndarray, labels: np.ndarray, label_names: list[str]) -> dict[str, Any]:
        """Metrics of per-example outputs against per-example labels."""
        raise NotImplementedError

    def example_labels(self, split) -> np.ndarray:
        return np.asarray(split.labels)

    # -- frozen features (the `features` strategy) ---------------------------------------------------
    def frozen_inputs(self, source, enc: Encoded, pooling: str, layers: str, sequences: bool = False):
        """(N, D) frozen features, one per row of `enc`: pooled hidden states from `source` (an
        extract.FrozenSource). `sequences`: word vectors per sentence for a tagger (token tasks only)."""
        if sequences:
            raise TunebenchError(
                f"features: the BiLSTM and the learned layer weights are for token classification, not {self.name}"
            )
        return source.pooled(enc.rows, pooling, layers)

    def frozen_pairs(self, source, split, pooling: str, layers: str) -> tuple[np.ndarray, np.ndarray]:
        """(u, v): frozen embeddings of the first and the second texts of a split (text-pair tasks)."""
        raise TunebenchError(f"{self.name}: the bi-encoder strategies need text pairs")

    def frozen_targets(self, enc: Encoded):
        """The labels aligned with `frozen_inputs`."""
        return enc.targets

    def frozen_estimator(self, strategy, n_classes: int | None, seed: int, device: str = "cpu"):
        """The estimator the `features` strategy fits on this task's frozen inputs: the linear probe on
        pooled vectors here; token tasks return their tagger / span reader."""
        return LinearProbe(strategy.classifier, strategy.C, strategy.grid, self.regression, n_classes, seed)

    def head_on_cached_features(self) -> bool:
        """Whether head-only trains on `frozen_inputs` (computed once) instead of running the frozen
        backbone every epoch: needs a head that is a function of one frozen vector per target."""
        return not self.token_level

    def feature_batches(self, features, targets, extra=None):
        """Training-loop data over `frozen_inputs` for head-only on cached features (`extra`: the rows'
        feature columns, for the fusion head)."""
        return TensorBatches(features, targets, extra)

    # -- prediction (tunebench predict) -------------------------------------------------------------
    def read_inputs(self, path: str, **columns):
        """A split without labels from a user's file, for `encode`."""
        return read_texts(path, columns.get("text_col"), columns.get("text_pair_col"))

    def predictions(self, outputs, enc: Encoded | None, split, label_names: list[str]) -> list[dict]:
        """One dict per example: label and class probabilities (enc None: outputs are per example)."""
        probs = softmax(pool_groups(outputs, None if enc is None else enc.groups))
        return [
            {
                "label": label_names[int(p.argmax())],
                **{f"prob_{n}": f"{x:.6f}" for n, x in zip(label_names, p)},
            }
            for p in probs
        ]

    def score(self, outputs, enc: Encoded, split, label_names: list[str]) -> dict[str, Any]:
        """Metrics of the model's outputs for `enc`'s rows (chunks pooled per example first)."""
        return self.metrics(pool_groups(outputs, enc.groups), self.example_labels(split), label_names)


TASKS: Registry[type[Task]] = Registry("task")

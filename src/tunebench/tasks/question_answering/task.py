"""Extractive question answering (SQuAD v1.1): the answer is a span of the context, scored by SQuAD F1 / EM.

A question + its context become one or more windows (`qa_utils.prepare_features`, stride 128, clamped
for short max lengths): a context longer than the window is cut into overlapping windows, each
labelled with the token (start, end) of the answer, or (0, 0) = [CLS] when the answer is not wholly
inside. The head scores every token as answer start and end (a linear layer H -> 2, as in BERT's
SQuAD model); the loss is the mean of the start and end cross-entropies. At evaluation the best valid
span over all windows of a question (`qa_utils.postprocess`, 20 best starts x ends, at most 30 tokens)
is mapped back to context characters and scored with the official SQuAD v1.1 metric (0-100).

The data (`data/qa_bundle.py`): `xquad-en` split by article in file order (train = articles 1-32,
dev = 33-36, test = 37-48, 265 questions), or the user's SQuAD files (`--data train.json --dev dev.json
[--test test.json]`).

Frozen features (`features`): every layer's state at every token of each window, cached once
(`extract.token_states`), feed a small span reader (`strategies/reader.py`: learned layer weights,
context-to-question attention, a BiLSTM, start/end); `--opt features.classifier=logreg` is the linear
start/end layer on the mixed layers. `head` is a start/end layer on the last layer, trained on the
same cache. Not for QA: `cosine` and `bi-encoder` (they compare two separately
embedded texts).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ...data.qa_bundle import load_qa_data, read_questions
from ...extract import layer_stack
from ..base import TASKS, Encoded, Task
from .reader import ReaderEstimator, StateBatches, TokenStates
from .windows import postprocess, prepare_features, squad_metrics

STRIDE = 128  # context tokens shared by consecutive windows (clamped for short max lengths)
N_BEST = 20  # best starts x best ends tried per window
MAX_ANSWER_LENGTH = 30  # tokens
MASKED = -1e4  # start/end logit of padding: never chosen, ~0 probability (fits bf16)


# -------------------------------------------------------------------------------------------- model


class SpanHead(nn.Module):
    """Linear H -> 2 on every token: (B, T, H) -> (B, T, 2) start / end logits; padding gets MASKED."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.out = nn.Linear(hidden_size, 2)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        logits = self.out(hidden)
        return logits.masked_fill(attention_mask.unsqueeze(-1) == 0, MASKED)

    def from_pooled(
        self, features: torch.Tensor, attention_mask: torch.Tensor, segments=None
    ) -> torch.Tensor:
        """Head-only on cached windows: (B, T, 1, H) last-layer states -> (B, T, 2)."""
        return self(features[:, :, 0], attention_mask)


@TASKS.register("question-answering")
class QuestionAnswering(Task):
    primary_metric = "f1"
    metric_scale = 100.0
    summary = "extractive QA: the answer span in a context (SQuAD v1.1 JSON), SQuAD F1 / exact match"
    auto_class = "AutoModelForQuestionAnswering"
    pipeline_tag = "question-answering"
    token_level = True
    # XQuAD-en (826 training questions): 3 epochs leave full fine-tuning at 9 test F1; 10 epochs
    # reach 40 (still rising slowly; scripts/gpu-schedules.sh)
    schedule = {"*": {"epochs": 10, "patience": 3}}
    # frozen features: the span reader (attention + BiLSTM on the learned mix of the layers)
    strategy_options = {"features": {"classifier": "bilstm", "layers": "weighted-all"}}

    def load(self, cfg):
        return load_qa_data(cfg)

    def num_outputs(self, bundle) -> int:
        return 2

    def encode(self, backbone, split, max_length: int, long_text: str = "truncate") -> Encoded:
        """Windows of every question (always: a context is never cut off); `long_text` is not used."""
        tok = getattr(backbone, "tokenizer", backbone)
        features = prepare_features(tok, split.examples, max_length, stride=STRIDE)
        rows = []
        for f in features:
            row = {"input_ids": f["input_ids"]}
            if "token_type_ids" in f:
                row["token_type_ids"] = f["token_type_ids"]
            rows.append(row)
        targets = None
        if split.answered:
            targets = np.asarray([[f["start"], f["end"]] for f in features], dtype=np.int64).reshape(-1, 2)
        groups = np.asarray([f["example_index"] for f in features], dtype=np.int64)
        slim = [{"offsets": f["offsets"], "example_index": f["example_index"]} for f in features]
        return Encoded(rows, targets, groups, meta={"features": slim})

    # -- frozen features: every layer at every token of each window, for the span reader --------------
    def frozen_inputs(self, source, enc: Encoded, pooling: str, layers: str, sequences: bool = False):
        """TokenStates of every window (any `sequences`: a span needs the whole window)."""
        states = source.token_states(enc.rows, "windows", lambda i: slice(0, len(enc.rows[i]["input_ids"])))
        segments = np.concatenate(
            [[o is not None for o in f["offsets"]] for f in enc.meta["features"]] or [np.zeros(0)]
        ).astype(np.int8)
        lengths = np.asarray([len(r["input_ids"]) for r in enc.rows], dtype=np.int64)
        return TokenStates(layer_stack(states, layers), lengths, segments)

    def frozen_estimator(self, strategy, n_classes: int | None, seed: int, device: str = "cpu"):
        """The span reader (`logreg`: its linear start/end layer on the layer mix)."""
        hidden = strategy.lstm_hidden if strategy.classifier == "bilstm" else 0
        return ReaderEstimator(hidden, strategy.tagger_lr, strategy.tagger_epochs, self.loss, seed, device)

    def head_on_cached_features(self) -> bool:
        return True  # the start/end layer trains on the cached last-layer states of each window

    def feature_batches(self, features, targets, extra=None):
        return StateBatches(features, targets)

    def build_head(self, hidden_size: int, num_labels: int, pooling: str, dropout: float) -> nn.Module:
        return SpanHead(hidden_size)  # no dropout, as BertForQuestionAnswering

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean of the start and end cross-entropies over each window's tokens."""
        logits = logits.float()
        start = nn.functional.cross_entropy(logits[..., 0], labels[:, 0])
        end = nn.functional.cross_entropy(logits[..., 1], labels[:, 1])
        return (start + end) / 2

    # -- evaluation: best span per question ---------------------------------------------------------
    def answers(self, outputs, enc: Encoded, split) -> dict[str, dict[str, Any]]:
        """{question id: {"text", "score"}} from per-window (T_i, 2) outputs."""
        if not isinstance(outputs, list):
            raise TypeError("question answering needs per-window outputs: a list of (T_i, 2) arrays")
        return postprocess(
            [o[:, 0] for o in outputs],
            [o[:, 1] for o in outputs],
            enc.meta["features"],
            split.examples,
            n_best=N_BEST,
            max_answer_length=MAX_ANSWER_LENGTH,
        )

    def score(self, outputs, enc: Encoded, split, label_names: list[str]) -> dict[str, Any]:
        best = self.answers(outputs, enc, split)
        m = squad_metrics({k: v["text"] for k, v in best.items()}, split.examples)
        return {"f1": m["f1"], "exact_match": m["exact_match"]}

    def metrics(self, logits, labels, label_names):  # scored per question by `score`
        raise NotImplementedError("question answering is scored by `score` (SQuAD F1 / exact match)")

    # -- prediction -------------------------------------------------------------------------------------
    def read_inputs(self, path: str, **columns):
        return read_questions(path, allow_unanswered=True)

    def predictions(self, outputs, enc, split, label_names):
        best = self.answers(outputs, enc, split)
        return [
            {
                "id": ex["id"],
                "question": ex["question"],
                "answer": best[ex["id"]]["text"],
                "score": f"{best[ex['id']]['score']:.4f}",
            }
            for ex in split.examples
        ]

"""Extractive question answering (SQuAD v1.1): the answer is a span of the context, scored by SQuAD F1 / EM.

A question + its context become one or more windows (`qa_utils.prepare_features`, stride 128, clamped
for short max lengths): a context longer than the window is cut into overlapping windows, each
labelled with the token (start, end) of the answer, or (0, 0) = [CLS] when the answer is not wholly
inside. The head scores every token as answer start and end (a linear layer H -> 2, as in BERT's
SQuAD model); the loss is the mean of the start and end cross-entropies. At evaluation the best valid
span over all windows of a question (`qa_utils.postprocess`, 20 best starts x ends, at most 30 tokens)
is mapped back to context characters and scored with the official SQuAD v1.1 metric (0-100).

Named dataset `xquad-en` (XQuAD English, 48 Wikipedia articles, 1190 questions; one file): split by
article in file order, so questions about one paragraph never leak between splits.
  train = articles 1-32, dev = articles 33-36 (the last 4 of the first 36: model selection never sees
  the evaluation articles), test = articles 37-48 (265 questions).
User files: `--data train.json --dev dev.json [--test test.json]`; without --dev the last 10%
(`--dev-fraction`) of the training articles become dev. `--train-size N` keeps the first N training
questions in file order; `--eval-size N` keeps the first N dev / test questions.

Frozen features (`features`): every layer's state at every token of each window, cached once
(`extract.token_states`), feed a small span reader (`strategies/reader.py`: learned layer weights,
context-to-question attention, a BiLSTM, start/end); `--opt features.classifier=logreg` is the linear
start/end layer on the mixed layers. `head` is a start/end layer on the last layer, trained on the
same cache. Not for QA: `cosine` and `bi-encoder` (they compare two separately
embedded texts).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ...data.named import DATASETS, get_dataset, locate
from ...data.squad import SQUAD_HINT, _answer, _load_json, _need, read_squad, split_by_article
from ...errors import TunebenchError
from ...extract import layer_stack
from ..base import TASKS, Encoded, Task
from .reader import ReaderEstimator, StateBatches, TokenStates
from .windows import postprocess, prepare_features, squad_metrics

STRIDE = 128  # context tokens shared by consecutive windows (clamped for short max lengths)
N_BEST = 20  # best starts x best ends tried per window
MAX_ANSWER_LENGTH = 30  # tokens
MASKED = -1e4  # start/end logit of padding: never chosen, ~0 probability (fits bf16)
XQUAD_TRAIN_ARTICLES = 36  # xquad-en: the first 36 articles train (+ dev), the last 12 test
XQUAD_DEV_ARTICLES = 4  # the last 4 of those 36 are dev


@dataclass
class QASplit:
    """SQuAD examples (one dict per question, `data.squad.read_squad` keys), in file order."""

    examples: list[dict[str, Any]]
    source: str = ""

    def __len__(self) -> int:
        return len(self.examples)

    @property
    def articles(self) -> int:
        return len({ex["article"] for ex in self.examples})

    @property
    def answered(self) -> bool:
        return all(ex.get("answers") for ex in self.examples)

    def head(self, n: int) -> QASplit:
        return QASplit(self.examples[:n], self.source)


@dataclass
class QABundle:
    name: str
    train: QASplit
    dev: QASplit
    test: QASplit | None
    label_names: list[str]
    regression: bool = False
    note: str = ""  # how the splits were made

    def fingerprint(self) -> str:
        h = hashlib.sha256(json.dumps(self.label_names).encode())
        for name in ("train", "dev", "test"):
            s = getattr(self, name)
            rows = (
                None
                if s is None
                else [[ex["id"], ex["question"], ex["context"], ex["answers"]] for ex in s.examples]
            )
            h.update(json.dumps([name, rows]).encode())
        return h.hexdigest()[:16]

    def describe(self) -> str:
        parts = [
            f"{n} {len(s)} questions ({s.articles} articles)"
            for n in ("train", "dev", "test")
            if (s := getattr(self, n)) is not None
        ]
        return f"{self.name}: " + " · ".join(parts) + (f" · {self.note}" if self.note else "")


# -------------------------------------------------------------------------------------------- data


def read_questions(path, allow_unanswered: bool = False) -> QASplit:
    """A SQuAD v1.1 file as a split; with `allow_unanswered` (prediction) questions may have no answers."""
    if not allow_unanswered:
        return QASplit(read_squad(path), str(path))
    return QASplit(_read_unanswered(path), str(path))


def _read_unanswered(path) -> list[dict[str, Any]]:
    """read_squad's checks, except that `answers` may be missing or empty (questions to predict)."""
    root = _load_json(path)
    if not isinstance(root, dict) or not isinstance(root.get("data"), list):
        raise TunebenchError(f"{path}: no top-level 'data' list; {SQUAD_HINT}")
    examples, seen = [], set()
    for a, article in enumerate(root["data"]):
        title = article.get("title", "") if isinstance(article, dict) else ""
        for p, paragraph in enumerate(_need(path, f"article {a}", article, "paragraphs", list)):
            where = f"article {a} paragraph {p}"
            context = _need(path, where, paragraph, "context", str)
            for q, qa in enumerate(_need(path, where, paragraph, "qas", list)):
                qid = _need(path, f"{where} question {q}", qa, "id", str)
                qwhere = f"article {a} question id {qid!r}"
                if qid in seen:
                    raise TunebenchError(f"{path}: {qwhere} appears twice; ids must be unique")
                seen.add(qid)
                answers = qa.get("answers") if isinstance(qa, dict) else None
                examples.append(
                    {
                        "id": qid,
                        "title": str(title),
                        "article": a,
                        "context": context,
                        "question": _need(path, qwhere, qa, "question", str),
                        "answers": [_answer(path, qwhere, context, x) for x in answers or []],
                    }
                )
    return examples


def _split_off_last(split: QASplit, n_articles: int) -> tuple[QASplit, QASplit]:
    """(first articles, last `n_articles` articles) of a split, in file order."""
    first, last = split_by_article(split.examples, split.articles - n_articles)
    return QASplit(first, split.source), QASplit(last, split.source)


def load_qa_data(cfg) -> QABundle:
    """Named dataset (xquad-en) or SQuAD JSON files -> train / dev / test question splits."""
    note = ""
    if cfg.data in DATASETS and not Path(cfg.data).is_file():
        ds = get_dataset(cfg.data)
        if ds.task != "question-answering":
            raise TunebenchError(
                f"dataset '{cfg.data}' is for {ds.task}, not question-answering; pass --task {ds.task}"
            )
        name = ds.name
        full = read_questions(locate(ds, cfg.data_dir)["train"])
        if full.articles <= XQUAD_TRAIN_ARTICLES:
            raise TunebenchError(f"{full.source}: {full.articles} articles; expected 48 (XQuAD)")
        first, test = _split_off_last(full, full.articles - XQUAD_TRAIN_ARTICLES)
        train, dev = _split_off_last(first, XQUAD_DEV_ARTICLES)
        note = (
            f"split by article in file order: train = articles 1-{XQUAD_TRAIN_ARTICLES - XQUAD_DEV_ARTICLES}, "
            f"dev = articles {XQUAD_TRAIN_ARTICLES - XQUAD_DEV_ARTICLES + 1}-{XQUAD_TRAIN_ARTICLES}, "
            f"test = articles {XQUAD_TRAIN_ARTICLES + 1}-{full.articles}"
        )
        if cfg.dev:  # a user's dev file replaces the 4 dev articles, which go back to train
            train, dev = first, read_questions(cfg.dev)
        if cfg.test:
            test = read_questions(cfg.test)
    else:
        name = Path(cfg.data).name.split(".")[0]
        train = read_questions(cfg.data)
        dev = read_questions(cfg.dev) if cfg.dev else None
        test = read_questions(cfg.test) if cfg.test else None
        if cfg.test_fraction:
            raise TunebenchError(
                "--test-fraction: question answering does not split a test set off train; give --test FILE"
            )
        if dev is None:
            if cfg.dev_fraction <= 0 or train.articles < 2:
                raise TunebenchError(
                    f"{train.source}: no dev set and {train.articles} article(s) to split one off by article; "
                    "give --dev FILE"
                )
            n_dev = min(max(1, round(cfg.dev_fraction * train.articles)), train.articles - 1)
            train, dev = _split_off_last(train, n_dev)
            note = f"dev = the last {n_dev} training articles"
    if cfg.train_size is not None:
        if cfg.train_size > len(train):
            raise TunebenchError(
                f"train_size {cfg.train_size} is larger than the {len(train)} training questions in "
                f"{train.source}; lower --train-size or drop it"
            )
        train = train.head(cfg.train_size)
    if cfg.eval_size is not None:
        dev = dev.head(cfg.eval_size)
        test = None if test is None else test.head(cfg.eval_size)
    return QABundle(name, train, dev, test, ["start", "end"], note=note)


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
    summary = "extractive QA: the answer span in a context (SQuAD v1.1 JSON), SQuAD F1 / exact match"
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

    def feature_batches(self, features, targets):
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

"""Extractive QA plumbing: windowed features, span post-processing and the official SQuAD v1.1 metric.

Why these three belong together: a context longer than the model's window is cut into overlapping
windows (features); the model scores every token of every window as answer start / end; the best valid
span over all windows of a question is mapped back to context characters; and that text is scored
against the gold answers the way the official SQuAD v1.1 script does (EM / F1 after normalisation),
so numbers are comparable with published ones. The recipe follows Hugging Face `run_qa.py`.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from ...errors import TunebenchError

Offsets = list[tuple[int, int] | None]  # per token: (char_start, char_end) in the context, None elsewhere


# --------------------------------------------------------------------------- features


def prepare_features(
    tokenizer: Any,
    examples: Sequence[dict[str, Any]],
    max_length: int,
    stride: int = 128,
    max_query_length: int = 64,
) -> list[dict[str, Any]]:
    """One feature per (question, context window), in example order, unpadded.

    Feature keys: input_ids, token_type_ids (when the tokenizer makes them), start / end (token
    indexes of the first gold answer, both 0 = [CLS] when the answer is not wholly in this window),
    example_index, offsets (context tokens only; None for question and special tokens).
    """
    _require_fast(tokenizer)
    if stride < 0 or max_query_length < 1:
        raise TunebenchError(
            f"stride={stride}, max_query_length={max_query_length}: use stride >= 0 and max_query_length >= 1"
        )
    if not examples:
        return []
    questions, q_lens = _truncate_questions(tokenizer, [ex["question"] for ex in examples], max_query_length)
    special = tokenizer.num_special_tokens_to_add(pair=True)
    strides = [_clamp_stride(stride, max_length, q_len, special) for q_len in q_lens]
    by_example: list[list[dict[str, Any]]] = [[] for _ in examples]
    for group_stride in sorted(set(strides)):  # one batched tokenizer call per distinct stride (usually one)
        members = [i for i, s in enumerate(strides) if s == group_stride]
        for feature in _encode(tokenizer, examples, questions, members, max_length, group_stride):
            by_example[feature["example_index"]].append(feature)
    return [feature for features in by_example for feature in features]


def _require_fast(tokenizer: Any) -> None:
    if not getattr(tokenizer, "is_fast", False):
        raise TunebenchError(
            f"QA features need a fast (Rust `tokenizers`) tokenizer for offset mappings and overflowing "
            f"windows, got {type(tokenizer).__name__}; use a model that ships tokenizer.json or "
            "AutoTokenizer.from_pretrained(..., use_fast=True)"
        )


def _truncate_questions(
    tokenizer: Any, questions: list[str], max_query_length: int
) -> tuple[list[str], list[int]]:
    """Cut each question after its `max_query_length`-th token (in characters); return texts and token counts."""
    texts = [q.lstrip() for q in questions]  # leading spaces break some tokenizers' offsets (run_qa.py)
    enc = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
    long = [i for i, ids in enumerate(enc["input_ids"]) if len(ids) > max_query_length]
    for i in long:
        texts[i] = texts[i][: enc["offset_mapping"][i][max_query_length - 1][1]]
    lens = [len(ids) for ids in enc["input_ids"]]
    if long:  # re-count: a cut text can tokenize a little differently from the prefix of the full one
        recount = tokenizer([texts[i] for i in long], add_special_tokens=False)["input_ids"]
        for i, ids in zip(long, recount):
            lens[i] = len(ids)
    return texts, lens


def _clamp_stride(stride: int, max_length: int, q_len: int, special: int) -> int:
    """The overlap must be smaller than the room left for context, or the windows could not advance."""
    room = max_length - q_len - special
    if room < 1:
        raise TunebenchError(
            f"max_length={max_length} leaves {max(room, 0)} tokens for the context after a {q_len}-token "
            f"question and {special} special tokens; raise max_length or lower max_query_length"
        )
    return min(stride, room - 1)


def _encode(
    tokenizer: Any,
    examples: Sequence[dict[str, Any]],
    questions: list[str],
    members: list[int],
    max_length: int,
    stride: int,
) -> list[dict[str, Any]]:
    enc = tokenizer(
        [questions[i] for i in members],
        [examples[i]["context"] for i in members],
        truncation="only_second",
        max_length=max_length,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding=False,
    )
    features = []
    for w, ids in enumerate(enc["input_ids"]):
        example_index = members[enc["overflow_to_sample_mapping"][w]]
        sequence = enc.sequence_ids(w)
        offsets: Offsets = [
            (int(o[0]), int(o[1])) if s == 1 else None for o, s in zip(enc["offset_mapping"][w], sequence)
        ]
        start, end = _label(offsets, examples[example_index].get("answers") or [])
        feature: dict[str, Any] = {
            "input_ids": list(ids),
            "start": start,
            "end": end,
            "example_index": example_index,
            "offsets": offsets,
        }
        if "token_type_ids" in enc:
            feature["token_type_ids"] = list(enc["token_type_ids"][w])
        features.append(feature)
    return features


def _label(offsets: Offsets, answers: list[dict[str, Any]]) -> tuple[int, int]:
    """Token (start, end) of the first answer in this window; (0, 0) when it is not wholly inside."""
    context = [i for i, o in enumerate(offsets) if o is not None]
    if not answers or not context:
        return 0, 0
    start_char = answers[0]["answer_start"]
    end_char = start_char + len(answers[0]["text"])
    if offsets[context[0]][0] > start_char or offsets[context[-1]][1] < end_char:
        return 0, 0
    start = max(i for i in context if offsets[i][0] <= start_char)
    end = min(i for i in context if offsets[i][1] >= end_char)
    return start, end


# --------------------------------------------------------------------------- post-processing


def postprocess(
    start_logits: Sequence[np.ndarray],
    end_logits: Sequence[np.ndarray],
    features: Sequence[dict[str, Any]],
    examples: Sequence[dict[str, Any]],
    n_best: int = 20,
    max_answer_length: int = 30,
) -> dict[str, dict[str, Any]]:
    """{example id: {"text", "score"}}: the best valid span over all windows of each question.

    start_logits[i], end_logits[i]: (T_i,) for features[i] (T_i = len(input_ids)). A span is valid when
    both ends are context tokens, end >= start and it has at most `max_answer_length` tokens; its score is
    start_logit + end_logit. No valid span -> {"text": "", "score": -inf}.
    """
    if not len(start_logits) == len(end_logits) == len(features):
        raise ValueError(
            f"{len(start_logits)} start / {len(end_logits)} end logit arrays for {len(features)} features"
        )
    best: dict[str, dict[str, Any]] = {ex["id"]: {"text": "", "score": -math.inf} for ex in examples}
    for i, feature in enumerate(features):
        starts = np.asarray(start_logits[i], dtype=np.float64).reshape(-1)  # (T,)
        ends = np.asarray(end_logits[i], dtype=np.float64).reshape(-1)  # (T,)
        if not len(starts) == len(ends) == len(feature["offsets"]):
            raise ValueError(
                f"feature {i}: {len(starts)} start / {len(ends)} end logits for {len(feature['offsets'])} tokens"
            )
        span = _best_span(starts, ends, feature["offsets"], n_best, max_answer_length)
        example = examples[feature["example_index"]]
        if span is not None and span[0] > best[example["id"]]["score"]:
            score, char_start, char_end = span
            best[example["id"]] = {"text": example["context"][char_start:char_end], "score": score}
    return best


def _best_span(
    starts: np.ndarray, ends: np.ndarray, offsets: Offsets, n_best: int, max_answer_length: int
) -> tuple[float, int, int] | None:
    """(score, char_start, char_end) of the best valid span among the top-n_best starts x ends."""
    top_starts = np.argsort(-starts, kind="stable")[:n_best]  # (n_best,) ties -> earlier token
    top_ends = np.argsort(-ends, kind="stable")[:n_best]  # (n_best,)
    best: tuple[float, int, int] | None = None
    for s in top_starts:
        for e in top_ends:
            if offsets[s] is None or offsets[e] is None or e < s or e - s + 1 > max_answer_length:
                continue
            score = float(starts[s] + ends[e])
            if best is None or score > best[0]:
                best = (score, offsets[s][0], offsets[e][1])
    return best


# --------------------------------------------------------------------------- official SQuAD v1.1 metric


def normalize_answer(text: str) -> str:
    """Lower case, drop punctuation, drop the articles a / an / the, collapse whitespace (SQuAD v1.1)."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


_PUNCTUATION = frozenset(string.punctuation)


def exact_match(prediction: str, gold: str) -> float:
    """1.0 when the normalised strings are equal, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str) -> float:
    """Bag-of-tokens F1 = 2PR / (P + R) on normalised text; 0.0 without a common token."""
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    common = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if common == 0:
        return 0.0
    precision = common / len(pred_tokens)
    recall = common / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def squad_metrics(predictions: dict[str, str], examples: Sequence[dict[str, Any]]) -> dict[str, float]:
    """{"exact_match", "f1"} in 0-100: best over each question's gold answers, mean over questions.

    A question without a prediction counts as the empty answer.
    """
    if not examples:
        raise ValueError("squad_metrics needs at least one example")
    em = f1 = 0.0
    for ex in examples:
        prediction = predictions.get(ex["id"], "")
        golds = [a["text"] for a in ex["answers"]]
        em += max((exact_match(prediction, g) for g in golds), default=0.0)
        f1 += max((token_f1(prediction, g) for g in golds), default=0.0)
    return {"exact_match": 100.0 * em / len(examples), "f1": 100.0 * f1 / len(examples)}

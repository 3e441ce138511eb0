"""Cross-checks against the reference implementations: SQuAD v1.1's official evaluation rules, and the
linear warmup schedule of transformers (seqeval's entity F1 is checked in test_ner_utils.py)."""

from __future__ import annotations

import random
import re
import string
from collections import Counter

import pytest
import torch
from transformers import get_linear_schedule_with_warmup

from tunebench.tasks.question_answering.windows import squad_metrics
from tunebench.training.optim import lr_lambda


# -- the official SQuAD v1.1 evaluate-v1.1.py, its functions as published -----------------------------
def official_normalize_answer(s):
    def remove_articles(text):
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    def lower(text):
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s))))


def official_f1_score(prediction, ground_truth):
    prediction_tokens = official_normalize_answer(prediction).split()
    ground_truth_tokens = official_normalize_answer(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    return (2 * precision * recall) / (precision + recall)


def official_exact_match_score(prediction, ground_truth):
    return official_normalize_answer(prediction) == official_normalize_answer(ground_truth)


def official_evaluate(examples, predictions):
    f1 = exact_match = total = 0
    for ex in examples:
        total += 1
        ground_truths = [a["text"] for a in ex["answers"]]
        prediction = predictions.get(ex["id"], "")  # the script skips (and warns); we score "" as 0
        exact_match += max(official_exact_match_score(prediction, g) for g in ground_truths)
        f1 += max(official_f1_score(prediction, g) for g in ground_truths)
    return {"exact_match": 100.0 * exact_match / total, "f1": 100.0 * f1 / total}


WORDS = [
    "the",
    "a",
    "an",
    "The",
    "Denver",
    "Broncos",
    "1,000",
    "café",
    "U.S.",
    "state-of-the-art",
    "(1886)",
    "an",
]


def random_text(rng: random.Random) -> str:
    words = rng.choices(WORDS + ["Theater", "answer", "ANSWER", "x"], k=rng.randint(0, 6))
    return (
        rng.choice(["", " ", "  "]).join([""])
        + rng.choice([" ", "  ", "\t"]).join(words)
        + rng.choice(["", ".", "!", " "])
    )


def test_squad_metrics_equal_the_official_script_on_random_cases():
    rng = random.Random(0)
    examples, predictions = [], {}
    for i in range(500):
        golds = [random_text(rng) or "x" for _ in range(rng.randint(1, 3))]
        examples.append({"id": str(i), "answers": [{"text": g} for g in golds]})
        if rng.random() < 0.9:  # some questions unanswered
            predictions[str(i)] = rng.choice([random_text(rng), golds[0], golds[0].upper() + "."])
    ours, official = squad_metrics(predictions, examples), official_evaluate(examples, predictions)
    assert ours["exact_match"] == pytest.approx(official["exact_match"])
    assert ours["f1"] == pytest.approx(official["f1"])
    assert 5 < ours["exact_match"] < 95  # the cases are neither all right nor all wrong


@pytest.mark.parametrize(("total", "ratio"), [(100, 0.1), (37, 0.06), (10, 0.0)])
def test_linear_warmup_matches_transformers_one_step_ahead(total, ratio):
    """transformers' schedule gives the first step lr 0 (a wasted update); ours starts at 1/warmup, i.e.
    ours at step s equals transformers' at step s + 1 during warmup; after warmup they are equal."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    warmup = int(total * ratio)
    hf = get_linear_schedule_with_warmup(opt, warmup, total)
    reference = []
    for _ in range(total + 1):
        reference.append(opt.param_groups[0]["lr"])
        opt.step()
        hf.step()
    ours = lr_lambda("linear", total, ratio)
    for step in range(total):
        expected = reference[step + 1] if step < warmup else reference[step]
        assert ours(step) == pytest.approx(expected), step

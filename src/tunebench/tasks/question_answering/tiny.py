"""The common test suite's fixture: SQuAD articles whose questions ask for the positive or the negative word."""

from __future__ import annotations

import json
import random
from pathlib import Path

from ...data import DataConfig
from ...testing import FILLER, NEGATIVE, POSITIVE, Tiny, make_tiny_bert

QUESTIONS = {"the story was good": POSITIVE, "the story was bad": NEGATIVE}


def squad_articles(n_articles: int, seed: int, paragraphs: int = 4) -> dict:
    """SQuAD v1.1 JSON: contexts of 12-44 filler words with one positive and one negative word; the
    question 'the story was good' asks for the positive word, '... bad' for the negative one."""
    rng = random.Random(seed)
    data = []
    for a in range(n_articles):
        paras = []
        for p in range(paragraphs):
            words = rng.choices(FILLER, k=rng.randint(12, 44))
            for vocab in QUESTIONS.values():
                words.insert(rng.randrange(len(words) + 1), rng.choice(vocab))
            picks = {q: next(i for i, w in enumerate(words) if w in v) for q, v in QUESTIONS.items()}
            context = " ".join(words)
            qas = []
            for k, (q, i) in enumerate(picks.items()):
                start = len(" ".join(words[:i])) + (1 if i else 0)
                qas.append(
                    {
                        "id": f"s{seed}a{a}p{p}q{k}",
                        "question": q,
                        "answers": [{"text": words[i], "answer_start": start}],
                    }
                )
            paras.append({"context": context, "qas": qas})
        data.append({"title": f"article {a}", "paragraphs": paras})
    return {"version": "1.1", "data": data}


def write_squad(path: Path, obj: dict) -> str:
    path.write_text(json.dumps(obj))
    return str(path)


def tiny(root: Path) -> Tiny:
    data = DataConfig(
        data=write_squad(root / "train.json", squad_articles(10, 1)),
        dev=write_squad(root / "dev.json", squad_articles(3, 2)),
        test=write_squad(root / "test.json", squad_articles(3, 3)),
    )
    return Tiny(
        data, str(make_tiny_bert(root / "tiny-bert")), max_length=48, fit={"epochs": 8, "batch_size": 8}
    )

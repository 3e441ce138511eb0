"""The common test suite's fixture: CoNLL sentences where positive words are people, negative ones places."""

from __future__ import annotations

import random
from pathlib import Path

from ...data import DataConfig
from ...testing import FILLER, NEGATIVE, POSITIVE, Tiny, make_tiny_bert


def write_conll(path: Path, n: int, seed: int) -> str:
    """Sentences of filler words with 'people' (positive words, PER; two in a row = one entity) and
    'places' (negative words, LOC); a -DOCSTART- line first, as in CoNLL-2003."""
    rng = random.Random(seed)
    lines = ["-DOCSTART- -X- -X- O", ""]
    for _ in range(n):
        words = []
        for _ in range(rng.randint(3, 8)):
            r = rng.random()
            if r < 0.2:
                words.append((rng.choice(POSITIVE), "B-PER"))
                if rng.random() < 0.5:
                    words.append((rng.choice(POSITIVE), "I-PER"))
            elif r < 0.35:
                words.append((rng.choice(NEGATIVE), "B-LOC"))
            else:
                words.append((rng.choice(FILLER), "O"))
        lines += [f"{w} NN O {t}" for w, t in words] + [""]
    path.write_text("\n".join(lines))
    return str(path)


def tiny(root: Path) -> Tiny:
    data = DataConfig(
        data=write_conll(root / "train.txt", 80, 1),
        dev=write_conll(root / "dev.txt", 30, 2),
        test=write_conll(root / "test.txt", 30, 3),
    )
    # the BiLSTM tagger on a mix that includes the tiny random model's embeddings (where its word
    # identity is; the task's default weighted-all mixes the blocks only)
    options = {"features": {"layers": "weighted-last-4", "tagger_lr": "1e-2"}}
    return Tiny(data, str(make_tiny_bert(root / "tiny-bert")), options=options)

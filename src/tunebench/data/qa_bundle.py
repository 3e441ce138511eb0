"""Question answering data: SQuAD v1.1 questions (`squad.py`) as train / dev / test splits, always cut
by article so that questions about one paragraph never leak between splits.

Named dataset `xquad-en` (XQuAD English, 48 Wikipedia articles, 1190 questions; one file), split in
file order: train = articles 1-32, dev = articles 33-36 (the last 4 of the first 36: model selection
never sees the evaluation articles), test = articles 37-48. User files: without --dev the last 10%
(`--dev-fraction`) of the training articles become dev. `--train-size N` keeps the first N training
questions in file order; `--eval-size N` keeps the first N dev / test questions.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import TunebenchError
from .named import DATASETS, get_dataset, locate
from .splits import check_train_size
from .squad import read_squad, read_squad_unanswered, split_by_article

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


def read_questions(path, allow_unanswered: bool = False) -> QASplit:
    """A SQuAD v1.1 file as a split; with `allow_unanswered` (prediction) questions may have no answers."""
    if not allow_unanswered:
        return QASplit(read_squad(path), str(path))
    return QASplit(read_squad_unanswered(path), str(path))


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
        check_train_size(cfg.train_size, len(train), "training questions", train.source)
        train = train.head(cfg.train_size)
    if cfg.eval_size is not None:
        dev = dev.head(cfg.eval_size)
        test = None if test is None else test.head(cfg.eval_size)
    return QABundle(name, train, dev, test, ["start", "end"], note=note)

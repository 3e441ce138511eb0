"""SQuAD v1.1 reader: flatten articles -> paragraphs -> questions into one example per question.

Why a dedicated reader: extractive QA needs the exact character offset of each gold answer in its
context, and a wrong `answer_start` silently produces bad training labels. So every answer is checked
against its context here, at load time, and a mismatch stops with the question id and the offset.
Each example remembers its article index, so that splits are made by article (questions about the
same paragraph never leak between train and evaluation).
"""

from __future__ import annotations

import gzip
import json
import os
import zlib
from pathlib import Path
from typing import Any

from ..errors import TunebenchError
from .readers import describe_path

SQUAD_HINT = 'expected SQuAD v1.1 JSON: {"data": [{"title", "paragraphs": [{"context", "qas": [...]}]}]}'


def read_squad(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read a SQuAD v1.1 `.json` / `.json.gz` file into one dict per question, in file order.

    Example keys: id, title, article (index of the article in the file), context, question,
    answers ([{"text", "answer_start"}, ...], every answer verified against the context).
    """
    root = _load_json(path)
    if not isinstance(root, dict) or not isinstance(root.get("data"), list):
        raise TunebenchError(f"{path}: no top-level 'data' list; {SQUAD_HINT}")
    examples: list[dict[str, Any]] = []
    seen: set[str] = set()
    for a, article in enumerate(root["data"]):
        for example in _article_examples(path, a, article):
            if example["id"] in seen:
                raise TunebenchError(
                    f"{path}: article {a}: question id {example['id']!r} appears twice; ids must be unique"
                )
            seen.add(example["id"])
            examples.append(example)
    return examples


def read_squad_unanswered(path: str | os.PathLike) -> list[dict[str, Any]]:
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


def split_by_article(
    examples: list[dict[str, Any]], train_articles: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, rest): questions of the first `train_articles` articles (file order) vs the others.

    Deterministic, no shuffling: with a fixed file the split is reproducible everywhere.
    """
    articles = sorted({ex["article"] for ex in examples})
    if not 0 < train_articles < len(articles):
        raise TunebenchError(
            f"train_articles={train_articles} but the data has {len(articles)} articles with questions; "
            f"choose a number from 1 to {len(articles) - 1}"
        )
    train_ids = set(articles[:train_articles])
    train = [ex for ex in examples if ex["article"] in train_ids]
    rest = [ex for ex in examples if ex["article"] not in train_ids]
    return train, rest


def _load_json(path: str | os.PathLike) -> Any:
    p = Path(path)
    if not p.exists():
        raise TunebenchError(f"file not found: {describe_path(path)}")
    if p.is_dir():
        raise TunebenchError(f"{path} is a directory; give the path of a SQuAD .json file inside it")
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise TunebenchError(f"{path}: cannot read the file ({e.strerror or e})") from None
    if p.name.lower().endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise TunebenchError(
                f"{path}: not a valid gzip file ({e}); re-compress it or drop the .gz extension"
            ) from None
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as e:
        raise TunebenchError(f"{path}: byte {e.start} is not valid UTF-8; save the file as UTF-8") from None
    except json.JSONDecodeError as e:
        raise TunebenchError(
            f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg}); {SQUAD_HINT}"
        ) from None


def _need(path: str | os.PathLike, where: str, obj: Any, key: str, kind: type) -> Any:
    """obj[key], which must exist and be of `kind`; otherwise a one-line error naming `where`."""
    if not isinstance(obj, dict) or key not in obj:
        raise TunebenchError(f"{path}: {where}: missing key '{key}'; {SQUAD_HINT}")
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TunebenchError(
            f"{path}: {where}: '{key}' must be {kind.__name__}, got {type(value).__name__}; {SQUAD_HINT}"
        )
    return value


def _article_examples(path: str | os.PathLike, a: int, article: Any) -> list[dict[str, Any]]:
    where = f"article {a}"
    title = article.get("title", "") if isinstance(article, dict) else ""
    out = []
    for p, paragraph in enumerate(_need(path, where, article, "paragraphs", list)):
        pwhere = f"{where} paragraph {p}"
        context = _need(path, pwhere, paragraph, "context", str)
        for q, qa in enumerate(_need(path, pwhere, paragraph, "qas", list)):
            qid = _need(path, f"{pwhere} question {q}", qa, "id", str)
            qwhere = f"{where} question id {qid!r}"
            question = _need(path, qwhere, qa, "question", str)
            answers = [
                _answer(path, qwhere, context, ans) for ans in _need(path, qwhere, qa, "answers", list)
            ]
            if not answers:
                raise TunebenchError(
                    f"{path}: {qwhere}: no answers; SQuAD v1.1 needs at least one "
                    "(unanswerable SQuAD 2.0 questions are not supported), add one or drop the question"
                )
            out.append(
                {
                    "id": qid,
                    "title": str(title),
                    "article": a,
                    "context": context,
                    "question": question,
                    "answers": answers,
                }
            )
    return out


def _answer(path: str | os.PathLike, where: str, context: str, ans: Any) -> dict[str, Any]:
    text = _need(path, where, ans, "text", str)
    start = _need(path, where, ans, "answer_start", int)
    if not text.strip():
        raise TunebenchError(f"{path}: {where}: empty answer text; give the answer span or drop the answer")
    if context[start : start + len(text)] != text or start < 0:
        found = context.find(text)
        fix = (
            f"the text occurs at offset {found}; fix answer_start"
            if found >= 0
            else "the text does not occur in the context; fix the answer text"
        )
        raise TunebenchError(
            f"{path}: {where}: answer {text!r} not found at answer_start {start} "
            f"(the context there reads {context[max(start, 0) : max(start, 0) + len(text)]!r}); {fix}"
        )
    return {"text": text, "answer_start": start}

"""Read token-classification data (CoNLL-2003 style NER) and normalise its tags.

Two input shapes are accepted, optionally gzipped:

* CoNLL column files (any suffix): one token per line, whitespace-separated columns, the token in
  the first column and the tag in the last, a blank line between sentences, `-DOCSTART-` lines
  ignored. This is the shape of the CoNLL-2003 release and of most NER corpora.
* JSON Lines (`.jsonl`, `.ndjson`): one sentence per line, `{"tokens": [...], "tags": [...]}`;
  `ner_tags` is accepted for `tags` because that is what Hugging Face exports use.

Tags must be IOB1 or IOB2 (`O`, `B-TYPE`, `I-TYPE`); `to_iob2` turns both into IOB2 so a model
always learns one scheme, and `label_list` fixes the label order so label ids are reproducible.
Every bad input becomes a one-line `TunebenchError` naming the file and line, because these files
come from users and a `KeyError` deep inside a collate function tells them nothing.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import zlib
from pathlib import Path
from typing import Any

from ..errors import TunebenchError

DOCSTART = "-DOCSTART-"
JSONL_SUFFIXES = (".jsonl", ".ndjson")
TAG_KEYS = ("tags", "ner_tags")  # first one present wins

# `O`, or a B-/I- prefix with a non-empty type. Anything else (E-, S-, L-, U-, bare types) is rejected
# up front rather than silently mis-chunked by the metrics.
_TAG_RE = re.compile(r"O|[BI]-\S+")
_SCHEME_HINT = "only IOB1/IOB2 tags (O, B-TYPE, I-TYPE) are supported; convert IOBES/BILOU tags to IOB2 first"

Sentences = tuple[list[list[str]], list[list[str]]]


def read_token_file(path: str | Path) -> Sentences:
    """Read a CoNLL column file or a JSON Lines file into (token sentences, tag sentences).

    Tags are returned as written (IOB1 or IOB2); pass each sentence through `to_iob2` to normalise.
    """
    name = Path(path).name.lower()
    gz = name.endswith(".gz")
    if gz:
        name = name[:-3]
    text = _read_text(path, gz)
    if Path(name).suffix in JSONL_SUFFIXES:
        tokens, tags = _parse_jsonl(path, text)
    else:
        tokens, tags = _parse_columns(path, text)
    if not tokens:
        raise TunebenchError(
            f"{path}: no sentences found; expected 'token ... tag' lines with a blank line between "
            'sentences, or JSON Lines with "tokens" and "tags"'
        )
    return tokens, tags


def is_valid_tag(tag: str) -> bool:
    """True for `O`, `B-TYPE` and `I-TYPE` (IOB1/IOB2)."""
    return _TAG_RE.fullmatch(tag) is not None


def to_iob2(tags: list[str]) -> list[str]:
    """Convert IOB1 tags to IOB2; IOB2 input comes back unchanged.

    In IOB1 a chunk usually starts with `I-X` and `B-X` only separates two adjacent chunks of one
    type. IOB2 starts every chunk with `B-X`, so an `I-X` that opens a chunk (after `O`, at the start,
    or after another type) becomes `B-X`. Both readings give the same chunks, which is why the
    conversion is safe to apply to data of unknown scheme.
    """
    out: list[str] = []
    prev_type: str | None = None  # entity type of the previous tag; None for O / sentence start
    for tag in tags:
        if not is_valid_tag(tag):
            raise ValueError(f"tag {tag!r}: {_SCHEME_HINT}")
        if tag == "O":
            out.append(tag)
            prev_type = None
            continue
        prefix, etype = tag[0], tag[2:]
        out.append(f"B-{etype}" if prefix == "I" and prev_type != etype else tag)
        prev_type = etype
    return out


def label_list(tag_sentences: list[list[str]]) -> list[str]:
    """Deterministic label order: `O`, then per entity type (sorted) `B-TYPE`, `I-TYPE`.

    Both `B-` and `I-` are listed for every type seen, and `O` always: after `to_iob2` a model can
    predict any of them, and a split whose only `PER` tags are `I-PER` must not give a label set
    (and so label ids) different from a split that also has `B-PER`.
    """
    types: set[str] = set()
    for sentence in tag_sentences:
        for tag in sentence:
            if not is_valid_tag(tag):
                raise ValueError(f"tag {tag!r}: {_SCHEME_HINT}")
            if tag != "O":
                types.add(tag[2:])
    return ["O"] + [f"{p}-{t}" for t in sorted(types) for p in ("B", "I")]


# --- reading ---------------------------------------------------------------------------------------


def _describe_path(path: str | os.PathLike) -> str:
    """The path as given, plus the CWD when it is relative: "not found" is useless without it."""
    p = os.fspath(path)
    return p if os.path.isabs(p) else f"{p} (relative to {os.getcwd()})"


def _read_text(path: str | os.PathLike, gz: bool) -> str:
    """Whole file as text. Bytes are read first so a decoding error can name its line."""
    p = Path(path)
    if not p.exists():
        raise TunebenchError(f"file not found: {_describe_path(path)}")
    if p.is_dir():
        raise TunebenchError(f"{path} is a directory; give the path of a data file inside it")
    try:
        data = p.read_bytes()
    except OSError as e:
        raise TunebenchError(f"{path}: cannot read the file ({e.strerror or e})") from None
    if gz:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise TunebenchError(
                f"{path}: not a valid gzip file ({e}); re-compress it or drop the .gz extension"
            ) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise TunebenchError(
            f"{path} line {line}: byte {data[e.start : e.start + 1]!r} is not valid UTF-8; "
            "save the file as UTF-8"
        ) from None
    return text.removeprefix("\ufeff")  # a BOM would otherwise glue itself to the first token


def _check_tag(path: str | os.PathLike, line: int, tag: str) -> None:
    if not is_valid_tag(tag):
        raise TunebenchError(f"{path} line {line}: tag {tag!r} is not O, B-TYPE or I-TYPE; {_SCHEME_HINT}")


def _parse_columns(path: str | os.PathLike, text: str) -> Sentences:
    token_sents: list[list[str]] = []
    tag_sents: list[list[str]] = []
    tokens: list[str] = []
    tags: list[str] = []

    def flush() -> None:
        # Only non-empty sentences: runs of blank lines and the blank after -DOCSTART- add nothing.
        nonlocal tokens, tags
        if tokens:
            token_sents.append(tokens)
            tag_sents.append(tags)
            tokens, tags = [], []

    for n, line in enumerate(text.split("\n"), start=1):
        fields = line.split()  # any whitespace; also drops a Windows \r
        if not fields:
            flush()
            continue
        if fields[0].startswith(DOCSTART):
            flush()  # a document boundary is always a sentence boundary
            continue
        if len(fields) < 2:
            raise TunebenchError(
                f"{path} line {n}: expected 'token ... tag' (at least 2 columns), got 1 column; "
                "separate token and tag with a space or tab"
            )
        _check_tag(path, n, fields[-1])
        tokens.append(fields[0])
        tags.append(fields[-1])
    flush()  # the last sentence needs no trailing blank line
    return token_sents, tag_sents


def _parse_jsonl(path: str | os.PathLike, text: str) -> Sentences:
    token_sents: list[list[str]] = []
    tag_sents: list[list[str]] = []
    for n, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise TunebenchError(
                f"{path} line {n}: malformed JSON ({e.msg} at column {e.colno}); "
                "each line must be one JSON object"
            ) from None
        tokens, tags = _jsonl_record(path, n, rec)
        if tokens:  # like blank lines in column files, an empty sentence is not a sentence
            token_sents.append(tokens)
            tag_sents.append(tags)
    return token_sents, tag_sents


def _jsonl_record(path: str | os.PathLike, n: int, rec: Any) -> tuple[list[str], list[str]]:
    """Validate one JSON Lines object and return its (tokens, tags)."""
    where = f"{path} line {n}"
    need = 'each line needs "tokens" and "tags" (or "ner_tags") lists'
    if not isinstance(rec, dict):
        raise TunebenchError(f"{where}: expected a JSON object, got {type(rec).__name__}; {need}")
    if "tokens" not in rec:
        raise TunebenchError(f'{where}: missing "tokens"; {need}')
    tag_key = next((k for k in TAG_KEYS if k in rec), None)
    if tag_key is None:
        raise TunebenchError(f'{where}: missing "tags"; {need}')
    tokens, tags = rec["tokens"], rec[tag_key]
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
        raise TunebenchError(f'{where}: "tokens" must be a list of strings; {need}')
    if not isinstance(tags, list):
        raise TunebenchError(f'{where}: "{tag_key}" must be a list of strings; {need}')
    for tag in tags:
        # bool is an int subclass; both mean the file holds label ids, not names.
        if isinstance(tag, int):
            raise TunebenchError(
                f'{where}: "{tag_key}" holds integers (e.g. {tag}); give tag strings such as "B-PER" '
                "(map label ids to their names first)"
            )
        if not isinstance(tag, str):
            raise TunebenchError(f'{where}: "{tag_key}" must be a list of strings, found {tag!r}')
        _check_tag(path, n, tag)
    if len(tokens) != len(tags):
        raise TunebenchError(
            f"{where}: {len(tokens)} tokens but {len(tags)} {tag_key}; give exactly one tag per token"
        )
    return tokens, tags

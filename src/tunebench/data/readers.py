"""Read small tables (CSV, TSV, JSON Lines, Parquet; optionally gzipped) into plain Python columns.

Every bad-input case becomes a one-line `TunebenchError` naming the file and row/line, because
these files come from users and a raw `UnicodeDecodeError` or `csv.Error` tells them nothing.
Files are read whole into memory: the datasets here are at most tens of MB, and reading bytes
first lets an encoding error report its exact byte offset and line.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import TunebenchError

# extension (after removing .gz) -> format
FORMATS: dict[str, str] = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".txt": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",  # JSON Lines, or one JSON array of objects
    ".parquet": "parquet",
    ".pq": "parquet",
}

_CSV_FIELD_LIMIT = 64 * 1024 * 1024  # the csv default (128 KiB) is too small for long documents


@dataclass
class Table:
    """Columns of one file plus where each row came from, so later checks can say "row 7 (line 8)"."""

    source: str  # the path (or hub split) as the user gave it, for messages
    columns: dict[str, list]
    n_rows: int
    lines: list[int] | None = None  # 1-based physical line of each data row (text formats only)

    def where(self, i: int) -> str:
        """Human position of 0-based data row `i`: 1-based data row, plus the file line when known."""
        if self.lines is not None:
            return f"row {i + 1} (line {self.lines[i]})"
        return f"row {i + 1}"


def describe_path(path: str | os.PathLike) -> str:
    """The path as given, plus the CWD when it is relative: "not found" is useless without it."""
    p = os.fspath(path)
    return p if os.path.isabs(p) else f"{p} (relative to {os.getcwd()})"


def detect_format(path: str | os.PathLike) -> tuple[str, bool]:
    """Return (format, gzipped) from the file name; unknown extensions are a user error."""
    if Path(path).is_dir():
        raise TunebenchError(
            f"{path}: is a directory; give a data file ({', '.join(FORMATS)}), or for images in one folder per "
            "class add --task image-classification"
        )
    name = Path(path).name.lower()
    gz = name.endswith(".gz")
    if gz:
        name = name[:-3]
    ext = Path(name).suffix
    if ext not in FORMATS:
        shown = ext + (".gz" if gz else "") if ext else "(none)"
        known = ", ".join(FORMATS)
        raise TunebenchError(f"{path}: unsupported file type {shown}; use one of {known} (optionally .gz)")
    return FORMATS[ext], gz


def read_table(path: str | os.PathLike) -> tuple[dict[str, list], int]:
    """Read a table file into `{column: values}` and its row count (see `load_table`)."""
    table = load_table(path)
    return table.columns, table.n_rows


def load_table(path: str | os.PathLike, *, names: list[str] | None = None, fmt: str | None = None) -> Table:
    """Read CSV/TSV/JSONL/JSON/Parquet (optionally .gz) with row positions for error messages.

    `names` is for header-less CSV/TSV files (e.g. STS-B): the first line is data, fields beyond
    `names` are ignored. `fmt` overrides the format the file name suggests (STS-B's `.csv` files are
    tab-separated).
    """
    detected, gz = detect_format(path)
    fmt = fmt or detected
    data = _read_bytes(path, gz)
    if fmt == "parquet":
        return _parse_parquet(path, data)
    text = _decode(path, data, gz)
    if not text.strip():
        raise TunebenchError(f"{path}: the file is empty; it needs a header line and data rows")
    if fmt == "tsv":
        return _parse_tsv(path, text, names)
    if fmt == "csv":
        return _parse_csv(path, text, names)
    if fmt == "json" and text.lstrip().startswith("["):
        return _parse_json_array(path, text)
    return _parse_jsonl(path, text, fmt)


def read_lines(path: str | os.PathLike) -> list[str]:
    """The non-blank lines of a plain text file (optionally .gz), as UTF-8: one text per line."""
    gz = Path(path).name.lower().endswith(".gz")
    text = _decode(path, _read_bytes(path, gz), gz)
    return [line for line in text.split("\n") if line.strip()]


def _read_bytes(path: str | os.PathLike, gz: bool) -> bytes:
    p = Path(path)
    if not p.exists():
        raise TunebenchError(f"file not found: {describe_path(path)}")
    if p.is_dir():
        raise TunebenchError(f"{path} is a directory; give the path of a data file inside it")
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise TunebenchError(f"{path}: cannot read the file ({e.strerror or e})") from None
    if not gz:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise TunebenchError(
            f"{path}: not a valid gzip file ({e}); re-compress it or drop the .gz extension"
        ) from None


def _decode(path: str | os.PathLike, data: bytes, gz: bool) -> str:
    bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    try:
        text = data[bom:].decode("utf-8")
    except UnicodeDecodeError as e:
        offset = e.start + bom
        line = data.count(b"\n", 0, offset) + 1
        of = " of the decompressed data" if gz else ""
        raise TunebenchError(
            f"{path}: byte {offset}{of} (line {line}) is not valid UTF-8 "
            f"({data[offset : offset + 1]!r}); save the file as UTF-8"
        ) from None
    # Windows line endings: a \r is never part of the data we want.
    return text.replace("\r", "") if "\r" in text else text


def _header(path: str | os.PathLike, fields: list[str]) -> list[str]:
    header = [f.strip() for f in fields]
    while header and header[-1] == "":  # a trailing delimiter on the header line
        header.pop()
    for i, name in enumerate(header):
        if name == "":
            raise TunebenchError(f"{path}: header column {i + 1} has no name; name every column")
        if name in header[:i]:
            raise TunebenchError(f"{path}: header names column '{name}' twice; rename one of them")
    return header


def _to_table(path, header: list[str], rows: list[list[str]], lines: list[int], sep_hint: str) -> Table:
    width = len(header)
    for i, row in enumerate(rows):
        if len(row) != width:
            if len(row) > width and not any(row[width:]):
                rows[i] = row[:width]  # trailing empty fields from a trailing delimiter
                continue
            pos = f"row {i + 1} (line {lines[i]})"
            raise TunebenchError(
                f"{path} {pos}: {len(row)} fields but the header has {width} "
                f"({', '.join(header)}); {sep_hint}"
            )
    columns = {name: [row[j] for row in rows] for j, name in enumerate(header)}
    return Table(str(path), columns, len(rows), lines)


def _parse_tsv(path, text: str, names: list[str] | None) -> Table:
    # No quoting at all (csv.QUOTE_NONE semantics): SST-2 sentences contain bare quote characters,
    # and a plain split is both exact and faster than the csv module.
    all_lines = text.split("\n")
    rows, lines = [], []
    header = list(names) if names else None
    for n, line in enumerate(all_lines, start=1):
        if not line:
            continue
        fields = line.split("\t")
        if header is None:
            header = _header(path, fields)
            continue
        if names:
            fields = fields[: len(names)]
        rows.append(fields)
        lines.append(n)
    hint = "a tab inside a text field? TSV cannot quote, so remove tabs from the text"
    return _to_table(path, header or [], rows, lines, hint)


def _parse_csv(path, text: str, names: list[str] | None) -> Table:
    if csv.field_size_limit() < _CSV_FIELD_LIMIT:
        csv.field_size_limit(_CSV_FIELD_LIMIT)
    first = text.split("\n", 1)[0]
    # a ".csv" from a spreadsheet in a comma-decimal locale is ";"-separated: read it as written
    delimiter = "," if "," in first else next((d for d in (";", "\t", "|") if d in first), ",")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows, lines = [], []
    header = list(names) if names else None
    prev_end = 0
    try:
        for fields in reader:
            start, prev_end = prev_end + 1, reader.line_num
            if not fields:
                continue
            if header is None:
                header = _header(path, fields)
                continue
            if names:
                fields = fields[: len(names)]
            rows.append(fields)
            lines.append(start)
    except csv.Error as e:
        raise TunebenchError(
            f"{path} line {reader.line_num}: malformed CSV ({e}); check the quotes on that line"
        ) from None
    shown = {"\t": "tab"}.get(delimiter, delimiter)
    hint = f"an unquoted '{shown}' in a text field? put such fields in double quotes"
    return _to_table(path, header or [], rows, lines, hint)


def _rows_to_table(path, records: list[dict], lines: list[int] | None) -> Table:
    columns: dict[str, list] = {}
    for rec in records:
        for key in rec:
            if key not in columns:
                columns[key] = []
    for key, values in columns.items():
        values.extend(rec.get(key) for rec in records)
    return Table(str(path), columns, len(records), lines)


def _parse_jsonl(path, text: str, fmt: str) -> Table:
    records, lines = [], []
    loads = json.loads
    for n, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            rec = loads(line)
        except json.JSONDecodeError as e:
            extra = " (a .json file must be JSON Lines or one array of objects)" if fmt == "json" else ""
            raise TunebenchError(
                f"{path} line {n}: malformed JSON ({e.msg} at column {e.colno}); "
                f"each line must be one JSON object{extra}"
            ) from None
        if not isinstance(rec, dict):
            raise TunebenchError(
                f'{path} line {n}: expected a JSON object like {{"text": ..., "label": ...}}, '
                f"got {type(rec).__name__}"
            )
        records.append(rec)
        lines.append(n)
    return _rows_to_table(path, records, lines)


def _parse_json_array(path, text: str) -> Table:
    try:
        records = json.loads(text)
    except json.JSONDecodeError as e:
        raise TunebenchError(
            f"{path} line {e.lineno}: malformed JSON ({e.msg} at column {e.colno})"
        ) from None
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise TunebenchError(f"{path} item {i + 1}: expected a JSON object, got {type(rec).__name__}")
    return _rows_to_table(path, records, None)


def _parse_parquet(path, data: bytes) -> Table:
    try:
        table = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise TunebenchError(f"{path}: not a readable Parquet file ({first})") from None
    return Table(str(path), table.to_pydict(), table.num_rows, None)

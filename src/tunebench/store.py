"""The run store: one SQLite row per run, written as soon as the run ends.

A compare that is interrupted or crashes keeps every finished run; rerunning the same command
skips runs whose key (task, model, data, strategy settings, training settings, seed) is stored ok.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from pathlib import Path

from .errors import TunebenchError

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    key TEXT PRIMARY KEY,
    strategy TEXT NOT NULL,
    seed INTEGER NOT NULL,
    status TEXT NOT NULL,
    finished REAL NOT NULL,
    record TEXT NOT NULL
)
"""


def check_out_dir(out: str | Path) -> Path:
    """The output folder, created now (before any loading) or refused with one line and the fix."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise TunebenchError(f"--out {out}: is a file; give a folder (it will hold the run store and runs)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise TunebenchError(f"--out {out}: a part of this path is a file; give a folder path") from None
    except OSError as err:
        raise TunebenchError(
            f"--out {out}: cannot create it ({err.strerror}); give a writable folder"
        ) from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise TunebenchError(f"--out {out}: not writable; give a writable folder")
    return out


def run_key(identity: dict) -> str:
    """Stable hash of everything that determines a run's result."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:20]


class RunStore:
    def __init__(self, out_dir: str | Path):
        self.path = Path(out_dir) / "runs.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    def get(self, key: str) -> dict | None:
        with self._connect() as db:
            row = db.execute("SELECT record FROM runs WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def finished(self, key: str) -> dict | None:
        record = self.get(key)
        return record if record and record.get("status") == "ok" else None

    def put(self, record: dict) -> None:
        with self._connect() as db:  # commits on exit: the row is on disk before the next run starts
            db.execute(
                "INSERT OR REPLACE INTO runs (key, strategy, seed, status, finished, record) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    record["key"],
                    record["strategy"],
                    record["seed"],
                    record["status"],
                    time.time(),
                    json.dumps(record, default=str),
                ),
            )

    def all(self) -> list[dict]:
        with self._connect() as db:
            rows = db.execute("SELECT record FROM runs ORDER BY finished").fetchall()
        return [json.loads(r[0]) for r in rows]

"""The run store: one row per run, written as soon as the run ends, in the comparison's database.

A compare that is interrupted or crashes keeps every finished run; rerunning the same command
skips runs whose key (task, model, data, strategy settings, training settings, seed) is stored ok.
The database is the one Optuna's trials live in (`--storage`): by default the SQLite file
`OUT/runs.sqlite`, nothing to install; `postgresql://...` for workers on many machines.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
from pathlib import Path

import sqlalchemy as sa

from .errors import TunebenchError

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    key TEXT PRIMARY KEY,
    strategy TEXT NOT NULL,
    seed INTEGER NOT NULL,
    status TEXT NOT NULL,
    finished DOUBLE PRECISION NOT NULL,
    record TEXT NOT NULL
)
"""
SCHEMA_LOCK = 0x7475_6E66  # PostgreSQL advisory lock id held while creating the table
# SQLite >= 3.24 and PostgreSQL share this upsert
UPSERT = """
INSERT INTO runs (key, strategy, seed, status, finished, record)
VALUES (:key, :strategy, :seed, :status, :finished, :record)
ON CONFLICT (key) DO UPDATE SET strategy = excluded.strategy, seed = excluded.seed,
    status = excluded.status, finished = excluded.finished, record = excluded.record
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


def default_url(out_dir: str | Path) -> str:
    """The embedded database of an output folder: `OUT/runs.sqlite`."""
    return f"sqlite:///{(Path(out_dir) / 'runs.sqlite').resolve()}"


def check_url(url: str) -> str:
    """A storage URL tunebench can share between workers (SQLite or PostgreSQL), with its driver
    importable; else one line with the fix."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        raise TunebenchError(
            f"--storage {url}: not a database URL; give sqlite:///PATH or postgresql://USER@HOST/DB"
        ) from None
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise TunebenchError(f"--storage {url}: {backend} is not supported; use sqlite:/// or postgresql://")
    try:
        parsed.get_dialect().import_dbapi()
    except ImportError:
        raise TunebenchError(
            f"--storage {url}: the {backend} driver is not installed; pip install 'tunebench[postgres]'"
        ) from None
    try:  # now, before any loading: a wrong URL costs nothing
        with engine(url).connect():
            pass
    except sa.exc.DBAPIError as err:
        reason = " ".join(str(err.orig).split()) if err.orig else type(err).__name__
        raise TunebenchError(f"--storage {url}: cannot connect ({reason[:200]})") from None
    return url


@functools.cache
def engine(url: str) -> sa.Engine:
    """One engine per URL and process. SQLite waits up to a minute for another worker's write."""
    if url.startswith("sqlite"):
        return sa.create_engine(url, connect_args={"timeout": 60}, poolclass=sa.pool.NullPool)
    return sa.create_engine(url, pool_pre_ping=True)


class RunStore:
    """Run records by key. `RunStore(out)` is the output folder's SQLite file; `url` another database."""

    def __init__(self, out_dir: str | Path | None = None, url: str | None = None):
        if url is None:
            Path(out_dir).mkdir(parents=True, exist_ok=True)
            url = default_url(out_dir)
        self.url = url
        self._engine = engine(url)
        with self._engine.begin() as db:
            if self._engine.dialect.name == "postgresql":  # two workers creating the table at once collide
                db.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": SCHEMA_LOCK})
            db.execute(sa.text(SCHEMA))

    def get(self, key: str) -> dict | None:
        with self._engine.connect() as db:
            row = db.execute(sa.text("SELECT record FROM runs WHERE key = :key"), {"key": key}).fetchone()
        return json.loads(row[0]) if row else None

    def finished(self, key: str) -> dict | None:
        record = self.get(key)
        return record if record and record.get("status") == "ok" else None

    def put(self, record: dict) -> None:
        row = {
            "key": record["key"],
            "strategy": record["strategy"],
            "seed": record["seed"],
            "status": record["status"],
            "finished": time.time(),
            "record": json.dumps(record, default=str),
        }
        with self._engine.begin() as db:  # commits on exit: the row is on disk before the next run starts
            db.execute(sa.text(UPSERT), row)

    def many(self, keys: list[str]) -> dict[str, dict]:
        """The stored records of `keys` (those that exist), by key."""
        if not keys:
            return {}
        query = sa.text("SELECT key, record FROM runs WHERE key IN :keys").bindparams(
            sa.bindparam("keys", expanding=True)
        )
        with self._engine.connect() as db:
            return {k: json.loads(r) for k, r in db.execute(query, {"keys": list(keys)})}

    def all(self) -> list[dict]:
        with self._engine.connect() as db:
            rows = db.execute(sa.text("SELECT record FROM runs ORDER BY finished")).fetchall()
        return [json.loads(r[0]) for r in rows]

"""A real, throwaway PostgreSQL server for tests: the session fixture `postgres_url`.

It runs the installed server binaries (`initdb`, `pg_ctl`) on a fresh data directory in a temporary
directory, listening on 127.0.0.1 on a free port with `trust` auth and fsync off (fast, nothing durable),
creates the database `tunebench`, yields its SQLAlchemy URL
`postgresql+psycopg://tunebench@127.0.0.1:PORT/tunebench`, and at the end of the session stops the server
and deletes the directory. Tests that use it are skipped, never failed, when the server binaries or the
`psycopg` driver are missing or the server does not start.

Use it from a conftest or a test module: `from pg_server import postgres_url  # noqa: F401`.
"""

from __future__ import annotations

import glob
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

DB_USER = "tunebench"
DB_NAME = "tunebench"
RUN_AS = "postgres"  # the system user that runs the server when the tests run as root


def _has_server(bindir: str | None) -> bool:
    return bool(bindir) and all(
        os.path.isfile(os.path.join(bindir, b)) for b in ("initdb", "pg_ctl", "postgres")
    )


def find_bindir() -> str | None:
    """The directory of the server binaries: `pg_config --bindir`, else the newest
    /usr/lib/postgresql/*/bin, else that of `initdb` on PATH; None when there is none."""
    candidates = []
    if shutil.which("pg_config"):
        try:
            out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, timeout=10)
            candidates.append(out.stdout.strip())
        except (OSError, subprocess.SubprocessError):
            pass
    # pg_config ships with libpq-dev and can name a version whose server is not installed: check each
    versions = [p for p in glob.glob("/usr/lib/postgresql/*/bin") if p.split("/")[-2].isdigit()]
    candidates += sorted(versions, key=lambda p: int(p.split("/")[-2]), reverse=True)
    if shutil.which("initdb"):  # resolve symlinks: pg_ctl and postgres live next to the real initdb
        candidates.append(os.path.dirname(os.path.realpath(shutil.which("initdb"))))
    return next((c for c in candidates if _has_server(c)), None)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(cmd: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    """Run a server command; as root, as the `postgres` user instead, since initdb and postgres refuse to
    run as root (a superuser-owned server could be made to run arbitrary code as root)."""
    if os.geteuid() == 0:
        if shutil.which("runuser"):
            cmd = ["runuser", "-u", RUN_AS, "--", *cmd]
        else:
            cmd = ["su", RUN_AS, "-s", "/bin/sh", "-c", shlex.join(cmd)]
    # cwd: a directory that user can enter (root's own cwd may be /root, mode 700)
    return subprocess.run(
        cmd, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout
    )


def _last_line(*texts: str) -> str:
    """The last error line of the outputs, else their last line: a failed start's log ends with a
    useless "database system is shut down" after the FATAL line that says why."""
    lines = [line.strip() for text in texts for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if any(w in line for w in ("FATAL", "PANIC", "ERROR", "error"))]
    return (errors or lines or ["no output"])[-1]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    bindir = find_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server not found: apt-get install postgresql")
    try:
        import psycopg
    except ImportError:
        pytest.skip("psycopg not installed: pip install 'psycopg[binary]'")
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam(RUN_AS)
        except KeyError:
            pytest.skip(f"running as root and there is no '{RUN_AS}' user to run PostgreSQL as")

    # under /tmp, not tmp_path_factory: pytest's base temp dir can be mode 700 to root, so the postgres
    # user could not reach inside it; a short path also keeps the Unix socket path under its 107-byte limit
    root = Path(tempfile.mkdtemp(prefix="tunebench-pg-", dir="/tmp"))
    if os.geteuid() == 0:
        os.chown(root, user.pw_uid, user.pw_gid)
    data, log = root / "data", root / "postgres.log"
    pg_ctl = os.path.join(bindir, "pg_ctl")
    started = False
    try:
        try:
            init = _run(
                [os.path.join(bindir, "initdb"), "-D", str(data), "-U", DB_USER, "--auth=trust", "-E", "UTF8"]
                + ["--locale=C", "--no-sync"],
                root,
                timeout=120,
            )
            if init.returncode != 0:
                pytest.skip(f"initdb failed: {_last_line(init.stdout, init.stderr)}")
            port = _free_port()
            options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100"
            started = True  # from here on, stop the server at the end: a failed start may leave one behind
            start = _run(
                [pg_ctl, "-D", str(data), "-w", "-t", "60", "-o", options, "-l", str(log), "start"],
                root,
                timeout=90,
            )
            if start.returncode != 0:  # the server's own reason is in its log, pg_ctl's just says it failed
                log_text = log.read_text(errors="replace") if log.exists() else ""
                pytest.skip(f"PostgreSQL did not start: {_last_line(start.stdout, start.stderr, log_text)}")
        except subprocess.TimeoutExpired as e:
            pytest.skip(f"PostgreSQL setup timed out: {shlex.join(map(str, e.cmd))}")

        # autocommit: CREATE DATABASE cannot run inside a transaction
        with psycopg.connect(
            host="127.0.0.1", port=port, user=DB_USER, dbname="postgres", connect_timeout=10, autocommit=True
        ) as conn:
            conn.execute(f"CREATE DATABASE {DB_NAME}")
        yield f"postgresql+psycopg://{DB_USER}@127.0.0.1:{port}/{DB_NAME}"
    finally:
        if started:
            try:
                _run([pg_ctl, "-D", str(data), "-m", "immediate", "-w", "-t", "30", "stop"], root, timeout=60)
            except subprocess.TimeoutExpired:
                pass
        shutil.rmtree(root, ignore_errors=True)

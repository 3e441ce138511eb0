"""The throwaway PostgreSQL server (tests/pg_server.py) answers and is shared between connections."""

from __future__ import annotations

from sqlalchemy import create_engine, text


def test_postgres_url_serves_a_shared_database(postgres_url: str) -> None:
    writer, reader = create_engine(postgres_url), create_engine(postgres_url)
    try:
        with writer.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
        with writer.begin() as conn:
            conn.execute(text("CREATE TABLE pg_server_check (id integer PRIMARY KEY, name text)"))
            conn.execute(text("INSERT INTO pg_server_check VALUES (1, 'one'), (2, 'two')"))
        with reader.connect() as conn, writer.connect() as other:
            pids = {c.execute(text("SELECT pg_backend_pid()")).scalar() for c in (conn, other)}
            assert len(pids) == 2  # two separate server sessions
            rows = conn.execute(text("SELECT id, name FROM pg_server_check ORDER BY id")).all()
        assert [tuple(r) for r in rows] == [(1, "one"), (2, "two")]
    finally:
        writer.dispose()
        reader.dispose()

"""Engines and small dialect-neutral helpers."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, MetaData, Table, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite

metadata = MetaData()

# Values per ``IN (...)`` list: PostgreSQL takes at most 65,535 parameters per statement, and a
# park of 1,000,000 devices reads 200,000 series at once.
IN_BATCH = 10_000

_engines: dict[str, Engine] = {}

T = TypeVar("T")


def make_engine(url: str) -> Engine:
    """One engine per URL per process (pools are shared by the worker threads)."""
    if url in _engines:
        return _engines[url]
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.close()

    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)
    _engines[url] = engine
    return engine


def dispose_all() -> None:
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()


def connect(url: str) -> Connection:
    return make_engine(url).connect()


def insert_ignore(
    conn: Connection, table: Table, rows: Iterable[Mapping[str, Any]], conflict_columns: list[str]
) -> int:
    """Insert rows, skipping any whose ``conflict_columns`` already exist. Returns rows inserted."""
    rows = list(rows)
    if not rows:
        return 0
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).on_conflict_do_nothing(index_elements=conflict_columns)
    # rowcount is unreliable for executemany on PostgreSQL; count what RETURNING gives back.
    returning = stmt.returning(table.c[conflict_columns[0]])
    return sum(len(conn.execute(returning, row).all()) for row in rows)


@contextlib.contextmanager
def scratch_schema(server_url: str, prefix: str) -> Iterator[str]:
    """A fresh, empty schema on a PostgreSQL server for the block (tests, drills, benchmarks):
    yields a URL whose connections use it, and drops it with everything in it afterwards."""
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in server_url else "?"
    try:
        yield f"{server_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        dispose_all()
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def lock_message(conn: Connection, consumer: str, message_id: str) -> None:
    """Serialise transactions about one message of one consumer until this transaction ends
    (PostgreSQL: a transaction advisory lock; SQLite serialises every writer anyway)."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"{consumer}|{message_id}"},
        )


def in_batches(values: Iterable[T], size: int | None = None) -> Iterator[list[T]]:
    """``values`` in lists of at most ``size`` (default :data:`IN_BATCH`): one ``IN (...)`` query per list."""
    size = size or IN_BATCH
    batch: list[T] = []
    for value in values:
        batch.append(value)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch

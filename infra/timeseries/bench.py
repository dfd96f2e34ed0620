"""``parkvpp bench timeseries``: the store against the naive long table, on PostgreSQL and SQLite.

For each database, in a fresh schema (PostgreSQL) or file (SQLite): write ``series`` x
``days`` of 15-minute data through :func:`infra.timeseries.write_frame` and read it back
with :func:`infra.timeseries.read`; beside it, the naive approach: the same points as one
row each in a ``(series, ts, value)`` table, loaded with the driver's bulk path (COPY on
PostgreSQL, executemany on SQLite) and read with ``pandas.read_sql``. The naive table holds
the first ``naive_series`` series only (a long table of 35 million rows takes many minutes
to load); rates are per row, so they compare. Both reads are checked to return the values
written. Figures are rows (points) per second.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import create_engine, text

from infra.db import make_engine, migrate
from infra.db.engine import dispose_all, scratch_schema
from infra.timeseries.store import read, write_frame

FIRST_DAY = date(2025, 1, 1)
PARK = "bench"
DEFAULT_POSTGRES = "postgresql+psycopg://127.0.0.1:5432/test"


def bench_frame(series: int, days: int, seed: int = 11) -> pd.DataFrame:
    index = pd.date_range(pd.Timestamp(FIRST_DAY, tz="Asia/Shanghai"), periods=days * 96, freq="15min")
    gen = np.random.default_rng(seed)
    shape = 50 + 40 * np.sin(np.linspace(0, days * 2 * np.pi, len(index)))
    data = shape[:, None] + gen.normal(0, 5, (len(index), series))
    return pd.DataFrame(data.round(3), index=index, columns=[f"m{i:05d}.load_mw" for i in range(series)])


@contextlib.contextmanager
def _sqlite() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="parkvpp-bench-ts-") as folder:
        try:
            yield f"sqlite:///{folder}/bench.sqlite"
        finally:
            dispose_all()


def _naive_load(engine: Any, frame: pd.DataFrame) -> None:
    long = frame.stack().reset_index()
    long.columns = ["ts", "series", "value"]
    with engine.begin() as conn:
        conn.execute(
            text("CREATE TABLE naive_points (series VARCHAR(128), ts TIMESTAMP WITH TIME ZONE, value FLOAT)")
        )
        if conn.dialect.name == "postgresql":
            buf = io.StringIO()
            long[["series", "ts", "value"]].to_csv(buf, index=False, header=False)
            cursor = conn.connection.dbapi_connection.cursor()
            with cursor.copy("COPY naive_points (series, ts, value) FROM STDIN WITH (FORMAT csv)") as copy:
                copy.write(buf.getvalue())
        else:
            rows = list(
                zip(
                    long["series"],
                    long["ts"].dt.tz_convert("UTC").dt.strftime("%Y-%m-%d %H:%M:%S"),
                    long["value"],
                    strict=True,
                )
            )
            conn.connection.dbapi_connection.executemany("INSERT INTO naive_points VALUES (?, ?, ?)", rows)
        conn.execute(text("CREATE INDEX ix_naive ON naive_points (series, ts)"))


def _naive_read(engine: Any, names: list[str], start: date, end: date) -> pd.DataFrame:
    query = text("SELECT series, ts, value FROM naive_points WHERE ts >= :a AND ts < :b")
    with engine.connect() as conn:
        bounds = {"a": pd.Timestamp(start, tz="Asia/Shanghai"), "b": pd.Timestamp(end, tz="Asia/Shanghai")}
        if conn.dialect.name == "sqlite":
            bounds = {k: v.tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%S") for k, v in bounds.items()}
        long = pd.read_sql(query, conn, params=bounds)
    long["ts"] = pd.to_datetime(long["ts"], utc=True).dt.tz_convert("Asia/Shanghai")
    return long.pivot(index="ts", columns="series", values="value")[names]


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - t0


def measure(
    url: str, frame: pd.DataFrame, naive_series: int = 100, say: Callable[[str], None] = print
) -> dict[str, float]:
    migrate(url)
    engine = make_engine(url)
    points = frame.size
    start, end = FIRST_DAY, FIRST_DAY + timedelta(days=len(frame) // 96)
    names = list(frame.columns)

    def store_write() -> None:
        with engine.begin() as conn:
            write_frame(conn, PARK, frame, "bench")

    _, write_s = _timed(store_write)
    say(f"  store write {points:,} points in {write_s:.1f} s")
    got, read_s = _timed(lambda: read(engine, PARK, names, start, end))
    if not np.array_equal(got.to_numpy(), frame.to_numpy()):
        raise RuntimeError("the store read back different values than were written")
    say(f"  store read  {points:,} points in {read_s:.1f} s")
    out = {
        "points": points,
        "store_write_rows_per_s": points / write_s,
        "store_read_rows_per_s": points / read_s,
    }
    if naive_series > 0:
        sample = frame.iloc[:, :naive_series]
        rows = sample.size
        _, load_s = _timed(lambda: _naive_load(engine, sample))
        say(f"  naive load  {rows:,} rows in {load_s:.1f} s (first {sample.shape[1]} series)")
        naive_frame, naive_s = _timed(lambda: _naive_read(engine, list(sample.columns), start, end))
        if not np.allclose(naive_frame.to_numpy(), sample.to_numpy()):
            raise RuntimeError("the naive read returned different values")
        say(f"  naive read  {rows:,} rows in {naive_s:.1f} s (pandas read_sql)")
        naive_read = rows / naive_s
        out |= {
            "naive_rows": rows,
            "naive_bulk_load_rows_per_s": rows / load_s,
            "naive_read_sql_rows_per_s": naive_read,
            "read_speedup_vs_read_sql": out["store_read_rows_per_s"] / naive_read,
        }
    return out


def run(
    series: int = 1000,
    days: int = 365,
    postgres_url: str | None = None,
    naive_series: int = 100,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Both databases, one run; PostgreSQL is skipped (and said so) when it cannot be reached."""
    frame = bench_frame(series, days)
    result: dict[str, Any] = {
        "series": series,
        "days": days,
        "interval_minutes": 15,
        "naive_series": naive_series,
    }
    server = postgres_url or os.environ.get("PARKVPP_TEST_POSTGRES_URL", DEFAULT_POSTGRES)
    backends = [("sqlite", _sqlite())]
    try:
        create_engine(server).connect().close()
        backends.insert(0, ("postgresql", scratch_schema(server, "bench")))
    except Exception as exc:  # noqa: BLE001 - an unreachable server is reported, not fatal
        result["postgresql_skipped"] = f"{server}: {type(exc).__name__}"
        say(f"PostgreSQL at {server} not reachable ({type(exc).__name__}); measuring SQLite only")
    for name, ctx in backends:
        say(f"{name}: {series} series x {days} days of 15-minute data")
        with ctx as url:
            result[name] = measure(url, frame, naive_series, say)
    return result

"""Shared fixtures: real embedded Kafka and Redis, SQLite and PostgreSQL databases.

Tests that touch Kafka, Redis or a database use real servers. PostgreSQL is the server at
``PARKVPP_TEST_POSTGRES_URL`` (default: the CI machine's 127.0.0.1:5432, database ``test``);
each test session works in its own schema, dropped at the end, so parallel runs don't collide.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from gateway.run_day import RunOutcome, run_day
from infra.db.engine import scratch_schema
from infra.embedded import Endpoints, local_services
from infra.settings import Settings

POSTGRES_URL = os.environ.get("PARKVPP_TEST_POSTGRES_URL", "postgresql+psycopg://127.0.0.1:5432/test")


@pytest.fixture(scope="session", autouse=True)
def session_run_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """All tests share one run directory so the generated history is cached once per session."""
    run_dir = tmp_path_factory.mktemp("runs")
    previous = {
        k: os.environ.get(k)
        for k in ("PARKVPP_RUN_DIR", "PARKVPP_KAFKA_BOOTSTRAP", "PARKVPP_REDIS_URL", "PARKVPP_DATABASE_URL")
    }
    os.environ["PARKVPP_RUN_DIR"] = str(run_dir)
    for key in ("PARKVPP_KAFKA_BOOTSTRAP", "PARKVPP_REDIS_URL", "PARKVPP_DATABASE_URL"):
        os.environ.pop(key, None)
    yield run_dir
    for key, value in previous.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def services(session_run_dir: Path) -> Iterator[Endpoints]:
    """Embedded Kafka (Tansu) and Redis for the whole session: real servers, child processes."""
    with local_services(Settings(run_dir=session_run_dir)) as endpoints:
        yield endpoints


@pytest.fixture()
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'parkvpp.sqlite'}"


@dataclass(frozen=True)
class FinishedDay:
    settings: Settings
    outcome: RunOutcome


@pytest.fixture(scope="session")
def datong_day(services: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> FinishedDay:
    """Datong's 2026-07-15 run end to end once on SQLite over the session's Kafka, for every test
    that checks a finished day or builds the next one on it (a whole day costs CI a minute)."""
    run_dir = tmp_path_factory.mktemp("datong-day")
    settings = Settings(
        run_dir=run_dir,
        database_url=f"sqlite:///{run_dir / 'parkvpp.sqlite'}",
        kafka_bootstrap=services.kafka_bootstrap,
        redis_url=services.redis_url,
    )
    return FinishedDay(settings, run_day("datong", date(2026, 7, 15), settings))


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    try:
        with create_engine(POSTGRES_URL).connect() as conn:
            conn.execute(text("select 1"))
    except Exception as exc:  # noqa: BLE001
        pytest.fail(
            f"PostgreSQL at {POSTGRES_URL} is not reachable ({exc}); start it or set PARKVPP_TEST_POSTGRES_URL"
        )
    return POSTGRES_URL


@pytest.fixture()
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty schema on the PostgreSQL server for one test."""
    with scratch_schema(postgres_server_url, "t") as url:
        yield url

"""The HTTP gateway answers from stored facts and says clearly what is missing."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from gateway.app import create_app
from infra.db import migrate
from infra.settings import Settings


def _client(tmp_path: Path, sqlite_url: str) -> TestClient:
    migrate(sqlite_url)
    return TestClient(create_app(Settings(run_dir=tmp_path, database_url=sqlite_url)))


def test_parks_and_park_detail(tmp_path: Path, sqlite_url: str) -> None:
    client = _client(tmp_path, sqlite_url)
    assert client.get("/health").json() == {"status": "ok"}
    parks = {p["id"] for p in client.get("/parks").json()}
    assert parks == {"datong", "chifeng"}
    detail = client.get("/parks/datong").json()
    assert any(a["id"] == "bess_grid" and a["type"] == "battery" for a in detail["assets"])
    missing = client.get("/parks/atlantis")
    assert missing.status_code == 404 and "atlantis" in missing.json()["detail"]


def test_facts_validate_their_inputs(tmp_path: Path, sqlite_url: str) -> None:
    client = _client(tmp_path, sqlite_url)
    bad_schema = client.get("/parks/datong/days/2026-07-15/facts/gossip")
    assert bad_schema.status_code == 422 and "schema 'gossip'" in bad_schema.json()["detail"]
    bad_day = client.get("/parks/datong/days/15-07-2026/facts/bid")
    assert bad_day.status_code == 422
    none_yet = client.get("/parks/datong/days/2026-07-15/facts/bid")
    assert (
        none_yet.status_code == 404 and "no bid stored for datong on 2026-07-15" in none_yet.json()["detail"]
    )
    report = client.get("/parks/datong/days/2026-07-15/report")
    assert (
        report.status_code == 404
        and "parkvpp run-day --park datong --date 2026-07-15" in report.json()["detail"]
    )

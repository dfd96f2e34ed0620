"""The HTTP gateway answers from stored facts, says clearly what is missing, and asks who is asking."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from gateway import identity
from gateway.app import create_app
from infra.db import make_engine, migrate
from infra.settings import Settings


def _client(tmp_path: Path, sqlite_url: str) -> tuple[TestClient, dict[str, str]]:
    migrate(sqlite_url)
    identity.add_user(make_engine(sqlite_url), "boss", "a-long-password", "admin", actor="test")
    client = TestClient(create_app(Settings(run_dir=tmp_path, database_url=sqlite_url)))
    token = client.post("/api/v1/auth/token", data={"username": "boss", "password": "a-long-password"}).json()
    return client, {"Authorization": f"Bearer {token['access_token']}"}


def test_parks_and_portfolio_need_a_user(tmp_path: Path, sqlite_url: str) -> None:
    client, auth = _client(tmp_path, sqlite_url)
    assert client.get("/health").json()["status"] == "ok"
    assert client.get("/api/v1/parks").status_code == 401
    parks = {p["id"] for p in client.get("/api/v1/parks", headers=auth).json()}
    assert parks == {"datong", "chifeng"}
    detail = client.get("/api/v1/parks/datong/portfolio", headers=auth).json()
    assert any(a["id"] == "bess_grid" and a["type"] == "battery" for a in detail["assets"])
    missing = client.get("/api/v1/parks/atlantis/portfolio", headers=auth)
    assert missing.status_code == 404 and "atlantis" in missing.json()["detail"]


def test_facts_validate_their_inputs(tmp_path: Path, sqlite_url: str) -> None:
    client, auth = _client(tmp_path, sqlite_url)
    bad_day = client.get("/api/v1/parks/datong/days/15-07-2026/bids", headers=auth)
    assert bad_day.status_code == 422
    assert client.get("/api/v1/parks/datong/days/2026-07-15/bids", headers=auth).json() == []
    report = client.get("/api/v1/parks/datong/days/2026-07-15/report/", headers=auth)
    assert (
        report.status_code == 404
        and "parkvpp run-day --park datong --date 2026-07-15" in report.json()["detail"]
    )
    old = client.get("/parks/datong/days/2026-07-15/report", follow_redirects=False)
    assert (
        old.status_code == 308 and old.headers["location"] == "/api/v1/parks/datong/days/2026-07-15/report/"
    )

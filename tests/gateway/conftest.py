"""Gateway fixtures: an app on a fresh SQLite database with one user per role and a seeded day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gateway import identity
from gateway.app import create_app
from gateway.seed import seed_day
from infra.db import make_engine, migrate
from infra.settings import Settings

PARK, DAY = "datong", date(2026, 7, 15)
PASSWORD = "correct-horse-battery"
# user -> (role, enterprise)
USERS = {
    "admin": ("admin", None),
    "op_anna": ("operator", None),
    "op_bo": ("operator", None),
    "trader_li": ("trader", None),
    "auditor_wu": ("auditor", None),
    "cell_user": ("enterprise", "cell_plant"),
    "cathode_user": ("enterprise", "cathode_plant"),
}


@dataclass
class World:
    client: TestClient
    url: str
    run_dir: Path

    def login(self, user: str) -> dict[str, str]:
        r = self.client.post("/api/v1/auth/token", data={"username": user, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}


def add_users(url: str) -> None:
    engine = make_engine(url)
    for name, (role, enterprise) in USERS.items():
        identity.add_user(
            engine,
            name,
            PASSWORD,
            role,
            actor="test",
            park_id=PARK if enterprise else None,
            enterprise_id=enterprise,
        )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    run_dir = tmp_path_factory.mktemp("gateway")
    url = f"sqlite:///{run_dir / 'gateway.sqlite'}"
    migrate(url)
    add_users(url)
    seed_day(make_engine(url), PARK, DAY)
    app = create_app(Settings(run_dir=run_dir, database_url=url))
    return World(TestClient(app, raise_server_exceptions=False), url, run_dir)

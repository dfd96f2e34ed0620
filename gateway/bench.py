"""``parkvpp bench gateway``: what the auth layer costs on the day view and the statement download.

One synthetic Datong day (:mod:`gateway.seed`) on a SQLite file; two apps in the same process
on the same database: the real gateway (bearer token checked, revocation and user looked up,
role and tenant applied by the query layer) and the same routes built with ``auth=False`` (no
token handling, an administrator principal). Each endpoint is called sequentially through the
ASGI test client for ``seconds`` per approach; requests per second and the 99th-percentile
latency are printed side by side, with the ratio. Both must return identical bodies.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import typer
from fastapi.testclient import TestClient

from gateway import identity
from gateway.app import create_app
from gateway.seed import seed_day
from infra.db import make_engine, migrate
from infra.settings import Settings

DAY = date(2026, 7, 15)
PASSWORD = "bench-password-1"
ENDPOINTS = {
    "day_view": f"/api/v1/parks/datong/days/{DAY}",
    "statement_csv": f"/api/v1/parks/datong/days/{DAY}/statements/cell_plant/download?format=csv",
}


def _measure(
    client: TestClient, url: str, headers: dict[str, str], seconds: float
) -> tuple[float, float, bytes]:
    first = client.get(url, headers=headers)
    if first.status_code != 200:
        raise RuntimeError(f"GET {url}: {first.status_code} {first.text[:200]}")
    latencies = []
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        s = time.perf_counter()
        r = client.get(url, headers=headers)
        latencies.append(time.perf_counter() - s)
        if r.status_code != 200:
            raise RuntimeError(f"GET {url}: {r.status_code}")
    elapsed = time.perf_counter() - t0
    return len(latencies) / elapsed, float(np.percentile(latencies, 99)) * 1000, first.content


def run(copies: int = 4, seconds: float = 3.0, as_json: bool = False) -> dict[str, Any]:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.sqlite'}"
        migrate(url)
        engine = make_engine(url)
        seed_day(engine, "datong", DAY, copies=copies)
        identity.add_user(engine, "bench_trader", PASSWORD, "trader", actor="bench")
        settings = Settings(run_dir=Path(tmp), database_url=url)
        authed = TestClient(create_app(settings))
        token = authed.post("/api/v1/auth/token", data={"username": "bench_trader", "password": PASSWORD})
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        open_ = TestClient(create_app(settings, auth=False))
        result: dict[str, Any] = {"seconds_per_approach": seconds, "dispatch_copies": copies}
        for name, path in ENDPOINTS.items():
            rps_a, p99_a, body_a = _measure(authed, path, headers, seconds)
            rps_o, p99_o, body_o = _measure(open_, path, {}, seconds)
            if body_a != body_o:
                raise RuntimeError(f"{name}: the authenticated and the open responses differ")
            result[name] = {
                "response_kb": round(len(body_a) / 1024, 1),
                "authenticated_requests_per_s": round(rps_a, 1),
                "authenticated_p99_ms": round(p99_a, 2),
                "no_auth_requests_per_s": round(rps_o, 1),
                "no_auth_p99_ms": round(p99_o, 2),
                "auth_throughput_ratio": round(rps_a / rps_o, 3),
            }
    if as_json:
        typer.echo(json.dumps(result))
    else:
        for name in ENDPOINTS:
            r = result[name]
            typer.echo(
                f"{name:<14} ({r['response_kb']:,.0f} kB): authenticated {r['authenticated_requests_per_s']:,.1f} req/s "
                f"p99 {r['authenticated_p99_ms']:.1f} ms; without auth {r['no_auth_requests_per_s']:,.1f} req/s "
                f"p99 {r['no_auth_p99_ms']:.1f} ms; ratio {r['auth_throughput_ratio']:.2f}"
            )
    return result

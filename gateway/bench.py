"""``parkvpp bench gateway``: serving stored facts over HTTP.

The gateway serves facts as the envelope JSON the outbox stored. The naive approach parses
each envelope into its model and lets FastAPI serialise it again. Both endpoints run in the
same process on the same database (a full day of Datong-sized facts) through the ASGI test
client, and must return equal documents; the ratio of requests per second is printed.
"""

from __future__ import annotations

import json
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import typer
from fastapi.testclient import TestClient

from gateway.app import create_app
from infra.contracts import AssetSetpoints, Dispatch, Topic
from infra.db import make_engine, migrate
from infra.db.outbox import enqueue, stored_envelopes
from infra.scenario import load_scenario
from infra.settings import Settings
from infra.timeutil import day_intervals

DAY = date(2026, 7, 15)


def _seed(database_url: str, copies: int) -> None:
    scenario = load_scenario("datong")
    starts = list(day_intervals(DAY, 15))
    engine = make_engine(database_url)
    with engine.begin() as conn:
        for k in range(copies):
            assets = [
                AssetSetpoints(
                    asset_id=a.id, enterprise_id=a.enterprise, power_mw=[float(i + k) for i in range(96)]
                )
                for a in scenario.park.assets
            ]
            dispatch = Dispatch(
                interval_minutes=15,
                interval_starts=starts,
                award_message_id=f"bench-{k}",
                assets=assets,
                deviation_mw=[0.0] * 96,
            )
            enqueue(conn, Topic.DISPATCH, dispatch.envelope("datong", DAY, "bench", k))


def _rate(client: TestClient, url: str, seconds: float) -> tuple[float, Any]:
    body = client.get(url).json()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        assert client.get(url).status_code == 200
        n += 1
    return n / (time.perf_counter() - t0), body


def run(copies: int = 4, seconds: float = 3.0, as_json: bool = False) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.sqlite'}"
        migrate(url)
        _seed(url, copies)
        app = create_app(Settings(run_dir=Path(tmp), database_url=url))
        engine = make_engine(url)

        @app.get("/naive/{park_id}/{day}/{schema}")
        def naive(park_id: str, day: date, schema: str) -> list[dict[str, Any]]:
            with engine.connect() as conn:
                return [
                    e.model_dump(mode="json", by_alias=True)
                    for e in stored_envelopes(conn, park_id, day, schema)
                ]

        client = TestClient(app)
        fast_rps, fast_body = _rate(client, f"/parks/datong/days/{DAY}/facts/dispatch", seconds)
        naive_rps, naive_body = _rate(client, f"/naive/datong/{DAY}/dispatch", seconds)
        if fast_body != naive_body:
            raise RuntimeError("the verbatim and the re-serialised responses differ")
        size_kb = len(json.dumps(fast_body)) / 1024
    result = {
        "facts_per_response": copies,
        "response_kb": size_kb,
        "verbatim_requests_per_s": fast_rps,
        "reserialised_requests_per_s": naive_rps,
        "speedup": fast_rps / naive_rps,
    }
    if as_json:
        typer.echo(json.dumps(result))
    else:
        typer.echo(f"GET facts/dispatch ({copies} Datong dispatch facts, {size_kb:,.0f} kB per response)")
        typer.echo(
            f"  verbatim stored JSON {fast_rps:,.1f} req/s, parse and re-serialise {naive_rps:,.1f} req/s, "
            f"ratio {result['speedup']:.1f}x (identical documents)"
        )
    return result

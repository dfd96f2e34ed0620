"""FastAPI gateway: read access to parks, runs, stored facts and run reports (OpenAPI at /docs)."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, Response
from sqlalchemy import select

from infra.contracts import PAYLOADS
from infra.db import make_engine
from infra.db.outbox import stored_json
from infra.db.tables import runs
from infra.scenario import ScenarioError, available_parks, load_scenario
from infra.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(
        title="parkvpp gateway",
        version="0.1.0",
        description="Parks, market days, stored facts (forecasts, offers, bids, awards, dispatch, "
        "metering, settlements) and run reports.",
    )
    engine = make_engine(settings.resolved_database_url)

    def scenario_or_404(park_id: str) -> Any:
        try:
            return load_scenario(park_id)
        except ScenarioError as exc:
            raise HTTPException(404, f"park {park_id!r}: {exc.problems[0]}") from exc

    @app.get("/health")
    def health() -> dict[str, str]:
        with engine.connect() as conn:
            conn.execute(select(1))
        return {"status": "ok"}

    @app.get("/parks")
    def parks() -> list[dict[str, Any]]:
        return [
            {"id": p, "name": load_scenario(p).park.name, "version": load_scenario(p).version}
            for p in available_parks()
        ]

    @app.get("/parks/{park_id}")
    def park(park_id: str) -> dict[str, Any]:
        s = scenario_or_404(park_id)
        return {
            "id": s.id,
            "name": s.park.name,
            "version": s.version,
            "market": s.market.name,
            "enterprises": [e.model_dump(include={"id", "name", "sector"}) for e in s.park.enterprises],
            "assets": [a.model_dump(include={"id", "type", "name", "enterprise"}) for a in s.park.assets],
        }

    @app.get(
        "/parks/{park_id}/days/{day}/facts/{schema}",
        response_class=Response,
        responses={
            200: {"content": {"application/json": {}}, "description": "the stored envelopes, in store order"}
        },
    )
    def facts(park_id: str, day: date, schema: str) -> Response:
        """Stored facts exactly as they were published (the envelope JSON is served verbatim)."""
        scenario_or_404(park_id)
        if schema not in PAYLOADS:
            raise HTTPException(422, f"schema {schema!r}: must be one of {', '.join(PAYLOADS)}")
        with engine.connect() as conn:
            found = stored_json(conn, park_id, day, schema)
        if not found:
            raise HTTPException(404, f"no {schema} stored for {park_id} on {day}")
        return Response(content="[" + ",".join(found) + "]", media_type="application/json")

    @app.get("/runs")
    def run_list(limit: int = 50) -> list[dict[str, Any]]:
        with engine.connect() as conn:
            rows = conn.execute(
                select(runs).order_by(runs.c.started_at.desc()).limit(min(max(limit, 1), 500))
            )
            return [dict(r._mapping) for r in rows]

    @app.get("/parks/{park_id}/days/{day}/report", response_class=FileResponse)
    def report(park_id: str, day: date) -> FileResponse:
        scenario_or_404(park_id)
        path = settings.run_dir / park_id / day.isoformat() / "report.html"
        if not path.exists():
            raise HTTPException(
                404, f"no report for {park_id} on {day}; run `parkvpp run-day --park {park_id} --date {day}`"
            )
        return FileResponse(path, media_type="text/html")

    return app

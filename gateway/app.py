"""FastAPI gateway: API v1 under ``/api/v1`` (OpenAPI, Swagger UI at /docs and ReDoc at /redoc from
local assets), web pages for traders, enterprises, operators and auditors, ``/health`` and ``/metrics``.

Sign-in: ``POST /api/v1/auth/token`` (OAuth2 password flow) for the API, ``/login`` for the
pages (an HttpOnly, SameSite=Strict cookie). Every data access goes through the query layer
(:mod:`gateway.access`), which enforces roles and tenants. See ``gateway/README.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from gateway import ops, problems
from gateway.api import router as api_router
from infra.db import make_engine
from infra.settings import Settings

API_VERSION = "1.1.0"
STATIC = Path(__file__).parent / "static"


def _plotly_dir() -> Path | None:
    try:
        import plotly

        folder = Path(plotly.__file__).parent / "package_data"
        return folder if (folder / "plotly.min.js").exists() else None
    except ImportError:
        return None


def create_app(settings: Settings, *, auth: bool = True) -> FastAPI:
    """The gateway app. ``auth=False`` serves everything as an administrator with no token
    handling at all: only for ``parkvpp bench gateway`` to measure what the auth layer costs."""
    app: FastAPI = FastAPIOffline(
        title="parkvpp gateway",
        version=API_VERSION,
        description=(
            "Park virtual power plant: parks and portfolios, enrolment, forecasts, offers, bids, awards, "
            "dispatch, demand response, metering, statements, settlement review, carbon indicators and "
            "ledger. Sign in with `POST /api/v1/auth/token` (OAuth2 password flow) and send "
            "`Authorization: Bearer <access_token>`. Errors are RFC 9457 problem details. Every route "
            "lists the permission (OAuth2 scope) it needs; an enterprise user sees its own enterprise only."
        ),
        openapi_tags=[
            {"name": n}
            for n in (
                "auth",
                "users",
                "parks",
                "enrolment",
                "market",
                "dispatch",
                "metering",
                "statements",
                "review",
                "carbon",
                "audit",
                "reports",
                "operations",
            )
        ],
    )
    app.state.settings = settings
    app.state.engine = make_engine(settings.resolved_database_url)
    app.state.auth = auth
    problems.install(app)
    ops.install(app)
    app.include_router(api_router)

    @app.get(
        "/health",
        tags=["operations"],
        responses={503: {"description": "a part is down", "content": {"application/json": {}}}},
    )
    def health() -> Any:
        """``ok`` when the database and the configured broker and Redis answer; 503 naming the part that does not."""
        ok, parts = ops.health(app)
        body = {"status": "ok" if ok else "down", **parts}
        return body if ok else JSONResponse(body, status_code=503)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    plotly_dir = _plotly_dir()
    if plotly_dir is not None:
        app.mount("/vendor/plotly", StaticFiles(directory=plotly_dir), name="plotly")

    from gateway.web import router as web_router

    app.include_router(web_router)

    @app.get("/parks/{park_id}/days/{day}/report", include_in_schema=False)
    def old_report(park_id: str, day: str) -> RedirectResponse:
        """The report's old address: its images resolve under the new one."""
        return RedirectResponse(f"/api/v1/parks/{park_id[:64]}/days/{day[:10]}/report/", status_code=308)

    return app

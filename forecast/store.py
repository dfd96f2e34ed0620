"""Reading and writing the forecast tables (see :mod:`forecast.tables`)."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, select

from forecast.backtest import Selection
from forecast.calibration import Calibration
from forecast.jobs import StoredModel
from forecast.models import MODEL_CODE_VERSION, FittedModel
from forecast.tables import forecast_issues, forecast_models, forecast_series
from infra.db import insert_ignore
from infra.timeutil import now


def model_version(
    name: str, as_of: datetime, fingerprint: dict[str, Any], calibration: dict[str, Any]
) -> str:
    """Code version, model, selection time and a digest of what the fitted model is.

    The digest covers the training window and features, the backtest metrics of every candidate
    and the calibration: the same data and code give the same string (a pickle would not: it
    carries fit-time bookkeeping), and any change in what was learnt changes it.
    """
    digest = hashlib.sha256(
        json.dumps({"fitted": fingerprint, "calibration": calibration}, sort_keys=True, default=str).encode()
    ).hexdigest()
    return f"{MODEL_CODE_VERSION}:{name}:{as_of.strftime('%Y%m%dT%H%M')}:{digest[:12]}"


def selection_row(
    park_id: str, scenario_version: str, horizon: str, as_of: datetime, sel: Selection
) -> dict[str, Any]:
    fitted = sel.fitted.to_bytes() if sel.fitted is not None else None
    calibration = sel.calibration.as_dict()
    return {
        "park_id": park_id,
        "scenario_version": scenario_version,
        "horizon": horizon,
        "selected_as_of": as_of,
        "series_id": sel.series_id,
        "model": sel.model,
        "model_version": model_version(sel.model, as_of, _fingerprint(sel), calibration),
        "fitted": fitted,
        "calibration": calibration,
        "backtest": {
            "candidates": sel.metrics,
            "selected": sel.selected,
            "skill_vs_naive": sel.skill_vs_naive,
            "intraday": sel.intraday,
            "failures": sel.failures,
            "hygiene": sel.hygiene,
            "origins": sel.origins,
        },
        "created_at": now(),
    }


def _fingerprint(sel: Selection) -> dict[str, Any]:
    fitted = sel.fitted
    return {
        "trained_until": None if fitted is None else fitted.trained_until.isoformat(),
        "features": [] if fitted is None else list(fitted.feature_names),
        "metrics": {k: {m: round(v, 9) for m, v in d.items()} for k, d in sel.metrics.items()},
        "selected": {k: round(v, 9) for k, v in sel.selected.items()},
    }


def save_selections(engine: Engine, rows: list[dict[str, Any]]) -> None:
    with engine.begin() as conn:
        insert_ignore(
            conn,
            forecast_models,
            rows,
            ["park_id", "scenario_version", "horizon", "selected_as_of", "series_id"],
        )


def load_models(
    engine: Engine, park_id: str, scenario_version: str, horizon: str, as_of: datetime
) -> dict[str, StoredModel]:
    t = forecast_models.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(t.series_id, t.model, t.model_version, t.fitted, t.calibration).where(
                t.park_id == park_id,
                t.scenario_version == scenario_version,
                t.horizon == horizon,
                t.selected_as_of == as_of,
            )
        ).all()
    return {
        r.series_id: StoredModel(
            r.model,
            r.model_version,
            FittedModel.from_bytes(r.fitted) if r.fitted is not None else None,
            Calibration.from_dict(r.calibration),
        )
        for r in rows
    }


def load_backtests(
    engine: Engine, park_id: str, horizon: str, as_of: datetime | None = None
) -> list[dict[str, Any]]:
    """Backtest summaries of a selection (the latest one when ``as_of`` is None)."""
    t = forecast_models.c
    with engine.connect() as conn:
        if as_of is None:
            as_of = conn.execute(
                select(t.selected_as_of)
                .where(t.park_id == park_id, t.horizon == horizon)
                .order_by(t.selected_as_of.desc())
                .limit(1)
            ).scalar()
            if as_of is None:
                return []
        rows = conn.execute(
            select(t.series_id, t.model, t.model_version, t.backtest, t.selected_as_of)
            .where(t.park_id == park_id, t.horizon == horizon, t.selected_as_of == as_of)
            .order_by(t.series_id)
        ).all()
    return [dict(r._mapping) for r in rows]


def save_issue(conn: Connection, issue: dict[str, Any], series_rows: list[dict[str, Any]]) -> None:
    insert_ignore(conn, forecast_issues, [issue], ["message_id"])
    insert_ignore(conn, forecast_series, series_rows, ["message_id", "series_id"])


def find_issue(engine: Engine, park_id: str, horizon: str, issued_at: datetime) -> dict[str, Any] | None:
    t = forecast_issues.c
    with engine.connect() as conn:
        row = conn.execute(
            select(forecast_issues).where(
                t.park_id == park_id, t.horizon == horizon, t.issued_at == issued_at
            )
        ).first()
    return dict(row._mapping) if row else None


def latest_issue(
    engine: Engine, park_id: str, market_day: date, horizon: str = "day_ahead"
) -> dict[str, Any] | None:
    """The last issue for a park, day and horizon, with its series rows under ``"series"``."""
    t = forecast_issues.c
    with engine.connect() as conn:
        row = conn.execute(
            select(forecast_issues)
            .where(t.park_id == park_id, t.market_day == market_day, t.horizon == horizon)
            .order_by(t.issued_at.desc())
            .limit(1)
        ).first()
        if row is None:
            return None
        issue = dict(row._mapping)
        issue["series"] = [
            dict(r._mapping)
            for r in conn.execute(
                select(forecast_series).where(forecast_series.c.message_id == issue["message_id"])
            ).all()
        ]
    return issue

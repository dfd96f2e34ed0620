"""Test data through the time-series store: the simulator backfills it, as in production."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine

from infra.db import make_engine, migrate
from infra.scenario.model import Scenario
from sim.backfill import backfill

HISTORY_START = date(2026, 5, 1)  # enough for the fast settings' training window and backtest
HISTORY_END = date(2026, 7, 16)  # measured data up to here; weather forecasts 3 days further


def filled_store(
    url: str, scenario: Scenario, start: date = HISTORY_START, end: date = HISTORY_END
) -> Engine:
    """A migrated database whose time-series store holds the simulator's recorded history."""
    migrate(url)
    engine = make_engine(url)
    backfill(engine, scenario, start, end, progress=lambda _msg: None)
    return engine

"""Demo wiring: data for commands run without real meters (benchmarks on a fresh machine).

Benchmarks read history through the store like the services do; on a machine with no
measured data the simulator fills the default database with the demo park's history first.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from infra.db import make_engine, migrate
from infra.registry import portfolio
from infra.settings import get_settings
from sim.backfill import backfill
from sim.history import history_window

log = logging.getLogger(__name__)

DEMO_PARK = "datong"


def ensure_demo_history(park_id: str = DEMO_PARK) -> None:
    """The park's history up to and including the default day, in the default database."""
    settings = get_settings()
    url = settings.resolved_database_url
    migrate(url)
    engine = make_engine(url)
    day = settings.default_day
    scenario = portfolio(engine, park_id, day)
    start, _ = history_window(scenario, day)
    backfill(engine, scenario, start, day + timedelta(days=1), log.info)

"""The forecast scheduler behind ``parkvpp worker forecast``.

Every poll it works out which issues are due for each park: the day-ahead (and 72-hour)
forecast for tomorrow once the day-ahead issue time has passed, and the intraday rolling
forecast of the current interval. An issue already stored is not repeated, so restarts are
safe. Model selection happens on its schedule: the first issue after a selection boundary
runs it (cached in the database) and later issues reuse it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import date, datetime, timedelta

from sqlalchemy import Engine

from forecast.config import ForecastConfig
from forecast.service import default_issued_at, interval_minutes, issue_forecast, on_grid
from forecast.store import find_issue
from infra.registry import portfolio
from infra.scenario.model import Scenario
from infra.timeutil import MARKET_TZ, now

log = logging.getLogger(__name__)

POLL_SECONDS = 10.0


def due_issues(scenario: Scenario, at: datetime, cfg: ForecastConfig) -> list[tuple[str, date, datetime]]:
    """(horizon, delivery day, issue time) of every issue due at ``at``."""
    due: list[tuple[str, date, datetime]] = []
    tomorrow = (at + timedelta(days=1)).date()
    issue_time = default_issued_at(scenario, tomorrow, cfg)
    if at >= issue_time:
        due.append(("day_ahead", tomorrow, issue_time))
        if cfg.schedule_72h:
            due.append(("72h", tomorrow, issue_time))
    intraday_at = on_grid(at, minutes=interval_minutes(scenario))  # the interval starting now comes first
    due.append(("intraday", intraday_at.date(), intraday_at.to_pydatetime()))
    return due


def run_scheduler(
    engine: Engine,
    scenario_ids: list[str],
    stop: threading.Event,
    poll_s: float = POLL_SECONDS,
    clock: Callable[[], datetime] = now,
) -> None:
    """Issue forecasts for the parks until ``stop`` is set; one failed issue is logged and retried next poll.

    Each issue forecasts the park's portfolio of its delivery day, read from the registry.
    """
    cfg = ForecastConfig.from_env()
    log.info("forecast scheduler for %s (poll every %.0f s)", ", ".join(scenario_ids), poll_s)
    while not stop.is_set():
        at = clock()
        local_day = at.astimezone(MARKET_TZ).date()
        for park in scenario_ids:
            try:
                today = portfolio(engine, park, local_day)
            except Exception:
                log.exception("forecast %s: cannot read the portfolio; retrying at the next poll", park)
                continue
            for horizon, day, issued_at in due_issues(today, at, cfg):
                if stop.is_set() or find_issue(engine, park, horizon, issued_at) is not None:
                    continue
                try:
                    scenario = today if day == local_day else portfolio(engine, park, day)
                    issue_forecast(engine, scenario, day, horizon, issued_at)
                except Exception:
                    log.exception(
                        "forecast %s %s for %s failed; retrying at the next poll", park, horizon, day
                    )
        stop.wait(poll_s)

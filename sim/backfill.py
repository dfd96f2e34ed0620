"""The simulator as a data source: write its recorded history into the time-series store.

What the meters, the weather service and the market would have delivered (the ``recorded``
view: gaps and spikes included) goes through the same :func:`infra.timeseries.write` as a
real meter file, so the services cannot tell simulated from measured data. Weather
forecasts are written ``FORECAST_DAYS`` beyond the window, as a weather service publishes
them ahead of time; the forecast service reads only the lead it is allowed to.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import date, timedelta

from sqlalchemy import Engine

from infra.scenario.model import Scenario
from infra.timeseries import WriteReport, coverage, write_frame
from sim.history import INTERVAL_MINUTES, load_history

log = logging.getLogger(__name__)

SOURCE = "parkvpp-simulator"
FORECAST_DAYS = 3


def _covered(engine: Engine, scenario: Scenario, names: list[str], start: date, end: date) -> bool:
    found = coverage(engine, scenario.id, names)
    return all(
        n in found
        and found[n][0] <= start
        and found[n][1] >= end - timedelta(days=1)
        and found[n][2] == (found[n][1] - found[n][0]).days + 1
        for n in names
    )


def backfill(
    engine: Engine, scenario: Scenario, start: date, end: date, progress: Callable[[str], None] = log.info
) -> WriteReport:
    """Recorded history of days ``[start, end)`` (weather forecasts a few days further) into the store."""
    frame = load_history(scenario, start, end + timedelta(days=FORECAST_DAYS), view="recorded")
    forecasts = [c for c in frame.columns if c.startswith("weather_fc")]
    measured = [c for c in frame.columns if c not in forecasts]
    parts = [(measured, start, end), (forecasts, start, end + timedelta(days=FORECAST_DAYS))]
    report = WriteReport()
    for names, first, last in parts:
        if _covered(engine, scenario, names, first, last):
            continue
        t0 = time.monotonic()
        window = frame.loc[(frame.index.date >= first) & (frame.index.date < last), names]
        with engine.begin() as conn:
            part = write_frame(conn, scenario.id, window, SOURCE, INTERVAL_MINUTES)
        progress(f"store     {part.describe()} from the simulator ({time.monotonic() - t0:.1f} s)")
        report += part
    return report

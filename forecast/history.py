"""Reading history from the time-series store (``infra.timeseries``), the one way in."""

from __future__ import annotations

from datetime import date

import pandas as pd
from sqlalchemy import Connection, Engine

from infra.scenario.model import Scenario
from infra.timeseries import read as read_store


def interval_minutes(scenario: Scenario) -> int:
    """The market's day-ahead interval: history is read and forecast on this grid."""
    return int(scenario.market.day_ahead_interval_minutes)


def read_history(
    bind: Engine | Connection, scenario: Scenario, names: list[str], first_day: date, end_day: date
) -> pd.DataFrame:
    """Stored history of ``names`` over market days ``[first_day, end_day)`` on the market's grid
    (coarser series, e.g. 30-minute meters, are converted; a series never stored is all NaN)."""
    return read_store(
        bind,
        scenario.id,
        names,
        first_day,
        end_day,
        interval_minutes=interval_minutes(scenario),
        missing="nan",
    )

"""Market time: timezone-aware Asia/Shanghai, half-open intervals ``[start, end)``.

The interval length is a market setting (15 min day-ahead, 5 min real-time in Shanxi since
Nov 2025), so nothing here assumes 96 intervals a day.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pandas as pd

MARKET_TZ = ZoneInfo("Asia/Shanghai")
MARKET_TZ_NAME = "Asia/Shanghai"


def day_start(day: date) -> datetime:
    """Local midnight at the start of a market day."""
    return datetime.combine(day, time(0), tzinfo=MARKET_TZ)


def day_intervals(day: date, interval_minutes: int) -> pd.DatetimeIndex:
    """Start times of the half-open intervals that make up a market day."""
    if 1440 % interval_minutes:
        raise ValueError(f"interval_minutes={interval_minutes}: must divide a day (1440 minutes) evenly")
    return pd.date_range(day_start(day), periods=1440 // interval_minutes, freq=f"{interval_minutes}min")


def interval_hours(interval_minutes: int) -> float:
    return interval_minutes / 60.0


def span_intervals(start: date, end: date, interval_minutes: int) -> pd.DatetimeIndex:
    """Interval starts covering days ``[start, end)``."""
    return pd.date_range(day_start(start), day_start(end), freq=f"{interval_minutes}min", inclusive="left")


def now() -> datetime:
    return datetime.now(MARKET_TZ)


def ensure_aware(ts: datetime, field_name: str = "timestamp") -> datetime:
    """Reject naive datetimes instead of guessing their zone."""
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"{field_name}={ts.isoformat()}: must carry a timezone offset (e.g. +08:00)")
    return ts.astimezone(MARKET_TZ)


def to_day(value: str | date) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def add_days(day: date, n: int) -> date:
    return day + timedelta(days=n)

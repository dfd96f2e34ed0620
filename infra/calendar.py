"""The market calendar: Chinese public holidays, the days production and demand follow."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import holidays as holiday_calendars


@lru_cache(maxsize=16)
def _holidays(first_year: int, last_year: int) -> dict[dt.date, str]:
    return dict(holiday_calendars.China(years=list(range(first_year, last_year + 1))))


def china_holidays(years: range) -> dict[dt.date, str]:
    """Public holidays of mainland China for ``years`` (from the maintained ``holidays`` package)."""
    return dict(_holidays(years.start, years.stop - 1)) if len(years) else {}


def is_off_day(day: dt.date) -> bool:
    """Weekends and public holidays."""
    return day.weekday() >= 5 or day in _holidays(day.year, day.year)

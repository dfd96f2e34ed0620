"""The market calendar: Chinese public holidays and make-up working days (调休).

China moves working days around its holidays: a weekend day becomes a working day (for
example Saturday 2026-02-28 is worked for the Spring Festival break) and a weekday becomes a
day off. Production and demand follow the official schedule, not the weekday, so demand
response baselines and forecasts must know both.

The source is the maintained ``holidays`` package (already a dependency; it ships the State
Council's yearly schedule, the substituted days off as holidays and the make-up working days as
``weekend_workdays``). It was preferred to ``chinesecalendar`` because it is maintained for
every country the suite may meet, already in use, and does not raise for years it does not
know yet: such a year simply has its statutory holidays and no swaps (add them with
``PARKVPP``-free data updates: upgrade ``holidays``).
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import holidays as holiday_calendars


@lru_cache(maxsize=16)
def _calendar(first_year: int, last_year: int) -> holiday_calendars.HolidayBase:
    return holiday_calendars.China(years=list(range(first_year, last_year + 1)))


def _holidays(first_year: int, last_year: int) -> dict[dt.date, str]:
    return dict(_calendar(first_year, last_year))


def china_holidays(years: range) -> dict[dt.date, str]:
    """Public holidays (and substituted days off) of mainland China for ``years``."""
    return _holidays(years.start, years.stop - 1) if len(years) else {}


def makeup_workdays(years: range) -> set[dt.date]:
    """Weekend days that are official working days (调休 make-up days) in ``years``."""
    if not len(years):
        return set()
    cal = _calendar(years.start, years.stop - 1)
    return {d for d in getattr(cal, "weekend_workdays", set()) if years.start <= d.year < years.stop}


def is_makeup_workday(day: dt.date) -> bool:
    return day in makeup_workdays(range(day.year, day.year + 1))


def is_off_day(day: dt.date) -> bool:
    """Rest days: weekends that are not make-up working days, and public holidays."""
    if day in _calendar(day.year, day.year):
        return True
    return day.weekday() >= 5 and not is_makeup_workday(day)

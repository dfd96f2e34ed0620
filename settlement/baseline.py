"""Demand-response baselines: the mean of the last N similar days, per meter.

Method (N = ``market.demand_response.baseline_days``):

* *Similar* means the same day type: a workday, or a rest day (weekend or a Chinese
  statutory holiday from the ``holidays`` calendar). A holiday is compared with rest days;
  a make-up working day (调休, a worked weekend day) is a workday.
* Candidates are searched backwards from the day before, at most ``BASELINE_LOOKBACK_DAYS``.
* Excluded: days with a demand-response award (the park was not business as usual), days
  with no data, and, per meter, days on which that meter has any gap or implausible reading.
* Each meter (the park's grid connection and every asset) takes its own first N complete
  days, so one broken meter does not shorten every other baseline. Fewer than N found: the
  mean of those found, noted. None of the same type: the most recent complete days of any
  type, noted. Nothing at all: no baseline (delivery counts as zero), noted.
* Data: metering stored by this service; days before it from the telemetry in the
  time-series store (``infra.timeseries.read``). Assets the store does not
  record take their business-as-usual: storage and generators idle, schedulable loads at
  their daily energy spread evenly over their window.

The chosen days are recorded (provenance) so a replay recomputes the very same baseline.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Connection

from infra.scenario.model import Scenario
from infra.timeseries import read
from infra.timeutil import day_start
from settlement.facts import PLAUSIBILITY_MARGIN, rated_mw

# How far back similar days are searched. Method knob: long enough for N rest days around a
# week-long holiday, short enough that the season has not changed.
BASELINE_LOOKBACK_DAYS = 45
GRID = "__grid__"


@dataclass(frozen=True)
class DayProfile:
    """One earlier day's metered energy (MWh per interval) on the target's grid; NaN = unknown."""

    day: date
    source: str
    grid_mwh: np.ndarray
    assets_mwh: np.ndarray
    dr_event: bool = False


@dataclass(frozen=True)
class Baseline:
    grid_mwh: np.ndarray
    assets_mwh: np.ndarray
    provenance: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def energy_on_grid(mwh: np.ndarray, from_minutes: int, to_minutes: int) -> np.ndarray:
    """Energy per interval re-gridded (the last axis), flat power within an interval."""
    if from_minutes == to_minutes:
        return mwh
    power = mwh / (from_minutes / 60.0)
    if from_minutes % to_minutes == 0:
        power = np.repeat(power, from_minutes // to_minutes, axis=-1)
    else:
        k = to_minutes // from_minutes
        power = power.reshape(*power.shape[:-1], -1, k).mean(axis=-1)
    return power * (to_minutes / 60.0)


class RestDays(frozenset):
    """Chinese statutory holidays (the set) and the make-up working days (``workdays``, 调休)."""

    workdays: frozenset[date] = frozenset()


def rest_days(years: Iterable[int]) -> RestDays:
    """Holidays of the given years, with the weekend days that are worked (weekends are tested separately)."""
    from infra.calendar import china_holidays, makeup_workdays

    span = range(min(years), max(years) + 1)
    out = RestDays(china_holidays(span))
    out.workdays = frozenset(makeup_workdays(span))
    return out


def is_rest_day(day: date, holidays: Container[date]) -> bool:
    """A holiday, or a weekend day that is not a make-up working day."""
    if day in holidays:
        return True
    return day.weekday() >= 5 and day not in getattr(holidays, "workdays", ())


def _meter_rows(profile: DayProfile) -> np.ndarray:
    return np.vstack([profile.grid_mwh[None, :], profile.assets_mwh])


def compute_baseline(
    target: date,
    profiles: dict[date, DayProfile],
    n_days: int,
    holidays: Container[date],
    shape: tuple[int, int],
) -> Baseline:
    """Baselines for the grid meter and every asset from the given earlier days."""
    n_assets, _n_intervals = shape
    want_rest = is_rest_day(target, holidays)
    usable = sorted((d for d, p in profiles.items() if d < target and not p.dr_event), reverse=True)
    similar = [d for d in usable if is_rest_day(d, holidays) == want_rest]
    complete = {d: ~np.isnan(_meter_rows(profiles[d])).any(axis=1) for d in usable}
    chosen: list[list[date]] = [[] for _ in range(n_assets + 1)]
    for d in similar:
        for m in np.flatnonzero(complete[d]):
            if len(chosen[m]) < n_days:
                chosen[m].append(d)
    empty = [m for m, days in enumerate(chosen) if not days]
    for d in usable:  # meters with no complete similar day fall back to any day type
        for m in empty:
            if complete[d][m] and len(chosen[m]) < n_days:
                chosen[m].append(d)
    return _baseline_from_days(chosen, profiles, target, n_days, holidays, shape, want_rest)


def _baseline_from_days(
    chosen: list[list[date]],
    profiles: dict[date, DayProfile],
    target: date,
    n_days: int,
    holidays: Container[date],
    shape: tuple[int, int],
    want_rest: bool,
) -> Baseline:
    n_assets, n_intervals = shape
    values = np.full((n_assets + 1, n_intervals), np.nan)
    rows = {d: _meter_rows(profiles[d]) for d in {d for days in chosen for d in days}}  # once per day
    for m, days in enumerate(chosen):
        if days:
            values[m] = np.mean([rows[d][m] for d in days], axis=0)
    notes = baseline_notes(chosen, n_days, holidays, want_rest)
    used = sorted({d for days in chosen for d in days})
    provenance = {
        "target": target.isoformat(),
        "n_days": n_days,
        "sources": {d.isoformat(): profiles[d].source for d in used},
        "meters": [[d.isoformat() for d in days] for days in chosen],
    }
    return Baseline(values[0], values[1:], provenance, notes)


def baseline_notes(
    chosen: list[list[date]], n_days: int, holidays: Container[date], want_rest: bool
) -> list[str]:
    """What a user should know about the meters' chosen days (counts, so blocks can be merged)."""
    day_type = "rest day" if want_rest else "workday"
    notes = []
    short = [m for m, days in enumerate(chosen) if 0 < len(days) < n_days]
    other_type = [
        m
        for m, days in enumerate(chosen)
        if days and any(is_rest_day(d, holidays) != want_rest for d in days)
    ]
    empty = [m for m, days in enumerate(chosen) if not days]
    if short:
        notes.append(f"baseline: {len(short)} meter(s) found fewer than {n_days} similar days")
    if other_type:
        notes.append(
            f"baseline: {len(other_type)} meter(s) had no {day_type} and used days of the other type"
        )
    if empty:
        notes.append(f"baseline: {len(empty)} meter(s) have no baseline (no complete day in the look-back)")
    return notes


def baseline_from_provenance(
    provenance: dict[str, Any],
    profiles: dict[date, DayProfile],
    holidays: Container[date],
    shape: tuple[int, int],
) -> Baseline:
    """Recompute a recorded baseline from exactly the days it used (replay)."""
    chosen = [[date.fromisoformat(d) for d in days] for days in provenance["meters"]]
    missing = sorted({d for days in chosen for d in days} - set(profiles))
    if missing:
        raise ValueError(f"baseline replay: data for {', '.join(map(str, missing))} is no longer available")
    target = date.fromisoformat(provenance["target"])
    return _baseline_from_days(
        chosen, profiles, target, provenance["n_days"], holidays, shape, is_rest_day(target, holidays)
    )


def window(target: date) -> tuple[date, date]:
    return target - timedelta(days=BASELINE_LOOKBACK_DAYS), target


# --- profiles from the recorded history -----------------------------------------------------


def _business_as_usual_mw(asset: Any, hours: np.ndarray) -> np.ndarray | None:
    """Net injection of an asset the history does not record, when nobody dispatches it."""
    match asset.type:
        case "battery" | "gas_generator":
            return np.zeros_like(hours)
        case "ev_fleet":
            plugged = ((hours - asset.arrival_hour) % 24) < asset.plugged_hours
            return np.where(
                plugged, -min(asset.charge_mw, asset.energy_per_day_mwh / asset.plugged_hours), 0.0
            )
        case "shiftable_batch":
            inside = ((hours - asset.window_start_hour) % 24) < asset.window_hours
            return np.where(inside, -asset.energy_per_day_mwh / asset.window_hours, 0.0)
        case "electrolyser":
            return np.full_like(hours, -asset.h2_demand_kg_per_day * asset.kwh_per_kg_h2 / 1000.0 / 24.0)
    return None


# Telemetry quantity of each asset type and how it becomes net injection (MW).
_RECORDED: dict[str, tuple[str, Callable[[Any], float]]] = {
    "pv": ("pv_mw", lambda a: 1.0),
    "wind": ("wind_mw", lambda a: 1.0),
    "inflexible_load": ("load_mw", lambda a: -1.0),
    "interruptible_load": ("load_mw", lambda a: -1.0),
    "heat_pump": ("heat_mw_th", lambda a: -1.0 / a.cop),
    "data_centre": ("it_load_mw", lambda a: -a.pue),
}


def _recorded_mw(asset: Any, frame: Any) -> np.ndarray | None:
    col = _RECORDED.get(asset.type)
    name = f"{asset.id}.{col[0]}" if col else None
    if col is None or name not in frame or frame[name].isna().all():
        return None
    return frame[name].to_numpy() * col[1](asset)


HISTORY_INTERVAL_MINUTES = 15  # the grid telemetry is read on; converted to the target's grid


def _history_names(scenario: Scenario) -> list[str]:
    names = [f"{a.id}.{col[0]}" for a in scenario.park.assets if (col := _RECORDED.get(a.type))]
    return [*names, "park.pv_mw", "park.wind_mw", "park.load_mw"]


def history_profiles(
    conn: Connection, scenario: Scenario, days: list[date], interval_minutes: int
) -> dict[date, DayProfile]:
    """Telemetry profiles of the given days from the time-series store, on the target's grid (MWh per interval)."""
    if not days:
        return {}
    step = HISTORY_INTERVAL_MINUTES
    frame = read(
        conn,
        scenario.id,
        _history_names(scenario),
        min(days),
        max(days) + timedelta(days=1),
        interval_minutes=step,
        missing="nan",
    )
    h = step / 60.0
    hours = frame.index.hour.to_numpy() + frame.index.minute.to_numpy() / 60.0
    rows = []
    for asset in scenario.park.assets:
        mw = _recorded_mw(asset, frame)
        if mw is None:
            mw = _business_as_usual_mw(asset, hours.astype(float))
        mw = np.full(len(frame), np.nan) if mw is None else mw.astype(float)
        limit = rated_mw(asset) * PLAUSIBILITY_MARGIN
        rows.append(np.where(np.abs(mw) > limit, np.nan, mw))
    grid = (frame["park.pv_mw"] + frame["park.wind_mw"] - frame["park.load_mw"]).to_numpy()
    assets_mwh = np.vstack(rows) * h
    grid_mwh = grid * h
    out = {}
    index_days = frame.index.normalize()
    for d in days:
        sel = index_days == day_start(d)
        if not sel.any() or (np.isnan(assets_mwh[:, sel]).all() and np.isnan(grid_mwh[sel]).all()):
            continue
        out[d] = DayProfile(
            day=d,
            source="history",
            grid_mwh=energy_on_grid(grid_mwh[sel], step, interval_minutes),
            assets_mwh=energy_on_grid(assets_mwh[:, sel], step, interval_minutes),
        )
    return out

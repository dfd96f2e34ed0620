"""Baseline method: similar days, holidays, missing days, meter gaps, DR days, fallbacks, replay."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from infra.db import make_engine, migrate
from infra.scenario import load_scenario
from settlement.baseline import (
    DayProfile,
    baseline_from_provenance,
    compute_baseline,
    history_profiles,
    rest_days,
)
from sim.backfill import backfill

SHAPE = (2, 4)  # two assets, four intervals
HOLIDAYS = rest_days([2026])


def profile(day: date, level: float, *, gap_asset: int | None = None, dr: bool = False) -> DayProfile:
    assets = np.full(SHAPE, level)
    if gap_asset is not None:
        assets[gap_asset, 1] = np.nan
    return DayProfile(day, "metering", np.full(4, 10 * level), assets, dr_event=dr)


def days_back(target: date, n: int) -> list[date]:
    return [target - timedelta(days=i) for i in range(1, n + 1)]


def test_workday_takes_the_last_n_workdays_skipping_weekends() -> None:
    target = date(2026, 7, 15)  # Wednesday
    profiles = {d: profile(d, float(d.day)) for d in days_back(target, 14)}
    b = compute_baseline(target, profiles, 3, HOLIDAYS, SHAPE)
    # last three workdays: 14, 13 (Mon), 10 (Fri); 11 and 12 are the weekend.
    assert b.assets_mwh[0, 0] == pytest.approx((14 + 13 + 10) / 3)
    assert b.grid_mwh[0] == pytest.approx(10 * (14 + 13 + 10) / 3)
    assert b.provenance["meters"][0] == ["2026-07-14", "2026-07-13", "2026-07-10"]
    assert b.notes == []


def test_rest_day_uses_rest_days_including_holidays() -> None:
    target = date(2026, 10, 3)  # Saturday inside the National Day holiday
    profiles = {d: profile(d, float(d.day)) for d in days_back(target, 14)}
    b = compute_baseline(target, profiles, 3, HOLIDAYS, SHAPE)
    # 1 and 2 October are statutory holidays (rest days) and come first; then Sunday 27 September.
    assert b.provenance["meters"][0] == ["2026-10-02", "2026-10-01", "2026-09-27"]


def test_holiday_on_a_weekday_is_not_a_workday_candidate() -> None:
    target = date(2026, 10, 9)  # Friday after the holiday week
    profiles = {d: profile(d, float(d.day)) for d in days_back(target, 20)}
    b = compute_baseline(target, profiles, 3, HOLIDAYS, SHAPE)
    chosen = [date.fromisoformat(d) for d in b.provenance["meters"][0]]
    assert all(d.weekday() < 5 and d not in HOLIDAYS for d in chosen)
    assert date(2026, 10, 5) not in chosen  # Monday, still a statutory holiday


def test_missing_days_and_dr_days_are_skipped() -> None:
    target = date(2026, 7, 15)
    profiles = {d: profile(d, float(d.day), dr=d == date(2026, 7, 13)) for d in days_back(target, 14)}
    del profiles[date(2026, 7, 14)]  # no data at all
    b = compute_baseline(target, profiles, 3, HOLIDAYS, SHAPE)
    assert b.provenance["meters"][1] == ["2026-07-10", "2026-07-09", "2026-07-08"]


def test_a_meter_gap_only_skips_that_meter() -> None:
    target = date(2026, 7, 15)
    profiles = {
        d: profile(d, float(d.day), gap_asset=1 if d == date(2026, 7, 14) else None)
        for d in days_back(target, 14)
    }
    b = compute_baseline(target, profiles, 3, HOLIDAYS, SHAPE)
    assert b.provenance["meters"][1] == ["2026-07-14", "2026-07-13", "2026-07-10"]  # asset 0 keeps the 14th
    assert b.provenance["meters"][2] == [
        "2026-07-13",
        "2026-07-10",
        "2026-07-09",
    ]  # asset 1 goes one day further


def test_fewer_than_n_similar_days_and_fallback_to_other_type_are_noted() -> None:
    target = date(2026, 7, 15)
    only_weekend = {d: profile(d, 1.0) for d in (date(2026, 7, 11), date(2026, 7, 12))}
    b = compute_baseline(target, only_weekend, 3, HOLIDAYS, SHAPE)
    assert b.assets_mwh[0, 0] == pytest.approx(1.0)
    assert any("had no workday" in n for n in b.notes)
    assert any("fewer than 3" in n for n in b.notes)
    nothing = compute_baseline(target, {}, 3, HOLIDAYS, SHAPE)
    assert np.isnan(nothing.grid_mwh).all() and np.isnan(nothing.assets_mwh).all()
    assert any("no baseline" in n for n in nothing.notes)


def test_replay_from_provenance_reproduces_the_baseline_exactly() -> None:
    target = date(2026, 7, 15)
    at_settlement = {
        d: profile(d, float(d.day) * 1.37) for d in days_back(target, 30) if d != date(2026, 7, 14)
    }
    b = compute_baseline(target, at_settlement, 5, HOLIDAYS, SHAPE)
    # The 14th's metering arrived after the day was settled: a fresh computation would use it,
    # the replay must not.
    later = {**at_settlement, date(2026, 7, 14): profile(date(2026, 7, 14), 999.0)}
    assert not np.array_equal(compute_baseline(target, later, 5, HOLIDAYS, SHAPE).assets_mwh, b.assets_mwh)
    again = baseline_from_provenance(b.provenance, later, HOLIDAYS, SHAPE)
    assert np.array_equal(again.assets_mwh, b.assets_mwh) and np.array_equal(again.grid_mwh, b.grid_mwh)
    with pytest.raises(ValueError, match="no longer available"):
        baseline_from_provenance(b.provenance, {}, HOLIDAYS, SHAPE)


def test_history_profiles_cover_every_asset_and_drop_implausible_readings(sqlite_url: str) -> None:
    scenario = load_scenario("datong")
    days = [date(2026, 7, 6), date(2026, 7, 7)]
    migrate(sqlite_url)
    engine = make_engine(sqlite_url)
    backfill(engine, scenario, days[0], days[-1] + timedelta(days=1), lambda _m: None)
    conn = engine.connect()
    profiles = history_profiles(conn, scenario, days, 15)
    assert sorted(profiles) == days
    p = profiles[days[0]]
    ids = [a.id for a in scenario.park.assets]
    assert p.assets_mwh.shape == (len(ids), 96)
    pv = p.assets_mwh[ids.index("pv_central")]
    assert np.nanmax(pv) > 10 and np.nanmin(pv) >= 0  # a July day of a 300 MW plant, MWh per 15 min
    assert (p.assets_mwh[ids.index("bess_grid")] == 0).all()  # storage idle in business as usual
    batch = p.assets_mwh[ids.index("formation_batches")]
    assert batch.sum() == pytest.approx(-150.0)  # its daily energy spread over its window
    assert np.nanmax(np.abs(p.assets_mwh)) < 600 * 0.25 * 1.5
    # 5-minute grid: energy per interval is split evenly.
    fine = history_profiles(conn, scenario, days[:1], 5)[days[0]]
    conn.close()
    assert fine.grid_mwh.shape == (288,)
    assert np.nansum(fine.grid_mwh) == pytest.approx(np.nansum(p.grid_mwh))


def test_makeup_working_days_are_workdays() -> None:
    """调休: Saturday 2026-02-28 is worked for the Spring Festival; Friday 2026-02-20 is off."""
    from infra.calendar import is_makeup_workday, is_off_day, makeup_workdays

    saturday, friday = date(2026, 2, 28), date(2026, 2, 20)
    assert saturday.weekday() == 5 and is_makeup_workday(saturday) and not is_off_day(saturday)
    assert friday.weekday() == 4 and is_off_day(friday)
    assert date(2026, 9, 20) in makeup_workdays(range(2026, 2027))  # a Sunday worked for National Day
    assert is_off_day(date(2026, 3, 1))  # an ordinary Sunday
    from settlement.baseline import is_rest_day

    calendar = rest_days([2026])
    assert not is_rest_day(saturday, calendar) and is_rest_day(friday, calendar)
    assert is_rest_day(date(2026, 3, 7), calendar) and not is_rest_day(date(2026, 3, 6), calendar)

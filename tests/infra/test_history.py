"""The synthetic history: deterministic, physically bounded, with the flaws real meters have."""

from __future__ import annotations

from datetime import date

import numpy as np

from infra.scenario import load_scenario
from sim.history import generate_year, load_history


def test_same_window_gives_the_same_numbers_and_windows_agree() -> None:
    s = load_scenario("datong")
    a = load_history(s, date(2026, 7, 1), date(2026, 7, 8))
    b = load_history(s, date(2026, 7, 1), date(2026, 7, 8))
    c = load_history(s, date(2026, 7, 5), date(2026, 7, 6))
    assert a.equals(b)
    assert a.loc[c.index].equals(c)
    assert len(a) == 7 * 96 and str(a.index.tz) == "Asia/Shanghai"
    assert a.index[0].isoformat() == "2026-07-01T00:00:00+08:00"


def test_year_boundary_window_spans_two_years() -> None:
    frame = load_history(load_scenario("chifeng"), date(2025, 12, 31), date(2026, 1, 2))
    assert len(frame) == 2 * 96 and frame.index.is_monotonic_increasing


def test_physical_bounds_and_scenario_targets() -> None:
    s = load_scenario("datong")
    truth = generate_year(s, 2026)
    pv = truth["pv_central.pv_mw"]
    assert pv.min() >= 0 and pv.max() <= 300 + 1e-9
    night = truth.index.hour.isin([0, 1, 2, 3, 22, 23])
    assert pv[night].max() == 0
    wind_flh = truth["wind_farm.wind_mw"].sum() * 0.25 / 200
    assert abs(wind_flh - 1700) < 100, (
        "calibrated to the plan's ~1,700 full-load hours (outages lose a little)"
    )
    market = s.market
    for col in ("market.price_da_cny_per_mwh", "market.price_rt_cny_per_mwh"):
        assert (
            truth[col]
            .between(market.clearing_price_floor_cny_per_mwh, market.clearing_price_cap_cny_per_mwh)
            .all()
        )
    hours = truth.index.hour
    da = truth["market.price_da_cny_per_mwh"]
    assert da[(hours >= 11) & (hours < 15)].mean() < da[(hours >= 18) & (hours < 21)].mean() - 100, (
        "solar dip, evening peak"
    )
    assert truth["heat_pumps.heat_mw_th"].max() <= 281.8 + 1e-9


def test_recorded_view_has_meter_gaps_that_truth_does_not() -> None:
    s = load_scenario("datong")
    recorded = load_history(s, date(2026, 1, 1), date(2027, 1, 1), view="recorded")
    truth = load_history(s, date(2026, 1, 1), date(2027, 1, 1), view="truth")
    assert truth.isna().sum().sum() == 0
    assert recorded["cell_plant_load.load_mw"].isna().sum() > 0
    assert recorded["market.price_da_cny_per_mwh"].isna().sum() == 0, "prices are published, not metered"
    measured = recorded["cell_plant_load.load_mw"].notna()
    diff = (recorded["cell_plant_load.load_mw"] - truth["cell_plant_load.load_mw"])[measured]
    assert (diff.abs() > 1e-9).sum() < 20, "only rare spikes differ from the truth"


def test_weather_forecast_error_grows_with_lead_time() -> None:
    truth = generate_year(load_scenario("datong"), 2026)
    errors = [
        np.abs(truth[f"weather_fc{k}.wind_speed_ms"] - truth["weather.wind_speed_ms"]).mean()
        for k in (1, 2, 3)
    ]
    assert errors[0] < errors[1] < errors[2]
    assert errors[0] > 0.3, "day-ahead weather is a forecast, not the actual"

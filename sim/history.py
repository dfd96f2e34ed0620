"""Deterministic 15-minute history of every asset, the park and the market (synthetic).

A calendar year is generated at a time from the scenario and its seed, so any window gives
the same numbers. Two views exist:

* ``truth``: what physically happened (PV and wind include outages);
* ``recorded``: what the meters recorded: truth plus meter gaps (NaN) and rare spikes.

Columns are ``<owner>.<quantity>``: ``pv_central.pv_mw``, ``cell_plant_load.load_mw``,
``heat_pumps.heat_mw_th``, ``ai_compute.it_load_mw``, ``park.load_mw``,
``market.price_da_cny_per_mwh``, ``weather.ghi_wm2`` and the day-ahead weather forecasts
``weather_fc1.*`` .. ``weather_fc3.*`` (issued 1 to 3 days ahead).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from infra.calendar import is_off_day
from infra.scenario.model import Scenario, Wind
from infra.settings import get_settings
from infra.timeutil import MARKET_TZ, day_start
from sim import loads, physics, prices, weather
from sim.noise import ar1_across_years, rng

log = logging.getLogger(__name__)

SIMULATOR_VERSION = "3"
INTERVAL_MINUTES = 15
PER_DAY = 1440 // INTERVAL_MINUTES
DT_H = INTERVAL_MINUTES / 60.0
MEASURED_QUANTITIES = ("pv_mw", "wind_mw", "load_mw", "heat_mw_th", "it_load_mw")


def series_id(owner: str, quantity: str) -> str:
    return f"{owner}.{quantity}"


def year_index(year: int) -> pd.DatetimeIndex:
    return pd.date_range(
        pd.Timestamp(year=year, month=1, day=1, tz=MARKET_TZ),
        pd.Timestamp(year=year + 1, month=1, day=1, tz=MARKET_TZ),
        freq=f"{INTERVAL_MINUTES}min",
        inclusive="left",
    )


def _off_days(index: pd.DatetimeIndex) -> np.ndarray:
    """1 on rest days (weekends other than make-up working days, and public holidays)."""
    days = pd.Series(index.date)
    rest = {d: is_off_day(d) for d in days.unique()}
    return days.map(rest).to_numpy(dtype=float)


def _apply_outages(values: np.ndarray, scenario: Scenario, asset_id: str, year: int) -> np.ndarray:
    """Partial outages: some days lose 20-60 % of capacity for 2-12 hours."""
    sim = scenario.park.simulation
    gen = rng(sim.seed, "outage", asset_id, year)
    out = values.copy()
    n_days = len(values) // PER_DAY
    for day in np.flatnonzero(gen.random(n_days) < sim.outage_probability_per_day):
        start = day * PER_DAY + int(gen.integers(0, PER_DAY))
        length = int(gen.integers(8, 48))
        out[start : start + length] *= 1.0 - gen.uniform(0.2, 0.6)
    return out


# --- wind generation -------------------------------------------------------------------------
# A partial wind outage stops a group of turbines (a collector feeder, icing, maintenance); the
# farm controller stops them, and later restarts them, a quarter of the group per interval.
WIND_OUTAGE_RAMP_STEPS = 4


def _wind_farm_mw(
    scenario: Scenario, asset: Wind, wind_10m_ms: np.ndarray, reference_wind_10m_ms: np.ndarray, year: int
) -> np.ndarray:
    """Farm output: the park's wind at hub height, the turbine-by-turbine fluctuations left after
    averaging over the farm, the farm's aggregate power curve, and partial outages."""
    sim = scenario.park.simulation
    factor = physics.calibrate_site_factor(asset, reference_wind_10m_ms, DT_H)
    n = len(wind_10m_ms)
    fluctuation = ar1_across_years(
        sim.seed,
        f"wind-turbines-{asset.id}",
        year,
        n,
        len(year_index(year - 1)),
        physics.farm_fluctuation_fraction(asset),
        float(np.exp(-INTERVAL_MINUTES / physics.TURBINE_WIND_TAU_MIN)),
    )
    hub = physics.hub_wind_ms(asset, wind_10m_ms, factor) * (1.0 + fluctuation)
    return physics.wind_power_mw(asset, hub) * _wind_availability(scenario, asset, year, n)


def _wind_availability(scenario: Scenario, asset: Wind, year: int, n: int) -> np.ndarray:
    """Fraction of the farm's turbines running. Some days (drawn like the other assets' outages)
    lose 20-60 % of the turbines for 2-12 hours, stopped and restarted in sequence."""
    sim = scenario.park.simulation
    gen = rng(sim.seed, "outage", asset.id, year)
    steps = WIND_OUTAGE_RAMP_STEPS
    lost = np.zeros(n)
    for day in np.flatnonzero(gen.random(n // PER_DAY) < sim.outage_probability_per_day):
        start = day * PER_DAY + int(gen.integers(0, PER_DAY))
        length = int(gen.integers(8, 48))
        group = round(gen.uniform(0.2, 0.6) * asset.turbines) / asset.turbines
        since = np.arange(n) - start
        stopping = (since + 1) / steps
        restarting = (length + steps - 1 - since) / steps
        lost = np.maximum(lost, group * np.clip(np.minimum(stopping, restarting), 0.0, 1.0))
    return 1.0 - lost


def _flexible_baseline_mw(
    scenario: Scenario, index: pd.DatetimeIndex, frame: dict[str, np.ndarray]
) -> np.ndarray:
    """Business-as-usual consumption of the flexible loads (no optimisation), for park totals."""
    hours = index.hour.to_numpy() + index.minute.to_numpy() / 60.0
    total = np.zeros(len(index))
    for a in scenario.park.assets:
        if a.type == "heat_pump":
            total += frame[series_id(a.id, "heat_mw_th")] / a.cop
        elif a.type == "data_centre":
            total += frame[series_id(a.id, "it_load_mw")] * a.pue
        elif a.type == "ev_fleet":
            plugged = ((hours - a.arrival_hour) % 24) < a.plugged_hours
            total += plugged * min(a.charge_mw, a.energy_per_day_mwh / a.plugged_hours)
        elif a.type == "shiftable_batch":
            window = ((hours - a.window_start_hour) % 24) < a.window_hours
            total += window * a.energy_per_day_mwh / a.window_hours
        elif a.type == "electrolyser":
            total += a.h2_demand_kg_per_day * a.kwh_per_kg_h2 / 1000.0 / 24.0
    return total


def generate_year(scenario: Scenario, year: int) -> pd.DataFrame:
    """The physical truth for one calendar year."""
    park, market = scenario.park, scenario.market
    sim, loc = park.simulation, park.location
    index = year_index(year)
    actual = weather.actual_weather(loc, sim, index)
    cols: dict[str, np.ndarray] = {f"weather.{c}": actual[c].to_numpy() for c in actual.columns}
    forecasts = {lead: weather.forecast_weather(actual, sim, lead) for lead in weather.LEAD_DAYS}
    for lead, fc in forecasts.items():
        for c in fc.columns:
            cols[f"weather_fc{lead}.{c}"] = fc[c].to_numpy()

    temp = actual["temp_air_c"].to_numpy()
    reference_wind = weather.actual_weather(loc, sim, year_index(2025))["wind_speed_ms"].to_numpy()
    for a in park.assets:
        if a.type == "pv":
            cols[series_id(a.id, "pv_mw")] = _apply_outages(
                physics.pv_power_for_index(a, loc, index, actual), scenario, a.id, year
            )
        elif a.type == "wind":
            cols[series_id(a.id, "wind_mw")] = _wind_farm_mw(
                scenario, a, actual["wind_speed_ms"].to_numpy(), reference_wind, year
            )
        elif a.type == "inflexible_load":
            cols[series_id(a.id, "load_mw")] = loads.industrial_load_mw(a, sim, index, temp)
        elif a.type == "interruptible_load":
            cols[series_id(a.id, "load_mw")] = loads.interruptible_baseline_mw(a, sim, index)
        elif a.type == "heat_pump":
            cols[series_id(a.id, "heat_mw_th")] = loads.heat_demand_mw_th(a, sim, index, temp)
        elif a.type == "data_centre":
            cols[series_id(a.id, "it_load_mw")] = loads.it_load_mw(a, sim, index)

    def total(quantity: str) -> np.ndarray:
        keys = [k for k in cols if k.endswith("." + quantity) and not k.startswith(("park.", "weather"))]
        return np.sum([cols[k] for k in keys], axis=0) if keys else np.zeros(len(index))

    cols["park.pv_mw"] = total("pv_mw")
    cols["park.wind_mw"] = total("wind_mw")
    cols["park.load_mw"] = total("load_mw") + _flexible_baseline_mw(scenario, index, cols)

    clear_peak = max(float(actual["clearsky_ghi_wm2"].max()), 1.0)
    da, rt = prices.prices_cny_per_mwh(
        market,
        sim,
        index,
        solar_shape_forecast=forecasts[1]["ghi_wm2"].to_numpy() / clear_peak,
        solar_shape_actual=actual["ghi_wm2"].to_numpy() / clear_peak,
        wind_forecast_ms=forecasts[1]["wind_speed_ms"].to_numpy(),
        wind_actual_ms=actual["wind_speed_ms"].to_numpy(),
        is_off_day=_off_days(index),
    )
    cols["market.price_da_cny_per_mwh"] = da
    cols["market.price_rt_cny_per_mwh"] = rt
    return pd.DataFrame(cols, index=index)


def recorded_view(truth: pd.DataFrame, scenario: Scenario, year: int) -> pd.DataFrame:
    """Truth as the meters recorded it: gaps of 1-6 hours and rare single-interval spikes."""
    sim = scenario.park.simulation
    out = truth.copy()
    n_days = len(out) // PER_DAY
    for col in out.columns:
        if col.split(".", 1)[1] not in MEASURED_QUANTITIES:
            continue
        gen = rng(sim.seed, "meter", col, year)
        values = out[col].to_numpy(copy=True)
        for day in np.flatnonzero(gen.random(n_days) < sim.meter_gap_probability_per_day):
            start = day * PER_DAY + int(gen.integers(0, PER_DAY))
            values[start : start + int(gen.integers(4, 25))] = np.nan
        spikes = np.flatnonzero(gen.random(len(values)) < 1.0 / (PER_DAY * 60))
        values[spikes] = values[spikes] * gen.uniform(3, 8, len(spikes)) + np.nanmax(values) * 0.5
        out[col] = values
    return out


# Assets that never appear in the history (their output is decided by dispatch, not the weather).
_NOT_IN_HISTORY = ("battery", "gas_generator")


def history_key(scenario: Scenario) -> str:
    """What the generated history depends on: the park's place, simulator settings, the assets that
    produce or consume by themselves, and the market (not its exchange simulator's settings, which
    clear bids and never shape the history). Enrolling a battery keeps the same history."""
    park = scenario.park
    relevant = {
        "location": park.location.model_dump(),
        "simulation": park.simulation.model_dump(),
        "assets": [a.model_dump() for a in park.assets if a.type not in _NOT_IN_HISTORY],
        "market": scenario.market.model_dump(mode="json", exclude={"exchange_simulator"}),
    }
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _cache_path(scenario: Scenario, year: int, view: str) -> Path:
    name = f"{scenario.id}-{history_key(scenario)}-sim{SIMULATOR_VERSION}-{year}-{view}.parquet"
    return get_settings().run_dir / "history" / name


_loaded: dict[Path, pd.DataFrame] = {}


def year_frame(scenario: Scenario, year: int, view: str = "recorded") -> pd.DataFrame:
    """One year of history, generated once, cached as parquet under the run directory and kept
    in memory (callers receive slices, never the cached frame itself)."""
    if view not in ("truth", "recorded"):
        raise ValueError(f"view={view!r}: must be 'truth' or 'recorded'")
    path = _cache_path(scenario, year, view)
    if path in _loaded:
        return _loaded[path]
    if path.exists():
        _loaded[path] = pd.read_parquet(path)
        return _loaded[path]
    log.info("generating %s history for %s %d", view, scenario.id, year)
    truth = generate_year(scenario, year)
    for name, frame in (("truth", truth), ("recorded", recorded_view(truth, scenario, year))):
        target = _cache_path(scenario, year, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        frame.to_parquet(tmp)
        os.replace(tmp, target)
    return year_frame(scenario, year, view)


def load_history(scenario: Scenario, start: date, end: date, view: str = "recorded") -> pd.DataFrame:
    """History for days ``[start, end)`` in Asia/Shanghai time."""
    if end <= start:
        raise ValueError(f"history window [{start}, {end}) is empty")
    frames = [
        year_frame(scenario, y, view) for y in range(start.year, end.year + (end.month > 1 or end.day > 1))
    ]
    frame = pd.concat(frames) if len(frames) > 1 else frames[0]
    return frame.loc[(frame.index >= day_start(start)) & (frame.index < day_start(end))].copy()


def history_window(scenario: Scenario, delivery_day: date) -> tuple[date, date]:
    """The training window before a delivery day: ``history_days`` up to (excluding) the day."""
    from datetime import timedelta

    return delivery_day - timedelta(days=scenario.park.simulation.history_days), delivery_day

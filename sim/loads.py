"""Synthetic consumption: industrial shift profiles (demandlib), heat demand, compute load.

Industrial loads start from demandlib's step profiles (day/night x weekday/weekend/holiday
with Chinese holidays), are smoothed, given shift-change dips and a little weather
sensitivity, scaled to the scenario's peak and load factor, and carry autocorrelated noise.
"""

from __future__ import annotations

import datetime as dt
import warnings
from functools import lru_cache

import numpy as np
import pandas as pd
from demandlib import bdew
from demandlib.particular_profiles import IndustrialLoadProfile

from infra.calendar import china_holidays
from infra.scenario.model import DataCentre, HeatPump, InflexibleLoad, InterruptibleLoad, Simulation
from sim.noise import ar1, daily_offsets, rng

# (workday start, workday end, night factor relative to day) for each shift pattern.
SHIFT_PATTERNS = {
    "three_shift": (dt.time(8, 0), dt.time(20, 0), 0.93),
    "two_shift": (dt.time(6, 0), dt.time(22, 0), 0.35),
    "day_shift": (dt.time(8, 0), dt.time(18, 0), 0.2),
    "flat": (dt.time(0, 0), dt.time(23, 45), 1.0),
}
SHIFT_CHANGES_H = (0.0, 8.0, 16.0)
SHIFT_CHANGE_DIP = 0.04
HEATING_BASE_C = 15.0
COOLING_BASE_C = 24.0


def _naive(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    return index.tz_localize(None)


@lru_cache(maxsize=32)
def _base_shape(profile: str, weekend_factor: float, holiday_factor: float, year: int) -> np.ndarray:
    """Unscaled 15-minute shape for one calendar year."""
    index = pd.date_range(f"{year}-01-01", f"{year + 1}-01-01", freq="15min", inclusive="left")
    hol = china_holidays(range(year, year + 1))
    if profile == "commercial":
        # demandlib's ElecSlp calls warnings.simplefilter("error") process-wide; keep that local.
        with warnings.catch_warnings():
            shape = bdew.ElecSlp(year, holidays=hol).get_scaled_profiles({"g0": 1.0})["g0"].to_numpy()
        return shape / shape.max()
    am, pm, night = SHIFT_PATTERNS[profile]
    factors = {
        "week": {"day": 1.0, "night": night},
        "weekend": {"day": weekend_factor, "night": night * weekend_factor},
        "holiday": {"day": holiday_factor, "night": night * holiday_factor},
    }
    shape = IndustrialLoadProfile(index, holidays=hol).simple_profile(
        1.0, am=am, pm=pm, profile_factors=factors
    )
    shape = pd.Series(shape.to_numpy()).rolling(4, center=True, min_periods=1).mean().to_numpy()
    if profile in ("three_shift", "two_shift"):
        hours = index.hour.to_numpy() + index.minute.to_numpy() / 60.0
        for change in SHIFT_CHANGES_H:
            shape = shape * (1.0 - SHIFT_CHANGE_DIP * (np.abs(hours - change) < 0.5))
    return shape / shape.max()


def _fit_load_factor(shape: np.ndarray, load_factor: float) -> np.ndarray:
    """Reshape a 0..1 profile so its mean equals ``load_factor`` while its peak stays 1."""
    mean = shape.mean()
    if mean >= load_factor:  # deepen the valleys: shape ** k
        lo, hi = 1.0, 50.0
        for _ in range(50):
            k = (lo + hi) / 2
            lo, hi = (k, hi) if (shape**k).mean() > load_factor else (lo, k)
        return shape ** ((lo + hi) / 2)
    c = (load_factor - mean) / (1.0 - mean)  # raise the floor: c + (1-c) * shape
    return c + (1.0 - c) * shape


def industrial_load_mw(
    asset: InflexibleLoad, sim: Simulation, index: pd.DatetimeIndex, temp_air_c: np.ndarray
) -> np.ndarray:
    year = index[0].year
    shape = _fit_load_factor(
        _base_shape(asset.profile, asset.weekend_factor, asset.holiday_factor, year), asset.load_factor
    )
    shape = shape[_positions_in_year(index)]
    weather = 1.0 + 0.004 * np.maximum(temp_air_c - 22.0, 0.0) + 0.002 * np.maximum(5.0 - temp_air_c, 0.0)
    gen = rng(sim.seed, "load", asset.id, year)
    n = len(index)
    noise = (
        1.0
        + daily_offsets(gen, -(-n // 96), sim.load_noise_fraction * 0.5, 96)[:n]
        + ar1(gen, n, sim.load_noise_fraction, 0.9)
    )
    return np.maximum(asset.peak_mw * shape * weather * noise, 0.0)


def _positions_in_year(index: pd.DatetimeIndex) -> np.ndarray:
    start = pd.Timestamp(year=index[0].year, month=1, day=1, tz=index.tz)
    return ((index - start) / pd.Timedelta(minutes=15)).to_numpy().astype(int)


def interruptible_baseline_mw(
    asset: InterruptibleLoad, sim: Simulation, index: pd.DatetimeIndex
) -> np.ndarray:
    gen = rng(sim.seed, "interruptible", asset.id, index[0].year)
    weekend = np.where(index.dayofweek.to_numpy() >= 5, 0.95, 1.0)
    return asset.baseline_mw * weekend * (1.0 + ar1(gen, len(index), sim.load_noise_fraction, 0.9))


def heat_demand_mw_th(
    asset: HeatPump, sim: Simulation, index: pd.DatetimeIndex, temp_air_c: np.ndarray
) -> np.ndarray:
    """Thermal demand served by the heat pumps: space heating in heating months, cooling otherwise."""
    design_c = np.percentile(temp_air_c, 1)
    hot_c = np.percentile(temp_air_c, 99.5)
    hours = index.hour.to_numpy() + index.minute.to_numpy() / 60.0
    daily = 1.0 + 0.1 * np.cos(2 * np.pi * (hours - 7.0) / 24.0)  # colder mornings, occupancy
    heating = np.isin(index.month.to_numpy(), asset.heating_months)
    heat = asset.heat_peak_mw_th * np.clip((HEATING_BASE_C - temp_air_c) / (HEATING_BASE_C - design_c), 0, 1)
    cool = asset.cooling_peak_mw_th * np.clip(
        (temp_air_c - COOLING_BASE_C) / max(hot_c - COOLING_BASE_C, 1.0), 0, 1
    )
    demand = np.where(heating, heat * daily, cool)
    gen = rng(sim.seed, "heat", asset.id, index[0].year)
    # The plant is sized for its design peak: demand beyond it is met by backup, not the heat pumps.
    peak = np.where(heating, asset.heat_peak_mw_th, asset.cooling_peak_mw_th)
    return np.clip(demand * (1.0 + ar1(gen, len(index), 0.05, 0.9)), 0.0, peak)


def it_load_mw(asset: DataCentre, sim: Simulation, index: pd.DatetimeIndex) -> np.ndarray:
    """IT load of a compute centre: high and steady with a mild daily cycle and job noise."""
    hours = index.hour.to_numpy() + index.minute.to_numpy() / 60.0
    gen = rng(sim.seed, "it", asset.id, index[0].year)
    level = 0.86 + 0.05 * np.sin(2 * np.pi * (hours - 9.0) / 24.0) + ar1(gen, len(index), 0.025, 0.95)
    return asset.it_load_mw * np.clip(level, 0.5, 1.0)

"""Synthetic day-ahead and real-time prices with a high-renewables province's daily shape.

The day-ahead price has a midday solar dip (deeper on days forecast sunny), morning and
evening peaks, two-peaked seasonality (winter heating, summer cooling), cheaper weekends and
holidays, lower prices when strong wind is forecast, and daily and intraday noise. The
real-time price adds the surprise in actual sun and wind, noise and occasional evening spikes.
Both stay inside the market's clearing limits.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from infra.scenario.model import MarketRules, Simulation
from sim.noise import ar1, daily_offsets, rng

WIND_PRICE_CNY_PER_MS = 12.0


def _bump(hours: np.ndarray, centre: float, width: float) -> np.ndarray:
    return np.exp(-0.5 * ((hours - centre) / width) ** 2)


def prices_cny_per_mwh(
    market: MarketRules,
    sim: Simulation,
    index: pd.DatetimeIndex,
    solar_shape_forecast: np.ndarray,
    solar_shape_actual: np.ndarray,
    wind_forecast_ms: np.ndarray,
    wind_actual_ms: np.ndarray,
    is_off_day: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Day-ahead and real-time prices; solar shapes are GHI scaled to 0..1 by the year's clear-sky peak."""
    shape = market.price_shape
    n = len(index)
    hours = index.hour.to_numpy() + index.minute.to_numpy() / 60.0
    doy = index.dayofyear.to_numpy()
    seasonal = 1.0 + shape.seasonal_amplitude_fraction * np.cos(4 * np.pi * (doy - 20) / 365.25)
    gen = rng(sim.seed, "prices", market.id, index[0].year)
    wind_mean = float(np.mean(wind_forecast_ms))
    day_ahead = (
        shape.mean_cny_per_mwh * seasonal
        + shape.morning_peak_cny_per_mwh * _bump(hours, 8.5, 1.2)
        + shape.evening_peak_cny_per_mwh * _bump(hours, 19.0, 1.6)
        - 0.15 * shape.mean_cny_per_mwh * _bump(hours, 3.5, 2.0)
        - shape.solar_dip_cny_per_mwh * 1.6 * solar_shape_forecast
        - WIND_PRICE_CNY_PER_MS * (wind_forecast_ms - wind_mean)
        - shape.weekend_discount_cny_per_mwh * is_off_day
        + daily_offsets(gen, -(-n // 96), shape.daily_noise_cny_per_mwh, 96)[:n]
        + ar1(gen, n, shape.daily_noise_cny_per_mwh * 0.35, 0.9)
    )
    evening = (hours >= 17) & (hours < 22)
    spikes = (gen.random(n) < shape.spike_probability * (1 + 3 * evening)) * gen.uniform(200, 700, n)
    real_time = (
        day_ahead
        - shape.solar_dip_cny_per_mwh * 1.6 * (solar_shape_actual - solar_shape_forecast)
        - WIND_PRICE_CNY_PER_MS * (wind_actual_ms - wind_forecast_ms)
        + ar1(gen, n, shape.real_time_noise_cny_per_mwh, 0.8)
        + spikes
    )
    lo, hi = market.clearing_price_floor_cny_per_mwh, market.clearing_price_cap_cny_per_mwh
    return np.clip(day_ahead, lo, hi).round(2), np.clip(real_time, lo, hi).round(2)

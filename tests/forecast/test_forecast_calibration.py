"""Quantiles never cross and generation respects physics."""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecast.calibration import fit_calibration, quantile_forecast
from forecast.series import SeriesSpec
from infra.timeutil import MARKET_TZ

LEVELS = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)


def _index(days: int = 20) -> pd.DatetimeIndex:
    return pd.date_range("2026-07-01", periods=days * 96, freq="15min", tz=MARKET_TZ)


def test_pv_quantiles_are_monotone_bounded_and_zero_at_night() -> None:
    spec = SeriesSpec("pv.pv_mw", "pv", "pv_mw", "pv", lower=0.0, upper=50.0, capacity=50.0)
    index = _index()
    gen = np.random.default_rng(3)
    hours = index.hour.to_numpy() + index.minute.to_numpy() / 60
    sun = np.clip(np.sin(np.pi * (hours - 6) / 12), 0, None)
    point = 48 * sun
    actual = np.clip(point + gen.normal(0, 8, len(index)) * (sun > 0), 0, 50)
    cal = fit_calibration(spec, LEVELS, index, point, actual, 20)
    night = sun == 0
    # A point forecast outside the bounds (e.g. a model overshoot) must still give bounded quantiles.
    q = quantile_forecast(spec, cal, index, point + 5, night)
    stacked = np.column_stack([q[level] for level in LEVELS])
    assert (np.diff(stacked, axis=1) >= 0).all()
    assert stacked.min() >= 0 and stacked.max() <= 50.0
    assert (stacked[night] == 0).all()
    assert (q[0.9][~night] > q[0.1][~night]).mean() > 0.9


def test_price_quantiles_stay_inside_clearing_limits_and_cover_about_80_percent() -> None:
    spec = SeriesSpec("market.price", None, "price_da_cny_per_mwh", "price", lower=0.0, upper=1500.0)
    index = _index(40)
    gen = np.random.default_rng(4)
    point = np.full(len(index), 300.0)
    actual = point + gen.normal(0, 40, len(index))
    half = len(index) // 2
    cal = fit_calibration(spec, LEVELS, index[:half], point[:half], actual[:half], 20)
    q = quantile_forecast(spec, cal, index[half:], point[half:], None)
    inside = (actual[half:] >= q[0.1]) & (actual[half:] <= q[0.9])
    # P10-P90 widened for 20 origins is 8-92 %; conformal ranks in hourly buckets of 80
    # residuals round outward (6th and 75th of 80): expected coverage (75 - 6) / 81 = 85 %.
    assert 0.80 <= inside.mean() <= 0.90
    near_floor = quantile_forecast(spec, cal, index[half:], np.full(len(index) - half, 10.0), None)
    near_cap = quantile_forecast(spec, cal, index[half:], np.full(len(index) - half, 1490.0), None)
    assert min(v.min() for v in near_floor.values()) == 0.0
    assert max(v.max() for v in near_cap.values()) == 1500.0

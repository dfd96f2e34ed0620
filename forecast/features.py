"""Exogenous features for the reduction models, all known at the forecast's data cut-off.

Per target interval ``t`` with issue cut-off ``c(t)`` and lead ``k`` (target day minus
issue day): calendar and holidays, production shifts, the day-``k`` weather forecast
(``weather_fc{k}.*``), clear-sky irradiance, the PV model and turbine power curve applied to
the forecast weather (``sim.physics``), the value ``k+1`` and 7 days earlier
and the mean of the last day before ``c(t)``. Nothing at or after ``c(t)`` is read:
:func:`build_features` checks it.
"""

from __future__ import annotations

from datetime import time
from functools import lru_cache

import numpy as np
import pandas as pd

from forecast.series import SeriesSpec
from infra.scenario.model import Scenario
from infra.timeutil import MARKET_TZ
from sim import physics
from sim.loads import SHIFT_PATTERNS, china_holidays
from sim.weather import solar_position

MAX_WEATHER_LEAD_DAYS = 3
COOLING_BASE_C = 24.0  # degree-day bases: tuning knobs of the features, not of the park
HEATING_BASE_C = 15.0


@lru_cache(maxsize=8)
def _holidays(first_year: int, last_year: int) -> frozenset:
    return frozenset(china_holidays(range(first_year, last_year + 1)))


def off_days(index: pd.DatetimeIndex) -> np.ndarray:
    """1 on weekends and Chinese public holidays (the calendar production shifts follow)."""
    hol = _holidays(index.min().year - 1, index.max().year + 1)
    days = index.tz_convert(MARKET_TZ).date
    return np.array([d.weekday() >= 5 or d in hol for d in days], dtype=float)


def calendar_frame(index: pd.DatetimeIndex) -> pd.DataFrame:
    hours = index.hour.to_numpy() + index.minute.to_numpy() / 60.0
    doy = index.dayofyear.to_numpy()
    two_pi = 2 * np.pi
    return pd.DataFrame(
        {
            "hour": hours,
            "tod_sin": np.sin(two_pi * hours / 24),
            "tod_cos": np.cos(two_pi * hours / 24),
            "tod_sin2": np.sin(2 * two_pi * hours / 24),
            "tod_cos2": np.cos(2 * two_pi * hours / 24),
            "dow": index.dayofweek.to_numpy().astype(float),
            "off_day": off_days(index),
            "doy_sin": np.sin(two_pi * doy / 365.25),
            "doy_cos": np.cos(two_pi * doy / 365.25),
            "month": index.month.to_numpy().astype(float),
        },
        index=index,
    )


def context_frame(scenario: Scenario | None, frame: pd.DataFrame) -> pd.DataFrame:
    """What every series shares: calendar, sun position and the weather forecasts."""
    ctx = calendar_frame(frame.index)
    if scenario is not None:
        sun = solar_position(scenario.park.location, frame.index)
        ctx["sun_zenith"] = sun["apparent_zenith"].to_numpy()
        ctx["sun_azimuth"] = sun["azimuth"].to_numpy()
    weather_cols = [c for c in frame.columns if c.startswith(("weather.", "weather_fc"))]
    return ctx.join(frame[weather_cols])


def _pv_model_mw(scenario: Scenario, asset_ids: tuple[str, ...], ctx: pd.DataFrame, lead: int) -> np.ndarray:
    prefix = f"weather_fc{lead}."
    total = np.zeros(len(ctx))
    for asset_id in asset_ids:
        total += physics.pv_power_mw(
            scenario.asset(asset_id),
            ctx["sun_zenith"].to_numpy(),
            ctx["sun_azimuth"].to_numpy(),
            ctx[prefix + "ghi_wm2"].to_numpy(),
            ctx[prefix + "temp_air_c"].to_numpy(),
            ctx[prefix + "wind_speed_ms"].to_numpy(),
            ctx.index.dayofyear.to_numpy(),
        )
    return total


_SITE_FACTORS: dict[tuple[str, str], float] = {}


def design_site_factor(scenario: Scenario, asset_id: str) -> float:
    """The wind farm's design calibration: the factor that gives its full-load hours on the TMY year.

    A design figure known before any metering, so it cannot leak actuals into a forecast.
    """
    from sim.history import year_index
    from sim.weather import actual_weather

    key = (scenario.version, asset_id)
    if key not in _SITE_FACTORS:
        reference = actual_weather(scenario.park.location, scenario.park.simulation, year_index(2025))
        _SITE_FACTORS[key] = physics.calibrate_site_factor(
            scenario.asset(asset_id), reference["wind_speed_ms"].to_numpy(), 0.25
        )
    return _SITE_FACTORS[key]


def _wind_model_mw(
    scenario: Scenario, asset_ids: tuple[str, ...], ctx: pd.DataFrame, lead: int
) -> np.ndarray:
    """Turbine power curve of each farm applied to the forecast wind at hub height."""
    total = np.zeros(len(ctx))
    for asset_id in asset_ids:
        asset = scenario.asset(asset_id)
        hub = physics.hub_wind_ms(
            asset, ctx[f"weather_fc{lead}.wind_speed_ms"].to_numpy(), design_site_factor(scenario, asset_id)
        )
        total += physics.wind_power_mw(asset, hub)
    return total


def _lead_weather(spec: SeriesSpec, scenario: Scenario | None, ctx: pd.DataFrame, lead: int) -> pd.DataFrame:
    prefix = f"weather_fc{lead}."
    if prefix + "ghi_wm2" not in ctx.columns:
        return pd.DataFrame(index=ctx.index)
    temp = ctx[prefix + "temp_air_c"].to_numpy()
    out = {
        "ghi_fc": ctx[prefix + "ghi_wm2"].to_numpy(),
        "temp_fc": temp,
        "wind_fc": ctx[prefix + "wind_speed_ms"].to_numpy(),
        "clearsky_ghi": ctx["weather.clearsky_ghi_wm2"].to_numpy(),
        "cooling_degrees": np.maximum(temp - COOLING_BASE_C, 0.0),
        "heating_degrees": np.maximum(HEATING_BASE_C - temp, 0.0),
    }
    if scenario is not None and spec.pv_assets and spec.kind == "pv":
        out["pv_model_mw"] = _pv_model_mw(scenario, spec.pv_assets, ctx, lead)
    if scenario is not None and spec.wind_assets and spec.kind == "wind":
        out["wind_model_mw"] = _wind_model_mw(scenario, spec.wind_assets, ctx, lead)
    return pd.DataFrame(out, index=ctx.index)


def _shift_features(spec: SeriesSpec, cal: pd.DataFrame) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    if spec.shift_profile in SHIFT_PATTERNS:
        am, pm, _night = SHIFT_PATTERNS[spec.shift_profile]
        start, end = _hours(am), _hours(pm)
        hours = cal["hour"].to_numpy()
        out["on_day_shift"] = ((hours >= start) & (hours < end) & (cal["off_day"].to_numpy() == 0)).astype(
            float
        )
    if spec.heating_months:
        out["heating_season"] = np.isin(cal["month"].to_numpy(), spec.heating_months).astype(float)
    return out


def _hours(t: time) -> float:
    return t.hour + t.minute / 60.0


def issue_cutoffs(rows: pd.DatetimeIndex, lead_days: int, issue_minutes: int) -> pd.DatetimeIndex:
    """Cut-off of the issue that forecasts each row ``lead_days`` ahead at the given time of day."""
    return rows.normalize() - pd.Timedelta(days=lead_days) + pd.Timedelta(minutes=issue_minutes)


def build_features(
    spec: SeriesSpec,
    scenario: Scenario | None,
    y: pd.Series,
    ctx: pd.DataFrame,
    rows: pd.DatetimeIndex,
    cutoffs: pd.DatetimeIndex,
    weather_cache: dict[int, pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """Feature rows for ``rows``, each using only data before its own cut-off.

    ``y`` is the cleaned series on ``ctx``'s grid (NaN where unknown), ``cutoffs`` the issue
    cut-off per row. The lead ``k`` is the target day minus the issue day (at least 1).
    """
    interval = ctx.index[1] - ctx.index[0]
    per_day = int(pd.Timedelta(days=1) / interval)
    lead = np.clip((rows.normalize() - cutoffs.normalize()).days.to_numpy(), 1, MAX_WEATHER_LEAD_DAYS)
    feats = calendar_frame(rows).reset_index(drop=True)
    for name, values in _shift_features(spec, feats).items():
        feats[name] = values
    weather_cache = {} if weather_cache is None else weather_cache
    positions = ctx.index.get_indexer(rows)
    if (positions < 0).any():
        raise ValueError(f"{spec.series_id}: feature rows outside the context window")
    for k in np.unique(lead):
        if int(k) not in weather_cache:
            weather_cache[int(k)] = _lead_weather(spec, scenario, ctx, int(k))
        block = weather_cache[int(k)]
        mask = lead == k
        for col in block.columns:
            if col not in feats:
                feats[col] = np.nan
            feats.loc[feats.index[mask], col] = block[col].to_numpy()[positions[mask]]
    for col in (c for c in ctx.columns if c.startswith("exog.")):
        feats[col] = ctx[col].to_numpy()[positions]
    # Lagged values: k+1 days (always before the cut-off) and a week.
    lag_days = lead + 1
    values = y.reindex(ctx.index)
    for name, lags in (("lag_recent", lag_days), ("lag_week", np.full(len(rows), 7))):
        source = rows - pd.to_timedelta(lags, unit="D")
        if (source >= cutoffs).any():
            raise AssertionError(f"{spec.series_id}: {name} would read data at or after the cut-off")
        feats[name] = values.reindex(source).to_numpy()
        feats[f"{name}_off_day"] = off_days(source)
    level = values.rolling(per_day, min_periods=per_day // 2).mean()
    feats["level_last_day"] = level.reindex(cutoffs - interval).to_numpy()
    feats.index = rows
    return feats

"""Exogenous features for the reduction models, all known at the forecast's data cut-off.

Per target interval ``t`` with issue cut-off ``c(t)`` and lead ``k`` (target day minus issue
day): calendar and Chinese holidays, sun position and clear-sky irradiance (pvlib, known
ahead), the day-``k`` weather forecast (``weather_fc{k}.*``) with the forecast clear-sky
index, the value ``k+1`` and 7 days earlier, the time-of-day profile of the last days of the
same type (working or off day) before ``c(t)`` and the mean of the last day before ``c(t)``.

No plant physics and no shift timetable: the models learn the mapping from forecast weather to
power and the production calendar from the series' own history. Nothing at or after ``c(t)``
is read: :func:`build_features` checks it.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from forecast.series import SeriesSpec
from forecast.solar import sun_and_clearsky
from infra.calendar import china_holidays
from infra.timeutil import MARKET_TZ

MAX_WEATHER_LEAD_DAYS = 3
COOLING_BASE_C = 24.0  # degree-day bases: tuning knobs of the features, not of the park
HEATING_BASE_C = 15.0
PROFILE_DAYS = 4  # the day-type profile averages this many most recent days of the same type
CLEAR_INDEX_MIN_WM2 = 20.0  # below this clear-sky GHI the clear-sky index is left at 0
WEATHER_QUANTITIES = ("ghi_wm2", "temp_air_c", "wind_speed_ms")


def weather_names() -> list[str]:
    """The weather series the forecast reads: measured and the day-1..3 forecasts."""
    owners = ["weather"] + [f"weather_fc{k}" for k in range(1, MAX_WEATHER_LEAD_DAYS + 1)]
    return [f"{o}.{q}" for o in owners for q in WEATHER_QUANTITIES]


@lru_cache(maxsize=8)
def _holidays(first_year: int, last_year: int) -> frozenset:
    return frozenset(china_holidays(range(first_year, last_year + 1)))


def off_days(index: pd.DatetimeIndex) -> np.ndarray:
    """1 on weekends and Chinese public holidays (the calendar production follows)."""
    if not len(index):
        return np.zeros(0)
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


def context_frame(
    site: tuple[float, float, float] | None, frame: pd.DataFrame, index: pd.DatetimeIndex | None = None
) -> pd.DataFrame:
    """What every series shares: calendar, sun position and clear-sky irradiance (when the site
    ``(latitude, longitude, altitude_m)`` is known) and the weather columns of ``frame``."""
    index = frame.index if index is None else index
    ctx = calendar_frame(index)
    if site is not None:
        ctx = ctx.join(sun_and_clearsky(*site, index))
    weather_cols = [c for c in frame.columns if c.startswith(("weather.", "weather_fc"))]
    return ctx.join(frame[weather_cols])


def scenario_site(scenario: object | None) -> tuple[float, float, float] | None:
    loc = getattr(getattr(scenario, "park", None), "location", None)
    return None if loc is None else (loc.latitude, loc.longitude, loc.altitude_m)


def _lead_weather(ctx: pd.DataFrame, lead: int) -> pd.DataFrame:
    prefix = f"weather_fc{lead}."
    if prefix + "ghi_wm2" not in ctx.columns:
        return pd.DataFrame(index=ctx.index)
    temp = ctx[prefix + "temp_air_c"].to_numpy()
    ghi = ctx[prefix + "ghi_wm2"].to_numpy()
    wind = ctx[prefix + "wind_speed_ms"].to_numpy()
    out = {
        "ghi_fc": ghi,
        "temp_fc": temp,
        "wind_fc": wind,
        "wind_fc_cubed": wind**3,
        "cooling_degrees": np.maximum(temp - COOLING_BASE_C, 0.0),
        "heating_degrees": np.maximum(HEATING_BASE_C - temp, 0.0),
    }
    if "clearsky_ghi" in ctx.columns:
        clear = ctx["clearsky_ghi"].to_numpy()
        safe = np.where(clear > CLEAR_INDEX_MIN_WM2, clear, 1.0)
        out["clear_index_fc"] = np.where(clear > CLEAR_INDEX_MIN_WM2, np.clip(ghi / safe, 0.0, 1.5), 0.0)
    return pd.DataFrame(out, index=ctx.index)


def _season_features(spec: SeriesSpec, cal: pd.DataFrame) -> dict[str, np.ndarray]:
    if spec.heating_months:
        return {"heating_season": np.isin(cal["month"].to_numpy(), spec.heating_months).astype(float)}
    return {}


def issue_cutoffs(rows: pd.DatetimeIndex, lead_days: int, issue_minutes: int) -> pd.DatetimeIndex:
    """Cut-off of the issue that forecasts each row ``lead_days`` ahead at the given time of day."""
    return rows.normalize() - pd.Timedelta(days=lead_days) + pd.Timedelta(minutes=issue_minutes)


def daytype_profile(
    values: pd.Series, rows: pd.DatetimeIndex, cutoffs: pd.DatetimeIndex, n_days: int = PROFILE_DAYS
) -> np.ndarray:
    """Per row: the mean at the same time of day over the last ``n_days`` whole days before its
    cut-off that are of the same type (working or off day); all recent days if none is."""
    interval = values.index[1] - values.index[0]
    per_day = int(pd.Timedelta(days=1) / interval)
    origin = values.index[0].normalize()
    day_no = ((values.index - origin) // pd.Timedelta(days=1)).to_numpy()
    slot = ((values.index - values.index.normalize()) // interval).to_numpy()
    n = int(day_no.max()) + 1
    matrix = np.full((n, per_day), np.nan)
    matrix[day_no, slot] = values.to_numpy()
    day_types = off_days(pd.date_range(origin, periods=n, freq="D"))
    row_day_type = off_days(rows)
    row_slot = ((rows - rows.normalize()) // interval).to_numpy()
    # Whole days ending at or before the cut-off: day j ends at origin + (j + 1) days.
    known_days = ((cutoffs - origin) // pd.Timedelta(days=1)).to_numpy()
    out = np.full(len(rows), np.nan)
    keys = np.stack([known_days, row_day_type.astype(int)], axis=1)
    for known, kind in np.unique(keys, axis=0):
        sel = (known_days == known) & (row_day_type == kind)
        last = int(min(known, n))
        if last <= 0:
            continue
        candidates = np.flatnonzero(day_types[:last] == kind)
        chosen = candidates[-n_days:] if len(candidates) else np.arange(max(last - n_days, 0), last)
        with np.errstate(all="ignore"):
            profile = np.nanmean(matrix[chosen], axis=0) if len(chosen) else np.full(per_day, np.nan)
        out[sel] = profile[row_slot[sel]]
    return out


def build_features(
    spec: SeriesSpec,
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
    for name, values in _season_features(spec, feats).items():
        feats[name] = values
    positions = ctx.index.get_indexer(rows)
    if (positions < 0).any():
        raise ValueError(f"{spec.series_id}: feature rows outside the context window")
    for col in ("cos_zenith", "clearsky_ghi"):
        if col in ctx.columns:
            feats[col] = ctx[col].to_numpy()[positions]
    weather_cache = {} if weather_cache is None else weather_cache
    for k in np.unique(lead):
        if int(k) not in weather_cache:
            weather_cache[int(k)] = _lead_weather(ctx, int(k))
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
    feats["profile_daytype"] = daytype_profile(values, rows, cutoffs)
    level = values.rolling(per_day, min_periods=per_day // 2).mean()
    feats["level_last_day"] = level.reindex(cutoffs - interval).to_numpy()
    feats.index = rows
    return feats

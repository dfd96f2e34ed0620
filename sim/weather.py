"""Weather at the park: TMY cloudiness and wind moved onto the park's own sun and calendar.

pvlib ships two TMY3 files (DOMAIN.md §5). We take the hourly clearness index (measured GHI
over the TMY site's clear-sky GHI) and the wind speed, shift them so solar noon lines up with
the park's solar noon, and apply the clearness index to the park's own clear-sky GHI
(Ineichen with the shipped Linke turbidity table). Day-ahead weather *forecasts* are the
actual weather plus autocorrelated errors that grow with lead time.

Wind: a TMY hourly wind speed is one anemometer's spot observation near the hour (a minute or
two of wind), so consecutive hours scatter far more (lag-1 correlation 0.77 in the Greensboro
file) than the hourly mean wind over a park of several km2 does (typically above 0.95). The
park's 10 m wind is therefore a Gaussian kernel regression of the spot readings (smooth, never
overshooting, evaluated at each interval's centre), plus the mesoscale fluctuations a whole park
feels together: an Ornstein-Uhlenbeck process with a one-hour time constant. Forecasts of it are
hour-scale (no mesoscale flicker).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pvlib

from infra.scenario.model import Location, Simulation
from infra.timeutil import MARKET_TZ_NAME
from sim.noise import ar1, ar1_across_years, daily_offsets, rng

TMY_UTC_OFFSET_H = {"723170TYA.CSV": -5.0, "703165TY.csv": -9.0}
LEAD_DAYS = (1, 2, 3)
MIN_CLEAR_GHI_WM2 = 20.0

WIND_SPOT_SMOOTHING_H = 1.5  # kernel width turning spot readings into the park's hourly-mean wind
WIND_MESO_TAU_MIN = 60.0  # time constant of the mesoscale fluctuations the whole park feels
WIND_MESO_FRACTION = 0.03  # their standard deviation, relative to the wind speed
WIND_FORECAST_SMOOTHING_MIN = 60.0  # a forecast resolves hours, not the mesoscale flicker


@lru_cache(maxsize=4)
def _tmy(weather_file: str) -> pd.DataFrame:
    path = Path(pvlib.__file__).parent / "data" / weather_file
    data, _meta = pvlib.iotools.read_tmy3(str(path), map_variables=True)
    return data


def _solar_noon_shift_h(loc: Location) -> float:
    """Hours to add to TMY local clock time so its solar noon matches the park's (UTC+8)."""
    tmy_noon = 12.0 + TMY_UTC_OFFSET_H[loc.weather_file] - loc.weather_file_longitude / 15.0
    park_noon = 12.0 + 8.0 - loc.longitude / 15.0
    return park_noon - tmy_noon


def _tmy_clearness_and_wind(loc: Location) -> pd.DataFrame:
    """Hour-of-year clearness index, temperature and 10 m wind speed, aligned to park solar time."""
    return _tmy_aligned(
        loc.weather_file,
        loc.weather_file_latitude,
        loc.weather_file_longitude,
        round(_solar_noon_shift_h(loc)),
    )


@lru_cache(maxsize=4)
def _tmy_aligned(weather_file: str, latitude: float, longitude: float, shift: int) -> pd.DataFrame:
    tmy = _tmy(weather_file)
    site = pvlib.location.Location(latitude, longitude)
    clear = site.get_clearsky(tmy.index, model="ineichen")["ghi"].to_numpy()
    ghi = tmy["ghi"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        kt = np.where(clear > MIN_CLEAR_GHI_WM2, ghi / clear, np.nan)
    frame = pd.DataFrame(
        {
            "kt": np.clip(kt, 0.0, 1.1),
            "temp_air_c": tmy["temp_air"].to_numpy(),
            "wind_ms": tmy["wind_speed"].to_numpy(),
        }
    )
    # Night hours have no clearness index: carry the day's mean so dawn starts from the day's sky.
    day = np.arange(len(frame)) // 24
    frame["kt"] = frame["kt"].fillna(frame.groupby(day)["kt"].transform("mean")).fillna(0.5)
    return frame.apply(lambda col: np.roll(col.to_numpy(), shift))


def _hour_of_tmy_year(index: pd.DatetimeIndex) -> np.ndarray:
    """Position in the 8,760-hour TMY year for each timestamp (29 Feb reuses 28 Feb)."""
    doy = index.dayofyear.to_numpy() - 1
    leap = index.is_leap_year & (index.month > 2)
    doy = np.where(leap, doy - 1, doy)
    doy = np.minimum(doy, 364)
    return doy * 24 + index.hour.to_numpy()


def _hourly_to_index(hourly: np.ndarray, index: pd.DatetimeIndex) -> np.ndarray:
    """Linear interpolation of hourly TMY values (at hh:30) onto the interval starts."""
    pos = _hour_of_tmy_year(index) + (index.minute.to_numpy() / 60.0) - 0.5
    base = np.floor(pos).astype(int)
    frac = pos - base
    n = len(hourly)
    return hourly[base % n] * (1 - frac) + hourly[(base + 1) % n] * frac


def _calendar_hours(index: pd.DatetimeIndex) -> np.ndarray:
    """Hours since 2000-01-01 of each interval's centre (a continuous time axis across years)."""
    centre = index + pd.Timedelta(minutes=7.5)
    epoch = pd.Timestamp("2000-01-01", tz=index.tz)
    return np.asarray((centre - epoch) / pd.Timedelta(hours=1), dtype=float)


def _park_hourly_wind_ms(hourly_wind: np.ndarray, index: pd.DatetimeIndex) -> np.ndarray:
    """The park's hourly-mean 10 m wind at each interval centre: Gaussian kernel regression of
    the TMY spot readings placed at hh:30 on the calendar (leap days and New Year included)."""
    hours = _calendar_hours(index)
    reach = int(np.ceil(4 * WIND_SPOT_SMOOTHING_H))
    first = int(np.floor(hours.min())) - reach - 3
    slots = np.arange(first, int(np.ceil(hours.max())) + reach + 2)
    stamps = pd.Timestamp("2000-01-01", tz=index.tz) + pd.to_timedelta(slots, unit="h")
    readings = hourly_wind[_hour_of_tmy_year(pd.DatetimeIndex(stamps))]
    offsets = np.arange(-reach - 1, reach + 2)
    base = np.floor(hours - 0.5).astype(int) - first  # slot whose reading (at hh:30) is just before
    pos = base[:, None] + offsets[None, :]
    weight = np.exp(-0.5 * ((slots[pos] + 0.5 - hours[:, None]) / WIND_SPOT_SMOOTHING_H) ** 2)
    return (weight * readings[pos]).sum(axis=1) / weight.sum(axis=1)


def _intervals_in_year(year: int) -> int:
    return (pd.Timestamp(year=year + 1, month=1, day=1) - pd.Timestamp(year=year, month=1, day=1)).days * 96


def park_wind_ms(hourly_wind: np.ndarray, index: pd.DatetimeIndex, seed: int) -> np.ndarray:
    """The park's 15-minute mean 10 m wind: hourly-mean wind times mesoscale fluctuations."""
    year = index[0].year
    phi = float(np.exp(-15.0 / WIND_MESO_TAU_MIN))
    meso = ar1_across_years(
        seed, "wind-meso", year, len(index), _intervals_in_year(year - 1), WIND_MESO_FRACTION, phi
    )
    return np.maximum(_park_hourly_wind_ms(hourly_wind, index) * (1.0 + meso), 0.0)


def _lowpass(values: np.ndarray, sigma_intervals: float) -> np.ndarray:
    reach = int(np.ceil(4 * sigma_intervals))
    kernel = np.exp(-0.5 * (np.arange(-reach, reach + 1) / sigma_intervals) ** 2)
    return np.convolve(np.pad(values, reach, mode="edge"), kernel / kernel.sum(), mode="valid")


def clearsky_ghi(loc: Location, index: pd.DatetimeIndex) -> np.ndarray:
    site = pvlib.location.Location(loc.latitude, loc.longitude, tz=MARKET_TZ_NAME, altitude=loc.altitude_m)
    mid = index + pd.Timedelta(minutes=7.5)  # centre of each 15-minute interval
    return site.get_clearsky(mid, model="ineichen")["ghi"].to_numpy()


def solar_position(loc: Location, index: pd.DatetimeIndex) -> pd.DataFrame:
    site = pvlib.location.Location(loc.latitude, loc.longitude, tz=MARKET_TZ_NAME, altitude=loc.altitude_m)
    return site.get_solarposition(index + pd.Timedelta(minutes=7.5))


def actual_weather(loc: Location, sim: Simulation, index: pd.DatetimeIndex) -> pd.DataFrame:
    """Actual 15-minute weather at the park: GHI, clear-sky GHI, air temperature, 10 m wind."""
    hourly = _tmy_clearness_and_wind(loc)
    gen = rng(sim.seed, "weather", index[0].year)
    n = len(index)
    kt = _hourly_to_index(hourly["kt"].to_numpy(), index) + ar1(gen, n, 0.04, 0.9)
    clear = clearsky_ghi(loc, index)
    ghi = np.clip(kt, 0.0, 1.15) * clear
    temp = _hourly_to_index(hourly["temp_air_c"].to_numpy(), index) + ar1(gen, n, 0.4, 0.95)
    wind = park_wind_ms(hourly["wind_ms"].to_numpy(), index, sim.seed)
    return pd.DataFrame(
        {"ghi_wm2": ghi, "clearsky_ghi_wm2": clear, "temp_air_c": temp, "wind_speed_ms": wind}, index=index
    )


def forecast_weather(actual: pd.DataFrame, sim: Simulation, lead_days: int) -> pd.DataFrame:
    """Weather as forecast ``lead_days`` ahead: actual plus errors that grow with lead time.

    Errors are nested (lead 2 = lead 1 error + more), so a longer lead is never better. The wind
    forecast follows the hour-scale actual wind (not its mesoscale flicker) with an error that is
    one level per issue day plus a slowly varying part (smooth within the day, ~8 h memory).
    """
    index = actual.index
    n, per_day = len(index), 96
    n_days = -(-n // per_day)
    clear = actual["clearsky_ghi_wm2"].to_numpy()
    kt = np.divide(actual["ghi_wm2"].to_numpy(), clear, out=np.full(n, 0.5), where=clear > MIN_CLEAR_GHI_WM2)
    kt_err = np.zeros(n)
    wind_err = np.zeros(n)
    temp_err = np.zeros(n)
    wind_smoothing = WIND_FORECAST_SMOOTHING_MIN / 15.0
    for lead in range(1, lead_days + 1):
        gen = rng(sim.seed, "weather-forecast", index[0].year, lead)
        scale = 1.0 if lead == 1 else 0.6
        kt_err += scale * (
            daily_offsets(gen, n_days, sim.weather_forecast_error_fraction * 0.6, per_day)[:n]
            + ar1(gen, n, sim.weather_forecast_error_fraction, 0.97)
        )
        wind_daily = daily_offsets(gen, n_days, sim.wind_forecast_error_ms * 0.5, per_day)[:n]
        wind_slow = _lowpass(ar1(gen, n, sim.wind_forecast_error_ms, 0.97), wind_smoothing)
        wind_slow *= sim.wind_forecast_error_ms / max(float(np.std(wind_slow)), 1e-9)
        wind_err += scale * (wind_daily + wind_slow)
        temp_err += scale * ar1(gen, n, 1.2, 0.98)
    kt_fc = np.clip(kt + kt_err, 0.0, 1.1)
    return pd.DataFrame(
        {
            "ghi_wm2": np.where(clear > 0, kt_fc * clear, 0.0),
            "temp_air_c": actual["temp_air_c"].to_numpy() + temp_err,
            "wind_speed_ms": np.maximum(
                _lowpass(actual["wind_speed_ms"].to_numpy(), wind_smoothing) + wind_err, 0.0
            ),
        },
        index=index,
    )

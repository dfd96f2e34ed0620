"""Physical conversion of weather to power, shared by the history simulator and the forecasts.

PV: Erbs decomposition, plane-of-array irradiance, Faiman cell temperature and PVWatts DC
with inverter clipping (pvlib). Wind: 10 m wind extrapolated to hub height with the 1/7
power law, times a site factor calibrated so the TMY year gives the scenario's full-load
hours, through the farm's aggregate power curve: the turbine's curve from the windpowerlib
library smoothed (windpowerlib ``smooth_power_curve``) over the spread of wind speeds across
the farm's turbines, so a farm ramps through its curve and cuts out in a storm turbine by
turbine, not all at once.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
import pvlib
from windpowerlib import WindTurbine
from windpowerlib.power_curves import smooth_power_curve

from infra.scenario.model import PV, Location, Wind

DC_AC_RATIO = 1.2
PV_TEMP_COEFF_PER_C = -0.0035
HELLMANN_EXPONENT = 1.0 / 7.0
WIND_FARM_LOSS_FRACTION = 0.08  # wakes, electrical losses, availability
# Spread of the 15-minute mean wind across a farm's turbines (terrain, wakes, distance), as a
# fraction of the farm-mean speed: the Gaussian width of the aggregate power curve.
FARM_WIND_SPREAD_FRACTION = 0.10
# One turbine's 15-minute mean wind also fluctuates on its own (gusts passing one rotor and not
# the next): relative standard deviation and time constant. The farm sees the mean over its
# turbines, so these shrink by sqrt(turbines) at farm level.
TURBINE_WIND_FLUCTUATION = 0.08
TURBINE_WIND_TAU_MIN = 20.0


def pv_power_mw(
    asset: PV,
    solar_zenith: np.ndarray,
    solar_azimuth: np.ndarray,
    ghi: np.ndarray,
    temp_air_c: np.ndarray,
    wind_ms: np.ndarray,
    day_of_year: np.ndarray,
) -> np.ndarray:
    """AC output in MW of one PV plant for the given weather (arrays aligned in time)."""
    ghi = np.maximum(np.nan_to_num(ghi), 0.0)
    decomposed = pvlib.irradiance.erbs(ghi, solar_zenith, day_of_year)
    poa = pvlib.irradiance.get_total_irradiance(
        asset.tilt_deg,
        asset.azimuth_deg,
        solar_zenith,
        solar_azimuth,
        decomposed["dni"],
        ghi,
        decomposed["dhi"],
    )["poa_global"]
    poa = np.nan_to_num(np.asarray(poa, dtype=float))
    cell_c = pvlib.temperature.faiman(poa, temp_air_c, wind_ms)
    dc_mw = asset.capacity_mw * DC_AC_RATIO * poa / 1000.0 * (1 + PV_TEMP_COEFF_PER_C * (cell_c - 25.0))
    ac_mw = dc_mw * (1.0 - asset.system_loss_fraction)
    return np.clip(np.where(solar_zenith < 90, ac_mw, 0.0), 0.0, asset.capacity_mw)


def pv_power_for_index(
    asset: PV, loc: Location, index: pd.DatetimeIndex, weather: pd.DataFrame
) -> np.ndarray:
    from sim.weather import solar_position

    sun = solar_position(loc, index)
    return pv_power_mw(
        asset,
        sun["apparent_zenith"].to_numpy(),
        sun["azimuth"].to_numpy(),
        weather["ghi_wm2"].to_numpy(),
        weather["temp_air_c"].to_numpy(),
        weather["wind_speed_ms"].to_numpy(),
        index.dayofyear.to_numpy(),
    )


@lru_cache(maxsize=16)
def _normalised_curve(turbine_type: str) -> tuple[np.ndarray, np.ndarray]:
    turbine = WindTurbine(turbine_type=turbine_type, hub_height=100)
    curve = turbine.power_curve
    return curve["wind_speed"].to_numpy(float), (curve["value"] / turbine.nominal_power).clip(0, 1).to_numpy(
        float
    )


@lru_cache(maxsize=16)
def _farm_curve(turbine_type: str) -> tuple[np.ndarray, np.ndarray]:
    """Aggregate per-unit power curve of a farm of these turbines (smoothed over the farm)."""
    speeds, per_unit = _normalised_curve(turbine_type)
    smoothed = smooth_power_curve(
        pd.Series(speeds),
        pd.Series(per_unit),
        standard_deviation_method="turbulence_intensity",
        turbulence_intensity=FARM_WIND_SPREAD_FRACTION,
    )
    return smoothed["wind_speed"].to_numpy(float), smoothed["value"].clip(0, 1).to_numpy(float)


def farm_fluctuation_fraction(asset: Wind) -> float:
    """Relative size of the turbine-by-turbine wind fluctuations left in the farm's mean wind."""
    return TURBINE_WIND_FLUCTUATION / float(np.sqrt(asset.turbines))


def wind_power_mw(asset: Wind, hub_wind_ms: np.ndarray) -> np.ndarray:
    """Farm output in MW for farm-mean hub-height wind speeds (aggregate curve x capacity)."""
    speeds, per_unit = _farm_curve(asset.turbine_type)
    out = np.interp(np.nan_to_num(hub_wind_ms), speeds, per_unit, left=0.0, right=0.0)
    return asset.capacity_mw * (1.0 - WIND_FARM_LOSS_FRACTION) * out


def hub_wind_ms(asset: Wind, wind_10m_ms: np.ndarray, site_factor: float) -> np.ndarray:
    return np.asarray(wind_10m_ms) * (asset.hub_height_m / 10.0) ** HELLMANN_EXPONENT * site_factor


def calibrate_site_factor(asset: Wind, reference_wind_10m_ms: np.ndarray, interval_hours: float) -> float:
    """Site factor that makes the reference year's energy equal ``full_load_hours`` x capacity."""
    target_mwh = (
        asset.full_load_hours * asset.capacity_mw * len(reference_wind_10m_ms) * interval_hours / 8760.0
    )
    lo, hi = 0.2, 5.0
    for _ in range(60):
        mid = (lo + hi) / 2
        energy = wind_power_mw(asset, hub_wind_ms(asset, reference_wind_10m_ms, mid)).sum() * interval_hours
        lo, hi = (mid, hi) if energy < target_mwh else (lo, mid)
    return (lo + hi) / 2

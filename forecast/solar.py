"""Sun position and clear-sky irradiance from pvlib (Ineichen with pvlib's shipped Linke
turbidity table, so it works offline): known for any time ahead, from the site alone."""

from __future__ import annotations

import numpy as np
import pandas as pd

from infra.timeutil import MARKET_TZ

MARKET_TZ_NAME = str(MARKET_TZ)


def sun_and_clearsky(
    latitude: float, longitude: float, altitude_m: float, index: pd.DatetimeIndex
) -> pd.DataFrame:
    """Per interval start in ``index``: apparent zenith, azimuth and clear-sky GHI (W/m2) at the
    centre of the interval."""
    import pvlib

    interval = pd.Timedelta(minutes=15) if len(index) < 2 else index[1] - index[0]
    site = pvlib.location.Location(latitude, longitude, tz=MARKET_TZ_NAME, altitude=altitude_m)
    mid = index + interval / 2
    sun = site.get_solarposition(mid)
    clear = site.get_clearsky(mid, model="ineichen", solar_position=sun)
    return pd.DataFrame(
        {
            "sun_zenith": sun["apparent_zenith"].to_numpy(),
            "sun_azimuth": sun["azimuth"].to_numpy(),
            "cos_zenith": np.clip(np.cos(np.radians(sun["apparent_zenith"].to_numpy())), 0.0, None),
            "clearsky_ghi": np.clip(clear["ghi"].to_numpy(), 0.0, None),
        },
        index=index,
    )

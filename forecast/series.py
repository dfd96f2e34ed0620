"""The series a park forecasts: ids (history column names), units, physical bounds, features.

A :class:`SeriesSpec` is plain data so it travels to Ray workers; it knows which assets
feed its physics features (PV model, turbine power curve) and its shift calendar.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from infra.scenario.model import Scenario

Kind = Literal["pv", "wind", "load", "heat", "it_load", "price", "generic"]


@dataclass(frozen=True)
class SeriesSpec:
    series_id: str
    asset_id: str | None
    quantity: str
    kind: Kind
    lower: float | None = 0.0
    upper: float | None = None
    capacity: float | None = None  # installed capacity: normalises PV and wind accuracy
    pv_assets: tuple[str, ...] = ()
    wind_assets: tuple[str, ...] = ()
    shift_profile: str | None = None
    heating_months: tuple[int, ...] = ()

    @property
    def is_generation(self) -> bool:
        return self.kind in ("pv", "wind")


def _quantity(series_id: str) -> str:
    return series_id.split(".", 1)[1]


def scenario_series(scenario: Scenario) -> list[SeriesSpec]:
    """Every series of a day-ahead ForecastSet for this park, in a stable order."""
    park, market = scenario.park, scenario.market
    specs: list[SeriesSpec] = []
    heating: tuple[int, ...] = ()
    for a in park.assets:
        sid = None
        if a.type == "pv":
            sid = f"{a.id}.pv_mw"
            specs.append(
                SeriesSpec(sid, a.id, "pv_mw", "pv", 0.0, a.capacity_mw, a.capacity_mw, pv_assets=(a.id,))
            )
        elif a.type == "wind":
            sid = f"{a.id}.wind_mw"
            specs.append(
                SeriesSpec(
                    sid, a.id, "wind_mw", "wind", 0.0, a.capacity_mw, a.capacity_mw, wind_assets=(a.id,)
                )
            )
        elif a.type in ("inflexible_load", "interruptible_load"):
            profile = getattr(a, "profile", None)
            specs.append(SeriesSpec(f"{a.id}.load_mw", a.id, "load_mw", "load", shift_profile=profile))
        elif a.type == "heat_pump":
            heating = tuple(a.heating_months)
            specs.append(
                SeriesSpec(
                    f"{a.id}.heat_mw_th",
                    a.id,
                    "heat_mw_th",
                    "heat",
                    upper=max(a.heat_peak_mw_th, a.cooling_peak_mw_th),
                    heating_months=heating,
                )
            )
        elif a.type == "data_centre":
            specs.append(
                SeriesSpec(f"{a.id}.it_load_mw", a.id, "it_load_mw", "it_load", upper=a.max_power_mw)
            )
    pv = [a for a in park.assets if a.type == "pv"]
    wind = [a for a in park.assets if a.type == "wind"]
    specs.append(SeriesSpec("park.load_mw", None, "load_mw", "load", heating_months=heating))
    pv_cap = sum(a.capacity_mw for a in pv)
    specs.append(
        SeriesSpec(
            "park.pv_mw", None, "pv_mw", "pv", 0.0, pv_cap, pv_cap or None, pv_assets=tuple(a.id for a in pv)
        )
    )
    wind_cap = sum(a.capacity_mw for a in wind)
    specs.append(
        SeriesSpec(
            "park.wind_mw",
            None,
            "wind_mw",
            "wind",
            0.0,
            wind_cap,
            wind_cap or None,
            wind_assets=tuple(a.id for a in wind),
        )
    )
    lo, hi = market.clearing_price_floor_cny_per_mwh, market.clearing_price_cap_cny_per_mwh
    for sid in ("market.price_da_cny_per_mwh", "market.price_rt_cny_per_mwh"):
        specs.append(SeriesSpec(sid, None, _quantity(sid), "price", lo, hi))
    return specs


def generic_series(name: str = "value", lower: float | None = None) -> SeriesSpec:
    """A meter series from a file: no physics, no bounds unless the data says so."""
    return SeriesSpec(name, None, name, "generic", lower=lower)

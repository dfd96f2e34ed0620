"""Is a reading physically possible? Bounds per series from its quantity, its asset and its market.

The same rules guard every way into the store (meter files, price files, meter messages):
a value must be a finite number inside the quantity's physical range (``quantities.yaml``),
inside the owning asset's rating (plus the configured margin) for rated quantities, and
inside the market's clearing limits for prices.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.scenario.model import Scenario
from infra.timeseries.quantities import quantity_of, rating_margin_fraction

PRICE_SERIES = {
    "day_ahead": "market.price_da_cny_per_mwh",
    "real_time": "market.price_rt_cny_per_mwh",
    "regulation": "market.price_reg_cny_per_mw",
}


@dataclass(frozen=True)
class Bounds:
    low: float
    high: float
    rule: str

    def problem(self, value: float) -> str | None:
        if value != value or value in (float("inf"), float("-inf")):
            return "must be a finite number"
        if not self.low <= value <= self.high:
            return f"{value:g} is outside [{self.low:g}, {self.high:g}] ({self.rule})"
        return None


def _asset_rating_mw(scenario: Scenario, owner: str, quantity: str) -> float | None:
    asset = next((a for a in scenario.park.assets if a.id == owner), None)
    if asset is None:
        return None
    if quantity == "heat_mw_th":
        return asset.electric_mw * asset.cop
    if quantity == "it_load_mw":
        return asset.max_power_mw
    return asset.rated_mw


def bounds(name: str, scenario: Scenario | None, interval_minutes: int) -> Bounds:
    """The range a reading of series ``name`` must lie in (``name`` must be a valid series name)."""
    owner, quantity = name.split(".", 1)
    q = quantity_of(name)
    low, high, rule = q.min, q.max, f"physical range of {quantity}"
    if scenario is None:
        return Bounds(low, high, rule)
    margin = 1 + rating_margin_fraction()
    if name.startswith("market.price_") and name.endswith("_cny_per_mwh"):
        m = scenario.market
        return Bounds(
            m.clearing_price_floor_cny_per_mwh,
            m.clearing_price_cap_cny_per_mwh,
            f"clearing limits of market {m.id}",
        )
    if name == "market.price_reg_cny_per_mw":
        reg = scenario.market.regulation
        return Bounds(
            reg.mileage_price_min_cny_per_mw, reg.mileage_price_max_cny_per_mw, "regulation price limits"
        )
    rating = _asset_rating_mw(scenario, owner, quantity)
    if rating is not None:
        span = rating * margin * (interval_minutes / 60.0 if quantity.endswith("_mwh") else 1.0)
        unit = "MWh per interval" if quantity.endswith("_mwh") else "MW"
        return Bounds(
            max(low, -span), min(high, span), f"rating of asset {owner} + {margin - 1:.0%}, in {unit}"
        )
    if owner == "park" and quantity in ("pv_mw", "wind_mw", "load_mw", "grid_energy_mwh"):
        total = sum(a.rated_mw for a in scenario.park.assets) * margin
        span = total * (interval_minutes / 60.0 if quantity.endswith("_mwh") else 1.0)
        return Bounds(
            max(low, -span), min(high, span), f"sum of park {scenario.id}'s asset ratings + {margin - 1:.0%}"
        )
    return Bounds(low, high, rule)

"""Aggregator test inputs: small hand-made parks and forecasts (imported as ``tests.aggregator.aggregator_tools``)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from infra.contracts import Award, ForecastSet, Offer, SeriesForecast
from infra.scenario import Scenario
from infra.scenario.loader import PACKAGE_DIR, load_market, parse_scenario
from infra.timeutil import day_intervals

DAY = date(2026, 7, 15)
T = 96
# An 8 MW gas engine on natural gas (its annual fuel budget about 8 h a day at full output).
GAS_ENGINE = {
    "id": "gas",
    "type": "gas_generator",
    "name": "gas engine",
    "capacity_mw": 8,
    "min_load_fraction": 0.0,
    "electric_efficiency": 0.4,
    "fuel": "natural_gas",
    "annual_fuel_budget_units": 4226900,
}
# A flat 30 MW site load (series ``base.load_mw``).
FLAT_LOAD = {
    "id": "base",
    "type": "inflexible_load",
    "name": "base load",
    "peak_mw": 30,
    "load_factor": 1.0,
    "profile": "flat",
    "weekend_factor": 1.0,
    "holiday_factor": 1.0,
}


def battery(asset_id: str, **changes: Any) -> dict[str, Any]:
    """A 1 MW / 2 MWh battery asset at half charge (window 10-90 %, 95 % each way), with ``changes``."""
    return {
        "id": asset_id,
        "type": "battery",
        "name": f"battery {asset_id}",
        "power_mw": 1.0,
        "energy_mwh": 2.0,
        "charge_efficiency": 0.95,
        "discharge_efficiency": 0.95,
        "soc_min_fraction": 0.1,
        "soc_max_fraction": 0.9,
        "soc_initial_fraction": 0.5,
        "degradation_cny_per_mwh": 20,
        **changes,
    }


def small_park(
    assets: list[dict[str, Any]], *, grid: list[dict[str, Any]] | None = None, regulation: bool = False
) -> Scenario:
    """Datong's settings with only ``assets`` (and no contracts); regulation valued only if asked."""
    raw = yaml.safe_load((PACKAGE_DIR / "parks" / "datong.yaml").read_text(encoding="utf-8"))
    raw["assets"] = [
        {"enterprise": "park_energy", "connection": "substation_220kv", "source": "[assumption] test", **a}
        for a in assets
    ]
    raw["contracts"] = []
    if grid is not None:
        raw["grid"] = grid
    market = load_market("shanxi")
    if not regulation:
        market = market.model_copy(
            update={
                "regulation": market.regulation.model_copy(update={"expected_mileage_price_cny_per_mw": 0.0})
            }
        )
    return parse_scenario(raw, market, "test park")


def forecast(series: dict[str, Any], day: date = DAY, spread: float = 0.0) -> ForecastSet:
    """A day-ahead forecast: each series a constant or a (T,) array as median, +-spread as P10/P90."""
    starts = [ts.to_pydatetime() for ts in day_intervals(day, 15)]
    out = []
    for sid, values in series.items():
        median = np.broadcast_to(np.asarray(values, dtype=float), (T,)).copy()
        width = spread * np.abs(median)
        out.append(
            SeriesForecast(
                series_id=sid,
                quantity=sid.split(".", 1)[1],
                model="test",
                model_version="1",
                quantiles={
                    "0.1": (median - width).tolist(),
                    "0.5": median.tolist(),
                    "0.9": (median + width).tolist(),
                },
            )
        )
    issued = starts[0] - timedelta(hours=14)
    return ForecastSet(
        interval_minutes=15,
        interval_starts=starts,
        horizon="day_ahead",
        issued_at=issued,
        data_cutoff=issued,
        series=out,
    )


def hours() -> np.ndarray:
    return np.arange(T) * 0.25


def award_at_median(offer: Offer, fc: ForecastSet, bid_message_id: str = "bid-1", **extra: Any) -> Award:
    """What a market clearing at the median forecast price would award the offer (its bid's id:
    over Kafka it must name a stored bid)."""
    price = next(s for s in fc.series if s.series_id == "market.price_da_cny_per_mwh").quantiles["0.5"]
    return Award(
        interval_minutes=offer.interval_minutes,
        interval_starts=offer.interval_starts,
        market="day_ahead",
        bid_message_id=bid_message_id,
        exchange="test",
        cleared_mw=[c.quantity_at(p) for c, p in zip(offer.energy, price, strict=True)],
        clearing_price_cny_per_mwh=price,
        **extra,
    )


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


# --- generated portfolios (scale and pooling tests): two price scenarios, offer model without reserves


SCALE_PRICES = np.stack(
    [300 + 150 * np.sin(np.arange(T) / T * 4 * np.pi), 360 + 180 * np.sin(np.arange(T) / T * 4 * np.pi)]
)


def solve_offer(portfolio: Any, profiles: Any) -> Any:
    """The offer model (2 scenarios, 15 minutes, no reserves) of a generated portfolio, solved."""
    from aggregator.model import ParkModel
    from aggregator.solution import DayData

    model = ParkModel(portfolio, 2, T, 0.25, "offer", reserves=False)
    zeros = np.zeros(T)
    return model.solve(
        DayData(
            profiles=profiles,
            green_mw=zeros,
            need_up=zeros,
            need_down=zeros,
            carbon_price=70,
            prices=SCALE_PRICES,
        )
    )

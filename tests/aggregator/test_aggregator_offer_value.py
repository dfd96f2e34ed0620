"""An offer cleared at exactly the prices it was optimised for yields the optimal schedule's value.

Property test over generated small parks (device mixes around a battery), grid import tariffs,
internal carbon prices, green contracts and price days: build the offer, clear every interval's
curve at each price scenario's price, let the dispatch deliver that award, and value the
delivered schedule with the model's own objective at those prices (market revenue minus import
tariff, device costs and carbon cost). It must equal the value of the scenario's schedule in the
offer's solve. Before storage bands were priced net of the tariff and carbon cost the model
charges on imports, and beyond the scenarios' prices, such a clearing bought energy the optimum
would not (thousands of CNY a day lost on a 10 MW battery).
"""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator.bands import ImportCharge, market_bands
from aggregator.dispatch import disaggregate
from aggregator.inputs import inputs_from_forecast, price_scenarios, required_series
from aggregator.offer import build_offer
from aggregator.solution import Solution
from infra.contracts import Award
from infra.scenario import Scenario
from infra.scenario.loader import PACKAGE_DIR, load_market, parse_scenario
from tests.aggregator.aggregator_tools import DAY, FLAT_LOAD, GAS_ENGINE, forecast, hours

BATTERY = {
    "id": "b1",
    "type": "battery",
    "name": "battery",
    "power_mw": 10,
    "energy_mwh": 20,
    "charge_efficiency": 0.95,
    "discharge_efficiency": 0.95,
    "soc_min_fraction": 0.1,
    "soc_max_fraction": 0.9,
    "soc_initial_fraction": 0.5,
    "degradation_cny_per_mwh": 40,
}
OPTIONAL = {
    "pv": {
        "id": "pv",
        "type": "pv",
        "name": "roof",
        "capacity_mw": 40,
        "kind": "rooftop",
        "tilt_deg": 10,
        "azimuth_deg": 180,
        "system_loss_fraction": 0.1,
    },
    "second_battery": {**BATTERY, "id": "b2", "power_mw": 5, "energy_mwh": 20, "degradation_cny_per_mwh": 20},
    "interruptible": {
        "id": "il",
        "type": "interruptible_load",
        "name": "compressors",
        "baseline_mw": 6,
        "max_curtail_mw": 4,
        "max_duration_h": 2,
        "max_energy_mwh_per_day": 8,
        "cost_cny_per_mwh": 250,
        "notice_minutes": 0,
    },
    "gas": GAS_ENGINE,
    "batch": {
        "id": "kiln",
        "type": "shiftable_batch",
        "name": "kiln",
        "energy_per_day_mwh": 60,
        "power_min_mw": 0,
        "power_max_mw": 6,
        "window_start_hour": 0,
        "window_end_hour": 24,
    },
}
DT_H = 0.25


def park(assets: list[dict], tariff: float, green_mw: float) -> Scenario:
    """Datong's settings with only ``assets``; an offer format that loses nothing (fine tick, no
    minimum segment, enough segments), so what is tested is the pricing, not the format."""
    raw = yaml.safe_load((PACKAGE_DIR / "parks" / "datong.yaml").read_text(encoding="utf-8"))
    raw["assets"] = [
        {"enterprise": "park_energy", "connection": "substation_220kv", "source": "[assumption] test", **a}
        for a in assets
    ]
    raw["contracts"] = (
        [{"id": "green", "quantity_mw": -green_mw, "price_cny_per_mwh": 370, "green": True, "source": "test"}]
        if green_mw > 0
        else []
    )
    market = load_market("shanxi")
    market = market.model_copy(
        update={
            "grid_import_tariff_cny_per_mwh": tariff,
            "price_tick_cny_per_mwh": 0.01,
            "min_segment_mw": 0.0,
            "max_segments": 200,
            "regulation": market.regulation.model_copy(update={"expected_mileage_price_cny_per_mw": 0.0}),
        }
    )
    return parse_scenario(raw, market, "test park")


def value(solution: Solution, k: int, prices: np.ndarray) -> float:
    """The model's objective without penalties: revenue at ``prices`` minus costs (import tariff
    included) minus the carbon price x emissions (non-green imports, fuel)."""
    return float(
        prices @ solution.injection[k] * solution.dt_h
        - solution.costs_cny[k]
        - solution.carbon_price * solution.emissions_tco2[k]
    )


def to_tick(price: float, tick: float) -> float:
    return float(np.floor(price / tick + 0.5) * tick)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mix=st.lists(st.sampled_from(sorted(OPTIONAL)), max_size=3, unique=True),
    tariff=st.sampled_from([0.0, 40.0, 80.0, 150.0]),
    carbon=st.sampled_from([0.0, 70.0, 150.0, 300.0]),
    green_mw=st.sampled_from([0.0, 10.0]),
    level=st.floats(200, 500),
    dip=st.floats(0, 250),
    peak=st.floats(0, 300),
    spread=st.floats(0.05, 0.3),
)
def test_an_offer_cleared_at_its_scenario_prices_yields_the_optimal_schedules_value(
    mix, tariff, carbon, green_mw, level, dip, peak, spread
):
    scenario = park([BATTERY, FLAT_LOAD] + [OPTIONAL[m] for m in mix], tariff, green_mw)
    h = hours()
    price = level - dip * np.exp(-(((h - 12) / 3) ** 2)) + peak * np.exp(-(((h - 19) / 2) ** 2))
    medians = {"market.price_da_cny_per_mwh": np.clip(price, 5, 1400)}
    for sid in required_series(scenario):
        if sid.endswith(".load_mw"):
            medians[sid] = 20.0 if sid.startswith("base") else 6.0
        elif sid.endswith(".pv_mw"):
            medians[sid] = np.clip(34 * np.sin(np.pi * (h - 6) / 12), 0, None)
    fc = forecast({k: v for k, v in medians.items() if not k.startswith("market.")}, spread=0.0)
    fp = forecast({"market.price_da_cny_per_mwh": medians["market.price_da_cny_per_mwh"]}, spread=spread)
    fc = fc.model_copy(update={"series": fc.series + fp.series})

    result = build_offer(scenario, fc, forecast_message_id="fc", carbon_price_cny_per_tco2=carbon)
    optimum = result.solution
    assert result.offer.market_id == "shanxi.day_ahead"  # the market file's id, carried to bid and award
    scenarios = price_scenarios(inputs_from_forecast(scenario, fc, DAY), optimum.K).prices
    tick = scenario.market.price_tick_cny_per_mwh
    for k in range(optimum.K):
        cleared_at = np.array([to_tick(p, tick) for p in scenarios[k]])
        award_mw = np.array([c.quantity_at(p) for c, p in zip(result.offer.energy, cleared_at, strict=True)])
        # Clearing at the scenario's prices awards the scenario's schedule: no band is called.
        assert np.max(np.abs(award_mw - optimum.injection[k])) < 2e-3
        award = Award(
            interval_minutes=15,
            interval_starts=fc.interval_starts,
            market="day_ahead",
            bid_message_id="bid",
            exchange="test",
            cleared_mw=award_mw.tolist(),
            clearing_price_cny_per_mwh=cleared_at.tolist(),
        )
        delivered = disaggregate(
            scenario, fc, award, award_message_id="aw", carbon_price_cny_per_tco2=carbon
        ).solution
        assert np.max(np.abs(delivered.injection[0] - award_mw)) < 2e-3
        expected = value(optimum, k, cleared_at)
        assert value(delivered, 0, cleared_at) == pytest.approx(expected, abs=5.0 + 1e-5 * abs(expected))


def test_band_prices_carry_the_import_charges_the_objective_charges():
    """Hand case: tariff 80, carbon 70 CNY/t x 0.8325 t/MWh = 58.275, green contract 10 MW; the band
    scenario injects -5 MW (imports covered by the green contract: tariff only)."""
    charge = ImportCharge(tariff_cny_per_mwh=80.0, carbon_cny_per_mwh=58.275, green_mw=np.array([10.0]))
    prices = np.array([100.0, 300.0, 900.0])  # the interval's scenario prices
    up, down = market_bands(0, -5.0, prices, up=[(1000.0, 8.0)], down=[(500.0, 8.0)], charge=charge)
    # Up 8 MW from -5: 5 MW displace imports (saves the tariff), 3 MW are exported.
    assert up == [(1000.0 - 80.0, 5.0), (1000.0, 3.0)]
    # Down 8 MW from -5: 5 MW more imports covered green (tariff), 3 MW beyond -10 pay tariff and
    # carbon; both below the cheapest scenario's price, so no scenario calls them.
    assert down == [(min(500.0 - 80.0, 100.0 - 0.01), 5.0), (min(500.0 - 80.0 - 58.275, 100.0 - 0.01), 3.0)]
    cheap_down = market_bands(0, -5.0, prices, up=[], down=[(150.0, 2.0)], charge=charge)[1]
    assert cheap_down == [(150.0 - 80.0, 2.0)]
    # An up band worth less than the dearest scenario price is offered above it, never inside the fan.
    assert market_bands(0, 0.0, prices, up=[(400.0, 1.0)], down=[], charge=charge)[0] == [(900.01, 1.0)]

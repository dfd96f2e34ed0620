"""Cases a planner can check by hand: arbitrage, batch placement, the carbon price's effect."""

from __future__ import annotations

import numpy as np

from aggregator.dispatch import check_setpoints, disaggregate
from aggregator.inputs import inputs_from_forecast
from aggregator.offer import build_offer, forecast_day
from tests.aggregator.aggregator_tools import award_at_median, forecast, hours, small_park

LOAD = {
    "id": "base",
    "type": "inflexible_load",
    "name": "base load",
    "peak_mw": 5,
    "load_factor": 1.0,
    "profile": "flat",
    "weekend_factor": 1.0,
    "holiday_factor": 1.0,
}
BATTERY = {
    "id": "b1",
    "type": "battery",
    "name": "battery",
    "power_mw": 10,
    "energy_mwh": 20,
    "charge_efficiency": 0.9,
    "discharge_efficiency": 0.9,
    "soc_min_fraction": 0.1,
    "soc_max_fraction": 0.9,
    "soc_initial_fraction": 0.5,
    "degradation_cny_per_mwh": 10,
}


def _schedule(scenario, fc, asset_id):
    result = build_offer(scenario, fc, forecast_message_id="fc")
    dispatch = disaggregate(scenario, fc, award_at_median(result.offer, fc), award_message_id="aw")
    setpoints = dispatch.setpoints()
    inputs = inputs_from_forecast(scenario, fc, forecast_day(fc))
    assert check_setpoints(scenario, inputs, setpoints) == []
    assert np.max(np.abs(dispatch.dispatch.deviation_mw)) < 1e-3
    return result, setpoints[asset_id]


def test_battery_charges_at_the_low_price_and_discharges_at_the_high_one_within_limits():
    park = small_park([BATTERY, LOAD])
    price = np.where(hours() < 12, 100.0, 500.0)
    fc = forecast({"base.load_mw": 5.0, "market.price_da_cny_per_mwh": price})
    _, p = _schedule(park, fc, "b1")
    first, second = p[hours() < 12], p[hours() >= 12]
    assert first.max() < 1e-4 and second.min() > -1e-4  # charge only while cheap, discharge only while dear
    assert np.abs(p).max() <= 10 + 1e-6
    charged_mwh = -first.sum() * 0.25
    discharged_mwh = second.sum() * 0.25
    # From 50 % to the 90 % ceiling stores 8 MWh (8 / 0.9 bought); back to the 50 % it must end at gives 8 * 0.9.
    assert abs(charged_mwh - 8 / 0.9) < 1e-2
    assert abs(discharged_mwh - 8 * 0.9) < 1e-2


def test_shiftable_batch_lands_in_the_cheapest_window():
    batch = {
        "id": "kiln",
        "type": "shiftable_batch",
        "name": "kiln",
        "energy_per_day_mwh": 10,
        "power_min_mw": 0,
        "power_max_mw": 5,
        "window_start_hour": 0,
        "window_end_hour": 24,
    }
    park = small_park([batch, LOAD])
    cheap = (hours() >= 2) & (hours() < 4)
    fc = forecast({"base.load_mw": 5.0, "market.price_da_cny_per_mwh": np.where(cheap, 100.0, 400.0)})
    _, p = _schedule(park, fc, "kiln")
    assert np.allclose(p[cheap], -5.0, atol=1e-3)  # the whole 10 MWh at full power in the cheap two hours
    assert np.allclose(p[~cheap], 0.0, atol=1e-3)


def test_a_higher_carbon_price_lowers_emissions(datong, datong_forecast):
    low = build_offer(datong, datong_forecast, forecast_message_id="fc", carbon_price_cny_per_tco2=0)
    high = build_offer(datong, datong_forecast, forecast_message_id="fc", carbon_price_cny_per_tco2=300)
    assert high.offer.expected_emissions_tco2 < 0.98 * low.offer.expected_emissions_tco2
    # ... and it costs money: the trader sees the trade-off.
    assert high.expected_profit_cny < low.expected_profit_cny

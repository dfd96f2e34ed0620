"""Demand-response offers stay deliverable when the grid calls every interval it was offered.

The grid invites peak cut in the day's dearest intervals and pays every accepted interval as
bid, so a park's offers over the day must be deliverable together, not each on its own. Before
offers were budgeted (:mod:`aggregator.devices.calls`), each interval offered what a battery
or an interruptible load could sustain for the minimum response time from its state in that
interval: called in all of them, a 20 MWh battery was asked for several times its charge, the
compressors for twice their daily energy, and the dispatch fell short of the award.
"""

from __future__ import annotations

import numpy as np
import pytest

from aggregator.dispatch import check_setpoints, disaggregate
from aggregator.inputs import inputs_from_forecast
from aggregator.offer import build_offer
from infra.contracts import Offer
from tests.aggregator.aggregator_tools import DAY, award_at_median, forecast, hours, small_park

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
COMPRESSORS = {
    "id": "il",
    "type": "interruptible_load",
    "name": "compressors",
    "baseline_mw": 12,
    "max_curtail_mw": 8,
    "max_duration_h": 1,
    "max_energy_mwh_per_day": 6,
    "cost_cny_per_mwh": 900,
    "notice_minutes": 0,
}
GAS = {
    "id": "gas",
    "type": "gas_generator",
    "name": "gas engine",
    "capacity_mw": 8,
    "min_load_fraction": 0.0,
    "electric_efficiency": 0.4,
    "fuel": "natural_gas",
    "annual_fuel_budget_units": 1_000_000,
}
LOAD = {
    "id": "base",
    "type": "inflexible_load",
    "name": "base load",
    "peak_mw": 30,
    "load_factor": 1.0,
    "profile": "flat",
    "weekend_factor": 1.0,
    "holiday_factor": 1.0,
}
# A day with a small evening bump: too small to pay the battery's round trip or the compressors'
# cost, so both keep their energy, which the offers may sell once, not once per interval.
PRICES = 300 + 50 * np.exp(-(((hours() - 19.0) / 2.5) ** 2))


def _peak_cut_mw(offer: Offer, direction: str) -> np.ndarray:
    return np.array(
        [sum(d.capacity_mw for d in per if d.direction == direction) for per in offer.demand_response]
    )


@pytest.mark.parametrize("assets", [[COMPRESSORS], [GAS]], ids=["interruptible", "gas"])
def test_every_offered_peak_cut_called_at_once_is_delivered_in_full(assets):
    park = small_park([LOAD, *assets])
    day_ahead = forecast(
        {"base.load_mw": 30.0, "il.load_mw": 12.0, "market.price_da_cny_per_mwh": PRICES}, spread=0.0
    )
    offer = build_offer(park, day_ahead, forecast_message_id="fc").offer
    peak_cut = _peak_cut_mw(offer, "peak_cut")
    assert peak_cut.sum() > 0, "the park offers peak cut at all"

    award = award_at_median(
        offer,
        day_ahead,
        demand_response_mw=peak_cut.tolist(),
        demand_response_price_cny_per_mwh=[500.0] * len(peak_cut),
    )
    result = disaggregate(park, day_ahead, award, award_message_id="aw")
    called = peak_cut > 0
    short = -np.asarray(result.dispatch.deviation_mw)[called]
    assert short.max() <= 1e-3, f"short of the called peak cut by up to {short.max():.3f} MW"
    inputs = inputs_from_forecast(park, day_ahead, DAY)
    assert check_setpoints(park, inputs, result.setpoints()) == []

"""Demand-response offers stay deliverable when the grid calls every interval it was offered.

The grid invites peak cut in the day's dearest intervals and pays every accepted interval as
bid, so a park's offers over the day must be deliverable together, not each on its own. Before
offers were budgeted (:mod:`aggregator.devices.calls`), each interval offered what a device
could sustain for the minimum response time from its state in that interval: called in all
of them, the gas engine was asked for 192 MWh on 11 MWh of daily fuel, the compressors for
many times their daily energy, and the dispatch fell short of the award.
"""

from __future__ import annotations

import numpy as np
import pytest

from aggregator.devices.calls import Budgets, deliverable
from aggregator.dispatch import check_setpoints, disaggregate
from aggregator.inputs import inputs_from_forecast
from aggregator.offer import build_offer
from infra.contracts import Offer
from tests.aggregator.aggregator_tools import (
    DAY,
    FLAT_LOAD,
    GAS_ENGINE,
    award_at_median,
    forecast,
    hours,
    small_park,
)

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
GAS = {**GAS_ENGINE, "annual_fuel_budget_units": 1_000_000}  # about 11 MWh a day
# A day with a small evening bump: too small to pay the battery's round trip or the compressors'
# cost, so both keep their energy, which the offers may sell once, not once per interval.
PRICES = 300 + 50 * np.exp(-(((hours() - 19.0) / 2.5) ** 2))


def _offered_mw(offer: Offer, direction: str) -> np.ndarray:
    return np.array(
        [sum(d.capacity_mw for d in per if d.direction == direction) for per in offer.demand_response]
    )


@pytest.mark.parametrize(
    ("assets", "direction"), [([COMPRESSORS], "peak_cut"), ([GAS], "peak_cut")], ids=["interruptible", "gas"]
)
def test_every_offered_demand_response_called_at_once_is_delivered_in_full(assets, direction):
    """A point forecast: with a range, these one-device parks spend their daily energy and fuel
    on the downward reserve (pooled batteries with a range: test_aggregator_pooled_park.py)."""
    park = small_park([FLAT_LOAD, *assets])
    day_ahead = forecast(
        {"base.load_mw": 30.0, "il.load_mw": 12.0, "market.price_da_cny_per_mwh": PRICES}, spread=0.0
    )
    offer = build_offer(park, day_ahead, forecast_message_id="fc").offer
    called = _offered_mw(offer, direction)
    assert called.sum() > 0, f"the park offers {direction} at all"
    sign = 1.0 if direction == "peak_cut" else -1.0
    award = award_at_median(
        offer,
        day_ahead,
        demand_response_mw=(sign * called).tolist(),
        demand_response_price_cny_per_mwh=[500.0] * len(called),
    )
    result = disaggregate(park, day_ahead, award, award_message_id="aw")
    short = -sign * np.asarray(result.dispatch.deviation_mw)[called > 0]
    assert short.max() <= 1e-3, f"short of the called {direction} by up to {short.max():.3f} MW"
    inputs = inputs_from_forecast(park, day_ahead, DAY)
    assert check_setpoints(park, inputs, result.setpoints()) == []


def test_a_state_budget_gives_the_dearest_intervals_power_until_the_charge_is_spent():
    # 7 MWh above the floor all day, 10 MW of headroom, 15-minute intervals: called in every
    # interval offered, the two dearest take 10 MW (5 MWh), the third the last 2 MWh as 8 MW.
    T = 8
    power = np.full((1, T), 10.0)
    order = np.array([5, 4, 6, 3, 7, 2, 1, 0])
    out = deliverable(power, Budgets.state(np.full((1, T), 7.0)), order, 0.25)
    assert np.allclose(out[0], [0, 0, 0, 0, 10, 10, 8, 0])
    # A state that only falls later limits the earlier calls too: the charge left at the end of
    # interval 6 is 1 MWh, so nothing called up to then may take more.
    headroom = np.array([[7.0, 7, 7, 7, 7, 7, 1, 7]])
    out = deliverable(power, Budgets.state(headroom), order, 0.25)
    assert np.isclose(out[0, :7].sum() * 0.25, 1.0) and np.isclose(out[0, 7], 10.0)


def test_daily_and_rolling_budgets_bind_together():
    # 4 MW for at most 1 hour in any 5 intervals (rolling), 6 MWh a day, called in time order:
    # four intervals at 4 MW fill the first window, the fifth gets nothing, then the daily
    # energy allows two more intervals, each window holding 4 MWh at most.
    T = 12
    used = np.zeros((1, T))
    budgets = Budgets.daily(np.array([6.0]), T) + Budgets.rolling(np.array([4.0]), used, np.array([5]))
    out = deliverable(np.full((1, T), 4.0), budgets, np.arange(T), 0.25)
    assert np.allclose(out[0], [4, 4, 4, 4, 0, 4, 4, 0, 0, 0, 0, 0])


def test_without_a_minimum_offer_only_intervals_with_capacity_are_offered():
    park = small_park([FLAT_LOAD, COMPRESSORS])
    rules = park.market.model_copy(update={"vpp_min_capacity_mw": 0.0, "min_segment_mw": 0.0})
    park = park.model_copy(update={"market": rules})
    day_ahead = forecast({"base.load_mw": 30.0, "il.load_mw": 12.0, "market.price_da_cny_per_mwh": PRICES})
    offers = [
        o for per in build_offer(park, day_ahead, forecast_message_id="fc").offer.demand_response for o in per
    ]
    assert offers and all(o.capacity_mw > 0 for o in offers)

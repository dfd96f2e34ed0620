"""The benchmark's bidding space: a park larger than the simulated province would be rationed at
the price cap and handed an award it cannot deliver; it clears in a widened bidding space."""

from __future__ import annotations

import numpy as np

from gateway.scale.market import market_scale, widened
from infra.contracts import EnergyCurve, Segment
from infra.scenario import load_scenario
from infra.settings import get_settings
from sim.exchange import clear_energy, market_truth
from sim.history import history_key

DAY = get_settings().default_day


def _clear(scenario, curves):
    _, market = scenario.market.market_for("day_ahead_energy")
    reference = market_truth(scenario, DAY)["market.price_da_cny_per_mwh"].to_numpy()
    prices, cleared = clear_energy(curves, market, reference, scenario)
    return np.asarray(prices), np.asarray(cleared)


def _buying(mw: float) -> list[EnergyCurve]:
    return [EnergyCurve(base_mw=-mw, segments=[Segment(price_cny_per_mwh=300.0, quantity_mw=100.0)])] * 96


def test_a_small_park_clears_in_the_province_unchanged():
    datong = load_scenario("datong")
    assert market_scale(datong, _buying(500.0), DAY) == 1.0
    assert widened(datong, 1.0) is datong


def test_a_park_larger_than_the_province_is_served_whole_in_the_widened_market():
    datong = load_scenario("datong")
    top_mw = datong.market.exchange_simulator.supply_stack[-1][1]
    curves = _buying(1.5 * top_mw)
    prices, cleared = _clear(datong, curves)
    assert np.all(prices == datong.market.exchange_simulator.supply_stack[-1][0])  # at the cap
    assert np.all(cleared > -top_mw)  # rationed: what the province does not have is not for sale
    factor = market_scale(datong, curves, DAY)
    assert factor > 1.5
    prices, cleared = _clear(widened(datong, factor), curves)
    assert np.all(cleared <= -1.5 * top_mw + 100.0 + 1e-6)  # the whole purchase in every interval
    assert np.all(prices < datong.market.exchange_simulator.supply_stack[-1][0])  # never rationed at the cap
    # Without the park the widened market clears at the history price, as the province does.
    quiet = [EnergyCurve(base_mw=0.0, segments=[])] * 96
    assert np.allclose(_clear(widened(datong, factor), quiet)[0], _clear(datong, quiet)[0], atol=1e-3)


def test_the_widened_market_reads_the_province_history():
    """Widening the stack changes how bids clear, not the simulated history: no second year of
    history is generated for it."""
    datong = load_scenario("datong")
    assert history_key(widened(datong, 13.4)) == history_key(datong)

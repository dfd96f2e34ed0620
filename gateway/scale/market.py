"""The bidding space the benchmark park clears in: the simulated Shanxi market, widened to the park.

The exchange simulator clears the park after the province's own demand (calibrated so that the
other sellers' supply stack alone clears at the history price), against that stack: 30 GW at the
price cap in ``markets/shanxi.yaml``. What is for sale beyond the province's demand is 2-19 GW
over the market day. A million generated devices make a park that buys up to 50 GW: the exchange
rations its price-taking purchase at the cap, and the award asks a park whose site load alone is
22 GW to import 5 GW, which no dispatch can deliver (the first million-device run was 34 GW short).

The benchmark measures the system at scale, not a park larger than its province, so the park
clears in a bidding space widened until, in every interval, it buys or sells at most
:data:`MAX_SHARE_OF_SPARE` of what the other sellers have beyond the province's demand (every
knot's MW times one factor: the province's demand scales with it, so prices without the park
stay the history's). A park that fits clears in Shanxi's.
"""

from __future__ import annotations

from datetime import date

import numpy as np

from infra.contracts import EnergyCurve
from infra.scenario import Scenario
from sim.clearing import calibrated_demand
from sim.exchange import market_truth

# Benchmark assumption, not a market rule: the park never takes more than this fraction of the
# supply for sale beyond the province's demand (or of the demand beyond must-run, when it sells),
# so the exchange never rations its price-taking position.
MAX_SHARE_OF_SPARE = 0.8


def market_scale(scenario: Scenario, curves: list[EnergyCurve], day: date) -> float:
    """The factor (at least 1) by which the supply stack must grow for ``curves``, the park's
    energy offer for ``day``, to stay within :data:`MAX_SHARE_OF_SPARE` in every interval."""
    stack = scenario.market.exchange_simulator.supply_stack
    if not stack:
        return 1.0  # a price-taking market: no stack to run out of
    prices = market_truth(scenario, day)["market.price_da_cny_per_mwh"].to_numpy()
    demand = calibrated_demand(stack, prices)
    spare_buy, spare_sell = stack[-1][1] - demand, demand - stack[0][1]
    low = np.array([c.base_mw for c in curves])  # segments only add injection (quantities >= 0)
    high = low + np.array([sum(s.quantity_mw for s in c.segments) for c in curves])
    buy, sell = np.maximum(-low, 0.0), np.maximum(high, 0.0)
    need = max(
        float(np.max(buy / (MAX_SHARE_OF_SPARE * np.maximum(spare_buy, 1e-9)))),
        float(np.max(sell / (MAX_SHARE_OF_SPARE * np.maximum(spare_sell, 1e-9)))),
    )
    return max(1.0, need)


def widened(scenario: Scenario, factor: float) -> Scenario:
    """``scenario`` with every knot of its exchange simulator's supply stack ``factor`` times the MW."""
    if factor == 1.0:
        return scenario
    sim = scenario.market.exchange_simulator
    wider = sim.model_copy(update={"supply_stack": [(p, q * factor) for p, q in sim.supply_stack]})
    return scenario.model_copy(
        update={"market": scenario.market.model_copy(update={"exchange_simulator": wider})}
    )

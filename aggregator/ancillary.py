"""Ancillary offers read off a solved offer model: frequency regulation and demand response.

Regulation capacity is what the model reserved on the batteries (with the power and state-
of-charge headroom to deliver it). Its mileage price is the break-even price: the expected
price less the marginal value the cap on capacity had, i.e. what the energy schedule would
lose per MW, turned into CNY per MW of mileage.

Demand-response capacity is the headroom left after regulation and the forecast-uncertainty
reserve, sustainable for the market's minimum response time and available in every price
scenario. Each provider has a marginal cost; the cheapest providers hold the reserve and the
regulation, and the rest is offered as one capacity per direction at the highest cost among
the providers it needs (pay-as-bid then pays every provider at least its cost).
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from aggregator.solution import Solution
from infra.contracts import DemandResponseOffer, RegulationOffer
from infra.scenario import MarketRules

CAPACITY_DECIMALS = 3


def regulation_value_per_mw_interval(rules: MarketRules, dt_h: float) -> float:
    """Expected revenue of one MW of regulation capacity held for one interval."""
    reg = rules.regulation
    mileage = reg.mileage_per_mw_h * reg.expected_mileage_price_cny_per_mw * reg.expected_k_factor
    return (reg.capacity_price_cny_per_mw_h + mileage) * dt_h


def regulation_offers(solution: Solution, rules: MarketRules) -> list[RegulationOffer]:
    held = solution.regulation
    if held is None:
        return []
    reg = rules.regulation
    dt = solution.dt_h
    value = held.value_cny_per_mw_interval
    capacity = held.capacity_mw
    shadow = held.cap_shadow
    per_mileage = reg.mileage_per_mw_h * dt * reg.expected_k_factor
    offers = []
    for t in range(solution.T):
        break_even = (
            max(value - shadow[t] - reg.capacity_price_cny_per_mw_h * dt, 0.0) / per_mileage
            if per_mileage
            else 0.0
        )
        ticks = math.ceil(round(break_even / reg.price_tick_cny_per_mw, 6))
        price = min(
            max(ticks * reg.price_tick_cny_per_mw, reg.mileage_price_min_cny_per_mw),
            reg.mileage_price_max_cny_per_mw,
        )
        offers.append(
            RegulationOffer(
                capacity_mw=round(float(capacity[t]), CAPACITY_DECIMALS),
                mileage_price_cny_per_mw=round(price, 6),
            )
        )
    return offers


def _providers(
    solution: Solution, direction: str, hours: float, reference_price: float
) -> list[tuple[np.ndarray, float]]:
    """(capacity (T,) available in every scenario, cost CNY/MWh) per providing device."""
    out = []
    for fs in solution.fleets:
        f = fs.fleet
        provide = f.peak_cut if direction == "peak_cut" else f.valley_fill
        per_scenario = []
        cost = None
        for s in range(solution.K):
            offer = provide(fs, s, hours, reference_price, solution.carbon_price)
            if offer is None:
                break
            per_scenario.append(offer[0])
            cost = offer[1]
        if per_scenario and cost is not None:
            capacity = np.min(np.stack(per_scenario), axis=0)
            out += [(capacity[i], float(cost[i])) for i in range(f.n)]
    return out


def demand_response_offers(
    solution: Solution,
    rules: MarketRules,
    reserve_up: np.ndarray,
    reserve_down: np.ndarray,
    reference_price: float,
) -> list[list[DemandResponseOffer]]:
    dr = rules.demand_response
    T = solution.T
    regulation = np.zeros(T) if solution.regulation is None else solution.regulation.capacity_mw
    hours = max(rules.vpp_min_response_hours, solution.dt_h)
    tick = rules.price_tick_cny_per_mwh
    offers: list[list[DemandResponseOffer]] = [[] for _ in range(T)]
    for direction, cap, reserve in (
        ("peak_cut", dr.peak_cut_cap_cny_per_mwh, reserve_up),
        ("valley_fill", dr.valley_fill_cap_cny_per_mwh, reserve_down),
    ):
        providers = [
            (c, math.ceil(round(cost / tick, 6)) * tick)
            for c, cost in _providers(solution, direction, hours, reference_price)
        ]
        providers = [(c, max(price, 0.0)) for c, price in providers if price <= cap]
        for t in range(T):
            steps: dict[float, float] = defaultdict(float)
            for capacity, price in providers:
                steps[price] += float(capacity[t])
            # Reserve and regulation are held by the cheapest providers; the rest is offered.
            held = float(reserve[t]) + float(regulation[t])
            offered, price = 0.0, 0.0
            for step_price in sorted(steps):
                keep = min(held, steps[step_price])
                held -= keep
                if steps[step_price] - keep > 1e-9:
                    offered += steps[step_price] - keep
                    price = step_price
            if offered >= max(rules.vpp_min_capacity_mw, rules.min_segment_mw):
                offers[t].append(
                    DemandResponseOffer(
                        direction=direction,
                        capacity_mw=round(offered, CAPACITY_DECIMALS),
                        price_cny_per_mwh=price,
                    )
                )
    return offers

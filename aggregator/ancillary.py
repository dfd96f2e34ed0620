"""Ancillary offers read off a solved offer model: frequency regulation and demand response.

Regulation capacity is what the model reserved on the batteries (with the power and state-
of-charge headroom to deliver it). Its mileage price is the break-even price: the expected
price less the marginal value the cap on capacity had, i.e. what the energy schedule would
lose per MW, turned into CNY per MW of mileage.

Demand-response capacity is the headroom left after regulation and the forecast-uncertainty
reserve, sustainable for the market's minimum response time and available in every price
scenario. The grid may call every interval offered, so a device's offers over the day must be
deliverable together: its energy goes to the intervals the grid calls first, the dearest
expected prices for peak cut and the cheapest for valley fill (:mod:`aggregator.devices.calls`). Each provider has a marginal cost; the cheapest providers hold the reserve and the
regulation, and the rest is offered as one capacity per direction at the highest cost among
the providers it needs (pay-as-bid then pays every provider at least its cost).
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from aggregator.devices.calls import deliverable
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
    solution: Solution,
    direction: str,
    hours: float,
    reference_price: float,
    cap: float,
    held: np.ndarray,
    order: np.ndarray,
) -> list[tuple[np.ndarray, float]]:
    """(capacity (T,), cost CNY/MWh) per device that provides ``direction`` at most at ``cap``:
    its headroom less its part of ``held`` (T,) MW (the cheapest providers hold the reserve and
    regulation), deliverable in every scenario if every interval is called, the intervals taking
    energy in ``order`` (the order the grid would call them)."""
    per_scenario, costs = [], np.zeros(0)
    for s in range(solution.K):
        fleets, powers, cost_parts = [], [], []
        for fs in solution.fleets:
            provide = fs.fleet.peak_cut if direction == "peak_cut" else fs.fleet.valley_fill
            offer = provide(fs, s, hours, reference_price, solution.carbon_price)
            if offer is not None:
                fleets.append(fs)
                powers.append(np.where((offer[1] <= cap)[:, None], offer[0], 0.0))
                cost_parts.append(np.asarray(offer[1], dtype=float))
        if not fleets:
            return []
        costs = np.concatenate(cost_parts)
        free = np.split(
            _less_held(np.concatenate(powers), costs, held), np.cumsum([fs.fleet.n for fs in fleets])[:-1]
        )
        per_scenario.append(
            np.concatenate([
                deliverable(p, fs.fleet.call_budgets(fs, s, direction), order, solution.dt_h)
                for fs, p in zip(fleets, free, strict=True)
            ])
        )  # fmt: skip
    capacity = np.min(np.stack(per_scenario), axis=0)
    return [(capacity[i], float(costs[i])) for i in range(len(costs)) if costs[i] <= cap]


def _less_held(power: np.ndarray, cost: np.ndarray, held: np.ndarray) -> np.ndarray:
    """Headroom (N, T) left after the cheapest devices hold ``held`` (T,) MW in each interval."""
    cheapest = np.argsort(cost, kind="stable")
    ordered = np.maximum(power[cheapest], 0.0)
    before = np.cumsum(ordered, axis=0) - ordered
    left = np.empty_like(ordered)
    left[cheapest] = ordered - np.clip(held[None, :] - before, 0.0, ordered)
    return left


def demand_response_offers(
    solution: Solution,
    rules: MarketRules,
    reserve_up: np.ndarray,
    reserve_down: np.ndarray,
    reference_price: float,
    expected_price: np.ndarray,
) -> list[list[DemandResponseOffer]]:
    """Per interval, one offer per direction; ``expected_price`` (T,) CNY/MWh orders the
    intervals by how likely the grid is to call them."""
    dr = rules.demand_response
    T = solution.T
    regulation = np.zeros(T) if solution.regulation is None else solution.regulation.capacity_mw
    hours = max(rules.vpp_min_response_hours, solution.dt_h)
    tick = rules.price_tick_cny_per_mwh
    offers: list[list[DemandResponseOffer]] = [[] for _ in range(T)]
    dearest_first = np.argsort(-np.asarray(expected_price, dtype=float), kind="stable")
    for direction, cap, reserve, order in (
        ("peak_cut", dr.peak_cut_cap_cny_per_mwh, reserve_up, dearest_first),
        ("valley_fill", dr.valley_fill_cap_cny_per_mwh, reserve_down, dearest_first[::-1]),
    ):
        held = np.asarray(reserve, dtype=float) + np.asarray(regulation, dtype=float)
        providers = [
            (c, max(math.ceil(round(cost / tick, 6)) * tick, 0.0))
            for c, cost in _providers(solution, direction, hours, reference_price, cap, held, order)
        ]
        for t in range(T):
            steps: dict[float, float] = defaultdict(float)
            for capacity, price in providers:
                steps[price] += float(capacity[t])
            offered = sum(steps.values())
            price = max((p for p, mw in steps.items() if mw > 1e-9), default=0.0)
            if offered >= max(rules.vpp_min_capacity_mw, rules.min_segment_mw):
                offers[t].append(
                    DemandResponseOffer(
                        direction=direction,
                        capacity_mw=round(offered, CAPACITY_DECIMALS),
                        price_cny_per_mwh=price,
                    )
                )
    return offers

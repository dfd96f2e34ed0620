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
from dataclasses import dataclass, replace

import numpy as np

from aggregator.devices.calls import deliverable
from aggregator.solution import Solution
from infra.contracts import DemandResponseOffer, RegulationOffer
from infra.scenario import MarketRules

CAPACITY_DECIMALS = 3
# Offer passes: an interval whose total falls below the minimum offer gives its energy back.
MAX_OFFER_PASSES = 4


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


@dataclass(frozen=True)
class _Direction:
    """One direction of the demand-response offer and what it must leave to the reserves."""

    name: str  # peak_cut / valley_fill
    cap_cny_per_mwh: float
    held_mw: np.ndarray  # (T,) reserve and regulation power, held by the cheapest providers
    held_mwh: np.ndarray  # (T,) stored energy the cover for forecast errors keeps at each interval's end
    order: np.ndarray  # the intervals in the order the grid would call them


def _providers(
    solution: Solution, d: _Direction, hours: float, reference_price: float, tick: float
) -> list[tuple[np.ndarray, float]]:
    """(capacity (T,), price CNY/MWh on the tick) per device that provides ``d`` at most at its
    cap: its headroom less its part of the held power, deliverable in every scenario if every
    interval is called, the intervals taking energy in ``d.order`` after the stored energy the
    forecast-error cover needs (each store keeping its share of it)."""
    per_scenario, prices = [], np.zeros(0)
    for s in range(solution.K):
        fleets, powers, costs = [], [], []
        for fs in solution.fleets:
            provide = fs.fleet.peak_cut if d.name == "peak_cut" else fs.fleet.valley_fill
            offer = provide(fs, s, hours, reference_price, solution.carbon_price)
            if offer is not None:
                fleets.append(fs)
                powers.append(offer[0])
                costs.append(np.asarray(offer[1], dtype=float))
        if not fleets:
            return []
        prices = np.maximum(np.ceil(np.round(np.concatenate(costs) / tick, 6)) * tick, 0.0)
        power = np.where((prices <= d.cap_cny_per_mwh)[:, None], np.concatenate(powers), 0.0)
        free = np.split(_less_held(power, prices, d.held_mw), np.cumsum([fs.fleet.n for fs in fleets])[:-1])
        budgets = [fs.fleet.call_budgets(fs, s, d.name) for fs in fleets]
        stored = sum((b.stored_mwh(solution.T) for b in budgets if b is not None), np.zeros(solution.T))
        kept = np.clip(np.divide(d.held_mwh, stored, out=np.ones(solution.T), where=stored > 0), 0.0, 1.0)
        per_scenario.append(
            np.concatenate([
                deliverable(p, b.holding(kept) if b is not None else None, d.order, solution.dt_h)
                for p, b in zip(free, budgets, strict=True)
            ])
        )  # fmt: skip
    capacity = np.min(np.stack(per_scenario), axis=0)
    return [(capacity[i], float(prices[i])) for i in range(len(prices)) if prices[i] <= d.cap_cny_per_mwh]


def _less_held(power: np.ndarray, price: np.ndarray, held: np.ndarray) -> np.ndarray:
    """Headroom (N, T) left after the cheapest devices hold ``held`` (T,) MW in each interval."""
    cheapest = np.argsort(price, kind="stable")
    ordered = np.maximum(power[cheapest], 0.0)
    before = np.cumsum(ordered, axis=0) - ordered
    left = np.empty_like(ordered)
    left[cheapest] = ordered - np.clip(held[None, :] - before, 0.0, ordered)
    return left


def demand_response_offers(
    solution: Solution,
    rules: MarketRules,
    reserve_mw: tuple[np.ndarray, np.ndarray],
    reserve_mwh: tuple[np.ndarray, np.ndarray],
    reference_price: float,
    expected_price: np.ndarray,
) -> list[list[DemandResponseOffer]]:
    """Per interval, one offer per direction. ``reserve_mw`` (up, down) (T,) is the forecast
    reserve power, ``reserve_mwh`` (up, down) (T,) the stored energy its window cover keeps;
    ``expected_price`` (T,) CNY/MWh orders the intervals by how likely the grid is to call them.
    An interval too small to offer gives its energy back to the others."""
    dr = rules.demand_response
    T = solution.T
    regulation = np.zeros(T) if solution.regulation is None else solution.regulation.capacity_mw
    hours = max(rules.vpp_min_response_hours, solution.dt_h)
    smallest = max(rules.vpp_min_capacity_mw, rules.min_segment_mw)
    offers: list[list[DemandResponseOffer]] = [[] for _ in range(T)]
    dearest_first = np.argsort(-np.asarray(expected_price, dtype=float), kind="stable")
    for k, (name, cap, order) in enumerate(
        (
            ("peak_cut", dr.peak_cut_cap_cny_per_mwh, dearest_first),
            ("valley_fill", dr.valley_fill_cap_cny_per_mwh, dearest_first[::-1]),
        )
    ):
        held = np.asarray(reserve_mw[k], dtype=float) + np.asarray(regulation, dtype=float)
        d = _Direction(name, cap, held, np.asarray(reserve_mwh[k], dtype=float), order)
        for _ in range(MAX_OFFER_PASSES):
            providers = _providers(solution, d, hours, reference_price, rules.price_tick_cny_per_mwh)
            total = sum((c for c, _ in providers), np.zeros(T))
            small = (total > 0) & (total < smallest)
            if not small[d.order].any():
                break
            d = replace(d, order=np.array([t for t in d.order if not small[t]], dtype=int))
        for t in range(T):
            if total[t] < smallest or total[t] <= 1e-9:  # nothing, or below the minimum offer
                continue
            price = max(p for c, p in providers if c[t] > 1e-9)
            offers[t].append(
                DemandResponseOffer(
                    direction=name,
                    capacity_mw=round(float(total[t]), CAPACITY_DECIMALS),
                    price_cny_per_mwh=price,
                )
            )
    return offers

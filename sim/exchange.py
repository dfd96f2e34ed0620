"""EXCHANGE SIMULATOR: stands in for the power exchange (one implementation of the bidding
service's exchange adapter protocol, ``bidding.exchange.ExchangeAdapter``).

Clearing is the market file's: every market of the province (``MarketRules.registry()``)
names a pure clearing function in :mod:`sim.clearing`. Energy clears price-forming by default
(``exchange_simulator.pricing``): the other sellers' supply stack of the market file plus the
park's curve meet the interval's bidding space, calibrated so that with no park bid the price
is the history price (``market.price_da_cny_per_mwh``). ``pricing: price_taker`` keeps the old
behaviour (the history price, the curve evaluated at it). Regulation clears per time block at a
uniform mileage price against other resources; the park's performance score is its K factor
from a simulated AGC trace (:mod:`sim.agc`). Demand response is invited in the day's dearest
(peak cut) and cheapest (valley fill) intervals and paid as bid. Real-time bids (Shanxi 5
minutes) clear the same way against the real-time reference price of each of their intervals.

:class:`ExchangeSimulator` keeps bids by id with the exchange-side status, refuses
submissions and amendments after gate closure (naming both times) and clears at results time;
its Kafka worker is :mod:`sim.exchange_worker`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd

from infra.contracts import Award, Bid, DemandResponseEvent, ExchangeRefusal, ExchangeStatus
from infra.scenario.model import MarketConfig, Scenario
from infra.timeutil import day_intervals
from sim import agc
from sim.clearing import (
    MarketState,
    Order,
    OrderBook,
    clear,
    demand_response_orders,
    energy_orders,
    regulation_orders,
)
from sim.history import load_history
from sim.noise import rng

EXCHANGE_NAME = "parkvpp-exchange-simulator"


def market_truth(scenario: Scenario, day: date) -> pd.DataFrame:
    return load_history(scenario, day, day + timedelta(days=1), view="truth")


def _mileage_prices(scenario: Scenario, day: date, starts: pd.DatetimeIndex) -> np.ndarray:
    sim = scenario.market.exchange_simulator
    reg = scenario.market.regulation
    gen = rng(scenario.park.simulation.seed, "regulation-price", day.isoformat())
    evening = ((starts.hour >= 17) & (starts.hour < 22)).astype(float)
    raw = (
        sim.regulation_mileage_price_mean_cny_per_mw
        + sim.regulation_evening_premium_cny_per_mw * evening
        + gen.normal(0.0, sim.regulation_mileage_price_sd_cny_per_mw, len(starts))
    )
    ticked = np.round(raw / reg.price_tick_cny_per_mw) * reg.price_tick_cny_per_mw
    return np.clip(ticked, reg.mileage_price_min_cny_per_mw, reg.mileage_price_max_cny_per_mw).round(1)


PARK = "park"


def _state(scenario: Scenario, reference: np.ndarray, pricing: str | None) -> MarketState:
    sim = scenario.market.exchange_simulator
    return MarketState(
        reference_price=reference,
        stack=tuple(tuple(k) for k in sim.supply_stack),
        pricing=pricing or sim.pricing,
        regulation=scenario.market.regulation,
    )


def clear_energy(
    curves: list, market: MarketConfig, reference: np.ndarray, scenario: Scenario, pricing: str | None = None
) -> tuple[list[float], list[float]]:
    """Clear the park's curves in one energy market: (clearing prices, the park's cleared MW)."""
    orders = [
        o
        for i, c in enumerate(curves)
        for o in energy_orders(c, PARK, i, market.price_floor, market.price_cap)
    ]
    result = clear(OrderBook(len(curves), tuple(orders)), market, _state(scenario, reference, pricing))
    cleared = np.zeros(len(curves))
    for o in orders:
        cleared[o.interval] += result.accepted.get(o.order_id, 0.0)
    return result.prices, [round(float(q), 3) for q in cleared]


def park_regulation_performance(scenario: Scenario, day: date, capacity_mw: float) -> agc.AgcPerformance:
    """The park battery pool's AGC performance over one simulated 15-minute trace."""
    gen = rng(scenario.park.simulation.seed, "agc", day.isoformat())
    signal = agc.agc_signal(max(capacity_mw, 1.0), 900, gen)
    return agc.performance(
        signal,
        agc.follow(signal, agc.battery_pool(capacity_mw), gen),
        max(capacity_mw, 1.0),
        scenario.market.exchange_simulator,
    )


def clear_regulation(bid: Bid, scenario: Scenario, day: date) -> tuple[list[float], list[float]]:
    """Per-interval (awarded MW, uniform mileage price) of the park's regulation offer."""
    rules = scenario.market
    _, market = rules.market_for("regulation")
    n = len(bid.interval_starts)
    if not rules.regulation.blocks:  # no blocks configured: the old simulated price draw
        price = _mileage_prices(scenario, day, pd.DatetimeIndex(bid.interval_starts))
        return [
            r.capacity_mw if r.mileage_price_cny_per_mw <= p else 0.0
            for r, p in zip(bid.regulation, price, strict=True)
        ], [float(p) for p in price]
    perf = park_regulation_performance(scenario, day, max(r.capacity_mw for r in bid.regulation))
    k = rules.regulation.k_factor(perf.k1, perf.k2, perf.k3)
    score = max(min(k / rules.regulation.k_cap, 1.0), 1e-3)
    orders = regulation_orders(bid, rules.regulation, bid.interval_minutes, PARK, score)
    for b in range(len(rules.regulation.blocks)):
        for j, (cap, price, performance) in enumerate(rules.exchange_simulator.regulation_competitors):
            orders.append(Order(f"other{j}:reg:{b}", f"other{j}", b, price, cap, performance))
    result = clear(
        OrderBook(len(rules.regulation.blocks), tuple(orders)), market, _state(scenario, np.zeros(n), None)
    )
    awarded, price = [0.0] * n, [0.0] * n
    per_hour = 60 / bid.interval_minutes
    for b, block in enumerate(rules.regulation.blocks):
        for i in range(int(block.start_hour * per_hour), min(int(block.end_hour * per_hour), n)):
            awarded[i] = round(result.accepted.get(f"{PARK}:reg:{b}", 0.0), 3)
            price[i] = result.prices[b]
    return awarded, price


def clear_demand_response(
    bid: Bid, scenario: Scenario, reference: np.ndarray
) -> tuple[list[float], list[float]]:
    _, market = scenario.market.market_for("demand_response")
    sim = scenario.market.exchange_simulator
    orders = demand_response_orders(bid.demand_response, PARK)
    state = MarketState(
        reference_price=reference,
        demand_mw=np.array([sim.dr_peak_cut_price_percentile, sim.dr_valley_fill_price_percentile]),
    )
    capped = tuple(
        Order(
            o.order_id,
            o.bidder,
            o.interval,
            min(o.price, market.price_cap),
            o.volume_mw,
            direction=o.direction,
        )
        for o in orders
    )
    result = clear(OrderBook(len(reference), capped), market, state)
    mw, price = [0.0] * len(reference), [0.0] * len(reference)
    for o in capped:
        q = result.accepted.get(o.order_id, 0.0)
        if q > 0:
            mw[o.interval] = q if o.direction == "peak_cut" else -q
            price[o.interval] = o.price
    return mw, price


def demand_response_events(
    award: Award, scenario: Scenario, notified_at: datetime
) -> list[DemandResponseEvent]:
    """Contiguous invited intervals of one direction and price become one event."""
    events: list[DemandResponseEvent] = []
    mw, price = award.demand_response_mw, award.demand_response_price_cny_per_mwh
    i = 0
    while i < len(mw):
        if abs(mw[i]) < 1e-9:
            i += 1
            continue
        j = i
        while j + 1 < len(mw) and np.sign(mw[j + 1]) == np.sign(mw[i]) and price[j + 1] == price[i]:
            j += 1
        events.append(
            DemandResponseEvent(
                direction="peak_cut" if mw[i] > 0 else "valley_fill",
                first_interval=i,
                last_interval=j,
                notified_at=notified_at,
                target_mw=float(min(abs(m) for m in mw[i : j + 1])),
                price_cny_per_mwh=price[i],
                baseline_days=scenario.market.demand_response.baseline_days,
            )
        )
        i = j + 1
    return events


def clear_day_ahead(
    bid: Bid, bid_message_id: str, scenario: Scenario, day: date, pricing: str | None = None
) -> Award:
    """Clear a day-ahead bid: energy, regulation and demand response, each by its market's rule."""
    truth = market_truth(scenario, day)
    starts = pd.DatetimeIndex(bid.interval_starts)
    if not starts.equals(truth.index):
        raise ValueError(
            f"interval_starts: the bid does not cover the market day {day} in {bid.interval_minutes}-minute intervals"
        )
    rules = scenario.market
    da_id, da_market = rules.market_for("day_ahead_energy")
    reference = truth["market.price_da_cny_per_mwh"].to_numpy()
    prices, cleared = clear_energy(bid.energy, da_market, reference, scenario, pricing)
    award = Award(
        interval_minutes=bid.interval_minutes,
        interval_starts=bid.interval_starts,
        market="day_ahead",
        market_id=da_id,
        bid_message_id=bid_message_id,
        exchange=EXCHANGE_NAME,
        cleared_mw=cleared,
        clearing_price_cny_per_mwh=prices,
    )
    if bid.regulation:
        award.regulation_mw, award.regulation_mileage_price_cny_per_mw = clear_regulation(bid, scenario, day)
        award.regulation_market_id = rules.market_for("regulation")[0]
    if bid.demand_response:
        award.demand_response_mw, award.demand_response_price_cny_per_mwh = clear_demand_response(
            bid, scenario, np.asarray(prices)
        )
        dr_id, dr_market = rules.market_for("demand_response")
        award.demand_response_market_id = dr_id
        gate = dr_market.gate_closure(day)
        notified = datetime.combine(
            gate.date(), da_market.results_local_time or gate.time(), tzinfo=gate.tzinfo
        )
        award.demand_response_events = demand_response_events(award, scenario, notified)
    return award


def real_time_results(day_ahead: Award, scenario: Scenario, day: date) -> Award:
    """Real-time prices for the day on the day-ahead grid; with no real-time bid the schedule
    stays at Q_DA (the real-time market's ``missing_bid: price_taker``)."""
    truth = market_truth(scenario, day)
    return Award(
        interval_minutes=day_ahead.interval_minutes,
        interval_starts=day_ahead.interval_starts,
        market="real_time",
        market_id=scenario.market.market_for("real_time_energy")[0],
        bid_message_id=day_ahead.bid_message_id,
        exchange=EXCHANGE_NAME,
        cleared_mw=day_ahead.cleared_mw,
        clearing_price_cny_per_mwh=[float(p) for p in truth["market.price_rt_cny_per_mwh"]],
    )


def real_time_reference(scenario: Scenario, day: date, interval_minutes: int) -> np.ndarray:
    """History real-time prices on the real-time market's grid (each 15-min price held)."""
    rt = market_truth(scenario, day)["market.price_rt_cny_per_mwh"].to_numpy()
    per = 1440 // interval_minutes
    return np.repeat(rt, per // len(rt)) if per >= len(rt) else rt.reshape(per, -1).mean(axis=1)


def clear_real_time(
    bid: Bid, bid_message_id: str, scenario: Scenario, day: date, pricing: str | None = None
) -> Award:
    """Clear a real-time bid on the real-time grid (5 minutes in Shanxi): each of its intervals (a
    rolling gate lets a bid cover only the intervals still open, so it may start after midnight)
    against that interval's reference price. The award covers the bid's intervals only."""
    rt_id, rt_market = scenario.market.market_for("real_time_energy")
    minutes = rt_market.interval_minutes
    if bid.interval_minutes != minutes:
        raise ValueError(
            f"interval_minutes: a real-time bid for {rt_id} needs {minutes}-minute intervals, not {bid.interval_minutes}"
        )
    grid = pd.DatetimeIndex(day_intervals(day, minutes))
    starts = pd.DatetimeIndex(bid.interval_starts)
    index = grid.get_indexer(starts)
    if len(starts) == 0 or np.any(index < 0) or np.any(np.diff(index) != 1):
        raise ValueError(
            f"interval_starts: a real-time bid's intervals must be consecutive {minutes}-minute intervals of {day}"
        )
    reference = real_time_reference(scenario, day, minutes)[index]
    prices, cleared = clear_energy(bid.energy, rt_market, reference, scenario, pricing)
    return Award(
        interval_minutes=bid.interval_minutes,
        interval_starts=bid.interval_starts,
        market="real_time",
        market_id=rt_id,
        real_time_bid=True,
        bid_message_id=bid_message_id,
        exchange=EXCHANGE_NAME,
        cleared_mw=cleared,
        clearing_price_cny_per_mwh=prices,
    )


# --- the adapter -------------------------------------------------------------------------


@dataclass
class _Held:
    bid: Bid
    market_id: str
    day: date
    gate: datetime
    status: ExchangeStatus = "open"
    awards: list[Award] = field(default_factory=list)


def market_of(bid: Bid, scenario: Scenario) -> tuple[str, MarketConfig]:
    registry = scenario.market.registry()
    if bid.market_id:
        if bid.market_id not in registry:
            raise ExchangeRefusal(
                "invalid", f"market_id {bid.market_id!r} is not one of {', '.join(registry)}"
            )
        return bid.market_id, registry[bid.market_id]
    return scenario.market.market_for("day_ahead_energy" if bid.market == "day_ahead" else "real_time_energy")


class ExchangeSimulator:
    """The simulated exchange behind the adapter protocol (submit, amend, withdraw, status, results).

    Times are the market clock's (simulated), passed by the caller. The delivery day of a bid is
    the day of its first interval; its gate is its market's gate closure for that day (for a
    rolling real-time gate: before its first interval)."""

    name = EXCHANGE_NAME

    def __init__(self, scenario: Scenario, pricing: str | None = None) -> None:
        self.scenario = scenario
        self.pricing = pricing
        self._bids: dict[str, _Held] = {}

    def _gate(self, bid: Bid) -> tuple[str, date, datetime]:
        market_id, market = market_of(bid, self.scenario)
        day = bid.interval_starts[0].date()
        return market_id, day, market.gate_closure(day, bid.interval_starts[0])

    def _held(self, bid_id: str) -> _Held:
        if bid_id not in self._bids:
            raise ExchangeRefusal("unknown_bid", f"bid {bid_id}: not known to {self.name}")
        return self._bids[bid_id]

    def _close_if_due(self, held: _Held, at: datetime) -> None:
        if held.status == "open" and at >= held.gate:
            held.status = "closed"

    def submit(self, bid: Bid, bid_id: str, at: datetime) -> ExchangeStatus:
        market_id, day, gate = self._gate(bid)
        if at >= gate:
            raise ExchangeRefusal(
                "gate_closed",
                f"bid {bid_id}: submitted at {at.isoformat()}, gate closed at {gate.isoformat()}",
            )
        if bid_id in self._bids:
            raise ExchangeRefusal("invalid", f"bid {bid_id}: already submitted (amend it instead)")
        self._bids[bid_id] = _Held(bid, market_id, day, gate)
        return "open"

    def amend(self, bid_id: str, bid: Bid, at: datetime) -> ExchangeStatus:
        held = self._held(bid_id)
        self._close_if_due(held, at)
        if at >= held.gate:
            raise ExchangeRefusal(
                "gate_closed",
                f"bid {bid_id}: amended at {at.isoformat()}, gate closed at {held.gate.isoformat()}",
            )
        if held.status != "open":
            raise ExchangeRefusal("not_open", f"bid {bid_id}: is {held.status}, cannot be amended")
        market_id, day, _ = self._gate(bid)
        if (market_id, day) != (held.market_id, held.day):
            raise ExchangeRefusal(
                "invalid", f"bid {bid_id}: an amendment must keep market {held.market_id} and day {held.day}"
            )
        held.bid = bid
        return "open"

    def withdraw(self, bid_id: str, at: datetime) -> ExchangeStatus:
        held = self._held(bid_id)
        self._close_if_due(held, at)
        if at >= held.gate:
            raise ExchangeRefusal(
                "gate_closed",
                f"bid {bid_id}: withdrawn at {at.isoformat()}, gate closed at {held.gate.isoformat()}",
            )
        if held.status != "open":
            raise ExchangeRefusal("not_open", f"bid {bid_id}: is {held.status}, cannot be withdrawn")
        held.status = "withdrawn"
        return "withdrawn"

    def status(self, bid_id: str, at: datetime) -> ExchangeStatus:
        held = self._held(bid_id)
        self._close_if_due(held, at)
        return held.status

    def results(self, bid_id: str, at: datetime) -> list[Award]:
        held = self._held(bid_id)
        self._close_if_due(held, at)
        if held.status == "withdrawn":
            return []
        if held.status == "open":
            raise ExchangeRefusal(
                "not_closed",
                f"bid {bid_id}: results asked at {at.isoformat()}, before gate closure {held.gate.isoformat()}",
            )
        if held.status == "closed":
            if held.bid.market == "day_ahead":
                da = clear_day_ahead(held.bid, bid_id, self.scenario, held.day, self.pricing)
                held.awards = [da, real_time_results(da, self.scenario, held.day)]
            else:
                held.awards = [clear_real_time(held.bid, bid_id, self.scenario, held.day, self.pricing)]
            held.status = "cleared"
        return list(held.awards)

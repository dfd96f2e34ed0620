"""Clearing rules of the exchange simulator: pure functions from an order book and a market's
configuration to accepted volumes and prices, chosen by name from the market file.

``CLEARING[market.clearing](book, market, state)`` is the whole interface. Adding a market is
an entry in ``infra/scenario/markets/<province>.yaml``; a new way of clearing is one function
registered here with :func:`clearing_rule`. Nothing here reads a file, a clock or a database.

Order sign: ``volume_mw`` > 0 sells (injects) at ``price`` or more, < 0 buys at ``price`` or
less. A price-taking quantity is a sell at the floor or a buy at the cap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from infra.contracts import Bid, DemandResponseOffer, EnergyCurve
from infra.scenario.model import MarketConfig, RegulationRule

EPS = 1e-9


@dataclass(frozen=True)
class Order:
    order_id: str
    bidder: str
    interval: int  # interval (energy, demand response) or time block (regulation) index
    price: float
    volume_mw: float
    performance: float = 1.0
    direction: str = ""  # demand response: peak_cut / valley_fill


@dataclass(frozen=True)
class OrderBook:
    n_intervals: int
    orders: tuple[Order, ...]


@dataclass(frozen=True)
class MarketState:
    """What the exchange knows besides the orders: per interval the reference (history) price,
    the bidding space the other sellers' stack serves, and regulation demand per block."""

    reference_price: np.ndarray
    stack: tuple[tuple[float, float], ...] = ()
    demand_mw: np.ndarray | None = None
    regulation: RegulationRule | None = None
    pricing: str = "price_forming"


@dataclass(frozen=True)
class ClearingResult:
    prices: list[float]
    accepted: dict[str, float] = field(default_factory=dict)  # order id -> accepted MW (signed)


Clearing = Callable[[OrderBook, MarketConfig, MarketState], ClearingResult]
CLEARING: dict[str, Clearing] = {}


def clearing_rule(name: str) -> Callable[[Clearing], Clearing]:
    def register(fn: Clearing) -> Clearing:
        CLEARING[name] = fn
        return fn

    return register


def clear(book: OrderBook, market: MarketConfig, state: MarketState) -> ClearingResult:
    """Validate the book against the market (the exchange's checks at market close) and clear it."""
    if market.clearing not in CLEARING:
        raise KeyError(
            f"market {market.id}: clearing {market.clearing!r} is not one of {', '.join(CLEARING)}"
        )
    problems = [
        f"order {o.order_id}: price {o.price} outside {market.price_floor}..{market.price_cap}"
        for o in book.orders
        if not market.price_floor - EPS <= o.price <= market.price_cap + EPS
    ]
    problems += [
        f"order {o.order_id}: interval {o.interval} outside 0..{book.n_intervals - 1}"
        for o in book.orders
        if not 0 <= o.interval < book.n_intervals
    ]
    ids = [o.order_id for o in book.orders]
    if len(set(ids)) != len(ids):
        problems.append("order ids are not unique")
    if problems:
        raise ValueError("; ".join(problems[:10]))
    return CLEARING[market.clearing](book, market, state)


# --- energy ------------------------------------------------------------------------------


def stack_mw(stack: Sequence[tuple[float, float]], price: float) -> float:
    """Other sellers' cumulative offer at ``price`` (piecewise linear between the knots)."""
    prices, mws = zip(*stack, strict=True)
    return float(np.interp(price, prices, mws))


def stack_price(stack: Sequence[tuple[float, float]], mw: float) -> float:
    """Inverse of :func:`stack_mw`: the price at which the stack offers ``mw``."""
    prices, mws = zip(*stack, strict=True)
    return float(np.interp(mw, mws, prices))


def calibrated_demand(stack: Sequence[tuple[float, float]], prices: np.ndarray) -> np.ndarray:
    """The bidding space of each interval for which the stack alone clears at the history price."""
    p, q = zip(*stack, strict=True)
    return np.interp(prices, p, q)


def energy_orders(curve: EnergyCurve, bidder: str, interval: int, floor: float, cap: float) -> list[Order]:
    """A park's net-injection curve as orders: the base is price-taking, each segment a sell."""
    out = []
    if abs(curve.base_mw) > EPS:
        out.append(
            Order(
                f"{bidder}:{interval}:base",
                bidder,
                interval,
                floor if curve.base_mw > 0 else cap,
                curve.base_mw,
            )
        )
    out += [
        Order(f"{bidder}:{interval}:{k}", bidder, interval, s.price_cny_per_mwh, s.quantity_mw)
        for k, s in enumerate(curve.segments)
        if s.quantity_mw > EPS
    ]
    return out


def _excess(orders: list[Order], stack, demand: float, p: float, strict: bool = False) -> float:
    """Supply minus demand at price p (strict: orders exactly at p left out)."""
    net = stack_mw(stack, p) - demand
    for o in orders:
        if (o.volume_mw > 0 and (o.price < p - EPS if strict else o.price <= p + EPS)) or (
            o.volume_mw < 0 and (o.price > p + EPS if strict else o.price >= p - EPS)
        ):
            net += o.volume_mw
    return net


def _uniform_interval(orders: list[Order], stack, demand: float, lo: float, hi: float) -> tuple[float, dict]:
    if _excess(orders, stack, demand, lo) >= 0:
        p = lo
    elif _excess(orders, stack, demand, hi) < 0:
        p = hi
    else:
        a, b = lo, hi  # excess(a) < 0 <= excess(b); the excess never falls as the price rises
        while b - a > 1e-7:
            m = 0.5 * (a + b)
            a, b = (a, m) if _excess(orders, stack, demand, m) >= 0 else (m, b)
        p = b
        for o in orders:  # the price sits on an order's step: that order is marginal
            if a - 1e-6 <= o.price <= b + 1e-6:
                p = o.price
    # orders strictly in the money are accepted whole; those at the price share what is left
    accepted: dict[str, float] = {}
    at_price = [o for o in orders if abs(o.price - p) <= 1e-6]
    for o in orders:
        if o not in at_price:
            in_money = o.price < p if o.volume_mw > 0 else o.price > p
            accepted[o.order_id] = o.volume_mw if in_money else 0.0
    if at_price:
        residual = -_excess(orders, stack, demand, p, strict=True)  # what the orders at p must cover
        sells = [o for o in at_price if o.volume_mw > 0]
        buys = [o for o in at_price if o.volume_mw < 0]
        total_sell = sum(o.volume_mw for o in sells)
        total_buy = -sum(o.volume_mw for o in buys)
        # at p: accepted sells - accepted buys = residual (within what is offered)
        net = min(max(residual, -total_buy), total_sell)
        sell_share = (max(net, 0.0) / total_sell) if total_sell > EPS else 0.0
        buy_share = (max(-net, 0.0) / total_buy) if total_buy > EPS else 0.0
        for o in sells:
            accepted[o.order_id] = o.volume_mw * sell_share
        for o in buys:
            accepted[o.order_id] = o.volume_mw * buy_share
    return p, accepted


@clearing_rule("uniform_price_stack")
def uniform_price_stack(book: OrderBook, market: MarketConfig, state: MarketState) -> ClearingResult:
    """Uniform marginal price per interval: the other sellers' stack plus the book's orders meet
    the bidding space. More supply offered can only lower the price (the excess supply is
    non-decreasing in price). ``state.pricing == "price_taker"`` clears at the reference price."""
    if state.pricing == "price_taker" or not state.stack:
        return price_taker(book, market, state)
    demand = (
        state.demand_mw
        if state.demand_mw is not None
        else calibrated_demand(state.stack, state.reference_price)
    )
    by_interval: list[list[Order]] = [[] for _ in range(book.n_intervals)]
    for o in book.orders:
        by_interval[o.interval].append(o)
    prices, accepted = [], {}
    for i, orders in enumerate(by_interval):
        p, acc = _uniform_interval(
            orders, state.stack, float(demand[i]), market.price_floor, market.price_cap
        )
        prices.append(round(p, 2))
        accepted.update(acc)
    return ClearingResult(prices, accepted)


@clearing_rule("price_taker")
def price_taker(book: OrderBook, market: MarketConfig, state: MarketState) -> ClearingResult:
    """The park cannot move the price: each order is accepted where the reference price reaches it."""
    prices = [float(p) for p in state.reference_price[: book.n_intervals]]
    accepted = {}
    for o in book.orders:
        p = prices[o.interval]
        accepted[o.order_id] = o.volume_mw if (o.price <= p if o.volume_mw > 0 else o.price >= p) else 0.0
    return ClearingResult(prices, accepted)


# --- regulation --------------------------------------------------------------------------


@clearing_rule("uniform_mileage_price")
def uniform_mileage_price(book: OrderBook, market: MarketConfig, state: MarketState) -> ClearingResult:
    """Per time block: rank offers by price / performance**w, accept up to the block's demand,
    pay everyone the marginal accepted offer's mileage price. Awards never exceed demand."""
    rule = state.regulation
    if rule is None or not rule.blocks:
        raise ValueError(
            f"market {market.id}: uniform_mileage_price needs regulation blocks in the market file"
        )
    prices, accepted = [], {}
    for b, block in enumerate(rule.blocks):
        offers = [o for o in book.orders if o.interval == b and o.volume_mw > EPS and o.performance > 0]
        offers.sort(key=lambda o: (o.price / o.performance**rule.performance_weight, o.order_id))
        left, marginal = block.demand_mw, market.price_floor
        for o in offers:
            take = min(o.volume_mw, max(left, 0.0))
            accepted[o.order_id] = take
            if take > EPS:
                left -= take
                marginal = max(marginal, o.price)
        tick = rule.price_tick_cny_per_mw
        prices.append(round(min(max(round(marginal / tick) * tick, market.price_floor), market.price_cap), 4))
    return ClearingResult(prices, accepted)


# --- demand response ---------------------------------------------------------------------


@clearing_rule("demand_response_invitation")
def demand_response_invitation(book: OrderBook, market: MarketConfig, state: MarketState) -> ClearingResult:
    """The grid invites peak cut in the day's dearest intervals and valley fill in the cheapest
    (percentiles in ``state.demand_mw`` as [peak, valley]); accepted offers are paid as bid."""
    ref = state.reference_price
    pct = state.demand_mw if state.demand_mw is not None else np.array([92.0, 8.0])
    peak = ref >= np.percentile(ref, pct[0])
    valley = ref <= np.percentile(ref, pct[1])
    accepted = {}
    for o in book.orders:
        invited = peak[o.interval] if o.direction == "peak_cut" else valley[o.interval]
        accepted[o.order_id] = o.volume_mw if invited else 0.0
    return ClearingResult([float(p) for p in ref], accepted)


def regulation_orders(
    bid: Bid, rule: RegulationRule, interval_minutes: int, bidder: str, performance: float
) -> list[Order]:
    """A park's per-interval regulation offer as one order per block: the capacity it can hold
    through the whole block at the dearest price it asked in that block."""
    out = []
    per_hour = 60 / interval_minutes
    for b, block in enumerate(rule.blocks):
        idx = range(int(block.start_hour * per_hour), int(block.end_hour * per_hour))
        offers = [bid.regulation[i] for i in idx if i < len(bid.regulation)]
        if not offers:
            continue
        cap = min(o.capacity_mw for o in offers)
        if cap > EPS:
            price = max(o.mileage_price_cny_per_mw for o in offers)
            out.append(Order(f"{bidder}:reg:{b}", bidder, b, price, cap, performance))
    return out


def demand_response_orders(offers: list[list[DemandResponseOffer]], bidder: str) -> list[Order]:
    return [
        Order(f"{bidder}:dr:{i}:{k}", bidder, i, o.price_cny_per_mwh, o.capacity_mw, direction=o.direction)
        for i, per in enumerate(offers)
        for k, o in enumerate(per)
        if o.capacity_mw > EPS
    ]


def missing_bid_curve(rule: str, expected_net_mw: float, cap: float) -> EnergyCurve:
    """What stands for a park with no bid at gate closure, by the market file's ``missing_bid``:
    ``price_cap``: what it would inject is offered at the cap (purchases stay price-taking);
    ``price_taker``: its expected position at any price; ``no_participation``: nothing."""
    from infra.contracts import Segment

    if rule == "price_taker":
        return EnergyCurve(base_mw=expected_net_mw, segments=[])
    if rule == "price_cap":
        sell = max(expected_net_mw, 0.0)
        segs = [Segment(price_cny_per_mwh=cap, quantity_mw=sell)] if sell > 0 else []
        return EnergyCurve(base_mw=min(expected_net_mw, 0.0), segments=segs)
    return EnergyCurve(base_mw=0.0, segments=[])

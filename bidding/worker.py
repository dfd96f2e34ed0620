"""Bidding worker: offers become rule-checked bids.

Day-ahead bids are stamped with the market clock's bid time (before the day-ahead gate). A
real-time offer is made by an intraday re-optimisation at ``Offer.issued_at``; its bid goes to the
exchange then, so it is stamped with that time and checked against the rolling gate of its first
interval (the earliest to close) through the bid lifecycle: a bid at or after that gate is refused
with :class:`~bidding.lifecycle.GateClosed` naming both times (the worker dead-letters it).
"""

from __future__ import annotations

import logging
from datetime import datetime

from bidding.clock import bid_time
from bidding.lifecycle import BidLifecycle, Event, MemoryStore
from bidding.rules import BidRejected, make_bid
from infra.contracts import Bid, Offer, Topic
from infra.db.outbox import enqueue
from infra.registry import portfolio
from infra.scenario.model import MarketRules
from infra.worker import MessageContext, Worker

log = logging.getLogger(__name__)


def real_time_submission(bid: Bid, bid_id: str, issued_at: datetime | None, rules: MarketRules) -> datetime:
    """When a real-time bid is submitted (its offer's time), refused if its rolling gate has closed."""
    if issued_at is None:
        raise BidRejected(
            "issued_at: a real-time offer must say when it was made; its bid is checked against the rolling gate"
        )
    market_id = bid.market_id or rules.market_for("real_time_energy")[0]
    market = rules.registry()[market_id]
    first = bid.interval_starts[0]
    life = BidLifecycle(bid_id, market_id, market.gate_closure(first.date(), first), MemoryStore())
    life.apply(Event.VALIDATE, issued_at)
    life.apply(Event.SUBMIT, issued_at)  # raises GateClosed at or after the gate
    return issued_at


class BiddingWorker(Worker):
    """Consumes offers, applies the province rules and publishes the bid."""

    group = "bidding"
    topics = (Topic.OFFERS,)

    def handle(self, ctx: MessageContext) -> None:
        env = ctx.envelope
        offer = Offer.from_envelope(env)
        rules = portfolio(self.engine, env.park_id, env.market_day).market
        bid = make_bid(offer, env.message_id, rules)
        if bid.market == "day_ahead":  # on the market clock: before the gate (the exchange checks it)
            bid.submitted_at = bid_time(rules, env.market_day)
            bid_env = bid.envelope(env.park_id, env.market_day, bid.market)
        else:  # one real-time bid per offer (each intraday re-optimisation makes one)
            key = (env.park_id, env.market_day, bid.market, env.message_id)
            bid.submitted_at = real_time_submission(
                bid, bid.envelope(*key).message_id, offer.issued_at, rules
            )
            bid_env = bid.envelope(*key)
        with ctx.transaction() as conn:
            enqueue(conn, Topic.BIDS, bid_env)
        log.info(
            "bid %s for %s %s: %d intervals, %d adjustments",
            bid.market,
            env.park_id,
            env.market_day,
            len(bid.energy),
            len(bid.adjustments),
        )

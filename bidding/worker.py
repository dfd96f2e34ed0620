"""Bidding workers: offers become rule-checked bids; the exchange simulator clears bids."""

from __future__ import annotations

import logging

from bidding.exchange_sim import clear_day_ahead, real_time_results
from bidding.rules import make_bid
from infra.contracts import Bid, Offer, Topic
from infra.db.outbox import enqueue
from infra.scenario import load_scenario
from infra.worker import MessageContext, Worker

log = logging.getLogger(__name__)


class BiddingWorker(Worker):
    """Consumes offers, applies the province rules and publishes the bid."""

    group = "bidding"
    topics = (Topic.OFFERS,)

    def handle(self, ctx: MessageContext) -> None:
        env = ctx.envelope
        offer = Offer.from_envelope(env)
        bid = make_bid(offer, env.message_id, load_scenario(env.park_id).market)
        bid_env = bid.envelope(env.park_id, env.market_day, bid.market)
        with ctx.transaction() as conn:
            enqueue(conn, Topic.BIDS, bid_env)
        log.info(
            "bid %s for %s %s: %d adjustments", bid.market, env.park_id, env.market_day, len(bid.adjustments)
        )


class ExchangeSimulatorWorker(Worker):
    """The simulated exchange: clears day-ahead bids and reports real-time prices."""

    group = "exchange-simulator"
    topics = (Topic.BIDS,)

    def handle(self, ctx: MessageContext) -> None:
        env = ctx.envelope
        bid = Bid.from_envelope(env)
        if bid.market != "day_ahead":
            raise ValueError(f"market={bid.market!r}: the exchange simulator clears day-ahead bids only")
        scenario = load_scenario(env.park_id)
        day_ahead = clear_day_ahead(bid, env.message_id, scenario, env.market_day)
        real_time = real_time_results(day_ahead, scenario, env.market_day)
        with ctx.transaction() as conn:
            enqueue(conn, Topic.AWARDS, day_ahead.envelope(env.park_id, env.market_day, "day_ahead"))
            enqueue(conn, Topic.AWARDS, real_time.envelope(env.park_id, env.market_day, "real_time"))
        log.info(
            "cleared %s %s: %.0f MWh day-ahead",
            env.park_id,
            env.market_day,
            sum(day_ahead.cleared_mw) * bid.interval_minutes / 60,
        )

"""Bidding worker: offers become rule-checked bids."""

from __future__ import annotations

import logging

from bidding.clock import bid_time
from bidding.rules import make_bid
from infra.contracts import Offer, Topic
from infra.db.outbox import enqueue
from infra.registry import portfolio
from infra.worker import MessageContext, Worker

log = logging.getLogger(__name__)


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
        with ctx.transaction() as conn:
            enqueue(conn, Topic.BIDS, bid_env)
        log.info(
            "bid %s for %s %s: %d adjustments", bid.market, env.park_id, env.market_day, len(bid.adjustments)
        )

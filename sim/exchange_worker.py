"""The simulated exchange on Kafka: bids in, awards out, through the adapter on the market clock.

* a day-ahead bid is submitted at its ``submitted_at`` (the day-ahead gate is checked) and its
  results come at the market's publication time: the day-ahead award and the day's real-time
  prices with the day-ahead position standing (``real_time_results``; the real-time market's
  ``missing_bid: price_taker`` wherever no real-time bid is made);
* a real-time bid is submitted at its ``submitted_at`` (the time of the intraday re-optimisation
  that made it) against the rolling gate of its first interval, the earliest to close, and cleared
  at that gate on the real-time grid (:func:`sim.exchange.clear_real_time`); its award
  (``real_time_bid``, the bid's intervals only) names the bid, so admission accepts it.

A bid stamped at or after its gate is refused by the adapter (dead letter naming both times).
All intervals of a real-time bid are cleared at its first gate: the simulator does not wait for
each later interval's own gate.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from infra.contracts import Bid, Topic
from infra.db.outbox import enqueue
from infra.registry import portfolio
from infra.worker import MessageContext, Worker
from sim.exchange import ExchangeSimulator, market_of

log = logging.getLogger(__name__)


class ExchangeSimulatorWorker(Worker):
    """The simulated exchange: clears day-ahead and real-time bids."""

    group = "exchange-simulator"
    topics = (Topic.BIDS,)

    def handle(self, ctx: MessageContext) -> None:
        env = ctx.envelope
        bid = Bid.from_envelope(env)
        if bid.amends is not None:
            # This simulated exchange clears a bid the moment it arrives, so the bid a revision
            # amends or withdraws was cleared already: its results stand (an exchange that holds
            # bids until the gate applies revisions through the adapter's amend and withdraw).
            log.warning(
                "revision %d of bid %s (%s) arrived after the simulated exchange cleared it; results stand",
                bid.revision,
                bid.amends,
                "withdrawal" if bid.withdrawn else "amendment",
            )
            with ctx.transaction():
                pass  # recorded as applied
            return
        # admission (infra.worker.admit) has refused bids naming no stored offer of this park-day
        scenario = portfolio(self.engine, env.park_id, env.market_day)
        # through the adapter on the market clock: a bid stamped after gate closure is refused
        # (dead letter naming both times); results come at the market's publication time
        exchange = ExchangeSimulator(scenario)
        _, market = market_of(bid, scenario)
        if bid.market == "real_time":
            first = bid.interval_starts[0]
            gate = market.gate_closure(first.date(), first)
            if bid.submitted_at is None:
                raise ValueError(
                    "submitted_at: a real-time bid must say when it was submitted (checked against its rolling gate)"
                )
            exchange.submit(bid, env.message_id, bid.submitted_at)
            (award,) = exchange.results(env.message_id, gate)
            with ctx.transaction() as conn:
                enqueue(
                    conn,
                    Topic.AWARDS,
                    award.envelope(env.park_id, env.market_day, "real_time", env.message_id),
                )
            log.info(
                "cleared real-time bid %s %s: %d intervals of %d min from %s",
                env.park_id,
                env.market_day,
                len(award.cleared_mw),
                award.interval_minutes,
                first.isoformat(),
            )
            return
        gate = market.gate_closure(env.market_day)
        exchange.submit(bid, env.message_id, bid.submitted_at or gate - timedelta(minutes=1))
        results_at = datetime.combine(
            gate.date(), market.results_local_time or gate.time(), tzinfo=gate.tzinfo
        )
        day_ahead, real_time = exchange.results(env.message_id, max(results_at, gate))
        with ctx.transaction() as conn:
            enqueue(conn, Topic.AWARDS, day_ahead.envelope(env.park_id, env.market_day, "day_ahead"))
            enqueue(conn, Topic.AWARDS, real_time.envelope(env.park_id, env.market_day, "real_time"))
        log.info(
            "cleared %s %s: %.0f MWh day-ahead",
            env.park_id,
            env.market_day,
            sum(day_ahead.cleared_mw) * bid.interval_minutes / 60,
        )

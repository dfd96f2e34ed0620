"""The trader's desk behind the API: a stored bid's lifecycle, amended or withdrawn before its gate.

A bid's lifecycle is bidding's (:mod:`bidding.lifecycle`): ``submitted -> (amended)* ->
closed -> cleared``, or ``withdrawn``. Its transitions live in bidding's own table
(``bidding_bid_transitions``, :class:`~bidding.lifecycle.SqlStore`). A bid that went through the
bidding worker has no transitions stored yet: its history is read from the stored facts
(validated and submitted when the bid fact was stored, at its ``submitted_at``; closed at the
gate and cleared when an award names it) and written down with the first change.

An amendment or withdrawal goes through :class:`~bidding.lifecycle.BidDesk`, so the province
rules (:func:`bidding.rules.make_bid`), the state machine (:class:`IllegalTransition`) and the
gate (:class:`GateClosed`) are bidding's own. The exchange adapter here
(:class:`OutboxExchange`) turns each change into a *revision*: a ``Bid`` fact naming the bid it
``amends`` (``withdrawn`` for a withdrawal), written to the outbox as the bidding service and
published on ``vpp.bids`` for the exchange. The fact, the transitions and the audit entry are
stored in one transaction.

**Clock.** The gate is checked against the real clock in Asia/Shanghai
(:func:`infra.timeutil.now`), never a time the client sends: a person acts now, and a client
that could name its own time could amend after the gate. ``run-day`` and the backtests drive the
lifecycle on a simulated market clock because they replay a day's stages in a minute; the API
serves people, so its market clock is the wall clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, insert, select

from bidding.lifecycle import (
    TERMINAL,
    BidDesk,
    BidLifecycle,
    Event,
    GateClosed,
    IllegalTransition,
    MarketClock,
    MemoryStore,
    SqlStore,
    State,
    Transition,
    bid_transitions,
)
from bidding.rules import BidRejected
from infra.contracts import Award, Bid, EnergyCurve, Envelope, ExchangeStatus, Offer, Topic
from infra.db.outbox import enqueue, stored_envelopes
from infra.scenario import Scenario
from infra.timeutil import MARKET_TZ, now

__all__ = ["BidRejected", "GateClosed", "IllegalTransition", "StoredBid", "amend", "load", "withdraw"]

DERIVED = "read from the stored facts"


@dataclass
class StoredBid:
    """A bid fact with its revisions, award and lifecycle."""

    envelope: Envelope
    bid: Bid  # as first submitted
    current: Bid  # the latest revision's content
    revisions: list[Envelope]
    award: Envelope | None
    life: BidLifecycle

    @property
    def bid_id(self) -> str:
        return self.envelope.message_id

    def shown_state(self, at: datetime) -> str:
        """The state a person sees: the lifecycle's, closed once the gate passed, awarded when cleared."""
        state = self.life.state
        if state in (State.SUBMITTED, State.AMENDED) and at >= self.life.gate:
            return State.CLOSED.value
        return "awarded" if state in (State.CLEARED, State.SETTLED) else state.value

    def summary(self, at: datetime) -> dict[str, Any]:
        p = self.envelope.payload
        latest = self.revisions[-1] if self.revisions else self.envelope
        return {
            "message_id": self.bid_id,
            "market": p.get("market"),
            "produced_at": self.envelope.produced_at.isoformat(),
            "intervals": len(p.get("interval_starts", [])),
            "expected_revenue_cny": p.get("expected_revenue_cny"),
            "adjustments": list(self.current.adjustments),
            "state": self.shown_state(at),
            "award_message_id": self.award.message_id if self.award else None,
            "gate_closure": self.life.gate.isoformat(),
            "revision": self.current.revision,
            "current_message_id": latest.message_id,
        }

    def history(self) -> list[dict[str, Any]]:
        return [
            {
                "seq": t.seq,
                "from_state": t.from_state.value,
                "event": t.event.value,
                "to_state": t.to_state.value,
                "at": t.at.isoformat(),
                "note": t.note,
            }
            for t in self.life.history
        ]


def _gate(scenario: Scenario, bid: Bid) -> tuple[str, datetime]:
    rules = scenario.market
    if bid.market_id and bid.market_id in rules.registry():
        market_id, market = bid.market_id, rules.registry()[bid.market_id]
    else:
        market_id, market = rules.market_for(
            "day_ahead_energy" if bid.market == "day_ahead" else "real_time_energy"
        )
    return market_id, market.gate_closure(bid.interval_starts[0].date(), bid.interval_starts[0])


def _stored_transitions(conn: Connection, bid_id: str) -> list[Transition]:
    rows = conn.execute(
        select(bid_transitions).where(bid_transitions.c.bid_id == bid_id).order_by(bid_transitions.c.seq)
    ).all()
    return [
        Transition(
            r.bid_id,
            r.market_id,
            r.seq,
            State(r.from_state),
            Event(r.event),
            State(r.to_state),
            r.at if r.at.tzinfo else r.at.replace(tzinfo=MARKET_TZ),
            r.note or "",
        )
        for r in rows
    ]


_TABLE_READY: set[str] = set()


def _ensure_table(engine: Engine) -> None:
    """Bidding's transition table exists (created on first use, as bidding's SqlStore does), checked
    once per database rather than on every request."""
    key = engine.url.render_as_string(hide_password=True)
    if key not in _TABLE_READY:
        SqlStore(engine)
        _TABLE_READY.add(key)


def load(engine: Engine, scenario: Scenario, park_id: str, day: Any) -> list[StoredBid]:
    """The day's bids (revisions folded into the bid they revise), each with its lifecycle."""
    _ensure_table(engine)
    with engine.connect() as conn:
        bids = stored_envelopes(conn, park_id, day, "bid")
        awards = {
            Award.from_envelope(e).bid_message_id: e
            for e in stored_envelopes(conn, park_id, day, "award")
            if e.payload.get("market") == "day_ahead"
        }
        out = []
        originals = [e for e in bids if not e.payload.get("amends")]
        for env in originals:
            bid = Bid.from_envelope(env)
            revisions = sorted(
                (e for e in bids if e.payload.get("amends") == env.message_id),
                key=lambda e: e.payload.get("revision", 0),
            )
            current = Bid.from_envelope(revisions[-1]) if revisions else bid
            award = awards.get(env.message_id)
            market_id, gate = _gate(scenario, bid)
            life = BidLifecycle(env.message_id, market_id, gate, MemoryStore())
            stored = _stored_transitions(conn, env.message_id)
            if stored:
                life.history, life.state = list(stored), stored[-1].to_state
            else:
                submitted = min(bid.submitted_at or env.produced_at, gate - timedelta(seconds=1))
                life.apply(Event.VALIDATE, submitted, DERIVED)
                life.apply(Event.SUBMIT, submitted, DERIVED)
            if award is not None and life.state in (State.SUBMITTED, State.AMENDED):
                life.apply(Event.CLOSE, gate, DERIVED)
                life.apply(Event.CLEAR, award.produced_at, f"{DERIVED}: award {award.message_id}")
            out.append(StoredBid(env, bid, current, revisions, award, life))
    return out


class OutboxExchange:
    """The exchange adapter of the API's desk: each change becomes a revision fact for ``vpp.bids``."""

    name = "parkvpp-outbox"

    def __init__(self, stored: StoredBid) -> None:
        self.stored = stored
        self.pending: list[Bid] = []

    def _revision(self, bid: Bid, at: datetime, withdrawn: bool) -> Bid:
        return bid.model_copy(
            update={
                "amends": self.stored.bid_id,
                "revision": self.stored.current.revision + 1,
                "withdrawn": withdrawn,
                "submitted_at": at,
            }
        )

    def submit(self, bid: Bid, bid_id: str, at: datetime) -> ExchangeStatus:
        raise IllegalTransition(f"bid {bid_id}: submitted by the bidding service, not through the API")

    def amend(self, bid_id: str, bid: Bid, at: datetime) -> ExchangeStatus:
        self.pending.append(self._revision(bid, at, withdrawn=False))
        return "open"

    def withdraw(self, bid_id: str, at: datetime) -> ExchangeStatus:
        self.pending.append(self._revision(self.stored.current, at, withdrawn=True))
        return "withdrawn"

    def status(self, bid_id: str, at: datetime) -> ExchangeStatus:
        return "withdrawn" if self.stored.life.state is State.WITHDRAWN else "open"

    def results(self, bid_id: str, at: datetime) -> list[Award]:
        return [Award.from_envelope(self.stored.award)] if self.stored.award else []


def _desk(scenario: Scenario, stored: StoredBid, at: datetime) -> tuple[BidDesk, OutboxExchange]:
    adapter = OutboxExchange(stored)
    desk = BidDesk(adapter, scenario.market, MarketClock(at), MemoryStore())
    desk.bids[stored.bid_id] = stored.life
    desk.content[stored.bid_id] = stored.current
    return desk, adapter


def _check_gate(stored: StoredBid, event: Event, at: datetime) -> None:
    """After the gate every change is refused naming the gate, whatever the state."""
    if at >= stored.life.gate:
        raise GateClosed(stored.bid_id, event, at, stored.life.gate)
    if stored.life.state in TERMINAL or (stored.life.state, event) not in _ALLOWED:
        raise IllegalTransition(f"bid {stored.bid_id}: {event} is not allowed when {stored.life.state}")


_ALLOWED = {(State.SUBMITTED, Event.AMEND), (State.AMENDED, Event.AMEND)} | {
    (State.VALIDATED, Event.WITHDRAW),
    (State.SUBMITTED, Event.WITHDRAW),
    (State.AMENDED, Event.WITHDRAW),
}


def _store(conn: Connection, park_id: str, stored: StoredBid, revisions: list[Bid]) -> list[Envelope]:
    """The transitions not stored yet (the new one, and those read from the facts) and the revision facts."""
    present = {
        r.seq
        for r in conn.execute(
            select(bid_transitions.c.seq).where(bid_transitions.c.bid_id == stored.bid_id)
        ).all()
    }
    for t in stored.life.history:
        if t.seq in present:
            continue
        conn.execute(
            insert(bid_transitions).values(
                bid_id=t.bid_id,
                seq=t.seq,
                market_id=t.market_id,
                from_state=t.from_state.value,
                event=t.event.value,
                to_state=t.to_state.value,
                at=t.at,
                note=t.note,
            )
        )
    envelopes = []
    day = stored.envelope.market_day
    for bid in revisions:
        env = bid.envelope(park_id, day, bid.market, "revision", stored.bid_id, bid.revision)
        enqueue(conn, Topic.BIDS, env)
        envelopes.append(env)
    return envelopes


def amend(
    engine: Engine,
    scenario: Scenario,
    stored: StoredBid,
    energy: list[EnergyCurve],
    note: str,
    audit: Any,
) -> Envelope:
    """Amend a standing bid before its gate: new curves through the province rules, as a revision."""
    at = now()
    _check_gate(stored, Event.AMEND, at)
    desk, adapter = _desk(scenario, stored, at)
    current = stored.current
    offer = Offer.model_validate(
        {
            **current.model_dump(include=set(Offer.model_fields) - {"energy"}),
            "energy": [c.model_dump() for c in energy],
        }
    )
    desk.amend(stored.bid_id, offer, current.offer_message_id)
    stored.life.history[-1] = _with_note(stored.life.history[-1], note)
    with engine.begin() as conn:
        (env,) = _store(conn, scenario.id, stored, adapter.pending)
        audit(conn, env)
    return env


def withdraw(engine: Engine, scenario: Scenario, stored: StoredBid, note: str, audit: Any) -> Envelope:
    """Take a standing bid back before its gate."""
    at = now()
    _check_gate(stored, Event.WITHDRAW, at)
    desk, adapter = _desk(scenario, stored, at)
    desk.withdraw(stored.bid_id)
    if not adapter.pending:  # validated, never sent: nothing for the exchange
        adapter.pending.append(adapter._revision(stored.current, at, withdrawn=True))
    stored.life.history[-1] = _with_note(stored.life.history[-1], note)
    with engine.begin() as conn:
        (env,) = _store(conn, scenario.id, stored, adapter.pending)
        audit(conn, env)
    return env


def _with_note(t: Transition, note: str) -> Transition:
    return Transition(t.bid_id, t.market_id, t.seq, t.from_state, t.event, t.to_state, t.at, note[:500])

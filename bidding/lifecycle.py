"""Bid lifecycle on a market clock: every transition stored, gate closure enforced.

States ``draft -> validated -> submitted -> (amended)* -> closed -> cleared -> settled``, plus
``rejected`` and ``withdrawn``. :data:`TRANSITIONS` is the whole state machine; anything else
raises :class:`IllegalTransition`. Submitting, amending or withdrawing at or after the
market's gate closure raises :class:`GateClosed` naming both times and leaves the state as it
was. The clock is the market clock (simulated time in ``run-day`` and backtests), never the
wall clock. :class:`BidDesk` drives an :class:`~bidding.exchange.ExchangeAdapter` through
these states and stores every transition (:class:`TransitionStore`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Protocol

from sqlalchemy import Column, DateTime, Engine, Integer, MetaData, String, Table, insert, select

from bidding.exchange import ExchangeAdapter
from bidding.rules import BidRejected, make_bid
from infra.contracts import Award, Bid, ExchangeRefusal, Offer
from infra.scenario.model import MarketConfig, MarketRules


class State(StrEnum):
    DRAFT = "draft"
    VALIDATED = "validated"
    SUBMITTED = "submitted"
    AMENDED = "amended"
    CLOSED = "closed"
    CLEARED = "cleared"
    SETTLED = "settled"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class Event(StrEnum):
    VALIDATE = "validate"
    REJECT = "reject"
    SUBMIT = "submit"
    AMEND = "amend"
    WITHDRAW = "withdraw"
    CLOSE = "close"
    CLEAR = "clear"
    SETTLE = "settle"


TRANSITIONS: dict[tuple[State, Event], State] = {
    (State.DRAFT, Event.VALIDATE): State.VALIDATED,
    (State.DRAFT, Event.REJECT): State.REJECTED,
    (State.VALIDATED, Event.SUBMIT): State.SUBMITTED,
    (State.VALIDATED, Event.REJECT): State.REJECTED,  # the exchange refused the submission
    (State.VALIDATED, Event.WITHDRAW): State.WITHDRAWN,  # never sent
    (State.SUBMITTED, Event.AMEND): State.AMENDED,
    (State.AMENDED, Event.AMEND): State.AMENDED,
    (State.SUBMITTED, Event.WITHDRAW): State.WITHDRAWN,
    (State.AMENDED, Event.WITHDRAW): State.WITHDRAWN,
    (State.SUBMITTED, Event.CLOSE): State.CLOSED,
    (State.AMENDED, Event.CLOSE): State.CLOSED,
    (State.CLOSED, Event.CLEAR): State.CLEARED,
    (State.CLEARED, Event.SETTLE): State.SETTLED,
}
GATED = {Event.SUBMIT, Event.AMEND, Event.WITHDRAW}
TERMINAL = {State.SETTLED, State.REJECTED, State.WITHDRAWN}


class IllegalTransition(ValueError):
    pass


class GateClosed(IllegalTransition):
    def __init__(self, bid_id: str, event: Event, at: datetime, gate: datetime) -> None:
        super().__init__(
            f"bid {bid_id}: {event} at {at.isoformat()} refused, gate closed at {gate.isoformat()}"
        )
        self.at, self.gate = at, gate


@dataclass(frozen=True)
class Transition:
    bid_id: str
    market_id: str
    seq: int
    from_state: State
    event: Event
    to_state: State
    at: datetime
    note: str = ""


class TransitionStore(Protocol):
    def record(self, transition: Transition) -> None: ...


@dataclass
class MemoryStore:
    transitions: list[Transition] = field(default_factory=list)

    def record(self, transition: Transition) -> None:
        self.transitions.append(transition)


metadata = MetaData()
bid_transitions = Table(
    "bidding_bid_transitions",
    metadata,
    Column("bid_id", String, primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("market_id", String, nullable=False),
    Column("from_state", String, nullable=False),
    Column("event", String, nullable=False),
    Column("to_state", String, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("note", String, nullable=False, default=""),
)


class SqlStore:
    """Transitions in bidding's own table (created on first use); (bid_id, seq) makes replays idempotent."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        metadata.create_all(engine, checkfirst=True)

    def record(self, transition: Transition) -> None:
        row = {k: getattr(transition, k) for k in ("bid_id", "seq", "market_id", "at", "note")}
        row |= {
            "from_state": str(transition.from_state),
            "event": str(transition.event),
            "to_state": str(transition.to_state),
        }
        with self.engine.begin() as conn:
            exists = conn.execute(
                select(bid_transitions.c.seq).where(
                    bid_transitions.c.bid_id == transition.bid_id, bid_transitions.c.seq == transition.seq
                )
            ).first()
            if exists is None:
                conn.execute(insert(bid_transitions).values(**row))

    def history(self, bid_id: str) -> list[tuple[str, str, str]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(bid_transitions.c.from_state, bid_transitions.c.event, bid_transitions.c.to_state)
                .where(bid_transitions.c.bid_id == bid_id)
                .order_by(bid_transitions.c.seq)
            ).all()
        return [tuple(r) for r in rows]


@dataclass
class BidLifecycle:
    bid_id: str
    market_id: str
    gate: datetime
    store: TransitionStore
    state: State = State.DRAFT
    history: list[Transition] = field(default_factory=list)

    def apply(self, event: Event, at: datetime, note: str = "") -> State:
        if event in GATED and at >= self.gate:
            raise GateClosed(self.bid_id, event, at, self.gate)
        target = TRANSITIONS.get((self.state, event))
        if target is None:
            raise IllegalTransition(f"bid {self.bid_id}: {event} is not allowed when {self.state}")
        t = Transition(self.bid_id, self.market_id, len(self.history), self.state, event, target, at, note)
        self.store.record(t)
        self.history.append(t)
        self.state = target
        return target


class MarketClock:
    """Simulated market time: stages happen in the order a trader lives them."""

    def __init__(self, start: datetime) -> None:
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance_to(self, at: datetime) -> datetime:
        if at < self._now:
            raise ValueError(f"market clock cannot go back from {self._now.isoformat()} to {at.isoformat()}")
        self._now = at
        return at


@dataclass
class MissingBid:
    market_id: str
    day: date
    rule: str
    at: datetime


class BidDesk:
    """The trader's desk: offers become bids and go through the lifecycle against one adapter."""

    def __init__(
        self, adapter: ExchangeAdapter, rules: MarketRules, clock: MarketClock, store: TransitionStore
    ) -> None:
        self.adapter, self.rules, self.clock, self.store = adapter, rules, clock, store
        self.bids: dict[str, BidLifecycle] = {}
        self.content: dict[str, Bid] = {}
        self.missing: list[MissingBid] = []

    def _market(self, bid: Bid) -> tuple[str, MarketConfig]:
        if bid.market_id:
            return bid.market_id, self.rules.registry()[bid.market_id]
        return self.rules.market_for("day_ahead_energy" if bid.market == "day_ahead" else "real_time_energy")

    def draft(self, offer: Offer, offer_id: str, bid_id: str) -> BidLifecycle:
        """Apply the province rules: the bid becomes validated, or rejected with the reason."""
        market_id = (
            offer.market_id
            or self.rules.market_for(
                "day_ahead_energy" if offer.market == "day_ahead" else "real_time_energy"
            )[0]
        )
        market = self.rules.registry()[market_id]
        day = offer.interval_starts[0].date()
        life = BidLifecycle(bid_id, market_id, market.gate_closure(day, offer.interval_starts[0]), self.store)
        self.bids[bid_id] = life
        try:
            self.content[bid_id] = make_bid(offer, offer_id, self.rules)
        except BidRejected as exc:
            life.apply(Event.REJECT, self.clock.now(), str(exc))
            return life
        life.apply(Event.VALIDATE, self.clock.now())
        return life

    def _exchange(self, life: BidLifecycle, event: Event, call: Callable[[], object]) -> State:
        at = self.clock.now()
        if event in GATED and at >= life.gate:
            raise GateClosed(life.bid_id, event, at, life.gate)
        try:
            call()
        except ExchangeRefusal as exc:
            if exc.code == "gate_closed":
                raise GateClosed(life.bid_id, event, at, life.gate) from exc
            if event is Event.SUBMIT:
                return life.apply(Event.REJECT, at, str(exc))
            raise
        return life.apply(event, at)

    def submit(self, bid_id: str) -> State:
        life = self.bids[bid_id]
        if (life.state, Event.SUBMIT) not in TRANSITIONS:
            raise IllegalTransition(f"bid {bid_id}: submit is not allowed when {life.state}")
        return self._exchange(
            life, Event.SUBMIT, lambda: self.adapter.submit(self.content[bid_id], bid_id, self.clock.now())
        )

    def amend(self, bid_id: str, offer: Offer, offer_id: str) -> State:
        life = self.bids[bid_id]
        if (life.state, Event.AMEND) not in TRANSITIONS:
            raise IllegalTransition(f"bid {bid_id}: amend is not allowed when {life.state}")
        bid = make_bid(offer, offer_id, self.rules)
        state = self._exchange(life, Event.AMEND, lambda: self.adapter.amend(bid_id, bid, self.clock.now()))
        self.content[bid_id] = bid
        return state

    def withdraw(self, bid_id: str) -> State:
        life = self.bids[bid_id]
        if life.state is State.VALIDATED:
            return life.apply(Event.WITHDRAW, self.clock.now())
        return self._exchange(life, Event.WITHDRAW, lambda: self.adapter.withdraw(bid_id, self.clock.now()))

    def close_gate(self, market_id: str, day: date) -> list[str]:
        """At gate closure: standing bids close; a market with none follows its missing-bid rule."""
        market = self.rules.registry()[market_id]
        at = self.clock.now()
        gate = market.gate_closure(day)
        if at < gate:
            raise IllegalTransition(
                f"{market_id} {day}: gate closes at {gate.isoformat()}, it is {at.isoformat()}"
            )
        closed = []
        for bid_id, life in self.bids.items():
            if (
                life.market_id == market_id
                and life.gate.date() == gate.date()
                and life.state in (State.SUBMITTED, State.AMENDED)
            ):
                life.apply(Event.CLOSE, at)
                closed.append(bid_id)
        standing = [
            b
            for b, life in self.bids.items()
            if life.market_id == market_id and life.state in (State.CLOSED, State.CLEARED)
        ]
        if not standing:
            self.missing.append(MissingBid(market_id, day, market.missing_bid, at))
        return closed

    def collect(self, bid_id: str) -> list[Award]:
        life = self.bids[bid_id]
        awards = self.adapter.results(bid_id, self.clock.now())
        life.apply(Event.CLEAR, self.clock.now(), f"{len(awards)} awards")
        return awards

    def settled(self, bid_id: str) -> State:
        return self.bids[bid_id].apply(Event.SETTLE, self.clock.now())

"""Bid lifecycle: legal transitions only, every one stored, gate closure on the market clock."""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest

from bidding.lifecycle import (
    GATED,
    TERMINAL,
    TRANSITIONS,
    BidDesk,
    BidLifecycle,
    Event,
    GateClosed,
    IllegalTransition,
    MarketClock,
    MemoryStore,
    SqlStore,
    State,
)
from infra.contracts import EnergyCurve, Offer, Segment
from infra.db import make_engine
from infra.scenario import load_scenario
from infra.timeutil import MARKET_TZ, day_intervals
from sim.exchange import ExchangeSimulator

DAY = date(2026, 7, 15)
GATE = datetime.combine(DAY - timedelta(days=1), time(9, 30), tzinfo=MARKET_TZ)
REACHABLE = set(State)


def _offer(quantity: float = 40.0, base: float = -250) -> Offer:
    curve = EnergyCurve(
        base_mw=base, segments=[Segment(price_cny_per_mwh=p, quantity_mw=quantity) for p in (150, 300, 450)]
    )
    return Offer(
        interval_minutes=15,
        interval_starts=list(day_intervals(DAY, 15)),
        market="day_ahead",
        scenario_version="t",
        forecast_message_id="f",
        energy=[curve] * 96,
        expected_revenue_cny=0,
        expected_emissions_tco2=0,
    )


def test_1000_random_event_sequences_never_reach_an_illegal_state() -> None:
    rnd = random.Random(10)
    events = list(Event)
    for n in range(1000):
        store = MemoryStore()
        life = BidLifecycle(f"b{n}", "shanxi.day_ahead", GATE, store)
        at = GATE - timedelta(hours=3)
        for _ in range(rnd.randint(1, 25)):
            at += timedelta(minutes=rnd.choice([0, 5, 20, 45]))
            event = rnd.choice(events)
            before = life.state
            try:
                after = life.apply(event, at)
            except GateClosed as exc:
                assert event in GATED and at >= GATE and life.state == before
                assert exc.gate == GATE and exc.at == at
                continue
            except IllegalTransition:
                assert (before, event) not in TRANSITIONS and life.state == before
                continue
            assert TRANSITIONS[(before, event)] == after and after in REACHABLE
            assert not (event in GATED and at >= GATE), "nothing gated succeeds at or after the gate"
            assert before not in TERMINAL
        # the stored history is a chain from draft to the current state
        chain = [t.from_state for t in store.transitions] + [life.state]
        assert chain[0] is State.DRAFT
        assert all(t.to_state == chain[i + 1] for i, t in enumerate(store.transitions))
        assert [t.seq for t in store.transitions] == list(range(len(store.transitions)))


def test_desk_full_day_on_the_market_clock_with_stored_transitions(tmp_path: Path) -> None:
    s = load_scenario("datong")
    engine = make_engine(f"sqlite:///{tmp_path / 'b.db'}")
    store = SqlStore(engine)
    clock = MarketClock(GATE - timedelta(hours=4))
    desk = BidDesk(ExchangeSimulator(s), s.market, clock, store)
    life = desk.draft(_offer(), "o1", "bid-1")
    assert life.state is State.VALIDATED
    desk.submit("bid-1")
    clock.advance_to(GATE - timedelta(hours=1))
    assert desk.amend("bid-1", _offer(60.0), "o2") is State.AMENDED
    late = desk.draft(_offer(), "o3", "bid-late")
    clock.advance_to(GATE + timedelta(minutes=1))
    with pytest.raises(GateClosed) as err:
        desk.submit("bid-late")
    assert (GATE + timedelta(minutes=1)).isoformat() in str(err.value) and GATE.isoformat() in str(err.value)
    assert late.state is State.VALIDATED
    with pytest.raises(GateClosed):
        desk.amend("bid-1", _offer(70.0), "o4")
    assert desk.close_gate("shanxi.day_ahead", DAY) == ["bid-1"]
    clock.advance_to(datetime.combine(DAY - timedelta(days=1), time(17, 30), tzinfo=MARKET_TZ))
    awards = desk.collect("bid-1")
    assert [a.market_id for a in awards] == ["shanxi.day_ahead", "shanxi.real_time"]
    clock.advance_to(datetime.combine(DAY + timedelta(days=1), time(10), tzinfo=MARKET_TZ))
    desk.settled("bid-1")
    assert store.history("bid-1") == [
        ("draft", "validate", "validated"),
        ("validated", "submit", "submitted"),
        ("submitted", "amend", "amended"),
        ("amended", "close", "closed"),
        ("closed", "clear", "cleared"),
        ("cleared", "settle", "settled"),
    ]


def test_withdraw_before_gate_and_missing_bid_follows_the_province_rule() -> None:
    s = load_scenario("datong")
    clock = MarketClock(GATE - timedelta(hours=2))
    desk = BidDesk(ExchangeSimulator(s), s.market, clock, MemoryStore())
    desk.draft(_offer(), "o1", "bid-w")
    desk.submit("bid-w")
    assert desk.withdraw("bid-w") is State.WITHDRAWN
    clock.advance_to(GATE)
    assert desk.close_gate("shanxi.day_ahead", DAY) == []
    [missing] = desk.missing
    assert missing.rule == "price_cap" == s.market.registry()["shanxi.day_ahead"].missing_bid


def test_rules_rejection_is_a_state() -> None:
    s = load_scenario("datong")
    desk = BidDesk(ExchangeSimulator(s), s.market, MarketClock(GATE - timedelta(hours=2)), MemoryStore())
    life = desk.draft(_offer(quantity=0.5), "o", "tiny")
    assert life.state is State.REJECTED and "requires at least 5 MW" in life.history[-1].note


def test_missing_bid_curves() -> None:
    from sim.clearing import missing_bid_curve

    assert missing_bid_curve("price_taker", -300, 1500).quantity_at(0) == -300
    cap = missing_bid_curve("price_cap", 50, 1500)
    assert cap.quantity_at(1499) == 0 and cap.quantity_at(1500) == 50
    assert missing_bid_curve("no_participation", 50, 1500).quantity_at(1500) == 0


def test_run_day_timeline_is_the_order_a_trader_lives() -> None:
    from bidding.clock import trading_timeline

    s = load_scenario("datong")
    t = trading_timeline(s.market, DAY)
    order = ["forecast", "offer", "bids", "awards", "dispatch", "delivery", "settlement"]
    assert [t[k] for k in order] == sorted(t.values())
    assert t["bids"] < GATE < t["awards"]
    assert t["delivery"].date() == DAY and t["settlement"].date() == DAY + timedelta(days=1)


def test_bid_stamped_after_the_gate_is_refused_by_the_exchange() -> None:
    from bidding.rules import make_bid
    from infra.contracts import ExchangeRefusal

    s = load_scenario("datong")
    bid = make_bid(_offer(), "o", s.market)
    bid.submitted_at = GATE + timedelta(minutes=5)
    with pytest.raises(ExchangeRefusal, match="gate closed at 2026-07-14T09:30:00\\+08:00"):
        ExchangeSimulator(s).submit(bid, "late", bid.submitted_at)

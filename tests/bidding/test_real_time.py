"""Real-time offers become real-time bids: the real-time grid, and the rolling gate on the market clock."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

from bidding.lifecycle import GateClosed
from bidding.rules import BidRejected, make_bid
from bidding.worker import real_time_submission
from infra.contracts import EnergyCurve, Offer, Segment
from infra.scenario import load_scenario
from infra.timeutil import MARKET_TZ

FIRST = datetime(2026, 7, 15, 13, 5, tzinfo=MARKET_TZ)
CURVE = EnergyCurve(base_mw=-20, segments=[Segment(price_cny_per_mwh=300, quantity_mw=8)])


def offer(starts: list[datetime], minutes: int = 5, issued_at: datetime | None = None) -> Offer:
    return Offer(
        interval_minutes=minutes,
        interval_starts=starts,
        market="real_time",
        market_id="shanxi.real_time",
        scenario_version="t",
        forecast_message_id="f",
        energy=[CURVE] * len(starts),
        expected_revenue_cny=0,
        expected_emissions_tco2=0,
        issued_at=issued_at,
    )


def run(n: int, minutes: int = 5, start: datetime = FIRST) -> list[datetime]:
    return [start + timedelta(minutes=minutes * i) for i in range(n)]


def test_a_real_time_offer_may_cover_the_open_intervals_only() -> None:
    rules = load_scenario("datong").market
    bid = make_bid(offer(run(12)), "o", rules)
    assert bid.market_id == "shanxi.real_time" and len(bid.energy) == 12


@pytest.mark.parametrize(
    ("starts", "minutes", "named"),
    [
        (run(4, 15), 15, "interval_minutes=15: shanxi.real_time intervals are 5 minutes"),
        (run(2) + run(2, start=FIRST + timedelta(minutes=30)), 5, "interval_starts[2]"),
        (run(3, start=FIRST + timedelta(minutes=2)), 5, "not on the 5-minute grid"),
        (run(3, start=datetime(2026, 7, 15, 23, 55, tzinfo=MARKET_TZ)), 5, "run past the market day"),
    ],
)
def test_off_grid_real_time_offers_are_rejected_naming_the_field(starts, minutes, named) -> None:
    with pytest.raises(BidRejected, match=re.escape(named)):
        make_bid(offer(starts, minutes), "o", load_scenario("datong").market)


def test_a_real_time_bid_after_its_rolling_gate_is_refused_naming_both_times() -> None:
    rules = load_scenario("datong").market
    bid = make_bid(offer(run(6)), "o", rules)
    on_time = FIRST - timedelta(minutes=61)
    assert real_time_submission(bid, "rt-bid", on_time, rules) == on_time
    late = FIRST - timedelta(minutes=50)  # the 13:05 interval's gate closed at 12:05
    with pytest.raises(GateClosed) as refused:
        real_time_submission(bid, "rt-bid", late, rules)
    assert "2026-07-15T12:15:00+08:00" in str(refused.value)  # when it came
    assert "gate closed at 2026-07-15T12:05:00+08:00" in str(refused.value)
    with pytest.raises(BidRejected, match="issued_at"):
        real_time_submission(bid, "rt-bid", None, rules)


def test_the_bidding_worker_dead_letters_a_late_real_time_offer(sqlite_url: str) -> None:
    from sqlalchemy import select

    from bidding.worker import BiddingWorker
    from infra.contracts import Topic
    from infra.db import make_engine, migrate
    from infra.db.tables import dead_letters, outbox

    migrate(sqlite_url)
    engine = make_engine(sqlite_url)
    worker = BiddingWorker(engine, "127.0.0.1:1")  # applied directly; no broker needed
    late = offer(run(6), issued_at=FIRST - timedelta(minutes=30)).envelope("datong", FIRST.date(), "late")
    on_time = offer(run(6), issued_at=FIRST - timedelta(minutes=90)).envelope(
        "datong", FIRST.date(), "on time"
    )
    assert worker.apply(Topic.OFFERS, late) is False
    assert worker.apply(Topic.OFFERS, on_time)
    with engine.connect() as conn:
        reason = conn.execute(
            select(dead_letters.c.reason).where(dead_letters.c.message_id == late.message_id)
        ).scalar()
        bids = conn.execute(select(outbox.c.message_id).where(outbox.c.schema_name == "bid")).scalars().all()
    assert "GateClosed" in reason and "submit at 2026-07-15T12:35:00+08:00" in reason
    assert "gate closed at 2026-07-15T12:05:00+08:00" in reason
    assert len(bids) == 1  # the on-time offer's bid only

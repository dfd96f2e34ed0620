"""Messages must carry their producer's signature; junk and conflicts are refused with a reason."""

from __future__ import annotations

import json
from datetime import date

import pytest

from infra.contracts import Award, Bid, EnergyCurve, Envelope
from infra.db import make_engine, migrate
from infra.db.outbox import enqueue, stored_envelopes
from infra.kafka import MAX_MESSAGE_BYTES
from infra.signing import sign, verification_problem
from infra.timeutil import day_intervals
from infra.worker import admit

DAY = date(2026, 7, 15)


def award(cleared_mw: float = 5.0, bid_message_id: str = "bid-1") -> Envelope:
    return Award(
        interval_minutes=15,
        interval_starts=list(day_intervals(DAY, 15)),
        market="day_ahead",
        bid_message_id=bid_message_id,
        exchange="test",
        cleared_mw=[cleared_mw] * 96,
        clearing_price_cny_per_mwh=[300.0] * 96,
    ).envelope("datong", DAY, "day_ahead")


def test_a_signed_message_verifies_and_any_change_breaks_it() -> None:
    unsigned = award()
    signed = sign(unsigned)
    assert signed.producer == "exchange-simulator" and verification_problem(signed) is None
    assert sign(unsigned).signature == signed.signature  # deterministic: the same envelope, the same bytes
    forged = signed.model_copy(update={"payload": {**signed.payload, "cleared_mw": [12000.0] * 96}})
    assert "does not match" in verification_problem(forged)
    assert "unsigned" in verification_problem(award())
    wrong_service = sign(award(), "bidding")
    assert "may not produce award" in verification_problem(wrong_service)
    stranger = signed.model_copy(update={"producer": "mallory"})
    assert "may not produce" in verification_problem(stranger)


def test_facts_leave_the_outbox_signed(sqlite_url: str) -> None:
    migrate(sqlite_url)
    engine = make_engine(sqlite_url)
    with engine.begin() as conn:
        enqueue(conn, "vpp.awards", award())
        stored = stored_envelopes(conn, "datong", DAY, "award")
    assert len(stored) == 1 and verification_problem(stored[0]) is None


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty message"),
        (b"\x00\xff\xfe binary", "unreadable message"),
        (b"{not json", "unreadable message"),
        (b'{"schema": {"name": "bid"}}', "unreadable message"),
        (b"x" * (MAX_MESSAGE_BYTES + 1), "oversized message"),
    ],
)
def test_junk_is_refused_before_it_reaches_a_service(sqlite_url: str, raw: bytes, reason: str) -> None:
    migrate(sqlite_url)
    _, problem = admit(make_engine(sqlite_url), raw)
    assert problem is not None and problem.startswith(reason)


def test_the_same_id_with_other_content_is_a_conflict_not_a_replay(sqlite_url: str) -> None:
    migrate(sqlite_url)
    engine = make_engine(sqlite_url)
    with engine.begin() as conn:
        enqueue(conn, "vpp.awards", award(5.0))
    replay = sign(award(5.0))
    assert admit(engine, replay.to_json().encode()) == (replay, None)
    other = sign(award(7.0))
    envelope, problem = admit(engine, other.to_json().encode())
    assert envelope is not None and problem is not None and problem.startswith("conflict")
    assert json.loads(other.to_json())["message_id"] == json.loads(replay.to_json())["message_id"]


def bid(park_id: str = "datong") -> Envelope:
    return Bid(
        interval_minutes=15,
        interval_starts=list(day_intervals(DAY, 15)),
        market="day_ahead",
        scenario_version="test",
        forecast_message_id="test",
        energy=[EnergyCurve(base_mw=5.0, segments=[])] * 96,
        expected_revenue_cny=0.0,
        expected_emissions_tco2=0.0,
        offer_message_id="test",
        rules_version="test",
    ).envelope(park_id, DAY, "day_ahead")


def test_an_award_must_name_a_stored_bid_of_its_park_and_day(sqlite_url: str) -> None:
    """A validly signed award about a bid we never made (the forged 12,000 MWh award) is refused."""
    migrate(sqlite_url)
    engine = make_engine(sqlite_url)
    ours, elsewhere = bid(), bid("yulin")
    with engine.begin() as conn:
        enqueue(conn, "vpp.bids", ours)
        enqueue(conn, "vpp.bids", elsewhere)
    forged = sign(award(12000.0, "no-such-bid"))
    _, problem = admit(engine, forged.to_json().encode())
    assert (
        problem is not None
        and "bid_message_id 'no-such-bid' names no stored bid of datong 2026-07-15" in problem
    )
    other_park = sign(award(5.0, elsewhere.message_id))
    assert "names no stored bid" in (admit(engine, other_park.to_json().encode())[1] or "")
    genuine = sign(award(5.0, ours.message_id))
    assert admit(engine, genuine.to_json().encode()) == (genuine, None)

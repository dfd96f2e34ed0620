"""The worker against real servers: Kafka in, offer and dispatch out, replays changing nothing."""

from __future__ import annotations

import threading
import time
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from aggregator.tables import aggregator_dispatches, aggregator_offers
from aggregator.worker import AggregatorWorker
from infra.contracts import Bid, Dispatch, Envelope, Offer, Topic, message_id
from infra.db import make_engine, migrate
from infra.db.outbox import enqueue, stored_envelopes
from infra.db.tables import dead_letters, outbox
from infra.kafka import ensure_topics, make_producer, publish, read_topic
from infra.signing import sign
from infra.timeutil import MARKET_TZ
from infra.worker import WorkerThread, run_relay
from sim.forecasts import forecast_from_history
from tests.aggregator.aggregator_tools import award_at_median


class OnlyTheseMessages(AggregatorWorker):
    """The broker is shared by the whole test session: leave other tests' messages alone."""

    def __init__(self, *args, mine: set[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.mine = mine

    def handle(self, ctx) -> None:
        if ctx.envelope.message_id in self.mine:
            super().handle(ctx)


def _wait_for(bootstrap: str, topic: str, wanted: str, timeout_s: float = 90.0) -> Envelope:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for received in read_topic(bootstrap, topic, idle_s=0.5):
            if received.envelope.message_id == wanted:
                return received.envelope
        time.sleep(0.5)
    raise AssertionError(f"{wanted} did not appear on {topic} within {timeout_s:.0f} s")


def test_forecast_to_offer_and_award_to_dispatch_over_kafka(services, sqlite_url, datong):
    day = date(2026, 3, 3)  # a heating day, and a day no other test uses
    forecast_env = forecast_from_history(datong, day).envelope("datong", day, "day_ahead", "e2e")
    offer_id = message_id(Offer.SCHEMA, "datong", day, "day_ahead")
    dispatch_id = message_id(Dispatch.SCHEMA, "datong", day, "day_ahead")
    migrate(sqlite_url)
    engine = make_engine(sqlite_url)
    ensure_topics(services.kafka_bootstrap)
    mine = {forecast_env.message_id}
    worker = WorkerThread(OnlyTheseMessages(engine, services.kafka_bootstrap, mine=mine))
    stop_relay = threading.Event()
    relay = threading.Thread(
        target=run_relay, args=(engine, services.kafka_bootstrap, stop_relay), daemon=True
    )
    worker.start()
    relay.start()
    producer = make_producer(services.kafka_bootstrap)
    try:
        assert worker.ready_event.wait(60), "worker did not join its consumer group"
        publish(producer, Topic.FORECASTS, sign(forecast_env))
        offer = Offer.from_envelope(_wait_for(services.kafka_bootstrap, Topic.OFFERS, offer_id))
        assert offer.forecast_message_id == forecast_env.message_id and offer.market == "day_ahead"

        bid = Bid(**offer.model_dump(), offer_message_id=offer_id, rules_version="test")
        bid_env = bid.envelope("datong", day, "day_ahead")
        with engine.begin() as conn:  # stored as bidding stores it: awards over Kafka must name it
            enqueue(conn, Topic.BIDS, bid_env)
        award_env = award_at_median(offer, forecast_from_history(datong, day), bid_env.message_id).envelope(
            "datong", day, "day_ahead", "e2e"
        )
        mine.add(award_env.message_id)
        publish(producer, Topic.AWARDS, sign(award_env))
        dispatch = Dispatch.from_envelope(_wait_for(services.kafka_bootstrap, Topic.DISPATCH, dispatch_id))
        assert dispatch.award_message_id == award_env.message_id
        assert {a.asset_id for a in dispatch.assets} == {a.id for a in datong.park.assets}
        assert max(abs(d) for d in dispatch.deviation_mw) < 1e-3

        # Replaying both messages changes nothing.
        assert worker.worker.apply(Topic.FORECASTS, forecast_env) is False
        assert worker.worker.apply(Topic.AWARDS, award_env) is False
        with engine.connect() as conn:
            assert (
                conn.execute(select(func.count()).select_from(outbox)).scalar() == 3
            )  # offer, bid, dispatch
    finally:
        producer.close()
        worker.stop()
        stop_relay.set()
        relay.join(10)
    assert worker.error is None


@pytest.mark.postgres
def test_worker_stores_offers_dispatches_and_intraday_replans_in_postgres(
    postgres_url, datong, datong_forecast
):
    migrate(postgres_url)
    engine = make_engine(postgres_url)
    worker = AggregatorWorker(engine, "127.0.0.1:1")  # messages are applied directly; no broker needed
    day = date(2026, 7, 15)
    forecast_env = datong_forecast.envelope("datong", day, "day_ahead", "pg")
    assert worker.apply(Topic.FORECASTS, forecast_env)
    assert worker.apply(Topic.FORECASTS, forecast_env) is False  # replay
    revised = forecast_from_history(datong, day, spread_fraction=0.2).envelope(
        "datong", day, "day_ahead", "revised"
    )
    assert worker.apply(Topic.FORECASTS, revised)  # accepted, but the day's offer is already out
    with engine.connect() as conn:
        (offer_env,) = stored_envelopes(conn, "datong", day, Offer.SCHEMA)
        row = conn.execute(select(aggregator_offers)).one()
    assert row.forecast_message_id == forecast_env.message_id and row.summary["violations"] == []

    award_env = award_at_median(Offer.from_envelope(offer_env), datong_forecast).envelope(
        "datong", day, "day_ahead", "pg"
    )
    assert worker.apply(Topic.AWARDS, award_env)
    intraday = forecast_from_history(datong, day, horizon="intraday", spread_fraction=0.05)
    intraday = intraday.model_copy(update={"issued_at": datetime(2026, 7, 15, 12, 0, tzinfo=MARKET_TZ)})
    assert worker.apply(Topic.FORECASTS, intraday.envelope("datong", day, "intraday", "12:00"))
    with engine.connect() as conn:
        dispatches = [
            Dispatch.from_envelope(e) for e in stored_envelopes(conn, "datong", day, Dispatch.SCHEMA)
        ]
        kinds = [
            r.kind
            for r in conn.execute(select(aggregator_dispatches).order_by(aggregator_dispatches.c.created_at))
        ]
    assert kinds == ["day_ahead", "intraday"]
    assert dispatches[1].notes[0].startswith("intraday re-optimisation from 12:00")
    assert dispatches[0].award_message_id == dispatches[1].award_message_id == award_env.message_id

    stray = award_env.model_copy(update={"message_id": "stray", "market_day": day + timedelta(days=1)})
    assert worker.apply(Topic.AWARDS, stray) is False
    with engine.connect() as conn:
        reason = conn.execute(
            select(dead_letters.c.reason).where(dead_letters.c.message_id == "stray")
        ).scalar()
    assert "no day-ahead offer of park datong for 2026-07-16" in reason

"""Store-then-publish and apply-once, on SQLite and on the PostgreSQL server, with the real broker."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import pytest
from kafka.errors import KafkaError
from sqlalchemy import func, select

from infra.contracts import Award, Bid, EnergyCurve, Topic
from infra.db import make_engine, migrate
from infra.db.outbox import FactConflict, enqueue, relay
from infra.db.tables import consumed_messages, dead_letters, outbox
from infra.embedded import Endpoints, kafka_server
from infra.kafka import ensure_topics, make_producer, read_topic
from infra.timeutil import day_intervals
from infra.worker import MessageContext, Worker, WorkerThread

DAY = date(2026, 7, 15)


def _bid() -> Bid:
    return Bid(
        interval_minutes=15,
        interval_starts=list(day_intervals(DAY, 15)),
        market="day_ahead",
        scenario_version="test",
        forecast_message_id="test",
        energy=[EnergyCurve(base_mw=-100.0, segments=[])] * 96,
        expected_revenue_cny=0.0,
        expected_emissions_tco2=0.0,
        offer_message_id="test",
        rules_version="test",
    )


def _award(price: float, bid_message_id: str = "bid-1") -> Award:
    starts = list(day_intervals(DAY, 15))
    return Award(
        interval_minutes=15,
        interval_starts=starts,
        market="day_ahead",
        bid_message_id=bid_message_id,
        exchange="test",
        cleared_mw=[-100.0] * 96,
        clearing_price_cny_per_mwh=[price] * 96,
    )


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")


class Recorder(Worker):
    group = "test-recorder"
    topics = (Topic.AWARDS,)

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.applied: list[str] = []

    def handle(self, ctx: MessageContext) -> None:
        award = Award.from_envelope(ctx.envelope)
        if award.clearing_price_cny_per_mwh[0] < 0:
            raise ValueError("clearing_price_cny_per_mwh: negative prices are not handled here")
        with ctx.transaction():
            self.applied.append(ctx.envelope.message_id)


def test_same_fact_twice_is_stored_once_and_changed_fact_is_refused(db_url: str) -> None:
    migrate(db_url)
    migrate(db_url)  # idempotent
    engine = make_engine(db_url)
    env = _award(300.0).envelope("datong", DAY, "day_ahead")
    with engine.begin() as conn:
        assert enqueue(conn, Topic.AWARDS, env) is True
    with engine.begin() as conn:
        assert enqueue(conn, Topic.AWARDS, _award(300.0).envelope("datong", DAY, "day_ahead")) is False
    with pytest.raises(FactConflict, match="already stored with different content"), engine.begin() as conn:
        enqueue(conn, Topic.AWARDS, _award(301.0).envelope("datong", DAY, "day_ahead"))
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(outbox)).scalar_one() == 1


def test_relay_publishes_once_and_worker_applies_once(db_url: str, services: Endpoints) -> None:
    migrate(db_url)
    engine = make_engine(db_url)
    topic = f"{Topic.AWARDS}"
    ensure_topics(services.kafka_bootstrap)
    bid = _bid().envelope("outbox-test", DAY, db_url[:8])  # consumers admit awards of stored bids only
    good = _award(250.0, bid.message_id).envelope("outbox-test", DAY, db_url[:8])
    bad = _award(-5.0, bid.message_id).envelope("outbox-test", DAY, db_url[:8], "bad")
    with engine.begin() as conn:
        enqueue(conn, Topic.BIDS, bid)
        enqueue(conn, Topic.AWARDS, good)
        enqueue(conn, Topic.AWARDS, bad)
    producer = make_producer(services.kafka_bootstrap)
    assert relay(engine, producer) == 3
    assert relay(engine, producer) == 0  # nothing left unpublished
    producer.close()

    worker = Recorder(engine, services.kafka_bootstrap)
    worker.group = f"test-recorder-{db_url[:6]}-{time.monotonic_ns()}"
    thread = WorkerThread(worker)
    thread.start()
    deadline = time.monotonic() + 30
    while good.message_id not in worker.applied and time.monotonic() < deadline:
        time.sleep(0.1)
    thread.stop()
    assert worker.applied.count(good.message_id) == 1
    # A replay of the same message changes nothing.
    assert worker.apply(topic, good) is False
    assert worker.applied.count(good.message_id) == 1
    with engine.connect() as conn:
        reasons = (
            conn.execute(select(dead_letters.c.reason).where(dead_letters.c.message_id == bad.message_id))
            .scalars()
            .all()
        )
        applied = conn.execute(
            select(func.count())
            .select_from(consumed_messages)
            .where(consumed_messages.c.message_id == good.message_id)
        ).scalar_one()
    assert reasons == ["ValueError: clearing_price_cny_per_mwh: negative prices are not handled here"]
    assert applied == 1
    on_topic = [r.envelope.message_id for r in read_topic(services.kafka_bootstrap, topic)]
    assert on_topic.count(good.message_id) >= 1


def test_a_broker_restart_loses_no_fact(sqlite_url: str, tmp_path: Path) -> None:
    """Tansu keeps topics in memory, so a restart empties it; unpublished facts still go out."""
    migrate(sqlite_url)
    engine = make_engine(sqlite_url)
    broker, bootstrap = kafka_server(tmp_path)
    port = int(bootstrap.rsplit(":", 1)[1])
    broker.start()
    try:
        producer = make_producer(bootstrap, delivery_timeout_ms=1500)
        before = _award(100.0).envelope("restart-test", DAY, "before")
        with engine.begin() as conn:
            enqueue(conn, Topic.AWARDS, before)
        assert relay(engine, producer) == 1
        broker.stop()
        during = _award(123.0).envelope("restart-test", DAY, "during")
        with engine.begin() as conn:
            enqueue(conn, Topic.AWARDS, during)
        with pytest.raises(KafkaError):
            relay(engine, producer)
        producer.close(timeout=1)
        with engine.connect() as conn:
            assert (
                conn.execute(
                    select(outbox.c.published_at).where(outbox.c.message_id == during.message_id)
                ).scalar()
                is None
            )
        broker, bootstrap = kafka_server(tmp_path, port=port)
        broker.start()
        producer = make_producer(bootstrap)
        assert relay(engine, producer) == 1
        producer.close()
        on_topic = [r.envelope.message_id for r in read_topic(bootstrap, Topic.AWARDS)]
        assert on_topic == [during.message_id]
    finally:
        broker.stop()

"""End to end on the embedded Kafka broker: consume, settle, crash before publishing, relay, re-deliver."""

from __future__ import annotations

import time
from datetime import date

import pytest
from sqlalchemy import Engine, func, select

from infra.contracts import Settlement, Topic
from infra.db import make_engine, migrate
from infra.db.outbox import enqueue, relay
from infra.db.tables import outbox
from infra.kafka import ensure_topics, make_producer, publish, read_topic
from infra.signing import sign
from infra.worker import WorkerThread
from settlement.tables import settlement_days, settlement_facts, settlement_statements
from settlement.worker import SettlementWorker
from tests.settlement.settlement_checks import assert_reconciles
from tests.settlement.settlement_factory import make_day, store_history

DAYS = (date(2026, 3, 10), date(2026, 3, 11))  # days no other test uses
SENTINEL_DAY = date(2026, 3, 12)


def fact_stored(engine: Engine, message_id: str) -> bool:
    with engine.connect() as conn:
        return (
            conn.execute(
                select(settlement_facts.c.message_id).where(settlement_facts.c.message_id == message_id)
            ).first()
            is not None
        )


def wait_for(check, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(0.2)


def settled_days(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(
            select(func.count()).select_from(settlement_days).where(settlement_days.c.market_day.in_(DAYS))
        ).scalar_one()


def ours(bootstrap: str, ids: set[str]) -> list[Settlement]:
    return [
        Settlement.from_envelope(r.envelope)
        for r in read_topic(bootstrap, Topic.SETTLEMENTS)
        if r.envelope.message_id in ids
    ]


@pytest.mark.slow
def test_kafka_consume_settle_relay_and_redelivery(services, sqlite_url: str, datong) -> None:
    bootstrap = services.kafka_bootstrap
    ensure_topics(bootstrap)
    migrate(sqlite_url)
    engine = make_engine(sqlite_url)
    store_history(engine, datong, DAYS)
    days = [make_day(datong, d, regulation_mw=10) for d in DAYS]
    with engine.begin() as conn:  # the bids the awards name, as bidding stores them
        for m in days:
            enqueue(conn, Topic.BIDS, m.bid)
    envelopes = [env for m in days for env in m.all()]
    producer = make_producer(bootstrap)
    worker = WorkerThread(SettlementWorker(engine, bootstrap))
    worker.start()
    try:
        for env in reversed(envelopes):  # metering before awards: any order works
            publish(producer, Topic.METERING if env.schema_.name == "metering" else Topic.AWARDS, sign(env))
        wait_for(lambda: settled_days(engine) == 2)
        # The worker stored statements and their messages, but nothing is published yet: a crash
        # here loses nothing, the outbox still holds every settlement.
        with engine.connect() as conn:
            pending = (
                conn.execute(
                    select(outbox.c.message_id).where(
                        outbox.c.published_at.is_(None), outbox.c.schema_name == "settlement"
                    )
                )
                .scalars()
                .all()
            )
            stored = conn.execute(select(func.count()).select_from(settlement_statements)).scalar_one()
        assert len(pending) == stored == 16
        assert relay(engine, producer) == 16 + len(DAYS)  # and the two bids
        published = ours(bootstrap, set(pending))
        assert len(published) == 16
        for d in DAYS:
            assert_reconciles([s for s in published if s.interval_starts[0].date() == d])
        # The broker re-delivers everything: nothing new is settled or published. A sentinel (the
        # next day's metering) behind the duplicates shows when they have all been handled.
        for env in envelopes:
            publish(producer, Topic.METERING if env.schema_.name == "metering" else Topic.AWARDS, sign(env))
        sentinel = make_day(datong, SENTINEL_DAY).metering
        publish(producer, Topic.METERING, sign(sentinel))
        wait_for(lambda: fact_stored(engine, sentinel.message_id))
        assert relay(engine, producer) == 0
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(settlement_statements)).scalar_one() == 16
        assert worker.error is None
    finally:
        worker.stop()
        producer.close()

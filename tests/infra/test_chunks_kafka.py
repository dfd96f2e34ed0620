"""Chunked dispatch over the real embedded broker (Tansu): partitioned topics and a consumer group.

The module starts its own broker, so the real topic names are fresh here whatever other
tests did to the session's broker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import date

import pytest
from kafka import KafkaAdminClient
from sqlalchemy import Engine, func, select

from infra.chunks import Assembly, chunk_envelopes, parent_of
from infra.contracts import Dispatch, Topic
from infra.db import make_engine, migrate
from infra.db.outbox import enqueue_message, relay, stored_envelopes, stored_message
from infra.db.tables import dead_letters, message_parts, outbox
from infra.embedded import kafka_server
from infra.kafka import GroupMember, ensure_topics, make_producer, publish
from infra.signing import producing_as
from infra.worker import MessageContext, Worker, WorkerThread
from tests.infra.test_chunks import big_dispatch

DAY = date(2026, 7, 15)
OWN_DAY = date(2026, 7, 16)  # the service test's messages: ids apart from the first test's
PARK = "datong"


@pytest.fixture(scope="module")
def bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    broker, address = kafka_server(tmp_path_factory.mktemp("chunks-kafka"))
    broker.start()
    try:
        yield address
    finally:
        broker.stop()


def _partitions(bootstrap: str) -> dict[str, int]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        return {str(m.get("name") or m.get("topic")): len(m["partitions"]) for m in admin.describe_topics()}
    finally:
        admin.close()


def test_ensure_topics_partitions_dispatch_and_metering_only(
    bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    ensure_topics(bootstrap, [Topic.METERING], partitions=1)  # made before topics were partitioned
    with caplog.at_level(logging.INFO, logger="infra.kafka"):
        ensure_topics(bootstrap)
        ensure_topics(bootstrap)  # idempotent
    counts = _partitions(bootstrap)
    assert counts[Topic.DISPATCH] == 4
    assert counts[Topic.METERING] == 1  # an existing topic is left as it is, and the log says so
    assert "topic vpp.metering exists with 1 partition(s), fewer than the 4 wanted" in caplog.text
    for topic in (Topic.BIDS, Topic.AWARDS, Topic.SETTLEMENTS, Topic.FORECASTS, Topic.OFFERS):
        assert counts[topic] == 1  # a park's bids, awards and settlements stay in one ordered partition


def _wait(condition: object, timeout_s: float, what: str, members: list[GroupMember]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        errors = [m.error for m in members if m.error]
        assert not errors, errors
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} within {timeout_s:.0f} s: {[sorted(m.assigned) for m in members]}")


def test_two_members_of_one_group_share_the_chunks_and_assemble_the_day(bootstrap: str) -> None:
    ensure_topics(bootstrap)
    dispatch = big_dispatch()
    envelopes = chunk_envelopes(dispatch, PARK, DAY, "day_ahead")
    *chunks, manifest = envelopes
    assert len(chunks) > 8

    members = [
        GroupMember(bootstrap, "chunk-readers", [Topic.DISPATCH]),
        GroupMember(bootstrap, "chunk-readers", [Topic.DISPATCH]),
    ]
    started = time.monotonic()
    try:
        for m in members:
            m.start()
        # Tansu joins groups slowly: publish only once both members hold a disjoint half.
        _wait(
            lambda: (
                all(m.assigned for m in members)
                and not members[0].assigned & members[1].assigned
                and len(members[0].assigned | members[1].assigned) == 4
            ),
            40,
            "both members assigned",
            members,
        )
        producer = make_producer(bootstrap)
        try:
            for env in envelopes:
                publish(producer, Topic.DISPATCH, env)
        finally:
            producer.close()
        expected = {env.message_id for env in envelopes}
        _wait(
            lambda: {e.message_id for m in members for _, e in m.received} >= expected,
            max(5.0, 60 - (time.monotonic() - started)),
            "all chunks received",
            members,
        )
    finally:
        for m in members:
            m.stop.set()
        for m in members:
            m.join(15)

    shares = [{e.message_id for _, e in m.received} for m in members]
    chunk_ids = {env.message_id for env in chunks}
    assert shares[0].isdisjoint(shares[1])  # one group: each chunk goes to one member
    assert all(share & chunk_ids for share in shares)  # both did part of the work
    assert shares[0] | shares[1] == chunk_ids | {manifest.message_id}
    for m in members:  # each member read only its own partitions
        assert {p for p, _ in m.received} <= m.assigned
    assembly = Assembly()
    for m in members:
        for _, env in m.received:
            assert parent_of(env) == parent_of(manifest)
            assembly.add(env)
    assert assembly.complete
    assert assembly.whole().model_dump() == dispatch.model_dump()
    assert isinstance(assembly.whole(), Dispatch)


class _Recorder(Worker):
    """A service that records what it applies (one row per whole message, in its transaction)."""

    group = "chunk-service"
    topics = (Topic.DISPATCH,)
    applied: list[Dispatch]

    def handle(self, ctx: MessageContext) -> None:
        dispatch = Dispatch.from_envelope(ctx.envelope)
        with ctx.transaction():
            self.applied.append(dispatch)


def test_two_service_workers_of_one_group_apply_a_chunked_dispatch_once_whole(
    bootstrap: str, postgres_url: str
) -> None:
    """The outbox stores the chunks and manifest, the relay publishes them over the partitions,
    two workers of one group each keep their parts in the database, and exactly one applies the
    whole dispatch; a replay of every part applies nothing and keeps nothing."""
    ensure_topics(bootstrap)
    migrate(postgres_url)
    engine = make_engine(postgres_url)
    dispatch = big_dispatch(4000)
    with producing_as("aggregator"), engine.begin() as conn:
        parent = enqueue_message(conn, Topic.DISPATCH, dispatch, PARK, OWN_DAY, "day_ahead")
    with engine.connect() as conn:
        parts = conn.execute(select(func.count()).select_from(outbox)).scalar()
        assert parts > 3  # chunks and a manifest, each under the limit
        stored = stored_message(conn, parent)  # read back whole, as the gateway and aggregator do
        assert stored is not None and Dispatch.from_envelope(stored) == dispatch
        assert [e.message_id for e in stored_envelopes(conn, PARK, OWN_DAY, "dispatch")] == [parent]

    workers = [_Recorder(engine, bootstrap), _Recorder(engine, bootstrap)]
    applied: list[Dispatch] = []
    for w in workers:
        w.applied = applied
    threads = [WorkerThread(w) for w in workers]
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while not all(t.ready_event.is_set() for t in threads) and time.monotonic() < deadline:
            time.sleep(0.1)
        producer = make_producer(bootstrap)
        try:
            assert relay(engine, producer) == parts
            deadline = time.monotonic() + 60
            while not applied and time.monotonic() < deadline:
                time.sleep(0.1)
            assert len(applied) == 1 and applied[0] == dispatch
            for raw in [row for row in _outbox_json(engine)]:  # every part again
                producer.send(Topic.DISPATCH, key=b"replay", value=raw.encode()).get(10)
            time.sleep(3)
        finally:
            producer.close()
    finally:
        for t in threads:
            t.stop()
    assert all(t.error is None for t in threads)
    assert len(applied) == 1  # the replay applied nothing
    with engine.connect() as conn:
        # the parts were dropped once the dispatch was applied, and replayed ones were not kept
        assert conn.execute(select(func.count()).select_from(message_parts)).scalar() == 0
        ours = select(outbox.c.message_id)  # the other test's unsigned chunks are refused, not ours
        refused = select(func.count()).select_from(dead_letters).where(dead_letters.c.message_id.in_(ours))
        assert conn.execute(refused).scalar() == 0


def _outbox_json(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(outbox.c.envelope).order_by(outbox.c.seq)).scalars())

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

from infra.chunks import Assembly, chunk_envelopes, parent_of
from infra.contracts import Dispatch, Topic
from infra.embedded import kafka_server
from infra.kafka import GroupMember, ensure_topics, make_producer, publish
from tests.infra.test_chunks import big_dispatch

DAY = date(2026, 7, 15)
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

"""Another Kafka client agrees (issue 12, item 7): every topic of a finished day read with
confluent-kafka (librdkafka), not kafka-python, and every envelope checked against the contract.

The day is resumed from the drill lab's snapshot taken after the forecast, on a broker of this
test's own, so every topic holds the day's messages as the relay published them.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from gateway import drills
from gateway.drills import Lab
from infra.contracts import MESSAGE_NAMESPACE, Envelope, Topic
from infra.embedded import kafka_server
from infra.signing import verification_problem

pytestmark = pytest.mark.slow

FACT_TOPICS = {
    Topic.FORECASTS: "forecast_set",
    Topic.OFFERS: "offer",
    Topic.BIDS: "bid",
    Topic.AWARDS: "award",
    Topic.DISPATCH: "dispatch",
    Topic.METERING: "metering",
    Topic.SETTLEMENTS: "settlement",
}


def read_with_librdkafka(bootstrap: str, topic: str, timeout_s: float = 30.0) -> list[bytes]:
    """Every message of a topic from the beginning, up to its high watermark, without a group commit."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"contract-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "fetch.max.bytes": 64 * 1024 * 1024,
            "message.max.bytes": 64 * 1024 * 1024,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        partitions = sorted(metadata.topics[topic].partitions)
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions
        }
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        values: list[bytes] = []
        done = {p for p, end in ends.items() if end == 0}
        import time

        deadline = time.monotonic() + timeout_s
        while len(done) < len(partitions):
            assert time.monotonic() < deadline, f"{topic}: did not reach the high watermark {ends}"
            message = consumer.poll(0.5)
            if message is None:
                continue
            assert message.error() is None, message.error()
            values.append(message.value())
            if message.offset() + 1 >= ends[message.partition()]:
                done.add(message.partition())
        return values
    finally:
        consumer.close()


def test_every_topic_of_a_finished_day_read_with_confluent_kafka_meets_the_contract(
    drill_lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert drill_lab.reference is not None
    run_dir = drill_lab.run_dir("contract", "forecast")
    server, bootstrap = kafka_server(tmp_path / "broker")
    server.start()
    try:
        run = drills.run_day_command(
            run_dir, drill_lab.park, drill_lab.day, "contract", PARKVPP_KAFKA_BOOTSTRAP=bootstrap
        )
        assert run.wait(600) == 0, run.output()[-2000:]
        monkeypatch.setenv("PARKVPP_KEYS_DIR", str(run_dir / "keys"))
        stored = drills.stored_facts(drills.sqlite_url(run_dir), drill_lab.park, drill_lab.day)
        seen: dict[str, str] = {}
        for topic, schema in FACT_TOPICS.items():
            raw = read_with_librdkafka(bootstrap, topic)
            assert raw, f"nothing on {topic}"
            for value in raw:
                body = json.loads(value)
                assert set(body) >= {
                    "schema",
                    "message_id",
                    "park_id",
                    "market_day",
                    "produced_at",
                    "payload",
                }
                envelope = Envelope.from_json(value)
                assert envelope.schema_.name == schema and envelope.schema_.version == 1, topic
                assert uuid.UUID(envelope.message_id).version == 5
                assert uuid.UUID(envelope.message_id) != MESSAGE_NAMESPACE
                assert envelope.park_id == drill_lab.park and envelope.market_day == drill_lab.day
                assert datetime.fromisoformat(body["produced_at"]).utcoffset() is not None
                assert verification_problem(envelope) is None, (topic, envelope.message_id)
                seen[envelope.message_id] = schema
        facts = {k: v.split(":")[0] for k, v in stored.items() if not k.startswith("ledger:")}
        # Every stored fact is on its topic, under the same deterministic id an independent run gave it.
        assert seen == facts
        reference = {k for k in drill_lab.reference if not k.startswith("ledger:")}
        assert set(seen) == reference
    finally:
        server.stop()

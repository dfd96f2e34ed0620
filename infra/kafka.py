"""Kafka access through kafka-python, always carrying :class:`~infra.contracts.Envelope` JSON.

Producers wait for every acknowledgement (``acks=all``) because the outbox marks a message
published only after the broker confirmed it. Consumers never auto-commit: a worker commits
after its effects are stored, so a crash re-delivers and the consumer's dedupe makes that safe.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from infra.contracts import Envelope, Topic

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 8 * 1024 * 1024  # larger messages are refused (producer) and dead-lettered (consumer)
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
# Tansu and small clusters join consumer groups slowly with kafka-python's 10 s default.
SESSION_TIMEOUT_MS = 6000
HEARTBEAT_INTERVAL_MS = 1000


def security_config() -> dict[str, Any]:
    """Client security settings for a real cluster, from ``PARKVPP_KAFKA_*`` (README: Kafka security).

    ``SECURITY_PROTOCOL`` PLAINTEXT (default) | SSL | SASL_PLAINTEXT | SASL_SSL;
    ``SASL_MECHANISM`` SCRAM-SHA-256 | SCRAM-SHA-512 | PLAIN; ``SASL_USERNAME``, ``SASL_PASSWORD``;
    ``SSL_CAFILE``. Each service can have its own user so the cluster's ACLs limit what it may
    read and write."""
    env = os.environ
    protocol = env.get("PARKVPP_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT").upper()
    if protocol not in SECURITY_PROTOCOLS:
        raise ValueError(
            f"PARKVPP_KAFKA_SECURITY_PROTOCOL={protocol!r}: one of {', '.join(SECURITY_PROTOCOLS)}"
        )
    config: dict[str, Any] = {"security_protocol": protocol}
    if protocol.startswith("SASL"):
        mechanism = env.get("PARKVPP_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
        user, password = env.get("PARKVPP_KAFKA_SASL_USERNAME"), env.get("PARKVPP_KAFKA_SASL_PASSWORD")
        if not user or not password:
            raise ValueError(f"{protocol} needs PARKVPP_KAFKA_SASL_USERNAME and PARKVPP_KAFKA_SASL_PASSWORD")
        config |= {"sasl_mechanism": mechanism, "sasl_plain_username": user, "sasl_plain_password": password}
    if protocol.endswith("SSL") and env.get("PARKVPP_KAFKA_SSL_CAFILE"):
        config["ssl_cafile"] = env["PARKVPP_KAFKA_SSL_CAFILE"]
    return config


def ensure_topics(bootstrap: str, topics: Iterable[str] = tuple(Topic), partitions: int = 1) -> None:
    """Create missing topics (one partition keeps a park's day in order; key = park id)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="parkvpp-admin", **security_config())
    try:
        existing = set(admin.list_topics())
        missing = [NewTopic(t, partitions, 1) for t in topics if t not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(missing)
    finally:
        admin.close()


def make_producer(bootstrap: str, delivery_timeout_ms: int = 30000) -> KafkaProducer:
    """A producer that gives up on a message after ``delivery_timeout_ms`` (the outbox retries)."""
    return KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=5,
        max_request_size=MAX_MESSAGE_BYTES,
        client_id="parkvpp",
        delivery_timeout_ms=delivery_timeout_ms,
        request_timeout_ms=min(delivery_timeout_ms // 2, 30000),
        max_block_ms=delivery_timeout_ms,
        **security_config(),
    )


def publish(producer: KafkaProducer, topic: str, envelope: Envelope) -> None:
    """Send one envelope keyed by park and wait for the broker's acknowledgement."""
    timeout_s = producer.config["delivery_timeout_ms"] / 1000 + 5
    producer.send(topic, key=envelope.park_id.encode(), value=envelope.to_json().encode()).get(timeout_s)


def make_consumer(bootstrap: str, group_id: str, topics: Iterable[str]) -> KafkaConsumer:
    return KafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=group_id,
        client_id=group_id,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
        max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
        fetch_max_bytes=MAX_MESSAGE_BYTES * 4,
        **security_config(),
    )


@dataclass(frozen=True)
class Received:
    topic: str
    partition: int
    offset: int
    envelope: Envelope


def read_topic(
    bootstrap: str, topic: str, idle_s: float = 1.0, timeout_s: float = 30.0
) -> Iterator[Received]:
    """Read a whole topic from the beginning without joining a group (audits and tests).

    Stops once every partition has reached the end offset the broker reported and no new
    record arrived for ``idle_s``. (Tansu reports the base offset of the last batch plus
    one as the end, so reaching it means the last batch was fetched.)
    """
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
        fetch_max_bytes=MAX_MESSAGE_BYTES * 4,
        **security_config(),
    )
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        deadline = time.monotonic() + timeout_s
        last_record = time.monotonic()
        while time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=200)
            for tp, records in batch.items():
                for record in records:
                    last_record = time.monotonic()
                    try:
                        envelope = Envelope.from_json(record.value)
                    except (
                        ValueError
                    ):  # junk on a topic is the consumers' to dead-letter, not an audit's crash
                        log.warning(
                            "%s/%s/%s is not an envelope; skipped", tp.topic, tp.partition, record.offset
                        )
                        continue
                    yield Received(tp.topic, tp.partition, record.offset, envelope)
            caught_up = all(consumer.position(tp) >= end[tp] for tp in tps)
            if caught_up and time.monotonic() - last_record >= idle_s:
                return
        raise TimeoutError(f"reading {topic} did not reach its end within {timeout_s:.0f} s")
    finally:
        consumer.close()

"""Kafka access through kafka-python, always carrying :class:`~infra.contracts.Envelope` JSON.

Producers wait for every acknowledgement (``acks=all``) because the outbox marks a message
published only after the broker confirmed it. Consumers never auto-commit: a worker commits
after its effects are stored, so a crash re-delivers and the consumer's dedupe makes that safe.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from infra.chunks import partition_key
from infra.contracts import Envelope, Topic
from infra.settings import get_settings

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 8 * 1024 * 1024  # larger messages are refused (producer) and dead-lettered (consumer)
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
# Tansu and small clusters join consumer groups slowly with kafka-python's 10 s default.
SESSION_TIMEOUT_MS = 6000
HEARTBEAT_INTERVAL_MS = 1000
# Topics whose large messages travel in chunks (infra/chunks.py) spread over several partitions.
CHUNKED_TOPICS = (Topic.DISPATCH, Topic.METERING)


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


def topic_partitions(topic: str) -> int:
    """Partitions a topic is created with: ``PARKVPP_KAFKA_PARTITIONS`` for the chunked topics
    (vpp.dispatch, vpp.metering), one for every other, so a park's bids, awards and settlements
    stay in one ordered partition (key = park id)."""
    return get_settings().kafka_partitions if topic in CHUNKED_TOPICS else 1


def ensure_topics(
    bootstrap: str, topics: Iterable[str] = tuple(Topic), partitions: int | None = None
) -> None:
    """Create missing topics with :func:`topic_partitions` partitions each (``partitions``: that
    many for every topic named). A topic that exists is left as it is, also with fewer partitions
    than wanted (growing one moves keys between partitions: an operator's decision); a log line says so."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="parkvpp-admin", **security_config())
    try:
        wanted = {str(t): partitions or topic_partitions(t) for t in topics}
        existing = set(admin.list_topics())
        missing = [NewTopic(t, n, 1) for t, n in wanted.items() if t not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(missing)
        present = [t for t, n in wanted.items() if t in existing and n > 1]
        for name, have in _partition_counts(admin, present).items():
            if have < wanted[name]:
                log.info(
                    "topic %s exists with %d partition(s), fewer than the %d wanted: left as it is "
                    "(its chunks share fewer partitions; add partitions with the cluster's tools)",
                    name,
                    have,
                    wanted[name],
                )
    finally:
        admin.close()


def _partition_counts(admin: KafkaAdminClient, topics: list[str]) -> dict[str, int]:
    """Partitions of each existing topic (best effort: the count only feeds a log line)."""
    if not topics:
        return {}
    try:
        described = admin.describe_topics(topics)
    except KafkaError as exc:
        log.debug("could not describe topics %s: %s", topics, exc)
        return {}
    # kafka-python 3 names the topic "name", 2.x "topic"
    return {str(m.get("name") or m.get("topic")): len(m.get("partitions") or []) for m in described}


PUBLISH_IN_FLIGHT = 16  # chunks (at most 8 MiB) awaiting acknowledgement in publish_all


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
    """Send one envelope and wait for the broker's acknowledgement. The key is the park id (a
    park's messages in one ordered partition), ``park|chunk`` for a chunk (:func:`partition_key`)."""
    timeout_s = producer.config["delivery_timeout_ms"] / 1000 + 5
    producer.send(topic, key=partition_key(envelope), value=envelope.to_json().encode()).get(timeout_s)


def publish_all(
    producer: KafkaProducer, topic: str, envelopes: Iterable[Envelope], in_flight: int = PUBLISH_IN_FLIGHT
) -> None:
    """Send many envelopes (a message's chunks), waiting for acknowledgements ``in_flight`` at a
    time: one round trip per window rather than per message, and no message waits in the
    producer's queue behind tens of MiB (with every chunk of a 100,000-device dispatch queued at
    once, the last ones expired after the delivery timeout on a busy machine)."""
    timeout_s = producer.config["delivery_timeout_ms"] / 1000 + 5
    pending = list(envelopes)
    for start in range(0, len(pending), in_flight):
        window = pending[start : start + in_flight]
        futures = [producer.send(topic, key=partition_key(e), value=e.to_json().encode()) for e in window]
        producer.flush(timeout_s)
        for future in futures:
            future.get(timeout_s)


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


class GroupMember(threading.Thread):
    """One consumer of a group polling in its own thread (kafka-python consumers are not
    thread-safe, so only this thread touches it): what it was assigned and what it received.

    For scaling out readers of a partitioned topic (dispatch and metering chunks) and for
    showing how a group shares them; ``stop`` ends it and closes the consumer."""

    def __init__(self, bootstrap: str, group: str, topics: Iterable[str]) -> None:
        super().__init__(daemon=True)
        self.consumer = make_consumer(bootstrap, group, topics)
        self.assigned: frozenset[int] = frozenset()
        self.received: list[tuple[int, Envelope]] = []
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                for tp, records in self.consumer.poll(timeout_ms=200).items():
                    self.received += [(tp.partition, Envelope.from_json(r.value)) for r in records]
                self.assigned = frozenset(tp.partition for tp in self.consumer.assignment())
        except BaseException as exc:  # noqa: BLE001 - the owner reads and reports it
            self.error = exc
        finally:
            self.consumer.close()

"""The loop every service worker runs: consume, apply once, commit.

A service subclasses :class:`Worker`, names its consumer group and topics, and implements
:meth:`Worker.handle`. Inside ``handle`` it computes first and then writes its effects in
``ctx.transaction()``, which also records the message as applied; a message that was
already applied is skipped, so replaying a topic changes nothing. Offsets are committed
only after the effects are stored. A message that cannot be applied is recorded in
``dead_letters`` with its reason and skipped, so one bad message never stalls a service.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass

from kafka import KafkaProducer
from kafka.errors import KafkaError
from sqlalchemy import Connection, Engine, delete, func, insert, select

from infra.chunks import Assembly, is_part, parent_of, parts_of
from infra.contracts import Envelope, Topic
from infra.db.engine import insert_ignore, lock_message
from infra.db.outbox import first_delivery, reference_problem, relay, stored_conflict, was_applied
from infra.db.tables import dead_letters, message_parts
from infra.kafka import MAX_MESSAGE_BYTES, make_consumer, make_producer
from infra.signing import producing_as, verification_problem
from infra.timeutil import now

log = logging.getLogger(__name__)


class AlreadyApplied(Exception):
    """The message was applied before; its transaction is rolled back and it is skipped."""


@dataclass
class MessageContext:
    engine: Engine
    consumer: str
    topic: str
    envelope: Envelope

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A transaction that also records this message as applied by this consumer."""
        with self.engine.begin() as conn:
            if not first_delivery(conn, self.consumer, self.envelope, self.topic):
                raise AlreadyApplied(self.envelope.message_id)
            yield conn


class Worker(ABC):
    """One service's consumer; run it with :func:`run_worker` or :class:`WorkerThread`."""

    group: str
    topics: tuple[str, ...]
    last_rejection: str | None = None  # why the last message applied was refused, if it was

    def __init__(self, engine: Engine, kafka_bootstrap: str) -> None:
        self.engine = engine
        self.kafka_bootstrap = kafka_bootstrap

    @abstractmethod
    def handle(self, ctx: MessageContext) -> None:
        """Apply one message; write effects inside ``ctx.transaction()``."""

    def apply(self, topic: str, envelope: Envelope) -> bool:
        """Apply one message; returns False if it was a duplicate or rejected. A chunk or
        manifest is kept until its message is whole; the whole message is then applied."""
        try:
            if is_part(envelope):
                whole = collect_part(self.engine, self.group, envelope)
                if whole is None:
                    return True  # kept; the message is not whole yet
                applied = self.apply(topic, whole)
                if applied or self.last_rejection is None:  # applied, or applied before
                    forget_parts(self.engine, self.group, whole.message_id)
                return applied
            with producing_as(self.group):
                self.handle(MessageContext(self.engine, self.group, topic, envelope))
            return True
        except AlreadyApplied:
            log.debug("%s: %s already applied, skipped", self.group, envelope.message_id)
        except Exception as exc:  # noqa: BLE001 - any failure of one message is that message's, not the loop's
            log.error("%s: rejected %s %s: %s", self.group, envelope.schema_.name, envelope.message_id, exc)
            self.last_rejection = f"{type(exc).__name__}: {exc}"
            with self.engine.begin() as conn:
                conn.execute(
                    insert(dead_letters).values(
                        consumer=self.group,
                        message_id=envelope.message_id,
                        topic=topic,
                        reason=self.last_rejection,
                        rejected_at=now(),
                    )
                )
        return False


def collect_part(engine: Engine, consumer: str, envelope: Envelope) -> Envelope | None:
    """Keep one part of a message for ``consumer``; the whole message once every part is here.

    Members of one group may hold different parts (the chunks spread over partitions): the
    parts of a message are counted under a lock on it, so the member that stores the last part
    finds it whole (a part redelivered meanwhile may let another assemble it too; the message
    is still applied once, by its id)."""
    parent = parent_of(envelope) or ""
    with engine.begin() as conn:
        lock_message(conn, consumer, parent)
        if was_applied(conn, consumer, parent):
            return None  # a part replayed after its message was applied: nothing to keep
        insert_ignore(
            conn,
            message_parts,
            [
                {
                    "consumer": consumer,
                    "message_id": envelope.message_id,
                    "parent_message_id": parent,
                    "envelope": envelope.to_json(),
                    "received_at": now(),
                }
            ],
            ["consumer", "message_id"],
        )
        mine = (message_parts.c.consumer == consumer) & (message_parts.c.parent_message_id == parent)
        if conn.execute(select(func.count()).select_from(message_parts).where(mine)).scalar() < parts_of(
            envelope
        ):
            return None  # read the parts only once they can all be here (not once per chunk)
        rows = conn.execute(select(message_parts.c.envelope).where(mine)).scalars()
        assembly = Assembly()
        for raw in rows:
            assembly.add(Envelope.from_json(raw))
        if not assembly.complete:
            return None
        return assembly.whole_envelope()


def forget_parts(engine: Engine, consumer: str, parent_message_id: str) -> None:
    """Drop the parts of a message the consumer has applied (or had applied before)."""
    with engine.begin() as conn:
        conn.execute(
            delete(message_parts).where(
                message_parts.c.consumer == consumer, message_parts.c.parent_message_id == parent_message_id
            )
        )


def run_worker(worker: Worker, stop: threading.Event, ready: threading.Event | None = None) -> None:
    """Consume until ``stop`` is set; commit after each poll's messages are applied.

    Before a message reaches the service it must be admitted (:func:`admit`):
    anything unreadable, oversized, unsigned, signed by the wrong service, conflicting with
    a stored fact or naming a fact we never stored (a bid's offer, an award's bid, a
    dispatch's award) goes to the dead-letter table and topic with the reason, and is skipped."""
    consumer = make_consumer(worker.kafka_bootstrap, worker.group, worker.topics)
    dead_letter_producer = None
    try:
        while not stop.is_set():
            batch = consumer.poll(timeout_ms=200)
            if ready is not None and consumer.assignment():
                ready.set()
            for tp, records in batch.items():
                for record in records:
                    envelope, problem = admit(worker.engine, record.value)
                    if problem is not None:
                        dead_letter_producer = dead_letter_producer or make_producer(worker.kafka_bootstrap)
                        where = f"{tp.topic}/{tp.partition}/{record.offset}"
                        reject(worker, dead_letter_producer, tp.topic, where, envelope, problem, record.value)
                        continue
                    worker.last_rejection = None
                    if not worker.apply(tp.topic, envelope) and worker.last_rejection is not None:
                        dead_letter_producer = dead_letter_producer or make_producer(worker.kafka_bootstrap)
                        where = f"{tp.topic}/{tp.partition}/{record.offset}"
                        publish_letter(
                            worker,
                            dead_letter_producer,
                            where,
                            envelope.message_id,
                            worker.last_rejection,
                            record.value,
                        )
            if batch:
                consumer.commit()
    finally:
        consumer.close()
        if dead_letter_producer is not None:
            dead_letter_producer.close()


def admit(engine: Engine, raw: bytes | None) -> tuple[Envelope | None, str | None]:
    """The envelope of a raw message, or why it must not be applied."""
    size = len(raw or b"")
    if size == 0:
        return None, "empty message"
    if size > MAX_MESSAGE_BYTES:
        return None, f"oversized message: {size:,} bytes (limit {MAX_MESSAGE_BYTES:,})"
    try:
        envelope = Envelope.from_json(raw)
    except ValueError as exc:
        return None, f"unreadable message: {str(exc).splitlines()[0][:300]}"
    problem = verification_problem(envelope)
    if problem is None:
        with engine.connect() as conn:
            problem = stored_conflict(conn, envelope) or reference_problem(conn, envelope)
    return envelope, problem


def reject(
    worker: Worker,
    producer: KafkaProducer,
    topic: str,
    where: str,
    envelope: Envelope | None,
    reason: str,
    raw: bytes | None,
) -> None:
    """Record a refused message in ``dead_letters`` and on the dead-letter topic."""
    message_id = envelope.message_id if envelope is not None else where
    log.error("%s: dead-lettered %s: %s", worker.group, message_id, reason)
    with worker.engine.begin() as conn:
        conn.execute(
            insert(dead_letters).values(
                consumer=worker.group,
                message_id=message_id[:64],
                topic=topic,
                reason=reason,
                rejected_at=now(),
            )
        )
    publish_letter(worker, producer, where, message_id, reason, raw)


def publish_letter(
    worker: Worker, producer: KafkaProducer, where: str, message_id: str, reason: str, raw: bytes | None
) -> None:
    """The refusal on the dead-letter topic, for operators and tools watching it."""
    letter = {
        "consumer": worker.group,
        "source": where,
        "message_id": message_id,
        "reason": reason,
        "rejected_at": now().isoformat(),
        "raw_prefix": (raw or b"")[:1024].decode("utf-8", errors="replace"),
    }
    try:
        producer.send(Topic.DEAD_LETTERS, value=json.dumps(letter).encode(), key=message_id.encode()).get(
            timeout=10
        )
    except KafkaError as exc:  # the table row stands; the topic copy is best effort
        log.warning("%s: could not publish the dead letter of %s: %s", worker.group, message_id, exc)


def run_relay(
    engine: Engine,
    kafka_bootstrap: str,
    stop: threading.Event,
    interval_s: float = 0.2,
    abandon: threading.Event | None = None,
    producer: KafkaProducer | None = None,
) -> None:
    """Publish outbox rows until ``stop`` is set (one relay per database), then a last time unless
    ``abandon`` is set too (the run failed: unpublished facts wait in the outbox for the next run).
    A caller that passes its ``producer`` can abandon it while a publish waits on a dead broker."""
    producer = producer or make_producer(kafka_bootstrap)
    abandoned = False
    try:
        while not stop.is_set():
            try:
                relay(engine, producer)
            except Exception as exc:  # noqa: BLE001 - broker or database hiccup: retry on the next tick
                log.warning("outbox relay: %s; retrying", exc)
            stop.wait(interval_s)
        abandoned = abandon is not None and abandon.is_set()
        if not abandoned:
            try:
                relay(engine, producer)
            except Exception as exc:  # noqa: BLE001 - nothing is lost: the facts stay in the outbox
                log.warning(
                    "outbox relay: the last facts were not published (%s); they stay in the outbox "
                    "and go out with the next run or relay",
                    exc,
                )
    finally:
        if abandoned:
            abandon_producer(producer)
        else:
            producer.close()


def abandon_producer(producer: KafkaProducer) -> None:
    """Close at once, dropping what the broker never acknowledged (the outbox still holds it).

    ``close`` first unregisters kafka-python's exit hook, which would otherwise flush again at
    interpreter exit and print a KafkaTimeoutError traceback after the true cause."""
    try:
        producer.close(timeout=0)
    except KafkaError as exc:
        log.debug("abandoned producer: %s", exc)


class WorkerThread(threading.Thread):
    """A worker loop in a daemon thread, stoppable and waitable for group assignment."""

    def __init__(self, worker: Worker) -> None:
        super().__init__(name=f"worker-{worker.group}", daemon=True)
        self.worker = worker
        self.stop_event = threading.Event()
        self.ready_event = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            run_worker(self.worker, self.stop_event, self.ready_event)
        except KafkaError as exc:  # the broker went away: the health watch names it, no traceback
            self.error = exc
            log.error("worker %s stopped: %s", self.worker.group, exc)
        except BaseException as exc:
            self.error = exc
            log.exception("worker %s crashed", self.worker.group)

    def stop(self, timeout_s: float = 10.0) -> None:
        self.stop_event.set()
        self.join(timeout_s)

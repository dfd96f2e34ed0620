"""Store-then-publish: facts enter the outbox in the caller's transaction, a relay publishes them.

A fact is identified by its deterministic ``message_id``. Storing the same fact again is a
no-op; storing a *different* payload under an existing id raises :class:`FactConflict`,
because a submitted bid or a settled statement must never change silently.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import date

from kafka import KafkaProducer
from sqlalchemy import Connection, Engine, select, update

from infra.chunks import Assembly, chunk_envelopes, parent_of
from infra.contracts import Chunkable, Envelope, message_id
from infra.db.engine import insert_ignore
from infra.db.tables import consumed_messages, outbox
from infra.kafka import publish
from infra.signing import sign
from infra.timeutil import now

log = logging.getLogger(__name__)


class FactConflict(RuntimeError):
    """A fact with this id already exists with different content."""


def payload_digest(envelope: Envelope) -> str:
    canonical = json.dumps(envelope.payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def enqueue(conn: Connection, topic: str, envelope: Envelope) -> bool:
    """Sign a fact as its producer and add it to the outbox inside the caller's transaction.
    Returns True if it is new."""
    envelope = sign(envelope)
    digest = payload_digest(envelope)
    row = {
        "message_id": envelope.message_id,
        "parent_message_id": parent_of(envelope),
        "topic": topic,
        "schema_name": envelope.schema_.name,
        "park_id": envelope.park_id,
        "market_day": envelope.market_day,
        "payload_sha256": digest,
        "envelope": envelope.to_json(),
        "created_at": now(),
        "published_at": None,
    }
    if insert_ignore(conn, outbox, [row], ["message_id"]):
        return True
    stored = conn.execute(
        select(outbox.c.payload_sha256).where(outbox.c.message_id == envelope.message_id)
    ).scalar()
    if stored != digest:
        raise FactConflict(
            f"{envelope.schema_.name} for park {envelope.park_id} on {envelope.market_day} "
            f"(message {envelope.message_id}) is already stored with different content; "
            "stored facts are never changed (use a fresh database or another day)"
        )
    return False


def enqueue_message(
    conn: Connection, topic: str, payload: Chunkable, park_id: str, market_day: date, *key: object
) -> str:
    """Store a dispatch or metering as the envelopes that carry it: itself when it fits one
    message, else its chunks and their manifest (:func:`infra.chunks.chunk_envelopes`). Returns
    the message's id (the whole one's, whichever way it travels)."""
    for envelope in chunk_envelopes(payload, park_id, market_day, *key):
        enqueue(conn, topic, envelope)
    return message_id(payload.SCHEMA, park_id, market_day, *key)


def stored_conflict(conn: Connection, envelope: Envelope) -> str | None:
    """A message whose id names a stored fact but whose content differs is a conflict, not a replay."""
    stored = conn.execute(
        select(outbox.c.payload_sha256).where(outbox.c.message_id == envelope.message_id)
    ).scalar()
    if stored is not None and stored != payload_digest(envelope):
        return (
            f"conflict: {envelope.schema_.name} {envelope.message_id} is stored with different content; "
            "stored facts never change"
        )
    return None


# What each kind of fact must name: (payload field, schema of the stored fact it names).
REFERENCES: dict[str, tuple[str, str]] = {
    "bid": ("offer_message_id", "offer"),
    "award": ("bid_message_id", "bid"),
    "dispatch": ("award_message_id", "award"),
}


def _is_stored(conn: Connection, message_id: str) -> bool:
    return (
        conn.execute(select(outbox.c.message_id).where(outbox.c.message_id == message_id)).first() is not None
    )


def reference_problem(conn: Connection, envelope: Envelope) -> str | None:
    """A bid must name a stored offer, an award a stored bid, a dispatch a stored award, all of
    the same park and day: a validly signed message about facts we never produced is refused."""
    reference = REFERENCES.get(envelope.schema_.name)
    if reference is None or _is_stored(conn, envelope.message_id):  # a replay of our own fact
        return None
    field, schema = reference
    named = envelope.payload.get(field)
    found = conn.execute(
        select(outbox.c.message_id).where(
            outbox.c.message_id == str(named),
            outbox.c.schema_name == schema,
            outbox.c.park_id == envelope.park_id,
            outbox.c.market_day == envelope.market_day,
        )
    ).first()
    if found is None:
        return (
            f"{envelope.schema_.name} {envelope.message_id}: {field} {named!r} names no stored {schema} "
            f"of {envelope.park_id} {envelope.market_day}"
        )
    return None


def stored_json(conn: Connection, park_id: str, market_day: object, schema_name: str) -> list[str]:
    """Facts of one kind for a park and day as their stored envelope JSON, in store order; a
    message stored in chunks comes back whole (once its manifest is stored)."""
    return [e if isinstance(e, str) else e.to_json() for e in _stored(conn, park_id, market_day, schema_name)]


def stored_envelopes(conn: Connection, park_id: str, market_day: object, schema_name: str) -> list[Envelope]:
    """Facts of one kind for a park and day, in the order they were stored (chunked ones whole)."""
    return [
        Envelope.from_json(e) if isinstance(e, str) else e
        for e in _stored(conn, park_id, market_day, schema_name)
    ]


def stored_message(conn: Connection, fact_id: str) -> Envelope | None:
    """One stored fact by id; one stored in chunks comes back whole. None if not stored."""
    raw = conn.execute(select(outbox.c.envelope).where(outbox.c.message_id == fact_id)).scalar()
    if raw is not None:
        return Envelope.from_json(raw)
    return _assembled(conn, [fact_id]).get(fact_id)


def _stored(conn: Connection, park_id: str, market_day: object, schema_name: str) -> list[str | Envelope]:
    rows = conn.execute(
        select(outbox.c.envelope, outbox.c.parent_message_id)
        .where(
            outbox.c.park_id == park_id,
            outbox.c.market_day == market_day,
            outbox.c.schema_name == schema_name,
        )
        .order_by(outbox.c.seq)
    ).all()
    parents = list(dict.fromkeys(p for _, p in rows if p is not None))  # in store order
    wholes = _assembled(conn, parents) if parents else {}
    out: list[str | Envelope] = []
    for raw, parent in rows:
        if parent is None:
            out.append(raw)
        elif parent in wholes:
            out.append(wholes.pop(parent))  # at its first chunk's place
    return out


def _assembled(conn: Connection, parents: list[str]) -> dict[str, Envelope]:
    """The whole messages of the given parent ids whose parts are all stored."""
    rows = conn.execute(
        select(outbox.c.parent_message_id, outbox.c.envelope)
        .where(outbox.c.parent_message_id.in_(parents))
        .order_by(outbox.c.seq)
    ).all()
    assemblies: dict[str, Assembly] = {}
    for parent, raw in rows:
        assemblies.setdefault(parent, Assembly()).add(Envelope.from_json(raw))
    return {p: a.whole_envelope() for p, a in assemblies.items() if a.complete}


def relay(engine: Engine, producer: KafkaProducer, batch: int = 100) -> int:
    """Publish every unpublished fact in store order; returns how many were published.

    A row is marked published only after the broker acknowledged it, so a crash or a broker
    outage in between means the message is sent again later (consumers dedupe by id).
    """
    published = 0
    while True:
        with engine.connect() as conn:
            rows = conn.execute(
                select(outbox.c.seq, outbox.c.topic, outbox.c.envelope)
                .where(outbox.c.published_at.is_(None))
                .order_by(outbox.c.seq)
                .limit(batch)
            ).all()
        if not rows:
            return published
        for seq, topic, raw in rows:
            publish(producer, topic, Envelope.from_json(raw))
            with engine.begin() as conn:
                conn.execute(update(outbox).where(outbox.c.seq == seq).values(published_at=now()))
            published += 1


def was_applied(conn: Connection, consumer: str, message_id: str) -> bool:
    """Whether ``consumer`` has applied this message."""
    row = select(consumed_messages.c.message_id).where(
        consumed_messages.c.consumer == consumer, consumed_messages.c.message_id == message_id
    )
    return conn.execute(row).first() is not None


def first_delivery(conn: Connection, consumer: str, envelope: Envelope, topic: str) -> bool:
    """Record that ``consumer`` applied this message; False if it already had (skip it)."""
    row = {"consumer": consumer, "message_id": envelope.message_id, "topic": topic, "consumed_at": now()}
    return insert_ignore(conn, consumed_messages, [row], ["consumer", "message_id"]) == 1

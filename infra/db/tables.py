"""Tables every service shares: the outbox, consumer dedupe and the run journal."""

from sqlalchemy import JSON, BigInteger, Column, Date, Integer, String, Table, Text

from infra.db.engine import metadata
from infra.db.types import AwareDateTime

# Facts are stored here in the same transaction as the service's own tables, then a relay
# publishes them; ``published_at`` stays NULL until the broker acknowledged the message.
outbox = Table(
    "outbox",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("message_id", String(64), nullable=False, unique=True),
    Column("topic", String(64), nullable=False),
    Column("schema_name", String(64), nullable=False),
    Column("park_id", String(64), nullable=False),
    Column("market_day", Date, nullable=False),
    Column("payload_sha256", String(64), nullable=False),
    Column("envelope", Text, nullable=False),
    Column("created_at", AwareDateTime, nullable=False),
    Column("published_at", AwareDateTime, nullable=True),
    # A chunk or manifest names the message it is part of (infra.chunks); NULL for a whole one.
    Column("parent_message_id", String(64), nullable=True, index=True),
)

# Parts (chunks, manifest) of a message a consumer has received, kept until the message is
# whole and applied (infra.worker).
message_parts = Table(
    "message_parts",
    metadata,
    Column("consumer", String(64), primary_key=True),
    Column("message_id", String(64), primary_key=True),
    Column("parent_message_id", String(64), nullable=False, index=True),
    Column("envelope", Text, nullable=False),
    Column("received_at", AwareDateTime, nullable=False),
)

# One row per (consumer, message) the consumer has applied; written with its effects.
consumed_messages = Table(
    "consumed_messages",
    metadata,
    Column("consumer", String(64), primary_key=True),
    Column("message_id", String(64), primary_key=True),
    Column("topic", String(64), nullable=False),
    Column("consumed_at", AwareDateTime, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("park_id", String(64), nullable=False),
    Column("market_day", Date, nullable=False),
    Column("status", String(16), nullable=False),
    Column("started_at", AwareDateTime, nullable=False),
    Column("finished_at", AwareDateTime, nullable=True),
    Column("summary", JSON, nullable=True),
    Column("error", Text, nullable=True),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("consumer", String(64), nullable=False),
    Column("message_id", String(64), nullable=False),
    Column("topic", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("rejected_at", AwareDateTime, nullable=False),
)

# Fencing tokens of run leases (infra/locks.py): incremented by every acquisition.
run_fences = Table(
    "run_fences",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("fence", BigInteger, nullable=False),
)

"""Foundation: outbox, consumer dedupe, dead letters and the run journal.

Revision ID: 0001_foundation
Revises:
"""

import sqlalchemy as sa
from alembic import op

from infra.db.types import AwareDateTime

revision = "0001_foundation"
down_revision = None
branch_labels = ("infra",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column(
            "seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("message_id", sa.String(64), nullable=False, unique=True),
        sa.Column("topic", sa.String(64), nullable=False),
        sa.Column("schema_name", sa.String(64), nullable=False),
        sa.Column("park_id", sa.String(64), nullable=False),
        sa.Column("market_day", sa.Date, nullable=False),
        sa.Column("payload_sha256", sa.String(64), nullable=False),
        sa.Column("envelope", sa.Text, nullable=False),
        sa.Column("created_at", AwareDateTime, nullable=False),
        sa.Column("published_at", AwareDateTime, nullable=True),
    )
    op.create_index("ix_outbox_unpublished", "outbox", ["published_at", "seq"])
    op.create_index("ix_outbox_park_day", "outbox", ["park_id", "market_day", "schema_name"])
    op.create_table(
        "consumed_messages",
        sa.Column("consumer", sa.String(64), primary_key=True),
        sa.Column("message_id", sa.String(64), primary_key=True),
        sa.Column("topic", sa.String(64), nullable=False),
        sa.Column("consumed_at", AwareDateTime, nullable=False),
    )
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("park_id", sa.String(64), nullable=False),
        sa.Column("market_day", sa.Date, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", AwareDateTime, nullable=False),
        sa.Column("finished_at", AwareDateTime, nullable=True),
        sa.Column("summary", sa.JSON, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
    )
    op.create_table(
        "dead_letters",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("consumer", sa.String(64), nullable=False),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("topic", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("rejected_at", AwareDateTime, nullable=False),
    )

"""Messages stored and received in parts: the outbox names each chunk's whole message, and
consumers keep the parts of a message until it is whole.

Revision ID: 0004_message_parts
Revises: 0003_run_fences
"""

import sqlalchemy as sa
from alembic import op

from infra.db.types import AwareDateTime

revision = "0004_message_parts"
down_revision = "0003_run_fences"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("parent_message_id", sa.String(64), nullable=True))
    op.create_index("ix_outbox_parent_message_id", "outbox", ["parent_message_id"])
    op.create_table(
        "message_parts",
        sa.Column("consumer", sa.String(64), primary_key=True),
        sa.Column("message_id", sa.String(64), primary_key=True),
        sa.Column("parent_message_id", sa.String(64), nullable=False, index=True),
        sa.Column("envelope", sa.Text, nullable=False),
        sa.Column("received_at", AwareDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("message_parts")
    op.drop_index("ix_outbox_parent_message_id", "outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("parent_message_id")

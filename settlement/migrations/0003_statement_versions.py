"""Settlement: corrected facts, statement versions with difference statements, review versions.

Revision ID: 0003_statement_versions
Revises: 0002_ledger_signing
"""

import sqlalchemy as sa
from alembic import op

from infra.db.types import AwareDateTime

revision = "0003_statement_versions"
down_revision = "0002_ledger_signing"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("settlement_days", sa.Column("version", sa.Integer, nullable=False, server_default="1"))
    op.add_column("settlement_reviews", sa.Column("versions", sa.Text, nullable=True))
    op.create_table(
        "settlement_fact_corrections",
        sa.Column("message_id", sa.String(64), primary_key=True),
        sa.Column("park_id", sa.String(64), nullable=False),
        sa.Column("market_day", sa.Date, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("envelope", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("stored_at", AwareDateTime, nullable=False),
        sa.UniqueConstraint("park_id", "market_day", "seq", name="uq_settlement_fact_corrections_seq"),
    )
    op.create_table(
        "settlement_versions",
        sa.Column("park_id", sa.String(64), primary_key=True),
        sa.Column("market_day", sa.Date, primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("rules_version", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_at", AwareDateTime, nullable=False),
        sa.Column("source_message_ids", sa.JSON, nullable=False),
        sa.Column("statements", sa.Text, nullable=False),
        sa.Column("asset_amounts", sa.LargeBinary, nullable=False),
        sa.Column("record", sa.JSON, nullable=False),
        sa.Column("difference", sa.Text, nullable=True),
        sa.Column("booked_month", sa.Date, nullable=True),
    )
    op.create_index("ix_settlement_versions_booked", "settlement_versions", ["park_id", "booked_month"])


def downgrade() -> None:
    op.drop_index("ix_settlement_versions_booked", "settlement_versions")
    op.drop_table("settlement_versions")
    op.drop_table("settlement_fact_corrections")
    op.drop_column("settlement_reviews", "versions")
    op.drop_column("settlement_days", "version")

"""Settlement: versioned tariff tables and recorded green-power trades / certificates.

Revision ID: 0004_tariffs_green_records
Revises: 0003_statement_versions
"""

import sqlalchemy as sa
from alembic import op

from infra.db.types import AwareDateTime

revision = "0004_tariffs_green_records"
down_revision = "0003_statement_versions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "settlement_tariffs",
        sa.Column("park_id", sa.String(64), primary_key=True),
        sa.Column("version", sa.String(64), primary_key=True),
        sa.Column("effective_from", sa.Date, nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("loaded_at", AwareDateTime, nullable=False),
        sa.Column("loaded_by", sa.String(64), nullable=False),
    )
    op.create_table(
        "settlement_green_records",
        sa.Column("record_id", sa.String(128), primary_key=True),
        sa.Column("park_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("account_id", sa.String(128), nullable=False),
        sa.Column("start", AwareDateTime, nullable=False),
        sa.Column("end", AwareDateTime, nullable=False),
        sa.Column("quantity_mwh", sa.Float, nullable=False),
        sa.Column("price_cny_per_mwh", sa.Float, nullable=False),
        sa.Column("counterparty", sa.String(128), nullable=False),
        sa.Column("reference", sa.Text, nullable=False),
        sa.Column("loaded_at", AwareDateTime, nullable=False),
    )
    op.create_index(
        "ix_settlement_green_records_park_start", "settlement_green_records", ["park_id", "start"]
    )


def downgrade() -> None:
    op.drop_index("ix_settlement_green_records_park_start", "settlement_green_records")
    op.drop_table("settlement_green_records")
    op.drop_table("settlement_tariffs")

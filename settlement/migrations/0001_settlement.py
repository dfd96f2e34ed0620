"""Settlement: stored facts, settled days, per-asset amounts, statements, carbon ledger with chain heads, reviews.

Revision ID: 0001_settlement
Revises: 0001_foundation
"""

import sqlalchemy as sa
from alembic import op

from infra.db.types import AwareDateTime

revision = "0001_settlement"
down_revision = "0001_foundation"
branch_labels = ("settlement",)
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "settlement_facts",
        sa.Column("message_id", sa.String(64), primary_key=True),
        sa.Column("park_id", sa.String(64), nullable=False),
        sa.Column("market_day", sa.Date, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("envelope", sa.Text, nullable=False),
        sa.Column("stored_at", AwareDateTime, nullable=False),
        sa.UniqueConstraint("park_id", "market_day", "kind", name="uq_settlement_facts_day_kind"),
    )
    op.create_index(
        "ix_settlement_facts_park_kind_day", "settlement_facts", ["park_id", "kind", "market_day"]
    )
    op.create_table(
        "settlement_days",
        sa.Column("park_id", sa.String(64), primary_key=True),
        sa.Column("market_day", sa.Date, primary_key=True),
        sa.Column("rules_version", sa.String(200), nullable=False),
        sa.Column("source_message_ids", sa.JSON, nullable=False),
        sa.Column("record", sa.JSON, nullable=False),
        sa.Column("settled_at", AwareDateTime, nullable=False),
    )
    op.create_table(
        "settlement_asset_amounts",
        sa.Column("park_id", sa.String(64), primary_key=True),
        sa.Column("market_day", sa.Date, primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "settlement_statements",
        sa.Column("park_id", sa.String(64), primary_key=True),
        sa.Column("market_day", sa.Date, primary_key=True),
        sa.Column("account_id", sa.String(64), primary_key=True),
        sa.Column("message_id", sa.String(64), nullable=False, unique=True),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("total_cny", sa.Float, nullable=False),
        sa.Column("emissions_tco2", sa.Float, nullable=False),
        sa.Column("carbon_adjusted_revenue_cny", sa.Float, nullable=False),
    )
    op.create_table(
        "carbon_ledger",
        sa.Column("park_id", sa.String(64), primary_key=True),
        sa.Column("position", _ID, primary_key=True, autoincrement=False),
        sa.Column("entry_id", sa.String(64), nullable=False, unique=True),
        sa.Column("market_day", sa.Date, nullable=False),
        sa.Column("kind", sa.String(48), nullable=False),
        sa.Column("account_id", sa.String(128), nullable=False),
        sa.Column("entry_key", sa.String(128), nullable=False),
        sa.Column("rule", sa.Text, nullable=False),
        sa.Column("factor_version", sa.String(128), nullable=False),
        sa.Column("factors", sa.Text, nullable=False),
        sa.Column("activity", sa.Text, nullable=False),
        sa.Column("postings", sa.Text, nullable=False),
        sa.Column("memo", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("entry_hash", sa.String(64), nullable=False),
        sa.Column("recorded_at", AwareDateTime, nullable=False),
    )
    op.create_index("ix_carbon_ledger_park_day", "carbon_ledger", ["park_id", "market_day"])
    op.create_table(
        "carbon_ledger_heads",
        sa.Column("park_id", sa.String(64), primary_key=True),
        sa.Column("position", sa.BigInteger, nullable=False),
        sa.Column("entry_hash", sa.String(64), nullable=False),
    )
    op.create_table(
        "settlement_reviews",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("park_id", sa.String(64), nullable=False),
        sa.Column("period", sa.String(8), nullable=False),
        sa.Column("period_start", sa.Date, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("reviewer", sa.String(64), nullable=False),
        sa.Column("recorded_at", AwareDateTime, nullable=False),
    )
    op.create_index(
        "ix_settlement_reviews_period", "settlement_reviews", ["park_id", "period", "period_start"]
    )


def downgrade() -> None:
    for name in (
        "settlement_reviews",
        "carbon_ledger_heads",
        "carbon_ledger",
        "settlement_statements",
        "settlement_asset_amounts",
        "settlement_days",
        "settlement_facts",
    ):
        op.drop_table(name)

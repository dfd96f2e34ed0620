"""Aggregator: offers with the forecast they were built on, dispatches with their award and state.

Revision ID: a001_aggregator
Revises: 0001_foundation
"""

import sqlalchemy as sa
from alembic import op

from infra.db.types import AwareDateTime

revision = "a001_aggregator"
down_revision = "0001_foundation"
branch_labels = ("aggregator",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "aggregator_offers",
        sa.Column("offer_message_id", sa.String(64), primary_key=True),
        sa.Column("park_id", sa.String(64), nullable=False),
        sa.Column("market_day", sa.Date, nullable=False),
        sa.Column("market", sa.String(16), nullable=False),
        sa.Column("forecast_message_id", sa.String(64), nullable=False),
        sa.Column("scenario_version", sa.String(128), nullable=False),
        sa.Column("carbon_price_cny_per_tco2", sa.Float, nullable=False),
        sa.Column("forecast_envelope", sa.Text, nullable=False),
        sa.Column("summary", sa.JSON, nullable=False),
        sa.Column("created_at", AwareDateTime, nullable=False),
        sa.UniqueConstraint("park_id", "market_day", "market", name="uq_aggregator_offers_park_day_market"),
    )
    op.create_table(
        "aggregator_dispatches",
        sa.Column("dispatch_message_id", sa.String(64), primary_key=True),
        sa.Column("park_id", sa.String(64), nullable=False),
        sa.Column("market_day", sa.Date, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("from_interval", AwareDateTime, nullable=True),
        sa.Column("award_message_id", sa.String(64), nullable=False),
        sa.Column("award_envelope", sa.Text, nullable=False),
        sa.Column("state", sa.JSON, nullable=False),
        sa.Column("created_at", AwareDateTime, nullable=False),
    )
    op.create_index(
        "ix_aggregator_dispatches_park_day", "aggregator_dispatches", ["park_id", "market_day", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_aggregator_dispatches_park_day", "aggregator_dispatches")
    op.drop_table("aggregator_dispatches")
    op.drop_table("aggregator_offers")

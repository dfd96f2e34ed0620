"""Aggregator: the forecast each dispatch was planned with, so a real-time award can be followed.

Revision ID: a002_dispatch_forecast
Revises: a001_aggregator
"""

import sqlalchemy as sa
from alembic import op

revision = "a002_dispatch_forecast"
down_revision = "a001_aggregator"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("aggregator_dispatches", sa.Column("forecast_envelope", sa.Text, nullable=True))


def downgrade() -> None:
    op.drop_column("aggregator_dispatches", "forecast_envelope")

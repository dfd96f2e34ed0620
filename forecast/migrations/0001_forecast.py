"""Forecast service: cached model selections, issued forecasts and their series.

Revision ID: f0001_forecast
Revises: 0001_foundation
"""

import sqlalchemy as sa
from alembic import op

from infra.db.types import AwareDateTime

revision = "f0001_forecast"
down_revision = "0001_foundation"
branch_labels = ("forecast",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "forecast_models",
        sa.Column("park_id", sa.String(64), primary_key=True),
        sa.Column("scenario_version", sa.String(128), primary_key=True),
        sa.Column("horizon", sa.String(16), primary_key=True),
        sa.Column("selected_as_of", AwareDateTime, primary_key=True),
        sa.Column("series_id", sa.String(128), primary_key=True),
        sa.Column("model", sa.String(32), nullable=False),
        sa.Column("model_version", sa.String(128), nullable=False),
        sa.Column("fitted", sa.LargeBinary, nullable=True),
        sa.Column("calibration", sa.JSON, nullable=False),
        sa.Column("backtest", sa.JSON, nullable=False),
        sa.Column("created_at", AwareDateTime, nullable=False),
    )
    op.create_table(
        "forecast_issues",
        sa.Column("message_id", sa.String(64), primary_key=True),
        sa.Column("park_id", sa.String(64), nullable=False),
        sa.Column("market_day", sa.Date, nullable=False),
        sa.Column("horizon", sa.String(16), nullable=False),
        sa.Column("issued_at", AwareDateTime, nullable=False),
        sa.Column("data_cutoff", AwareDateTime, nullable=False),
        sa.Column("scenario_version", sa.String(128), nullable=False),
        sa.Column("selected_as_of", AwareDateTime, nullable=False),
        sa.Column("series_count", sa.Integer, nullable=False),
        sa.Column("failures", sa.JSON, nullable=False),
        sa.Column("created_at", AwareDateTime, nullable=False),
    )
    op.create_index("ix_forecast_issues_park_day", "forecast_issues", ["park_id", "market_day", "horizon"])
    op.create_table(
        "forecast_series",
        sa.Column("message_id", sa.String(64), primary_key=True),
        sa.Column("series_id", sa.String(128), primary_key=True),
        sa.Column("asset_id", sa.String(64), nullable=True),
        sa.Column("model", sa.String(32), nullable=False),
        sa.Column("model_version", sa.String(128), nullable=False),
        sa.Column("hygiene", sa.JSON, nullable=False),
        sa.Column("note", sa.Text, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("forecast_series")
    op.drop_index("ix_forecast_issues_park_day", "forecast_issues")
    op.drop_table("forecast_issues")
    op.drop_table("forecast_models")

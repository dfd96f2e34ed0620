"""Data plane: the time-series store, the asset registry, enrolments and the audit log.

Revision ID: 0002_data_plane
Revises: 0001_foundation
"""

import sqlalchemy as sa
from alembic import op

from infra.db.types import AwareDateTime

revision = "0002_data_plane"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "ts_series",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("park_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("unit", sa.String(32), nullable=False),
        sa.Column("interval_minutes", sa.Integer, nullable=False),
        sa.Column("created_at", AwareDateTime, nullable=False),
        sa.UniqueConstraint("park_id", "name", name="uq_ts_series_park_name"),
    )
    op.create_table(
        "ts_days",
        sa.Column("series_id", _ID, primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("vals", sa.LargeBinary, nullable=False),
        sa.Column("quality", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "ts_revisions",
        sa.Column("series_id", _ID, primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("vals", sa.LargeBinary, nullable=False),
        sa.Column("quality", sa.LargeBinary, nullable=False),
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("ingested_at", AwareDateTime, nullable=False),
    )
    op.create_table(
        "registry_parks",
        sa.Column("park_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("market_id", sa.String(64), nullable=False),
        sa.Column("template", sa.String(300), nullable=False),
        sa.Column("template_version", sa.String(64), nullable=False),
        sa.Column("template_sha256", sa.String(64), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", AwareDateTime, nullable=False),
    )
    op.create_table(
        "registry_entries",
        sa.Column("seq", _ID, primary_key=True, autoincrement=True),
        sa.Column("park_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("entity_id", sa.String(64), nullable=False),
        sa.Column("effective_from", sa.Date, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("changed_by", sa.String(64), nullable=False),
        sa.Column("changed_at", AwareDateTime, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_index("ix_registry_entries_park_day", "registry_entries", ["park_id", "effective_from"])
    op.create_table(
        "enrolments",
        sa.Column("request_id", sa.String(32), primary_key=True),
        sa.Column("park_id", sa.String(64), nullable=False),
        sa.Column("asset_id", sa.String(64), nullable=False),
        sa.Column("enterprise_id", sa.String(64), nullable=False),
        sa.Column("asset_type", sa.String(32), nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("submitted_by", sa.String(64), nullable=False),
        sa.Column("submitted_at", AwareDateTime, nullable=False),
        sa.Column("decided_by", sa.String(64), nullable=True),
        sa.Column("decided_at", AwareDateTime, nullable=True),
        sa.Column("active_from", sa.Date, nullable=True),
        sa.Column("ended_from", sa.Date, nullable=True),
        sa.Column("note", sa.Text, nullable=True),
    )
    op.create_index("ix_enrolments_park_state", "enrolments", ["park_id", "state"])
    op.create_table(
        "audit_log",
        sa.Column("seq", _ID, primary_key=True, autoincrement=True),
        sa.Column("at", AwareDateTime, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("park_id", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("before", sa.Text, nullable=True),
        sa.Column("after", sa.Text, nullable=True),
    )


def downgrade() -> None:
    for table in (
        "audit_log",
        "enrolments",
        "registry_entries",
        "registry_parks",
        "ts_revisions",
        "ts_days",
        "ts_series",
    ):
        op.drop_table(table)

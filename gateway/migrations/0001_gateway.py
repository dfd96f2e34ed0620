"""Gateway: users, refresh tokens, revoked access tokens, signing secret.

Revision ID: 0001_gateway
Revises: 0001_foundation
"""

import sqlalchemy as sa
from alembic import op

from infra.db.types import AwareDateTime

revision = "0001_gateway"
down_revision = "0001_foundation"
branch_labels = ("gateway",)
depends_on = "0002_data_plane"  # writes to the shared audit_log


def upgrade() -> None:
    op.create_table(
        "gateway_users",
        sa.Column("username", sa.String(64), primary_key=True),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("park_id", sa.String(64), nullable=True),
        sa.Column("enterprise_id", sa.String(64), nullable=True),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", AwareDateTime, nullable=False),
    )
    op.create_table(
        "gateway_refresh_tokens",
        sa.Column("token_sha256", sa.String(64), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, index=True),
        sa.Column("issued_at", AwareDateTime, nullable=False),
        sa.Column("expires_at", AwareDateTime, nullable=False),
        sa.Column("revoked_at", AwareDateTime, nullable=True),
    )
    op.create_table(
        "gateway_revoked_tokens",
        sa.Column("jti", sa.String(64), primary_key=True),
        sa.Column("expires_at", AwareDateTime, nullable=False),
    )
    op.create_table(
        "gateway_secrets",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for name in ("gateway_secrets", "gateway_revoked_tokens", "gateway_refresh_tokens", "gateway_users"):
        op.drop_table(name)

"""Fencing tokens for run leases.

Revision ID: 0003_run_fences
Revises: 0002_data_plane
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_run_fences"
down_revision = "0002_data_plane"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_fences",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("fence", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("run_fences")

"""Settlement: Ed25519 signatures on ledger entries and chain heads (key kept outside the database).

Revision ID: 0002_ledger_signing
Revises: 0001_settlement
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_ledger_signing"
down_revision = "0001_settlement"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("carbon_ledger", sa.Column("signature", sa.Text, nullable=True))
    op.add_column("carbon_ledger_heads", sa.Column("signature", sa.Text, nullable=True))


def downgrade() -> None:
    op.drop_column("carbon_ledger_heads", "signature")
    op.drop_column("carbon_ledger", "signature")

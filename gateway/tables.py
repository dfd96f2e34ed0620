"""The gateway's own tables: users, refresh tokens, revoked access tokens and its signing secret.

Business data stays in the services' tables; the gateway only stores who may sign in. Every
change to these tables is also written to the shared append-only ``audit_log``.
"""

from sqlalchemy import Boolean, Column, String, Table, Text

from infra.db.engine import metadata
from infra.db.types import AwareDateTime

gateway_users = Table(
    "gateway_users",
    metadata,
    Column("username", String(64), primary_key=True),
    Column("password_hash", Text, nullable=False),
    Column("role", String(16), nullable=False),  # admin | operator | trader | enterprise | auditor
    Column("park_id", String(64), nullable=True),  # None: every park
    Column("enterprise_id", String(64), nullable=True),  # the tenant of an enterprise user
    Column("display_name", String(200), nullable=False),
    Column("disabled", Boolean, nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("created_at", AwareDateTime, nullable=False),
)

# Refresh tokens are stored as their SHA-256 only; a used token is rotated (revoked, replaced).
gateway_refresh_tokens = Table(
    "gateway_refresh_tokens",
    metadata,
    Column("token_sha256", String(64), primary_key=True),
    Column("username", String(64), nullable=False, index=True),
    Column("issued_at", AwareDateTime, nullable=False),
    Column("expires_at", AwareDateTime, nullable=False),
    Column("revoked_at", AwareDateTime, nullable=True),
)

# Access tokens ended by logout before they expire (kept until their expiry).
gateway_revoked_tokens = Table(
    "gateway_revoked_tokens",
    metadata,
    Column("jti", String(64), primary_key=True),
    Column("expires_at", AwareDateTime, nullable=False),
)

gateway_secrets = Table(
    "gateway_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

"""Registry tables: parks, their assets and enterprises by effective market day, enrolments, audit.

``registry_entries`` is append-only: a change to a park's settings, an enterprise or an
asset is a new row effective from a market day, so the portfolio of any day can be rebuilt
and a change never rewrites a day already settled. ``audit_log`` records who changed what.
"""

from sqlalchemy import BigInteger, Column, Date, Integer, String, Table, Text

from infra.db.engine import metadata
from infra.db.types import AwareDateTime

_ID = BigInteger().with_variant(Integer, "sqlite")

registry_parks = Table(
    "registry_parks",
    metadata,
    Column("park_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("market_id", String(64), nullable=False),
    Column("template", String(300), nullable=False),
    Column("template_version", String(64), nullable=False),
    Column("template_sha256", String(64), nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("created_at", AwareDateTime, nullable=False),
)

registry_entries = Table(
    "registry_entries",
    metadata,
    Column("seq", _ID, primary_key=True, autoincrement=True),
    Column("park_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # park | enterprise | asset
    Column("entity_id", String(64), nullable=False),
    Column("effective_from", Date, nullable=False),
    Column("status", String(16), nullable=False),  # active | suspended | withdrawn
    Column("spec", Text, nullable=False),  # canonical JSON of the entity
    Column("changed_by", String(64), nullable=False),
    Column("changed_at", AwareDateTime, nullable=False),
    Column("reason", Text, nullable=False),
)

enrolments = Table(
    "enrolments",
    metadata,
    Column("request_id", String(32), primary_key=True),
    Column("park_id", String(64), nullable=False),
    Column("asset_id", String(64), nullable=False),
    Column("enterprise_id", String(64), nullable=False),
    Column("asset_type", String(32), nullable=False),
    Column("spec", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("submitted_by", String(64), nullable=False),
    Column("submitted_at", AwareDateTime, nullable=False),
    Column("decided_by", String(64), nullable=True),
    Column("decided_at", AwareDateTime, nullable=True),
    Column("active_from", Date, nullable=True),
    Column("ended_from", Date, nullable=True),
    Column("note", Text, nullable=True),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", _ID, primary_key=True, autoincrement=True),
    Column("at", AwareDateTime, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("action", String(64), nullable=False),
    Column("park_id", String(64), nullable=False),
    Column("subject", String(128), nullable=False),
    Column("before", Text, nullable=True),
    Column("after", Text, nullable=True),
)

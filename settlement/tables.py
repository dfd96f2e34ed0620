"""Settlement's tables: stored input facts, settled days, statements, the carbon ledger, reviews."""

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Date,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from infra.db.engine import metadata
from infra.db.types import AwareDateTime

# Awards and metering as they arrived (the facts a day is settled and replayed from).
settlement_facts = Table(
    "settlement_facts",
    metadata,
    Column("message_id", String(64), primary_key=True),
    Column("park_id", String(64), nullable=False),
    Column("market_day", Date, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("envelope", Text, nullable=False),
    Column("stored_at", AwareDateTime, nullable=False),
    UniqueConstraint("park_id", "market_day", "kind", name="uq_settlement_facts_day_kind"),
    Index("ix_settlement_facts_park_kind_day", "park_id", "kind", "market_day"),
)

# One row per settled park-day: what it was settled with (baseline days, notes, asset detail).
settlement_days = Table(
    "settlement_days",
    metadata,
    Column("park_id", String(64), primary_key=True),
    Column("market_day", Date, primary_key=True),
    Column("rules_version", String(200), nullable=False),
    Column("source_message_ids", JSON, nullable=False),
    Column("record", JSON, nullable=False),
    Column("settled_at", AwareDateTime, nullable=False),
    # The statement version the current tables hold (1, or later after a correction).
    Column("version", Integer, nullable=False, server_default="1"),
)

# Per-asset, per-interval amounts of a settled day (whole fen), as one compressed npz blob:
# ``asset_ids`` and one (assets, intervals) int64 array per item. Exact and compact at 10,000 meters.
settlement_asset_amounts = Table(
    "settlement_asset_amounts",
    metadata,
    Column("park_id", String(64), primary_key=True),
    Column("market_day", Date, primary_key=True),
    Column("data", LargeBinary, nullable=False),
)

settlement_statements = Table(
    "settlement_statements",
    metadata,
    Column("park_id", String(64), primary_key=True),
    Column("market_day", Date, primary_key=True),
    Column("account_id", String(64), primary_key=True),
    Column("message_id", String(64), nullable=False, unique=True),
    Column("payload", Text, nullable=False),
    Column("total_cny", Float, nullable=False),
    Column("emissions_tco2", Float, nullable=False),
    Column("carbon_adjusted_revenue_cny", Float, nullable=False),
)

# Append-only, hash-chained per park. Entries are never updated; corrections are new entries.
carbon_ledger = Table(
    "carbon_ledger",
    metadata,
    Column("park_id", String(64), primary_key=True),
    Column("position", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False),
    Column("entry_id", String(64), nullable=False, unique=True),
    Column("market_day", Date, nullable=False),
    Column("kind", String(48), nullable=False),
    Column("account_id", String(128), nullable=False),
    Column("entry_key", String(128), nullable=False),
    Column("rule", Text, nullable=False),
    Column("factor_version", String(128), nullable=False),
    Column("factors", Text, nullable=False),
    Column("activity", Text, nullable=False),
    Column("postings", Text, nullable=False),
    Column("memo", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("entry_hash", String(64), nullable=False),
    Column("recorded_at", AwareDateTime, nullable=False),
    # Ed25519 over (park, position, entry_hash) with a key kept outside the database.
    Column("signature", Text, nullable=True),
    Index("ix_carbon_ledger_park_day", "park_id", "market_day"),
)

# The last position and hash of each park's chain: reveals entries cut off the end.
carbon_ledger_heads = Table(
    "carbon_ledger_heads",
    metadata,
    Column("park_id", String(64), primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("entry_hash", String(64), nullable=False),
    Column("signature", Text, nullable=True),
)

# Operator review events; the latest per period is its state (draft when none).
settlement_reviews = Table(
    "settlement_reviews",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("park_id", String(64), nullable=False),
    Column("period", String(8), nullable=False),
    Column("period_start", Date, nullable=False),
    Column("state", String(16), nullable=False),
    Column("comment", Text, nullable=False),
    Column("reviewer", String(64), nullable=False),
    Column("recorded_at", AwareDateTime, nullable=False),
    # On approval: the statement version of every day approved ({"2026-07-15": 1, ...}).
    Column("versions", Text, nullable=True),
    Index("ix_settlement_reviews_period", "park_id", "period", "period_start"),
)

# Corrected awards and metering of a park-day, kept beside the original fact (never replacing it).
settlement_fact_corrections = Table(
    "settlement_fact_corrections",
    metadata,
    Column("message_id", String(64), primary_key=True),
    Column("park_id", String(64), nullable=False),
    Column("market_day", Date, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("envelope", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("stored_at", AwareDateTime, nullable=False),
    UniqueConstraint("park_id", "market_day", "seq", name="uq_settlement_fact_corrections_seq"),
)

# Every version of a corrected day (version 1 archived when the first correction arrives).
settlement_versions = Table(
    "settlement_versions",
    metadata,
    Column("park_id", String(64), primary_key=True),
    Column("market_day", Date, primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("rules_version", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_at", AwareDateTime, nullable=False),
    Column("source_message_ids", JSON, nullable=False),
    Column("statements", Text, nullable=False),
    Column("asset_amounts", LargeBinary, nullable=False),
    Column("record", JSON, nullable=False),
    Column("difference", Text, nullable=True),
    # Set when the day was approved: the month the difference is booked in as an adjustment.
    Column("booked_month", Date, nullable=True),
    Index("ix_settlement_versions_booked", "park_id", "booked_month"),
)

# Tariff tables per park and version (TOU periods, basic charges, profit-share terms), see tariffs.py.
settlement_tariffs = Table(
    "settlement_tariffs",
    metadata,
    Column("park_id", String(64), primary_key=True),
    Column("version", String(64), primary_key=True),
    Column("effective_from", Date, nullable=False),
    Column("spec", Text, nullable=False),
    Column("loaded_at", AwareDateTime, nullable=False),
    Column("loaded_by", String(64), nullable=False),
)

# Green-power trade confirmations and certificate (GEC) purchases, transfers and cancellations
# as they were recorded (see certificates.py for the allocation rule).
settlement_green_records = Table(
    "settlement_green_records",
    metadata,
    Column("record_id", String(128), primary_key=True),
    Column("park_id", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("account_id", String(128), nullable=False),
    Column("start", AwareDateTime, nullable=False),
    Column("end", AwareDateTime, nullable=False),
    Column("quantity_mwh", Float, nullable=False),
    Column("price_cny_per_mwh", Float, nullable=False),
    Column("counterparty", String(128), nullable=False),
    Column("reference", Text, nullable=False),
    Column("loaded_at", AwareDateTime, nullable=False),
    Index("ix_settlement_green_records_park_start", "park_id", "start"),
)

"""Time-series tables: a series catalogue and one row per series and market day.

A day's values are stored together as a little-endian float64 array (NaN = no reading) with
a uint8 quality array beside it, so a year of 15-minute data for one series is 365 rows, not
35,040. ``ts_days`` holds the current version of each day (what reads return);
``ts_revisions`` keeps every version ever stored, so a correction never overwrites silently
and a read "as known at" a past time is possible.
"""

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    Integer,
    LargeBinary,
    String,
    Table,
    UniqueConstraint,
)

from infra.db.engine import metadata
from infra.db.types import AwareDateTime

_ID = BigInteger().with_variant(Integer, "sqlite")

ts_series = Table(
    "ts_series",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("park_id", String(64), nullable=False),
    Column("name", String(128), nullable=False),
    Column("unit", String(32), nullable=False),
    Column("interval_minutes", Integer, nullable=False),
    Column("created_at", AwareDateTime, nullable=False),
    UniqueConstraint("park_id", "name", name="uq_ts_series_park_name"),
)

ts_days = Table(
    "ts_days",
    metadata,
    Column("series_id", _ID, primary_key=True),
    Column("day", Date, primary_key=True),
    Column("version", Integer, nullable=False),
    Column("vals", LargeBinary, nullable=False),
    Column("quality", LargeBinary, nullable=False),
)

ts_revisions = Table(
    "ts_revisions",
    metadata,
    Column("series_id", _ID, primary_key=True),
    Column("day", Date, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("vals", LargeBinary, nullable=False),
    Column("quality", LargeBinary, nullable=False),
    Column("source", String(128), nullable=False),
    Column("ingested_at", AwareDateTime, nullable=False),
)

"""The aggregator's own tables: what it needs to disaggregate an award and resume intraday."""

from sqlalchemy import JSON, Column, Date, Float, String, Table, Text, UniqueConstraint

from infra.db.engine import metadata
from infra.db.types import AwareDateTime

# One row per offer published: the forecast it was built on is kept whole, because the award
# that comes back is split into set-points against the same forecast.
aggregator_offers = Table(
    "aggregator_offers",
    metadata,
    Column("offer_message_id", String(64), primary_key=True),
    Column("park_id", String(64), nullable=False),
    Column("market_day", Date, nullable=False),
    Column("market", String(16), nullable=False),
    Column("forecast_message_id", String(64), nullable=False),
    Column("scenario_version", String(128), nullable=False),
    Column("carbon_price_cny_per_tco2", Float, nullable=False),
    Column("forecast_envelope", Text, nullable=False),
    Column("summary", JSON, nullable=False),
    Column("created_at", AwareDateTime, nullable=False),
    UniqueConstraint("park_id", "market_day", "market", name="uq_aggregator_offers_park_day_market"),
)

# One row per dispatch published (day-ahead, each intraday re-optimisation, each real-time award
# followed), with the award position it delivers (on the day-ahead grid; ``award_message_id`` names
# the stored award it answers), the storage levels the solve started the day with and the intraday
# forecast it was planned with (None: the day-ahead offer's), so the next step can resume.
aggregator_dispatches = Table(
    "aggregator_dispatches",
    metadata,
    Column("dispatch_message_id", String(64), primary_key=True),
    Column("park_id", String(64), nullable=False),
    Column("market_day", Date, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("from_interval", AwareDateTime, nullable=True),
    Column("award_message_id", String(64), nullable=False),
    Column("award_envelope", Text, nullable=False),
    Column("state", JSON, nullable=False),
    Column("created_at", AwareDateTime, nullable=False),
    Column("forecast_envelope", Text, nullable=True),
)

"""The forecast service's tables: cached models, issued forecasts and their series.

``forecast_models`` caches each selection (fitted model, calibration, backtest metrics) for a
park, scenario version, horizon and selection time, so issues reuse it until the next
selection. ``forecast_issues`` and ``forecast_series`` keep every issued forecast with its
issue time, data cut-off, and per series the model, version and data-hygiene flags, so any
past bid can be explained by the forecast it used (``Offer.forecast_message_id``).
"""

from sqlalchemy import JSON, Column, Date, Integer, LargeBinary, String, Table, Text

from infra.db.engine import metadata
from infra.db.types import AwareDateTime

forecast_models = Table(
    "forecast_models",
    metadata,
    Column("park_id", String(64), primary_key=True),
    Column("scenario_version", String(128), primary_key=True),
    Column("horizon", String(16), primary_key=True),
    Column("selected_as_of", AwareDateTime, primary_key=True),
    Column("series_id", String(128), primary_key=True),
    Column("model", String(32), nullable=False),
    Column("model_version", String(128), nullable=False),
    Column("fitted", LargeBinary, nullable=True),
    Column("calibration", JSON, nullable=False),
    Column("backtest", JSON, nullable=False),
    Column("created_at", AwareDateTime, nullable=False),
)

forecast_issues = Table(
    "forecast_issues",
    metadata,
    Column("message_id", String(64), primary_key=True),
    Column("park_id", String(64), nullable=False),
    Column("market_day", Date, nullable=False),
    Column("horizon", String(16), nullable=False),
    Column("issued_at", AwareDateTime, nullable=False),
    Column("data_cutoff", AwareDateTime, nullable=False),
    Column("scenario_version", String(128), nullable=False),
    Column("selected_as_of", AwareDateTime, nullable=False),
    Column("series_count", Integer, nullable=False),
    Column("failures", JSON, nullable=False),
    Column("created_at", AwareDateTime, nullable=False),
)

forecast_series = Table(
    "forecast_series",
    metadata,
    Column("message_id", String(64), primary_key=True),
    Column("series_id", String(128), primary_key=True),
    Column("asset_id", String(64), nullable=True),
    Column("model", String(32), nullable=False),
    Column("model_version", String(128), nullable=False),
    Column("hygiene", JSON, nullable=False),
    Column("note", Text, nullable=True),
)

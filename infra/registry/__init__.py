"""The asset registry: parks, enterprises and assets by effective market day, and enrolment.

Services read a day's portfolio with :func:`portfolio`; scenario YAML files are templates
entered once (:func:`load_template`, or on first use).
"""

from datetime import date

from infra.registry.portfolio import RegistryError, ensure_park, load_template, portfolio
from infra.scenario.model import Scenario

__all__ = ["RegistryError", "ensure_park", "load_template", "open_portfolio", "portfolio"]


def open_portfolio(database_url: str, park_id: str, day: date) -> Scenario:
    """For commands: the portfolio of ``day`` from the database at ``database_url`` (migrated first)."""
    from infra.db import make_engine, migrate

    migrate(database_url)
    return portfolio(make_engine(database_url), park_id, day)

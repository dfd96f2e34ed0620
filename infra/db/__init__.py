"""Database access on SQLite (default) or PostgreSQL with SQLAlchemy Core.

Each service declares its tables on :data:`metadata` in its own ``tables`` module and its
schema changes as an Alembic branch in its own ``migrations`` folder; :func:`migrate`
upgrades every branch to its head.
"""

from infra.db.engine import connect, insert_ignore, make_engine, metadata
from infra.db.migrate import migrate

__all__ = ["connect", "insert_ignore", "make_engine", "metadata", "migrate"]

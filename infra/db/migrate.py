"""Alembic, configured in code: one branch per service, all upgraded to their heads."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from infra.db.engine import make_engine
from infra.filelock import file_lock

log = logging.getLogger(__name__)

# Packages that may own a ``migrations`` folder; each holds an Alembic branch.
SCHEMA_OWNERS = ("infra.db", "forecast", "aggregator", "bidding", "settlement", "gateway")


def _version_locations() -> list[str]:
    locations = []
    for owner in SCHEMA_OWNERS:
        spec = importlib.util.find_spec(owner)
        if spec is None or not spec.submodule_search_locations:
            continue
        folder = Path(next(iter(spec.submodule_search_locations))) / "migrations"
        if owner == "infra.db":
            folder = folder / "versions"
        if folder.is_dir():
            locations.append(str(folder))
    return locations


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.set_main_option("version_locations", " ".join(_version_locations()))
    cfg.set_main_option("path_separator", "space")
    cfg.attributes["url"] = url
    return cfg


MIGRATION_LOCK_KEY = 7_346_112_001  # PostgreSQL advisory lock id held while a schema is upgraded


def migrate(url: str) -> None:
    """Bring the database at ``url`` to the newest schema of every service (idempotent).

    Upgrades run under a lock of their own (a transaction-scoped PostgreSQL advisory lock, or
    a file lock beside the SQLite database), so processes starting at once on a fresh database
    take turns: the first creates the schema, the others find it current."""
    cfg = alembic_config(url)
    if url.startswith("sqlite"):
        path = Path(url.split("///", 1)[-1])
        path.parent.mkdir(parents=True, exist_ok=True)
        guard = file_lock(path.with_name(path.name + ".migrate.lock"))
    else:
        guard = contextlib.nullcontext()
    with guard, make_engine(url).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "heads")

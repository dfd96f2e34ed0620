"""Alembic, configured in code: one branch per service, all upgraded to their heads."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from alembic import command
from alembic.config import Config

from infra.db.engine import make_engine

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


def migrate(url: str) -> None:
    """Bring the database at ``url`` to the newest schema of every service (idempotent)."""
    cfg = alembic_config(url)
    with make_engine(url).begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "heads")

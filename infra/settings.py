"""Runtime settings from ``PARKVPP_*`` environment variables.

Every setting has a default that needs no setup: the database is a SQLite file under the
run directory, and Kafka and Redis are embedded child processes when no URL is given.
README.md lists each variable; keep the two in step.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

ENV_PREFIX = "PARKVPP_"


class SettingsError(ValueError):
    """A ``PARKVPP_*`` variable holds a value the system cannot use."""


def _env(name: str) -> str | None:
    value = os.environ.get(ENV_PREFIX + name)
    return value if value not in (None, "") else None


def _parse_date(name: str, raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise SettingsError(f"{ENV_PREFIX}{name}={raw!r}: expected a date like 2026-07-15") from exc


def _parse_positive_int(name: str, raw: str) -> int:
    if not raw.isdigit() or int(raw) <= 0:
        raise SettingsError(f"{ENV_PREFIX}{name}={raw!r}: expected a positive whole number")
    return int(raw)


@dataclass(frozen=True)
class Settings:
    """Resolved configuration for one process."""

    run_dir: Path = Path("runs")
    database_url: str | None = None
    kafka_bootstrap: str | None = None
    redis_url: str | None = None
    default_day: date = date(2026, 7, 15)
    solver: str = "ECOS"
    ray_num_cpus: int | None = None
    log_level: str = "INFO"
    scenario_dirs: tuple[Path, ...] = field(default_factory=tuple)
    outage_budget_s: float = 10.0
    # Per-asset messages (dispatch, metering) are split into chunks of at most this many bytes,
    # well under Kafka's usual 1 MiB message limit (infra/chunks.py).
    message_chunk_bytes: int = 512 * 1024
    # Partitions of the chunked topics (vpp.dispatch, vpp.metering); every other topic has one.
    kafka_partitions: int = 4

    @classmethod
    def from_env(cls) -> Settings:
        defaults = cls()
        raw_day = _env("DEFAULT_DAY")
        raw_cpus = _env("RAY_NUM_CPUS")
        raw_dirs = _env("SCENARIO_DIRS")
        raw_budget = _env("OUTAGE_BUDGET_S")
        raw_chunk = _env("MESSAGE_CHUNK_BYTES")
        raw_partitions = _env("KAFKA_PARTITIONS")
        return cls(
            run_dir=Path(_env("RUN_DIR") or defaults.run_dir),
            database_url=_env("DATABASE_URL"),
            kafka_bootstrap=_env("KAFKA_BOOTSTRAP"),
            redis_url=_env("REDIS_URL"),
            default_day=_parse_date("DEFAULT_DAY", raw_day) if raw_day else defaults.default_day,
            solver=(_env("SOLVER") or defaults.solver).upper(),
            ray_num_cpus=_parse_positive_int("RAY_NUM_CPUS", raw_cpus) if raw_cpus else None,
            log_level=(_env("LOG_LEVEL") or defaults.log_level).upper(),
            scenario_dirs=tuple(Path(p) for p in raw_dirs.split(os.pathsep)) if raw_dirs else (),
            outage_budget_s=float(_parse_positive_int("OUTAGE_BUDGET_S", raw_budget)) if raw_budget else 10.0,
            message_chunk_bytes=_parse_positive_int("MESSAGE_CHUNK_BYTES", raw_chunk)
            if raw_chunk
            else defaults.message_chunk_bytes,
            kafka_partitions=_parse_positive_int("KAFKA_PARTITIONS", raw_partitions)
            if raw_partitions
            else defaults.kafka_partitions,
        )

    @property
    def resolved_database_url(self) -> str:
        """The configured database, or the default SQLite file under the run directory."""
        return self.database_url or f"sqlite:///{(self.run_dir / 'parkvpp.sqlite').resolve()}"

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)


def get_settings() -> Settings:
    """Settings read fresh from the environment (cheap; no caching so tests can change env)."""
    return Settings.from_env()

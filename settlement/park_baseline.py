"""A park's demand-response baselines from its stored data, in blocks of assets.

Every meter chooses its own days (:mod:`settlement.baseline`), so the asset meters can be
computed block by block: one enterprise's meters, or several small enterprises together, up
to ``BLOCK_ASSETS`` meters. A block reads only its own assets' history, which bounds memory
(45 look-back days of 100,000 meters would be 3.5 GB at once) and lets the blocks run as
parallel Ray tasks (``workers``; :func:`infra.parallel.map_chunks`). The park's grid meter is
computed with the first block. The result is the same whatever the blocks or workers.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Connection

from infra.db import make_engine
from infra.parallel import map_chunks
from infra.scenario.model import Scenario
from settlement import baseline as bl
from settlement import store

BLOCK_ASSETS = 2000  # meters per block: about 70 MB of look-back history at 15 minutes


def baseline_profiles(
    conn: Connection, scenario: Scenario, days: list[date], interval_minutes: int
) -> dict[date, bl.DayProfile]:
    """Stored metering where this service has it; the recorded history for days before it.

    Days with some stored fact but no metering are missing (the history is not what happened
    on a day the system was running).
    """
    if not days:
        return {}
    start, end = min(days), max(days) + timedelta(days=1)
    profiles = store.metering_profiles(conn, scenario, start, end, interval_minutes)
    known = store.fact_days(conn, scenario.id, start, end)
    history_days = [d for d in days if d not in profiles and d not in known]
    profiles.update(bl.history_profiles(conn, scenario, history_days, interval_minutes))
    return profiles


def recorded_profiles(
    conn: Connection, scenario: Scenario, sources: dict[str, str], interval_minutes: int
) -> dict[date, bl.DayProfile]:
    """The baseline days of a settled day, each from the source it was taken from then."""
    metering = sorted(date.fromisoformat(d) for d, src in sources.items() if src == "metering")
    history = sorted(date.fromisoformat(d) for d, src in sources.items() if src == "history")
    profiles: dict[date, bl.DayProfile] = {}
    if metering:
        stored = store.metering_profiles(
            conn, scenario, metering[0], metering[-1] + timedelta(days=1), interval_minutes
        )
        profiles.update({d: stored[d] for d in metering if d in stored})
    profiles.update(bl.history_profiles(conn, scenario, history, interval_minutes))
    return profiles


def asset_blocks(scenario: Scenario, size: int = BLOCK_ASSETS) -> list[tuple[int, ...]]:
    """Asset indices grouped by enterprise (in the park's order), small enterprises together,
    a large one split: every block at most ``size`` meters."""
    by_enterprise: dict[str, list[int]] = {}
    for i, asset in enumerate(scenario.park.assets):
        by_enterprise.setdefault(asset.enterprise, []).append(i)
    blocks: list[list[int]] = [[]]
    for members in by_enterprise.values():
        for start in range(0, len(members), size):
            part = members[start : start + size]
            if len(blocks[-1]) + len(part) > size:
                blocks.append([])
            blocks[-1].extend(part)
    return [tuple(b) for b in blocks if b]


@dataclass(frozen=True)
class Block:
    """One block's meters: the park with only its assets, and (replay) their recorded days."""

    scenario: Scenario
    provenance: dict[str, Any] | None = None


@dataclass(frozen=True)
class BaselineJob:
    """What every block shares: the park-day."""

    day: date
    interval_minutes: int
    n_intervals: int
    holidays: bl.RestDays
    database_url: str | None = None  # set when blocks run in other processes


def block_baseline(block: Block, job: BaselineJob, conn: Connection | None = None) -> bl.Baseline:
    """The baselines of one block's meters (and the grid meter), from ``conn`` or a connection
    of its own to ``job.database_url``."""
    if conn is None:
        engine = make_engine(job.database_url or "")
        try:
            with engine.connect() as own:
                return block_baseline(block, job, own)
        finally:
            engine.dispose()
    scenario = block.scenario
    shape = (len(scenario.park.assets), job.n_intervals)
    if block.provenance is None:
        lo, hi = bl.window(job.day)
        days = [lo + timedelta(days=i) for i in range((hi - lo).days)]
        profiles = baseline_profiles(conn, scenario, days, job.interval_minutes)
        n_days = scenario.market.demand_response.baseline_days
        return bl.compute_baseline(job.day, profiles, n_days, job.holidays, shape)
    profiles = recorded_profiles(conn, scenario, block.provenance["sources"], job.interval_minutes)
    return bl.baseline_from_provenance(block.provenance, profiles, job.holidays, shape)


def park_baseline(
    conn: Connection,
    scenario: Scenario,
    day: date,
    interval_minutes: int,
    n_intervals: int,
    provenance: dict[str, Any] | None = None,
    workers: int = 1,
    block_assets: int = BLOCK_ASSETS,
) -> bl.Baseline:
    """Every meter's baseline for ``day``; with ``provenance``, exactly the recorded days (replay).
    ``workers`` > 1 runs the blocks as Ray tasks, each with its own database connection."""
    holidays = bl.rest_days([day.year - 1, day.year])
    indices = asset_blocks(scenario, block_assets)
    assets = scenario.park.assets
    blocks = [Block(scenario.with_assets([assets[i] for i in b]), _part(provenance, b)) for b in indices]
    job = BaselineJob(day, interval_minutes, n_intervals, holidays)
    if workers == 1 or len(blocks) == 1:
        parts = [block_baseline(b, job, conn) for b in blocks]
    else:
        url = conn.engine.url.render_as_string(hide_password=False)
        parts = map_chunks(block_baseline, blocks, workers, replace(job, database_url=url))
    return _merge(parts, indices, len(assets), day, holidays, n_intervals)


def _part(provenance: dict[str, Any] | None, block: tuple[int, ...]) -> dict[str, Any] | None:
    """The recorded days of the grid meter and of the block's meters."""
    if provenance is None:
        return None
    meters = provenance["meters"]
    return {**provenance, "meters": [meters[0], *(meters[1 + i] for i in block)]}


def _merge(
    parts: list[bl.Baseline],
    blocks: list[tuple[int, ...]],
    n_assets: int,
    day: date,
    holidays: bl.RestDays,
    n_intervals: int,
) -> bl.Baseline:
    """One baseline from the blocks' (the grid meter from the first block)."""
    first = parts[0]
    assets = np.full((n_assets, n_intervals), np.nan)
    meters: list[list[str]] = [[] for _ in range(n_assets)]
    sources: dict[str, str] = {}
    for part, block in zip(parts, blocks, strict=True):
        assets[list(block)] = part.assets_mwh
        for i, days in zip(block, part.provenance["meters"][1:], strict=True):
            meters[i] = days
        sources.update(part.provenance["sources"])
    grid_days = first.provenance["meters"][0]
    used = {d for days in [grid_days, *meters] for d in days}
    chosen = [[date.fromisoformat(d) for d in days] for days in [grid_days, *meters]]
    provenance = {
        **first.provenance,
        "sources": {d: sources[d] for d in sorted(used)},
        "meters": [grid_days, *meters],
    }
    n_days = first.provenance["n_days"]
    notes = bl.baseline_notes(chosen, n_days, holidays, bl.is_rest_day(day, holidays))
    return bl.Baseline(first.grid_mwh, assets, provenance, notes)

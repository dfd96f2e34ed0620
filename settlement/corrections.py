"""Corrections from a file: ``parkvpp settlement correct FILE.yaml --by USER``.

The file names the park-day, the reason and the corrected values by interval index; the stored
(latest) metering and awards are copied with those values replaced, checked like any message,
stored beside the originals and the day is settled again as a new version
(:mod:`settlement.versions`)::

    park: datong
    day: 2026-07-15
    reason: grid meter replaced, 17:30 reading corrected
    metering:
      grid: {70: -12.5}                  # interval index -> MWh net injection
      assets: {pv_central: {40: 1.2}}    # asset -> interval -> MWh
    prices:
      day_ahead: {70: 410.0}             # interval of the award's own grid -> CNY/MWh
      real_time: {210: 398.5}
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Engine

from infra.contracts import Award, Metering
from infra.scenario.model import Scenario
from settlement import store
from settlement import versions as ver
from settlement.facts import Fact, FactError, check_fact, read_fact


def _values(raw: Any, where: str, n: int, problems: list[str]) -> dict[int, float]:
    out: dict[int, float] = {}
    if not isinstance(raw, dict):
        problems.append(f"{where}: must map interval index to a value")
        return out
    for k, v in raw.items():
        try:
            i, x = int(k), float(v)
        except (TypeError, ValueError):
            problems.append(f"{where}.{k}: {v!r} is not an interval index with a number")
            continue
        if not 0 <= i < n:
            problems.append(f"{where}.{k}: interval index outside 0..{n - 1}")
        elif x != x or x in (float("inf"), float("-inf")):
            problems.append(f"{where}.{k}: not a finite number")
        else:
            out[i] = x
    return out


def _digest(spec: Any) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]


def corrected_facts(facts: dict[str, Fact], spec: dict[str, Any], where: str) -> list[Fact]:
    problems: list[str] = []
    out = []
    metering = spec.get("metering")
    if metering:
        m: Metering = facts["metering"].payload  # type: ignore[assignment]
        n = len(m.interval_starts)
        grid = list(m.grid_energy_mwh)
        for i, x in _values(metering.get("grid", {}), f"{where}: metering.grid", n, problems).items():
            grid[i] = x
        assets = {a.asset_id: a for a in m.assets}
        for asset_id, readings in (metering.get("assets") or {}).items():
            if asset_id not in assets:
                problems.append(f"{where}: metering.assets.{asset_id}: not in the stored metering")
                continue
            values = list(assets[asset_id].energy_mwh)
            for i, x in _values(readings, f"{where}: metering.assets.{asset_id}", n, problems).items():
                values[i] = x
            assets[asset_id] = assets[asset_id].model_copy(update={"energy_mwh": values})
        new = m.model_copy(update={"grid_energy_mwh": grid, "assets": list(assets.values())})
        env = facts["metering"].envelope
        out.append(read_fact(new.envelope(env.park_id, env.market_day, "correction", _digest(metering))))
    for market, prices in (spec.get("prices") or {}).items():
        kind = f"award_{market}"
        if kind not in facts:
            problems.append(f"{where}: prices.{market}: no stored {market.replace('_', '-')} award")
            continue
        a: Award = facts[kind].payload  # type: ignore[assignment]
        p = list(a.clearing_price_cny_per_mwh)
        for i, x in _values(prices, f"{where}: prices.{market}", len(p), problems).items():
            p[i] = x
        env = facts[kind].envelope
        new_award = a.model_copy(update={"clearing_price_cny_per_mwh": p})
        out.append(read_fact(new_award.envelope(env.park_id, env.market_day, "correction", _digest(prices))))
    if problems:
        raise FactError(where, problems)
    return out


def apply_file(
    engine: Engine, path: Path, actor: str, scenarios: Callable[[str, date], Scenario]
) -> dict[str, Any]:
    where = str(path)
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise FactError(where, [f"cannot read the file ({exc})"]) from exc
    if not isinstance(spec, dict):
        raise FactError(where, ["must be a mapping with park, day, reason and metering or prices"])
    problems = [f"{k}: required" for k in ("park", "day", "reason") if not spec.get(k)]
    if not (spec.get("metering") or spec.get("prices")):
        problems.append("metering or prices: nothing to correct")
    if problems:
        raise FactError(where, problems)
    try:
        day = spec["day"] if isinstance(spec["day"], date) else date.fromisoformat(str(spec["day"]))
    except ValueError as exc:
        raise FactError(where, [f"day: {spec['day']!r} is not a date like 2026-07-15"]) from exc
    park, reason = str(spec["park"]), str(spec["reason"]).strip()
    scenario = scenarios(park, day)
    with engine.begin() as conn:
        facts = ver.latest_facts(conn, park, day)
        if not facts:
            raise LookupError(f"{park} {day}: no stored award or metering to correct")
        new = corrected_facts(facts, spec, where)
        for f in new:
            check_fact(f, scenario)
            ver.store_correction(conn, f, reason)
        done = ver.resettle(conn, scenario, day, reason, actor) if store.is_settled(conn, park, day) else None
    if done is None:
        return {"park_id": park, "day": day.isoformat(), "version": None, "difference": {"accounts": {}}}
    return {
        "park_id": park,
        "day": day.isoformat(),
        "version": done.version,
        "booked_month": done.booked_month.isoformat() if done.booked_month else None,
        "ledger_entries": done.ledger_entries,
        "difference": done.difference,
    }

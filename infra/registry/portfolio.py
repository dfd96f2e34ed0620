"""The park portfolio of a market day, rebuilt from the registry.

A park enters the registry from its scenario template (``parks/<id>.yaml``) once; from then
on the registry is the truth. Settings, enterprises and assets are rows effective from a
market day (``tables.registry_entries``); the portfolio of day D takes, for each of them, the
newest row effective on or before D and drops those suspended or withdrawn. The result is a
validated :class:`~infra.scenario.Scenario`, checked by the same rules as a scenario file.
"""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import date
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from infra.db.tables import outbox
from infra.registry import audit
from infra.registry.tables import registry_entries, registry_parks
from infra.scenario.loader import ScenarioError, find_park_file, load_market, parse_scenario, read_yaml
from infra.scenario.model import Scenario
from infra.timeutil import now

TEMPLATE_EFFECTIVE_FROM = date(2000, 1, 1)  # a template describes the park from its beginning
_ENTITY_LISTS = {"enterprise": "enterprises", "asset": "assets"}


class RegistryError(ValueError):
    """A registry request that cannot be served; the message names the park, entity and rule."""


def canonical(spec: Any) -> str:
    return json.dumps(spec, sort_keys=True, separators=(",", ":"), default=str)


def _digest(spec: Any) -> str:
    return hashlib.sha256(canonical(spec).encode()).hexdigest()


def parks(conn: Connection) -> list[str]:
    return list(conn.execute(select(registry_parks.c.park_id).order_by(registry_parks.c.park_id)).scalars())


def load_template(engine: Engine, park_id: str, actor: str = "system") -> bool:
    """Enter park ``park_id`` from its template; False (nothing changed) if it is registered already."""
    path = find_park_file(park_id)
    raw = read_yaml(path, str(path))
    return register(engine, park_id, raw, str(path.name), actor)


def register(engine: Engine, park_id: str, raw: dict[str, Any], template: str, actor: str = "system") -> bool:
    """Enter a park from its raw scenario (settings, enterprises, assets), checked whole first;
    False (nothing changed) if the park is registered already. ``template`` names its source."""
    parse_scenario(raw, load_market(str(raw.get("market"))), template)  # reject a bad template whole
    settings = {k: v for k, v in raw.items() if k not in _ENTITY_LISTS.values()}
    with engine.begin() as conn:
        if conn.execute(select(registry_parks.c.park_id).where(registry_parks.c.park_id == park_id)).first():
            return False
        conn.execute(
            registry_parks.insert().values(
                park_id=park_id,
                name=raw["name"],
                market_id=raw["market"],
                template=template,
                template_version=str(raw["version"]),
                template_sha256=_digest(raw),
                created_by=actor,
                created_at=now(),
            )
        )
        rows = [("park", park_id, settings)]
        rows += [
            (kind, item["id"], item) for kind, key in _ENTITY_LISTS.items() for item in raw.get(key) or []
        ]
        stamp = now()
        conn.execute(
            registry_entries.insert(),
            [
                {
                    "park_id": park_id,
                    "kind": kind,
                    "entity_id": entity,
                    "effective_from": TEMPLATE_EFFECTIVE_FROM,
                    "status": "active",
                    "spec": canonical(spec),
                    "changed_by": actor,
                    "changed_at": stamp,
                    "reason": f"template {template}",
                }
                for kind, entity, spec in rows
            ],
        )
        audit.record(
            conn,
            actor,
            "park.init",
            park_id,
            park_id,
            after={"template": template, "version": raw["version"]},
        )
    return True


def ensure_park(engine: Engine, park_id: str) -> None:
    """Register the park from its template on first use (what ``run-day`` does for a new user)."""
    with engine.connect() as conn:
        known = conn.execute(
            select(registry_parks.c.park_id).where(registry_parks.c.park_id == park_id)
        ).first()
    if not known:
        try:
            load_template(engine, park_id)
        except ScenarioError:
            raise
        except Exception:  # a concurrent first run registered it: fine if it is there now
            with engine.connect() as conn:
                if not conn.execute(
                    select(registry_parks.c.park_id).where(registry_parks.c.park_id == park_id)
                ).first():
                    raise


def append(
    conn: Connection,
    park_id: str,
    kind: str,
    entity_id: str,
    effective_from: date,
    status: str,
    spec: dict[str, Any],
    actor: str,
    reason: str,
) -> None:
    conn.execute(
        registry_entries.insert().values(
            park_id=park_id,
            kind=kind,
            entity_id=entity_id,
            effective_from=effective_from,
            status=status,
            spec=canonical(spec),
            changed_by=actor,
            changed_at=now(),
            reason=reason,
        )
    )


def last_settled_day(conn: Connection, park_id: str) -> date | None:
    """The newest market day with a settlement fact: registry changes must start after it."""
    return conn.execute(
        select(func.max(outbox.c.market_day)).where(
            outbox.c.park_id == park_id, outbox.c.schema_name == "settlement"
        )
    ).scalar_one_or_none()


def state_on(conn: Connection, park_id: str, day: date) -> dict[tuple[str, str], tuple[str, dict[str, Any]]]:
    """(kind, entity) -> (status, spec) in force on ``day``, in the order entities were first entered."""
    rows = conn.execute(
        select(
            registry_entries.c.kind,
            registry_entries.c.entity_id,
            registry_entries.c.status,
            registry_entries.c.spec,
        )
        .where(registry_entries.c.park_id == park_id, registry_entries.c.effective_from <= day)
        .order_by(registry_entries.c.effective_from, registry_entries.c.seq)
    )
    first_seen: dict[tuple[str, str], int] = {}
    current: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
    for kind, entity, status, spec in rows:
        first_seen.setdefault((kind, entity), len(first_seen))
        current[(kind, entity)] = (status, json.loads(spec))
    return dict(sorted(current.items(), key=lambda kv: first_seen[kv[0]]))


_cache: dict[tuple[str, str, date, int], Scenario] = {}
_cache_lock = threading.Lock()


def portfolio(engine: Engine, park_id: str, day: date) -> Scenario:
    """The validated portfolio of ``park_id`` on market day ``day`` (registered from its template on first use)."""
    ensure_park(engine, park_id)
    with engine.connect() as conn:
        head = conn.execute(
            select(func.max(registry_entries.c.seq)).where(registry_entries.c.park_id == park_id)
        ).scalar_one()
        key = (str(engine.url), park_id, day, int(head or 0))
        with _cache_lock:
            if key in _cache:
                return _cache[key]
        park_row = conn.execute(select(registry_parks).where(registry_parks.c.park_id == park_id)).one()
        state = state_on(conn, park_id, day)
    scenario = _assemble(park_row, state, day)
    with _cache_lock:
        if len(_cache) > 256:
            _cache.clear()
        _cache[key] = scenario
    return scenario


def _assemble(park_row: Any, state: dict[tuple[str, str], tuple[str, dict[str, Any]]], day: date) -> Scenario:
    settings = state.get(("park", park_row.park_id))
    if settings is None:
        raise RegistryError(f"park {park_row.park_id}: no settings in force on {day}")
    raw = dict(settings[1])
    for kind, key in _ENTITY_LISTS.items():
        raw[key] = [spec for (k, _), (status, spec) in state.items() if k == kind and status == "active"]
    content = _digest(raw)
    unchanged = content == park_row.template_sha256
    raw["version"] = park_row.template_version if unchanged else f"{park_row.template_version}+{content[:8]}"
    return parse_scenario(raw, load_market(park_row.market_id), f"registry park {park_row.park_id} on {day}")

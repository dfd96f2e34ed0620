"""Enrolment of an enterprise's flexible asset: submitted -> approved | rejected -> active from a
market day -> suspended | withdrawn.

Every step is recorded with who did it and when (``enrolments`` and the audit log); approval
needs a different person from the submitter; a decision only ever takes effect from a market
day after the last one with stored facts, so settled days never change. An approved asset is
an asset row in the registry, in the portfolio from its first day without any restart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Connection, Engine, func, select, update

from infra.db.tables import outbox
from infra.registry import audit
from infra.registry.portfolio import RegistryError, append, canonical, ensure_park, portfolio, state_on
from infra.registry.tables import enrolments
from infra.scenario.loader import ScenarioError, parse_scenario
from infra.scenario.model import Asset
from infra.timeseries import coverage
from infra.timeutil import now

STATES = ("submitted", "approved", "rejected", "suspended", "withdrawn")
_ASSET = TypeAdapter(Asset)


class EnrolmentError(ValueError):
    """An enrolment request or decision that breaks a rule; ``problems`` lists every one."""

    def __init__(self, subject: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{subject}:\n  - " + "\n  - ".join(problems))


@lru_cache(maxsize=1)
def rules() -> dict[str, Any]:
    return yaml.safe_load(Path(__file__).with_name("enrolment.yaml").read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Enrolment:
    request_id: str
    park_id: str
    asset_id: str
    enterprise_id: str
    asset_type: str
    spec: dict[str, Any]
    state: str
    submitted_by: str
    submitted_at: Any
    decided_by: str | None
    decided_at: Any
    active_from: date | None
    ended_from: date | None
    note: str | None

    def status_on(self, day: date) -> str:
        """The state as it stands on market day ``day`` (an approved asset is active from its first day)."""
        if self.state == "approved" and self.active_from is not None:
            return "active" if day >= self.active_from else f"approved (active from {self.active_from})"
        if self.state in ("suspended", "withdrawn") and self.ended_from is not None and day < self.ended_from:
            return f"active ({self.state} from {self.ended_from})"
        return self.state


def _plausibility_problems(spec: dict[str, Any], head: str) -> list[str]:
    cfg, problems = rules(), []
    for field, value in spec.items():
        if not isinstance(value, int | float) or isinstance(value, bool):
            continue
        if field.endswith("_mw") and value > cfg["max_asset_power_mw"]:
            problems.append(
                f"{head}: {field}={value:g} exceeds {cfg['max_asset_power_mw']:g} MW for one park asset"
            )
        if field.endswith("efficiency") and value < cfg["min_efficiency"]:
            problems.append(f"{head}: {field}={value:g} is below {cfg['min_efficiency']:g}")
    charge, vehicles = spec.get("charge_mw"), spec.get("vehicles")
    if (
        spec.get("type") == "ev_fleet"
        and isinstance(charge, int | float)
        and isinstance(vehicles, int)
        and vehicles > 0
    ):
        per_vehicle = cfg["max_ev_charger_mw_per_vehicle"]
        if charge > vehicles * per_vehicle:
            problems.append(
                f"{head}: charge_mw={charge:g} exceeds {per_vehicle:g} MW per vehicle x {vehicles} vehicles"
            )
    return problems


def validate_spec(engine: Engine, park_id: str, spec: Any, day: date) -> list[str]:
    """Every problem with an asset submitted to ``park_id``, checked against the portfolio of ``day``."""
    if not isinstance(spec, dict):
        return ["the enrolment file must hold the asset as a mapping (id, name, type, enterprise, ...)"]
    head = f"asset {str(spec.get('id', '?'))[:64]!r} ({str(spec.get('type', '?'))[:32]})"
    problems: list[str] = []
    try:
        _ASSET.validate_python(spec)
    except ValidationError as exc:
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"][1:] if p != spec.get("type")) or str(err["loc"][0])
            problems.append(f"{head}: {where}: {err['msg'].removeprefix('Value error, ')}")
    problems += _plausibility_problems(spec, head)
    scenario = portfolio(engine, park_id, day)
    if "enterprise" in spec and spec["enterprise"] not in {e.id for e in scenario.park.enterprises}:
        problems.append(f"{head}: enterprise {spec['enterprise']!r} is not an enterprise of park {park_id}")
    if "connection" in spec and spec["connection"] not in {g.id for g in scenario.park.grid}:
        problems.append(f"{head}: connection {spec['connection']!r} is not a grid node of park {park_id}")
    with engine.connect() as conn:
        known = {entity for (kind, entity) in state_on(conn, park_id, date.max) if kind == "asset"}
        pending = set(
            conn.execute(
                select(enrolments.c.asset_id).where(
                    enrolments.c.park_id == park_id, enrolments.c.state == "submitted"
                )
            ).scalars()
        )
    if spec.get("id") in known | pending:
        problems.append(f"{head}: id {spec['id']!r} is already used in park {park_id}")
    return problems


def _row(conn: Connection, request_id: str) -> Enrolment:
    row = conn.execute(select(enrolments).where(enrolments.c.request_id == request_id)).first()
    if row is None:
        raise RegistryError(f"request_id={request_id!r}: no such enrolment request")
    data = dict(row._mapping)
    data["spec"] = json.loads(data["spec"])
    return Enrolment(**data)


def get(engine: Engine, request_id: str) -> Enrolment:
    with engine.connect() as conn:
        return _row(conn, request_id)


def listing(
    engine: Engine, park_id: str, state: str | None = None, enterprise_id: str | None = None
) -> list[Enrolment]:
    query = (
        select(enrolments.c.request_id)
        .where(enrolments.c.park_id == park_id)
        .order_by(enrolments.c.submitted_at)
    )
    if state is not None:
        query = query.where(enrolments.c.state == state)
    if enterprise_id is not None:
        query = query.where(enrolments.c.enterprise_id == enterprise_id)
    with engine.connect() as conn:
        return [_row(conn, rid) for rid in conn.execute(query).scalars()]


def first_open_day(conn: Connection, park_id: str) -> date | None:
    """The first market day after every day that has stored facts (None: no facts yet)."""
    last = conn.execute(
        select(func.max(outbox.c.market_day)).where(outbox.c.park_id == park_id)
    ).scalar_one_or_none()
    return None if last is None else last + timedelta(days=1)


def _effective_day(conn: Connection, park_id: str, requested: date | None, what: str) -> date:
    open_day = first_open_day(conn, park_id)
    if requested is None:
        return open_day or now().date() + timedelta(days=1)
    if open_day is not None and requested < open_day:
        raise EnrolmentError(
            what,
            [
                f"from={requested}: market days up to {open_day - timedelta(days=1)} have stored facts; "
                f"a change can take effect from {open_day} on"
            ],
        )
    return requested


def submit(engine: Engine, park_id: str, spec: Any, actor: str) -> Enrolment:
    """Record an enterprise's request to enrol an asset; every problem with it is reported at once."""
    ensure_park(engine, park_id)
    with engine.connect() as conn:
        reference = first_open_day(conn, park_id) or now().date()
    problems = validate_spec(engine, park_id, spec, reference)
    if problems:
        raise EnrolmentError(f"enrolment for park {park_id} is invalid", problems)
    with engine.begin() as conn:
        count = conn.execute(select(func.count()).select_from(enrolments)).scalar_one()
        request_id = f"ENR-{count + 1:06d}"
        conn.execute(
            enrolments.insert().values(
                request_id=request_id,
                park_id=park_id,
                asset_id=spec["id"],
                enterprise_id=spec["enterprise"],
                asset_type=spec["type"],
                spec=canonical(spec),
                state="submitted",
                submitted_by=actor,
                submitted_at=now(),
            )
        )
        audit.record(conn, actor, "enrolment.submit", park_id, request_id, after=spec)
    return get(engine, request_id)


def _missing_history(engine: Engine, park_id: str, enrolment: Enrolment) -> list[str]:
    quantity = rules()["measured_series"].get(enrolment.asset_type)
    if quantity is None:
        return []
    name = f"{enrolment.asset_id}.{quantity}"
    days = coverage(engine, park_id, [name]).get(name, (None, None, 0))[2]
    need = rules()["min_history_days"]
    if days < need:
        return [
            f"asset {enrolment.asset_id!r} ({enrolment.asset_type}): its baseline is forecast from series {name}, "
            f"which has {days} metered days in the store; ingest at least {need} (parkvpp ingest meters FILE.csv)"
        ]
    return []


def _transition(
    engine: Engine,
    request_id: str,
    actor: str,
    allowed_from: tuple[str, ...],
    to_state: str,
    requested_day: date | None,
    note: str | None,
) -> Enrolment:
    """Move a request to ``to_state``; an asset entering or leaving the portfolio gets a registry row."""
    with engine.begin() as conn:
        current = _row(conn, request_id)
        subject = f"{request_id} ({current.asset_id})"
        if current.state not in allowed_from:
            raise EnrolmentError(
                subject, [f"state is {current.state}; {to_state} needs one of: {', '.join(allowed_from)}"]
            )
        problems: list[str] = []
        values: dict[str, Any] = {"state": to_state, "note": note}
        day: date | None = None
        if to_state in ("approved", "rejected"):
            if actor == current.submitted_by:
                problems.append(
                    f"{actor} submitted this request; a different person must decide it (four eyes)"
                )
            values.update(decided_by=actor, decided_at=now())
        if to_state == "approved":
            day = _effective_day(conn, current.park_id, requested_day, subject)
            problems += _missing_history(engine, current.park_id, current) + _fits_portfolio(
                conn, current, day
            )
            values["active_from"] = day
        elif current.state in ("approved", "suspended"):  # suspend or withdraw an asset in the portfolio
            day = max(
                _effective_day(conn, current.park_id, requested_day, subject), current.active_from or date.min
            )
            values["ended_from"] = day
        if problems:
            raise EnrolmentError(subject, problems)
        conn.execute(update(enrolments).where(enrolments.c.request_id == request_id).values(**values))
        if day is not None:
            status = "active" if to_state == "approved" else to_state
            reason = f"{request_id} {to_state}" + (f": {note}" if note else "")
            append(conn, current.park_id, "asset", current.asset_id, day, status, current.spec, actor, reason)
        audit.record(
            conn,
            actor,
            f"enrolment.{to_state}",
            current.park_id,
            request_id,
            before={"state": current.state},
            after={"state": to_state, "from": day, "note": note},
        )
    return get(engine, request_id)


def _fits_portfolio(conn: Connection, enrolment: Enrolment, day: date) -> list[str]:
    """The park with the asset added must still pass every scenario check (storage policy, limits)."""
    from infra.registry.tables import registry_parks
    from infra.scenario.loader import load_market

    state = state_on(conn, enrolment.park_id, day)
    settings = dict(state[("park", enrolment.park_id)][1])
    settings["enterprises"] = [s for (k, _), (st, s) in state.items() if k == "enterprise" and st == "active"]
    settings["assets"] = [s for (k, _), (st, s) in state.items() if k == "asset" and st == "active"] + [
        enrolment.spec
    ]
    market_id = conn.execute(
        select(registry_parks.c.market_id).where(registry_parks.c.park_id == enrolment.park_id)
    ).scalar_one()
    try:
        parse_scenario(
            settings, load_market(market_id), f"park {enrolment.park_id} with {enrolment.asset_id}"
        )
    except ScenarioError as exc:
        return exc.problems
    return []


def approve(engine: Engine, request_id: str, actor: str, active_from: date | None = None) -> Enrolment:
    """Approve a submitted request; the asset is in the portfolio from ``active_from`` (default: the
    first market day without stored facts)."""
    return _transition(engine, request_id, actor, ("submitted",), "approved", active_from, None)


def reject(engine: Engine, request_id: str, actor: str, reason: str) -> Enrolment:
    return _transition(engine, request_id, actor, ("submitted",), "rejected", None, reason)


def suspend(
    engine: Engine, request_id: str, actor: str, reason: str, from_day: date | None = None
) -> Enrolment:
    """Take an approved asset out of the portfolio from ``from_day`` (it keeps its enrolment)."""
    return _transition(engine, request_id, actor, ("approved",), "suspended", from_day, reason)


def withdraw(
    engine: Engine, request_id: str, actor: str, reason: str, from_day: date | None = None
) -> Enrolment:
    """End an enrolment: a pending request is closed; an asset in the portfolio drops out from ``from_day``."""
    return _transition(
        engine,
        request_id,
        actor,
        ("submitted", "approved", "suspended"),
        "withdrawn",
        from_day,
        reason,
    )

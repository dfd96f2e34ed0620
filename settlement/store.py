"""Reading and writing settlement's tables (always inside the caller's connection)."""

from __future__ import annotations

import io
import json
from datetime import date
from typing import Any

import numpy as np
from sqlalchemy import Connection, select

from infra.contracts import Envelope, Metering, Settlement, Topic
from infra.db import insert_ignore
from infra.db.outbox import enqueue
from infra.scenario.model import Scenario
from infra.timeutil import now
from settlement.baseline import DayProfile, energy_on_grid
from settlement.carbon import ledger
from settlement.day import DayResult
from settlement.facts import Fact, FactError, metered_energy, read_fact
from settlement.tables import (
    settlement_asset_amounts,
    settlement_days,
    settlement_facts,
    settlement_statements,
)


def stored_fact_id(conn: Connection, park_id: str, day: date, kind: str) -> str | None:
    return conn.execute(
        select(settlement_facts.c.message_id).where(
            settlement_facts.c.park_id == park_id,
            settlement_facts.c.market_day == day,
            settlement_facts.c.kind == kind,
        )
    ).scalar()


def refuse_replacement(conn: Connection, fact: Fact) -> None:
    """A park-day has one fact of each kind; a different message for it is refused."""
    env = fact.envelope
    stored = stored_fact_id(conn, env.park_id, env.market_day, fact.kind)
    if stored is not None and stored != fact.message_id:
        raise FactError(
            f"{fact.kind} message {fact.message_id} ({env.park_id} {env.market_day})",
            [
                f"message_id: the park-day already has {fact.kind} message {stored}; stored facts are never "
                "replaced (settle corrections as a new day's adjustment, or replay from a fresh database)"
            ],
        )


def store_fact(conn: Connection, fact: Fact) -> bool:
    refuse_replacement(conn, fact)
    env = fact.envelope
    row = {
        "message_id": fact.message_id,
        "park_id": env.park_id,
        "market_day": env.market_day,
        "kind": fact.kind,
        "envelope": env.to_json(),
        "stored_at": now(),
    }
    return insert_ignore(conn, settlement_facts, [row], ["message_id"]) == 1


def load_facts(conn: Connection, park_id: str, day: date) -> dict[str, Fact]:
    rows = conn.execute(
        select(settlement_facts.c.envelope).where(
            settlement_facts.c.park_id == park_id, settlement_facts.c.market_day == day
        )
    ).scalars()
    facts = [read_fact(Envelope.from_json(raw)) for raw in rows]
    return {f.kind: f for f in facts}


def fact_days(conn: Connection, park_id: str, start: date, end: date) -> set[date]:
    """Days ``[start, end)`` for which any fact of the park is stored."""
    return set(
        conn.execute(
            select(settlement_facts.c.market_day)
            .where(
                settlement_facts.c.park_id == park_id,
                settlement_facts.c.market_day >= start,
                settlement_facts.c.market_day < end,
            )
            .distinct()
        ).scalars()
    )


def metering_profiles(
    conn: Connection, scenario: Scenario, start: date, end: date, interval_minutes: int
) -> dict[date, DayProfile]:
    """Stored metering of days ``[start, end)`` as baseline profiles; gaps and faults are NaN."""
    rows = conn.execute(
        select(settlement_facts.c.market_day, settlement_facts.c.kind, settlement_facts.c.envelope).where(
            settlement_facts.c.park_id == scenario.id,
            settlement_facts.c.market_day >= start,
            settlement_facts.c.market_day < end,
            settlement_facts.c.kind.in_(("metering", "award_day_ahead")),
        )
    ).all()
    dr_days = set()
    meterings: dict[date, Metering] = {}
    for day, kind, raw in rows:
        payload = read_fact(Envelope.from_json(raw)).payload
        if kind == "award_day_ahead":
            if any(v != 0 for v in payload.demand_response_mw):  # type: ignore[union-attr]
                dr_days.add(day)
        else:
            meterings[day] = payload  # type: ignore[assignment]
    out = {}
    for day, m in meterings.items():
        metered, _ = metered_energy(scenario, m)
        out[day] = DayProfile(
            day=day,
            source="metering",
            grid_mwh=energy_on_grid(
                np.asarray(m.grid_energy_mwh, float), m.interval_minutes, interval_minutes
            ),
            assets_mwh=energy_on_grid(metered, m.interval_minutes, interval_minutes),
            dr_event=day in dr_days,
        )
    return out


def is_settled(conn: Connection, park_id: str, day: date) -> bool:
    return (
        conn.execute(
            select(settlement_days.c.market_day).where(
                settlement_days.c.park_id == park_id, settlement_days.c.market_day == day
            )
        ).first()
        is not None
    )


def day_record(conn: Connection, park_id: str, day: date) -> dict[str, Any] | None:
    row = conn.execute(
        select(settlement_days).where(
            settlement_days.c.park_id == park_id, settlement_days.c.market_day == day
        )
    ).first()
    return None if row is None else row._asdict()


def write_result(conn: Connection, result: DayResult) -> None:
    """Statements, their outbox messages, the ledger entries and the day record, in one transaction."""
    ids = result.statements[0].source_message_ids
    conn.execute(
        settlement_days.insert().values(
            park_id=result.park_id,
            market_day=result.day,
            rules_version=result.rules_version,
            source_message_ids=ids,
            record=result.record,
            settled_at=now(),
            version=1,
        )
    )
    rows = []
    for st in result.statements:
        env = st.envelope(result.park_id, result.day, st.account_id)
        enqueue(conn, Topic.SETTLEMENTS, env)
        rows.append(
            {
                "park_id": result.park_id,
                "market_day": result.day,
                "account_id": st.account_id,
                "message_id": env.message_id,
                "payload": st.model_dump_json(),
                "total_cny": st.total_cny,
                "emissions_tco2": st.emissions_tco2,
                "carbon_adjusted_revenue_cny": st.carbon_adjusted_revenue_cny,
            }
        )
    conn.execute(settlement_statements.insert(), rows)
    conn.execute(
        settlement_asset_amounts.insert().values(
            park_id=result.park_id,
            market_day=result.day,
            data=pack_asset_amounts(result.asset_ids, result.asset_amounts_fen),
        )
    )
    ledger.append(conn, result.park_id, result.day, result.drafts, source=",".join(ids))


def statements(
    conn: Connection, park_id: str, start: date, end: date | None = None
) -> list[tuple[date, Settlement]]:
    """Stored statements of market days ``[start, end)`` (one day when ``end`` is None)."""
    stmt = select(settlement_statements.c.market_day, settlement_statements.c.payload).where(
        settlement_statements.c.park_id == park_id
    )
    if end is None:
        stmt = stmt.where(settlement_statements.c.market_day == start)
    else:
        stmt = stmt.where(
            settlement_statements.c.market_day >= start, settlement_statements.c.market_day < end
        )
    rows = conn.execute(
        stmt.order_by(settlement_statements.c.market_day, settlement_statements.c.account_id)
    ).all()
    return [(day, Settlement.model_validate(json.loads(raw))) for day, raw in rows]


def settled_days(conn: Connection, park_id: str, start: date, end: date) -> list[date]:
    return list(
        conn.execute(
            select(settlement_days.c.market_day)
            .where(
                settlement_days.c.park_id == park_id,
                settlement_days.c.market_day >= start,
                settlement_days.c.market_day < end,
            )
            .order_by(settlement_days.c.market_day)
        ).scalars()
    )


def pack_asset_amounts(asset_ids: tuple[str, ...], amounts: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, asset_ids=np.array(asset_ids, dtype=str), **amounts)
    return buffer.getvalue()


def asset_amounts(conn: Connection, park_id: str, day: date) -> tuple[list[str], dict[str, np.ndarray]]:
    """Per-asset, per-interval amounts (whole fen) of a settled day."""
    data = conn.execute(
        select(settlement_asset_amounts.c.data).where(
            settlement_asset_amounts.c.park_id == park_id, settlement_asset_amounts.c.market_day == day
        )
    ).scalar()
    if data is None:
        raise LookupError(f"{park_id} {day} is not settled")
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return npz["asset_ids"].tolist(), {k: npz[k] for k in npz.files if k != "asset_ids"}

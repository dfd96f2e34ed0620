"""Settling a park-day from stored facts, and replaying it to prove nothing changed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, select

from infra.scenario.model import Scenario
from settlement import baseline as bl
from settlement import store
from settlement.carbon import ledger
from settlement.day import DayResult, settle_day
from settlement.facts import KINDS, Fact, assemble
from settlement.tables import carbon_ledger


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


def settle_facts(
    conn: Connection, scenario: Scenario, facts: dict[str, Fact], provenance: dict[str, Any] | None = None
) -> DayResult:
    """Settle a complete park-day; with ``provenance`` the recorded baseline days are reused."""
    day_facts = assemble(scenario, facts)
    day = day_facts.day
    holidays = bl.rest_days([day.year - 1, day.year])
    shape = day_facts.metered_mwh.shape
    if provenance is None:
        lo, hi = bl.window(day)
        days = [lo + timedelta(days=i) for i in range((hi - lo).days)]
        profiles = baseline_profiles(conn, scenario, days, day_facts.interval_minutes)
        baseline = bl.compute_baseline(
            day, profiles, scenario.market.demand_response.baseline_days, holidays, shape
        )
    else:
        profiles = recorded_profiles(conn, scenario, provenance["sources"], day_facts.interval_minutes)
        baseline = bl.baseline_from_provenance(provenance, profiles, holidays, shape)
    return settle_day(scenario, day_facts, baseline)


@dataclass
class ReplayReport:
    park_id: str
    day: date
    status: str  # identical | different | settled | incomplete
    differences: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status in ("identical", "settled")


def _statement_differences(conn: Connection, result: DayResult) -> list[str]:
    stored = {st.account_id: st for _, st in store.statements(conn, result.park_id, result.day)}
    out = []
    for st in result.statements:
        old = stored.pop(st.account_id, None)
        if old is None:
            out.append(f"statement {st.account_id}: not stored")
        elif old.model_dump(mode="json") != st.model_dump(mode="json"):
            old_lines = {line.item: line.amount_cny for line in old.lines}
            changed = [
                f"{line.item} {old_lines.get(line.item)} -> {line.amount_cny}"
                for line in st.lines
                if old_lines.get(line.item) != line.amount_cny
            ]
            out.append(
                f"statement {st.account_id}: differs ({'; '.join(changed) or 'interval detail or carbon'})"
            )
    out += [f"statement {acc}: stored but not produced by the replay" for acc in stored]
    return out


def _asset_differences(conn: Connection, result: DayResult) -> list[str]:
    ids, stored = store.asset_amounts(conn, result.park_id, result.day)
    if tuple(ids) != result.asset_ids or set(stored) != set(result.asset_amounts_fen):
        return ["per-asset amounts: assets or items differ"]
    return [
        f"per-asset {item}: differs for {', '.join(ids[i] for i in sorted(set(np.nonzero(stored[item] != fen)[0])))}"
        for item, fen in result.asset_amounts_fen.items()
        if not np.array_equal(stored[item], fen)
    ]


def _ledger_differences(conn: Connection, result: DayResult) -> list[str]:
    out = []
    wanted = {ledger.entry_id(result.park_id, result.day, d): d for d in result.drafts}
    rows = {
        r.entry_id: r
        for r in conn.execute(
            select(carbon_ledger).where(
                carbon_ledger.c.park_id == result.park_id,
                carbon_ledger.c.market_day == result.day,
                carbon_ledger.c.kind.not_in(("adjustment",)),
                carbon_ledger.c.source != "manual",
            )
        )
    }
    for eid, draft in wanted.items():
        row = rows.pop(eid, None)
        postings = ledger.canonical([p.as_list() for p in draft.postings])
        if row is None:
            out.append(f"ledger entry {draft.kind} {draft.account_id}: not in the ledger")
        elif row.postings != postings or json.loads(row.factors) != draft.factors:
            out.append(f"ledger entry {draft.kind} {draft.account_id} ({eid}): differs")
    out += [
        f"ledger entry {r.kind} {r.account_id} ({eid}): in the ledger but not produced by the replay"
        for eid, r in rows.items()
    ]
    return out


def replay_day(engine: Engine, scenario: Scenario, day: date) -> ReplayReport:
    """Recompute a day from its stored facts and compare with what was stored.

    A day with all facts but no settlement yet is settled now; a settled day is only
    compared (stored statements and entries are never changed).
    """
    with engine.connect() as conn:
        facts = store.load_facts(conn, scenario.id, day)
        missing = [k for k in KINDS if k not in facts]
        if missing:
            return ReplayReport(scenario.id, day, "incomplete", [f"no {k} stored" for k in missing])
        record = store.day_record(conn, scenario.id, day)
        result = settle_facts(conn, scenario, facts, None if record is None else record["record"]["baseline"])
        if record is not None:
            differences = (
                _statement_differences(conn, result)
                + _asset_differences(conn, result)
                + _ledger_differences(conn, result)
            )
            return ReplayReport(scenario.id, day, "different" if differences else "identical", differences)
    with engine.begin() as conn:
        if not store.is_settled(conn, scenario.id, day):
            store.write_result(conn, result)
    return ReplayReport(scenario.id, day, "settled")

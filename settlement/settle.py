"""Settling a park-day from stored facts, and replaying it to prove nothing changed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine

from infra.contracts import Settlement
from infra.scenario.model import Scenario
from settlement import store
from settlement.day import DayResult, settle_day
from settlement.facts import KINDS, Fact, assemble
from settlement.park_baseline import park_baseline


def settle_facts(
    conn: Connection,
    scenario: Scenario,
    facts: dict[str, Fact],
    provenance: dict[str, Any] | None = None,
    tariff_version: str | None = None,
    workers: int = 1,
) -> DayResult:
    """Settle a complete park-day; with ``provenance`` the recorded baseline days are reused, and
    with ``tariff_version`` that tariff (a replay or correction uses what the day was settled with).
    ``workers`` > 1 computes the meters' baselines in parallel Ray tasks (:mod:`settlement.park_baseline`)."""
    from infra.timeutil import now
    from settlement.green import day_records
    from settlement.metered import read_metered
    from settlement.tariffs import tariff_for

    day_facts = assemble(scenario, facts)
    day = day_facts.day
    baseline = park_baseline(
        conn, scenario, day, day_facts.interval_minutes, day_facts.n, provenance, workers
    )
    if provenance is not None and tariff_version is None:
        tariff = None
    else:
        tariff = tariff_for(conn, scenario.id, day, tariff_version)
    green = day_records(conn, scenario.id, day, day_facts.interval_starts, day_facts.interval_minutes)
    recorded = (provenance or {}).get("metered_as_of")
    as_of = datetime.fromisoformat(recorded) if recorded else now()
    metered = read_metered(conn, scenario, day, day_facts.interval_minutes, day_facts.n, as_of)
    result = settle_day(scenario, day_facts, baseline, tariff=tariff, green=green, metered=metered)
    # The store is versioned: record when it was read, so a replay reads the same meter versions.
    result.record["baseline"] = {**result.record["baseline"], "metered_as_of": as_of.isoformat()}
    return result


@dataclass
class ReplayReport:
    park_id: str
    day: date
    status: str  # identical | different | settled | incomplete
    differences: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status in ("identical", "settled")


def _comparable(statement: Settlement, stored: Settlement) -> dict:
    """A statement as compared on replay; a statement stored before statements carried market ids
    is compared without them (the ids are labels, not amounts)."""
    out = statement.model_dump(mode="json")
    if stored.market_id is None:
        out.pop("market_id", None)
        for line in out["lines"]:
            line.pop("market_id", None)
    return out


def _statement_differences(conn: Connection, result: DayResult) -> list[str]:
    stored = {st.account_id: st for _, st in store.statements(conn, result.park_id, result.day)}
    out = []
    for st in result.statements:
        old = stored.pop(st.account_id, None)
        if old is None:
            out.append(f"statement {st.account_id}: not stored")
        elif _comparable(old, old) != _comparable(st, old):
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
    """The net of each entry's rows (the original, reversals, reposts) must be the replayed draft."""
    from settlement.versions import _identity, _net, day_entry_nets

    out = []
    nets = day_entry_nets(conn, result.park_id, result.day)
    for draft in result.drafts:
        ident = _identity(draft.kind, draft.account_id, draft.key)
        held = nets.pop(ident, None)
        if held is None:
            out.append(f"ledger entry {draft.kind} {draft.account_id}: not in the ledger")
        elif held != _net(list(draft.postings)):
            out.append(f"ledger entry {draft.kind} {draft.account_id} ({draft.key or 'no key'}): differs")
    out += [
        f"ledger entry {kind} {account} ({key or 'no key'}): in the ledger but not produced by the replay"
        for (kind, account, key), held in nets.items()
        if held
    ]
    return out


def _version_differences(
    conn: Connection, scenario: Scenario, day: date, provenance: dict[str, Any], tariff_version: str | None
) -> list[str]:
    """Every archived version settled again from its own facts must equal the archive."""
    from settlement import versions as ver

    out = []
    for v in ver.versions(conn, scenario.id, day):
        facts = ver.facts_by_id(conn, scenario.id, day, list(v["source_message_ids"]))
        result = settle_facts(conn, scenario, facts, provenance, tariff_version)
        stored = {st.account_id: st.model_dump(mode="json") for st in v["statements"]}
        made = {st.account_id: st.model_dump(mode="json") for st in result.statements}
        if stored != made:
            changed = sorted(a for a in set(stored) | set(made) if stored.get(a) != made.get(a))
            out.append(f"version {v['version']}: statements differ ({', '.join(changed)})")
        ids, amounts = ver._unpack(v["asset_amounts"])
        if ids != list(result.asset_ids) or any(
            not np.array_equal(amounts.get(k), fen) for k, fen in result.asset_amounts_fen.items()
        ):
            out.append(f"version {v['version']}: per-asset amounts differ")
    return out


def replay_day(engine: Engine, scenario: Scenario, day: date) -> ReplayReport:
    """Recompute a day from its stored facts and compare with what was stored.

    A day with all facts but no settlement yet is settled now; a settled day is only
    compared (stored statements and entries are never changed).
    """
    with engine.connect() as conn:
        from settlement.versions import latest_facts

        facts = latest_facts(conn, scenario.id, day)
        missing = [k for k in KINDS if k not in facts]
        if missing:
            return ReplayReport(scenario.id, day, "incomplete", [f"no {k} stored" for k in missing])
        record = store.day_record(conn, scenario.id, day)
        if record is not None:
            from settlement import versions as ver

            provenance = record["record"]["baseline"]
            tv = record["record"].get("tariff_version")
            current = int(record.get("version") or 1)
            archived = ver.versions(conn, scenario.id, day)
            current_ids = next(
                (list(v["source_message_ids"]) for v in archived if v["version"] == current),
                list(record["source_message_ids"]),
            )
            result = settle_facts(
                conn, scenario, ver.facts_by_id(conn, scenario.id, day, current_ids), provenance, tv
            )
            latest = settle_facts(conn, scenario, ver.latest_facts(conn, scenario.id, day), provenance, tv)
            differences = (
                _statement_differences(conn, result)
                + _asset_differences(conn, result)
                + _ledger_differences(conn, latest)
                + _version_differences(conn, scenario, day, provenance, tv)
            )
            return ReplayReport(scenario.id, day, "different" if differences else "identical", differences)
        result = settle_facts(conn, scenario, facts, None)
    with engine.begin() as conn:
        if not store.is_settled(conn, scenario.id, day):
            store.write_result(conn, result)
    return ReplayReport(scenario.id, day, "settled")

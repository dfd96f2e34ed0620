"""Corrections of settled days: statement versions, difference statements, ledger reversal and repost.

A late or corrected award or metering message (an exchange re-publication, a replaced meter)
for a settled day is stored beside the original (``settlement_fact_corrections``; the
original fact is never replaced) and the day is settled again as version ``k + 1``:

* with the same baseline days as version 1 (its recorded provenance), so the difference is the
  correction's alone;
* every version is archived (``settlement_versions``: its facts, statements, per-asset amounts,
  record, reason and difference), so a replay reproduces each version exactly;
* the **difference statement** is new minus previous: per account, line and interval (CNY),
  per asset, item and interval (CNY), per account and equipment (tCO2);
* the **ledger** gets, for every entry whose postings changed, a reversal of what was posted
  for it (all its postings negated) and a repost of the new figures, never an edit; keys are
  ``<key>~rev<k>`` and ``<key>~v<k>`` so the net of an entry's rows is always the latest version;
* if the day or its month is **approved**, the approved statements stay as they are (they are
  immutable) and the version is booked as an adjustment in the next open month; otherwise the
  current statements are replaced by the new version (new ``Settlement`` messages, their key
  carries the version);
* every correction is written to the audit log.
"""

from __future__ import annotations

import io
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
from sqlalchemy import Connection, delete, select, update

from infra.contracts import Envelope, Settlement, Topic
from infra.db.outbox import enqueue
from infra.registry import audit
from infra.scenario.model import Scenario
from infra.timeutil import now
from settlement import store
from settlement.carbon import ledger
from settlement.carbon.ledger import EntryDraft, Posting
from settlement.day import DayResult
from settlement.facts import Fact, fact_ids, read_fact
from settlement.money import FEN_PER_CNY, MICRO
from settlement.tables import (
    carbon_ledger,
    settlement_asset_amounts,
    settlement_days,
    settlement_fact_corrections,
    settlement_statements,
    settlement_versions,
)

KEY_SEP = "~"


def base_key(key: str) -> str:
    return key.split(KEY_SEP, 1)[0]


# --- facts ----------------------------------------------------------------------------------


def store_correction(conn: Connection, fact: Fact, reason: str) -> bool:
    """Keep a corrected fact beside the original; False if this very message is stored already."""
    env = fact.envelope
    known = conn.execute(
        select(settlement_fact_corrections.c.message_id).where(
            settlement_fact_corrections.c.message_id == fact.message_id
        )
    ).first()
    if (
        known is not None
        or store.stored_fact_id(conn, env.park_id, env.market_day, fact.kind) == fact.message_id
    ):
        return False
    seq = (
        conn.execute(
            select(settlement_fact_corrections.c.seq)
            .where(
                settlement_fact_corrections.c.park_id == env.park_id,
                settlement_fact_corrections.c.market_day == env.market_day,
            )
            .order_by(settlement_fact_corrections.c.seq.desc())
        ).scalar()
        or 0
    ) + 1
    conn.execute(
        settlement_fact_corrections.insert().values(
            message_id=fact.message_id,
            park_id=env.park_id,
            market_day=env.market_day,
            kind=fact.kind,
            seq=seq,
            envelope=env.to_json(),
            reason=reason,
            stored_at=now(),
        )
    )
    return True


def latest_facts(conn: Connection, park_id: str, day: date) -> dict[str, Fact]:
    """The day's facts with the latest correction of each kind in place of the original."""
    facts = store.load_facts(conn, park_id, day)
    rows = conn.execute(
        select(settlement_fact_corrections.c.kind, settlement_fact_corrections.c.envelope)
        .where(
            settlement_fact_corrections.c.park_id == park_id,
            settlement_fact_corrections.c.market_day == day,
        )
        .order_by(settlement_fact_corrections.c.seq)
    ).all()
    for kind, raw in rows:
        facts[kind] = read_fact(Envelope.from_json(raw))
    return facts


def facts_by_id(conn: Connection, park_id: str, day: date, message_ids: list[str]) -> dict[str, Fact]:
    """The facts a version was settled from (originals or corrections), by message id."""
    out = {}
    for f in store.load_facts(conn, park_id, day).values():
        if f.message_id in message_ids:
            out[f.kind] = f
    rows = conn.execute(
        select(settlement_fact_corrections.c.envelope).where(
            settlement_fact_corrections.c.message_id.in_(message_ids)
        )
    ).scalars()
    for raw in rows:
        f = read_fact(Envelope.from_json(raw))
        out[f.kind] = f
    return out


# --- versions -------------------------------------------------------------------------------


def current_versions(conn: Connection, park_id: str, days: list[date]) -> dict[date, int]:
    if not days:
        return {}
    rows = conn.execute(
        select(settlement_days.c.market_day, settlement_days.c.version).where(
            settlement_days.c.park_id == park_id,
            settlement_days.c.market_day >= min(days),
            settlement_days.c.market_day <= max(days),
        )
    ).all()
    wanted = set(days)
    return {d: int(v or 1) for d, v in rows if d in wanted}


def versions(conn: Connection, park_id: str, day: date) -> list[dict[str, Any]]:
    """Archived versions of a day (empty when it was never corrected), oldest first."""
    rows = conn.execute(
        select(settlement_versions)
        .where(settlement_versions.c.park_id == park_id, settlement_versions.c.market_day == day)
        .order_by(settlement_versions.c.version)
    ).all()
    out = []
    for r in rows:
        d = r._asdict()
        d["statements"] = [Settlement.model_validate(s) for s in json.loads(d["statements"])]
        d["difference"] = json.loads(d["difference"]) if d["difference"] else None
        out.append(d)
    return out


def booked_adjustments(conn: Connection, park_id: str, month: date) -> list[dict[str, Any]]:
    """Versions of days in approved months booked as adjustments into ``month``."""
    rows = conn.execute(
        select(settlement_versions)
        .where(settlement_versions.c.park_id == park_id, settlement_versions.c.booked_month == month)
        .order_by(settlement_versions.c.market_day, settlement_versions.c.version)
    ).all()
    return [
        {
            "day": r.market_day.isoformat(),
            "version": r.version,
            "reason": r.reason,
            "difference": json.loads(r.difference) if r.difference else None,
        }
        for r in rows
    ]


@dataclass(frozen=True)
class Snapshot:
    """What a version of a day consists of."""

    version: int
    statements: list[Settlement]
    asset_ids: list[str]
    asset_amounts_fen: dict[str, np.ndarray]
    record: dict[str, Any]
    source_message_ids: list[str]


def _unpack(data: bytes) -> tuple[list[str], dict[str, np.ndarray]]:
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return npz["asset_ids"].tolist(), {k: npz[k] for k in npz.files if k != "asset_ids"}


def latest_snapshot(conn: Connection, park_id: str, day: date) -> Snapshot:
    """The newest version of a day: the last archived one, else the current tables (version 1)."""
    row = conn.execute(
        select(settlement_versions)
        .where(settlement_versions.c.park_id == park_id, settlement_versions.c.market_day == day)
        .order_by(settlement_versions.c.version.desc())
    ).first()
    if row is not None:
        ids, amounts = _unpack(row.asset_amounts)
        return Snapshot(
            row.version,
            [Settlement.model_validate(s) for s in json.loads(row.statements)],
            ids,
            amounts,
            row.record,
            list(row.source_message_ids),
        )
    rec = store.day_record(conn, park_id, day)
    if rec is None:
        raise LookupError(f"{park_id} {day} is not settled")
    ids, amounts = store.asset_amounts(conn, park_id, day)
    return Snapshot(
        int(rec.get("version") or 1),
        [st for _, st in store.statements(conn, park_id, day)],
        ids,
        amounts,
        rec["record"],
        list(rec["source_message_ids"]),
    )


def _archive(
    conn: Connection,
    park_id: str,
    day: date,
    snap: Snapshot,
    reason: str,
    difference: dict[str, Any] | None,
    booked_month: date | None,
    rules_version: str,
) -> None:
    conn.execute(
        settlement_versions.insert().values(
            park_id=park_id,
            market_day=day,
            version=snap.version,
            rules_version=rules_version,
            reason=reason,
            created_at=now(),
            source_message_ids=snap.source_message_ids,
            statements=json.dumps([st.model_dump(mode="json") for st in snap.statements]),
            asset_amounts=store.pack_asset_amounts(tuple(snap.asset_ids), snap.asset_amounts_fen),
            record=snap.record,
            difference=None if difference is None else json.dumps(difference),
            booked_month=booked_month,
        )
    )


# --- difference statement -------------------------------------------------------------------


def _fen(values: list[float]) -> np.ndarray:
    return np.rint(np.asarray(values, dtype=float) * FEN_PER_CNY).astype(np.int64)


def net_tco2_by_holder(postings: list[Posting]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for p in postings:
        if p.unit == "tCO2" and ledger.is_holder(p.account):
            out[p.account] += p.micro
    return out


def difference(
    old: Snapshot,
    new: DayResult,
    old_postings: list[Posting],
    version: int,
    reason: str,
) -> dict[str, Any]:
    """New minus previous, exact in fen and in micro-tonnes (reported in CNY and tCO2)."""
    old_st = {st.account_id: st for st in old.statements}
    accounts: dict[str, Any] = {}
    for st in new.statements:
        before = old_st.get(st.account_id)
        lines: dict[str, Any] = {}
        old_lines = {line.item: line for line in before.lines} if before else {}
        for line in st.lines:
            now_fen = _fen(line.interval_amount_cny)
            prev = old_lines.get(line.item)
            prev_fen = _fen(prev.interval_amount_cny) if prev is not None else np.zeros_like(now_fen)
            diff = now_fen - prev_fen
            if diff.any():
                lines[line.item] = {
                    "cny": int(diff.sum()) / FEN_PER_CNY,
                    "intervals": {str(i): int(diff[i]) / FEN_PER_CNY for i in np.flatnonzero(diff)},
                }
        total = round(st.total_cny * 100) - (round(before.total_cny * 100) if before else 0)
        d_co2 = round(st.emissions_tco2 * MICRO) - (round(before.emissions_tco2 * MICRO) if before else 0)
        if lines or total or d_co2:
            accounts[st.account_id] = {
                "total_cny": total / FEN_PER_CNY,
                "tco2": d_co2 / MICRO,
                "lines": lines,
            }
    assets = []
    index = {a: i for i, a in enumerate(old.asset_ids)}
    rows = np.array([index.get(a, -1) for a in new.asset_ids], dtype=np.int64)
    for item, fen in new.asset_amounts_fen.items():
        prev_all = old.asset_amounts_fen.get(item)
        prev = np.zeros_like(fen)
        if prev_all is not None:
            known = rows >= 0
            prev[known] = prev_all[rows[known]]
        diff = fen - prev
        for r, i in zip(*np.nonzero(diff), strict=True):
            assets.append(
                {
                    "asset": new.asset_ids[r],
                    "item": item,
                    "interval": int(i),
                    "cny": int(diff[r, i]) / FEN_PER_CNY,
                }
            )
    old_co2 = net_tco2_by_holder(old_postings)
    new_co2 = net_tco2_by_holder([p for d in new.drafts for p in d.postings])
    equipment = {
        h: (new_co2.get(h, 0) - old_co2.get(h, 0)) / MICRO
        for h in sorted(set(old_co2) | set(new_co2))
        if new_co2.get(h, 0) != old_co2.get(h, 0)
    }
    return {
        "version": version,
        "previous_version": old.version,
        "reason": reason,
        "accounts": accounts,
        "assets": assets,
        "tco2_by_equipment": equipment,
    }


# --- ledger reversal and repost -------------------------------------------------------------


def _identity(kind: str, account: str, key: str) -> tuple[str, str, str]:
    return kind, account, base_key(key)


def _net(postings: list[Posting]) -> dict[tuple[str, str, str], int]:
    """Net quantity per (account, book, unit), zeros dropped."""
    fast = {(p[0], p[1], p[2]): p[3] for p in postings}
    if len(fast) == len(postings):  # the usual case: each account and book posted once
        return {k: v for k, v in fast.items() if v}
    out: dict[tuple[str, str, str], int] = defaultdict(int)
    for p in postings:
        out[(p.account, p.book, p.unit)] += p.micro
    return {k: v for k, v in out.items() if v}


def day_entry_nets(conn: Connection, park_id: str, day: date) -> dict[tuple[str, str, str], dict[Any, int]]:
    """Net postings of every settlement-made entry of a day, by (kind, account, base key)."""
    rows = conn.execute(
        select(carbon_ledger).where(
            carbon_ledger.c.park_id == park_id,
            carbon_ledger.c.market_day == day,
            carbon_ledger.c.source != "manual",
            carbon_ledger.c.kind != "adjustment",
        )
    ).all()
    grouped: dict[tuple[str, str, str], list[Posting]] = defaultdict(list)
    for r in rows:
        grouped[_identity(r.kind, r.account_id, r.entry_key)] += ledger.postings_of(r._asdict())
    return {k: _net(v) for k, v in grouped.items()}


def reversal_and_repost(
    nets: dict[tuple[str, str, str], dict[Any, int]], drafts: list[EntryDraft], version: int, reason: str
) -> list[EntryDraft]:
    """Entries that bring the ledger from what it holds for a day to ``drafts``, without edits."""
    wanted = {_identity(d.kind, d.account_id, d.key): d for d in drafts}
    out = []
    for ident in sorted(set(nets) | set(wanted)):
        held = nets.get(ident, {})
        draft = wanted.get(ident)
        target = _net(list(draft.postings)) if draft else {}
        if held == target:
            continue
        kind, account, key = ident
        if held:
            out.append(
                EntryDraft(
                    kind=kind,
                    account_id=account,
                    rule=f"reversal of the postings of version {version - 1} (statement version {version}: {reason})",
                    factor_version=draft.factor_version if draft else "",
                    postings=tuple(Posting(a, b, u, -q) for (a, b, u), q in sorted(held.items())),
                    key=f"{key}{KEY_SEP}rev{version}",
                    memo=f"reversal for version {version}: {reason}",
                )
            )
        if draft is not None:
            out.append(
                draft._replace(
                    key=f"{key}{KEY_SEP}v{version}",
                    memo=(f"{draft.memo}; " if draft.memo else "")
                    + f"repost for version {version}: {reason}",
                )
            )
    return out


# --- re-settling a day ----------------------------------------------------------------------


@dataclass(frozen=True)
class Correction:
    park_id: str
    day: date
    version: int
    booked_month: date | None  # set when the day's statements are approved (immutable)
    difference: dict[str, Any]
    ledger_entries: int


def resettle(
    conn: Connection, scenario: Scenario, day: date, reason: str, actor: str = "settlement"
) -> Correction | None:
    """Settle a settled day again from its latest facts as a new version (``None``: nothing changed)."""
    from settlement.review import is_locked, next_open_month
    from settlement.settle import settle_facts

    park_id = scenario.id
    record = store.day_record(conn, park_id, day)
    if record is None:
        return None
    old = latest_snapshot(conn, park_id, day)
    facts = latest_facts(conn, park_id, day)
    ids = fact_ids(facts)
    if ids == old.source_message_ids:
        return None
    result = settle_facts(
        conn, scenario, facts, record["record"]["baseline"], record["record"].get("tariff_version")
    )
    version = old.version + 1
    nets = day_entry_nets(conn, park_id, day)
    old_postings = [Posting(a, b, u, q) for net in nets.values() for (a, b, u), q in net.items()]
    diff = difference(old, result, old_postings, version, reason)
    entries = reversal_and_repost(nets, result.drafts, version, reason)
    locked = is_locked(conn, park_id, day)
    booked = next_open_month(conn, park_id, day) if locked else None
    if old.version == 1 and not versions(conn, park_id, day):
        _archive(conn, park_id, day, old, "settled", None, None, record["rules_version"])
    new = Snapshot(
        version,
        result.statements,
        list(result.asset_ids),
        result.asset_amounts_fen,
        result.record,
        ids,
    )
    _archive(conn, park_id, day, new, reason, diff, booked, result.rules_version)
    if not locked:
        _replace_current(conn, result, version)
    ledger.append(conn, park_id, day, entries, source=",".join(ids))
    park_before = next((s.total_cny for s in old.statements if s.account_id == "park"), None)
    park_after = next(s.total_cny for s in result.statements if s.account_id == "park")
    audit.record(
        conn,
        actor,
        "settlement.correction",
        park_id,
        f"day:{day.isoformat()}",
        before={"version": old.version, "park_total_cny": park_before, "facts": old.source_message_ids},
        after={
            "version": version,
            "park_total_cny": park_after,
            "facts": ids,
            "reason": reason,
            "booked_month": booked.isoformat() if booked else None,
        },
    )
    return Correction(park_id, day, version, booked, diff, len(entries))


def _replace_current(conn: Connection, result: DayResult, version: int) -> None:
    park_id, day = result.park_id, result.day
    conn.execute(
        update(settlement_days)
        .where(settlement_days.c.park_id == park_id, settlement_days.c.market_day == day)
        .values(
            version=version,
            rules_version=result.rules_version,
            source_message_ids=list(result.statements[0].source_message_ids),
            record=result.record,
            settled_at=now(),
        )
    )
    conn.execute(
        delete(settlement_statements).where(
            settlement_statements.c.park_id == park_id, settlement_statements.c.market_day == day
        )
    )
    rows = []
    for st in result.statements:
        env = st.envelope(park_id, day, st.account_id, f"v{version}")
        enqueue(conn, Topic.SETTLEMENTS, env)
        rows.append(
            {
                "park_id": park_id,
                "market_day": day,
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
        update(settlement_asset_amounts)
        .where(settlement_asset_amounts.c.park_id == park_id, settlement_asset_amounts.c.market_day == day)
        .values(data=store.pack_asset_amounts(result.asset_ids, result.asset_amounts_fen))
    )

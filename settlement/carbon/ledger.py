"""The carbon ledger: append-only, double-entry, hash-chained per park.

An entry is a set of postings ``(account, book, unit, quantity)`` that sums to zero in every
unit (``tCO2``, ``MWh`` of electricity, ``MWh_green`` of green attributes; 1 GEC = 1 MWh_green).
Holder accounts are ``<enterprise>`` or ``<enterprise>/<asset>`` (equipment, where metered);
their counterparts are ``external:...`` or ``supply:...`` accounts, so every quantity a holder
records is balanced by where it came from. Quantities are whole micro-units (gram, Wh).

Each entry cites its rule, factor version and factors, and carries the hash of its
predecessor: ``entry_hash = sha256(prev_hash | content)``, and an Ed25519 signature over
``(park, position, entry_hash)`` made with a key kept outside the database; the chain head is
signed too, and every committed append leaves a signed checkpoint outside the database
(:mod:`settlement.carbon.signing`). :func:`verify` recomputes the chain, checks every signature,
the head and the checkpoints, and names every problem with its entry and the rule it breaks.
Entries are never updated: a correction is a new entry (``adjustment``, or a reversal and a
repost when a settled day gets a new statement version).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, select, update

from infra.db import insert_ignore
from infra.timeutil import MARKET_TZ, now
from settlement.carbon import signing
from settlement.money import MICRO
from settlement.tables import carbon_ledger, carbon_ledger_heads

GENESIS = "0" * 64
UNITS = ("tCO2", "MWh", "MWh_green")
LEDGER_NAMESPACE = uuid.UUID("2b5f6c0e-8d3a-4f7b-9e21-5a4c3d2b1f10")


class LedgerError(ValueError):
    """An entry cannot be posted (unbalanced, unknown unit, or conflicting with the ledger)."""


class Posting(NamedTuple):
    account: str
    book: str
    unit: str
    micro: int

    def as_list(self) -> list[Any]:
        return [self.account, self.book, self.unit, int(self.micro)]

    @property
    def quantity(self) -> float:
        return self.micro / MICRO


class EntryDraft(NamedTuple):
    """An entry before it has a place in the chain (a tuple: cheap to build by the thousand)."""

    kind: str
    account_id: str
    rule: str
    factor_version: str
    postings: tuple[Posting, ...]
    key: str = ""
    factors: dict[str, Any] = {}  # noqa: RUF012 - never mutated
    activity: dict[str, Any] = {}  # noqa: RUF012 - never mutated
    memo: str = ""


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def imbalance(postings: Iterable[Posting]) -> dict[str, int]:
    """Units whose postings do not sum to zero, with the sum."""
    sums: dict[str, int] = defaultdict(int)
    for p in postings:
        sums[p.unit] += p.micro
    return {u: s for u, s in sums.items() if s != 0}


def check_draft(draft: EntryDraft) -> None:
    where = f"ledger entry {draft.kind} for {draft.account_id}"
    if not draft.postings:
        raise LedgerError(f"{where}: has no postings")
    for p in draft.postings:
        if p.unit not in UNITS:
            raise LedgerError(f"{where}: unit {p.unit!r} is not one of {', '.join(UNITS)}")
    off = imbalance(draft.postings)
    if off:
        detail = ", ".join(f"{u} off by {s / MICRO:g}" for u, s in off.items())
        raise LedgerError(f"{where}: postings must balance in every unit ({detail})")


def entry_id(park_id: str, day: date, draft: EntryDraft) -> str:
    return str(
        uuid.uuid5(
            LEDGER_NAMESPACE, f"{park_id}|{day.isoformat()}|{draft.kind}|{draft.account_id}|{draft.key}"
        )
    )


def _hashed_fields(row: dict[str, Any]) -> dict[str, Any]:
    recorded = row["recorded_at"].astimezone(MARKET_TZ).replace(microsecond=0).isoformat()
    return {
        "entry_id": row["entry_id"],
        "park_id": row["park_id"],
        "market_day": row["market_day"].isoformat(),
        "kind": row["kind"],
        "account_id": row["account_id"],
        "entry_key": row["entry_key"],
        "rule": row["rule"],
        "factor_version": row["factor_version"],
        "factors": row["factors"],
        "activity": row["activity"],
        "postings": row["postings"],
        "memo": row["memo"],
        "source": row["source"],
        "recorded_at": recorded,
    }


def compute_hash(row: dict[str, Any]) -> str:
    return hashlib.sha256(f"{row['prev_hash']}|{canonical(_hashed_fields(row))}".encode()).hexdigest()


def _business(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(
        row[k]
        for k in ("kind", "account_id", "rule", "factor_version", "factors", "activity", "postings", "memo")
    )


def _row(park_id: str, day: date, draft: EntryDraft, source: str, recorded_at: datetime) -> dict[str, Any]:
    return {
        "park_id": park_id,
        "entry_id": entry_id(park_id, day, draft),
        "market_day": day,
        "kind": draft.kind,
        "account_id": draft.account_id,
        "entry_key": draft.key,
        "rule": draft.rule,
        "factor_version": draft.factor_version,
        "factors": canonical(draft.factors),
        "activity": canonical(draft.activity),
        "postings": canonical([p.as_list() for p in draft.postings]),
        "memo": draft.memo,
        "source": source,
        "recorded_at": recorded_at.replace(microsecond=0),
    }


def _lock_head(conn: Connection, park_id: str) -> tuple[int, str]:
    insert_ignore(
        conn, carbon_ledger_heads, [{"park_id": park_id, "position": -1, "entry_hash": GENESIS}], ["park_id"]
    )
    stmt = select(carbon_ledger_heads.c.position, carbon_ledger_heads.c.entry_hash).where(
        carbon_ledger_heads.c.park_id == park_id
    )
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    position, head_hash = conn.execute(stmt).one()
    return int(position), head_hash


def append(conn: Connection, park_id: str, day: date, drafts: Sequence[EntryDraft], source: str = "") -> int:
    """Append entries in the caller's transaction; returns how many were new.

    An entry already in the ledger (same deterministic id) with the same content is skipped,
    so re-posting a day is a no-op; with different content it is refused: stored entries are
    never changed, a correction is an adjusting entry.
    """
    for d in drafts:
        check_draft(d)
    recorded_at = now()
    rows = [_row(park_id, day, d, source, recorded_at) for d in drafts]
    ids = [r["entry_id"] for r in rows]
    if len(set(ids)) != len(ids):
        raise LedgerError(f"ledger entries for {park_id} {day}: two entries share kind, account and key")
    position, head_hash = _lock_head(conn, park_id)
    stored = (
        {
            r.entry_id: r._asdict()
            for r in conn.execute(select(carbon_ledger).where(carbon_ledger.c.entry_id.in_(ids))).all()
        }
        if ids
        else {}
    )
    new = []
    for r in rows:
        old = stored.get(r["entry_id"])
        if old is None:
            new.append(r)
        elif _business(old) != _business(r):
            raise LedgerError(
                f"ledger entry {r['kind']} for {r['account_id']} on {day} (entry {r['entry_id']}) is already "
                "recorded with different content; the ledger is append-only: post an adjustment entry instead"
            )
    key = signing.ledger_key() if new else None
    for r in new:
        position += 1
        r["position"] = position
        r["prev_hash"] = head_hash
        r["entry_hash"] = head_hash = compute_hash(r)
        r["signature"] = key.sign(signing.entry_message(park_id, position, head_hash))  # type: ignore[union-attr]
    if new:
        conn.execute(carbon_ledger.insert(), new)
        conn.execute(
            update(carbon_ledger_heads)
            .where(carbon_ledger_heads.c.park_id == park_id)
            .values(
                position=position,
                entry_hash=head_hash,
                signature=key.sign(signing.head_message(park_id, position, head_hash)),  # type: ignore[union-attr]
            )
        )
        signing.checkpoint_after_commit(conn, park_id, position, head_hash)
    return len(new)


@dataclass(frozen=True)
class Problem:
    park_id: str
    kind: str  # edited | deleted | reordered | unbalanced | forged | head | truncated
    position: int | None
    entry_id: str | None
    message: str
    rule: str = ""


RULES = {
    "content": "an entry's hash is sha256(prev_hash | its content)",
    "balance": "an entry's postings sum to zero in every unit",
    "position": "positions run 0, 1, 2, ... without gaps",
    "link": "an entry chains the hash of the entry before it",
    "signature": "every entry carries an Ed25519 signature over (park, position, hash) by the ledger key",
    "head": "the signed chain head names the last entry (position and hash)",
    "checkpoint": "every signed checkpoint outside the database names an entry still in the chain",
}


class VerifyError(LookupError):
    """Nothing to verify: the database or the park does not exist."""


def _describe(row: dict[str, Any]) -> str:
    return f"entry {row['entry_id']} (position {row['position']}, {row['market_day']} {row['kind']} {row['account_id']})"


def postings_of(row: dict[str, Any]) -> list[Posting]:
    return [Posting(a, b, u, int(q)) for a, b, u, q in json.loads(row["postings"])]


def ledger_parks(conn: Connection) -> list[str]:
    """Parks with any trace of a ledger: entries, a head or checkpoints outside the database."""
    return sorted(
        set(conn.execute(select(carbon_ledger_heads.c.park_id)).scalars())
        | set(conn.execute(select(carbon_ledger.c.park_id).distinct()).scalars())
        | set(signing.anchored_parks(conn))
    )


def verify(
    conn: Connection, park_id: str | None = None, known_parks: Iterable[str] = ()
) -> tuple[int, list[Problem]]:
    """Recompute every chain; returns entries checked and the problems found, each named.

    ``park_id`` must have a ledger trace or be one of ``known_parks`` (the registry's parks),
    otherwise :class:`VerifyError`: an unknown park is never reported as intact.
    """
    traced = ledger_parks(conn)
    if park_id is not None and park_id not in traced and park_id not in set(known_parks):
        raise VerifyError(f"--park: {park_id!r} is not a known park and has no ledger in this database")
    parks = [park_id] if park_id else traced
    key = signing.ledger_key(create=False) if set(parks) & set(traced) else None
    checked, problems = 0, []
    for park in parks:
        if park not in traced:
            continue  # a registered park that has posted nothing yet
        rows = [
            r._asdict()
            for r in conn.execute(
                select(carbon_ledger)
                .where(carbon_ledger.c.park_id == park)
                .order_by(carbon_ledger.c.position)
            )
        ]
        checked += len(rows)
        head = conn.execute(select(carbon_ledger_heads).where(carbon_ledger_heads.c.park_id == park)).first()
        checkpoints = signing.read_checkpoints(signing.anchor_file(conn, park))
        problems += _verify_chain(park, rows, head, key, checkpoints)  # type: ignore[arg-type]
    return checked, problems


def _verify_chain(
    park: str,
    rows: list[dict[str, Any]],
    head: Any,
    key: signing.LedgerKey,
    checkpoints: list[dict[str, Any]],
) -> list[Problem]:
    problems: list[Problem] = []
    by_hash = {r["entry_hash"]: r for r in rows}

    def add(kind: str, rule: str, row: dict[str, Any] | None, message: str) -> None:
        problems.append(
            Problem(
                park,
                kind,
                row["position"] if row else None,
                row["entry_id"] if row else None,
                f"{message} [rule: {RULES[rule]}]",
                rule,
            )
        )

    prev: dict[str, Any] | None = None
    for row in rows:
        if compute_hash(row) != row["entry_hash"]:
            add(
                "edited", "content", row, f"{_describe(row)}: its content no longer matches its hash (edited)"
            )
        if not key.valid(
            signing.entry_message(park, row["position"], row["entry_hash"]), row.get("signature")
        ):
            add(
                "forged",
                "signature",
                row,
                f"{_describe(row)}: "
                + ("has no signature" if not row.get("signature") else "its signature does not match")
                + " (written or re-hashed without the ledger key)",
            )
        off = imbalance(postings_of(row))
        if off:
            add("unbalanced", "balance", row, f"{_describe(row)}: postings do not balance ({', '.join(off)})")
        expected_prev = prev["entry_hash"] if prev else GENESIS
        expected_position = prev["position"] + 1 if prev else 0
        if row["position"] != expected_position:
            after = _describe(prev) if prev else "the start of the chain"
            add(
                "deleted",
                "position",
                row,
                f"positions {expected_position}..{row['position'] - 1} are missing between {after} and {_describe(row)} (deleted)",
            )
        elif row["prev_hash"] != expected_prev:
            if row["prev_hash"] in by_hash:
                add(
                    "reordered",
                    "link",
                    row,
                    f"{_describe(row)} was chained after {_describe(by_hash[row['prev_hash']])}, not after the entry before it (reordered)",
                )
            elif prev is not None:
                add(
                    "edited",
                    "link",
                    prev,
                    f"{_describe(prev)} was changed and re-hashed: {_describe(row)} chained a different hash (edited)",
                )
            else:
                add(
                    "edited",
                    "link",
                    row,
                    f"{_describe(row)}: the first entry does not start from the genesis hash (edited)",
                )
        prev = row
    last_position = prev["position"] if prev else -1
    last_hash = prev["entry_hash"] if prev else GENESIS
    if head is None:
        if rows:
            add("head", "head", None, f"the chain has {len(rows)} entries but no chain head (head deleted)")
    else:
        if (rows or head.position >= 0) and not key.valid(
            signing.head_message(park, head.position, head.entry_hash), head.signature
        ):
            add(
                "head",
                "head",
                None,
                f"the chain head (position {head.position}) is not signed by the ledger key (head rewritten)",
            )
        if head.position > last_position:
            add(
                "deleted",
                "head",
                None,
                f"positions {last_position + 1}..{head.position} are missing at the end of the chain (deleted)",
            )
        elif head.position < last_position:
            beyond = [r for r in rows if r["position"] > head.position]
            add(
                "forged",
                "head",
                beyond[0],
                f"{len(beyond)} entr{'y' if len(beyond) == 1 else 'ies'} from {_describe(beyond[0])} lie beyond the "
                f"signed chain head at position {head.position} (appended without moving the head)",
            )
        elif head.entry_hash != last_hash:
            add(
                "edited",
                "head",
                prev,
                f"{_describe(prev)} does not carry the hash the chain head recorded (edited)",
            )  # type: ignore[arg-type]
    by_position = {r["position"]: r for r in rows}
    for c in checkpoints:
        where = f"checkpoint line {c['line']} (position {c.get('position')}, signed {c.get('signed_at')})"
        if c.get("unreadable") or not key.valid(
            signing.checkpoint_message(c)
            if {"park_id", "position", "entry_hash", "signed_at"} <= set(c)
            else "",
            c.get("signature"),
        ):
            add("checkpoint", "checkpoint", None, f"{where}: unreadable or not signed by the ledger key")
            continue
        row = by_position.get(c["position"])
        if c["position"] > last_position:
            add(
                "truncated",
                "checkpoint",
                None,
                f"{where}: the chain ends at position {last_position}; entries up to {c['position']} were deleted",
            )
            break
        if row is not None and row["entry_hash"] != c["entry_hash"]:
            add(
                "edited",
                "checkpoint",
                row,
                f"{_describe(row)} does not carry the hash of {where} (the chain was rewritten from there on)",
            )
            break
    return problems


def entries(
    conn: Connection, park_id: str, start: date | None = None, end: date | None = None
) -> list[dict[str, Any]]:
    """Entries of a park for market days ``[start, end)`` in chain order, postings decoded."""
    stmt = select(carbon_ledger).where(carbon_ledger.c.park_id == park_id)
    if start is not None:
        stmt = stmt.where(carbon_ledger.c.market_day >= start)
    if end is not None:
        stmt = stmt.where(carbon_ledger.c.market_day < end)
    out = []
    for r in conn.execute(stmt.order_by(carbon_ledger.c.position)):
        row = r._asdict()
        row["postings"] = postings_of(row)
        row["factors"] = json.loads(row["factors"])
        row["activity"] = json.loads(row["activity"])
        out.append(row)
    return out


def holds(account: str, holder: str) -> bool:
    """Whether a posting account belongs to a holder (the holder itself or its equipment)."""
    return account == holder or account.startswith(holder + "/")


def is_holder(account: str) -> bool:
    return not account.startswith(("external:", "supply:"))

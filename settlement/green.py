"""Recorded green-power trades and green certificates (GEC), and how they are allocated.

Ingested with ``parkvpp settlement green load FILE.csv`` (all or nothing, every row checked,
idempotent by ``record_id``). Columns::

    record_id,kind,account,start,end,quantity_mwh,price_cny_per_mwh,counterparty,reference

``kind``: ``green_trade`` (a green-power trade confirmation: energy with its certificates),
``gec_purchase`` (certificates bought for the park and cancelled against its imports),
``gec_transfer`` and ``gec_cancellation`` (kept in the record, informational: a transfer moves
certificates between holders without consuming them; a cancellation of certificates the park
already holds is what settlement does for direct green and cover). ``start``/``end`` are ISO
times with offset: the delivery (trade) or vintage (certificate) period.

Allocation rule (documented and deterministic, independent of other days): a record's quantity
is spread uniformly in time over ``[start, end)``; each interval of a settled day receives
``quantity x overlap / duration``. Per interval, green trades cover imports first (with any
green medium/long-term contract), certificates then cover what remains after the park's own
surplus certificates; what a day cannot use is not carried (noted on the day). Within the park
the covered electricity is attributed to consumers pro rata to their net consumption, like the
other electricity types. The money of a purchase is its recorded price.
"""

from __future__ import annotations

import csv
import math
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import Connection, select

from infra.db import insert_ignore
from infra.timeutil import MARKET_TZ, now
from settlement.day import GreenRecords
from settlement.tables import settlement_green_records

KINDS = ("green_trade", "gec_purchase", "gec_transfer", "gec_cancellation")
COLUMNS = (
    "record_id",
    "kind",
    "account",
    "start",
    "end",
    "quantity_mwh",
    "price_cny_per_mwh",
    "counterparty",
    "reference",
)


class GreenRecordError(ValueError):
    """A green-record file is invalid; every problem is named (file, row, field, rule)."""


def read_records(path: Path, park_id: str) -> list[dict]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise GreenRecordError(f"{path}: cannot read the file ({exc})") from exc
    reader = csv.DictReader(text.splitlines())
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise GreenRecordError(f"{path}: missing column(s) {', '.join(missing)}")
    rows, problems = [], []
    for n, r in enumerate(reader, start=2):
        where = f"{path}:{n}"
        try:
            start = datetime.fromisoformat(r["start"])
            end = datetime.fromisoformat(r["end"])
            if start.tzinfo is None or end.tzinfo is None:
                raise ValueError("start/end need a timezone offset")
            if end <= start:
                raise ValueError("end must be after start")
            q = float(r["quantity_mwh"])
            price = float(r["price_cny_per_mwh"] or 0)
            if not (math.isfinite(q) and 0 < q <= 1e7):
                raise ValueError(f"quantity_mwh {q} outside (0, 1e7]")
            if not (math.isfinite(price) and 0 <= price <= 1e4):
                raise ValueError(f"price_cny_per_mwh {price} outside [0, 1e4]")
            if r["kind"] not in KINDS:
                raise ValueError(f"kind {r['kind']!r} is not one of {', '.join(KINDS)}")
            if not r["record_id"].strip():
                raise ValueError("record_id is empty")
        except (ValueError, TypeError) as exc:
            problems.append(f"{where}: {exc}")
            continue
        rows.append(
            {
                "record_id": r["record_id"].strip(),
                "park_id": park_id,
                "kind": r["kind"],
                "account_id": r["account"].strip() or "park",
                "start": start,
                "end": end,
                "quantity_mwh": q,
                "price_cny_per_mwh": price,
                "counterparty": r["counterparty"].strip(),
                "reference": r["reference"].strip(),
                "loaded_at": now(),
            }
        )
    if problems:
        raise GreenRecordError("; ".join(problems))
    return rows


def store_records(conn: Connection, rows: list[dict]) -> int:
    return insert_ignore(conn, settlement_green_records, rows, ["record_id"])


def day_records(
    conn: Connection, park_id: str, day: date, starts: list[datetime], minutes: int
) -> GreenRecords | None:
    """The day's recorded trades and purchases, allocated to its intervals (None when there are none)."""
    if not starts:
        return None
    day_start = starts[0]
    day_end = starts[-1] + timedelta(minutes=minutes)
    rows = conn.execute(
        select(settlement_green_records)
        .where(
            settlement_green_records.c.park_id == park_id,
            settlement_green_records.c.start < day_end,
            settlement_green_records.c.end > day_start,
            settlement_green_records.c.kind.in_(("green_trade", "gec_purchase")),
        )
        .order_by(settlement_green_records.c.record_id)
    ).all()
    if not rows:
        return None
    n = len(starts)
    traded, gec, cost = np.zeros(n), np.zeros(n), np.zeros(n)
    edges = [s.astimezone(MARKET_TZ) for s in starts] + [day_end.astimezone(MARKET_TZ)]
    for r in rows:
        start, end = r.start.astimezone(MARKET_TZ), r.end.astimezone(MARKET_TZ)
        duration = (end - start).total_seconds()
        share = np.array(
            [
                max((min(end, edges[i + 1]) - max(start, edges[i])).total_seconds(), 0.0) / duration
                for i in range(n)
            ]
        )
        q = r.quantity_mwh * share
        if r.kind == "green_trade":
            traded += q
        else:
            gec += q
            cost += q * r.price_cny_per_mwh
    return GreenRecords(traded, gec, cost, tuple(r.record_id for r in rows))

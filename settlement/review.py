"""Operator review of daily and monthly settlement: submit, approve (four eyes), dispute, reopen.

Reviews are an append-only history per period (a day or a month); the latest event is the
state, ``draft`` when there is none. The rules:

* ``submitted``: the preparer submits a period for approval. A month can be submitted only when
  every day of it is settled; a day only when it is settled.
* ``approved``: only a submitted period, and only by a user other than the one who submitted it
  (four eyes). The approval records the statement version of every day it covers.
* ``disputed``: a submitted or draft period, with a comment saying what is wrong.
* ``reopened``: only an approved period, with a reason; it can then be submitted again.
* An approved period is immutable: nothing but ``reopened`` is accepted, and a correction of
  one of its days becomes a new statement version booked as an adjustment in the next open
  month (:mod:`settlement.versions`), never a change of what was approved.

Every event is also written to the audit log (``infra.registry.audit``) with the state before
and after. Functions for callers (CLI, gateway) are :func:`submit`, :func:`approve`,
:func:`dispute`, :func:`reopen`, :func:`record_review` (any of them by name),
:func:`review_state` and :func:`is_locked`.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Connection, select

from infra.registry import audit
from infra.timeutil import now
from settlement import store
from settlement.tables import settlement_reviews

STATES = ("draft", "submitted", "approved", "disputed", "reopened")
ACTIONS = ("submitted", "approved", "disputed", "reopened")
PERIODS = ("day", "month")

# From which current states each action may be taken.
ALLOWED_FROM = {
    "submitted": ("draft", "disputed", "reopened"),
    "approved": ("submitted",),
    "disputed": ("draft", "submitted", "reopened"),
    "reopened": ("approved",),
}


class ReviewError(ValueError):
    """A review cannot be recorded (unknown state, missing comment, unsettled period, four eyes)."""


def month_end(month_start: date) -> date:
    return date(month_start.year + month_start.month // 12, month_start.month % 12 + 1, 1)


def period_days(period: str, period_start: date) -> list[date]:
    end = month_end(period_start) if period == "month" else period_start + timedelta(days=1)
    return [period_start + timedelta(days=i) for i in range((end - period_start).days)]


def _history(conn: Connection, park_id: str, period: str, period_start: date) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(settlement_reviews)
        .where(
            settlement_reviews.c.park_id == park_id,
            settlement_reviews.c.period == period,
            settlement_reviews.c.period_start == period_start,
        )
        .order_by(settlement_reviews.c.id)
    )
    out = []
    for r in rows:
        d = r._asdict()
        out.append(
            {
                "state": d["state"],
                "comment": d["comment"],
                "reviewer": d["reviewer"],
                "recorded_at": d["recorded_at"].isoformat() if d["recorded_at"] else None,
                "period": d["period"],
                "period_start": d["period_start"].isoformat(),
                "versions": json.loads(d["versions"]) if d.get("versions") else None,
            }
        )
    return out


def review_state(conn: Connection, park_id: str, period: str, period_start: date) -> dict[str, Any]:
    """The current state with its history (oldest first), the preparer and the approved versions."""
    history = _history(conn, park_id, period, period_start)
    current = (
        history[-1] if history else {"state": "draft", "comment": "", "reviewer": "", "recorded_at": None}
    )
    submitted = [h for h in history if h["state"] == "submitted"]
    approved = [h for h in history if h["state"] == "approved"]
    return {
        "state": current["state"],
        "comment": current["comment"],
        "reviewer": current["reviewer"],
        "recorded_at": current["recorded_at"],
        "preparer": submitted[-1]["reviewer"] if submitted else None,
        "approved_versions": approved[-1]["versions"]
        if approved and current["state"] == "approved"
        else None,
        "history": history,
    }


def _check_period(conn: Connection, park_id: str, period: str, period_start: date) -> list[date]:
    if period not in PERIODS:
        raise ReviewError(f"period: {period!r} must be one of {', '.join(PERIODS)}")
    if period == "month" and period_start.day != 1:
        raise ReviewError(f"month: {period_start} is not the first day of a month")
    days = period_days(period, period_start)
    settled = store.settled_days(conn, park_id, days[0], days[-1] + timedelta(days=1))
    if not settled:
        raise ReviewError(
            f"{park_id} has no settled day in the {period} starting {period_start}; nothing to review"
        )
    return settled


def record_review(
    conn: Connection,
    park_id: str,
    period: str,
    period_start: date,
    state: str,
    comment: str = "",
    reviewer: str = "operator",
) -> dict[str, Any]:
    """Record ``state`` (an action: submitted, approved, disputed or reopened) by ``reviewer``."""
    if state not in ACTIONS:
        raise ReviewError(
            f"state: {state!r} must be one of {', '.join(ACTIONS)} (draft is the state before any review)"
        )
    comment, reviewer = comment.strip(), reviewer.strip()
    if not reviewer:
        raise ReviewError("by: the user recording the review must be named")
    settled = _check_period(conn, park_id, period, period_start)
    before = review_state(conn, park_id, period, period_start)
    if before["state"] not in ALLOWED_FROM[state]:
        if before["state"] == "approved":
            raise ReviewError(
                f"{park_id} {period} {period_start} is approved and immutable; reopen it with a reason first "
                "(a correction of an approved day becomes a new version booked in the next open month)"
            )
        raise ReviewError(
            f"state: cannot go from {before['state']} to {state} "
            f"(allowed from {', '.join(ALLOWED_FROM[state])})"
        )
    versions = None
    if state == "submitted":
        missing = [d for d in period_days(period, period_start) if d not in set(settled)]
        if missing:
            shown = ", ".join(d.isoformat() for d in missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise ReviewError(
                f"{park_id} {period} {period_start} cannot be submitted: {len(missing)} day(s) not settled ({shown})"
            )
    if state == "approved":
        if reviewer == before["preparer"]:
            raise ReviewError(
                f"by: {reviewer} submitted {park_id} {period} {period_start}; approval needs a different user (four eyes)"
            )
        from settlement.versions import current_versions

        versions = {d.isoformat(): v for d, v in current_versions(conn, park_id, settled).items()}
    if state in ("disputed", "reopened") and not comment:
        what = (
            "a disputed report needs a comment saying what is wrong"
            if state == "disputed"
            else "reopening needs a reason"
        )
        raise ReviewError(f"comment: {what}")
    row = {
        "park_id": park_id,
        "period": period,
        "period_start": period_start,
        "state": state,
        "comment": comment,
        "reviewer": reviewer,
        "recorded_at": now(),
        "versions": json.dumps(versions, sort_keys=True) if versions is not None else None,
    }
    conn.execute(settlement_reviews.insert().values(**row))
    audit.record(
        conn,
        reviewer,
        f"settlement.review.{state}",
        park_id,
        f"{period}:{period_start.isoformat()}",
        before={"state": before["state"]},
        after={"state": state, "comment": comment, **({"versions": versions} if versions else {})},
    )
    return review_state(conn, park_id, period, period_start)


def submit(
    conn: Connection, park_id: str, period: str, start: date, by: str, comment: str = ""
) -> dict[str, Any]:
    return record_review(conn, park_id, period, start, "submitted", comment, by)


def approve(
    conn: Connection, park_id: str, period: str, start: date, by: str, comment: str = ""
) -> dict[str, Any]:
    return record_review(conn, park_id, period, start, "approved", comment, by)


def dispute(
    conn: Connection, park_id: str, period: str, start: date, by: str, comment: str
) -> dict[str, Any]:
    return record_review(conn, park_id, period, start, "disputed", comment, by)


def reopen(conn: Connection, park_id: str, period: str, start: date, by: str, reason: str) -> dict[str, Any]:
    return record_review(conn, park_id, period, start, "reopened", reason, by)


def is_locked(conn: Connection, park_id: str, day: date) -> bool:
    """Whether the day, or the month it belongs to, is approved (its statements are immutable)."""
    return (
        review_state(conn, park_id, "day", day)["state"] == "approved"
        or review_state(conn, park_id, "month", day.replace(day=1))["state"] == "approved"
    )


def next_open_month(conn: Connection, park_id: str, day: date) -> date:
    """The first month after ``day``'s month that is not approved (where adjustments are booked)."""
    month = month_end(day.replace(day=1))
    while review_state(conn, park_id, "month", month)["state"] == "approved":
        month = month_end(month)
    return month

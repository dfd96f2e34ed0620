"""Operator review of daily and monthly settlement reports: draft, approved or disputed.

Reviews are an append-only history; the latest event of a period is its state, ``draft``
when nobody reviewed it yet. A dispute must say why.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Connection, select

from infra.timeutil import now
from settlement import store
from settlement.tables import settlement_reviews

STATES = ("draft", "approved", "disputed")
PERIODS = ("day", "month")


class ReviewError(ValueError):
    """A review cannot be recorded (unknown state, missing comment, unsettled period)."""


def month_end(month_start: date) -> date:
    return date(month_start.year + month_start.month // 12, month_start.month % 12 + 1, 1)


def record_review(
    conn: Connection,
    park_id: str,
    period: str,
    period_start: date,
    state: str,
    comment: str = "",
    reviewer: str = "operator",
) -> dict[str, Any]:
    if period not in PERIODS:
        raise ReviewError(f"period: {period!r} must be one of {', '.join(PERIODS)}")
    if state not in STATES:
        raise ReviewError(f"state: {state!r} must be one of {', '.join(STATES)}")
    if state == "disputed" and not comment.strip():
        raise ReviewError("comment: a disputed report needs a comment saying what is wrong")
    if not reviewer.strip():
        raise ReviewError("reviewer: must not be empty")
    if period == "month" and period_start.day != 1:
        raise ReviewError(f"month: {period_start} is not the first day of a month")
    end = month_end(period_start) if period == "month" else date.fromordinal(period_start.toordinal() + 1)
    if not store.settled_days(conn, park_id, period_start, end):
        raise ReviewError(
            f"{park_id} has no settled day in the {period} starting {period_start}; nothing to review"
        )
    row = {
        "park_id": park_id,
        "period": period,
        "period_start": period_start,
        "state": state,
        "comment": comment.strip(),
        "reviewer": reviewer.strip(),
        "recorded_at": now(),
    }
    conn.execute(settlement_reviews.insert().values(**row))
    return row


def review_state(conn: Connection, park_id: str, period: str, period_start: date) -> dict[str, Any]:
    """The current state with its history (oldest first)."""
    rows = [
        r._asdict()
        for r in conn.execute(
            select(settlement_reviews)
            .where(
                settlement_reviews.c.park_id == park_id,
                settlement_reviews.c.period == period,
                settlement_reviews.c.period_start == period_start,
            )
            .order_by(settlement_reviews.c.id)
        )
    ]
    history = [
        {
            k: (v.isoformat() if hasattr(v, "isoformat") else v)
            for k, v in r.items()
            if k not in ("id", "park_id")
        }
        for r in rows
    ]
    current = (
        history[-1] if history else {"state": "draft", "comment": "", "reviewer": "", "recorded_at": None}
    )
    return {
        "state": current["state"],
        "comment": current["comment"],
        "reviewer": current["reviewer"],
        "recorded_at": current["recorded_at"],
        "history": history,
    }

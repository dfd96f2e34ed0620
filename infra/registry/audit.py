"""The append-only audit log: who changed what in the registry, when, before and after."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, select

from infra.registry.tables import audit_log
from infra.timeutil import now


def record(
    conn: Connection,
    actor: str,
    action: str,
    park_id: str,
    subject: str,
    before: Any = None,
    after: Any = None,
) -> None:
    def dump(value: Any) -> str | None:
        return None if value is None else json.dumps(value, sort_keys=True, default=str)

    conn.execute(
        audit_log.insert().values(
            at=now(),
            actor=actor,
            action=action,
            park_id=park_id,
            subject=subject,
            before=dump(before),
            after=dump(after),
        )
    )


def entries(conn: Connection, park_id: str, subject: str | None = None) -> list[dict[str, Any]]:
    query = select(audit_log).where(audit_log.c.park_id == park_id).order_by(audit_log.c.seq)
    if subject is not None:
        query = query.where(audit_log.c.subject == subject)
    return [dict(r._mapping) for r in conn.execute(query)]

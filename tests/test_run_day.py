"""End to end: one market day through every real service, Kafka and the database.

Bids, awards and settlements are read back from the topics with a separate consumer (no
consumer group), checked for the envelope contract and for settlement arithmetic; a rerun
adds nothing; the same holds on PostgreSQL.
"""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gateway.report import write_run_folder
from gateway.run_day import run_day
from infra.contracts import MESSAGE_NAMESPACE, Award, Bid, Settlement, Topic
from infra.db import make_engine
from infra.db.tables import consumed_messages, message_parts, outbox
from infra.embedded import Endpoints
from infra.kafka import read_topic
from infra.scenario import load_scenario
from infra.settings import Settings

pytestmark = pytest.mark.slow


def _settings(tmp_path: Path, services: Endpoints, database_url: str) -> Settings:
    return Settings(
        run_dir=tmp_path,
        database_url=database_url,
        kafka_bootstrap=services.kafka_bootstrap,
        redis_url=services.redis_url,
    )


def _on_topic(services: Endpoints, topic: str, park: str, day: date) -> list:
    return [
        r.envelope
        for r in read_topic(services.kafka_bootstrap, topic)
        if r.envelope.park_id == park and r.envelope.market_day == day
    ]


def _fen(value: float) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


def _check_envelopes(envelopes: list, schema: str, park: str, day: date) -> None:
    assert envelopes, f"no {schema} on the topic"
    for env in envelopes:
        assert env.schema_.name == schema and env.schema_.version == 1
        assert uuid.UUID(env.message_id).version == 5 and uuid.UUID(env.message_id) != MESSAGE_NAMESPACE
        assert env.park_id == park and env.market_day == day
        assert isinstance(env.produced_at, datetime) and env.produced_at.utcoffset() is not None
    assert len({e.message_id for e in envelopes}) == len(envelopes), f"duplicate {schema} messages"


def _check_settlements(envelopes: list, enterprises: set[str]) -> None:
    statements = [Settlement.from_envelope(e) for e in envelopes]
    accounts = {s.account_id for s in statements}
    assert "park" in accounts and accounts - {"park"} <= enterprises
    for s in statements:
        assert len(s.interval_total_cny) == 96
        assert _fen(s.total_cny) == sum(_fen(v) for v in s.interval_total_cny), s.account_id
        for line in s.lines:
            if line.interval_amount_cny:
                assert _fen(line.amount_cny) == sum(_fen(v) for v in line.interval_amount_cny), (
                    s.account_id,
                    line.item,
                )


def _check_day_on_topics(services: Endpoints, park: str, day: date) -> list:
    """Bids, awards and settlements of the day as a separate consumer reads them from Kafka."""
    scenario = load_scenario(park)
    bids = _on_topic(services, Topic.BIDS, park, day)
    awards = _on_topic(services, Topic.AWARDS, park, day)
    settlements = _on_topic(services, Topic.SETTLEMENTS, park, day)
    _check_envelopes(bids, "bid", park, day)
    _check_envelopes(awards, "award", park, day)
    _check_envelopes(settlements, "settlement", park, day)
    bid = Bid.from_envelope(bids[0])
    assert len(bid.energy) == 96 and all(len(c.segments) <= scenario.market.max_segments for c in bid.energy)
    assert {Award.from_envelope(a).market for a in awards} == {"day_ahead", "real_time"}
    _check_settlements(settlements, {e.id for e in scenario.park.enterprises})
    return awards


def _outbox_counts(database_url: str, park: str, day: date) -> dict[str, int]:
    with make_engine(database_url).connect() as conn:
        rows = conn.execute(
            select(outbox.c.schema_name, func.count())
            .where(outbox.c.park_id == park, outbox.c.market_day == day)
            .group_by(outbox.c.schema_name)
        ).all()
    return dict(rows)


def test_datong_day_end_to_end_on_sqlite_and_rerun_adds_nothing(services: Endpoints, datong_day) -> None:
    park, day = "datong", date(2026, 7, 15)
    settings, outcome = datong_day.settings, datong_day.outcome
    sqlite_url = settings.database_url
    assert outcome.park_id == park and outcome.day == day and not outcome.already_settled
    scenario = load_scenario(park)
    folder = write_run_folder(outcome, scenario, make_engine(sqlite_url))

    awards = _check_day_on_topics(services, park, day)

    # Settlement consumed the awards and the metering from Kafka, not from memory.
    with make_engine(sqlite_url).connect() as conn:
        consumed = set(
            conn.execute(
                select(consumed_messages.c.message_id).where(consumed_messages.c.consumer == "settlement")
            ).scalars()
        )
    assert {a.message_id for a in awards} <= consumed

    report = (folder / "report.html").read_text()
    assert "Settlement and carbon" in report and "synthetic" in report
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["park_id"] == park and any(a["account"] == "park" for a in summary["accounts"])
    assert (folder / "intervals.csv").read_text().count("\n") == 97

    before_db = _outbox_counts(sqlite_url, park, day)
    before_topics = {
        t: len(_on_topic(services, t, park, day)) for t in (Topic.BIDS, Topic.AWARDS, Topic.SETTLEMENTS)
    }
    again = run_day(park, day, settings)
    assert again.already_settled
    assert _outbox_counts(sqlite_url, park, day) == before_db
    assert {t: len(_on_topic(services, t, park, day)) for t in before_topics} == before_topics
    assert [e.message_id for e in again.facts["settlement"]] == [
        e.message_id for e in outcome.facts["settlement"]
    ]


def test_chifeng_day_end_to_end_on_postgres_with_dispatch_and_metering_in_chunks(
    tmp_path: Path, services: Endpoints, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks small enough that the dispatch and the metering travel in parts: the delivery,
    telemetry and settlement services each apply them once whole."""
    monkeypatch.setenv("PARKVPP_MESSAGE_CHUNK_BYTES", "8192")
    park, day = "chifeng", date(2026, 3, 10)
    outcome = run_day(park, day, _settings(tmp_path, services, postgres_url))
    assert not outcome.already_settled
    awards = _check_day_on_topics(services, park, day)
    settlements = _on_topic(services, Topic.SETTLEMENTS, park, day)
    counts = _outbox_counts(postgres_url, park, day)
    assert counts["settlement"] == len(settlements) and counts["award"] == len(awards) == 2
    assert counts["chunk_manifest"] == 2 and counts["dispatch"] > 1 and counts["metering"] > 1
    # The day's dispatch and metering as whole messages (the outbox keeps their chunks); the shared
    # broker's consumer groups may also hand this run another test's leftovers, so count only these.
    own = {e.message_id for schema in ("dispatch", "metering") for e in outcome.facts[schema]}
    with make_engine(postgres_url).connect() as conn:
        applied = dict(
            conn.execute(
                select(consumed_messages.c.consumer, func.count())
                .where(consumed_messages.c.message_id.in_(own))
                .group_by(consumed_messages.c.consumer)
            ).all()
        )
        assert conn.execute(select(func.count()).select_from(message_parts)).scalar() == 0
    assert applied["delivery-simulator"] == 1 and applied["telemetry"] == 1  # the whole messages, once

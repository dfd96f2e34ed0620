"""The worker on real databases: any order, exactly once, replay equality, refusals, the outbox."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import Engine, func, select, text

from infra.contracts import AssetMetering, Metering, Settlement, Topic
from infra.db import make_engine, migrate
from infra.db.outbox import stored_envelopes
from infra.db.tables import dead_letters, outbox
from settlement.carbon.ledger import verify
from settlement.settle import replay_day
from settlement.tables import carbon_ledger, settlement_facts, settlement_statements
from settlement.worker import SettlementWorker
from tests.settlement.settlement_checks import assert_reconciles
from tests.settlement.settlement_factory import DAY, DAY_BEFORE, consume, store_history

TABLES = (settlement_facts, settlement_statements, carbon_ledger, outbox, dead_letters)


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in TABLES}


def fresh(url: str) -> Engine:
    migrate(url)
    engine = make_engine(url)
    store_history(engine)
    return engine


def published_settlements(engine: Engine, day: date) -> list[Settlement]:
    with engine.connect() as conn:
        envs = stored_envelopes(conn, "datong", day, "settlement")
    return [Settlement.from_envelope(e) for e in envs]


def ledger_content(engine: Engine) -> set[tuple]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(carbon_ledger.c.entry_id, carbon_ledger.c.postings, carbon_ledger.c.factors)
        ).all()
    return {tuple(r) for r in rows}


def test_a_day_settles_once_all_three_facts_arrived_in_any_order(settled: Engine, datong, messages) -> None:
    sts = published_settlements(settled, DAY)
    accounts = {s.account_id for s in sts}
    assert accounts == {"park"} | {e.id for e in datong.park.enterprises}
    assert_reconciles(sts)
    park = next(s for s in sts if s.account_id == "park")
    assert len(park.interval_starts) == 96  # the metering grid; real-time prices came in 5-minute intervals
    assert next(ln for ln in park.lines if ln.item == "demand_response").amount_cny > 0
    assert next(ln for ln in park.lines if ln.item == "regulation_mileage").amount_cny > 0
    m = messages[DAY]
    assert park.source_message_ids == [m.day_ahead.message_id, m.real_time.message_id, m.metering.message_id]
    with settled.connect() as conn:
        checked, problems = verify(conn, "datong")
    assert checked >= 2 * 8 and problems == []  # at least an entry per enterprise and day


def test_meter_gaps_are_estimated_flagged_and_the_measured_share_reported(settled: Engine) -> None:
    from settlement.store import day_record

    with settled.connect() as conn:
        record = day_record(conn, "datong", DAY)["record"]
    assert "pv_central: 8 of 96 intervals estimated (8 meter gap)" in record["notes"]
    assert "cell_plant_load: 2 of 96 intervals estimated (2 meter gap)" in record["notes"]
    assert 0.9 < record["measured_share"]["park"] < 1.0
    assert record["measured_share"]["recycling_plant"] == 1.0
    assert record["assets"]["pv_central"]["estimated_intervals"] == 8
    # the baseline used the stored metering of the day before, and history before that
    assert record["baseline"]["sources"][DAY_BEFORE.isoformat()] == "metering"
    assert "history" in record["baseline"]["sources"].values()


def test_consuming_everything_again_changes_nothing(settled: Engine, messages) -> None:
    before = counts(settled)
    consume(settled, [messages[DAY], messages[DAY_BEFORE]])
    assert counts(settled) == before


def test_fresh_database_in_another_order_gives_identical_statements_and_ledger(
    settled: Engine, messages, sqlite_url: str
) -> None:
    other = fresh(sqlite_url)
    worker = SettlementWorker(other, "unused:9092")
    for env in (
        messages[DAY_BEFORE].day_ahead,
        messages[DAY_BEFORE].metering,
        messages[DAY_BEFORE].real_time,
        messages[DAY].real_time,
        messages[DAY].day_ahead,
        messages[DAY].metering,
    ):
        assert worker.apply(Topic.METERING if env.schema_.name == "metering" else Topic.AWARDS, env)
    for day in (DAY_BEFORE, DAY):
        a = [s.model_dump() for s in published_settlements(settled, day)]
        b = [s.model_dump() for s in published_settlements(other, day)]
        assert a == b
    assert ledger_content(settled) == ledger_content(other)


def test_replay_from_stored_facts_is_identical(settled: Engine, datong) -> None:
    for day in (DAY_BEFORE, DAY):
        report = replay_day(settled, datong, day)
        assert (report.status, report.differences) == ("identical", [])


def test_replay_reports_a_changed_statement(settled: Engine, datong, tmp_path) -> None:
    import sqlite3

    copy = tmp_path / "copy.sqlite"
    with sqlite3.connect(settled.url.database) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    engine = make_engine(f"sqlite:///{copy}")
    with engine.begin() as conn:
        row = conn.execute(
            text(
                "SELECT payload FROM settlement_statements WHERE account_id = 'cell_plant' AND market_day = :d"
            ),
            {"d": DAY},
        ).scalar()
        payload = json.loads(row)
        payload["lines"][0]["amount_cny"] += 1.0
        conn.execute(
            text(
                "UPDATE settlement_statements SET payload = :p WHERE account_id = 'cell_plant' AND market_day = :d"
            ),
            {"p": json.dumps(payload), "d": DAY},
        )
    report = replay_day(engine, datong, DAY)
    assert report.status == "different"
    assert any(d.startswith("statement cell_plant: differs (energy_supply") for d in report.differences)


def test_replay_settles_a_complete_day_that_was_not_settled_and_reports_missing_facts(
    messages, datong, sqlite_url: str
) -> None:
    engine = fresh(sqlite_url)
    m = messages[DAY_BEFORE]
    from settlement.facts import read_fact
    from settlement.store import store_fact

    with engine.begin() as conn:
        for env in (m.day_ahead, m.real_time):
            store_fact(conn, read_fact(env))
    report = replay_day(engine, datong, DAY_BEFORE)
    assert (report.status, report.differences) == ("incomplete", ["no metering stored"])
    with engine.begin() as conn:
        store_fact(conn, read_fact(m.metering))
    assert replay_day(engine, datong, DAY_BEFORE).status == "settled"
    assert replay_day(engine, datong, DAY_BEFORE).status == "identical"
    assert len(published_settlements(engine, DAY_BEFORE)) == 8


def bad_metering(env, **changes):
    payload = Metering.from_envelope(env)
    return payload.model_copy(update=changes).envelope("datong", DAY, "corrected")


def test_malformed_metering_is_dead_lettered_with_a_clear_reason_and_nothing_stored(
    messages, sqlite_url: str
) -> None:
    engine = fresh(sqlite_url)
    worker = SettlementWorker(engine, "unused:9092")
    good = Metering.from_envelope(messages[DAY].metering)
    assets = [
        *good.assets[:-1],
        AssetMetering(asset_id="ghost_meter", enterprise_id="cell_plant", energy_mwh=[0.0] * 96),
    ]
    assets[0] = assets[0].model_copy(update={"enterprise_id": "cathode_plant"})
    env = good.model_copy(update={"assets": assets}).envelope("datong", DAY, "bad")
    assert worker.apply(Topic.METERING, env) is False
    with engine.connect() as conn:
        reason = conn.execute(select(dead_letters.c.reason)).scalar_one()
        assert conn.execute(select(func.count()).select_from(settlement_facts)).scalar_one() == 0
    assert "assets.ghost_meter: not an asset of park datong" in reason
    assert (
        "assets.pv_central.enterprise_id: 'cathode_plant' but the scenario assigns it to 'park_energy'"
        in reason
    )
    assert "Traceback" not in reason


def test_a_second_different_metering_before_settlement_is_kept_as_a_correction(
    messages, sqlite_url: str
) -> None:
    """The original fact is never replaced; the correction is kept beside it and used to settle."""
    from settlement.versions import latest_facts

    engine = fresh(sqlite_url)
    worker = SettlementWorker(engine, "unused:9092")
    assert worker.apply(Topic.METERING, messages[DAY].metering)
    other = Metering.from_envelope(messages[DAY].metering).envelope("datong", DAY, "resent")
    worker.apply(Topic.METERING, other)
    with engine.connect() as conn:
        stored = conn.execute(select(settlement_facts.c.message_id)).scalars().all()
        assert latest_facts(conn, "datong", DAY)["metering"].message_id == other.message_id
        assert conn.execute(select(func.count()).select_from(dead_letters)).scalar_one() == 0
    assert stored == [messages[DAY].metering.message_id]


@pytest.mark.postgres
def test_settles_on_postgresql(messages, postgres_url: str) -> None:
    engine = fresh(postgres_url)
    consume(engine, [messages[DAY_BEFORE], messages[DAY]])
    sts = published_settlements(engine, DAY)
    assert len(sts) == 8
    assert_reconciles(sts)
    with engine.connect() as conn:
        assert verify(conn, "datong")[1] == []
    before = counts(engine)
    consume(engine, [messages[DAY]])
    assert counts(engine) == before


def test_a_failing_settlement_keeps_the_fact_and_replay_settles_later(
    messages, datong, sqlite_url: str, monkeypatch
) -> None:
    import settlement.worker as worker_module

    engine = fresh(sqlite_url)
    worker = SettlementWorker(engine, "unused:9092")
    m = messages[DAY_BEFORE]
    assert worker.apply(Topic.AWARDS, m.day_ahead) and worker.apply(Topic.AWARDS, m.real_time)

    def broken(*_args, **_kwargs):
        raise RuntimeError("history store unavailable")

    monkeypatch.setattr(worker_module, "settle_facts", broken)
    assert worker.apply(Topic.METERING, m.metering)
    with engine.connect() as conn:
        reason = conn.execute(select(dead_letters.c.reason)).scalar_one()
        assert conn.execute(select(func.count()).select_from(settlement_facts)).scalar_one() == 3
    assert "settling datong 2026-07-14 failed: RuntimeError: history store unavailable" in reason
    assert "parkvpp settlement replay --park datong --day 2026-07-14" in reason
    monkeypatch.undo()
    assert replay_day(engine, datong, DAY_BEFORE).status == "settled"
    assert len(published_settlements(engine, DAY_BEFORE)) == 8


def test_incompatible_interval_grids_are_refused_up_front(messages, datong) -> None:
    from settlement.facts import FactError, check_fact, read_fact

    m = Metering.from_envelope(messages[DAY].metering)
    from infra.timeutil import day_intervals

    ten = m.model_copy(
        update={
            "interval_minutes": 10,
            "interval_starts": list(day_intervals(DAY, 10).to_pydatetime()),
            "grid_energy_mwh": [0.0] * 144,
            "assets": [],
            "regulation": None,
        }
    )
    with pytest.raises(
        FactError,
        match="interval_minutes: 10 cannot be mapped onto the market's 15-minute day-ahead intervals",
    ):
        check_fact(read_fact(ten.envelope("datong", DAY)), datong)


def test_replay_keeps_the_recorded_baseline_sources(messages, datong, sqlite_url: str) -> None:
    """Metering of an earlier day stored after the settlement does not change the replay."""
    engine = fresh(sqlite_url)
    consume(engine, [messages[DAY]])  # the day before is not metered yet: its baseline day comes from history
    from settlement.store import day_record

    with engine.connect() as conn:
        sources = day_record(conn, "datong", DAY)["record"]["baseline"]["sources"]
    assert sources[DAY_BEFORE.isoformat()] == "history"
    consume(engine, [messages[DAY_BEFORE]])  # now it is
    report = replay_day(engine, datong, DAY)
    assert (report.status, report.differences) == ("identical", [])

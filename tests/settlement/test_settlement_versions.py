"""Corrections of settled days: version 2 with a difference statement equal to a hand calculation,
ledger reversal and repost (never an edit), replay of every version, approved days kept."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Engine, select

from infra.contracts import Metering, Topic
from infra.db import make_engine, migrate
from infra.registry.audit import entries as audit_entries
from settlement import review, store
from settlement import versions as ver
from settlement.carbon.ledger import verify
from settlement.settle import replay_day
from settlement.tables import carbon_ledger
from settlement.worker import SettlementWorker
from tests.settlement.settlement_checks import assert_reconciles
from tests.settlement.settlement_factory import DAY, DAY_BEFORE, consume

AT = 70  # the corrected interval (17:30): the park imports, no demand response
DELTA = -2.5  # the corrected grid reading is 2.5 MWh lower (more imported)


def corrected_metering(messages, delta: float = DELTA, interval: int = AT):
    m = Metering.from_envelope(messages[DAY].metering)
    grid = list(m.grid_energy_mwh)
    grid[interval] += delta
    return m.model_copy(update={"grid_energy_mwh": grid}).envelope(
        "datong", DAY, "corrected", interval, delta
    )


@pytest.fixture()
def engine(sqlite_url: str, messages) -> Engine:
    migrate(sqlite_url)
    engine = make_engine(sqlite_url)
    consume(engine, [messages[DAY_BEFORE], messages[DAY]])
    return engine


def hand_difference(series: dict, datong) -> tuple[int, int]:
    """The park's money (fen) and emissions (micro-tCO2) difference, by the formulas in the README."""
    rules = datong.market
    h = 0.25
    p_rt = series["p_rt_cny_per_mwh"][AT]
    q_rt = series["q_rt_mw"][AT] * h
    old = series["actual_mwh"][AT]
    new = old + DELTA
    assert old < 0 and new < 0 and series["dr_mw"][AT] == 0

    def excess(actual: float) -> float:
        return max(abs(actual - q_rt) - rules.deviation.free_band_fraction * abs(q_rt), 0.0)

    def fen(x: float) -> int:
        return round(x * 100)

    real_time = fen(new * p_rt - series["q_da_mw"][AT] * h * p_rt) - fen(
        old * p_rt - series["q_da_mw"][AT] * h * p_rt
    )
    deviation = fen(-excess(new) * max(p_rt, 0) * rules.deviation.penalty_price_factor) - fen(
        -excess(old) * max(p_rt, 0) * rules.deviation.penalty_price_factor
    )
    tariff = fen(new * rules.grid_import_tariff_cny_per_mwh) - fen(old * rules.grid_import_tariff_cny_per_mwh)
    tco2 = round(-DELTA * datong.park.carbon.grid_ef_tco2_per_mwh * 1e6)
    return real_time + deviation + tariff, tco2


def test_a_corrected_meter_reading_makes_version_2_with_a_hand_checked_difference(
    engine: Engine, messages, datong
) -> None:
    with engine.connect() as conn:
        series = store.day_record(conn, "datong", DAY)["record"]["series"]
        v1_total = next(
            s for _, s in store.statements(conn, "datong", DAY) if s.account_id == "park"
        ).total_cny
    worker = SettlementWorker(engine, "unused:9092")
    assert worker.apply(Topic.METERING, corrected_metering(messages))
    with engine.connect() as conn:
        record = store.day_record(conn, "datong", DAY)
        archived = ver.versions(conn, "datong", DAY)
        park_v2 = next(s for _, s in store.statements(conn, "datong", DAY) if s.account_id == "park")
        checked, problems = verify(conn, "datong")
        audit = audit_entries(conn, "datong", f"day:{DAY.isoformat()}")
        reversals = (
            conn.execute(select(carbon_ledger.c.entry_key).where(carbon_ledger.c.entry_key.like("%~rev2")))
            .scalars()
            .all()
        )
    assert record["version"] == 2 and [v["version"] for v in archived] == [1, 2]
    diff = archived[1]["difference"]
    money, tco2 = hand_difference(series, datong)
    park = diff["accounts"]["park"]
    assert round(park["total_cny"] * 100) == money == round((park_v2.total_cny - v1_total) * 100)
    assert round(park["tco2"] * 1e6) == tco2
    assert set(park["lines"]) <= {"real_time_energy", "deviation_charge", "grid_import_tariff"}
    assert all(set(line["intervals"]) == {str(AT)} for line in park["lines"].values())
    # the enterprises bear the emissions difference; equipment figures add up to it
    assert round(sum(diff["tco2_by_equipment"].values()) * 1e6) == tco2
    assert problems == [] and checked > 0  # reversal and repost entries keep the ledger intact
    assert reversals  # every changed entry was reversed, none edited
    assert [a["action"] for a in audit] == ["settlement.correction"]
    assert json.loads(audit[0]["after"])["version"] == 2
    with engine.connect() as conn:
        assert_reconciles([s for _, s in store.statements(conn, "datong", DAY)])
    # replay reproduces both versions and the ledger nets to version 2
    report = replay_day(engine, datong, DAY)
    assert (report.status, report.differences) == ("identical", [])
    # the same correction again changes nothing
    worker.apply(Topic.METERING, corrected_metering(messages))
    with engine.connect() as conn:
        assert len(ver.versions(conn, "datong", DAY)) == 2


def test_a_correction_of_an_approved_day_is_booked_in_the_next_open_month(
    engine: Engine, messages, datong
) -> None:
    with engine.begin() as conn:
        review.submit(conn, "datong", "day", DAY, by="preparer")
        review.approve(conn, "datong", "day", DAY, by="approver")
        approved = {s.account_id: s.total_cny for _, s in store.statements(conn, "datong", DAY)}
    SettlementWorker(engine, "unused:9092").apply(Topic.METERING, corrected_metering(messages))
    with engine.connect() as conn:
        kept = {s.account_id: s.total_cny for _, s in store.statements(conn, "datong", DAY)}
        archived = ver.versions(conn, "datong", DAY)
        booked = ver.booked_adjustments(conn, "datong", DAY.replace(month=8, day=1))
        assert verify(conn, "datong")[1] == []
    assert kept == approved  # approved statements are immutable
    assert archived[-1]["version"] == 2 and archived[-1]["booked_month"] == DAY.replace(month=8, day=1)
    assert booked and booked[0]["difference"]["accounts"]["park"]["total_cny"] != 0
    assert replay_day(engine, datong, DAY).differences == []

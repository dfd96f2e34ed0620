"""Hand cases from files, settled by the production code and matched to hand arithmetic to the fen."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from settlement.case import run_case

CASES = sorted((Path(__file__).parent / "cases").glob("*.yaml"))


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_hand_case_matches_to_the_fen(path: Path) -> None:
    outcome = run_case(path)
    assert outcome["mismatches"] == []
    assert outcome["expectations_checked"] >= 3


def test_the_four_kinds_of_case_are_there() -> None:
    assert {p.stem for p in CASES} >= {
        "three_part_deviation",
        "regulation_mileage",
        "demand_response_penalty",
        "tou_tariff_profit_share",
    }


def test_tou_case_separates_market_cost_tariff_bill_and_margin() -> None:
    e = run_case(Path(__file__).parent / "cases" / "tou_tariff_profit_share.yaml")["economics"]
    assert e == {
        "market_cost_cny": -22800.0,
        "tariff_bill_cny": 42920.97,
        "profit_share_paid_cny": 2280.0,
        "operator_margin_cny": 21440.97,
    }


def test_cli_reports_a_wrong_expectation_and_exits_1(tmp_path: Path) -> None:
    from gateway.cli import app

    text = (Path(__file__).parent / "cases" / "three_part_deviation.yaml").read_text()
    ok = CliRunner().invoke(
        app, ["settlement", "case", str(Path(__file__).parent / "cases" / "three_part_deviation.yaml")]
    )
    assert ok.exit_code == 0 and "all match to the fen" in ok.output
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(text.replace("total: -8735", "total: -8735.01"))
    bad = CliRunner().invoke(app, ["settlement", "case", str(wrong), "--json"])
    assert bad.exit_code == 1
    assert json.loads(bad.output)["mismatches"] == ["expect.park.total: -8,735.01 but settled -8,735.00"]
    broken = tmp_path / "broken.yaml"
    broken.write_text(text.replace("price: [300, 400]", "price: [300]"))
    err = CliRunner().invoke(app, ["settlement", "case", str(broken)])
    assert err.exit_code == 2 and "day_ahead.price: must be a list of 2 numbers" in err.output


TARIFF = """
park: datong
version: "2026-07-test"
effective_from: 2026-07-01
source: "[assumption] test tariff"
seasons:
  - months: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    periods:
      - {name: valley, hours: [[0, 8]], price_cny_per_mwh: 250}
      - {name: flat, hours: [[8, 17], [22, 24]], price_cny_per_mwh: 480}
      - {name: peak, hours: [[17, 22]], price_cny_per_mwh: 760}
demand_charge_cny_per_kw_month: 40
enterprises:
  cell_plant: {charge_basis: demand}
"""

GREEN = """record_id,kind,account,start,end,quantity_mwh,price_cny_per_mwh,counterparty,reference
GT-1,green_trade,park,2026-07-15T00:00:00+08:00,2026-07-16T00:00:00+08:00,240,0,wind farm X,trade confirmation 17
GEC-1,gec_purchase,park,2026-07-15T00:00:00+08:00,2026-07-16T00:00:00+08:00,96,5,GEC platform,lot 9
"""


def test_tariff_and_green_records_are_used_by_the_worker_and_the_replay(
    sqlite_url: str, messages, datong, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.cli import app
    from infra.db import make_engine, migrate
    from settlement import store
    from settlement.settle import replay_day
    from tests.settlement.settlement_factory import DAY, consume

    migrate(sqlite_url)
    monkeypatch.setenv("PARKVPP_DATABASE_URL", sqlite_url)
    (tmp_path / "tariff.yaml").write_text(TARIFF)
    (tmp_path / "green.csv").write_text(GREEN)
    loaded = CliRunner().invoke(
        app, ["settlement", "tariff", "load", str(tmp_path / "tariff.yaml"), "--by", "ops"]
    )
    assert loaded.exit_code == 0 and "loaded" in loaded.output
    green = CliRunner().invoke(
        app, ["settlement", "green", "load", str(tmp_path / "green.csv"), "--park", "datong"]
    )
    assert green.exit_code == 0 and "2 new record(s)" in green.output
    engine = make_engine(sqlite_url)
    consume(engine, [messages[DAY]])
    with engine.connect() as conn:
        record = store.day_record(conn, "datong", DAY)["record"]
        sts = {s.account_id: s for _, s in store.statements(conn, "datong", DAY)}
    assert record["tariff_version"] == "2026-07-test" and record["green_records"] == ["GEC-1", "GT-1"]
    cell = {line.item: line for line in sts["cell_plant"].lines}
    assert cell["demand_charge"].amount_cny < 0
    park = {line.item: line for line in sts["park"].lines}
    assert park["green_certificate_purchases"].energy_mwh == pytest.approx(96, abs=1e-6)
    assert park["green_certificate_purchases"].amount_cny == pytest.approx(-480.0, abs=0.011)
    assert record["carbon"]["electricity_mwh"]["green_traded"] >= 240 - 1e-6
    e = record["economics"]
    assert e["tariff_bill_cny"] > 0 and e["operator_margin_cny"] == sts["park_energy"].total_cny
    assert replay_day(engine, datong, DAY).differences == []

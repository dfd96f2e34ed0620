"""Reports, reviews and the commands an operator runs, on a database with two settled days."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from gateway.cli import app
from settlement import report
from settlement.review import ReviewError, record_review, review_state
from tests.settlement.settlement_factory import DAY, DAY_BEFORE

JULY = date(2026, 7, 1)


@pytest.fixture()
def cli(settled: Engine, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PARKVPP_DATABASE_URL", str(settled.url))

    def invoke(*args: str):
        return CliRunner().invoke(app, list(args))

    return invoke


def test_day_summary_has_every_account_and_indicator(settled: Engine, datong) -> None:
    s = report.day_summary(settled, "datong", DAY, datong)
    assert s["accounts"][0]["account_id"] == "park"
    assert {a["account_id"] for a in s["accounts"]} == {"park"} | {e.id for e in datong.park.enterprises}
    park = s["accounts"][0]
    assert set(park) == {"account_id", "lines", "total_cny", "emissions_tco2", "carbon_adjusted_revenue_cny"}
    assert round(sum(park["lines"].values()) * 100) == round(park["total_cny"] * 100)
    ind = s["indicators"]
    # Datong's plan states its energy on the equal-value basis (等价值), so that is its default
    assert ind["electricity_tce_basis"] == "equal_value" and ind["verdict"] in ("pass", "fail")
    assert ind["emissions_tco2"] == pytest.approx(park["emissions_tco2"], abs=1e-5)
    assert s["carbon_price_cny_per_tco2"] == 70 and "[plan]" in s["carbon_price_source"]
    with pytest.raises(LookupError, match="2026-07-16 is not settled"):
        report.day_summary(settled, "datong", date(2026, 7, 16), datong)


def test_daily_report_html_csv_pdf(settled: Engine, datong, tmp_path: Path) -> None:
    paths = report.write_daily(settled, datong, DAY, tmp_path, ("html", "csv", "pdf"))
    html, csv_path, assets_csv, pdf = paths
    page = html.read_text(encoding="utf-8")
    assert "Review state: <strong>draft</strong>" in page
    assert "reconcile with the park statement exactly, to the fen" in page
    for name in ("market", "waterfall", "carbon"):
        image = tmp_path / f"settlement-datong-{DAY}-{name}.png"
        assert image.stat().st_size > 5000 and image.name in page
    assert "pv_central: 8 of 96 intervals estimated" in page
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 20000
    totals: dict[tuple[str, str], int] = {}
    sums: dict[tuple[str, str], int] = defaultdict(int)
    with open(csv_path, encoding="utf-8") as f:
        for row in csv.DictReader(f):
            key = (row["account_id"], row["item"])
            if row["interval_start"] == "total":
                totals[key] = round(float(row["amount_cny"]) * 100)
            else:
                sums[key] += round(float(row["amount_cny"]) * 100)
    assert all(sums[k] == v for k, v in totals.items() if k[1] != "total")
    summary = report.day_summary(settled, "datong", DAY, datong)
    for a in summary["accounts"]:
        assert totals[(a["account_id"], "total")] == round(a["total_cny"] * 100)
    # per asset and interval: the cell plant's assets add up to its statement, item by item
    per_enterprise: dict[tuple[str, str], int] = defaultdict(int)
    with open(assets_csv, encoding="utf-8") as f:
        for row in csv.DictReader(f):
            per_enterprise[(row["enterprise_id"], row["item"])] += round(float(row["amount_cny"]) * 100)
    cell = next(a for a in summary["accounts"] if a["account_id"] == "cell_plant")
    for item in ("energy_supply", "flexibility_payment", "storage_degradation"):
        assert per_enterprise[("cell_plant", item)] == round(cell["lines"][item] * 100)


def test_fragment_for_the_run_report(settled: Engine, datong, tmp_path: Path) -> None:
    fragment = report.render_daily_html(settled, datong, DAY, tmp_path / "run")
    assert fragment.lstrip().startswith("<section") and "<html" not in fragment
    assert (tmp_path / "run" / f"settlement-datong-{DAY}-waterfall.png").exists()


def test_review_states_with_history(settled: Engine, datong) -> None:
    with settled.begin() as conn:
        with pytest.raises(ReviewError, match="a disputed report needs a comment"):
            record_review(conn, "datong", "day", DAY_BEFORE, "disputed", "  ")
        with pytest.raises(ReviewError, match="state: 'maybe' must be one of submitted, approved"):
            record_review(conn, "datong", "day", DAY_BEFORE, "maybe")
        with pytest.raises(ReviewError, match="no settled day"):
            record_review(conn, "datong", "day", date(2026, 8, 1), "submitted")
        with pytest.raises(ReviewError, match="cannot go from draft to approved"):
            record_review(conn, "datong", "day", DAY_BEFORE, "approved", "", "bob")
        record_review(
            conn,
            "datong",
            "day",
            DAY_BEFORE,
            "disputed",
            "real-time price spike at 00:00 looks wrong",
            "alice",
        )
        record_review(conn, "datong", "day", DAY_BEFORE, "submitted", "confirmed with the exchange", "alice")
        with pytest.raises(ReviewError, match="four eyes"):
            record_review(conn, "datong", "day", DAY_BEFORE, "approved", "", "alice")
        record_review(conn, "datong", "day", DAY_BEFORE, "approved", "", "bob")
        with pytest.raises(ReviewError, match="approved and immutable"):
            record_review(conn, "datong", "day", DAY_BEFORE, "disputed", "changed my mind", "carol")
        state = review_state(conn, "datong", "day", DAY_BEFORE)
    assert (state["state"], state["reviewer"], state["preparer"]) == ("approved", "bob", "alice")
    assert state["approved_versions"] == {DAY_BEFORE.isoformat(): 1}
    assert [h["state"] for h in state["history"]] == ["disputed", "submitted", "approved"]
    assert report.day_summary(settled, "datong", DAY_BEFORE, datong)["review"]["state"] == "approved"
    with settled.begin() as conn:  # leave the shared fixture as it was
        record_review(conn, "datong", "day", DAY_BEFORE, "reopened", "test cleanup", "carol")


def test_monthly_rollup_sums_the_days(settled: Engine, datong, tmp_path: Path) -> None:
    m = report.month_summary(settled, datong, JULY)
    assert m["days"] == [DAY_BEFORE.isoformat(), DAY.isoformat()] and len(m["missing_days"]) == 29
    daily = [report.day_summary(settled, "datong", d, datong) for d in (DAY_BEFORE, DAY)]
    for account in m["accounts"]:
        days = [next(a for a in s["accounts"] if a["account_id"] == account["account_id"]) for s in daily]
        assert round(account["total_cny"] * 100) == sum(round(a["total_cny"] * 100) for a in days)
        assert account["emissions_tco2"] == pytest.approx(sum(a["emissions_tco2"] for a in days), abs=1e-6)
    paths = report.write_monthly(settled, datong, JULY, tmp_path, ("html", "csv", "pdf"))
    assert [p.suffix for p in paths] == [".html", ".csv", ".pdf"]
    assert "Monthly settlement" in paths[0].read_text(encoding="utf-8")


def test_commands(cli, tmp_path: Path) -> None:
    shown = cli("settlement", "show", "--day", str(DAY), "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["accounts"][0]["account_id"] == "park"
    replay = cli("settlement", "replay", "--day", str(DAY))
    assert (replay.exit_code, replay.output.strip()) == (0, f"datong {DAY}: identical")
    daily = cli("settlement", "daily", "--day", str(DAY), "--format", "csv", "--out", str(tmp_path))
    assert daily.exit_code == 0 and (tmp_path / f"settlement-datong-{DAY}.csv").exists()
    monthly = cli("settlement", "monthly", "--month", "2026-07", "--format", "html", "--out", str(tmp_path))
    assert monthly.exit_code == 0 and (tmp_path / "settlement-datong-2026-07.html").exists()
    no_comment = cli("settlement", "review", "--day", str(DAY), "--state", "disputed", "--by", "dave")
    assert no_comment.exit_code == 2 and "a disputed report needs a comment" in no_comment.output
    month_review = cli("settlement", "review", "--month", "2026-07", "--state", "submitted", "--by", "carol")
    assert month_review.exit_code == 2 and "29 day(s) not settled (2026-07-01" in month_review.output
    bad_day = cli("settlement", "show", "--day", "2026-13-01")
    assert bad_day.exit_code == 2 and "--day: '2026-13-01' is not a date like 2026-07-15" in bad_day.output
    ind = cli(
        "carbon",
        "indicators",
        "--start",
        str(DAY_BEFORE),
        "--end",
        "2026-07-16",
        "--account",
        "cell_plant",
        "--json",
    )
    data = json.loads(ind.output)
    assert data["settled_days"] == 2 and data["emissions_tco2"] > 0 and data["account"] == "cell_plant"
    backwards = cli("carbon", "indicators", "--start", str(DAY), "--end", str(DAY))
    assert backwards.exit_code == 2 and "must be after --start" in backwards.output
    entries = json.loads(cli("ledger", "show", "--day", str(DAY), "--account", "cell_plant", "--json").output)
    assert entries and all(any(p[0].startswith("cell_plant") for p in e["postings"]) for e in entries)


def test_manual_carbon_asset_entries(cli, settled: Engine, tmp_path: Path) -> None:
    entry_id = json.loads(
        cli("ledger", "show", "--day", str(DAY), "--account", "cell_plant/cell_plant_load", "--json").output
    )[0]["entry_id"]
    good = tmp_path / "assets.yaml"
    good.write_text(
        f"""park: datong
entries:
  - {{day: {DAY}, kind: allowance_allocation, account: cathode_plant, quantity_tco2: 1200, reference: CEA-2026}}
  - {{day: {DAY}, kind: offset_purchase, account: park_energy, offset: ccer, quantity_tco2: 50}}
  - {{day: {DAY}, kind: offset_retirement, account: park_energy, offset: ccer, quantity_tco2: 50}}
  - {{day: {DAY}, kind: sink_removal, account: park_services, quantity_tco2: 12.5, memo: green space}}
  - {{day: {DAY}, kind: fuel_use, account: park_logistics, fuel: {{fuel: diesel, quantity: 2.5, unit: t}}}}
  - {{day: {DAY}, kind: heat_use, account: cathode_plant, fossil_gj: 800, non_fossil_gj: 200}}
  - day: {DAY}
    kind: adjustment
    account: cell_plant
    corrects: {entry_id}
    memo: meter recalibration
    postings: [[cell_plant/cell_plant_load, emissions.scope2.electricity_grid, tCO2, 1.5], ["external:atmosphere", co2, tCO2, -1.5]]
""",
        encoding="utf-8",
    )
    before = json.loads(
        cli("carbon", "indicators", "--start", str(DAY), "--end", "2026-07-16", "--json").output
    )
    posted = cli("ledger", "post", str(good))
    assert posted.exit_code == 0 and "posted 7 transaction(s)" in posted.output
    assert cli("ledger", "post", str(good)).exit_code == 0  # again: nothing new
    after = json.loads(
        cli("carbon", "indicators", "--start", str(DAY), "--end", "2026-07-16", "--json").output
    )
    # + 1.5 t adjustment; diesel 2,500 kg x 42.652 MJ x 74.1 t/TJ = 7.901283 t; fossil heat 800 GJ x 0.11 = 88 t.
    assert after["emissions_tco2"] == pytest.approx(before["emissions_tco2"] + 1.5 + 7.901283 + 88, abs=1e-5)
    # energy: diesel 2,500 kg x 1.4571 kgce = 3.64275 tce; heat 1,000 GJ x 0.03412 = 34.12 tce.
    assert after["energy_tce"] == pytest.approx(before["energy_tce"] + 3.64275 + 34.12, abs=1e-5)
    logistics = json.loads(
        cli(
            "carbon",
            "indicators",
            "--start",
            str(DAY),
            "--end",
            "2026-07-16",
            "--account",
            "park_logistics",
            "--json",
        ).output
    )
    assert logistics["emissions_by_source_tco2"]["scope1.fuel.diesel"] == pytest.approx(7.901283, abs=1e-6)
    assert after["offsets_retired_tco2"] == pytest.approx(50.0) and after["removals_tco2"] == pytest.approx(
        -12.5
    )
    assert cli("ledger", "verify").exit_code == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        f"""park: datong
entries:
  - {{day: {DAY}, kind: sink_removal, account: park_services, quantity_tco2: 3}}
  - day: {DAY}
    kind: adjustment
    account: cell_plant
    corrects: {entry_id}
    postings: [[cell_plant/cell_plant_load, emissions.scope2.electricity_grid, tCO2, 1.5]]
""",
        encoding="utf-8",
    )
    refused = cli("ledger", "post", str(bad))
    assert (
        refused.exit_code == 2
        and "entries[1] (adjustment)" in refused.output
        and "must balance" in refused.output
    )
    unchanged = json.loads(
        cli("carbon", "indicators", "--start", str(DAY), "--end", "2026-07-16", "--json").output
    )
    assert unchanged["removals_tco2"] == pytest.approx(-12.5)  # the whole file was refused
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(
        f"park: datong\nentries: [{{day: {DAY}, kind: sink_removal, account: mars_base, quantity_tco2: 1}}]\n",
        encoding="utf-8",
    )
    assert (
        "'mars_base' is not an enterprise or equipment account" in cli("ledger", "post", str(unknown)).output
    )


def test_report_states_version_both_tce_bases_and_reconciles_emissions(
    settled: Engine, datong, tmp_path: Path
) -> None:
    s = report.day_summary(settled, "datong", DAY, datong)
    assert s["version"] == 1 and s["state"] in ("draft", "submitted", "approved", "disputed", "reopened")
    bases = s["indicators"]["by_basis"]
    assert set(bases) == {"calorific", "equal_value"}
    assert next(iter(bases)) == s["indicators"]["electricity_tce_basis"]  # the park's own basis first
    assert bases["equal_value"]["energy_tce"] > bases["calorific"]["energy_tce"]
    rec = s["emissions_reconciliation"]
    park = next(a for a in s["accounts"] if a["account_id"] == "park")
    assert rec["settled_tco2"] == pytest.approx(park["emissions_tco2"], abs=1e-3)
    assert sum(r["tco2"] for r in rec["rows"]) == pytest.approx(rec["settled_tco2"], abs=1e-3)
    html = report.render_daily_html(settled, datong, DAY, tmp_path)
    assert "Statement version <strong>1</strong>" in html and "equal_value basis" in html
    assert "Offer-expected and settled emissions" in html


def test_reconciliation_explains_the_offer_figure(datong) -> None:
    carbon = {
        "grid_ef_tco2_per_mwh": 0.8325,
        "imported_mwh": 4000.0,
        "electricity_mwh": {"grid": 1000.0, "green_traded": 2000.0, "certificate_covered": 1000.0},
        "exported_other_mwh": 10.0,
        "fuel_tco2": 5.0,
    }
    rec = report.emissions_reconciliation(carbon, 3278.0, datong)
    assert rec["settled_tco2"] == pytest.approx(1000 * 0.8325 - 10 * 0.8325 + 5)
    assert rec["volume_difference_tco2"] == pytest.approx(4000 * 0.8325 + 5 - 3278.0)
    assert "zero-rating green-traded and certificate-covered imports (-2,497.5 t)" in rec["explanation"]

"""Meter and price files through the command line: idempotent, all or nothing, every bad row named."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from gateway.cli import app
from infra.db import make_engine
from infra.timeseries import read
from infra.timeseries.tables import ts_revisions

DAY = date(2026, 7, 15)


@pytest.fixture()
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_url: str) -> CliRunner:
    """The command line against a fresh PostgreSQL schema."""
    monkeypatch.setenv("PARKVPP_DATABASE_URL", postgres_url)
    return CliRunner()


def _revisions(url: str) -> int:
    with make_engine(url).connect() as conn:
        return conn.execute(select(func.count()).select_from(ts_revisions)).scalar_one()


def _meter_file(path: Path, rows: list[str]) -> Path:
    path.write_text("timestamp,series_id,value,quality\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def _day_rows(series: str = "cell_plant_load.load_mw") -> list[str]:
    return [
        f"2026-07-15T{h:02d}:{m:02d}:00+08:00,{series},{100 + h + m / 60:.2f},good"
        for h in range(24)
        for m in (0, 15, 30, 45)
    ]


def test_the_same_meter_file_twice_stores_nothing_new(
    cli: CliRunner, tmp_path: Path, postgres_url: str
) -> None:
    path = _meter_file(tmp_path / "meters.csv", _day_rows())
    first = cli.invoke(app, ["ingest", "meters", str(path), "--park", "datong"])
    assert first.exit_code == 0, first.output
    assert "96 new" in first.output
    stored = _revisions(postgres_url)
    second = cli.invoke(app, ["ingest", "meters", str(path), "--park", "datong"])
    assert second.exit_code == 0 and "0 new and 0 corrected" in second.output
    assert _revisions(postgres_url) == stored
    corrected = _meter_file(
        tmp_path / "fix.csv", ["2026-07-15T10:00:00+08:00,cell_plant_load.load_mw,99.5,estimated"]
    )
    third = cli.invoke(app, ["ingest", "meters", str(corrected), "--park", "datong"])
    assert "1 corrected" in third.output and _revisions(postgres_url) == stored + 1


def test_a_file_with_one_bad_row_stores_nothing_and_names_the_row(
    cli: CliRunner, tmp_path: Path, postgres_url: str
) -> None:
    rows = _day_rows()
    rows[41] = "2026-07-15T10:15:00+08:00,cell_plant_load.load_mw,1e400,good"
    path = _meter_file(tmp_path / "bad.csv", rows)
    result = cli.invoke(app, ["ingest", "meters", str(path), "--park", "datong"])
    assert result.exit_code == 2
    assert "row 43: value: '1e400' must be a finite number" in result.output
    assert "nothing stored" in result.output and "Traceback" not in result.output
    assert _revisions(postgres_url) == 0


def test_every_problem_of_a_file_is_listed(cli: CliRunner, tmp_path: Path) -> None:
    path = _meter_file(
        tmp_path / "bad.csv",
        [
            "2026-07-15T00:00:00,cell_plant_load.load_mw,1,good",
            "yesterday,cell_plant_load.load_mw,1,good",
            "2026-07-15T00:15:00+08:00,cell_plant_load.load_mw,9999,good",
            "2026-07-15T00:30:00+08:00,Cell Plant,1,good",
            "2026-07-15T00:45:00+08:00,cell_plant_load.load_mw,1,perfect",
            "2026-07-15T00:50:00+08:00,cell_plant_load.load_mw,1,good",
        ],
    )
    command = ["ingest", "meters", str(path), "--park", "datong", "--interval-minutes", "15"]
    out = cli.invoke(app, command).output
    for row, text in (
        (2, "has no UTC offset"),
        (3, "is not ISO 8601"),
        (4, "outside [-5, 232.5]"),
        (5, "is not '<owner>.<quantity>'"),
        (6, "quality: 'perfect'"),
        (7, "not on the 15-minute grid"),
    ):
        assert f"row {row}:" in out and text in out, (row, out)
    (tmp_path / "folder.csv").mkdir()
    folder = cli.invoke(app, ["ingest", "meters", str(tmp_path / "folder.csv"), "--park", "datong"])
    assert folder.exit_code == 2 and "is a directory" in folder.output
    (tmp_path / "binary.csv").write_bytes(bytes(range(256)))
    binary = cli.invoke(app, ["ingest", "meters", str(tmp_path / "binary.csv"), "--park", "datong"])
    assert binary.exit_code == 2 and "not UTF-8" in binary.output


def test_offsets_that_change_across_daylight_saving_land_on_the_right_interval(
    cli: CliRunner, tmp_path: Path, postgres_url: str
) -> None:
    """A London meter crossing the spring DST change: 00:45+00:00 is followed by 02:00+01:00."""
    rows = [
        "2026-03-29T00:30:00+00:00,uk_pv.pv_mw,1.0,good",
        "2026-03-29T00:45:00+00:00,uk_pv.pv_mw,2.0,good",
        "2026-03-29T02:00:00+01:00,uk_pv.pv_mw,3.0,good",
        "2026-03-29T02:15:00+01:00,uk_pv.pv_mw,4.0,good",
    ]
    result = cli.invoke(
        app, ["ingest", "meters", str(_meter_file(tmp_path / "uk.csv", rows)), "--park", "datong"]
    )
    assert result.exit_code == 0, result.output
    got = read(make_engine(postgres_url), "datong", ["uk_pv.pv_mw"], date(2026, 3, 29), date(2026, 3, 30))
    values = got["uk_pv.pv_mw"].dropna()
    assert [ts.strftime("%H:%M") for ts in values.index] == ["08:30", "08:45", "09:00", "09:15"]
    assert values.tolist() == [1.0, 2.0, 3.0, 4.0]


def test_prices_are_checked_against_the_market_limits(
    cli: CliRunner, tmp_path: Path, postgres_url: str
) -> None:
    path = tmp_path / "prices.csv"
    path.write_text(
        "timestamp,market,price\n"
        "2026-07-15T00:00:00+08:00,day_ahead,312.5\n"
        "2026-07-15T00:00:00+08:00,real_time,1600\n"
        "2026-07-15T00:00:00+08:00,intraday,1\n",
        encoding="utf-8",
    )
    bad = cli.invoke(app, ["ingest", "prices", str(path), "--park", "datong", "--interval-minutes", "15"])
    assert bad.exit_code == 2
    assert (
        "row 3: value: market.price_rt_cny_per_mwh 1600 is outside [0, 1500] (clearing limits" in bad.output
    )
    assert "row 4: market: 'intraday'" in bad.output
    path.write_text("timestamp,market,price\n2026-07-15T00:00:00+08:00,day_ahead,312.5\n", encoding="utf-8")
    good = cli.invoke(app, ["ingest", "prices", str(path), "--park", "datong", "--interval-minutes", "15"])
    assert good.exit_code == 0, good.output
    got = read(
        make_engine(postgres_url), "datong", ["market.price_da_cny_per_mwh"], DAY, DAY + timedelta(days=1)
    )
    assert got.iloc[0, 0] == 312.5

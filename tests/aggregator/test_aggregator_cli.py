"""``parkvpp aggregate`` and ``parkvpp bench aggregator`` as an operator runs them."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from gateway.cli import app
from infra.contracts import Topic
from infra.db import make_engine, migrate
from infra.db.outbox import enqueue
from tests.aggregator.aggregator_tools import DAY


@pytest.fixture()
def database(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("PARKVPP_DATABASE_URL", sqlite_url)
    return sqlite_url


def test_aggregate_without_a_stored_forecast_says_how_to_make_one(database):
    result = CliRunner().invoke(app, ["aggregate", "--park", "datong", "--date", DAY.isoformat()])
    assert result.exit_code == 1
    assert "No stored day-ahead forecast for park datong on 2026-07-15" in result.output
    assert "parkvpp forecast issue --park datong --date 2026-07-15" in result.output


def test_aggregate_prints_the_offer_and_the_carbon_trade_off(database, datong_forecast):
    migrate(database)
    with make_engine(database).begin() as conn:
        enqueue(conn, Topic.FORECASTS, datong_forecast.envelope("datong", DAY, "day_ahead", "cli"))
    result = CliRunner().invoke(
        app, ["aggregate", "--park", "datong", "--date", DAY.isoformat(), "--carbon-price-sweep", "0,300"]
    )
    assert result.exit_code == 0, result.output
    assert "Day-ahead offer, park datong" in result.output
    assert "carbon price trade-off" in result.output
    sweep = result.output.split("carbon price trade-off")[1]
    first_cells = [line.split("│")[1].strip() for line in sweep.splitlines() if line.startswith("│")]
    assert [c for c in first_cells if c] == ["0", "300"]  # one row per carbon price


def test_aggregate_rejects_a_bad_sweep(database):
    result = CliRunner().invoke(app, ["aggregate", "--park", "datong", "--carbon-price-sweep", "70,cheap"])
    assert result.exit_code != 0
    assert "0,70,150,300" in result.output


@pytest.fixture()
def metered_datong(database: str) -> str:
    """The store holds Datong's metered default day (the benchmark's input), written by the simulator."""
    from datetime import timedelta

    from infra.registry import open_portfolio
    from sim.backfill import backfill

    scenario = open_portfolio(database, "datong", DAY)
    backfill(make_engine(database), scenario, DAY, DAY + timedelta(days=1), lambda _m: None)
    return database


def test_bench_prints_one_json_object_with_both_approaches(metered_datong, monkeypatch):
    monkeypatch.setenv("PARKVPP_DEFAULT_DAY", DAY.isoformat())
    result = CliRunner().invoke(app, ["bench", "aggregator", "--json", "--devices", "150"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    for key in (
        "aggregated_seconds",
        "full_seconds",
        "speedup",
        "gap_percent",
        "datong_offer_dispatch_seconds_warm",
    ):
        assert key in figures
    assert figures["flexible_devices"] == 150 and figures["split_infeasible_devices"] == 0
    assert (
        0 <= figures["gap_percent"] < 2.0
    )  # the split schedule is feasible, so never better than the optimum
    assert figures["datong_offer_dispatch_seconds_warm"] < 20  # generous sanity bound; the target is 3 s

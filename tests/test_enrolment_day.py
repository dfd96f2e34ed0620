"""An enterprise enrols a battery with the CLI; it takes part from the next market day on.

Two real market days (every service over Kafka): before the enrolment (the session's finished
Datong day, ``datong_day`` in conftest), and with the battery approved by a second person. The
battery is in day 2's offer, dispatch, metering (stored through the telemetry worker) and its
enterprise's statement. After it is withdrawn, the portfolio every service loads for day 3
(``infra.registry.portfolio``, the same call that put it into day 2) no longer holds it and is
day 1's again; the statements of the days before each change stay byte for byte the same. (Day 3
is not run end to end: day 2 already shows every service following the portfolio, and a third
day would add 80 s to CI.)
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from gateway.cli import app
from gateway.run_day import run_day
from infra.contracts import Dispatch, Metering, Offer
from infra.db import make_engine
from infra.db.outbox import stored_json
from infra.registry.portfolio import portfolio
from infra.timeseries import read
from settlement.store import asset_amounts

pytestmark = pytest.mark.slow

PARK, DAY = "datong", date(2026, 7, 15)  # day 1 is the session's finished Datong day (conftest)
BATTERY = {
    "id": "cell_bess_2",
    "name": "Cell plant battery 2 (enrolled)",
    "type": "battery",
    "enterprise": "cell_plant",
    "connection": "substation_220kv",
    "power_mw": 20,
    "energy_mwh": 40,
    "charge_efficiency": 0.95,
    "discharge_efficiency": 0.95,
    "soc_min_fraction": 0.1,
    "soc_max_fraction": 0.9,
    "soc_initial_fraction": 0.5,
    "degradation_cny_per_mwh": 20,
    "source": "[assumption] enrolment test: a 2 h LFP battery like the plant's existing one",
}


def _statements(url: str, day: date) -> list[str]:
    with make_engine(url).connect() as conn:
        return stored_json(conn, PARK, day, "settlement")


def _settled_assets(url: str, day: date) -> list[str]:
    with make_engine(url).connect() as conn:
        return asset_amounts(conn, PARK, day)[0]


def _one(outcome, schema: str, cls):
    return cls.from_envelope(outcome.facts[schema][0])


def test_an_enrolled_battery_joins_the_next_day_and_a_withdrawn_one_leaves(
    tmp_path: Path, datong_day, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, day1 = datong_day.settings, datong_day.outcome
    sqlite_url = settings.database_url
    assert (day1.park_id, day1.day) == (PARK, DAY)
    monkeypatch.setenv("PARKVPP_DATABASE_URL", sqlite_url)
    cli = CliRunner()

    day1_statements = _statements(sqlite_url, DAY)
    assert "cell_bess_2" not in {a.id for a in day1.scenario.park.assets}

    spec = tmp_path / "battery.yaml"
    spec.write_text(yaml.safe_dump(BATTERY), encoding="utf-8")
    submitted = cli.invoke(
        app, ["assets", "submit", str(spec), "--park", PARK, "--by", "cell_plant_engineer"]
    )
    assert submitted.exit_code == 0, submitted.output
    request = submitted.output.split(":")[0].strip()
    refused = cli.invoke(app, ["assets", "approve", request, "--by", "cell_plant_engineer"])
    assert refused.exit_code == 2 and "four eyes" in refused.output
    approved = cli.invoke(app, ["assets", "approve", request, "--by", "park_operator"])
    assert approved.exit_code == 0 and f"active from {DAY + timedelta(days=1)}" in approved.output

    day2 = run_day(PARK, DAY + timedelta(days=1), settings)
    assert "cell_bess_2" in {a.id for a in day2.scenario.park.assets}
    assert _one(day2, "offer", Offer).scenario_version == day2.scenario.version != day1.scenario.version
    dispatch = _one(day2, "dispatch", Dispatch)
    assert "cell_bess_2" in {a.asset_id for a in dispatch.assets}
    assert "cell_bess_2" in {a.asset_id for a in _one(day2, "metering", Metering).assets}
    settled_assets = _settled_assets(sqlite_url, DAY + timedelta(days=1))
    assert "cell_bess_2" in settled_assets  # settled, and so in its enterprise's statement
    assert "cell_bess_2" not in _settled_assets(sqlite_url, DAY)
    metered = read(make_engine(sqlite_url), PARK, ["cell_bess_2.energy_mwh"], DAY, DAY + timedelta(days=2))
    assert metered.iloc[:96].isna().all().all() and metered.iloc[96:].notna().any().any()

    withdrawn = cli.invoke(app, ["assets", "withdraw", request, "--by", "park_operator", "--reason", "sold"])
    assert withdrawn.exit_code == 0, withdrawn.output
    day2_statements = _statements(sqlite_url, DAY + timedelta(days=1))

    day3 = portfolio(make_engine(sqlite_url), PARK, DAY + timedelta(days=2))
    assert "cell_bess_2" not in {a.id for a in day3.park.assets}
    assert "cell_bess_2" in {
        a.id for a in portfolio(make_engine(sqlite_url), PARK, DAY + timedelta(days=1)).park.assets
    }
    assert day3.version == day1.scenario.version  # the same portfolio as before the enrolment

    assert _statements(sqlite_url, DAY) == day1_statements
    assert _statements(sqlite_url, DAY + timedelta(days=1)) == day2_statements

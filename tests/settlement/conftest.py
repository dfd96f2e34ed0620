"""Settlement fixtures: realistic Datong messages and a database with two settled days."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine

from infra.db import make_engine, migrate
from infra.scenario import load_scenario
from infra.scenario.model import Scenario
from tests.settlement.settlement_factory import DAY, DAY_BEFORE, DayMessages, consume, make_day


@pytest.fixture(scope="session")
def datong() -> Scenario:
    return load_scenario("datong")


@pytest.fixture(scope="session")
def messages(datong: Scenario) -> dict[date, DayMessages]:
    """The day before (regulation only) and the day (DR, regulation, meter gaps, 5-minute RT prices)."""
    return {
        DAY_BEFORE: make_day(datong, DAY_BEFORE, regulation_mw=20),
        DAY: make_day(
            datong,
            DAY,
            dr_mw=20,
            regulation_mw=20,
            rt_minutes=5,
            gaps={"pv_central": (40, 48), "cell_plant_load": (10, 12)},
        ),
    }


@pytest.fixture(scope="module")
def settled(tmp_path_factory: pytest.TempPathFactory, messages: dict[date, DayMessages]) -> Engine:
    """A SQLite database where both days were consumed and settled (read-only for tests)."""
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('settled')) / 'parkvpp.sqlite'}"
    migrate(url)
    engine = make_engine(url)
    consume(engine, [messages[DAY_BEFORE], messages[DAY]])
    return engine

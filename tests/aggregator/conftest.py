"""Aggregator fixtures: Datong and a forecast made from its simulated history."""

from __future__ import annotations

import pytest

from infra.contracts import ForecastSet
from infra.scenario import Scenario, load_scenario
from sim.forecasts import forecast_from_history
from tests.aggregator.aggregator_tools import DAY


@pytest.fixture(scope="session")
def datong() -> Scenario:
    return load_scenario("datong")


@pytest.fixture(scope="session")
def datong_forecast(datong: Scenario) -> ForecastSet:
    return forecast_from_history(datong, DAY)

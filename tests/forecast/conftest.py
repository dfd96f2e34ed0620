"""Forecast test fixtures: a small park cut from Datong and fast service settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.scenario import load_file
from infra.scenario.model import Scenario

MINI_PARK = Path(__file__).with_name("mini_forecast.yaml")


@pytest.fixture(scope="session")
def mini_scenario() -> Scenario:
    return load_file(MINI_PARK)


@pytest.fixture()
def fast_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Short backtests and training windows: the same code paths, a fraction of the work."""
    monkeypatch.setenv("PARKVPP_FORECAST_BACKTEST_DAYS", "7")
    monkeypatch.setenv("PARKVPP_FORECAST_TRAIN_DAYS", "28")
    monkeypatch.setenv("PARKVPP_FORECAST_REFIT_DAYS", "7")

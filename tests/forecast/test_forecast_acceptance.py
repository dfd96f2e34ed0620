"""The issue's acceptance bar on the Datong history, and the scheduler's timetable."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select as sql_select
from typer.testing import CliRunner

from forecast.backtest import select
from forecast.config import ForecastConfig, horizon_spec
from forecast.features import context_frame, scenario_site, weather_names
from forecast.history import read_history
from forecast.models import UNIVARIATE, single_threaded
from forecast.report import DONE_WHEN_SERIES as DONE
from forecast.series import scenario_series
from forecast.tables import forecast_issues
from forecast.worker import due_issues, run_scheduler
from gateway.cli import app
from infra.scenario import load_scenario
from infra.timeutil import MARKET_TZ
from tests.forecast.forecast_data import filled_store


@pytest.fixture(scope="module")
def datong_history(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """Datong's recorded history as the forecast service reads it from the store."""
    scenario = load_scenario("datong")
    url = f"sqlite:///{tmp_path_factory.mktemp('datong') / 'store.sqlite'}"
    engine = filled_store(url, scenario, date(2026, 2, 20), date(2026, 7, 14))
    names = [s.series_id for s in scenario_series(scenario)] + weather_names()
    return read_history(engine, scenario, names, date(2026, 2, 20), date(2026, 7, 14))


@pytest.mark.parametrize("series_id", ["park.load_mw", "park.pv_mw", "park.wind_mw"])
def test_datong_day_ahead_beats_seasonal_naive_with_calibrated_bands(
    series_id: str, datong_history: pd.DataFrame
) -> None:
    """Default settings: 21 day-ahead issues before 2026-07-13, as `parkvpp forecast backtest` runs them."""
    scenario = load_scenario("datong")
    cfg = ForecastConfig()
    as_of = pd.Timestamp("2026-07-13", tz=MARKET_TZ)
    frame = datong_history
    spec = next(s for s in scenario_series(scenario) if s.series_id == series_id)
    with single_threaded():
        sel = select(
            spec,
            scenario,
            frame[series_id],
            context_frame(scenario_site(scenario), frame),
            as_of,
            horizon_spec("day_ahead"),
            540,
            cfg.quantiles,
            cfg.backtest_days,
            cfg.refit_days,
            cfg.train_days,
        )
    # Wind since the simulator's realistic 15-minute wind (OU mesoscale fluctuations): a day-ahead
    # model without a hub-height wind forecast gains little over yesterday; it must not lose.
    min_skill = 0.0 if series_id == "park.wind_mw" else 0.15
    assert sel.skill_vs_naive is not None and sel.skill_vs_naive >= min_skill
    assert abs(sel.selected["coverage_10_90"] - 0.80) <= 0.05
    # Time-series models are backtested on every third issue (they refit at each one).
    assert sel.origins == (cfg.backtest_days if sel.model not in UNIVARIATE else -(-cfg.backtest_days // 3))
    assert {"mae", "rmse", "nmae", "pinball"} <= set(sel.selected)
    if series_id != "park.load_mw":
        assert sel.selected["accuracy"] > 0.85  # grid-code accuracy 1 - RMSE / capacity
    else:
        assert sel.selected["mape"] < 0.05


def test_scheduler_timetable() -> None:
    scenario = load_scenario("datong")
    cfg = ForecastConfig(schedule_72h=True)
    before = due_issues(scenario, datetime(2026, 7, 14, 8, 59, tzinfo=MARKET_TZ), cfg)
    assert before == [("intraday", date(2026, 7, 14), datetime(2026, 7, 14, 8, 45, tzinfo=MARKET_TZ))]
    after = due_issues(scenario, datetime(2026, 7, 14, 9, 7, tzinfo=MARKET_TZ), cfg)
    issue_time = datetime(2026, 7, 14, 9, 0, tzinfo=MARKET_TZ)
    assert ("day_ahead", date(2026, 7, 15), issue_time) in after
    assert ("72h", date(2026, 7, 15), issue_time) in after
    assert ("intraday", date(2026, 7, 14), issue_time) in after


def test_issue_command_prints_the_set_and_stores_it(
    mini_park_dir: None, fast_settings: None, sqlite_url: str, monkeypatch
) -> None:
    monkeypatch.setenv("PARKVPP_DATABASE_URL", sqlite_url)
    filled_store(sqlite_url, load_scenario("mini_forecast"))
    result = CliRunner().invoke(app, ["forecast", "issue", "--park", "mini_forecast", "--date", "2026-07-15"])
    assert result.exit_code == 0, result.output
    assert (
        "mini_forecast day_ahead forecast for 2026-07-15, issued 2026-07-14T09:00:00+08:00" in result.output
    )
    assert "park.wind_mw" in result.output and "stored in the outbox" in result.output
    bad = CliRunner().invoke(
        app,
        [
            "forecast",
            "issue",
            "--park",
            "mini_forecast",
            "--date",
            "2026-07-15",
            "--issued-at",
            "2026-07-16T09:00",
        ],
    )
    assert (
        bad.exit_code == 2 and "--issued-at=2026-07-16T09:00:00: must carry a timezone offset" in bad.output
    )


@pytest.fixture()
def mini_park_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The small test park made loadable by name (PARKVPP_SCENARIO_DIRS)."""
    (tmp_path / "parks").mkdir()
    (tmp_path / "parks" / "mini_forecast.yaml").write_text(
        Path(__file__).with_name("mini_forecast.yaml").read_text()
    )
    monkeypatch.setenv("PARKVPP_SCENARIO_DIRS", str(tmp_path))
    load_scenario.cache_clear()
    yield
    load_scenario.cache_clear()


def test_backtest_command_json(
    mini_park_dir: None, fast_settings: None, sqlite_url: str, monkeypatch
) -> None:
    monkeypatch.setenv("PARKVPP_DATABASE_URL", sqlite_url)
    filled_store(sqlite_url, load_scenario("mini_forecast"))
    result = CliRunner().invoke(app, ["forecast", "backtest", "--park", "mini_forecast", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(next(line for line in result.output.splitlines() if line.startswith("{")))
    rows = {r["series_id"]: r for r in report["series"]}
    assert report["selected_as_of"] == "2026-07-13T00:00:00+08:00" and len(rows) == 9
    wind = rows["park.wind_mw"]
    assert wind["issues"] == 7 and wind["candidates"].keys() == {
        "seasonal_naive",
        "stl",
        "linear_exog",
        "gbm_exog",
    }
    assert {"nmae", "mae", "rmse", "pinball", "coverage_10_90", "accuracy", "skill"} <= wind.keys()
    assert rows["cell_plant_load.load_mw"]["mape"] is not None and rows["park.wind_mw"]["mape"] is None
    assert [c["what"].split(":")[0] for c in report["checks"]] == [s for s in DONE for _ in range(2)]
    intraday = CliRunner().invoke(
        app, ["forecast", "backtest", "--park", "mini_forecast", "--horizon", "intraday"]
    )
    assert intraday.exit_code == 0, intraday.output
    assert "park.load_mw" in intraday.output and "intraday backtest" in intraday.output


def test_scheduler_issues_what_is_due_once(
    mini_park_dir: None, fast_settings: None, sqlite_url: str, monkeypatch
) -> None:
    monkeypatch.setenv("PARKVPP_FORECAST_SCHEDULE_72H", "0")
    engine = filled_store(sqlite_url, load_scenario("mini_forecast"))
    stop = threading.Event()
    clock = lambda: datetime(2026, 7, 14, 9, 5, tzinfo=MARKET_TZ)  # noqa: E731
    thread = threading.Thread(
        target=run_scheduler, args=(engine, ["mini_forecast"], stop, 0.2, clock), daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 120
    issued: list[tuple[str, datetime]] = []
    while time.monotonic() < deadline and len(issued) < 2:
        time.sleep(0.5)
        with engine.connect() as conn:
            issued = conn.execute(sql_select(forecast_issues.c.horizon, forecast_issues.c.issued_at)).all()
    time.sleep(1.0)  # a few more polls: nothing is issued twice
    stop.set()
    thread.join(30)
    with engine.connect() as conn:
        issued = sorted(
            conn.execute(sql_select(forecast_issues.c.horizon, forecast_issues.c.issued_at)).all()
        )
    at_nine = datetime(2026, 7, 14, 9, 0, tzinfo=MARKET_TZ)
    assert issued == [("day_ahead", at_nine), ("intraday", at_nine)]

"""Issuing forecasts: stored with issue time, cut-off, model and version; published; deterministic."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, func, select

from forecast import service
from forecast.report import render_accuracy_html
from forecast.series import scenario_series
from forecast.service import ForecastError, issue_forecast
from forecast.tables import forecast_issues, forecast_models, forecast_series
from infra.contracts import ForecastSet, Topic
from infra.db.outbox import relay
from infra.db.tables import outbox
from infra.embedded import Endpoints
from infra.kafka import ensure_topics, make_producer, read_topic
from infra.scenario.model import Scenario
from infra.timeutil import MARKET_TZ
from tests.forecast.forecast_data import filled_store

DAY = date(2026, 7, 15)
ISSUED = datetime(2026, 7, 14, 9, 0, tzinfo=MARKET_TZ)  # Shanxi gate closure 09:30 minus 30 minutes
FAST = {"PARKVPP_FORECAST_BACKTEST_DAYS": "7", "PARKVPP_FORECAST_TRAIN_DAYS": "28"}


@pytest.fixture(scope="module")
def issued(
    mini_scenario: Scenario, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Engine, object]]:
    """One day-ahead issue for the small park on SQLite, shared by the tests below."""
    url = f"sqlite:///{tmp_path_factory.mktemp('fc') / 'parkvpp.sqlite'}"
    with pytest.MonkeyPatch.context() as mp:
        for key, value in FAST.items():
            mp.setenv(key, value)
        engine = filled_store(url, mini_scenario)
        yield engine, issue_forecast(engine, mini_scenario, DAY)


def _quantile_matrix(fs: ForecastSet, series_id: str) -> np.ndarray:
    s = next(s for s in fs.series if s.series_id == series_id)
    return np.array([s.quantiles[k] for k in sorted(s.quantiles, key=float)])


def test_day_ahead_set_covers_every_series_with_monotone_quantiles(issued, mini_scenario: Scenario) -> None:
    _engine, envelope = issued
    fs = ForecastSet.from_envelope(envelope)
    assert fs.horizon == "day_ahead" and fs.issued_at == ISSUED and fs.data_cutoff == ISSUED
    assert envelope.market_day == DAY
    assert len(fs.interval_starts) == 96 and fs.interval_starts[0] == datetime(2026, 7, 15, tzinfo=MARKET_TZ)
    expected = {s.series_id for s in scenario_series(mini_scenario)}
    assert {s.series_id for s in fs.series} == expected
    for s in fs.series:
        assert {"0.1", "0.5", "0.9"} <= set(s.quantiles)
        assert s.model in ("seasonal_naive", "stl", "linear_exog", "gbm_exog")
        assert s.model_version.startswith("fc1:" + s.model)
        assert (np.diff(_quantile_matrix(fs, s.series_id), axis=0) >= 0).all(), s.series_id
        assert s.asset_id == (
            None if s.series_id.startswith(("park.", "market.")) else s.series_id.split(".")[0]
        )
    pv = _quantile_matrix(fs, "pv_roof_cell.pv_mw")
    assert pv.min() >= 0 and pv.max() <= mini_scenario.asset("pv_roof_cell").capacity_mw
    assert pv[:, :16].max() == 0.0 and pv[:, -8:].max() == 0.0  # night
    price = _quantile_matrix(fs, "market.price_da_cny_per_mwh")
    assert price.min() >= mini_scenario.market.clearing_price_floor_cny_per_mwh
    assert price.max() <= mini_scenario.market.clearing_price_cap_cny_per_mwh


def test_issue_is_stored_with_cutoff_model_and_version(issued) -> None:
    engine, envelope = issued
    fs = ForecastSet.from_envelope(envelope)
    with engine.connect() as conn:
        issue = conn.execute(select(forecast_issues)).one()
        rows = {r.series_id: r for r in conn.execute(select(forecast_series)).all()}
        n_models = conn.execute(select(func.count()).select_from(forecast_models)).scalar()
        stored = conn.execute(select(outbox.c.message_id, outbox.c.topic)).all()
    assert issue.message_id == envelope.message_id and issue.failures == {}
    assert issue.data_cutoff == ISSUED and issue.issued_at == ISSUED
    assert issue.selected_as_of == datetime(2026, 7, 13, tzinfo=MARKET_TZ)  # the Monday before
    assert n_models == len(fs.series)
    for s in fs.series:
        assert rows[s.series_id].model == s.model and rows[s.series_id].model_version == s.model_version
    assert stored == [(envelope.message_id, Topic.FORECASTS.value)]


def test_second_issue_reuses_models_and_gives_the_same_fact(
    issued, mini_scenario: Scenario, monkeypatch
) -> None:
    engine, first = issued
    for key, value in FAST.items():
        monkeypatch.setenv(key, value)
    again = issue_forecast(engine, mini_scenario, DAY)
    assert again.message_id == first.message_id and again.payload == first.payload
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(outbox)).scalar() == 1


def test_forecast_read_back_from_kafka(issued, services: Endpoints) -> None:
    engine, envelope = issued
    ensure_topics(services.kafka_bootstrap)
    producer = make_producer(services.kafka_bootstrap)
    try:
        relay(engine, producer)
    finally:
        producer.close()
    received = [
        r.envelope
        for r in read_topic(services.kafka_bootstrap, Topic.FORECASTS)
        if r.envelope.message_id == envelope.message_id
    ]
    assert len(received) == 1
    assert ForecastSet.from_envelope(received[0]) == ForecastSet.from_envelope(envelope)


def test_intraday_ignores_everything_after_its_cutoff(issued, mini_scenario: Scenario, monkeypatch) -> None:
    engine, _ = issued
    for key, value in FAST.items():
        monkeypatch.setenv(key, value)
    at = datetime(2026, 7, 15, 10, 0, tzinfo=MARKET_TZ)
    honest = issue_forecast(engine, mini_scenario, DAY, "intraday", at)
    real_history = service.read_history

    def poisoned(*args, **kwargs) -> pd.DataFrame:
        frame = real_history(*args, **kwargs).copy()
        later = frame.index >= pd.Timestamp(at)
        # Everything measured after the cut-off (weather forecasts and clear-sky sun are known ahead).
        frame.loc[later, [c for c in frame.columns if not c.startswith(service.ALWAYS_KNOWN)]] *= 100.0
        return frame

    monkeypatch.setattr(service, "read_history", poisoned)
    assert issue_forecast(engine, mini_scenario, DAY, "intraday", at).payload == honest.payload
    fs = ForecastSet.from_envelope(honest)
    assert fs.horizon == "intraday" and len(fs.interval_starts) == 16 and fs.interval_starts[0] == at
    assert fs.data_cutoff == at


def test_bad_requests_are_refused_and_store_nothing(issued, mini_scenario: Scenario) -> None:
    engine, _ = issued
    with engine.connect() as conn:
        before = conn.execute(select(func.count()).select_from(outbox)).scalar()
    with pytest.raises(
        ForecastError,
        match=r"issued_at=2026-07-15T08:00:00\+08:00: a day_ahead forecast for 2026-07-15 is issued on 2026-07-14",
    ):
        issue_forecast(engine, mini_scenario, DAY, "day_ahead", datetime(2026, 7, 15, 8, tzinfo=MARKET_TZ))
    with pytest.raises(ValueError, match="issued_at=2026-07-14T09:00:00: must carry a timezone offset"):
        issue_forecast(engine, mini_scenario, DAY, "day_ahead", datetime(2026, 7, 14, 9))
    with pytest.raises(ValueError, match="horizon='weekly': must be one of day_ahead, 72h, intraday"):
        issue_forecast(engine, mini_scenario, DAY, "weekly")
    with pytest.raises(ForecastError, match="issued_at: required for intraday"):
        issue_forecast(engine, mini_scenario, DAY, "intraday")
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(outbox)).scalar() == before


def test_report_has_accuracy_and_backtest_tables_and_plots(
    issued, mini_scenario: Scenario, tmp_path: Path
) -> None:
    engine, envelope = issued
    fragment = render_accuracy_html(engine, mini_scenario, DAY, tmp_path)
    assert "Accuracy against the recorded day" in fragment and "Backtest (7 day-ahead issues" in fragment
    assert "park.wind_mw" in fragment and envelope.message_id in fragment
    png = tmp_path / f"forecast_{mini_scenario.id}_{DAY}.png"
    assert png.stat().st_size > 10_000 and f'src="{png.name}"' in fragment
    assert "No day-ahead forecast" in render_accuracy_html(engine, mini_scenario, date(2026, 8, 1), tmp_path)


@pytest.mark.postgres
def test_72h_issue_on_postgres(mini_scenario: Scenario, postgres_url: str, fast_settings: None) -> None:
    engine = filled_store(postgres_url, mini_scenario)
    envelope = issue_forecast(engine, mini_scenario, DAY, "72h")
    fs = ForecastSet.from_envelope(envelope)
    assert fs.horizon == "72h" and len(fs.interval_starts) == 288 and fs.issued_at == ISSUED
    load = _quantile_matrix(fs, "park.load_mw")
    assert load.shape == (7, 288) and (np.diff(load, axis=0) >= 0).all()
    with engine.connect() as conn:
        horizons = set(conn.execute(select(forecast_models.c.horizon)).scalars())
    assert horizons == {"72h"}
    assert issue_forecast(engine, mini_scenario, DAY, "72h").payload == envelope.payload


@pytest.mark.slow
def test_a_series_stored_every_30_minutes_is_forecast_on_the_market_grid(
    mini_scenario: Scenario, tmp_path: Path, fast_settings: None
) -> None:
    """A meter that reports half-hourly: the store converts it to 15 minutes for the forecast."""
    from infra.db import make_engine, migrate
    from infra.timeseries import write, write_frame
    from sim.history import load_history

    url = f"sqlite:///{tmp_path / 'half_hourly.sqlite'}"
    migrate(url)
    engine = make_engine(url)
    history = load_history(mini_scenario, date(2026, 5, 1), date(2026, 7, 19))
    slow = "cell_plant_load.load_mw"
    measured = history.loc[history.index < pd.Timestamp("2026-07-16", tz=MARKET_TZ)]
    with engine.begin() as conn:
        write_frame(
            conn, mini_scenario.id, measured.drop(columns=[slow]).filter(regex=r"^(?!weather_fc)"), "test"
        )
        write_frame(conn, mini_scenario.id, history.filter(like="weather_fc"), "test")
        write(conn, mini_scenario.id, {slow: measured[slow].resample("30min").mean()}, "test", 30)
    fs = ForecastSet.from_envelope(issue_forecast(engine, mini_scenario, DAY))
    series = next(s for s in fs.series if s.series_id == slow)
    assert len(series.quantiles["0.5"]) == 96 and fs.interval_minutes == 15
    truth = history[slow].loc["2026-07-15"].to_numpy()
    assert np.mean(np.abs(np.asarray(series.quantiles["0.5"]) - truth)) / truth.mean() < 0.1


@pytest.mark.slow
def test_identical_runs_store_identical_model_versions(
    issued, mini_scenario: Scenario, tmp_path: Path
) -> None:
    """A second, independent store with the same data selects and versions every model identically."""
    _engine, first = issued
    with pytest.MonkeyPatch.context() as mp:
        for key, value in FAST.items():
            mp.setenv(key, value)
        mp.setenv("PARKVPP_FORECAST_RAY", "0")  # the other path: versions must not depend on it
        engine = filled_store(f"sqlite:///{tmp_path / 'again.sqlite'}", mini_scenario)
        again = issue_forecast(engine, mini_scenario, DAY)
    versions = lambda env: {s.series_id: s.model_version for s in ForecastSet.from_envelope(env).series}  # noqa: E731
    assert versions(again) == versions(first) and again.message_id == first.message_id

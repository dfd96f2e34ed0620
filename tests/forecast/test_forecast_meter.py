"""The model pool on meter series: short histories, daylight-saving offsets, real data kept,
conditional bands, and the real-data backtest against persistence, profile and CLIPER."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from forecast.filecast import read_meter_csv
from forecast.hygiene import HygieneReport, clean_values, regularise
from forecast.meter import MeterError, backtest_meter, forecast_meter
from gateway.cli import app
from infra.timeutil import MARKET_TZ

runner = CliRunner()
LEVELS = (0.1, 0.5, 0.9)


def _pv_like(days: float, seed: int = 0, night: float = -0.003) -> pd.Series:
    """Clear-sky-shaped daily curve times a random daily cloudiness, with an inverter's night draw."""
    index = pd.date_range("2026-05-01", periods=int(days * 96), freq="15min", tz=MARKET_TZ)
    hours = index.hour + index.minute / 60
    sun = np.clip(np.sin(np.pi * (hours - 6) / 12), 0, None)
    gen = np.random.default_rng(seed)
    cloud = gen.uniform(0.4, 1.0, len(index) // 96 + 1)[(np.arange(len(index)) // 96)]
    values = 0.8 * sun * cloud + gen.normal(0, 0.01, len(index)) * (sun > 0)
    return pd.Series(np.where(sun > 0, values, night), index=index)


def _write(series: pd.Series, path: Path, tz: str | None = None) -> Path:
    stamps = series.index.tz_convert(tz) if tz else series.index
    pd.DataFrame({"timestamp": [t.isoformat() for t in stamps], "value": series.to_numpy()}).to_csv(
        path, index=False
    )
    return path


def test_two_days_of_history_give_a_persistence_forecast_and_say_why_not_more() -> None:
    y = _pv_like(2.0)
    result = forecast_meter(y, 96, LEVELS)
    assert result.choice.model == "persistence"
    assert "gbm" in result.choice.reasons and "needs 10 days" in result.choice.reasons["gbm"]
    assert result.quantiles.shape == (96, 3) and (np.diff(result.quantiles, axis=1) >= 0).all()
    with pytest.raises(MeterError, match=r"value: history too short: 1\.5 days of readings; at least 2 days"):
        forecast_meter(_pv_like(1.5), 96, LEVELS, name="value")


def test_longer_history_lets_more_models_compete() -> None:
    short = forecast_meter(_pv_like(5), 96, LEVELS).choice
    long = forecast_meter(_pv_like(30), 96, LEVELS).choice
    assert "gbm" not in short.ratio_vs_persistence and "theta" not in short.ratio_vs_persistence
    assert {"gbm", "theta", "profile7", "persistence"} <= set(long.ratio_vs_persistence)
    assert len(long.origins) > len(short.origins)


def test_negative_night_values_are_kept_and_the_night_band_is_zero_width_at_that_floor() -> None:
    y = _pv_like(30)
    cleaned, report = clean_values(y, "pv", 15)
    assert (cleaned.to_numpy() == y.to_numpy()).all() and not report.flags
    result = forecast_meter(y, 96, LEVELS)
    q = result.quantiles
    hours = result.rows.hour
    night, noon = (hours < 5) | (hours >= 20), (hours >= 11) & (hours < 13)
    assert result.kind == "pv" and result.bounds.floor == pytest.approx(-0.003)
    assert np.allclose(q[night], -0.003)  # at the inverter's own floor, not clipped to zero
    width = q[:, 2] - q[:, 0]
    assert width[night].max() == 0.0 and width[noon].min() > 0.05  # conditional: night narrower than noon


def test_daylight_saving_offsets_are_read_without_a_duplicated_or_missing_hour(tmp_path: Path) -> None:
    # London meter across both 2026 clock changes: 29 March (+00:00 -> +01:00) and 25 October (back).
    index = pd.date_range("2026-03-27", "2026-03-31", freq="15min", tz="Europe/London", inclusive="left")
    autumn = pd.date_range("2026-10-23", "2026-10-27", freq="15min", tz="Europe/London", inclusive="left")
    for idx, name in ((index, "spring.csv"), (autumn, "autumn.csv")):
        y = pd.Series(np.arange(len(idx), dtype=float), index=idx)
        data = read_meter_csv(_write(y, tmp_path / name))
        report = HygieneReport("value")
        regular, minutes = regularise(data["value"], report, data.attrs["offset_changes"])
        assert minutes == 15 and len(regular) == len(idx)  # 96 intervals every day in absolute time
        assert regular.notna().all() and (np.diff(regular.to_numpy()) == 1).all()  # nothing repeated or lost
        assert report.flags["utc_offset_changes_normalised"] == 1


def test_file_command_on_five_days_of_real_gb_pv_is_no_worse_than_persistence(tmp_path: Path) -> None:
    from sktime.datasets import load_solar

    gb = load_solar(api_version=None)
    per_day = 48
    history, truth = gb.iloc[: 5 * per_day], gb.iloc[5 * per_day : 6 * per_day].to_numpy()
    source = _write(pd.Series(history.to_numpy(), index=pd.DatetimeIndex(history.index)), tmp_path / "gb.csv")
    out = tmp_path / "gb_out.csv"
    result = runner.invoke(app, ["forecast", "file", str(source), "--horizon", "48", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "not used: gbm: needs 10 days" in result.output
    table = pd.read_csv(out)
    q = table[["q0.1", "q0.5", "q0.9"]].to_numpy()
    assert len(table) == 48 and (np.diff(q, axis=1) >= 0).all()
    assert table["timestamp"].iloc[0] == "2021-05-06T00:00:00+00:00"
    persistence = history.to_numpy()[-per_day:]
    assert np.mean(np.abs(q[:, 1] - truth)) <= np.mean(np.abs(persistence - truth)) + 1e-12
    assert q.min() >= 0.0 and q.max() <= history.max() + 1e-9


def test_backtest_is_honest_on_a_series_nothing_can_predict() -> None:
    """White noise around a daily shape: no model may claim much skill over the references."""
    index = pd.date_range("2026-01-01", periods=40 * 48, freq="30min", tz=MARKET_TZ)
    gen = np.random.default_rng(7)
    y = pd.Series(100 + gen.normal(0, 10, len(index)), index=index)
    bt = backtest_meter(y, 48, 20, kind="load")
    assert bt.origins == 20 and bt.outside_bounds == 0
    assert 0.6 <= bt.coverage_10_90 <= 0.95
    assert bt.ratio["climatology"] > 0.95  # climatology is the best possible here: nothing beats it by much


@pytest.mark.slow
def test_real_measured_series_beat_persistence_and_cliper() -> None:
    pytest.importorskip("pmdarima")
    from forecast.realdata import backtest_real

    bt = backtest_real("taylor_load", eval_days=20)
    assert bt.origins == 20 and bt.outside_bounds == 0
    assert bt.ratio["persistence"] <= 0.95 and bt.ratio["cliper"] < 1.0
    assert 0.7 <= bt.coverage_10_90 <= 0.9

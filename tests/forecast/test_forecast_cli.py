"""`parkvpp forecast file` round trips, its input errors, and `parkvpp bench forecast --json`."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from gateway.cli import app
from infra.scenario import load_scenario
from infra.scenario.model import Scenario
from sim.history import load_history
from tests.forecast.forecast_data import filled_store

runner = CliRunner()


def _meter(scenario: Scenario, days: int = 45, freq: str = "15min") -> pd.DataFrame:
    history = load_history(
        scenario, date(2026, 7, 15) - pd.Timedelta(days=days).to_pytimedelta(), date(2026, 7, 16)
    )
    frame = (
        pd.DataFrame(
            {"value": history["cell_plant_load.load_mw"], "temp_fc": history["weather_fc1.temp_air_c"]}
        )
        .resample(freq)
        .mean()
    )
    frame.loc[frame.index >= pd.Timestamp("2026-07-15", tz="Asia/Shanghai"), "value"] = np.nan
    return frame


def _write(frame: pd.DataFrame, path: Path) -> Path:
    out = frame.round(3).reset_index(names="timestamp")
    out["timestamp"] = [t.isoformat() for t in out["timestamp"]]
    out.to_csv(path, index=False)
    return path


def test_file_round_trip_with_exogenous_input(mini_scenario: Scenario, tmp_path: Path) -> None:
    frame = _meter(mini_scenario)
    source = _write(frame, tmp_path / "meter.csv")
    out = tmp_path / "out" / "forecast.csv"
    result = runner.invoke(
        app,
        ["forecast", "file", str(source), "--horizon", "96", "--quantiles", "0.1,0.5,0.9", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    assert list(table.columns) == ["timestamp", "q0.1", "q0.5", "q0.9"]
    stamps = pd.to_datetime(table["timestamp"], format="ISO8601")
    assert len(table) == 96 and table["timestamp"].iloc[0] == "2026-07-15T00:00:00+08:00"
    assert (stamps.diff().dropna() == pd.Timedelta(minutes=15)).all()
    assert ((table["q0.1"] <= table["q0.5"]) & (table["q0.5"] <= table["q0.9"])).all()
    actual = _meter(mini_scenario)  # the truth the file did not contain
    truth = load_history(mini_scenario, date(2026, 7, 15), date(2026, 7, 16))[
        "cell_plant_load.load_mw"
    ].to_numpy()
    assert np.mean(np.abs(table["q0.5"].to_numpy() - truth)) / truth.mean() < 0.1
    assert len(actual) > 0 and "model " in result.output and "x persistence over" in result.output


def test_file_with_shuffled_duplicated_hourly_rows(mini_scenario: Scenario, tmp_path: Path) -> None:
    frame = _meter(mini_scenario, freq="60min").drop(columns="temp_fc")
    messy = pd.concat([frame.iloc[::-1], frame.iloc[[10, 20]]])
    source = _write(messy, tmp_path / "messy.csv")
    out = tmp_path / "hourly.csv"
    result = runner.invoke(
        app,
        [
            "forecast",
            "file",
            str(source),
            "--horizon",
            "24",
            "--quantiles",
            "0.05,0.5,0.95",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "reordered_rows" in result.output and "duplicate_rows_dropped=2" in result.output
    table = pd.read_csv(out)
    assert list(table.columns) == ["timestamp", "q0.05", "q0.5", "q0.95"] and len(table) == 24
    assert table["timestamp"].iloc[1] == "2026-07-15T01:00:00+08:00"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: f.drop(f.index[-5]), "exogenous column 'temp_fc': no value for 2026-07-15T22:45:00+08:00"),
        (lambda f: f.iloc[-int(2.5 * 96) :], "history too short: 1.5 days of readings; at least 2 days"),
    ],
    ids=["missing-exogenous", "too-short"],
)
def test_file_input_errors_are_named_without_traceback(
    mini_scenario: Scenario, tmp_path: Path, mutate, message
) -> None:
    source = _write(mutate(_meter(mini_scenario)), tmp_path / "bad.csv")
    result = runner.invoke(
        app, ["forecast", "file", str(source), "--horizon", "96", "--out", str(tmp_path / "o.csv")]
    )
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o.csv").exists()


def test_file_rejects_naive_timestamps_and_bad_quantiles(tmp_path: Path) -> None:
    source = tmp_path / "naive.csv"
    source.write_text("timestamp,value\n2026-07-01 00:00,1\n2026-07-01 00:15,2\n")
    result = runner.invoke(
        app, ["forecast", "file", str(source), "--horizon", "4", "--out", str(tmp_path / "o.csv")]
    )
    assert result.exit_code == 2 and "row 1 ('2026-07-01 00:00') has no UTC offset" in result.output
    result = runner.invoke(
        app,
        [
            "forecast",
            "file",
            str(source),
            "--horizon",
            "4",
            "--quantiles",
            "0.1,0.9",
            "--out",
            str(tmp_path / "o.csv"),
        ],
    )
    assert result.exit_code == 2 and "must include the median 0.5" in result.output
    renamed = tmp_path / "renamed.csv"
    renamed.write_text("time,value\n2026-07-01T00:00:00+08:00,1\n")
    result = runner.invoke(
        app, ["forecast", "file", str(renamed), "--horizon", "4", "--out", str(tmp_path / "o.csv")]
    )
    assert result.exit_code == 2 and "missing column 'timestamp' (found: time, value)" in result.output
    words = tmp_path / "words.csv"
    words.write_text("timestamp,value\n2026-07-01T00:00:00+08:00,1\n2026-07-01T00:15:00+08:00,n/a kW\n")
    result = runner.invoke(
        app, ["forecast", "file", str(words), "--horizon", "4", "--out", str(tmp_path / "o.csv")]
    )
    assert result.exit_code == 2 and "column 'value' row 2: 'n/a kW' is not a number" in result.output


def test_bench_refuses_an_empty_store_naming_the_fix(sqlite_url: str, monkeypatch) -> None:
    from forecast.bench import BenchDataError, bench_data

    monkeypatch.setenv("PARKVPP_DATABASE_URL", sqlite_url)
    with pytest.raises(BenchDataError, match="run `parkvpp run-day --park datong` first"):
        bench_data(4)


@pytest.mark.slow
def test_bench_json_compares_sequential_and_ray(sqlite_url: str, monkeypatch) -> None:
    from forecast.bench import BENCH_BACKTEST_DAYS, BENCH_DAY, BENCH_TRAIN_DAYS

    monkeypatch.setenv("PARKVPP_DATABASE_URL", sqlite_url)
    first = BENCH_DAY - pd.Timedelta(days=BENCH_TRAIN_DAYS + BENCH_BACKTEST_DAYS + 12).to_pytimedelta()
    filled_store(sqlite_url, load_scenario("datong"), first, BENCH_DAY)
    result = runner.invoke(app, ["bench", "forecast", "--series", "4", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(next(line for line in result.output.splitlines() if line.startswith("{")))
    assert figures["series"] == 4 and figures["failed_series"] == 0
    assert figures["identical_forecasts"] is True
    assert figures["sequential_series_per_s"] > 0 and figures["ray_series_per_s"] > 0
    assert figures["synthetic_ray_speedup"] == pytest.approx(
        figures["sequential_s"] / figures["ray_s"], rel=0.05
    )
    assert figures["ray_speedup"] > 0 and figures["real_identical"] is True
    real = {r["name"]: r for r in figures["real_series"]}
    assert set(real) | {m.split(":")[0] for m in figures["real_missing"]} == {
        "serf_east_pv",
        "pvdaq50_pv",
        "taylor_load",
    }
    for r in real.values():
        assert (
            r["origins"] >= 20
            and r["outside_bounds"] == 0
            and {"persistence", "profile7", "cliper"} <= set(r["ratio"])
        )
    assert figures["median_skill_vs_seasonal_naive"] > 0
    assert 0 < figures["available_parallelism"] <= figures["ray_cpus"] + 0.5

"""The time-series store on SQLite and PostgreSQL: round trip, idempotence, corrections, grids."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

from infra.db import make_engine, migrate
from infra.timeseries import TimeSeriesError, coverage, read, write, write_frame
from infra.timeseries.tables import ts_revisions
from infra.timeutil import now

DAY = date(2026, 7, 15)


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest):
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
    migrate(url)
    return make_engine(url)


def _frame(days: int = 3, minutes: int = 15, seed: int = 1) -> pd.DataFrame:
    index = pd.date_range(
        pd.Timestamp(DAY, tz="Asia/Shanghai"), periods=days * 1440 // minutes, freq=f"{minutes}min"
    )
    gen = np.random.default_rng(seed)
    return pd.DataFrame(
        {"pv_a.pv_mw": gen.uniform(0, 10, len(index)), "load_b.load_mw": gen.uniform(20, 30, len(index))},
        index=index,
    )


def _revisions(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(ts_revisions)).scalar_one()


def test_round_trip_and_the_same_data_twice_stores_nothing(engine) -> None:
    frame = _frame()
    with engine.begin() as conn:
        first = write_frame(conn, "p", frame, "test")
    assert first.points_new == frame.size and first.days_written == 6
    stored = _revisions(engine)
    with engine.begin() as conn:
        again = write_frame(conn, "p", frame, "test")
    assert again.days_written == 0 and again.points_unchanged == frame.size
    assert _revisions(engine) == stored
    got = read(engine, "p", list(frame.columns), DAY, DAY + timedelta(days=3))
    assert got.index.equals(frame.index)
    np.testing.assert_array_equal(got.to_numpy(), frame.to_numpy())
    assert str(got.index.tz) == "Asia/Shanghai"
    assert coverage(engine, "p", ["pv_a.pv_mw"])["pv_a.pv_mw"] == (DAY, DAY + timedelta(days=2), 3)


def test_a_correction_is_a_new_version_and_the_old_one_stays_readable(engine) -> None:
    frame = _frame(days=1)
    with engine.begin() as conn:
        write_frame(conn, "p", frame, "meter")
    before = now()
    fixed = frame.iloc[[10]].copy()
    fixed.iloc[0, 0] = 7.5
    with engine.begin() as conn:
        report = write_frame(conn, "p", fixed[["pv_a.pv_mw"]], "meter replacement")
    assert report.points_corrected == 1 and report.points_new == 0 and report.days_written == 1
    latest = read(engine, "p", ["pv_a.pv_mw"], DAY, DAY + timedelta(days=1))
    assert latest.iloc[10, 0] == 7.5
    assert latest.iloc[11, 0] == frame.iloc[11, 0]
    known_then = read(engine, "p", ["pv_a.pv_mw"], DAY, DAY + timedelta(days=1), as_of=before)
    assert known_then.iloc[10, 0] == frame.iloc[10, 0]


def test_missing_readings_are_nan_and_partial_writes_merge(engine) -> None:
    frame = _frame(days=1)
    with engine.begin() as conn:
        write_frame(conn, "p", frame.iloc[:48], "first half")
        report = write_frame(conn, "p", frame.iloc[40:], "second half")
    assert report.points_new == 2 * 48 and report.points_unchanged == 2 * 8
    got = read(engine, "p", list(frame.columns), DAY - timedelta(days=1), DAY + timedelta(days=1))
    assert got.iloc[:96].isna().all().all()
    np.testing.assert_array_equal(got.iloc[96:].to_numpy(), frame.to_numpy())


def test_coarser_series_are_converted_to_the_requested_grid(engine) -> None:
    half_hourly = _frame(days=1, minutes=30)
    energy = pd.Series(np.arange(48.0), index=half_hourly.index)
    with engine.begin() as conn:
        write(conn, "p", {"pv_a.pv_mw": half_hourly["pv_a.pv_mw"], "pv_a.energy_mwh": energy}, "file", 30)
    got = read(
        engine, "p", ["pv_a.pv_mw", "pv_a.energy_mwh"], DAY, DAY + timedelta(days=1), interval_minutes=15
    )
    assert len(got) == 96
    np.testing.assert_array_equal(got["pv_a.pv_mw"].to_numpy()[::2], half_hourly["pv_a.pv_mw"].to_numpy())
    np.testing.assert_array_equal(got["pv_a.pv_mw"].to_numpy()[1::2], half_hourly["pv_a.pv_mw"].to_numpy())
    assert got["pv_a.energy_mwh"].sum() == pytest.approx(energy.sum())  # energy is split, not repeated
    hourly = read(engine, "p", ["pv_a.energy_mwh"], DAY, DAY + timedelta(days=1), interval_minutes=60)
    assert hourly.iloc[0, 0] == 0 + 1


def test_bad_requests_name_the_series_and_the_rule(engine) -> None:
    with pytest.raises(TimeSeriesError, match=r"no stored series nope\.pv_mw"):
        read(engine, "p", ["nope.pv_mw"], DAY, DAY + timedelta(days=1))
    assert read(engine, "p", ["nope.pv_mw"], DAY, DAY + timedelta(days=1), missing="nan").isna().all().all()
    with pytest.raises(TimeSeriesError, match="empty"):
        read(engine, "p", ["nope.pv_mw"], DAY, DAY)
    frame = _frame(days=1)
    with engine.begin() as conn:
        write_frame(conn, "p", frame, "x", 15)
    with pytest.raises(TimeSeriesError, match="stored every 15 min"), engine.begin() as conn:
        write_frame(conn, "p", _frame(days=1, minutes=30), "x", 30)
    off_grid = frame.iloc[:2].copy()
    off_grid.index = off_grid.index + pd.Timedelta(minutes=7)
    with pytest.raises(TimeSeriesError, match="not on the 15-minute grid"), engine.begin() as conn:
        write_frame(conn, "p", off_grid, "x")
    with (
        pytest.raises(ValueError, match=r"quantity 'speed' of 'a\.speed' is not one of"),
        engine.begin() as conn,
    ):
        write_frame(conn, "p", frame.rename(columns={"pv_a.pv_mw": "a.speed"}), "x")


def test_reads_of_more_series_than_one_query_may_name_come_back_whole(engine, monkeypatch) -> None:
    """PostgreSQL takes at most 65,535 parameters per statement and a park of a million
    devices reads 200,000 series at once: names and ids go to the database in batches."""
    monkeypatch.setattr("infra.db.engine.IN_BATCH", 3)
    index = pd.date_range(pd.Timestamp(DAY, tz="Asia/Shanghai"), periods=96, freq="15min")
    frame = pd.DataFrame({f"pv_{i}.pv_mw": np.full(96, float(i)) for i in range(10)}, index=index)
    with engine.begin() as conn:
        write_frame(conn, "p", frame, "test")
    got = read(engine, "p", list(frame.columns), DAY, DAY + timedelta(days=1))
    np.testing.assert_array_equal(got.to_numpy(), frame.to_numpy())
    assert len(coverage(engine, "p", list(frame.columns))) == 10

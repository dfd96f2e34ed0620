"""Data hygiene: every problem is repaired with a flag or rejected naming the series and problem."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecast.hygiene import HygieneError, HygieneReport, clean_values, parse_timestamps, regularise
from infra.timeutil import MARKET_TZ

DAYS = 30


def load_series(days: int = DAYS, seed: int = 1) -> pd.Series:
    """A 15-minute industrial-looking load: daily shape plus noise."""
    index = pd.date_range("2026-03-01", periods=days * 96, freq="15min", tz=MARKET_TZ)
    hours = index.hour + index.minute / 60
    gen = np.random.default_rng(seed)
    values = 100 + 30 * np.sin(2 * np.pi * (hours - 6) / 24) + gen.normal(0, 2, len(index))
    return pd.Series(values, index=index)


def test_short_gap_is_interpolated_and_long_gap_filled_from_the_day_before() -> None:
    y = load_series()
    truth = y.copy()
    y.iloc[100:103] = np.nan  # 45 minutes
    y.iloc[500:540] = np.nan  # 10 hours
    cleaned, report = clean_values(y, "meter.load_mw", 15)
    assert np.isfinite(cleaned).all()
    assert report.flags["short_gaps_interpolated"] == 3
    assert report.flags["long_gaps_filled_from_neighbour_day"] == 40
    np.testing.assert_allclose(cleaned.iloc[500:540], truth.iloc[404:444], rtol=0, atol=0)
    assert report.flags["missing_readings"] == 43


def test_spike_is_removed_and_filled() -> None:
    y = load_series()
    y.iloc[777] = 900.0
    cleaned, report = clean_values(y, "meter.load_mw", 15)
    assert report.flags["spikes_removed"] == 1
    assert 50 < cleaned.iloc[777] < 150


def test_values_beyond_physical_bounds_are_removed() -> None:
    y = load_series().clip(lower=0) * 0.5
    y.iloc[50] = 400.0  # far above the 80 MW capacity
    y.iloc[60] = -0.5  # a small negative reading (an inverter's night draw): real, kept
    y.iloc[70] = -60.0  # far below zero: impossible, removed
    cleaned, report = clean_values(y, "pv.pv_mw", 15, lower=0.0, upper=80.0)
    assert report.flags["above_physical_bound_removed"] == 1
    assert report.flags["below_physical_bound_removed"] == 1
    assert cleaned.max() <= 80.0 and cleaned.iloc[60] == -0.5 and cleaned.iloc[70] > -1


def test_flat_lined_meter_is_removed_but_zero_output_is_kept() -> None:
    y = load_series()
    y.iloc[1000:1020] = y.iloc[999]  # stuck for 5 hours
    cleaned, report = clean_values(y, "meter.load_mw", 15)
    assert report.flags["flatline_readings_removed"] == 21
    assert cleaned.iloc[1000:1020].nunique() > 1
    pv = load_series().clip(lower=0) - 100
    pv = pv.clip(lower=0)  # long runs of exact zeros at night are real
    _, pv_report = clean_values(pv, "pv.pv_mw", 15, lower=0.0, upper=100.0)
    assert pv_report.flags["flatline_readings_removed"] == 0


def test_dead_meter_is_rejected_with_series_and_reason() -> None:
    y = load_series()
    y.iloc[:] = 42.0
    with pytest.raises(
        HygieneError, match=r"meter\.load_mw: 100% of the readings are missing or unusable.*flat-lined"
    ):
        clean_values(y, "meter.load_mw", 15)


def test_too_many_gaps_rejected() -> None:
    y = load_series()
    y.iloc[: len(y) // 2] = np.nan
    with pytest.raises(HygieneError, match=r"meter\.load_mw: 50% of the readings are missing"):
        clean_values(y, "meter.load_mw", 15)


def test_too_short_history_rejected() -> None:
    with pytest.raises(HygieneError, match=r"meter\.load_mw: history too short: 5\.0 days.*at least 29"):
        clean_values(load_series(days=5), "meter.load_mw", 15, min_days=29)


def _stamps(index: pd.DatetimeIndex) -> pd.Series:
    return pd.Series([t.isoformat() for t in index])


def test_out_of_order_and_identical_duplicates_are_repaired() -> None:
    y = load_series(days=2)
    shuffled = pd.concat([y.iloc[10:], y.iloc[:10], y.iloc[[5]]])  # rows out of order, one repeated
    report = HygieneReport("meter")
    regular, minutes = regularise(shuffled, report)
    assert minutes == 15
    assert report.flags["reordered_rows"] >= 1
    assert report.flags["duplicate_rows_dropped"] == 1
    pd.testing.assert_series_equal(regular, y.asfreq("15min"), check_freq=False, check_names=False)


def test_conflicting_duplicates_rejected() -> None:
    y = load_series(days=2)
    bad = pd.concat([y, pd.Series([1.0], index=y.index[[7]])])
    with pytest.raises(
        HygieneError, match=r"meter: 1 timestamps appear more than once with different values"
    ):
        regularise(bad, HygieneReport("meter"))


def test_daylight_saving_repeated_hour_rejected() -> None:
    """A European meter that writes local clock time with a fixed +01:00 offset repeats an hour in autumn."""
    index = pd.date_range("2026-10-24T00:00", "2026-10-26T00:00", freq="15min", inclusive="left")
    wall = list(index[: 4 * 3]) + list(index[8:12]) + list(index[12:])  # 02:00-03:00 written twice
    raw = pd.Series([f"{t.strftime('%Y-%m-%dT%H:%M:%S')}+01:00" for t in wall])
    stamps, changes = parse_timestamps(raw, "meter")
    values = pd.Series(np.arange(len(stamps), dtype=float), index=stamps)
    with pytest.raises(HygieneError, match="daylight-saving"):
        regularise(values, HygieneReport("meter"), changes)


def test_changing_utc_offsets_that_are_consistent_are_normalised() -> None:
    index = pd.date_range("2026-03-28T00:00", periods=300, freq="15min", tz="Europe/Berlin")
    raw = _stamps(index)  # offsets change from +01:00 to +02:00 (true absolute times)
    stamps, changes = parse_timestamps(raw, "meter")
    assert changes == 1
    report = HygieneReport("meter")
    regular, minutes = regularise(pd.Series(1.0 + np.arange(300.0), index=stamps), report, changes)
    assert minutes == 15 and len(regular) == 300 and regular.notna().all()
    assert report.flags["utc_offset_changes_normalised"] == 1
    assert str(regular.index.tz) == "Asia/Shanghai"


def test_naive_timestamps_rejected_naming_the_row() -> None:
    raw = pd.Series(["2026-07-01T00:00:00+08:00", "2026-07-01 00:15"])
    with pytest.raises(
        HygieneError, match=r"meter: timestamp row 2 \('2026-07-01 00:15'\) has no UTC offset"
    ):
        parse_timestamps(raw, "meter")


def test_timestamp_off_the_grid_rejected() -> None:
    y = load_series(days=1)
    moved = y.index.tolist()
    moved[40] = moved[40] + pd.Timedelta(minutes=7)
    with pytest.raises(HygieneError, match=r"meter: timestamp .*T10:07:00\+08:00 is off the 15-minute grid"):
        regularise(pd.Series(y.to_numpy(), index=pd.DatetimeIndex(moved)), HygieneReport("meter"))


def test_missing_rows_become_gaps_on_the_inferred_grid() -> None:
    y = load_series(days=2).drop(load_series(days=2).index[20:24])
    regular, minutes = regularise(y, HygieneReport("meter"))
    assert minutes == 15 and len(regular) == 192 and regular.isna().sum() == 4

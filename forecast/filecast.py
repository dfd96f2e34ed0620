"""Forecast any meter file: ``timestamp,value[,exogenous...]`` CSV in, quantiles CSV out.

The interval is inferred from the timestamps and checked; the file's own history picks the
model by rolling-origin backtest (issues at the same time of day on earlier days) and
calibrates the quantiles. Extra columns are exogenous inputs and must be given for every
interval of the horizon (rows after the last value). Hygiene problems are repaired with a
flag or rejected with a message naming the column, the row or the timestamp.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import timezone
from pathlib import Path

import numpy as np
import pandas as pd

from forecast.backtest import LAG_MARGIN_DAYS, Selection, select
from forecast.config import HorizonSpec
from forecast.features import calendar_frame
from forecast.hygiene import HygieneError, HygieneReport, parse_timestamps, regularise
from forecast.models import single_threaded
from forecast.predict import forecast_series
from forecast.series import generic_series

MAX_BACKTEST_DAYS = 21
MIN_BACKTEST_DAYS = 7
MIN_TRAIN_DAYS = 14
REFIT_DAYS = 7
TRAIN_DAYS = 100


class FileInputError(HygieneError):
    """The meter file cannot be forecast; the message says why and where."""


@dataclass
class FileForecast:
    table: pd.DataFrame  # timestamp + one column per quantile
    interval_minutes: int
    selection: Selection
    hygiene: dict[str, int] = field(default_factory=dict)


def _numeric(df: pd.DataFrame, column: str) -> pd.Series:
    raw = df[column]
    values = pd.to_numeric(raw, errors="coerce")
    bad = raw.notna() & (raw.astype(str).str.strip() != "") & values.isna()
    if bad.any():
        pos = int(np.flatnonzero(bad.to_numpy())[0])
        raise FileInputError(f"column {column!r} row {pos + 1}: {raw.iloc[pos]!r} is not a number")
    return values.astype(float)


def read_meter_csv(path: Path) -> pd.DataFrame:
    """The file as numbers on an aware Asia/Shanghai index (unsorted, as given)."""
    try:
        df = pd.read_csv(path, dtype=str)
    except FileNotFoundError as exc:
        raise FileInputError("no such file") from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise FileInputError(f"not a readable CSV file ({exc})") from exc
    df.columns = [c.strip() for c in df.columns]
    for required in ("timestamp", "value"):
        if required not in df.columns:
            raise FileInputError(f"missing column {required!r} (found: {', '.join(df.columns) or 'none'})")
    if df.empty:
        raise FileInputError("has a header but no rows")
    index, changes = parse_timestamps(df["timestamp"], "value")
    out = pd.DataFrame({c: _numeric(df, c) for c in df.columns if c != "timestamp"})
    out.index = index
    out.attrs["offset_changes"] = changes
    out.attrs["utc_offset"] = pd.Timestamp(df["timestamp"].iloc[-1].strip()).utcoffset()
    return out


def forecast_file(path: Path, horizon_steps: int, levels: tuple[float, ...]) -> FileForecast:
    if horizon_steps <= 0:
        raise FileInputError(f"horizon={horizon_steps}: must be a positive number of intervals")
    data = read_meter_csv(path)
    report = HygieneReport("value")
    exog_cols = [c for c in data.columns if c != "value"]
    has_value = np.flatnonzero(np.isfinite(data["value"].to_numpy()))
    if not len(has_value):
        raise FileInputError("column 'value': no readings at all")
    ordered = data.sort_index(kind="stable")
    last_reading = ordered.index[np.flatnonzero(np.isfinite(ordered["value"].to_numpy()))[-1]]
    history = ordered[ordered.index <= last_reading]
    future = ordered[ordered.index > last_reading]
    y, minutes = regularise(
        data.loc[data.index <= last_reading, "value"], report, data.attrs["offset_changes"]
    )
    interval = pd.Timedelta(minutes=minutes)
    per_day = 1440 // minutes
    cutoff = y.index[-1] + interval
    rows = pd.date_range(cutoff, periods=horizon_steps, freq=interval)
    grid = y.index.append(rows)
    ctx = calendar_frame(grid)
    for col in exog_cols:
        hist = history[col][~history.index.duplicated()].reindex(y.index)
        fut = future[col][~future.index.duplicated()].reindex(rows)
        missing = rows[~np.isfinite(fut.to_numpy())]
        if len(missing):
            raise FileInputError(
                f"exogenous column {col!r}: no value for {missing[0].isoformat()} ({len(missing)} of the "
                f"{horizon_steps} horizon intervals after the last reading are missing)"
            )
        ctx[f"exog.{col}"] = np.concatenate([hist.to_numpy(), fut.to_numpy()])
    horizon_days = math.ceil(horizon_steps / per_day)
    days_known = len(y) / per_day
    backtest = min(MAX_BACKTEST_DAYS, int(days_known - MIN_TRAIN_DAYS - LAG_MARGIN_DAYS - horizon_days))
    if backtest < MIN_BACKTEST_DAYS:
        need = MIN_BACKTEST_DAYS + MIN_TRAIN_DAYS + LAG_MARGIN_DAYS + horizon_days
        raise FileInputError(
            f"column 'value': history too short: {days_known:.1f} days of {minutes}-minute data; "
            f"a {horizon_steps}-interval forecast needs at least {need} days (training, weekly lag and backtest)"
        )
    origins = [
        (
            cutoff - pd.Timedelta(days=j),
            pd.date_range(cutoff - pd.Timedelta(days=j), periods=horizon_steps, freq=interval),
        )
        for j in range(horizon_days + backtest - 1, horizon_days - 1, -1)
    ]
    values = y.to_numpy()
    lower = 0.0 if np.nanmin(values) >= 0 else None
    spec = generic_series("value", lower)
    issue_minutes = cutoff.hour * 60 + cutoff.minute
    hspec = HorizonSpec("day_ahead", "day_ahead", k_train=1, days=horizon_days)
    raw = y.reindex(grid)
    with single_threaded():
        selection = select(
            spec,
            None,
            raw,
            ctx,
            cutoff,
            hspec,
            issue_minutes,
            levels,
            backtest,
            REFIT_DAYS,
            TRAIN_DAYS,
            origins=origins,
            intraday_steps=0,
        )
        quantiles, flags = forecast_series(
            spec, None, raw, ctx, selection.model, selection.fitted, selection.calibration, cutoff, rows
        )
    offset = data.attrs["utc_offset"]
    stamps = rows.tz_convert(timezone(offset)) if offset is not None else rows
    table = pd.DataFrame({"timestamp": [ts.isoformat() for ts in stamps]})
    for q in levels:
        table[f"q{q:g}"] = np.round(quantiles[q], 6)
    hygiene = dict(report.as_dict())
    for key, count in flags.items():
        hygiene[key] = max(hygiene.get(key, 0), count)
    return FileForecast(table, minutes, selection, hygiene)

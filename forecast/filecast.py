"""Forecast any meter file: ``timestamp,value[,exogenous...]`` CSV in, quantiles CSV out.

The interval is inferred from the timestamps (offsets may change across daylight saving; each
row's own offset is used) and checked. From 2 days of history up, the model pool of
:mod:`forecast.pool` competes on the file's own rolling-origin backtest (daily origins at the
time of day of the last reading), with persistence always a candidate; only models whose data
needs are met compete, and the output says which and why. Extra columns are exogenous inputs
and must be given for every interval of the horizon (rows after the last value). Hygiene
problems are repaired with a flag or rejected with a message naming the column, the row or
the timestamp.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timezone
from pathlib import Path

import numpy as np
import pandas as pd

from forecast.hygiene import HygieneError, HygieneReport, clean_values, parse_timestamps, regularise
from forecast.meter import MeterError, MeterForecast, MeterKind, forecast_meter


class FileInputError(HygieneError):
    """The meter file cannot be forecast; the message says why and where."""


@dataclass
class FileForecast:
    table: pd.DataFrame  # timestamp + one column per quantile
    interval_minutes: int
    result: MeterForecast
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


def forecast_file(
    path: Path,
    horizon_steps: int,
    levels: tuple[float, ...],
    kind: MeterKind = "auto",
    site: tuple[float, float, float] | None = None,
    capacity: float | None = None,
) -> FileForecast:
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
    raw, minutes = regularise(
        data.loc[data.index <= last_reading, "value"], report, data.attrs["offset_changes"]
    )
    interval = pd.Timedelta(minutes=minutes)
    lower = 0.0 if kind == "load" else None  # PV and unknown meters may read below zero (standby draw)
    y, report = clean_values(raw, "value", minutes, lower, capacity, 0.0, report)
    cutoff = y.index[-1] + interval
    rows = pd.date_range(cutoff, periods=horizon_steps, freq=interval)
    exog = None
    if exog_cols:
        exog = pd.DataFrame(index=y.index.append(rows))
        for col in exog_cols:
            hist = history[col][~history.index.duplicated()].reindex(y.index)
            fut = future[col][~future.index.duplicated()].reindex(rows)
            missing = rows[~np.isfinite(fut.to_numpy())]
            if len(missing):
                raise FileInputError(
                    f"exogenous column {col!r}: no value for {missing[0].isoformat()} ({len(missing)} of the "
                    f"{horizon_steps} horizon intervals after the last reading are missing)"
                )
            exog[col] = np.concatenate([hist.to_numpy(), fut.to_numpy()])
    try:
        result = forecast_meter(y, horizon_steps, levels, kind, site, capacity, exog, name="column 'value'")
    except MeterError as exc:
        raise FileInputError(str(exc)) from exc
    offset = data.attrs["utc_offset"]
    stamps = rows.tz_convert(timezone(offset)) if offset is not None else rows
    table = pd.DataFrame({"timestamp": [ts.isoformat() for ts in stamps]})
    for i, q in enumerate(levels):
        table[f"q{q:g}"] = np.round(result.quantiles[:, i], 6)
    return FileForecast(table, minutes, result, report.as_dict())

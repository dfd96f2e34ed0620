"""Data hygiene: find what is wrong with a meter series, repair it with a flag or reject it.

Every problem ends in one of two ways: repaired, with a count in the :class:`HygieneReport`
that is stored with the forecast, or rejected with a :class:`HygieneError` naming the series
and the problem. Nothing is repaired silently.

Repairs: out-of-order rows (sorted), identical duplicate rows (dropped), changing UTC offsets
(daylight saving) that still give a regular grid (normalised to market time), short gaps
(interpolated), long gaps (same time on a neighbouring day), readings beyond physical bounds
and extreme outliers against the series' own time-of-day distribution (removed, then
filled), flat-lined meter stretches (removed, then filled). Real variability is kept: sudden
changes (cloud transients) are not spikes, and small negative readings (a PV inverter's
night consumption) stay as measured. Rejections: naive or unparseable timestamps, conflicting duplicates (a repeated
daylight-saving hour among them), an irregular or unusable frequency, too many missing
values, too short a history.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from infra.timeutil import MARKET_TZ

# Tuning knobs of the detectors (not domain numbers).
INTERPOLATE_MAX_MINUTES = 60  # gaps up to this long are interpolated linearly
FLATLINE_MIN_MINUTES = 120  # identical readings for this long mean a stuck meter...
FLATLINE_STANDBY_SHARE = 0.1  # ...unless it is the series' low value read this often (standby, night)
FLATLINE_STANDBY_MAX_SHARE = 0.7  # (a meter stuck at one value most of the time is still stuck)
SPIKE_MIN_DAYS = 7  # the time-of-day distribution needs this many days before it can judge a reading
SPIKE_IQR_FACTOR = 6.0  # a spike lies this many interquartile ranges outside its time of day's quartiles
SPIKE_IQR_FLOOR_FRACTION = 0.05  # ...with the range at least this share of the series' span (flat nights)
BOUND_TOLERANCE_FRACTION = 0.05  # readings this far outside physical bounds are errors
MAX_MISSING_FRACTION = 0.2  # more missing than this after cleaning: reject

_OFFSET_RE = re.compile(r"(Z|[+-]\d{2}:?\d{2})$")


class HygieneError(ValueError):
    """A series cannot be used; the message names the series and the problem."""


@dataclass
class HygieneReport:
    series_id: str
    flags: Counter[str] = field(default_factory=Counter)

    def add(self, flag: str, count: int) -> None:
        if count:
            self.flags[flag] += int(count)

    def as_dict(self) -> dict[str, int]:
        return dict(sorted(self.flags.items()))


def parse_timestamps(
    raw: pd.Series, series_id: str, column: str = "timestamp"
) -> tuple[pd.DatetimeIndex, int]:
    """ISO 8601 strings with offsets -> aware market-time index; returns it and the offset-change count."""
    text = raw.astype(str).str.strip()
    for pos, value in enumerate(text):
        if not _OFFSET_RE.search(value):
            raise HygieneError(
                f"{series_id}: {column} row {pos + 1} ({value!r}) has no UTC offset; write ISO 8601 with an "
                "offset such as 2026-07-15T00:00:00+08:00 (naive local times are ambiguous)"
            )
    try:
        parsed = pd.to_datetime(text, format="ISO8601", utc=True)
    except (ValueError, TypeError) as exc:
        raise HygieneError(
            f"{series_id}: {column} has a value that is not an ISO 8601 timestamp ({exc})"
        ) from exc
    offsets = text.str.extract(_OFFSET_RE.pattern, expand=False)
    changes = int((offsets != offsets.shift()).iloc[1:].sum())
    return pd.DatetimeIndex(parsed).tz_convert(MARKET_TZ), changes


def regularise(values: pd.Series, report: HygieneReport, offset_changes: int = 0) -> tuple[pd.Series, int]:
    """Sort, de-duplicate and put a series on its regular grid; returns it and the interval in minutes."""
    sid = report.series_id
    if not values.index.is_monotonic_increasing:
        report.add("reordered_rows", int((np.diff(values.index.as_unit("ns").asi8) < 0).sum()))
        values = values.sort_index(kind="stable")
    dup_mask = values.index.duplicated(keep=False)
    if dup_mask.any():
        dups = values[dup_mask]
        conflicting = dups.groupby(level=0).nunique(dropna=False) > 1
        if conflicting.any():
            bad = conflicting[conflicting].index
            span_h = (bad[-1] - bad[0]).total_seconds() / 3600
            hint = ""
            if offset_changes or 0.5 <= span_h <= 1.0:
                hint = (
                    " (a repeated hour: looks like a daylight-saving clock change or a time zone mistake; "
                    "write the true UTC offset on every row)"
                )
            raise HygieneError(
                f"{sid}: {len(bad)} timestamps appear more than once with different values, first "
                f"{bad[0].isoformat()}{hint}"
            )
        report.add("duplicate_rows_dropped", int(values.index.duplicated().sum()))
        values = values[~values.index.duplicated()]
    if len(values) < 3:
        raise HygieneError(f"{sid}: only {len(values)} readings; cannot infer the interval")
    steps = pd.Series(np.diff(values.index.as_unit("ns").asi8) // 60_000_000_000)
    minutes = int(steps.mode().iloc[0])  # the most common step is the meter's interval
    if minutes <= 0 or 1440 % minutes:
        raise HygieneError(f"{sid}: inferred interval of {minutes} minutes does not divide a day evenly")
    origin = values.index[0]
    off_grid = ((values.index - origin) / pd.Timedelta(minutes=1)) % minutes != 0
    if off_grid.any():
        first = values.index[off_grid][0]
        hint = (
            " (the UTC offset changes within the file: a time zone or daylight-saving mistake?)"
            if offset_changes
            else ""
        )
        raise HygieneError(
            f"{sid}: timestamp {first.isoformat()} is off the {minutes}-minute grid that starts at "
            f"{origin.isoformat()}{hint}"
        )
    if offset_changes:
        report.add("utc_offset_changes_normalised", offset_changes)
    grid = pd.date_range(origin, values.index[-1], freq=f"{minutes}min")
    return values.reindex(grid), minutes


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Start and end (exclusive) of each run of True."""
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(int)))
    return list(zip(edges[0::2], edges[1::2], strict=True))


def _remove_spikes(
    y: np.ndarray, per_day: int, lower: float | None, upper: float | None, report: HygieneReport
) -> np.ndarray:
    """Remove readings that cannot be real: beyond the physical bounds (with a tolerance), or
    extreme outliers against the series' own distribution at that time of day. Everything
    else is kept, however sudden (cloud transients are real); small readings below a floor of
    0 (a PV inverter's night consumption) are kept too."""
    y = y.copy()
    finite = np.isfinite(y)
    if finite.sum() < 10:
        return y
    lo, hi = np.nanpercentile(y, [1, 99])
    span = max(hi - lo, float(upper or 0) - float(lower or 0), 1e-9)
    if upper is not None:
        over = finite & (y > upper + BOUND_TOLERANCE_FRACTION * span)
        report.add("above_physical_bound_removed", int(over.sum()))
        y[over] = np.nan
    if lower is not None:
        under = np.isfinite(y) & (y < lower - BOUND_TOLERANCE_FRACTION * span)
        report.add("below_physical_bound_removed", int(under.sum()))
        y[under] = np.nan
    days = len(y) // per_day
    if days < SPIKE_MIN_DAYS or upper is not None:
        # A rated series (PV, wind) is judged by its rating: its time-of-day distribution is
        # mostly calm or cloudy, so rated output on a good day would look "extreme" there.
        return y
    block = y[: days * per_day].reshape(days, per_day)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        q1, q3 = np.nanpercentile(block, [25, 75], axis=0)
    iqr = np.maximum(q3 - q1, SPIKE_IQR_FLOOR_FRACTION * span)
    slot = np.arange(len(y)) % per_day
    high, low = q3[slot] + SPIKE_IQR_FACTOR * iqr[slot], q1[slot] - SPIKE_IQR_FACTOR * iqr[slot]
    spikes = np.isfinite(y) & np.isfinite(high) & ((y > high) | (y < low))
    report.add("spikes_removed", int(spikes.sum()))
    y[spikes] = np.nan
    return y


def _remove_flatlines(
    y: np.ndarray, minutes: int, lower: float | None, upper: float | None, report: HygieneReport
) -> np.ndarray:
    y = y.copy()
    same = np.zeros(len(y), dtype=bool)
    same[1:] = np.isfinite(y[1:]) & (y[1:] == y[:-1])
    need = max(FLATLINE_MIN_MINUTES // minutes, 2)
    # Plateaus at the physical limits are real: zero output and, for bounded (generating)
    # series, rated or clipped output at the top of the range.
    plateaus = {0.0} | {float(b) for b in (lower, upper) if b is not None}
    if upper is not None and np.isfinite(y).any():
        plateaus.add(float(np.nanmax(y)))
    finite = y[np.isfinite(y)]
    if len(finite):  # a standby value the meter reads often (a PV inverter's night draw) is real too
        values, counts = np.unique(finite, return_counts=True)
        share, mode = counts.max() / len(finite), float(values[np.argmax(counts)])
        if FLATLINE_STANDBY_SHARE <= share <= FLATLINE_STANDBY_MAX_SHARE and mode <= np.percentile(finite, 5):
            plateaus.add(mode)
    removed = 0
    for start, end in _runs(same):
        first = start - 1  # the run of equal values starts one before the first "same" flag
        value = y[first]
        if end - first >= need and float(value) not in plateaus:
            y[first:end] = np.nan
            removed += end - first
    report.add("flatline_readings_removed", removed)
    return y


def _fill_gaps(y: np.ndarray, per_day: int, minutes: int, report: HygieneReport) -> np.ndarray:
    y = y.copy()
    short = max(INTERPOLATE_MAX_MINUTES // minutes, 1)
    series = pd.Series(y)
    interpolated = series.interpolate(limit_area="inside")
    for start, end in _runs(~np.isfinite(y)):
        if end - start <= short and start > 0 and end < len(y):
            y[start:end] = interpolated.to_numpy()[start:end]
            report.add("short_gaps_interpolated", end - start)
            continue
        for i in range(start, end):
            for lag in (per_day, -per_day, 2 * per_day, 7 * per_day):
                j = i - lag
                if 0 <= j < len(y) and np.isfinite(y[j]):
                    y[i] = y[j]
                    break
        report.add("long_gaps_filled_from_neighbour_day", int(np.isfinite(y[start:end]).sum()))
    if not np.isfinite(y).all():
        rest = ~np.isfinite(y)
        y = pd.Series(y).interpolate(limit_direction="both").to_numpy()
        report.add("remaining_gaps_interpolated", int(rest.sum()))
    return y


def clean_values(
    y: pd.Series,
    series_id: str,
    minutes: int,
    lower: float | None = None,
    upper: float | None = None,
    min_days: float = 0.0,
    report: HygieneReport | None = None,
) -> tuple[pd.Series, HygieneReport]:
    """Repair a regular series (NaN = missing) or raise :class:`HygieneError`."""
    report = report or HygieneReport(series_id)
    per_day = 1440 // minutes
    values = pd.to_numeric(y, errors="coerce").to_numpy(dtype=float)
    days = len(values) / per_day
    if days < min_days:
        raise HygieneError(
            f"{series_id}: history too short: {days:.1f} days of {minutes}-minute data, at least {min_days:g} needed"
        )
    missing_raw = int((~np.isfinite(values)).sum())
    report.add("missing_readings", missing_raw)
    values = _remove_spikes(values, per_day, lower, upper, report)
    values = _remove_flatlines(values, minutes, lower, upper, report)
    missing = ~np.isfinite(values)
    if missing.mean() > MAX_MISSING_FRACTION:
        raise HygieneError(
            f"{series_id}: {missing.mean():.0%} of the readings are missing or unusable "
            f"({missing_raw} missing, {report.flags['flatline_readings_removed']} flat-lined, "
            f"{report.flags['spikes_removed']} spikes); at most {MAX_MISSING_FRACTION:.0%} can be repaired"
        )
    if missing.any():
        values = _fill_gaps(values, per_day, minutes, report)
    return pd.Series(values, index=y.index, name=series_id), report

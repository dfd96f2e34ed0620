"""Write and read time series: the one way services read history.

Values are kept per series and market day (``tables``). Writing merges readings into the
stored day: a reading equal to the stored one changes nothing, a new or different reading
makes a new version of that day (the previous version stays in ``ts_revisions``), so
ingesting the same data twice stores nothing and a correction is never a silent overwrite.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, and_, bindparam, select, update

from infra.db.engine import in_batches, insert_ignore
from infra.timeseries.quantities import quantity_of
from infra.timeseries.tables import ts_days, ts_revisions, ts_series
from infra.timeutil import MARKET_TZ, day_start, now

QUALITY_CODES = {"good": 0, "estimated": 1, "suspect": 2}
QUALITY_NAMES = {v: k for k, v in QUALITY_CODES.items()}
_NO_READING = 255  # quality code of a slot without a reading


class TimeSeriesError(ValueError):
    """A request the store cannot serve, naming the series and the rule."""


@dataclass(frozen=True)
class SeriesInfo:
    id: int
    name: str
    unit: str
    interval_minutes: int


@dataclass(frozen=True)
class WriteReport:
    """What one write did; ``days_written`` is 0 when everything was stored already."""

    series: int = 0
    days_written: int = 0
    points_new: int = 0
    points_corrected: int = 0
    points_unchanged: int = 0

    def __add__(self, other: WriteReport) -> WriteReport:
        return WriteReport(
            *(a + b for a, b in zip(self.__dict__.values(), other.__dict__.values(), strict=True))
        )

    def describe(self) -> str:
        return (
            f"{self.points_new:,} new and {self.points_corrected:,} corrected readings in "
            f"{self.days_written:,} series-days ({self.points_unchanged:,} already stored) across {self.series} series"
        )


def per_day(interval_minutes: int) -> int:
    if interval_minutes <= 0 or 1440 % interval_minutes:
        raise TimeSeriesError(f"interval_minutes={interval_minutes}: must divide a day (1440 minutes) evenly")
    return 1440 // interval_minutes


def _conn(bind: Engine | Connection) -> tuple[Connection, bool]:
    return (bind, False) if isinstance(bind, Connection) else (bind.connect(), True)


def series_info(bind: Engine | Connection, park_id: str, names: Iterable[str]) -> dict[str, SeriesInfo]:
    """The catalogue entries of ``names`` that exist."""
    conn, close = _conn(bind)
    try:
        rows = [
            row
            for batch in in_batches(names)
            for row in conn.execute(
                select(
                    ts_series.c.id, ts_series.c.name, ts_series.c.unit, ts_series.c.interval_minutes
                ).where(ts_series.c.park_id == park_id, ts_series.c.name.in_(batch))
            )
        ]
    finally:
        if close:
            conn.close()
    return {r.name: SeriesInfo(int(r.id), r.name, r.unit, int(r.interval_minutes)) for r in rows}


def catalogue(bind: Engine | Connection, park_id: str) -> list[SeriesInfo]:
    conn, close = _conn(bind)
    try:
        rows = conn.execute(
            select(ts_series).where(ts_series.c.park_id == park_id).order_by(ts_series.c.name)
        )
        return [SeriesInfo(int(r.id), r.name, r.unit, int(r.interval_minutes)) for r in rows]
    finally:
        if close:
            conn.close()


def ensure_series(
    conn: Connection, park_id: str, interval_minutes: Mapping[str, int]
) -> dict[str, SeriesInfo]:
    """Register series on first use; an existing series keeps its interval or the write is refused."""
    for name, minutes in interval_minutes.items():
        quantity_of(name)
        per_day(minutes)
    insert_ignore(
        conn,
        ts_series,
        [
            {
                "park_id": park_id,
                "name": n,
                "unit": quantity_of(n).unit,
                "interval_minutes": m,
                "created_at": now(),
            }
            for n, m in interval_minutes.items()
        ],
        ["park_id", "name"],
    )
    info = series_info(conn, park_id, interval_minutes)
    clash = [
        f"series {n}: stored every {info[n].interval_minutes} min, these readings are every {m} min"
        for n, m in interval_minutes.items()
        if info[n].interval_minutes != m
    ]
    if clash:
        raise TimeSeriesError("; ".join(clash))
    return info


def _slots(index: pd.DatetimeIndex, interval_minutes: int) -> tuple[np.ndarray, np.ndarray]:
    """(market day ordinal, slot in the day) of each timestamp; off-grid stamps are refused."""
    local = index.tz_convert(MARKET_TZ)
    minutes = local.hour.to_numpy() * 60 + local.minute.to_numpy()
    off_grid = (minutes % interval_minutes != 0) | (local.second.to_numpy() != 0)
    if off_grid.any():
        raise TimeSeriesError(
            f"timestamp {local[np.argmax(off_grid)].isoformat()} is not on the {interval_minutes}-minute grid"
        )
    days = np.array([d.toordinal() for d in local.date], dtype=np.int64)
    return days, minutes // interval_minutes


def write(
    conn: Connection,
    park_id: str,
    readings: Mapping[str, pd.Series],
    source: str,
    interval_minutes: int | Mapping[str, int] = 15,
    quality: Mapping[str, pd.Series] | None = None,
) -> WriteReport:
    """Merge ``readings`` (per series name, indexed by aware interval starts; NaN = no reading)
    into the store inside the caller's transaction."""
    intervals = (
        dict(interval_minutes)
        if isinstance(interval_minutes, Mapping)
        else {n: interval_minutes for n in readings}
    )
    info = ensure_series(conn, park_id, {n: intervals[n] for n in readings})
    report = WriteReport()
    stamp = now()
    for name, series in readings.items():
        report += _write_one(conn, info[name], series, (quality or {}).get(name), source, stamp)
    return report


def _write_one(
    conn: Connection,
    info: SeriesInfo,
    series: pd.Series,
    quality: pd.Series | None,
    source: str,
    stamp: datetime,
) -> WriteReport:
    values = series.to_numpy(dtype=float)
    given = ~np.isnan(values)
    if not given.any():
        return WriteReport(series=1)
    index = pd.DatetimeIndex(series.index)[given]
    values = values[given]
    codes = (
        np.zeros(len(values), dtype=np.uint8)
        if quality is None
        else quality.reindex(series.index).to_numpy()[given].astype(np.uint8)
    )
    if not np.isfinite(values).all():
        raise TimeSeriesError(f"series {info.name}: values must be finite numbers")
    days, slots = _slots(index, info.interval_minutes)
    n = per_day(info.interval_minutes)
    first, last = date.fromordinal(int(days.min())), date.fromordinal(int(days.max()))
    stored = {
        r.day: (int(r.version), np.frombuffer(r.vals, dtype="<f8"), np.frombuffer(r.quality, dtype=np.uint8))
        for r in conn.execute(
            select(ts_days.c.day, ts_days.c.version, ts_days.c.vals, ts_days.c.quality).where(
                ts_days.c.series_id == info.id, ts_days.c.day >= first, ts_days.c.day <= last
            )
        )
    }
    inserts, updates, revisions = [], [], []
    new = corrected = unchanged = 0
    order = np.argsort(days, kind="stable")
    days, slots, values, codes = days[order], slots[order], values[order], codes[order]
    bounds = np.flatnonzero(np.diff(days)) + 1
    for d_slots, d_values, d_codes, ordinal in zip(
        np.split(slots, bounds),
        np.split(values, bounds),
        np.split(codes, bounds),
        days[np.r_[0, bounds]],
        strict=True,
    ):
        day = date.fromordinal(int(ordinal))
        version, old_vals, old_q = stored.get(day, (0, np.full(n, np.nan), np.full(n, _NO_READING, np.uint8)))
        vals, qual = old_vals.copy(), old_q.copy()
        vals[d_slots], qual[d_slots] = d_values, d_codes
        had = ~np.isnan(old_vals[d_slots])
        same = had & (old_vals[d_slots] == d_values) & (old_q[d_slots] == d_codes)
        unchanged += int(same.sum())
        corrected += int((had & ~same).sum())
        new += int((~had).sum())
        if same.all():
            continue
        row = {
            "series_id": info.id,
            "day": day,
            "version": version + 1,
            "vals": vals.astype("<f8").tobytes(),
            "quality": qual.tobytes(),
        }
        (updates if version else inserts).append(row)
        revisions.append({**row, "source": source[:128], "ingested_at": stamp})
    if inserts:
        conn.execute(ts_days.insert(), inserts)
    if updates:
        conn.execute(
            update(ts_days)
            .where(and_(ts_days.c.series_id == bindparam("b_series"), ts_days.c.day == bindparam("b_day")))
            .values(version=bindparam("version"), vals=bindparam("vals"), quality=bindparam("quality")),
            [
                {
                    "b_series": u["series_id"],
                    "b_day": u["day"],
                    "version": u["version"],
                    "vals": u["vals"],
                    "quality": u["quality"],
                }
                for u in updates
            ],
        )
    if revisions:
        conn.execute(ts_revisions.insert(), revisions)
    return WriteReport(1, len(revisions), new, corrected, unchanged)


def write_frame(
    conn: Connection, park_id: str, frame: pd.DataFrame, source: str, interval_minutes: int = 15
) -> WriteReport:
    """A wide frame (columns are series names) written as :func:`write` does."""
    return write(conn, park_id, {c: frame[c] for c in frame.columns}, source, interval_minutes)


def _resample(block: np.ndarray, from_minutes: int, to_minutes: int, extensive: bool) -> np.ndarray:
    """Days x slots at ``from_minutes`` to days x slots at ``to_minutes``: averages of power hold
    across finer slots; energies are split or summed."""
    if from_minutes == to_minutes:
        return block
    if from_minutes > to_minutes:
        if from_minutes % to_minutes:
            raise TimeSeriesError(f"cannot convert {from_minutes}-minute data to {to_minutes} minutes")
        k = from_minutes // to_minutes
        out = np.repeat(block, k, axis=1)
        return out / k if extensive else out
    if to_minutes % from_minutes:
        raise TimeSeriesError(f"cannot convert {from_minutes}-minute data to {to_minutes} minutes")
    k = to_minutes // from_minutes
    grouped = block.reshape(block.shape[0], -1, k)
    return grouped.sum(axis=2) if extensive else grouped.mean(axis=2)  # a gap in any part makes a gap


def read(
    bind: Engine | Connection,
    park_id: str,
    names: Iterable[str],
    start: date,
    end: date,
    *,
    interval_minutes: int | None = None,
    as_of: datetime | None = None,
    missing: str = "error",
) -> pd.DataFrame:
    """Series ``names`` over market days ``[start, end)``, one column each, indexed by aware
    interval starts; NaN where nothing was recorded.

    ``interval_minutes`` converts every series to one grid (default: their common interval).
    ``as_of`` returns the data as it was known at that time (earlier versions of corrected
    days). ``missing="nan"`` gives an empty column for a series never stored instead of an error.
    """
    names = list(dict.fromkeys(names))
    if end <= start:
        raise TimeSeriesError(f"window [{start}, {end}) is empty")
    conn, close = _conn(bind)
    try:
        info = series_info(conn, park_id, names)
        unknown = [n for n in names if n not in info]
        if unknown and missing == "error":
            raise TimeSeriesError(f"park {park_id}: no stored series {', '.join(unknown[:10])}")
        grids = {i.interval_minutes for i in info.values()}
        if interval_minutes is None:
            if len(grids) > 1:
                raise TimeSeriesError(
                    f"series have different intervals ({sorted(grids)} min); pass interval_minutes to convert"
                )
            interval_minutes = grids.pop() if grids else 15
        n_days = (end - start).days
        target = per_day(interval_minutes)
        out = np.full((n_days * target, len(names)), np.nan)
        by_id = {i.id: (names.index(n), i) for n, i in info.items()}
        for series_id, rows in _day_rows(conn, list(by_id), start, end, as_of).items():
            col, sinfo = by_id[series_id]
            days = np.array([(d - start).days for d, _ in rows])
            block = np.stack([v for _, v in rows])
            block = _resample(
                block, sinfo.interval_minutes, interval_minutes, quantity_of(sinfo.name).extensive
            )
            view = out[:, col].reshape(n_days, target)
            view[days] = block
    finally:
        if close:
            conn.close()
    index = pd.date_range(day_start(start), day_start(end), freq=f"{interval_minutes}min", inclusive="left")
    return pd.DataFrame(out, index=index, columns=names)


def _day_rows(
    conn: Connection, series_ids: list[int], start: date, end: date, as_of: datetime | None
) -> dict[int, list[tuple[date, np.ndarray]]]:
    found: dict[int, dict[date, tuple[int, np.ndarray]]] = {}
    if not series_ids:
        return {}
    table = ts_days if as_of is None else ts_revisions
    for batch in in_batches(series_ids):
        query = select(table.c.series_id, table.c.day, table.c.version, table.c.vals).where(
            table.c.series_id.in_(batch), table.c.day >= start, table.c.day < end
        )
        if as_of is not None:
            query = query.where(ts_revisions.c.ingested_at <= as_of)
        for sid, day, version, vals in conn.execute(query):
            best = found.setdefault(int(sid), {})
            if day not in best or best[day][0] < version:
                best[day] = (int(version), np.frombuffer(vals, dtype="<f8"))
    return {sid: sorted((d, v) for d, (_, v) in days.items()) for sid, days in found.items()}


def coverage(
    bind: Engine | Connection, park_id: str, names: Iterable[str]
) -> dict[str, tuple[date, date, int]]:
    """First day, last day and number of stored days of each stored series."""
    from sqlalchemy import func

    conn, close = _conn(bind)
    try:
        info = series_info(conn, park_id, names)
        ids = {i.id: n for n, i in info.items()}
        if not ids:
            return {}
        rows = [
            row
            for batch in in_batches(ids)
            for row in conn.execute(
                select(ts_days.c.series_id, func.min(ts_days.c.day), func.max(ts_days.c.day), func.count())
                .where(ts_days.c.series_id.in_(batch))
                .group_by(ts_days.c.series_id)
            )
        ]
    finally:
        if close:
            conn.close()
    return {ids[int(r[0])]: (r[1], r[2], int(r[3])) for r in rows}


def days_between(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days)]

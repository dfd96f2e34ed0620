"""Meter and price files into the store: every row checked, every problem named, all or nothing.

Meter file (CSV with a header): ``timestamp,series_id,value[,quality]`` where ``timestamp``
is the interval start in ISO 8601 with its UTC offset (``2026-07-15T00:15:00+08:00``;
offsets that change across daylight saving are read correctly), ``series_id`` is
``<owner>.<quantity>`` (``quantities.yaml``), ``value`` a number in the quantity's unit and
``quality`` one of good, estimated, suspect (default good).

Price file: ``timestamp,market,price`` with ``market`` one of day_ahead, real_time,
regulation (CNY/MWh; regulation mileage CNY/MW).
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine

from infra.scenario.model import Scenario
from infra.timeseries.checks import PRICE_SERIES, bounds
from infra.timeseries.quantities import series_problem
from infra.timeseries.store import QUALITY_CODES, WriteReport, series_info, write
from infra.timeutil import MARKET_TZ

MAX_PROBLEMS = 50  # listed in full up to this many; the count is always given


class IngestError(ValueError):
    """A file that cannot be stored; ``problems`` names file, row and field of each."""

    def __init__(self, path: str, problems: list[str], total: int | None = None) -> None:
        self.problems = problems
        total = total or len(problems)
        more = f"\n  ... and {total - len(problems)} more" if total > len(problems) else ""
        super().__init__(
            f"{path}: {total} problem(s), nothing stored:\n  - " + "\n  - ".join(problems) + more
        )


@dataclass(frozen=True)
class Reading:
    row: int
    timestamp: datetime
    series: str
    value: float
    quality: str


def _read_rows(
    path: Path, required: tuple[str, ...], optional: tuple[str, ...]
) -> list[tuple[int, dict[str, str]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except IsADirectoryError as exc:
        raise IngestError(str(path), ["is a directory, not a CSV file"]) from exc
    except FileNotFoundError as exc:
        raise IngestError(str(path), ["no such file"]) from exc
    except UnicodeDecodeError as exc:
        raise IngestError(str(path), [f"not UTF-8 text (byte {exc.start}); export the file as CSV"]) from exc
    reader = csv.DictReader(text.splitlines())
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in required if c not in header]
    unknown = [c for c in header if c not in required + optional]
    if missing or unknown:
        problems = [f"header: missing column {c!r}" for c in missing]
        problems += [
            f"header: unknown column {c!r} (columns: {', '.join(required + optional)})" for c in unknown
        ]
        raise IngestError(str(path), problems)
    reader.fieldnames = header
    rows = [
        (i, {k: (v or "").strip() for k, v in row.items() if k is not None})
        for i, row in enumerate(reader, start=2)
    ]
    if not rows:
        raise IngestError(str(path), ["the file has a header but no rows"])
    return rows


def _timestamp(raw: str) -> tuple[datetime | None, str | None]:
    try:
        ts = datetime.fromisoformat(raw)
    except ValueError:
        return None, f"timestamp: {raw[:40]!r} is not ISO 8601 (e.g. 2026-07-15T00:15:00+08:00)"
    if ts.tzinfo is None:
        return None, f"timestamp: {raw[:40]!r} has no UTC offset; add one (e.g. +08:00)"
    if not 1990 <= ts.year <= 2100:
        return None, f"timestamp: year {ts.year} is outside 1990-2100"
    return ts.astimezone(MARKET_TZ), None


def _value(raw: str) -> tuple[float | None, str | None]:
    try:
        value = float(raw)
    except ValueError:
        return None, f"value: {raw[:40]!r} is not a number"
    if not math.isfinite(value):
        return None, f"value: {raw[:40]!r} must be a finite number"
    return value, None


def _intervals(
    engine: Engine, park_id: str, readings: list[Reading], given: int | None
) -> tuple[dict[str, int], list[str]]:
    """Each series' interval: the stored one, the one given, or the file's smallest step."""
    stored = series_info(engine, park_id, {r.series for r in readings})
    stamps: dict[str, list[datetime]] = defaultdict(list)
    for r in readings:
        stamps[r.series].append(r.timestamp)
    out, problems = {}, []
    for name, ts in stamps.items():
        if name in stored:
            out[name] = stored[name].interval_minutes
            continue
        if given is not None:
            out[name] = given
            continue
        steps = pd.Series(sorted(set(ts))).diff().dropna()
        if steps.empty:
            problems.append(f"series {name}: one reading only; give --interval-minutes")
            continue
        minutes = int(steps.min().total_seconds() // 60)
        if minutes <= 0 or 1440 % minutes:
            problems.append(
                f"series {name}: readings {minutes} min apart do not divide a day; give --interval-minutes"
            )
            continue
        out[name] = minutes
    return out, problems


def _check(
    path: Path, readings: list[Reading], intervals: dict[str, int], scenario: Scenario | None
) -> list[str]:
    problems: list[str] = []
    seen: dict[tuple[str, datetime], Reading] = {}
    for r in readings:
        minutes = intervals.get(r.series)
        minute_of_day = r.timestamp.hour * 60 + r.timestamp.minute
        if minutes and (minute_of_day % minutes or r.timestamp.second or r.timestamp.microsecond):
            problems.append(
                f"row {r.row}: timestamp: {r.timestamp.isoformat()} is not on the {minutes}-minute grid of {r.series}"
            )
        if minutes is None and r.series.endswith("_mwh"):
            continue  # an energy's bound depends on its interval, which is unknown (reported above)
        problem = bounds(r.series, scenario, minutes or 15).problem(r.value)
        if problem:
            problems.append(f"row {r.row}: value: {r.series} {problem}")
        first = seen.setdefault((r.series, r.timestamp), r)
        if first is not r and (first.value != r.value or first.quality != r.quality):
            problems.append(
                f"row {r.row}: {r.series} at {r.timestamp.isoformat()} is also on row {first.row} with another value"
            )
    return problems


def _row_number(problem: str) -> int:
    head = problem.split(":", 1)[0]
    return int(head[4:]) if head.startswith("row ") and head[4:].isdigit() else 0


def parse_meter_rows(path: Path) -> tuple[list[Reading], list[str]]:
    readings, problems = [], []
    for row, raw in _read_rows(path, ("timestamp", "series_id", "value"), ("quality",)):
        ts, p1 = _timestamp(raw["timestamp"])
        value, p2 = _value(raw["value"])
        p3 = series_problem(raw["series_id"])
        quality = raw.get("quality") or "good"
        p4 = (
            None
            if quality in QUALITY_CODES
            else f"quality: {quality[:20]!r} is not one of {', '.join(QUALITY_CODES)}"
        )
        found = [p for p in (p1, p2, p3 and f"series_id: {p3}", p4) if p]
        problems += [f"row {row}: {p}" for p in found]
        if not found:
            readings.append(Reading(row, ts, raw["series_id"], value, quality))
    return readings, problems


def parse_price_rows(path: Path) -> tuple[list[Reading], list[str]]:
    readings, problems = [], []
    for row, raw in _read_rows(path, ("timestamp", "market", "price"), ()):
        ts, p1 = _timestamp(raw["timestamp"])
        value, p2 = _value(raw["price"])
        name = PRICE_SERIES.get(raw["market"])
        p3 = None if name else f"market: {raw['market'][:20]!r} is not one of {', '.join(PRICE_SERIES)}"
        found = [p for p in (p1, p2 and p2.replace("value:", "price:"), p3) if p]
        problems += [f"row {row}: {p}" for p in found]
        if not found:
            readings.append(Reading(row, ts, name, value, "good"))
    return readings, problems


def ingest(
    engine: Engine,
    park_id: str,
    path: Path,
    kind: str,
    scenario: Scenario | None,
    interval_minutes: int | None = None,
) -> WriteReport:
    """Check every row of a meter (``kind="meters"``) or price (``"prices"``) file and store it whole,
    in one transaction, or raise :class:`IngestError` naming every problem and store nothing."""
    parse = parse_meter_rows if kind == "meters" else parse_price_rows
    readings, problems = parse(path)
    intervals, interval_problems = _intervals(engine, park_id, readings, interval_minutes)
    problems += interval_problems + _check(path, readings, intervals, scenario)
    if problems:
        problems.sort(key=_row_number)
        raise IngestError(str(path), problems[:MAX_PROBLEMS], len(problems))
    by_series: dict[str, dict[datetime, Reading]] = defaultdict(dict)
    for r in readings:
        by_series[r.series][r.timestamp] = r
    values = {
        n: pd.Series({ts: r.value for ts, r in rs.items()}, dtype=float).sort_index()
        for n, rs in by_series.items()
    }
    quality = {
        n: pd.Series({ts: QUALITY_CODES[r.quality] for ts, r in rs.items()}).sort_index()
        for n, rs in by_series.items()
    }
    for series in (*values.values(), *quality.values()):
        series.index = pd.DatetimeIndex(series.index).tz_convert(MARKET_TZ)
    with engine.begin() as conn:
        return write(conn, park_id, values, f"file {path.name}", intervals, quality)

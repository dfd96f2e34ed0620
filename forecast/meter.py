"""Forecast and backtest one meter series with the model pool (any history from 2 days up).

:func:`forecast_meter` selects a model on the series' own rolling-origin backtest (daily
origins at the time of day of the cut-off) and returns calibrated conditional quantiles.
:func:`backtest_meter` replays that whole procedure at each of the last ``eval_days`` daily
origins, each using only what was known then, and scores the published P50 against
persistence, the 7-day profile mean and CLIPER, and the P10-P90 band's coverage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from forecast.pool import POOL, MeterSeries, RollingForecasts, rolling_forecasts
from forecast.poolselect import (
    Bounds,
    Choice,
    apply_bounds,
    choose,
    conformal_quantiles,
    evidence,
    published_point,
)
from forecast.solar import sun_and_clearsky

MeterKind = Literal["auto", "pv", "wind", "load", "generic"]
MAX_EVIDENCE_ORIGINS = 40  # backtest origins behind each selection
MIN_HISTORY_DAYS = 2.0
FLOOR_BAND_FRACTION = 0.02  # readings within this share of the range of the 5th percentile are "at the floor"
NIGHT_TOLERANCE_FRACTION = (
    0.002  # a slot is at its floor (night) if the last days read within this share of the range
)
FLOOR_SHARE_FOR_PV = 0.25  # auto: a series at its floor this often (nights) is treated as PV
NIGHT_LOOKBACK_DAYS = 7


class MeterError(ValueError):
    """A meter series that cannot be forecast; the message names the field and the rule."""


@dataclass
class MeterInfo:
    kind: str
    site: tuple[float, float, float] | None = None
    capacity: float | None = None


@dataclass
class MeterForecast:
    quantiles: np.ndarray  # steps x levels
    levels: tuple[float, ...]
    choice: Choice
    rows: pd.DatetimeIndex
    kind: str
    bounds: Bounds


@dataclass
class Backtest:
    name: str
    kind: str
    origins: int
    steps: int
    mae: dict[str, float]  # published P50 and the references
    ratio: dict[str, float]  # P50 MAE / reference MAE
    coverage_10_90: float
    outside_bounds: int
    cliper_alpha: float
    models: dict[str, int]  # chosen model -> number of origins
    accuracy_by_day: list[float] = field(default_factory=list)  # 1 - RMSE / capacity per lead day
    capacity: float | None = None

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def _detect_kind(values: np.ndarray, kind: MeterKind) -> str:
    if kind != "auto":
        return kind
    v = values[np.isfinite(values)]
    lo, hi = np.percentile(v, [5, 99.5])
    near = np.abs(v - lo) <= FLOOR_BAND_FRACTION * max(hi - lo, 1e-9)
    return "pv" if near.mean() >= FLOOR_SHARE_FOR_PV else "generic"


def _bounds(values: np.ndarray, kind: str, capacity: float | None) -> Bounds:
    v = values[np.isfinite(values)]
    lo, hi = float(v.min()), float(v.max())
    if kind in ("pv", "wind"):
        floor = float(np.median(v[v <= np.percentile(v, 5) + FLOOR_BAND_FRACTION * (hi - lo)]))
        return Bounds(min(lo, floor, 0.0), capacity if capacity else hi, floor if kind == "pv" else None)
    return Bounds(0.0 if lo >= 0 else None, capacity, None)


def _night(
    s: MeterSeries, values: np.ndarray, cut: int, steps: int, bounds: Bounds, kind: str
) -> np.ndarray | None:
    """Intervals known to be at the floor: PV slots at the floor on each of the last days (and,
    with a known site, with the sun down: the data decides, as a logger clock may be off by an hour)."""
    if kind != "pv" or bounds.floor is None:
        return None
    v = values[:cut][np.isfinite(values[:cut])] if cut else values[np.isfinite(values)]
    tol = NIGHT_TOLERANCE_FRACTION * (float(np.nanmax(v)) - float(np.nanmin(v)))
    out = np.zeros(steps, dtype=bool)
    for h in range(steps):
        t = cut + h
        past = [t - d * s.per_day for d in range(math.ceil((h + 1) / s.per_day), NIGHT_LOOKBACK_DAYS + 1)]
        past = [p for p in past if 0 <= p < cut]
        vals = values[past] if past else np.array([])
        out[h] = (
            len(vals) >= 2 and np.isfinite(vals).all() and bool(np.all(np.abs(vals - bounds.floor) <= tol))
        )
    if s.clearsky is not None:
        out &= s.clearsky[cut : cut + steps] <= 0.0
    return out


def meter_series(
    y: pd.Series, steps: int, info: MeterInfo, exog: pd.DataFrame | None = None
) -> tuple[MeterSeries, int]:
    """The series on its grid extended by ``steps`` intervals; returns it and the cut-off position."""
    interval = y.index[1] - y.index[0]
    per_day = int(pd.Timedelta(days=1) / interval)
    grid = pd.date_range(y.index[0], periods=len(y) + steps, freq=interval)
    clear = sun_and_clearsky(*info.site, grid)["clearsky_ghi"].to_numpy() if info.site else None
    values = np.concatenate([y.to_numpy(dtype=float), np.full(steps, np.nan)])
    return MeterSeries(values, grid, per_day, clear, exog), len(y)


def _origins(s: MeterSeries, cut: int, steps: int, keep: int) -> list[int]:
    first_valid = int(np.argmax(np.isfinite(s.values)))
    out, c = [], cut
    while c - first_valid >= s.per_day and len(out) < keep:
        out.append(c)
        c -= s.per_day
    return sorted(out)


def _check_history(y: pd.Series, per_day: int, name: str) -> None:
    days = np.isfinite(y.to_numpy(dtype=float)).sum() / per_day
    if days < MIN_HISTORY_DAYS:
        raise MeterError(
            f"{name}: history too short: {days:.1f} days of readings; at least {MIN_HISTORY_DAYS:g} days are "
            "needed (one to forecast from with persistence, one to check it on)"
        )


def forecast_meter(
    y: pd.Series,
    steps: int,
    levels: tuple[float, ...],
    kind: MeterKind = "auto",
    site: tuple[float, float, float] | None = None,
    capacity: float | None = None,
    exog: pd.DataFrame | None = None,
    name: str = "value",
    models: tuple[str, ...] = POOL,
) -> MeterForecast:
    """Quantiles for the ``steps`` intervals after the last reading of the regular series ``y``."""
    per_day = int(pd.Timedelta(days=1) / (y.index[1] - y.index[0]))
    _check_history(y, per_day, name)
    resolved = _detect_kind(y.to_numpy(dtype=float), kind)
    s, cut = meter_series(y, steps, MeterInfo(resolved, site, capacity), exog)
    keep = MAX_EVIDENCE_ORIGINS + math.ceil(steps / per_day) + 1
    rf = rolling_forecasts(s, _origins(s, cut, steps, keep), steps, models)
    bounds = _bounds(s.values[:cut], resolved, capacity)
    choice, quantiles = _publish(rf, s, cut, steps, levels, bounds, resolved)
    return MeterForecast(quantiles, levels, choice, s.index[cut : cut + steps], resolved, bounds)


def _publish(
    rf: RollingForecasts,
    s: MeterSeries,
    cut: int,
    steps: int,
    levels: tuple[float, ...],
    bounds: Bounds,
    kind: str,
) -> tuple[Choice, np.ndarray]:
    choice = choose(rf, s.values, cut, MAX_EVIDENCE_ORIGINS, s.per_day)
    point = rf.points[choice.model].get(cut)
    if point is None:
        raise MeterError(f"model {choice.model}: no forecast at the cut-off")
    night = _night(s, s.values, cut, steps, bounds, kind)
    known = s.values.copy()
    known[cut:] = np.nan
    used = evidence(rf, cut, MAX_EVIDENCE_ORIGINS)
    q = conformal_quantiles(
        rf, choice.model, known, used, cut, point, levels, s.per_day, bounds, s.clearsky, night
    )
    p50 = published_point(rf, choice.model, choice.debias, known, used, cut, s.per_day)
    q[:, [i for i, lv in enumerate(levels) if lv == 0.5]] = p50[:, None]
    return choice, apply_bounds(q, bounds, night)


def backtest_meter(
    y: pd.Series,
    steps: int,
    eval_days: int,
    levels: tuple[float, ...] = (0.1, 0.5, 0.9),
    kind: MeterKind = "auto",
    site: tuple[float, float, float] | None = None,
    capacity: float | None = None,
    name: str = "value",
    models: tuple[str, ...] = POOL,
) -> Backtest:
    """The published forecast replayed at each of the last ``eval_days`` daily origins."""
    per_day = int(pd.Timedelta(days=1) / (y.index[1] - y.index[0]))
    _check_history(y, per_day, name)
    resolved = _detect_kind(y.to_numpy(dtype=float), kind)
    s, end = meter_series(y, 0, MeterInfo(resolved, site, capacity))
    days_needed = math.ceil(steps / per_day)
    last = end - steps
    keep = eval_days + MAX_EVIDENCE_ORIGINS + days_needed + 1
    origins = _origins(s, last, steps, keep)
    eval_at = origins[-eval_days:]
    rf = rolling_forecasts(s, origins, steps, models)
    p50 = levels.index(0.5)
    published, actual, lows, highs, refs = (
        [],
        [],
        [],
        [],
        {"persistence": [], "profile7": [], "climatology": []},
    )
    chosen: dict[str, int] = {}
    outside = 0
    for cut in eval_at:
        known = s.values.copy()
        known[cut:] = np.nan
        bounds = _bounds(known[:cut], resolved, capacity)
        view = MeterSeries(known, s.index, per_day, s.clearsky, s.exog)
        choice, q = _publish(rf, view, cut, steps, levels, bounds, resolved)
        chosen[choice.model] = chosen.get(choice.model, 0) + 1
        truth = s.values[cut : cut + steps]
        published.append(q[:, p50])
        actual.append(truth)
        lows.append(q[:, levels.index(0.1)])
        highs.append(q[:, levels.index(0.9)])
        for ref in refs:
            refs[ref].append(rf.points[ref].get(cut, np.full(steps, np.nan)))
        lo = bounds.lower if bounds.lower is not None else -np.inf
        hi = bounds.upper if bounds.upper is not None else np.inf
        outside += int(((q < lo - 1e-9) | (q > hi + 1e-9)).sum())
    a = np.concatenate(actual)
    p = np.concatenate(published)
    ref = {k: np.concatenate(v) for k, v in refs.items()}
    ok = np.isfinite(a) & np.isfinite(p) & np.isfinite(ref["persistence"]) & np.isfinite(ref["climatology"])
    alpha = cliper_alpha(a[ok], ref["persistence"][ok], ref["climatology"][ok])
    ref["cliper"] = alpha * ref["persistence"] + (1 - alpha) * ref["climatology"]
    ok &= np.isfinite(ref["profile7"])
    mae = {"p50": float(np.mean(np.abs(a[ok] - p[ok])))}
    for k in ("persistence", "profile7", "cliper", "climatology"):
        mae[k] = float(np.mean(np.abs(a[ok] - ref[k][ok])))
    lo, hi = np.concatenate(lows), np.concatenate(highs)
    day_mask = ok & ((hi - lo) > 0) if resolved == "pv" else ok
    coverage = float(np.mean((a[day_mask] >= lo[day_mask] - 1e-9) & (a[day_mask] <= hi[day_mask] + 1e-9)))
    cap = capacity or float(np.nanmax(s.values))
    by_day = []
    if steps > per_day:
        err = (p - a).reshape(len(eval_at), steps)
        for d in range(math.ceil(steps / per_day)):
            block = err[:, d * per_day : (d + 1) * per_day]
            block = block[np.isfinite(block)]
            by_day.append(float(1 - np.sqrt(np.mean(block**2)) / cap))
    return Backtest(
        name=name,
        kind=resolved,
        origins=len(eval_at),
        steps=steps,
        mae=mae,
        ratio={k: mae["p50"] / v for k, v in mae.items() if k != "p50" and v > 0},
        coverage_10_90=coverage,
        outside_bounds=outside,
        cliper_alpha=alpha,
        models=chosen,
        accuracy_by_day=by_day,
        capacity=cap,
    )


def cliper_alpha(actual: np.ndarray, persistence: np.ndarray, climatology: np.ndarray) -> float:
    """The MSE-optimal weight of persistence in CLIPER = a*persistence + (1-a)*climatology (Yang 2019)."""
    d = persistence - climatology
    denom = float(np.dot(d, d))
    return float(np.clip(np.dot(actual - climatology, d) / denom, 0.0, 1.0)) if denom > 0 else 0.0

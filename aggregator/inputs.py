"""What the optimiser reads: forecast quantiles checked against the park, price scenarios, contracts.

A ``ForecastSet`` is validated once here (series present, finite, physically possible, on the
market's interval grid) so the model never sees a bad number; every rejection names the
series, quantile and interval. Crossing quantiles are put back in order and noted.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date

import numpy as np
import pandas as pd

from aggregator.devices.renewables import CAPACITY_TOLERANCE
from aggregator.errors import InputError
from infra.contracts import ForecastSet
from infra.scenario import Scenario
from infra.timeutil import MARKET_TZ, day_intervals, ensure_aware, interval_hours

PRICE_DA = "market.price_da_cny_per_mwh"
MEDIAN = 0.5
# Negative power below this (MW) is rejected; smaller negatives are model noise and become zero.
NEGATIVE_TOLERANCE_MW = 0.01


def required_series(scenario: Scenario) -> dict[str, float | None]:
    """Series the park model needs, with the physical upper limit where there is one."""
    from aggregator.devices import fleets_for

    needed: dict[str, float | None] = {PRICE_DA: None}
    for fleet in fleets_for(scenario):
        needed.update(fleet.forecast_series())
    return needed


@dataclass(frozen=True)
class DayInputs:
    """Quantile forecasts of one market day on the model's interval grid."""

    day: date
    starts: pd.DatetimeIndex
    interval_minutes: int
    series: dict[str, dict[float, np.ndarray]]
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def T(self) -> int:
        return len(self.starts)

    @property
    def dt_h(self) -> float:
        return interval_hours(self.interval_minutes)

    def quantile(self, series_id: str, level: float) -> np.ndarray:
        """Linear interpolation between the forecast's levels; no extrapolation beyond them."""
        by_level = self.series[series_id]
        levels = np.array(sorted(by_level))
        values = np.stack([by_level[q] for q in levels])
        if level <= levels[0]:
            return values[0].copy()
        if level >= levels[-1]:
            return values[-1].copy()
        hi = int(np.searchsorted(levels, level))
        w = (level - levels[hi - 1]) / (levels[hi] - levels[hi - 1])
        return (1 - w) * values[hi - 1] + w * values[hi]

    def median(self, series_id: str) -> np.ndarray:
        return self.quantile(series_id, MEDIAN)

    def medians(self) -> dict[str, np.ndarray]:
        return {sid: self.median(sid) for sid in self.series}

    def merged_with(self, newer: DayInputs, from_index: int = 0) -> DayInputs:
        """These inputs with the intervals from ``from_index`` on that ``newer`` covers taken from it.

        Earlier intervals keep their values: they were dispatched on them (intraday update).
        """
        position = {ts: i for i, ts in enumerate(self.starts)}
        pairs = [(position[ts], i) for i, ts in enumerate(newer.starts) if position.get(ts, -1) >= from_index]
        idx = np.array([p for p, _ in pairs], dtype=int)
        src = np.array([i for _, i in pairs], dtype=int)
        series = {}
        for sid, by_level in self.series.items():
            updated = {}
            for q in by_level:
                values = by_level[q].copy()
                if sid in newer.series and len(idx):
                    values[idx] = newer.quantile(sid, q)[src]
                updated[q] = values
            series[sid] = updated
        return replace(self, series=series, notes=self.notes + newer.notes)


def _parse_level(series_id: str, key: str) -> float:
    try:
        level = float(key)
    except ValueError as exc:
        raise InputError(f"series {series_id}: quantile key {key!r} is not a number like '0.5'") from exc
    if not 0 < level < 1:
        raise InputError(f"series {series_id}: quantile key {key!r} must lie strictly between 0 and 1")
    return level


def _grid(forecast: ForecastSet, interval_minutes: int) -> tuple[pd.DatetimeIndex, int]:
    """The forecast's interval starts and how many of its intervals make one model interval."""
    if interval_minutes % forecast.interval_minutes:
        raise InputError(
            f"interval_minutes={forecast.interval_minutes}: must divide the model's {interval_minutes}-minute "
            "intervals evenly"
        )
    starts = [ensure_aware(ts, "interval_starts") for ts in forecast.interval_starts]
    index = pd.DatetimeIndex(starts).tz_convert(MARKET_TZ)
    if len(index) > 1:
        steps = (index[1:] - index[:-1]) / pd.Timedelta(minutes=1)
        bad = np.flatnonzero(np.asarray(steps) != forecast.interval_minutes)
        if len(bad):
            raise InputError(
                f"interval_starts: {index[bad[0] + 1].isoformat()} does not follow {index[bad[0]].isoformat()} "
                f"by interval_minutes={forecast.interval_minutes}"
            )
    return index, interval_minutes // forecast.interval_minutes


def inputs_from_forecast(
    scenario: Scenario, forecast: ForecastSet, day: date, *, full_day: bool = True
) -> DayInputs:
    """Validate a forecast against the park and put it on the day-ahead interval grid.

    ``full_day=False`` accepts a forecast covering only part of the day (intraday updates);
    intervals outside the day are ignored.
    """
    minutes = scenario.market.day_ahead_interval_minutes
    index, group = _grid(forecast, minutes)
    day_grid = day_intervals(day, minutes)
    by_id = {s.series_id: s for s in forecast.series}
    needed = required_series(scenario)
    missing = sorted(set(needed) - set(by_id))
    if missing and full_day:
        raise InputError(
            f"forecast lacks series {', '.join(missing)}: the aggregator needs one per forecast asset of park "
            f"{scenario.id} plus {PRICE_DA}"
        )

    # Model intervals fully covered by the forecast's intervals.
    pos = {ts: i for i, ts in enumerate(index)}
    covered = [
        t
        for t, ts in enumerate(day_grid)
        if all(ts + pd.Timedelta(minutes=k * forecast.interval_minutes) in pos for k in range(group))
    ]
    if full_day and len(covered) != len(day_grid):
        raise InputError(
            f"interval_starts: a day-ahead forecast must cover {day} from {day_grid[0].isoformat()} in "
            f"{len(day_grid)} intervals of {minutes} minutes; it covers {len(covered)}"
        )
    if not covered:
        raise InputError(f"interval_starts: the forecast covers no {minutes}-minute interval of {day}")
    first = np.array([pos[day_grid[t]] for t in covered])
    starts = day_grid[covered]  # boxed into timestamps only for an error message

    notes: list[str] = []
    series: dict[str, dict[float, np.ndarray]] = {}
    for sid in needed:
        if sid not in by_id:
            continue
        quantiles = by_id[sid].quantiles
        levels = {_parse_level(sid, key): key for key in quantiles}
        if MEDIAN not in levels:
            raise InputError(f"series {sid}: quantile '0.5' (the median) is required")
        table = np.stack([np.asarray(quantiles[levels[q]], dtype=float) for q in sorted(levels)])
        table = table[:, first[:, None] + np.arange(group)].mean(axis=2)
        bad = np.argwhere(~np.isfinite(table))
        if len(bad):
            q, t = bad[0]
            raise InputError(
                f"series {sid}, quantile {sorted(levels)[q]}: value at {day_grid[covered[t]].isoformat()} is not a "
                "finite number"
            )
        if sid != PRICE_DA:
            table = _check_power(sid, table, needed[sid], starts, sorted(levels))
        else:
            table = _clip_price(table, scenario, notes)
        if np.any(np.diff(table, axis=0) < 0):
            notes.append(f"series {sid}: crossing quantiles were sorted back into order")
            table = np.sort(table, axis=0)
        series[sid] = {q: table[i] for i, q in enumerate(sorted(levels))}

    return DayInputs(day=day, starts=starts, interval_minutes=minutes, series=series, notes=tuple(notes))


def _check_power(
    sid: str, table: np.ndarray, upper: float | None, starts: pd.DatetimeIndex, levels: list[float]
) -> np.ndarray:
    q, t = np.unravel_index(np.argmin(table), table.shape)
    if table[q, t] < -NEGATIVE_TOLERANCE_MW:
        raise InputError(
            f"series {sid}, quantile {levels[q]}: {table[q, t]:.3f} MW at {starts[t].isoformat()} is negative; "
            "power forecasts must be >= 0"
        )
    if upper is not None:
        q, t = np.unravel_index(np.argmax(table), table.shape)
        if table[q, t] > upper:
            raise InputError(
                f"series {sid}, quantile {levels[q]}: {table[q, t]:.1f} MW at {starts[t].isoformat()} exceeds the "
                f"asset's capacity ({upper / CAPACITY_TOLERANCE:g} MW, tolerance {CAPACITY_TOLERANCE:g}x)"
            )
    return np.maximum(table, 0.0)


def _clip_price(table: np.ndarray, scenario: Scenario, notes: list[str]) -> np.ndarray:
    lo = scenario.market.clearing_price_floor_cny_per_mwh
    hi = scenario.market.clearing_price_cap_cny_per_mwh
    outside = int(np.sum((table < lo) | (table > hi)))
    if outside:
        notes.append(
            f"series {PRICE_DA}: {outside} values outside the clearing limits [{lo:g}, {hi:g}] were clipped"
        )
    return np.clip(table, lo, hi)


# --- price scenarios ---------------------------------------------------------------------


@dataclass(frozen=True)
class PriceScenarios:
    """K price paths, scenario k at the forecast's level (k + 0.5) / K in every interval.

    The paths are comonotone (a dear day is dear all day), so a market clearing near one
    level all day awards one scenario's schedule, which is feasible by construction.
    """

    prices: np.ndarray  # (K, T) CNY/MWh, rising with k in every interval
    weights: np.ndarray  # (K,) probabilities

    @property
    def K(self) -> int:
        return self.prices.shape[0]


def price_scenarios(inputs: DayInputs, K: int) -> PriceScenarios:
    prices = np.stack([inputs.quantile(PRICE_DA, (k + 0.5) / K) for k in range(K)])
    return PriceScenarios(prices=prices, weights=np.full(K, 1.0 / K))


# --- medium/long-term contracts --------------------------------------------------------------


@dataclass(frozen=True)
class ContractPositions:
    """The park's medium/long-term positions per interval (net-injection sign)."""

    quantity_mw: np.ndarray  # Q_MLT
    green_mw: np.ndarray  # green-power purchases covering imports (>= 0)
    revenue_cny: float  # sum of Q_MLT * P_MLT * dt (negative: the park pays)


def contract_positions(scenario: Scenario, starts: pd.DatetimeIndex, dt_h: float) -> ContractPositions:
    hours = starts.hour.to_numpy() + starts.minute.to_numpy() / 60.0
    quantity = np.zeros(len(starts))
    green = np.zeros(len(starts))
    revenue = 0.0
    for c in scenario.park.contracts:
        h0, h1 = c.hours
        active = (hours >= h0) & (hours < h1) if h0 <= h1 else (hours >= h0) | (hours < h1)
        q = np.where(active, c.quantity_mw, 0.0)
        quantity += q
        if c.green:
            green += np.maximum(-q, 0.0)
        revenue += float(np.sum(q) * c.price_cny_per_mwh * dt_h)
    return ContractPositions(quantity_mw=quantity, green_mw=green, revenue_cny=revenue)

"""Real-time settlement on the real-time grid (Shanxi 5 minutes), where real-time bids cleared.

A park-day has one whole-day real-time award (the exchange's real-time prices with the day-ahead
position standing: the market file's ``missing_bid: price_taker``) and any number of real-time
bid awards (``Award.real_time_bid``), each covering the intervals its bid still had open. On the
real-time grid, per interval:

* ``Q_RT`` is the cleared quantity of the latest real-time bid covering it (bids are ordered by
  their first interval: a rolling gate only lets a later bid start later, and where two overlap the
  later one replaced the earlier before the gate), else ``Q_DA``;
* ``P_RT`` is that bid's clearing price, else the whole-day award's real-time price.

Metering is 15-minute: a meter interval's energy is spread evenly over its real-time intervals
(exact when the energy is flat within the meter interval, which the aggregator's set-points are:
they are held per day-ahead interval; the uncontrolled part of the load and renewables is assumed
flat within 15 minutes too). Then, per real-time interval of length ``h``:

* ``real_time_energy = (Q_RT - Q_DA) * h * P_RT`` (the cleared real-time change)
  ``+ (E - Q_RT * h) * P_RT`` (the remaining deviation at the real-time price),
  which is ``(E - Q_DA * h) * P_RT``, the three-part formula of DOMAIN.md section 3;
* ``deviation_charge``: the market file's deviation rule against ``Q_RT`` (free band, penalty
  factor, demand-response exemption), :func:`settlement.market.deviation_charge`.

Each line is rounded to the fen per real-time interval and summed into its meter interval, so the
statement (on the meter grid) holds the exact sum of the 5-minute settlement. A meter interval
holding at least one bid interval is settled this way in all its real-time intervals (the others
at ``Q_DA`` and the whole-day price); meter intervals no real-time bid touches keep the meter-grid
computation (today's, unchanged to the fen).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from infra.contracts import Award
from infra.scenario.model import MarketRules, Scenario
from infra.timeutil import day_intervals
from settlement import market
from settlement.money import FEN_PER_CNY, to_fen


def real_time_bid_problems(award: Award, scenario: Scenario, day: date) -> list[str]:
    """A real-time bid's award: the real-time market's intervals, consecutive, inside the market day."""
    market_id, market = scenario.market.market_for("real_time_energy")
    minutes = market.interval_minutes
    if award.interval_minutes != minutes:
        return [f"interval_minutes: {award.interval_minutes}, but {market_id} intervals are {minutes} min"]
    if 1440 % minutes or scenario.market.day_ahead_interval_minutes % minutes:
        return [
            f"interval_minutes: {minutes}-minute real-time intervals do not divide the day-ahead intervals"
        ]
    if any(s.tzinfo is None for s in award.interval_starts):
        return ["interval_starts: every start must carry a timezone offset"]
    grid = day_intervals(day, minutes)
    index = grid.get_indexer([s.astimezone(grid.tz) for s in award.interval_starts])
    if np.any(index < 0) or np.any(np.diff(index) != 1):
        return [f"interval_starts: must be consecutive {minutes}-minute intervals of market day {day}"]
    return []


@dataclass(frozen=True)
class RealTimeGrid:
    """The day's real-time result on the real-time grid (``per`` real-time intervals per meter interval)."""

    minutes: int
    per: int
    q_rt_mw: np.ndarray  # (n * per,)
    p_rt_cny_per_mwh: np.ndarray  # (n * per,)
    bid_covered: np.ndarray  # (n * per,) bool: a real-time bid cleared this interval
    bid_message_ids: tuple[str, ...]

    @property
    def hours(self) -> float:
        return self.minutes / 60.0

    def covered_meter_intervals(self) -> np.ndarray:
        return self.bid_covered.reshape(-1, self.per).any(axis=1)

    def on_meter_grid(self, values: np.ndarray) -> np.ndarray:
        """Real-time values averaged onto the meter grid (for series and plots)."""
        return values.reshape(-1, self.per).mean(axis=1)


def real_time_grid(
    minutes: int,
    meter_minutes: int,
    q_da_mw: np.ndarray,
    p_rt_day: np.ndarray,
    bids: list[tuple[int, np.ndarray, np.ndarray, str]],
) -> RealTimeGrid:
    """``q_da_mw`` on the meter grid, ``p_rt_day`` (the whole-day award's prices) already on the
    real-time grid; ``bids`` as (index of the first real-time interval, cleared MW, price, award
    message id), applied in order of their first interval (the latest covering an interval stands)."""
    per = meter_minutes // minutes
    q = np.repeat(np.asarray(q_da_mw, dtype=float), per)
    p = np.asarray(p_rt_day, dtype=float).copy()
    covered = np.zeros(len(q), dtype=bool)
    ordered = sorted(bids, key=lambda b: b[0])
    for first, cleared, price, _ in ordered:
        q[first : first + len(cleared)] = cleared
        p[first : first + len(price)] = price
        covered[first : first + len(cleared)] = True
    return RealTimeGrid(minutes, per, q, p, covered, tuple(b[3] for b in ordered))


@dataclass(frozen=True)
class RealTimeAmounts:
    """Real-time lines per meter interval (CNY, exact sums of fen-rounded real-time amounts) where a
    real-time bid cleared, and their parts for the day's record."""

    covered: np.ndarray  # (n,) meter intervals holding a real-time bid's interval
    real_time_energy_cny: np.ndarray  # (n,)
    deviation_charge_cny: np.ndarray  # (n,)
    deviation_excess_mwh: np.ndarray  # (n,)
    cleared_change_cny: float  # sum of (Q_RT - Q_DA) h P_RT over the covered meter intervals
    remaining_deviation_cny: float  # sum of (E - Q_RT h) P_RT over them


def real_time_amounts(
    rules: MarketRules,
    grid: RealTimeGrid,
    q_da_mw: np.ndarray,
    actual_mwh: np.ndarray,
    dr_mw: np.ndarray,
) -> RealTimeAmounts:
    """The real-time lines settled on the real-time grid (arrays on the meter grid, zero where no
    real-time bid cleared: the caller keeps its meter-grid amounts there)."""
    per, h = grid.per, grid.hours
    energy = np.repeat(np.asarray(actual_mwh, dtype=float) / per, per)  # spread evenly
    q_da = np.repeat(np.asarray(q_da_mw, dtype=float), per)
    dr = np.repeat(np.asarray(dr_mw, dtype=float), per)
    q_rt, p_rt = grid.q_rt_mw, grid.p_rt_cny_per_mwh
    covered = grid.covered_meter_intervals()
    mask = np.repeat(covered, per)  # every real-time interval of a meter interval a bid touches
    change = (q_rt - q_da) * h * p_rt
    remaining = (energy - q_rt * h) * p_rt
    deviation = market.deviation_charge(rules, energy, q_rt, p_rt, h, dr)
    excess = market.deviation_excess_mwh(rules, energy, q_rt, h, dr)

    def per_meter(fen: np.ndarray) -> np.ndarray:
        return np.where(mask, fen, 0).reshape(-1, per).sum(axis=1) / FEN_PER_CNY

    return RealTimeAmounts(
        covered=covered,
        real_time_energy_cny=per_meter(to_fen(change + remaining)),
        deviation_charge_cny=per_meter(to_fen(deviation)),
        deviation_excess_mwh=np.where(mask, excess, 0.0).reshape(-1, per).sum(axis=1),
        cleared_change_cny=round(float(change[mask].sum()), 2),
        remaining_deviation_cny=round(float(remaining[mask].sum()), 2),
    )

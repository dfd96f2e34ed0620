"""Real-time offers from an intraday re-optimisation (pure: no database, no Kafka).

After :func:`aggregator.dispatch.reoptimise` the park stands at a new schedule ``S`` (the
re-optimised set-points summed per day-ahead interval): where the devices could not absorb the
newer forecast, ``S`` differs from the day-ahead position ``Q_DA``. :func:`real_time_offer`
re-declares that position in the real-time market, on its grid and only in the intervals whose
rolling gate is still open at the re-optimisation time:

* **grid**: the market file's real-time market (``kind: real_time_energy``; Shanxi 5 minutes);
  every real-time interval lies in one day-ahead interval, whose set-points are held through it;
* **gate**: an interval is offered when its gate closure (``gate_closure_minutes_before_delivery``
  before it starts) is after the re-optimisation time; the exchange refuses a submission at or
  after the gate, so an interval whose gate closes exactly then is left out;
* **curve**: the day-ahead offer's curve of the interval (the model's price response: the price
  scenarios' schedules and the storage flexibility bands, in the province's format, built by
  :func:`aggregator.curves.energy_curve`), moved by ``S - Q_DA``. At a price where the day-ahead
  curve gives ``Q_DA`` (the day-ahead clearing price) the real-time curve gives ``S``; away from it
  the park keeps the price response the day-ahead model found. Intervals where the day-ahead curve
  has no segments are offered price-taking at ``S``.

``expected_revenue_cny`` values the re-declared change ``(S - Q_DA) * h`` at the day-ahead clearing
price (the model's expectation of the real-time price); ``expected_emissions_tco2`` is the change
of grid-import emissions that change causes (imports at the park-method grid factor).
"""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pandas as pd

from aggregator.errors import InputError
from infra.contracts import Award, Dispatch, EnergyCurve, Offer
from infra.scenario import Scenario
from infra.scenario.model import MarketRules
from infra.timeutil import MARKET_TZ, day_intervals, ensure_aware


def open_intervals(rules: MarketRules, day: date, at: datetime) -> pd.DatetimeIndex:
    """Real-time intervals of ``day`` whose rolling gate is still open at ``at`` (closes after it)."""
    _, market = rules.market_for("real_time_energy")
    at = ensure_aware(at, "at")
    starts = day_intervals(day, market.interval_minutes)
    keep = [market.gate_closure(day, s.to_pydatetime()) > at for s in starts]
    return starts[np.asarray(keep, dtype=bool)]


def _on_day_ahead_grid(name: str, starts: list[datetime], expected: pd.DatetimeIndex) -> None:
    got = pd.DatetimeIndex([ensure_aware(s, f"{name}.interval_starts") for s in starts]).tz_convert(MARKET_TZ)
    if not got.equals(expected):
        raise InputError(
            f"{name}.interval_starts: expected the {len(expected)} day-ahead intervals of {expected[0].date()} "
            "(the grid of the day-ahead offer)"
        )


def real_time_offer(
    scenario: Scenario,
    day_ahead_offer: Offer,
    day_ahead_award: Award,
    dispatch: Dispatch,
    *,
    at: datetime,
    forecast_message_id: str,
) -> Offer | None:
    """The real-time offer of a re-optimised ``dispatch`` made at market time ``at``; None when no
    real-time interval of the day is open any more. Raises :class:`InputError` naming the field
    when the offer, award and dispatch are not on one day-ahead grid."""
    rules = scenario.market
    market_id, market = rules.market_for("real_time_energy")
    da_minutes = day_ahead_offer.interval_minutes
    if da_minutes % market.interval_minutes:
        raise InputError(
            f"interval_minutes: the {market_id} grid of {market.interval_minutes} min does not divide the "
            f"day-ahead intervals of {da_minutes} min"
        )
    da_starts = pd.DatetimeIndex(
        [ensure_aware(s, "offer.interval_starts") for s in day_ahead_offer.interval_starts]
    ).tz_convert(MARKET_TZ)
    day = da_starts[0].date()
    if not da_starts.equals(day_intervals(day, da_minutes)):
        raise InputError(f"offer.interval_starts: not the {da_minutes}-minute intervals of {day}")
    _on_day_ahead_grid("award", day_ahead_award.interval_starts, da_starts)
    _on_day_ahead_grid("dispatch", dispatch.interval_starts, da_starts)
    if not dispatch.assets:
        raise InputError("dispatch.assets: the re-optimised dispatch has no set-points")

    schedule = np.sum([np.asarray(a.power_mw, dtype=float) for a in dispatch.assets], axis=0)
    q_da = np.asarray(day_ahead_award.cleared_mw, dtype=float)
    shift = schedule - q_da
    starts = open_intervals(rules, day, at)
    if len(starts) == 0:
        return None
    parent = ((starts - da_starts[0]) // pd.Timedelta(minutes=da_minutes)).to_numpy().astype(int)
    curves = [_moved(day_ahead_offer.energy[t], float(shift[t])) for t in parent]

    h = market.interval_minutes / 60.0
    p_da = np.asarray(day_ahead_award.clearing_price_cny_per_mwh, dtype=float)[parent]
    revenue = float(np.sum(shift[parent] * h * p_da))
    imports = np.maximum(-schedule, 0.0) - np.maximum(-q_da, 0.0)
    emissions = float(np.sum(imports[parent]) * h * scenario.park.carbon.grid_ef_tco2_per_mwh)
    return Offer(
        interval_minutes=market.interval_minutes,
        interval_starts=[s.to_pydatetime() for s in starts],
        market="real_time",
        market_id=market_id,
        scenario_version=scenario.version,
        forecast_message_id=forecast_message_id,
        energy=curves,
        expected_revenue_cny=round(revenue, 2),
        expected_emissions_tco2=round(emissions, 4),
        issued_at=ensure_aware(at, "at"),
    )


def _moved(curve: EnergyCurve, shift_mw: float) -> EnergyCurve:
    """The curve with every quantity moved by ``shift_mw`` (the segments, its price response, kept)."""
    return curve.model_copy(update={"base_mw": round(curve.base_mw + shift_mw, 3)})


def followed_award(position: Award, real_time: Award) -> tuple[Award, int]:
    """The position the assets must deliver once a real-time bid cleared, and its first changed interval.

    ``position`` is the award the dispatch follows on the day-ahead grid (the day-ahead award, or
    one with earlier real-time results applied). Set-points are held per day-ahead interval, so each
    day-ahead interval takes the mean of its real-time intervals' ``Q_RT``, its own position where the
    bid did not reach; regulation and demand response stand. Raises :class:`InputError` naming the
    field when the real-time intervals are not on the day's real-time grid.
    """
    da_minutes, rt_minutes = position.interval_minutes, real_time.interval_minutes
    if da_minutes % rt_minutes:
        raise InputError(
            f"interval_minutes: real-time intervals of {rt_minutes} min do not divide the day-ahead {da_minutes} min"
        )
    per = da_minutes // rt_minutes
    da_starts = pd.DatetimeIndex([ensure_aware(s, "award.interval_starts") for s in position.interval_starts])
    day = da_starts.tz_convert(MARKET_TZ)[0].date()
    rt_starts = pd.DatetimeIndex(
        [ensure_aware(s, "real_time.interval_starts") for s in real_time.interval_starts]
    )
    where = day_intervals(day, rt_minutes).get_indexer(rt_starts)
    if len(where) == 0 or (where < 0).any() or len(da_starts) * per != 1440 // rt_minutes:
        raise InputError(
            f"real_time.interval_starts: not {rt_minutes}-minute intervals of {day} within the award's day"
        )
    fine = np.repeat(np.asarray(position.cleared_mw, dtype=float), per)
    fine[where] = np.asarray(real_time.cleared_mw, dtype=float)
    target = fine.reshape(-1, per).mean(axis=1)
    return position.model_copy(update={"cleared_mw": [round(float(x), 6) for x in target]}), int(
        where.min()
    ) // per

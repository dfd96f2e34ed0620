"""The real-time offer of an intraday re-optimisation: real-time grid, rolling gate, quantities from
the re-optimised schedule with the day-ahead model's price response around it (pure, hand-made inputs)."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from aggregator.errors import InputError
from aggregator.realtime import followed_award, open_intervals, real_time_offer
from bidding.rules import make_bid
from infra.contracts import AssetSetpoints, Award, Dispatch, EnergyCurve, Offer, Segment
from infra.scenario import load_scenario
from infra.timeutil import MARKET_TZ, day_intervals
from tests.aggregator.aggregator_tools import DAY, T

STARTS = [ts.to_pydatetime() for ts in day_intervals(DAY, 15)]
P_DA = 400.0


def quantity_at(curve: EnergyCurve, price: float) -> float:
    """Injection the curve sells at ``price`` (segments at or below it are taken)."""
    return curve.base_mw + sum(s.quantity_mw for s in curve.segments if s.price_cny_per_mwh <= price)


def inputs() -> tuple[Offer, Award, Dispatch, np.ndarray]:
    """Day-ahead curves: base -20 MW, +6 MW at 300 and +4 MW at 500 (so -14 MW at the 400 clearing
    price); the re-optimised schedule S = pv + battery differs from Q_DA = -14 from 12:00 on."""
    curve = EnergyCurve(
        base_mw=-20.0,
        segments=[
            Segment(price_cny_per_mwh=300, quantity_mw=6),
            Segment(price_cny_per_mwh=500, quantity_mw=4),
        ],
    )
    offer = Offer(
        interval_minutes=15,
        interval_starts=STARTS,
        market="day_ahead",
        market_id="shanxi.day_ahead",
        scenario_version="t",
        forecast_message_id="da-forecast",
        energy=[curve] * T,
        expected_revenue_cny=0,
        expected_emissions_tco2=0,
    )
    award = Award(
        interval_minutes=15,
        interval_starts=STARTS,
        market="day_ahead",
        bid_message_id="bid",
        exchange="test",
        cleared_mw=[-14.0] * T,
        clearing_price_cny_per_mwh=[P_DA] * T,
    )
    hours = np.arange(T) / 4
    load = np.full(T, -20.0)
    battery = np.where(hours >= 12, np.where(hours < 18, 3.5, -2.0), 6.0)  # less left to give after noon
    dispatch = Dispatch(
        interval_minutes=15,
        interval_starts=STARTS,
        award_message_id="award",
        assets=[
            AssetSetpoints(asset_id="load", enterprise_id="e", power_mw=load.tolist()),
            AssetSetpoints(asset_id="bat", enterprise_id="e", power_mw=battery.tolist()),
        ],
        deviation_mw=(load + battery + 14).tolist(),
    )
    return offer, award, dispatch, load + battery


def test_gate_filtering_grid_and_quantities_follow_the_reoptimised_schedule() -> None:
    datong = load_scenario("datong")
    offer, award, dispatch, schedule = inputs()
    at = datetime(2026, 7, 15, 12, 0, tzinfo=MARKET_TZ)
    rt = real_time_offer(datong, offer, award, dispatch, at=at, forecast_message_id="intraday-12")
    assert rt is not None
    # Shanxi real time: 5-minute intervals, gate 60 min before each: 13:00 closes at 12:00 exactly, so
    # the first open interval is 13:05; every later one of the day is open.
    assert rt.market == "real_time" and rt.market_id == "shanxi.real_time" and rt.interval_minutes == 5
    assert rt.interval_starts[0] == datetime(2026, 7, 15, 13, 5, tzinfo=MARKET_TZ)
    assert rt.interval_starts[-1] == datetime(2026, 7, 15, 23, 55, tzinfo=MARKET_TZ)
    assert len(rt.energy) == (24 * 60 - (13 * 60 + 5)) // 5 == 131
    assert rt.issued_at == at and rt.forecast_message_id == "intraday-12"
    for start, curve in zip(rt.interval_starts, rt.energy, strict=True):
        t = (start.hour * 60 + start.minute) // 15  # the 15-minute set-point held through it
        # at the day-ahead clearing price the real-time curve gives the re-optimised schedule ...
        assert quantity_at(curve, P_DA) == pytest.approx(schedule[t], abs=1e-9)
        # ... and keeps the day-ahead model's price response around it
        assert [(s.price_cny_per_mwh, s.quantity_mw) for s in curve.segments] == [(300, 6), (500, 4)]
    # 13:05-18:00 the battery gives 3.5 MW instead of 6: S - Q_DA = -2.5 MW; then -8 MW to midnight.
    h = 5 / 60
    assert rt.expected_revenue_cny == pytest.approx(-2.5 * h * P_DA * 59 + -8.0 * h * P_DA * 72)
    assert rt.expected_emissions_tco2 > 0  # more imports than the day-ahead position
    bid = make_bid(rt, "rt-offer", datong.market)  # the province rules accept it as it is
    assert bid.interval_starts == rt.interval_starts and not bid.adjustments


def test_a_gate_between_grid_points_and_the_end_of_the_day() -> None:
    datong = load_scenario("datong")
    offer, award, dispatch, _ = inputs()
    late = datetime(2026, 7, 15, 12, 2, tzinfo=MARKET_TZ)
    assert open_intervals(datong.market, DAY, late)[0] == datetime(2026, 7, 15, 13, 5, tzinfo=MARKET_TZ)
    # from 22:55 on the last interval (23:55) has closed: nothing left to offer
    done = datetime(2026, 7, 15, 22, 55, tzinfo=MARKET_TZ)
    assert real_time_offer(datong, offer, award, dispatch, at=done, forecast_message_id="f") is None


def test_inputs_on_different_grids_are_named() -> None:
    datong = load_scenario("datong")
    offer, award, dispatch, _ = inputs()
    shifted = award.model_copy(update={"interval_starts": STARTS[1:] + STARTS[:1]})
    with pytest.raises(InputError, match=r"award\.interval_starts"):
        real_time_offer(
            datong,
            offer,
            shifted,
            dispatch,
            at=datetime(2026, 7, 15, 12, tzinfo=MARKET_TZ),
            forecast_message_id="f",
        )


def test_a_real_time_award_changes_the_position_per_day_ahead_interval_by_its_five_minute_mean() -> None:
    """Q_DA = 10 MW all day; a real-time bid cleared 16, 19, 4, 7 MW at 12:05-12:25. Hand calculation:
    12:00-12:15 holds (10 + 16 + 19) / 3 = 15 MW (12:00-12:05 was not bid: Q_DA stands), 12:15-12:30
    holds (4 + 7 + 10) / 3 = 7 MW, every other interval keeps 10 MW; the first changed interval is 48."""
    da = Award(
        interval_minutes=15,
        interval_starts=STARTS,
        market="day_ahead",
        bid_message_id="da-bid",
        exchange="sim",
        cleared_mw=[10.0] * T,
        clearing_price_cny_per_mwh=[P_DA] * T,
        regulation_mw=[2.0] * T,
    )
    rt_starts = [datetime(2026, DAY.month, DAY.day, 12, m, tzinfo=MARKET_TZ) for m in (5, 10, 15, 20)]
    rt = Award(
        interval_minutes=5,
        interval_starts=rt_starts,
        market="real_time",
        real_time_bid=True,
        bid_message_id="rt-bid",
        exchange="sim",
        cleared_mw=[16.0, 19.0, 4.0, 7.0],
        clearing_price_cny_per_mwh=[P_DA] * 4,
    )
    position, first = followed_award(da, rt)
    expected = np.full(T, 10.0)
    expected[48:50] = [15.0, 7.0]
    assert first == 48 and np.allclose(position.cleared_mw, expected)
    assert position.regulation_mw == da.regulation_mw and position.market == "day_ahead"

    off_grid = rt.model_copy(update={"interval_starts": [s.replace(minute=s.minute + 1) for s in rt_starts]})
    with pytest.raises(InputError, match=r"real_time\.interval_starts"):
        followed_award(da, off_grid)

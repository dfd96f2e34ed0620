"""The exchange simulator clears bids as a price-taker against the simulated market."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np

from bidding.rules import make_bid
from infra.contracts import DemandResponseOffer, EnergyCurve, Offer, RegulationOffer, Segment
from infra.scenario import load_scenario
from infra.timeutil import day_intervals
from sim.exchange import EXCHANGE_NAME, clear_day_ahead, real_time_results
from sim.history import load_history

DAY = date(2026, 7, 15)


def test_cleared_position_is_the_curve_at_the_day_ahead_price_in_price_taker_mode() -> None:
    s = load_scenario("datong")
    curve = EnergyCurve(
        base_mw=-250, segments=[Segment(price_cny_per_mwh=p, quantity_mw=40) for p in (150, 300, 450)]
    )
    offer = Offer(
        interval_minutes=15,
        interval_starts=list(day_intervals(DAY, 15)),
        market="day_ahead",
        scenario_version="t",
        forecast_message_id="f",
        energy=[curve] * 96,
        expected_revenue_cny=0,
        expected_emissions_tco2=0,
        regulation=[RegulationOffer(capacity_mw=10, mileage_price_cny_per_mw=6.0)] * 96,
        demand_response=[[DemandResponseOffer(direction="peak_cut", capacity_mw=15, price_cny_per_mwh=800)]]
        * 96,
    )
    bid = make_bid(offer, "offer", s.market)
    award = clear_day_ahead(bid, "bid", s, DAY, pricing="price_taker")
    truth = load_history(s, DAY, DAY + timedelta(days=1), view="truth")
    prices = truth["market.price_da_cny_per_mwh"].to_numpy()
    expected = -250 + 40 * ((prices >= 150).astype(int) + (prices >= 300) + (prices >= 450))
    assert np.allclose(award.cleared_mw, expected)
    assert award.exchange == EXCHANGE_NAME and award.market == "day_ahead"
    reg = np.asarray(award.regulation_mw)
    mileage = np.asarray(award.regulation_mileage_price_cny_per_mw)
    assert np.all((reg == 10) == (mileage >= 6.0)), (
        "regulation clears where our price is at or below the market's"
    )
    dr = np.asarray(award.demand_response_mw)
    assert (dr > 0).any() and prices[dr > 0].min() >= np.percentile(prices, 90), (
        "peak cut in the dearest intervals"
    )
    rt = real_time_results(award, s, DAY)
    assert rt.market == "real_time" and rt.cleared_mw == award.cleared_mw
    assert np.allclose(rt.clearing_price_cny_per_mwh, truth["market.price_rt_cny_per_mwh"])


def test_demand_response_events_carry_notice_target_and_baseline() -> None:
    s = load_scenario("datong")
    curve = EnergyCurve(base_mw=-250, segments=[Segment(price_cny_per_mwh=300, quantity_mw=40)])
    offer = Offer(
        interval_minutes=15,
        interval_starts=list(day_intervals(DAY, 15)),
        market="day_ahead",
        scenario_version="t",
        forecast_message_id="f",
        energy=[curve] * 96,
        expected_revenue_cny=0,
        expected_emissions_tco2=0,
        demand_response=[[DemandResponseOffer(direction="peak_cut", capacity_mw=15, price_cny_per_mwh=800)]]
        * 96,
    )
    award = clear_day_ahead(make_bid(offer, "offer", s.market), "bid", s, DAY)
    assert award.demand_response_market_id == "shanxi.demand_response"
    invited = [i for i, m in enumerate(award.demand_response_mw) if m > 0]
    assert invited and award.demand_response_events
    covered = [i for e in award.demand_response_events for i in range(e.first_interval, e.last_interval + 1)]
    assert covered == invited
    for e in award.demand_response_events:
        assert e.direction == "peak_cut" and e.target_mw == 15 and e.price_cny_per_mwh == 800
        assert e.notified_at.isoformat() == "2026-07-14T17:30:00+08:00"
        assert e.baseline_days == s.market.demand_response.baseline_days

"""The day-ahead offer: curves in the province's format, ancillary offers, uncertainty headroom."""

from __future__ import annotations

import numpy as np

from aggregator.curves import curve_problems, energy_curve
from aggregator.offer import build_offer
from infra.scenario.loader import load_market
from tests.aggregator.aggregator_tools import forecast, small_park


def test_datong_offer_curves_are_monotone_and_respect_the_province_rules(datong, datong_forecast):
    result = build_offer(datong, datong_forecast, forecast_message_id="fc-1")
    offer, market = result.offer, datong.market
    assert offer.market == "day_ahead" and offer.scenario_version == datong.version
    assert offer.forecast_message_id == "fc-1" and len(offer.energy) == 96
    for curve in offer.energy:
        assert curve_problems(curve, market) == []
        grid = np.linspace(market.offer_price_floor_cny_per_mwh, market.offer_price_cap_cny_per_mwh, 301)
        quantities = [curve.quantity_at(p) for p in grid]
        assert np.all(np.diff(quantities) >= 0)
    # Datong buys most of its power: the price-taking position is an import most of the day.
    assert np.mean([c.base_mw < 0 for c in offer.energy]) > 0.8
    assert offer.expected_emissions_tco2 > 0
    batteries_mw = sum(a.power_mw for a in datong.assets_of("battery"))
    reg = market.regulation
    for r in offer.regulation:
        assert 0 <= r.capacity_mw <= batteries_mw + 1e-6
        assert (
            reg.mileage_price_min_cny_per_mw <= r.mileage_price_cny_per_mw <= reg.mileage_price_max_cny_per_mw
        )
        assert (
            abs(
                r.mileage_price_cny_per_mw / reg.price_tick_cny_per_mw
                - round(r.mileage_price_cny_per_mw / reg.price_tick_cny_per_mw)
            )
            < 1e-6
        )
    caps = {
        "peak_cut": market.demand_response.peak_cut_cap_cny_per_mwh,
        "valley_fill": market.demand_response.valley_fill_cap_cny_per_mwh,
    }
    offers = [d for interval in offer.demand_response for d in interval]
    assert offers, (
        "Datong's batteries and interruptible load should offer demand response somewhere in the day"
    )
    for d in offers:
        assert 0 <= d.price_cny_per_mwh <= caps[d.direction] and d.capacity_mw >= market.min_segment_mw


def test_energy_curve_merges_to_the_segment_count_size_tick_and_limits():
    rules = load_market("shanxi").model_copy(
        update={
            "max_segments": 2,
            "min_segment_mw": 5,
            "price_tick_cny_per_mwh": 10,
            "offer_price_cap_cny_per_mwh": 1000,
        }
    )
    curve = energy_curve([-20, 103, 207, 455, 2000], [-100, -97, -80, -60, -59], rules, median_price=300)
    # Steps 3@100, 17@210, 20@460, 1@1000 (cap): the 1 MW step joins 460 at 490 (weighted, on tick),
    # then the closest pair 100/210 merges at 190 to fit two segments.
    assert curve.base_mw == -100
    assert [(s.price_cny_per_mwh, s.quantity_mw) for s in curve.segments] == [(190, 20), (490, 21)]
    assert curve_problems(curve, rules) == []
    assert curve.quantity_at(1000) == -59


def test_offer_reports_intervals_where_no_headroom_covers_the_forecast_range():
    load = {
        "id": "base",
        "type": "inflexible_load",
        "name": "base load",
        "peak_mw": 12,
        "load_factor": 1.0,
        "profile": "flat",
        "weekend_factor": 1.0,
        "holiday_factor": 1.0,
    }
    fc = forecast({"base.load_mw": 10.0, "market.price_da_cny_per_mwh": 300.0}, spread=0.2)
    rigid = build_offer(small_park([load]), fc, forecast_message_id="fc")
    assert len(rigid.at_risk) == 2 * 96  # up and down, every interval
    assert {r.shortfall_mw for r in rigid.at_risk} == {2.0}  # the P10-P90 half-width of 10 MW +- 20 %

    battery = {
        "id": "b1",
        "type": "battery",
        "name": "battery",
        "power_mw": 10,
        "energy_mwh": 20,
        "charge_efficiency": 0.95,
        "discharge_efficiency": 0.95,
        "soc_min_fraction": 0.1,
        "soc_max_fraction": 0.9,
        "soc_initial_fraction": 0.5,
        "degradation_cny_per_mwh": 40,
    }
    hedged = build_offer(small_park([load, battery]), fc, forecast_message_id="fc")
    assert hedged.at_risk == []


def test_flexibility_bands_are_priced_and_deliverable_whichever_intervals_call_them(datong, datong_forecast):
    from aggregator.dispatch import disaggregate
    from infra.contracts import Award

    result = build_offer(datong, datong_forecast, forecast_message_id="fc")
    # The market sees price-responsive capacity (the province's VPP entry threshold).
    flexible = max(sum(s.quantity_mw for s in c.segments) for c in result.offer.energy)
    assert flexible >= datong.market.vpp_min_capacity_mw
    # The solve the offer was read from (not a model kept anywhere): bands on the median scenario.
    (_, bands), *_ = result.solution.bands()
    up, up_price, down, down_price = bands.up_mw, bands.up_price, bands.down_mw, bands.down_price
    assert up.sum() > 0 and down.sum() > 0
    assert np.all(up_price > down_price)  # selling from storage costs more than buying into it pays
    median = result.solution.injection[result.solution.K // 2]
    # Every up band called at once (or every down band): the most any mix of calls can ask.
    for target in (median + up.sum(axis=0), median - down.sum(axis=0)):
        award = Award(
            interval_minutes=15,
            interval_starts=datong_forecast.interval_starts,
            market="day_ahead",
            bid_message_id="b",
            exchange="test",
            cleared_mw=target.tolist(),
            clearing_price_cny_per_mwh=[300.0] * 96,
        )
        dispatch = disaggregate(datong, datong_forecast, award, award_message_id="aw")
        assert np.max(np.abs(dispatch.dispatch.deviation_mw)) < 1e-3
        assert dispatch.problems == []

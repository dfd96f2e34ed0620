"""Province rules turn offers into valid bids, and say what they changed."""

from __future__ import annotations

from datetime import date

import pytest

from bidding.rules import BidRejected, make_bid
from infra.contracts import DemandResponseOffer, EnergyCurve, Offer, RegulationOffer, Segment
from infra.scenario import load_scenario
from infra.timeutil import day_intervals

DAY = date(2026, 7, 15)


def _offer(curve: EnergyCurve, n: int = 96, **extra: object) -> Offer:
    return Offer(
        interval_minutes=15,
        interval_starts=list(day_intervals(DAY, 15))[:n],
        market="day_ahead",
        scenario_version="test",
        forecast_message_id="f",
        energy=[curve] * n,
        expected_revenue_cny=0,
        expected_emissions_tco2=0,
        **extra,
    )


def _segments(*pairs: tuple[float, float]) -> list[Segment]:
    return [Segment(price_cny_per_mwh=p, quantity_mw=q) for p, q in pairs]


def test_prices_snap_to_tick_and_limits_with_a_note() -> None:
    rules = load_scenario("datong").market  # Shanxi: 0..1500, tick 1
    curve = EnergyCurve(base_mw=-200, segments=_segments((-30.0, 10), (250.4, 20), (2000.0, 5)))
    bid = make_bid(_offer(curve), "offer-1", rules)
    prices = [s.price_cny_per_mwh for s in bid.energy[0].segments]
    assert prices == [0.0, 250.0, 1500.0]
    assert any("-30.00 moved to 0.00" in a for a in bid.adjustments)
    assert any("2000.00 moved to 1500.00" in a for a in bid.adjustments)
    assert bid.rules_version == "shanxi@2026.11.2" and bid.offer_message_id == "offer-1"


def test_segments_are_merged_to_the_rule_count_and_size_and_stay_monotone() -> None:
    rules = load_scenario("datong").market  # max 10 segments, min 1 MW
    many = _segments(*[(100.0 + 10 * k, 3.0) for k in range(14)], (105.0, 0.4))
    bid = make_bid(_offer(EnergyCurve(base_mw=-50, segments=many)), "o", rules)
    segs = bid.energy[0].segments
    assert len(segs) <= rules.max_segments
    assert all(s.quantity_mw >= rules.min_segment_mw for s in segs)
    assert [s.price_cny_per_mwh for s in segs] == sorted(s.price_cny_per_mwh for s in segs)
    assert sum(s.quantity_mw for s in segs) == pytest.approx(14 * 3.0 + 0.4)
    # Quantity only ever moves to a dearer price: at any price the bid sells no more than the offer.
    offered = EnergyCurve(base_mw=-50, segments=many)
    for price in range(90, 260, 5):
        assert bid.energy[0].quantity_at(price) <= offered.quantity_at(price) + 1e-9


def test_too_little_flexibility_is_rejected_with_the_threshold() -> None:
    rules = load_scenario("datong").market
    with pytest.raises(
        BidRejected, match=r"at most 2\.0 MW of price-responsive capacity; .* requires at least 5 MW"
    ):
        make_bid(_offer(EnergyCurve(base_mw=-300, segments=_segments((200, 2.0)))), "o", rules)


def test_wrong_interval_count_is_rejected() -> None:
    rules = load_scenario("datong").market
    with pytest.raises(BidRejected, match="energy: 95 intervals offered, the market day has 96"):
        make_bid(_offer(EnergyCurve(base_mw=0, segments=_segments((200, 20))), n=95), "o", rules)


def test_ancillary_prices_follow_their_rules() -> None:
    rules = load_scenario("datong").market
    offer = _offer(
        EnergyCurve(base_mw=-100, segments=_segments((200, 30))),
        regulation=[RegulationOffer(capacity_mw=20, mileage_price_cny_per_mw=17.26)] * 96,
        demand_response=[
            [
                DemandResponseOffer(direction="peak_cut", capacity_mw=10, price_cny_per_mwh=1200),
                DemandResponseOffer(direction="valley_fill", capacity_mw=5, price_cny_per_mwh=100.4),
            ]
        ]
        * 96,
    )
    bid = make_bid(offer, "o", rules)
    assert bid.regulation[0].mileage_price_cny_per_mw == 15.0
    assert bid.demand_response[0][0].price_cny_per_mwh == 1000.0
    assert bid.demand_response[0][1].price_cny_per_mwh == 100.0
    assert any("peak_cut price 1200 capped at 1000" in a for a in bid.adjustments)

"""Regulation market: blocks of demand, price/performance ranking, uniform mileage price, K from AGC."""

from __future__ import annotations

import random
from datetime import date

import numpy as np
import pytest

from infra.scenario import load_scenario
from sim import agc
from sim.clearing import MarketState, Order, OrderBook, clear

DAY = date(2026, 7, 15)


def _market():
    rules = load_scenario("datong").market
    return rules, rules.registry()["shanxi.regulation"]


def test_awards_never_exceed_demand_or_offers_on_random_books() -> None:
    rules, market = _market()
    rnd = random.Random(5)
    for _ in range(300):
        orders = tuple(
            Order(
                f"o{k}",
                f"r{k}",
                rnd.randrange(len(rules.regulation.blocks)),
                round(rnd.uniform(0, 15), 1),
                rnd.uniform(0, 400),
                rnd.uniform(0.1, 1.0),
            )
            for k in range(rnd.randint(0, 12))
        )
        result = clear(
            OrderBook(len(rules.regulation.blocks), orders),
            market,
            MarketState(np.zeros(1), regulation=rules.regulation),
        )
        for b, block in enumerate(rules.regulation.blocks):
            in_block = [o for o in orders if o.interval == b]
            total = sum(result.accepted[o.order_id] for o in in_block)
            assert total <= block.demand_mw + 1e-9
            assert all(0 <= result.accepted[o.order_id] <= o.volume_mw + 1e-9 for o in in_block)
            accepted = [o for o in in_block if result.accepted[o.order_id] > 1e-9]
            if accepted:  # uniform price: the marginal accepted offer's, and nobody above it is paid less
                assert result.prices[b] == pytest.approx(max(o.price for o in accepted), abs=0.051)


def test_ranking_by_price_and_performance_by_hand() -> None:
    rules, market = _market()
    # block 0 demand 600 MW. Ranking price = price / performance:
    # A 6.0/1.0 = 6.0, B 5.0/0.5 = 10.0, C 7.0/0.9 = 7.78 -> A (400), C (200 of 300), B nothing.
    orders = (
        Order("A", "a", 0, 6.0, 400, 1.0),
        Order("B", "b", 0, 5.0, 400, 0.5),
        Order("C", "c", 0, 7.0, 300, 0.9),
    )
    result = clear(OrderBook(4, orders), market, MarketState(np.zeros(1), regulation=rules.regulation))
    assert result.accepted == {"A": 400, "C": 200, "B": 0}
    assert result.prices[0] == 7.0  # uniform mileage price: the marginal accepted offer (C)


def test_k_factor_formulas_match_hand_calculation() -> None:
    rules, _ = _market()
    # Shanxi (multiplicative, DOMAIN.md §3a): K = k1*k2*k3 = 1.5 * 0.8 * 0.9 = 1.08
    assert rules.regulation.k_formula == "multiplicative"
    assert rules.regulation.k_factor(1.5, 0.8, 0.9) == pytest.approx(1.08)
    assert rules.regulation.k_factor(3.0, 1.0, 1.0) == rules.regulation.k_cap  # capped at 2.0
    # Mengxi file uses the additive Shaanxi formula: K = 0.2*(3*1.5 + 0.8 + 0.9) = 1.24
    mengxi = load_scenario("chifeng").market.regulation
    assert mengxi.k_formula == "additive"
    assert mengxi.k_factor(1.5, 0.8, 0.9) == pytest.approx(1.24)


def test_k_inputs_from_a_simulated_agc_signal_by_hand() -> None:
    rules, _ = _market()
    settings = rules.exchange_simulator  # allowed delay 60 s, allowed error 5 %, required ramp 1.5 %/min
    # A 10 MW step up at t=100 s, held: the battery answers 6 s late, ramping 0.5 MW/s, no noise.
    signal = np.zeros(900)
    signal[100:] = 10.0
    response = agc.follow(signal, agc.Follower(delay_s=6, ramp_mw_per_s=0.5))
    perf = agc.performance(signal, response, capacity_mw=10.0, settings=settings)
    # delay by best alignment lies within the ramp (6 s delay + up to 10 s of ramp): hand-check k2 from it
    assert 6 <= perf.delay_s <= 16
    assert perf.k2 == pytest.approx(1 - perf.delay_s / 60)
    # achieved ramp 0.5 MW/s = 30 MW/min; required 0.015 * 10 MW = 0.15 MW/min -> k1 = 200, clipped to 5
    assert perf.k1 == 5.0
    # error: after aligning, the response misses the step only while ramping
    aligned = response[perf.delay_s :]
    expected_k3 = 1 - np.mean(np.abs(aligned - signal[: len(aligned)])) / (0.05 * 10)
    assert perf.k3 == pytest.approx(expected_k3)
    k = rules.regulation.k_factor(perf.k1, perf.k2, perf.k3)
    assert k == pytest.approx(min(5.0 * perf.k2 * perf.k3, 2.0))


def test_exchange_awards_regulation_per_block_within_demand() -> None:
    from bidding.rules import make_bid
    from infra.contracts import EnergyCurve, Offer, RegulationOffer, Segment
    from infra.timeutil import day_intervals
    from sim.exchange import clear_regulation

    s = load_scenario("datong")
    offer = Offer(
        interval_minutes=15,
        interval_starts=list(day_intervals(DAY, 15)),
        market="day_ahead",
        scenario_version="t",
        forecast_message_id="f",
        energy=[EnergyCurve(base_mw=-100, segments=[Segment(price_cny_per_mwh=300, quantity_mw=50)])] * 96,
        expected_revenue_cny=0,
        expected_emissions_tco2=0,
        regulation=[RegulationOffer(capacity_mw=2000, mileage_price_cny_per_mw=4.0)] * 96,
    )
    mw, price = clear_regulation(make_bid(offer, "o", s.market), s, DAY)
    demand = [
        b.demand_mw for b in s.market.regulation.blocks for _ in range(int((b.end_hour - b.start_hour) * 4))
    ]
    assert all(m <= d + 1e-9 for m, d in zip(mw, demand, strict=True))
    assert len(set(price[:24])) == 1, "one uniform price per block"


def test_offer_and_settlement_value_regulation_with_the_market_files_k_formula() -> None:
    from aggregator.ancillary import regulation_value_per_mw_interval
    from settlement.market import k_factor

    shanxi = load_scenario("datong").market
    mengxi = load_scenario("chifeng").market
    # Same expected indices (k1 = 2, k2 = k3 = 0.9), each file's own formula:
    # Shanxi multiplicative 2 x 0.9 x 0.9 = 1.62; Mengxi additive 0.2 x (3 x 2 + 0.9 + 0.9) = 1.56.
    assert shanxi.regulation.expected_k_factor == pytest.approx(1.62)
    assert mengxi.regulation.expected_k_factor == pytest.approx(1.56)
    for rules in (shanxi, mengxi):
        reg = rules.regulation
        k1, k2, k3 = (np.array([v]) for v in reg.expected_k_indices)
        # what settlement would pay with the indices is what the offer expects to earn
        assert k_factor(rules, k1, k2, k3)[0] == pytest.approx(reg.expected_k_factor)
    # One MW held for one 15-minute interval: 2 MW mileage per MW-h x 0.25 h x 6 CNY/MW x K
    assert regulation_value_per_mw_interval(shanxi, 0.25) == pytest.approx(2.0 * 0.25 * 6 * 1.62)


def test_delivered_regulation_performance_comes_from_the_agc_simulation() -> None:
    from sim.delivery import _regulation
    from sim.noise import rng

    rules, _ = _market()
    s = load_scenario("datong")
    perf = _regulation([4.0, 0.0, 4.0], s, 0.25, rng(7, "test"))
    assert perf.mileage_mw[1] == 0 and perf.k1_ramp[1] == perf.k2_delay[1] == perf.k3_error[1] == 0
    # The battery pool answers in 4 s against 60 s allowed: k2 = 1 - delay/60 with the delay the
    # AGC trace shows (4 s, give or take the ramp); k1 is the achieved ramp over the required one.
    for t in (0, 2):
        assert 1 - 8 / 60 <= perf.k2_delay[t] <= 1 - 3 / 60
        assert perf.k1_ramp[t] == 5.0  # 2 MW/s against 1.5 %/min of 4 MW: clipped at 5
        assert 0 < perf.k3_error[t] < 1
    assert (
        rules.regulation.k_factor(perf.k1_ramp[0], perf.k2_delay[0], perf.k3_error[0])
        == rules.regulation.k_cap
    )

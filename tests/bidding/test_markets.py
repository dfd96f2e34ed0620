"""Markets as configuration, clearing as pure functions chosen by name, market ids on facts."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from infra.contracts import Award, Bid, EnergyCurve, Segment, Settlement
from infra.scenario import load_scenario
from infra.scenario.loader import parse_market
from sim.clearing import (
    CLEARING,
    MarketState,
    Order,
    OrderBook,
    calibrated_demand,
    clear,
    clearing_rule,
    energy_orders,
)

DAY = date(2026, 7, 15)


def test_registry_from_the_province_file() -> None:
    rules = load_scenario("datong").market
    reg = rules.registry()
    assert list(reg) == [
        "shanxi.day_ahead",
        "shanxi.real_time",
        "shanxi.regulation",
        "shanxi.demand_response",
    ]
    assert reg["shanxi.real_time"].interval_minutes == 5
    assert {m.clearing for m in reg.values()} <= set(CLEARING)
    gate = reg["shanxi.day_ahead"].gate_closure(DAY)
    assert gate.isoformat() == "2026-07-14T09:30:00+08:00"
    assert load_scenario("chifeng").market.market_for("real_time_energy")[0] == "mengxi.real_time"


def test_adding_a_market_is_an_entry_in_the_file_plus_one_clearing_function() -> None:
    import yaml

    from infra.scenario.loader import _find

    raw = yaml.safe_load(_find("markets", "shanxi").read_text())
    raw["markets"].append(
        {
            "id": "capacity",
            "kind": "regulation",
            "source": "[assumption] test market",
            "interval_minutes": 60,
            "clearing": "pay_as_bid_test",
            "gate_closure_local_time": "08:00",
            "price_floor": 0,
            "price_cap": 100,
            "missing_bid": "no_participation",
        }
    )
    rules = parse_market(raw, "test")
    market = rules.registry()["shanxi.capacity"]

    @clearing_rule("pay_as_bid_test")
    def pay_as_bid(book: OrderBook, market, state) -> object:
        from sim.clearing import ClearingResult

        return ClearingResult([0.0] * book.n_intervals, {o.order_id: o.volume_mw for o in book.orders})

    try:
        result = clear(OrderBook(1, (Order("a", "p", 0, 10, 5),)), market, MarketState(np.zeros(1)))
        assert result.accepted == {"a": 5}
    finally:
        del CLEARING["pay_as_bid_test"]


def test_book_validated_at_market_close() -> None:
    market = load_scenario("datong").market.registry()["shanxi.day_ahead"]
    with pytest.raises(ValueError, match="price 2000 outside"):
        clear(OrderBook(1, (Order("a", "p", 0, 2000, 5),)), market, MarketState(np.array([300.0])))
    with pytest.raises(ValueError, match="interval 3 outside"):
        clear(OrderBook(1, (Order("a", "p", 3, 200, 5),)), market, MarketState(np.array([300.0])))


def _stack_state(prices: np.ndarray) -> MarketState:
    sim = load_scenario("datong").market.exchange_simulator
    return MarketState(reference_price=prices, stack=tuple(tuple(k) for k in sim.supply_stack))


def test_stack_reproduces_history_without_a_park_bid() -> None:
    market = load_scenario("datong").market.registry()["shanxi.day_ahead"]
    rng = np.random.default_rng(1)
    history = np.round(rng.uniform(0, 1500, 2000), 2)
    result = clear(OrderBook(len(history), ()), market, _stack_state(history))
    assert np.mean(np.abs(np.asarray(result.prices) - history) <= 1.0) >= 0.99


def test_bigger_offer_lowers_the_price_never_raises_it() -> None:
    market = load_scenario("datong").market.registry()["shanxi.day_ahead"]
    rng = np.random.default_rng(2)
    for _ in range(50):
        history = np.round(rng.uniform(0, 1500, 8), 2)
        base = float(rng.uniform(-400, 200))
        steps = sorted(rng.uniform(0, 1500, 3))
        prices = []
        for scale in (0.0, 1.0, 5.0, 40.0):
            curve = EnergyCurve(
                base_mw=base,
                segments=[Segment(price_cny_per_mwh=round(p), quantity_mw=100 * scale) for p in steps],
            )
            orders = [o for i in range(8) for o in energy_orders(curve, "park", i, 0, 1500)]
            prices.append(
                np.asarray(clear(OrderBook(8, tuple(orders)), market, _stack_state(history)).prices)
            )
        for lower, higher in zip(prices[1:], prices, strict=False):
            assert np.all(lower <= higher + 1e-6)


def test_accepted_volumes_balance_at_the_clearing_price() -> None:
    market = load_scenario("datong").market.registry()["shanxi.day_ahead"]
    state = _stack_state(np.array([300.0]))
    demand = calibrated_demand(state.stack, state.reference_price)[0]
    book = OrderBook(1, (Order("s", "p", 0, 250.0, 3000.0), Order("b", "p", 0, 1500.0, -100.0)))
    result = clear(book, market, state)
    from sim.clearing import stack_mw

    supplied = stack_mw(state.stack, result.prices[0]) + result.accepted["s"] + result.accepted["b"]
    assert supplied == pytest.approx(demand, abs=1e-3)
    assert result.prices[0] <= 300.0


def test_price_taker_mode_kept() -> None:
    market = load_scenario("datong").market.registry()["shanxi.day_ahead"]
    state = MarketState(reference_price=np.array([300.0, 100.0]), pricing="price_taker")
    book = OrderBook(2, (Order("a", "p", 0, 200, 50), Order("b", "p", 1, 200, 50)))
    result = clear(book, market, state)
    assert result.prices == [300.0, 100.0] and result.accepted == {"a": 50, "b": 0.0}


def test_market_id_defaults_keep_stored_facts_valid() -> None:
    for cls in (Bid, Award, Settlement):
        assert cls.model_fields["market_id"].default is None


def test_real_time_bid_clears_on_the_five_minute_grid() -> None:
    from infra.contracts import Bid as BidModel
    from infra.timeutil import day_intervals
    from sim.exchange import clear_real_time, real_time_reference

    s = load_scenario("datong")
    curve = EnergyCurve(base_mw=-100, segments=[Segment(price_cny_per_mwh=400, quantity_mw=50)])
    bid = BidModel(
        interval_minutes=5,
        interval_starts=list(day_intervals(DAY, 5)),
        market="real_time",
        market_id="shanxi.real_time",
        scenario_version="t",
        forecast_message_id="f",
        energy=[curve] * 288,
        expected_revenue_cny=0,
        expected_emissions_tco2=0,
        offer_message_id="o",
        rules_version="t",
    )
    award = clear_real_time(bid, "rt", s, DAY)
    assert award.market_id == "shanxi.real_time" and len(award.cleared_mw) == 288
    reference = real_time_reference(s, DAY, 5)
    assert len(reference) == 288
    price = np.asarray(award.clearing_price_cny_per_mwh)
    cleared = np.asarray(award.cleared_mw)
    assert np.all(cleared[price > 400 + 1e-6] == -50) and np.all(cleared[price < 400 - 1e-6] == -100)

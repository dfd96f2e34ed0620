"""Value-captured maths: margins by hand, perfect foresight never below the naive rule."""

from __future__ import annotations

import numpy as np
import pytest

from bidding.evaluate import DayMargins, margin, naive_rule, perfect_foresight, summarise
from infra.scenario.model import Battery


def _battery(**kw: float) -> Battery:
    base = dict(
        id="b",
        type="battery",
        name="b",
        enterprise="e",
        connection="c",
        source="[assumption] test",
        power_mw=10,
        energy_mwh=20,
        charge_efficiency=1.0,
        discharge_efficiency=1.0,
        soc_min_fraction=0.0,
        soc_max_fraction=1.0,
        soc_initial_fraction=0.5,
        degradation_cny_per_mwh=0.0,
    )
    base.update(kw)
    return Battery.model_validate(base)


def test_margin_by_hand() -> None:
    b = _battery()
    # charge 10 MW for 1 h at 100, discharge 10 MW for 1 h at 300, adder 50: (-10*150 + 10*350) = 2,000;
    # the state of charge ends where it started, so nothing is added for stored energy.
    assert margin(b, np.array([-10.0, 10.0]), np.array([100.0, 300.0]), 1.0, 50.0) == pytest.approx(2000.0)
    # discharging 5 MWh of the initial charge is worth the price minus the terminal value (mean 200 + 50)
    assert margin(b, np.array([0.0, 5.0]), np.array([100.0, 300.0]), 1.0, 50.0) == pytest.approx(
        5 * 350 - 5 * 250
    )


def test_perfect_foresight_beats_the_naive_rule_on_random_days() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        b = _battery(
            charge_efficiency=rng.uniform(0.85, 1),
            discharge_efficiency=rng.uniform(0.85, 1),
            degradation_cny_per_mwh=5,
        )
        price = rng.uniform(0, 800, 96)
        yesterday = price + rng.normal(0, 80, 96)
        adder = float(rng.uniform(0, 150))
        pf = margin(b, perfect_foresight(b, price, 0.25, adder), price, 0.25, adder)
        naive = margin(b, naive_rule(b, yesterday, 0.25), price, 0.25, adder)
        assert pf >= naive - 1e-3
        assert pf >= -1e-3


def test_naive_rule_respects_limits() -> None:
    b = _battery(soc_min_fraction=0.1, soc_max_fraction=0.9)
    price = np.tile(np.repeat(np.arange(24.0), 4), 1)
    p = naive_rule(b, price, 0.25)
    soc = 10 + np.cumsum(-p) * 0.25
    assert soc.min() >= 2 - 1e-9 and soc.max() <= 18 + 1e-9 and np.abs(p).max() <= 10


def test_summary_figures() -> None:
    days = [DayMargins("d1", 80, 100, 50), DayMargins("d2", 30, 100, 60)]
    s = summarise(days)
    assert s["share_captured_median"] == 0.55 and s["days_vpp_beats_naive_fraction"] == 0.5


def test_stored_energy_is_valued_after_losses_and_wear_by_hand() -> None:
    from bidding.evaluate import stored_value

    b = _battery(charge_efficiency=0.9, discharge_efficiency=0.8, degradation_cny_per_mwh=10.0)
    # 5 MWh more in store sell later for 0.8 x 300 - 10 = 230 each; 5 MWh less cost 300 / 0.9 to buy back
    assert stored_value(b, 5.0, 300.0) == pytest.approx(5 * 230)
    assert stored_value(b, -5.0, 300.0) == pytest.approx(-5 * 300 / 0.9)
    # Charging 10 MWh from the grid at the last interval at the day's mean price (+ adder) stores 9 MWh
    # worth 9 x (0.8 x 250 - 10) = 1,710 against 10 x 250 = 2,500 paid: filling up at the end loses.
    price = np.array([200.0, 200.0, 200.0, 200.0])
    p = np.array([0.0, 0.0, 0.0, -10.0])
    assert margin(b, p, price, 1.0, 50.0) == pytest.approx(-10 * 250 + 9 * (0.8 * 250 - 10))


def test_perfect_foresight_keeps_the_grid_limits_the_batteries_share() -> None:
    from bidding.evaluate import GridLimits

    b1, b2 = _battery(id="b1"), _battery(id="b2")
    price = np.array([100.0, 100.0, 500.0, 500.0])
    free = perfect_foresight([b1, b2], price, 1.0, 0.0)
    assert free[:, :2].sum() == pytest.approx(
        -20.0, abs=1e-3
    )  # each fills its 10 MWh of room when nothing binds
    # A shared node may take only 12 MW from the grid and give 30; the park connection 15 and 15.
    limits = GridLimits(
        (
            ((0, 1), np.full(4, 12.0), np.full(4, 30.0)),
            ((0, 1), np.full(4, 15.0), np.full(4, 15.0)),
        )
    )
    bound = perfect_foresight([b1, b2], price, 1.0, 0.0, limits)
    net = bound.sum(axis=0)
    assert net.min() >= -12.0 - 1e-4 and net.max() <= 15.0 + 1e-4
    assert sum(margin(b, bound[i], price, 1.0, 0.0) for i, b in enumerate((b1, b2))) < sum(
        margin(b, free[i], price, 1.0, 0.0) for i, b in enumerate((b1, b2))
    )
    # The naive rule gets each battery's share of the headroom, in proportion to power: 6 MW each.
    charge_cap, discharge_cap = limits.caps([b1, b2])
    assert charge_cap[:, 0].tolist() == [6.0, 6.0] and discharge_cap[:, 0].tolist() == [7.5, 7.5]
    yesterday = np.repeat(np.arange(24.0), 4)
    naive = naive_rule(b1, yesterday, 0.25, charge_cap=np.full(96, 6.0), discharge_cap=np.full(96, 7.5))
    assert naive.min() >= -6.0 - 1e-9 and naive.max() <= 7.5 + 1e-9

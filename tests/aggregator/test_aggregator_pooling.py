"""Heterogeneous fleets pool into few virtual devices; every split schedule stays feasible."""

from __future__ import annotations

import numpy as np
import pytest

from aggregator.bench_data import generate_portfolio
from aggregator.devices import BatteryFleet, Resolution
from aggregator.devices.pooled_storage import envelope
from aggregator.scale import aggregate, check_all, objective_cny, solution_setpoints
from tests.aggregator.aggregator_tools import SCALE_PRICES as PRICES
from tests.aggregator.aggregator_tools import solve_offer as _solve

T, DT, K = 96, 0.25, 2
WEIGHTS = np.full(K, 1 / K)


def test_a_heterogeneous_portfolio_pools_into_clearly_fewer_feasible_devices_within_the_gap_target(datong):
    load = np.full(T, 120.0)
    pv = 40 * np.clip(np.sin((np.arange(T) / 4 - 6) / 12 * np.pi), 0, None)
    portfolio, profiles = generate_portfolio(300, load, pv, datong.park.carbon, heterogeneous=True)
    pooled = aggregate(portfolio, profiles, T, DT, Resolution(state_bins=2, ratio_bins=3, window_bins=12))
    virtual, members = pooled.virtual.flexible_count(), portfolio.flexible_count()
    assert virtual <= 0.7 * members
    for real, part in zip(portfolio.fleets, pooled.parts, strict=True):
        if real.kind in ("battery", "ev_fleet"):  # (batches of 6-20 h windows pool at larger sizes)
            assert part.fleet.n <= 0.75 * real.n, real.kind

    solution = _solve(pooled.virtual, pooled.profiles)
    points = pooled.split(solution)
    assert check_all(portfolio, points, profiles, DT) == []  # every member passes the device checks
    # The split delivers the virtual schedule (the realignment transfers add up to zero).
    assert np.allclose(sum(p.sum(axis=1) for p in points.values()), solution.injection, atol=1e-4)

    best = objective_cny(
        portfolio, solution_setpoints(_solve(portfolio, profiles)), profiles, PRICES, WEIGHTS, 70, DT
    )
    pooled_value = objective_cny(portfolio, points, profiles, PRICES, WEIGHTS, 70, DT)
    assert pooled_value <= best + 1e-6 * abs(best)
    assert (best - pooled_value) / abs(best) <= 0.01


def test_batteries_with_different_starts_and_efficiencies_realign_and_split_feasibly():
    n = 6
    batteries = BatteryFleet(
        ids=[f"b{i}" for i in range(n)],
        enterprises=["e"] * n,
        nodes=["n"] * n,
        power_mw=[1.0, 2.0, 0.5, 1.5, 1.0, 2.5],
        energy_mwh=[2.0, 4.0, 1.0, 3.0, 2.0, 5.0],
        charge_efficiency=[0.90, 0.92, 0.95, 0.97, 0.93, 0.91],
        discharge_efficiency=[0.96, 0.91, 0.93, 0.90, 0.97, 0.94],
        soc_min_fraction=[0.05, 0.10, 0.08, 0.12, 0.05, 0.10],
        soc_max_fraction=[0.95, 0.90, 0.92, 0.96, 0.90, 0.95],
        soc_initial_fraction=[0.2, 0.8, 0.5, 0.3, 0.7, 0.45],
        degradation_cny_per_mwh=[30.0] * n,
    )
    virtual = batteries.virtualise({}, T, DT, Resolution(state_bins=1, ratio_bins=1, window_bins=1))
    assert virtual.fleet.n == 1
    (cluster,) = virtual.clusters
    assert cluster.offset is not None and np.allclose(
        cluster.offset.sum(axis=0), 0.0
    )  # transfers net to zero
    from aggregator.portfolio import Grid, Portfolio

    portfolio = Portfolio("pool", (virtual.fleet,), Grid.unconstrained(), 0.5)
    solution = _solve(portfolio, {})
    points = virtual.split(solution.fleets[0].power[0], batteries.n)
    assert batteries.check(points, {}, DT) == []
    # The pool traded (it is worth something) and every member takes part.
    assert np.abs(points).sum(axis=1).min() > 0.1


def test_a_battery_pool_refuses_flexibility_bands_by_name():
    """A pool counts its cumulative charge and discharge, with no balance whose dual would price
    a band: a model with reserves over pooled batteries says so instead of offering unpriced bands."""
    from aggregator.model import ParkModel
    from aggregator.portfolio import Grid, Portfolio

    batteries = BatteryFleet(
        ids=["b0", "b1"],
        enterprises=["e"] * 2,
        nodes=["n"] * 2,
        power_mw=[1.0, 2.0],
        energy_mwh=[2.0, 4.0],
        charge_efficiency=[0.95] * 2,
        discharge_efficiency=[0.95] * 2,
        soc_min_fraction=[0.1] * 2,
        soc_max_fraction=[0.9] * 2,
        soc_initial_fraction=[0.5] * 2,
        degradation_cny_per_mwh=[30.0] * 2,
    )
    virtual = batteries.virtualise({}, T, DT, Resolution(1, 1, 1))
    portfolio = Portfolio("pool", (virtual.fleet,), Grid.unconstrained(), 0.5)
    with pytest.raises(ValueError, match=r"flexibility bands.*reserves=False"):
        ParkModel(portfolio, 2, T, DT, "offer", reserves=True)


def test_the_envelope_of_lines_never_exceeds_their_minimum_and_is_exact_for_few_lines():
    rng = np.random.default_rng(3)
    for _ in range(200):
        n = int(rng.integers(1, 25))
        intercept, slope, span = rng.uniform(0, 10, n), rng.uniform(-1, 1, n), float(rng.uniform(0.1, 50))
        lines = envelope(intercept, slope, span, pieces=3)
        lines = lines[np.isfinite(lines[:, 0])]
        x = np.linspace(0, span, 801)
        exact = np.min(intercept[:, None] + slope[:, None] * x, axis=0)
        kept = np.min(lines[:, :1] + lines[:, 1:] * x, axis=0)
        assert np.all(kept <= exact + 1e-9)
        if n <= 3:
            assert np.allclose(kept, exact)


def test_interruptible_loads_with_their_own_baselines_pool_and_every_share_stays_within_its_baseline(datong):
    """Each load its own size, energy and daily shape: the pooled caps keep every member's share
    of the curtailment below its own baseline, and the split delivers the virtual schedule."""
    from aggregator.devices import InterruptibleFleet

    load = np.full(T, 120.0)
    portfolio, profiles = generate_portfolio(300, load, np.zeros(T), datong.park.carbon, heterogeneous=True)
    loads = portfolio.fleet("interruptible_load")
    gen = np.random.default_rng(3)
    hours = np.arange(T) * DT
    for i, sid in enumerate(loads.series):  # shapes peaking at different hours, some near zero at night
        peak = gen.uniform(8, 20)
        profiles[sid] = loads.max_curtail_mw[i] * (1.2 + np.cos((hours - peak) / 24 * 2 * np.pi))
    diverse = InterruptibleFleet(
        ids=loads.ids,
        enterprises=loads.enterprises,
        nodes=loads.nodes,
        series=loads.series,
        max_curtail_mw=loads.max_curtail_mw,
        max_duration_h=loads.max_duration_h,
        max_energy_mwh_per_day=loads.max_energy_mwh_per_day * gen.uniform(0.5, 1.5, loads.n),
        cost_cny_per_mwh=loads.cost_cny_per_mwh,
        notice_minutes=loads.notice_minutes,
    )
    fleets = [diverse if f.kind == "interruptible_load" else f for f in portfolio.fleets]
    portfolio = portfolio.with_fleets(fleets, "diverse-loads")
    pooled = aggregate(portfolio, profiles, T, DT, Resolution(state_bins=2, ratio_bins=3, window_bins=12))
    virtual = pooled.virtual.fleet("interruptible_load")
    assert virtual.n <= 12 < diverse.n  # 3 cost tiers x 3 duration... x 3 x 3 bins at most, 30 loads

    solution = _solve(pooled.virtual, pooled.profiles)
    curtailed = solution.fleets[[f.kind for f in pooled.virtual.fleets].index("interruptible_load")]
    assert np.max(curtailed.power + pooled.profiles[virtual.series[0]][None]) >= 0  # it is used at all
    points = pooled.split(solution)
    assert check_all(portfolio, points, profiles, DT) == []
    assert np.allclose(sum(p.sum(axis=1) for p in points.values()), solution.injection, atol=1e-4)
    # Each member consumes its own baseline less its share of the curtailment.
    member = points["interruptible_load"][0] + np.stack([profiles[s] for s in diverse.series])
    assert np.all(member >= -1e-6)

"""Equivalent virtual devices: an inner approximation whose proportional split is always feasible."""

from __future__ import annotations

import numpy as np

from aggregator.bench_data import generate_portfolio
from aggregator.model import ParkModel
from aggregator.scale import aggregate, check_all, objective_cny, solution_setpoints
from aggregator.solution import DayData

T, DT, K = 96, 0.25, 2
PRICES = np.stack(
    [300 + 150 * np.sin(np.arange(T) / T * 4 * np.pi), 360 + 180 * np.sin(np.arange(T) / T * 4 * np.pi)]
)


def _solve(portfolio, profiles):
    model = ParkModel(portfolio, K, T, DT, "offer", reserves=False)
    zeros = np.zeros(T)
    return model.solve(
        DayData(
            profiles=profiles, green_mw=zeros, need_up=zeros, need_down=zeros, carbon_price=70, prices=PRICES
        )
    )


def _portfolio(datong):
    load = np.full(T, 120.0)
    pv = 40 * np.clip(np.sin((np.arange(T) / 4 - 6) / 12 * np.pi), 0, None)
    return generate_portfolio(300, load, pv, datong.park.carbon)


def test_virtual_devices_split_into_feasible_schedules_close_to_the_full_optimum(datong):
    portfolio, profiles = _portfolio(datong)
    pooled = aggregate(portfolio, profiles)
    assert sum(f.n for f in pooled.virtual.fleets) < 0.8 * sum(f.n for f in portfolio.fleets)
    solution = _solve(pooled.virtual, pooled.profiles)
    points = pooled.split(solution)
    assert check_all(portfolio, points, profiles, DT) == []
    # The split reproduces the virtual schedule exactly ...
    assert np.allclose(sum(p.sum(axis=1) for p in points.values()), solution.injection, atol=1e-4)

    full = _solve(portfolio, profiles)
    weights = np.full(K, 1 / K)
    best = objective_cny(portfolio, solution_setpoints(full), profiles, PRICES, weights, 70, DT)
    pooled_value = objective_cny(portfolio, points, profiles, PRICES, weights, 70, DT)
    # ... which is feasible, so it cannot beat the full optimum, and it comes close.
    assert pooled_value <= best + 1e-6 * abs(best)
    assert (best - pooled_value) / abs(best) < 0.01


def test_the_generated_portfolio_takes_its_carbon_factor_from_the_scenario(datong):
    portfolio, _ = _portfolio(datong)
    assert portfolio.grid_ef_tco2_per_mwh == datong.park.carbon.grid_ef_tco2_per_mwh
    changed = datong.park.carbon.model_copy(update={"grid_ef_tco2_per_mwh": 0.5})
    load = np.full(T, 10.0)
    assert generate_portfolio(10, load, load, changed)[0].grid_ef_tco2_per_mwh == 0.5

"""Equivalent virtual devices: an inner approximation whose proportional split is always feasible."""

from __future__ import annotations

import numpy as np

from aggregator.model import ParkModel
from aggregator.scale import aggregate, generate_portfolio, objective_cny, split

T, DT, K = 96, 0.25, 2
PRICES = np.stack(
    [300 + 150 * np.sin(np.arange(T) / T * 4 * np.pi), 360 + 180 * np.sin(np.arange(T) / T * 4 * np.pi)]
)


def _solve(portfolio, profiles):
    model = ParkModel(portfolio, K, T, DT, "offer", reserves=False)
    model.set_day(profiles, np.zeros(T), np.zeros(T), np.zeros(T))
    model.weighted_price.value = PRICES / K
    model.set_carbon_price(70)
    model.solve("ECOS")
    return model


def _portfolio():
    load = np.full(T, 120.0)
    return generate_portfolio(300, load, 40 * np.clip(np.sin((np.arange(T) / 4 - 6) / 12 * np.pi), 0, None))


def test_virtual_devices_split_into_feasible_schedules_close_to_the_full_optimum():
    portfolio, profiles = _portfolio()
    virtual, clusters, virtual_profiles = aggregate(portfolio, profiles)
    assert sum(f.n for f in virtual.fleets) < 0.8 * sum(f.n for f in portfolio.fleets)
    model = _solve(virtual, virtual_profiles)
    points = {
        f.kind: np.stack(
            [split(clusters[f.kind], model.portfolio.fleet(f.kind).setpoints(s), f.n) for s in range(K)]
        )
        for f in portfolio.fleets
    }
    for f in portfolio.fleets:
        for s in range(K):
            assert f.check(points[f.kind][s], profiles, DT) == []
    # The split reproduces the virtual schedule exactly ...
    G_virtual = np.asarray(model.G.value)
    assert np.allclose(sum(p.sum(axis=1) for p in points.values()), G_virtual, atol=1e-4)

    full_portfolio, full_profiles = _portfolio()
    full = _solve(full_portfolio, full_profiles)
    full_points = {f.kind: np.stack([f.setpoints(s) for s in range(K)]) for f in full.fleets}
    weights = np.full(K, 1 / K)
    best = objective_cny(full_portfolio, full_points, full_profiles, PRICES, weights, 70, DT)
    pooled = objective_cny(portfolio, points, profiles, PRICES, weights, 70, DT)
    # ... which is feasible, so it cannot beat the full optimum, and it comes close.
    assert pooled <= best + 1e-6 * abs(best)
    assert (best - pooled) / abs(best) < 0.01

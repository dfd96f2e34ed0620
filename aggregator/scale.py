"""Scale: pool thousands of small devices into a few equivalent virtual devices, and split back exactly.

Each fleet clusters its own devices (:meth:`~aggregator.devices.base.Fleet.virtualise`):
devices of one shape at one grid node, in the same bin of their state, become one virtual
device whose limits are an *inner* approximation of the members' sum, so any schedule of the
virtual device, split among the members in proportion to their size, is feasible for every
member. The aggregated optimum is therefore a lower bound on the full optimum, reached by a
feasible disaggregated schedule. :func:`objective_cny` evaluates any schedule with the
fleets' own numpy costs, so both sides of a comparison are measured the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from aggregator.devices import Fleet, Profiles, Resolution, Virtual
from aggregator.devices.cluster import DEFAULT_RESOLUTION
from aggregator.model import Mode, ParkModel
from aggregator.portfolio import Portfolio
from aggregator.solution import Solution
from infra.parallel import map_chunks
from infra.scenario import Scenario

# A park with more assets than this is solved over virtual devices and split back: one variable
# per device stops paying off (10,000 devices take ECOS 20 minutes, their virtual twin seconds;
# aggregator/README.md "Scale"). Datong and Chifeng have a few dozen assets and keep their devices.
POOL_ABOVE_ASSETS = 300
# Clustering of a pooled park, coarse first: bins (2, 2, 2) of state, ratio and window, then one
# bin each if that leaves more than VIRTUAL_DEVICE_BUDGET virtual devices. Finer bins make virtual
# batteries whose realignment ECOS solves slowly: the energy offer took 209 s over 375 virtual
# devices at bins (5, 3, 3) against 53 s over 280 at (2, 2, 2) (2,000 and 10,000 devices,
# `parkvpp bench scale`); aggregator/README.md "Pooled parks" has the figures.
POOLED_RESOLUTIONS = (Resolution(2, 2, 2), Resolution(1, 1, 1))
VIRTUAL_DEVICE_BUDGET = 450


@dataclass(frozen=True)
class Aggregated:
    """A portfolio's virtual twin: the virtual portfolio, its profiles and each real fleet's clusters."""

    real: Portfolio
    virtual: Portfolio
    profiles: dict[str, np.ndarray]
    parts: tuple[Virtual, ...]  # one per real fleet, in the same order

    def split(self, solution: Solution, workers: int | None = 1) -> dict[str, np.ndarray]:
        """Member set-points (K, n, T) per real fleet kind, from a solve of the virtual portfolio.

        Each fleet's split is one task (:func:`infra.parallel.map_chunks`): ``workers=1`` in
        this process, otherwise Ray tasks; the answer is the same either way."""
        jobs = [
            (virtual, np.asarray(fs.power), real.n)
            for real, virtual, fs in zip(self.real.fleets, self.parts, solution.fleets, strict=True)
        ]
        points = map_chunks(_split_fleet, jobs, workers)
        return {real.kind: p for real, p in zip(self.real.fleets, points, strict=True)}

    def fleet_setpoints(self, solution: Solution, scenario: int = 0) -> list[tuple[Fleet, np.ndarray]]:
        """Every real fleet with its members' set-points (n, T) in one scenario."""
        split = self.split(solution)
        return [(f, split[f.kind][scenario]) for f in self.real.fleets]


def _split_fleet(job: tuple[Virtual, np.ndarray, int], _: object) -> np.ndarray:
    virtual, power, n = job
    return np.stack([virtual.split(power[s], n) for s in range(power.shape[0])])


def is_pooled(scenario: Scenario) -> bool:
    """Whether the park is modelled over virtual devices (more than :data:`POOL_ABOVE_ASSETS` assets)."""
    return len(scenario.park.assets) > POOL_ABOVE_ASSETS


def pooled_model(
    scenario: Scenario, K: int, T: int, dt_h: float, mode: Mode, profiles: Profiles
) -> tuple[ParkModel, Aggregated] | None:
    """For a park above :data:`POOL_ABOVE_ASSETS` assets: the model over its virtual devices and how
    to split its answer back; None for a smaller park (one variable per device).

    The clustering is the first of :data:`POOLED_RESOLUTIONS` within :data:`VIRTUAL_DEVICE_BUDGET`
    virtual devices (else the coarsest). The model is built for the day's profiles (the
    clusters depend on them), so it is not kept between days. Pooled, the offer is an energy offer
    and the dispatch delivers it: reserve headroom, regulation, storage bands and the park-wide
    energy cover add rows per scenario and interval that made ECOS take 6-12 minutes over 100-200
    devices (aggregator/README.md "Scale"); the offer keeps forecast headroom and window energy by
    holds on each battery instead (:mod:`aggregator.holds`)."""
    if not is_pooled(scenario):
        return None
    portfolio = Portfolio.from_scenario(scenario)
    for resolution in POOLED_RESOLUTIONS:
        pooled = aggregate(portfolio, profiles, T, dt_h, resolution)
        if pooled.virtual.flexible_count() <= VIRTUAL_DEVICE_BUDGET:
            break
    return ParkModel(pooled.virtual, K, T, dt_h, mode, reserves=False), pooled


def aggregate(
    portfolio: Portfolio, profiles: Profiles, T: int, dt_h: float, resolution: Resolution | None = None
) -> Aggregated:
    """Every fleet's virtual devices (one virtual portfolio) and how to split them back."""
    parts = tuple(f.virtualise(profiles, T, dt_h, resolution) for f in portfolio.fleets)
    virtual_profiles = dict(profiles)
    for v in parts:
        virtual_profiles.update(v.profiles)
    virtual = portfolio.with_fleets([v.fleet for v in parts], portfolio.name + "-virtual")
    return Aggregated(portfolio, virtual, virtual_profiles, parts)


def objective_cny(
    portfolio: Portfolio,
    setpoints: dict[str, np.ndarray],
    profiles: Profiles,
    prices: np.ndarray,
    weights: np.ndarray,
    carbon_price: float,
    dt_h: float,
) -> float:
    """Expected revenue minus costs minus carbon cost of per-scenario set-points, in plain numpy.

    ``setpoints[kind]`` is (K, n, T); each fleet charges its own cost and emissions
    (:meth:`~aggregator.devices.base.Fleet.numpy_cost`), grid imports their carbon factor.
    """
    K = len(weights)
    G = np.zeros((K, prices.shape[1]))
    cost = np.zeros(K)
    emissions = np.zeros(K)
    for f in portfolio.fleets:
        p = setpoints[f.kind]
        G += p.sum(axis=1)
        cost += f.numpy_cost(p, profiles, dt_h)
        emissions += f.numpy_emissions(p, profiles, dt_h)
    emissions += portfolio.grid_ef_tco2_per_mwh * np.maximum(-G, 0.0).sum(axis=1) * dt_h
    cost += portfolio.import_tariff_cny_per_mwh * np.maximum(-G, 0.0).sum(axis=1) * dt_h
    revenue = (prices * G).sum(axis=1) * dt_h
    return float(weights @ (revenue - cost - carbon_price * emissions))


def unmanaged_setpoints(
    portfolio: Portfolio, profiles: Profiles, K: int, T: int, dt_h: float
) -> dict[str, np.ndarray]:
    """What the devices would do without a VPP (each fleet's own rule), (K, n, T) per kind."""
    return {
        f.kind: np.repeat(f.unmanaged_setpoints(profiles, T, dt_h)[None], K, axis=0) for f in portfolio.fleets
    }


def solution_setpoints(solution: Solution) -> dict[str, np.ndarray]:
    """Set-points (K, n, T) per fleet kind of a solve."""
    return {fs.fleet.kind: np.asarray(fs.power) for fs in solution.fleets}


def check_all(
    portfolio: Portfolio, setpoints: dict[str, np.ndarray], profiles: Profiles, dt_h: float
) -> list[str]:
    """Every device check failing for any scenario's set-points."""
    problems = []
    for f in portfolio.fleets:
        for points in setpoints[f.kind]:
            problems += f.check(points, profiles, dt_h)
    return problems


# --- resolution adapted to a gap target --------------------------------------------------------

# Resolution factors tried in turn (x the default bins): coarse first, doubling.
LEVELS = (0.25, 0.5, 1.0, 2.0, 4.0)


@dataclass(frozen=True)
class Level:
    """One clustering resolution: its size, time (cluster, solve, split) and split objective."""

    factor: float
    virtual_devices: int
    seconds: float
    objective_cny: float


def pooled_levels(
    portfolio: Portfolio,
    profiles: Profiles,
    T: int,
    dt_h: float,
    solve: Callable[[Portfolio, Profiles], Solution],
    evaluate: Callable[[dict[str, np.ndarray]], float],
    gap_target: float | None,
    levels: tuple[float, ...] = LEVELS,
    base: Resolution = DEFAULT_RESOLUTION,
) -> tuple[list[Level], Level, dict[str, np.ndarray]]:
    """Cluster, solve and split at finer and finer resolutions (``levels`` x the bins of ``base``).

    With ``gap_target`` (a fraction of the objective) it stops at the first resolution whose
    doubling improved the split objective by at most the target (and not by a negative
    amount, which means the coarser bins were merely lucky): that gain estimates the gap
    left, since each refinement roughly halves it (the benchmark measures the true gap
    against the monolithic model). Without a target every level runs (the trade-off curve).
    Returns the levels run, the best of them (the answer) and its set-points.
    """
    runs: list[Level] = []
    best: tuple[Level, dict[str, np.ndarray]] | None = None
    for factor in levels:
        started = time.perf_counter()
        pooled = aggregate(portfolio, profiles, T, dt_h, base.scaled(factor))
        points = pooled.split(solve(pooled.virtual, pooled.profiles))
        seconds = time.perf_counter() - started
        level = Level(factor, pooled.virtual.flexible_count(), seconds, evaluate(points))
        gain = level.objective_cny - runs[-1].objective_cny if runs else None
        runs.append(level)
        if best is None or level.objective_cny > best[0].objective_cny:
            best = (level, points)
        if gap_target is not None and gain is not None and 0 <= gain <= gap_target * abs(level.objective_cny):
            break
    assert best is not None
    return runs, best[0], best[1]

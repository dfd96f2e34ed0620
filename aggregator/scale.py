"""Scale: pool thousands of small devices into a few equivalent virtual devices, and split back exactly.

Devices of one kind that share their shape (battery model, charging pattern, batch window,
interruptible tier) and lie in the same bin of their state (initial charge, power-to-energy
ratio) form a cluster. Each cluster becomes one virtual device whose limits are an *inner*
approximation of the members' sum: any schedule of the virtual device, split among the
members in proportion to their size, is feasible for every member. So the aggregated
optimum is a lower bound on the full optimum, reached by a feasible disaggregated schedule;
the benchmark measures how close it comes.

The generated portfolio below is benchmark data, not a park: device sizes and catalogues
are typical commercial-and-industrial figures chosen for the benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aggregator.devices import (
    BatchFleet,
    BatteryFleet,
    EVFleetModel,
    FixedLoadFleet,
    Fleet,
    InterruptibleFleet,
    RenewableFleet,
)
from aggregator.devices.base import hour_of_day, in_window
from aggregator.model import Grid, Portfolio

# --- the generated portfolio (benchmark data) ------------------------------------------------

# Battery catalogue: power MW, energy MWh, charge/discharge efficiency, SoC window, wear CNY/MWh.
BATTERY_MODELS = (
    (0.1, 0.215, 0.95, 0.95, 0.10, 0.95, 40.0),
    (1.0, 2.0, 0.95, 0.95, 0.05, 0.95, 35.0),
    (0.5, 2.0, 0.93, 0.93, 0.10, 0.90, 30.0),
)
EV_PATTERNS = ((19.0, 7.0), (8.0, 17.0), (22.0, 6.0), (0.0, 24.0))  # arrival, departure hour
BATCH_WINDOWS = ((0.0, 24.0), (22.0, 8.0), (8.0, 20.0))
INTERRUPTIBLE_TIERS = ((300.0, 2.0), (500.0, 4.0), (800.0, 2.0))  # cost CNY/MWh, max duration h
MIX = {"battery": 0.3, "ev_fleet": 0.3, "shiftable_batch": 0.3, "interruptible_load": 0.1}
# Clustering resolution: bins of initial state of charge and of power-to-energy ratios.
STATE_BINS = 40
RATIO_BINS = 24


@dataclass
class Cluster:
    members: np.ndarray  # indices into the real fleet
    shares: np.ndarray  # each member's share of the virtual device (sums to 1)


def generate_portfolio(
    devices: int, load_profile_mw: np.ndarray, pv_profile_mw: np.ndarray, seed: int = 7
) -> tuple[Portfolio, dict[str, np.ndarray]]:
    """A park of ``devices`` flexible devices plus one inflexible load and one PV plant.

    Returns the portfolio and its profiles (series id -> median forecast) for ``set_day``.
    """
    gen = np.random.default_rng(seed)
    T = len(load_profile_mw)
    dt_h = 24.0 / T
    counts = {kind: round(share * devices) for kind, share in MIX.items()}
    counts["battery"] += devices - sum(counts.values())
    profiles: dict[str, np.ndarray] = {}
    fleets: list[Fleet] = []

    n = counts["battery"]
    model = gen.integers(0, len(BATTERY_MODELS), n)
    units = gen.integers(1, 6, n)
    spec = np.array(BATTERY_MODELS)[model]
    fleets.append(
        BatteryFleet(
            [f"bat{i:05d}" for i in range(n)],
            ["bench"] * n,
            ["bench"] * n,
            power_mw=spec[:, 0] * units,
            energy_mwh=spec[:, 1] * units,
            charge_efficiency=spec[:, 2],
            discharge_efficiency=spec[:, 3],
            soc_min_fraction=spec[:, 4],
            soc_max_fraction=spec[:, 5],
            soc_initial_fraction=gen.uniform(spec[:, 4] + 0.1, spec[:, 5] - 0.1),
            degradation_cny_per_mwh=spec[:, 6],
        )
    )

    n = counts["ev_fleet"]
    pattern = np.array(EV_PATTERNS)[gen.integers(0, len(EV_PATTERNS), n)]
    charge = gen.uniform(0.05, 0.5, n)
    plugged = (pattern[:, 1] - pattern[:, 0]) % 24
    plugged[plugged == 0] = 24
    fleets.append(
        EVFleetModel(
            [f"ev{i:05d}" for i in range(n)],
            ["bench"] * n,
            ["bench"] * n,
            charge_mw=charge,
            v2g_mw=np.zeros(n),
            energy_mwh=gen.uniform(0.3, 0.8, n) * charge * plugged,
            arrival_h=pattern[:, 0],
            departure_h=pattern[:, 1],
        )
    )

    n = counts["shiftable_batch"]
    window = np.array(BATCH_WINDOWS)[gen.integers(0, len(BATCH_WINDOWS), n)]
    pmax = gen.uniform(0.1, 2.0, n)
    hours = (window[:, 1] - window[:, 0]) % 24
    hours[hours == 0] = 24
    fleets.append(
        BatchFleet(
            [f"batch{i:05d}" for i in range(n)],
            ["bench"] * n,
            ["bench"] * n,
            energy_mwh=gen.uniform(0.3, 0.7, n) * pmax * hours,
            power_min_mw=np.where(gen.random(n) < 0.5, 0.0, 0.1 * pmax),
            power_max_mw=pmax,
            window_start_h=window[:, 0],
            window_end_h=window[:, 1],
        )
    )

    n = counts["interruptible_load"]
    tier = gen.integers(0, len(INTERRUPTIBLE_TIERS), n)
    size = gen.uniform(0.2, 3.0, n)
    shape = 0.8 + 0.2 * np.sin(2 * np.pi * (hour_of_day(T, dt_h) - 8) / 24)
    series = [f"il{i:05d}.load_mw" for i in range(n)]
    for i, sid in enumerate(series):
        profiles[sid] = size[i] * shape
    costs = np.array(INTERRUPTIBLE_TIERS)[tier]
    fleets.append(
        InterruptibleFleet(
            [f"il{i:05d}" for i in range(n)],
            ["bench"] * n,
            ["bench"] * n,
            series=series,
            max_curtail_mw=0.5 * size,
            max_duration_h=costs[:, 1],
            max_energy_mwh=0.25 * size * costs[:, 1],
            cost_cny_per_mwh=costs[:, 0],
            notice_minutes=np.zeros(n),
        )
    )

    profiles["load.load_mw"] = np.asarray(load_profile_mw, dtype=float)
    profiles["pv.pv_mw"] = np.asarray(pv_profile_mw, dtype=float)
    fleets.append(FixedLoadFleet(["load"], ["bench"], ["bench"], series=["load.load_mw"]))
    fleets.append(
        RenewableFleet(
            ["pv"],
            ["bench"],
            ["bench"],
            series=["pv.pv_mw"],
            curtailable=np.array([True]),
            curtailment_cost_cny_per_mwh=3.0,
        )
    )
    grid = Grid(nodes=(), import_mw=np.zeros(0), export_mw=np.zeros(0))
    return Portfolio(name=f"bench-{devices}", fleets=fleets, grid=grid, grid_ef_tco2_per_mwh=0.8325), profiles


def flexible_count(portfolio: Portfolio) -> int:
    return sum(f.n for f in portfolio.fleets if f.kind not in ("inflexible_load", "renewable"))


# --- clustering -----------------------------------------------------------------------------


def _bins(values: np.ndarray, count: int) -> np.ndarray:
    lo, hi = float(values.min()), float(values.max())
    if hi - lo < 1e-12:
        return np.zeros(len(values), dtype=int)
    return np.minimum(((values - lo) / (hi - lo) * count).astype(int), count - 1)


def _clusters(keys: list[tuple], weights: np.ndarray) -> list[Cluster]:
    groups: dict[tuple, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    out = []
    for members in groups.values():
        idx = np.array(members)
        out.append(Cluster(idx, weights[idx] / weights[idx].sum()))
    return out


def virtual_fleet(fleet: Fleet, profiles: dict[str, np.ndarray]) -> tuple[Fleet, list[Cluster]]:
    """The fleet's equivalent virtual devices (an inner approximation) and how to split them."""
    if isinstance(fleet, BatteryFleet):
        return _virtual_batteries(fleet)
    if isinstance(fleet, InterruptibleFleet):
        return _virtual_interruptible(fleet, profiles)
    if isinstance(fleet, EVFleetModel):
        return _virtual_evs(fleet)
    if isinstance(fleet, BatchFleet):
        return _virtual_batches(fleet)
    clusters = [Cluster(np.array([i]), np.ones(1)) for i in range(fleet.n)]
    return fleet, clusters


def _virtual_batteries(f: BatteryFleet) -> tuple[Fleet, list[Cluster]]:
    frac0 = f.soc_initial / f.energy_mwh
    # Same shape: efficiencies, wear, SoC window and power-to-energy ratio (one catalogue model).
    shape = np.column_stack(
        [
            f.eta_c,
            f.eta_d,
            f.degradation,
            f.soc_min / f.energy_mwh,
            f.soc_max / f.energy_mwh,
            f.power_mw / f.energy_mwh,
        ]
    ).round(9)
    keys = [(*shape[i], int(b)) for i, b in enumerate(_bins(frac0, STATE_BINS))]
    clusters = _clusters(keys, f.energy_mwh)
    cols: dict[str, list[float]] = {k: [] for k in ("P", "E", "ec", "ed", "lo", "hi", "f0", "deg")}
    for c in clusters:
        m = c.members
        energy = f.energy_mwh[m].sum()
        f0 = float(np.average(frac0[m], weights=f.energy_mwh[m]))
        # Each member's SoC = its own start + its share of the virtual energy change: the change
        # must respect the tightest member on both sides.
        cols["P"].append(f.power_mw[m].sum())
        cols["E"].append(energy)
        cols["ec"].append(f.eta_c[m[0]])
        cols["ed"].append(f.eta_d[m[0]])
        cols["lo"].append(f0 + np.max(f.soc_min[m] / f.energy_mwh[m] - frac0[m]))
        cols["hi"].append(f0 + np.min(f.soc_max[m] / f.energy_mwh[m] - frac0[m]))
        cols["f0"].append(f0)
        cols["deg"].append(f.degradation[m[0]])
    ids = [f"vbat{k}" for k in range(len(clusters))]
    virtual = BatteryFleet(
        ids,
        ["bench"] * len(ids),
        ["bench"] * len(ids),
        power_mw=np.array(cols["P"]),
        energy_mwh=np.array(cols["E"]),
        charge_efficiency=np.array(cols["ec"]),
        discharge_efficiency=np.array(cols["ed"]),
        soc_min_fraction=np.array(cols["lo"]),
        soc_max_fraction=np.array(cols["hi"]),
        soc_initial_fraction=np.array(cols["f0"]),
        degradation_cny_per_mwh=np.array(cols["deg"]),
    )
    return virtual, clusters


def _virtual_evs(f: EVFleetModel) -> tuple[Fleet, list[Cluster]]:
    ratio = f.charge_mw / f.energy
    keys = [(a, d, int(b)) for a, d, b in zip(f.arrival, f.departure, _bins(ratio, RATIO_BINS), strict=True)]
    clusters = _clusters(keys, f.energy)
    energy = np.array([f.energy[c.members].sum() for c in clusters])
    # Split by energy share: a member's charging limit caps the virtual one at energy * its ratio.
    charge = np.array([f.energy[c.members].sum() * ratio[c.members].min() for c in clusters])
    ids = [f"vev{k}" for k in range(len(clusters))]
    virtual = EVFleetModel(
        ids,
        ["bench"] * len(ids),
        ["bench"] * len(ids),
        charge_mw=charge,
        v2g_mw=np.zeros(len(ids)),
        energy_mwh=energy,
        arrival_h=np.array([f.arrival[c.members[0]] for c in clusters]),
        departure_h=np.array([f.departure[c.members[0]] for c in clusters]),
    )
    return virtual, clusters


def _virtual_batches(f: BatchFleet) -> tuple[Fleet, list[Cluster]]:
    start, end = f.window
    keys = [
        (s, e, int(b), int(pm > 0))
        for s, e, b, pm in zip(start, end, _bins(f.pmax / f.energy, RATIO_BINS), f.pmin, strict=True)
    ]
    clusters = _clusters(keys, f.energy)
    energy = np.array([f.energy[c.members].sum() for c in clusters])
    pmin = np.array(
        [f.energy[c.members].sum() * (f.pmin[c.members] / f.energy[c.members]).max() for c in clusters]
    )
    pmax = np.array(
        [f.energy[c.members].sum() * (f.pmax[c.members] / f.energy[c.members]).min() for c in clusters]
    )
    ids = [f"vbatch{k}" for k in range(len(clusters))]
    virtual = BatchFleet(
        ids,
        ["bench"] * len(ids),
        ["bench"] * len(ids),
        energy_mwh=energy,
        power_min_mw=pmin,
        power_max_mw=pmax,
        window_start_h=np.array([start[c.members[0]] for c in clusters]),
        window_end_h=np.array([end[c.members[0]] for c in clusters]),
    )
    return virtual, clusters


def _virtual_interruptible(
    f: InterruptibleFleet, profiles: dict[str, np.ndarray]
) -> tuple[Fleet, list[Cluster]]:
    # Same cost, duration, energy per MW of depth and baseline shape per MW of depth: then a
    # split in proportion to depth is exact, baseline included.
    keys = [
        (
            f.cost_per_mwh[i],
            f.max_duration[i],
            round(f.max_energy[i] / f.max_curtail[i], 9),
            (np.asarray(profiles[f.series[i]]) / f.max_curtail[i]).round(9).tobytes(),
        )
        for i in range(f.n)
    ]
    clusters = _clusters(keys, f.max_curtail)
    ids = [f"vil{k}" for k in range(len(clusters))]
    virtual = InterruptibleFleet(
        ids,
        ["bench"] * len(ids),
        ["bench"] * len(ids),
        series=[f"{i}.load_mw" for i in ids],
        max_curtail_mw=np.array([f.max_curtail[c.members].sum() for c in clusters]),
        max_duration_h=np.array([f.max_duration[c.members[0]] for c in clusters]),
        max_energy_mwh=np.array([(f.max_energy[c.members] / c.shares).min() for c in clusters]),
        cost_cny_per_mwh=np.array([f.cost_per_mwh[c.members[0]] for c in clusters]),
        notice_minutes=np.zeros(len(ids)),
    )
    return virtual, clusters


def aggregate(
    portfolio: Portfolio, profiles: dict[str, np.ndarray]
) -> tuple[Portfolio, dict[str, list[Cluster]], dict[str, np.ndarray]]:
    """Virtual portfolio, the clusters of each real fleet (by kind) and the virtual profiles."""
    fleets, clusters = [], {}
    virtual_profiles = dict(profiles)
    for f in portfolio.fleets:
        virtual, groups = virtual_fleet(f, profiles)
        fleets.append(virtual)
        clusters[f.kind] = groups
        if isinstance(f, InterruptibleFleet):
            for sid, c in zip(virtual.series, groups, strict=True):
                virtual_profiles[sid] = np.sum([profiles[f.series[i]] for i in c.members], axis=0)
    return (
        Portfolio(portfolio.name + "-virtual", fleets, portfolio.grid, portfolio.grid_ef_tco2_per_mwh),
        clusters,
        virtual_profiles,
    )


def split(clusters: list[Cluster], virtual_setpoints: np.ndarray, n: int) -> np.ndarray:
    """Member set-points (n, T): each member takes its share of its virtual device."""
    out = np.zeros((n, virtual_setpoints.shape[1]))
    for k, c in enumerate(clusters):
        out[c.members] = c.shares[:, None] * virtual_setpoints[k][None, :]
    return out


# --- evaluation -----------------------------------------------------------------------------


def objective_cny(
    portfolio: Portfolio,
    setpoints: dict[str, np.ndarray],
    profiles: dict[str, np.ndarray],
    prices: np.ndarray,
    weights: np.ndarray,
    carbon_price: float,
    dt_h: float,
) -> float:
    """Expected revenue minus costs minus carbon cost of per-scenario set-points, in plain numpy.

    ``setpoints[kind]`` is (K, n, T). Battery wear is charged on |net| (no simultaneous
    charge and discharge), the same rule for every schedule compared.
    """
    K = len(weights)
    G = np.zeros((K, prices.shape[1]))
    cost = np.zeros(K)
    for f in portfolio.fleets:
        p = setpoints[f.kind]
        G += p.sum(axis=1)
        if isinstance(f, BatteryFleet):
            cost += (np.abs(p) * f.degradation[None, :, None]).sum(axis=(1, 2)) * dt_h
        elif isinstance(f, InterruptibleFleet):
            base = np.stack([profiles[s] for s in f.series])
            cost += ((p + base[None]) * f.cost_per_mwh[None, :, None]).sum(axis=(1, 2)) * dt_h
        elif isinstance(f, RenewableFleet):
            avail = np.stack([profiles[s] for s in f.series])
            cost += ((avail[None] - p) * f.curtailment_cost).sum(axis=(1, 2)) * dt_h
    emissions = portfolio.grid_ef_tco2_per_mwh * np.maximum(-G, 0.0).sum(axis=1) * dt_h
    revenue = (prices * G).sum(axis=1) * dt_h
    return float(weights @ (revenue - cost - carbon_price * emissions))


def inflexible_setpoints(
    portfolio: Portfolio, profiles: dict[str, np.ndarray], K: int, T: int, dt_h: float
) -> dict[str, np.ndarray]:
    """What the devices would do unmanaged: batteries idle, EVs charge on arrival, batches run flat."""
    hours = hour_of_day(T, dt_h)
    out = {}
    for f in portfolio.fleets:
        p = np.zeros((f.n, T))
        if isinstance(f, EVFleetModel):
            masks, shares = f.stretches(T, dt_h)
            for i in range(f.n):
                for j in range(2):
                    left = shares[i, j]
                    for t in np.flatnonzero(masks[i, j]):
                        take = min(f.charge_mw[i], left / dt_h)
                        p[i, t] = -take
                        left -= take * dt_h
        elif isinstance(f, BatchFleet):
            for i in range(f.n):
                window = in_window(hours, f.window[0][i], f.window[1][i])
                p[i, window] = -f.energy[i] / (window.sum() * dt_h)
        elif isinstance(f, InterruptibleFleet | FixedLoadFleet):
            p = -np.stack([profiles[s] for s in f.series])
        elif isinstance(f, RenewableFleet):
            p = np.stack([profiles[s] for s in f.series])
        out[f.kind] = np.repeat(p[None], K, axis=0)
    return out

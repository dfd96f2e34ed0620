"""Benchmark data, not a park: a generated portfolio of many small flexible devices.

Used only by ``parkvpp bench aggregator`` and the tests. Device sizes and catalogues are
typical commercial-and-industrial figures chosen for the benchmark; the carbon factor of grid
imports and the curtailment cost come from the hosting park's carbon settings.
"""

from __future__ import annotations

from typing import Any

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
from aggregator.devices.base import hour_of_day
from aggregator.portfolio import Grid, Portfolio

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
NODE = "bench"


def _identity(prefix: str, n: int) -> dict[str, list[str]]:
    return {"ids": [f"{prefix}{i:05d}" for i in range(n)], "enterprises": ["bench"] * n, "nodes": [NODE] * n}


def generate_portfolio(
    devices: int,
    load_profile_mw: np.ndarray,
    pv_profile_mw: np.ndarray,
    carbon: Any,
    seed: int = 7,
    heterogeneous: bool = False,
) -> tuple[Portfolio, dict[str, np.ndarray]]:
    """A park of ``devices`` flexible devices plus one inflexible load and one PV plant.

    ``carbon`` is a scenario's carbon settings (``scenario.park.carbon``): grid factor and
    green-certificate price. ``heterogeneous`` draws every parameter from a continuous range
    (:func:`_diverse_batteries` and friends) instead of the catalogues. Returns the portfolio
    and its profiles (series id -> median).
    """
    gen = np.random.default_rng(seed)
    T = len(load_profile_mw)
    dt_h = 24.0 / T
    counts = {kind: round(share * devices) for kind, share in MIX.items()}
    counts["battery"] += devices - sum(counts.values())
    profiles: dict[str, np.ndarray] = {}
    fleets: list[Fleet] = []

    if heterogeneous:
        fleets = [
            _diverse_batteries(gen, counts["battery"]),
            _diverse_evs(gen, counts["ev_fleet"]),
            _diverse_batches(gen, counts["shiftable_batch"]),
        ]
        fleets.append(_interruptible(gen, counts["interruptible_load"], T, dt_h, profiles))
        fleets += _site(profiles, load_profile_mw, pv_profile_mw, carbon)
        return _portfolio(devices, fleets, carbon, "bench-diverse"), profiles

    n = counts["battery"]
    model = gen.integers(0, len(BATTERY_MODELS), n)
    units = gen.integers(1, 6, n)
    spec = np.array(BATTERY_MODELS)[model]
    fleets.append(
        BatteryFleet(
            **_identity("bat", n),
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
            **_identity("ev", n),
            charge_mw=charge,
            v2g_mw=np.zeros(n),
            energy_per_day_mwh=gen.uniform(0.3, 0.8, n) * charge * plugged,
            arrival_hour=pattern[:, 0],
            departure_hour=pattern[:, 1],
        )
    )

    n = counts["shiftable_batch"]
    window = np.array(BATCH_WINDOWS)[gen.integers(0, len(BATCH_WINDOWS), n)]
    pmax = gen.uniform(0.1, 2.0, n)
    hours = (window[:, 1] - window[:, 0]) % 24
    hours[hours == 0] = 24
    fleets.append(
        BatchFleet(
            **_identity("batch", n),
            energy_per_day_mwh=gen.uniform(0.3, 0.7, n) * pmax * hours,
            power_min_mw=np.where(gen.random(n) < 0.5, 0.0, 0.1 * pmax),
            power_max_mw=pmax,
            window_start_hour=window[:, 0],
            window_end_hour=window[:, 1],
        )
    )

    fleets.append(_interruptible(gen, counts["interruptible_load"], T, dt_h, profiles))
    fleets += _site(profiles, load_profile_mw, pv_profile_mw, carbon)
    return _portfolio(devices, fleets, carbon, "bench"), profiles


def _portfolio(devices: int, fleets: list[Fleet], carbon: Any, name: str) -> Portfolio:
    return Portfolio(
        name=f"{name}-{devices}",
        fleets=tuple(fleets),
        grid=Grid.unconstrained(),
        grid_ef_tco2_per_mwh=carbon.grid_ef_tco2_per_mwh,
    )


def _interruptible(
    gen: np.random.Generator, n: int, T: int, dt_h: float, profiles: dict[str, np.ndarray]
) -> InterruptibleFleet:
    """Interruptible loads in three cost tiers, sizes random, a common daily shape."""
    tier = gen.integers(0, len(INTERRUPTIBLE_TIERS), n)
    size = gen.uniform(0.2, 3.0, n)
    shape = 0.8 + 0.2 * np.sin(2 * np.pi * (hour_of_day(T, dt_h) - 8) / 24)
    names = _identity("il", n)
    series = [f"{i}.load_mw" for i in names["ids"]]
    for i, sid in enumerate(series):
        profiles[sid] = size[i] * shape
    costs = np.array(INTERRUPTIBLE_TIERS)[tier]
    return InterruptibleFleet(
        **names,
        series=series,
        max_curtail_mw=0.5 * size,
        max_duration_h=costs[:, 1],
        max_energy_mwh_per_day=0.25 * size * costs[:, 1],
        cost_cny_per_mwh=costs[:, 0],
        notice_minutes=np.zeros(n),
    )


# --- heterogeneous fleets: every device its own parameters ---------------------------------------


def _diverse_batteries(gen: np.random.Generator, n: int) -> BatteryFleet:
    """Every battery its own size, power-to-energy ratio, efficiencies, window, charge and wear."""
    energy = gen.uniform(0.2, 10.0, n)
    soc_min, soc_max = gen.uniform(0.03, 0.15, n), gen.uniform(0.85, 0.97, n)
    return BatteryFleet(
        **_identity("bat", n),
        power_mw=energy * gen.uniform(0.25, 1.0, n),
        energy_mwh=energy,
        charge_efficiency=gen.uniform(0.90, 0.97, n),
        discharge_efficiency=gen.uniform(0.90, 0.97, n),
        soc_min_fraction=soc_min,
        soc_max_fraction=soc_max,
        soc_initial_fraction=gen.uniform(soc_min + 0.1, soc_max - 0.1),
        degradation_cny_per_mwh=gen.uniform(25.0, 45.0, n),
    )


def _diverse_evs(gen: np.random.Generator, n: int) -> EVFleetModel:
    """Every fleet its own arrival, departure, charging power and energy: overnight depots
    (arrive 17:00-23:00, leave 05:00-09:00) and daytime sites (07:00-10:00 to 15:00-19:00)."""
    overnight = gen.random(n) < 0.6
    arrival = np.where(overnight, gen.uniform(17.0, 23.0, n), gen.uniform(7.0, 10.0, n))
    departure = np.where(overnight, gen.uniform(5.0, 9.0, n), gen.uniform(15.0, 19.0, n))
    charge = gen.uniform(0.05, 0.5, n)
    plugged = (departure - arrival) % 24
    return EVFleetModel(
        **_identity("ev", n),
        charge_mw=charge,
        v2g_mw=np.zeros(n),
        energy_per_day_mwh=gen.uniform(0.3, 0.8, n) * charge * (plugged - 0.5),
        arrival_hour=arrival.round(2),
        departure_hour=departure.round(2),
    )


def _diverse_batches(gen: np.random.Generator, n: int) -> BatchFleet:
    """Every batch its own window (start anywhere, 6-20 h long), power range and energy."""
    start = gen.uniform(0.0, 24.0, n)
    length = gen.uniform(6.0, 20.0, n)
    pmax = gen.uniform(0.1, 2.0, n)
    return BatchFleet(
        **_identity("batch", n),
        energy_per_day_mwh=gen.uniform(0.3, 0.7, n) * pmax * (length - 0.5),
        power_min_mw=np.where(gen.random(n) < 0.5, 0.0, 0.1 * pmax),
        power_max_mw=pmax,
        window_start_hour=start.round(2),
        window_end_hour=((start + length) % 24).round(2),
    )


def _site(profiles: dict[str, np.ndarray], load: np.ndarray, pv: np.ndarray, carbon: Any) -> list[Fleet]:
    """The site's inflexible load and its curtailable PV plant."""
    profiles["load.load_mw"] = np.asarray(load, dtype=float)
    profiles["pv.pv_mw"] = np.asarray(pv, dtype=float)
    capacity = float(np.max(pv)) if len(pv) else 0.0
    return [
        FixedLoadFleet(ids=["load"], enterprises=["bench"], nodes=[NODE], series=["load.load_mw"]),
        RenewableFleet(
            ids=["pv"],
            enterprises=["bench"],
            nodes=[NODE],
            series=["pv.pv_mw"],
            capacity_mw=[capacity],
            curtailable=[True],
            curtailment_cost_cny_per_mwh=[carbon.green_certificate_price_cny],
        ),
    ]

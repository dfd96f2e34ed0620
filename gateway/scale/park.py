"""The benchmark park: Datong's rules with many small heterogeneous devices in many enterprises.

Devices come from the aggregator's heterogeneous generator (every device its own parameters),
scaled to distributed sizes (``SIZE``: 10-500 kWh batteries, 2.5-25 kW chargers, 5-100 kW
batches, 10-150 kW interruptible loads), plus a site load and rooftop PV, all on one feeder
node sized to the devices. Registered through the registry like any park.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from aggregator.bench_data import generate_portfolio
from infra.scenario.loader import find_park_file, read_yaml

SIZE = 0.05  # x the aggregator benchmark's commercial sizes: distributed devices
DEVICES_PER_ENTERPRISE = 1000
NODE = "vpp_feeders"
SOURCE = "[assumption] parkvpp bench scale: generated device"
T = 96


def _round(values: np.ndarray, digits: int = 4) -> list[float]:
    return [round(float(v), digits) for v in values]


def _common(prefix: str, i: int, enterprise: str, name: str) -> dict[str, Any]:
    return {
        "id": f"{prefix}{i:06d}",
        "name": name,
        "enterprise": enterprise,
        "connection": NODE,
        "source": SOURCE,
    }


def _devices(devices: int, seed: int, enterprises: list[str]) -> list[dict[str, Any]]:
    """Scenario asset specs of the heterogeneous generator's devices, sizes scaled by ``SIZE``."""
    flat = np.ones(T)
    portfolio, profiles = generate_portfolio(
        devices, flat, np.zeros(T), _Carbon(), seed=seed, heterogeneous=True
    )
    fleets = {f.kind: f for f in portfolio.fleets}
    gen = np.random.default_rng(seed + 1)
    out: list[dict[str, Any]] = []

    def owner() -> str:
        return enterprises[int(gen.integers(0, len(enterprises)))]

    b = fleets["battery"]
    for i in range(b.n):
        out.append(
            _common("bat", i, owner(), "Battery")
            | {
                "type": "battery",
                "power_mw": round(float(b.power_mw[i]) * SIZE, 5),
                "energy_mwh": round(float(b.energy_mwh[i]) * SIZE, 5),
                "charge_efficiency": round(float(b.charge_efficiency[i]), 4),
                "discharge_efficiency": round(float(b.discharge_efficiency[i]), 4),
                "soc_min_fraction": round(float(b.soc_min_fraction[i]), 4),
                "soc_max_fraction": round(float(b.soc_max_fraction[i]), 4),
                "soc_initial_fraction": round(float(b.soc_initial_fraction[i]), 4),
                "degradation_cny_per_mwh": round(float(b.degradation_cny_per_mwh[i]), 2),
            }
        )
    e = fleets["ev_fleet"]
    for i in range(e.n):
        out.append(
            _common("ev", i, owner(), "EV chargers")
            | {
                "type": "ev_fleet",
                "charge_mw": round(float(e.charge_mw[i]) * SIZE, 5),
                "vehicles": 1,
                "energy_per_day_mwh": round(float(e.energy_per_day_mwh[i]) * SIZE, 5),
                "arrival_hour": float(e.arrival_hour[i]),
                "departure_hour": float(e.departure_hour[i]),
            }
        )
    s = fleets["shiftable_batch"]
    for i in range(s.n):
        out.append(
            _common("batch", i, owner(), "Shiftable batch")
            | {
                "type": "shiftable_batch",
                "energy_per_day_mwh": round(float(s.energy_per_day_mwh[i]) * SIZE, 5),
                "power_min_mw": round(float(s.power_min_mw[i]) * SIZE, 5),
                "power_max_mw": round(float(s.power_max_mw[i]) * SIZE, 5),
                "window_start_hour": float(s.window_start_hour[i]),
                "window_end_hour": float(s.window_end_hour[i]),
            }
        )
    il = fleets["interruptible_load"]
    for i in range(il.n):
        baseline = float(np.max(profiles[il.series[i]])) * SIZE
        out.append(
            _common("il", i, owner(), "Interruptible load")
            | {
                "type": "interruptible_load",
                "baseline_mw": round(baseline, 5),
                "max_curtail_mw": round(float(il.max_curtail_mw[i]) * SIZE, 5),
                "max_duration_h": float(il.max_duration_h[i]),
                "max_energy_mwh_per_day": round(float(il.max_energy_mwh_per_day[i]) * SIZE, 5),
                "cost_cny_per_mwh": float(il.cost_cny_per_mwh[i]),
                "notice_minutes": 0.0,
            }
        )
    return out


class _Carbon:
    """The generator only reads these two carbon settings (its site fleets are not used here)."""

    grid_ef_tco2_per_mwh = 0.0
    green_certificate_price_cny = 0.0


def generated_park(devices: int, seed: int = 7) -> dict[str, Any]:
    """The raw scenario (as a park template) of the benchmark park with ``devices`` devices."""
    template = read_yaml(find_park_file("datong"), "datong")
    count = max(1, math.ceil(devices / DEVICES_PER_ENTERPRISE))
    enterprises = [f"ent{i:04d}" for i in range(count)]
    assets = _devices(devices, seed, enterprises)
    rated = sum(
        a.get("power_mw", a.get("charge_mw", a.get("power_max_mw", a.get("baseline_mw", 0)))) for a in assets
    )
    site_mw = round(0.3 * rated, 3)
    assets += [
        _common("site_load", 0, enterprises[0], "Site process load")
        | {
            "type": "inflexible_load",
            "peak_mw": site_mw,
            "load_factor": 0.8,
            "profile": "three_shift",
            "weekend_factor": 0.95,
            "holiday_factor": 0.85,
        },
        _common("site_pv", 0, enterprises[0], "Rooftop PV")
        | {
            "type": "pv",
            "capacity_mw": round(0.2 * rated, 3),
            "kind": "rooftop",
            "tilt_deg": 10.0,
            "azimuth_deg": 180.0,
            "system_loss_fraction": 0.16,
        },
    ]
    limit = round(1.5 * rated + site_mw, 1)
    raw = {k: v for k, v in template.items() if k not in ("assets", "enterprises", "grid", "contracts")}
    return raw | {
        "id": f"scale{devices}",
        "name": f"parkvpp bench scale: {devices:,} generated devices",
        "grid_connection": NODE,
        "grid": [
            {
                "id": NODE,
                "voltage_kv": 10,
                "import_limit_mw": limit,
                "export_limit_mw": limit,
                "source": "[assumption] distribution feeders sized to the devices on them",
            }
        ],
        "contracts": [],
        "enterprises": [
            {
                "id": "vpp_operator",
                "name": "Park energy company (VPP operator)",
                "sector": "energy",
                "contract": None,
                "source": SOURCE,
            }
        ]
        + [
            {
                "id": e,
                "name": f"Enterprise {e}",
                "sector": "industry",
                "source": SOURCE,
                "contract": {
                    "kind": "fixed_plus_share",
                    "fixed_price_cny_per_mwh": 40.0,
                    "share_fraction": 0.5,
                },
            }
            for e in enterprises
        ],
        "assets": assets,
    }

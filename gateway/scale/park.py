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


# Per generated fleet: asset type, id prefix, name, and each field's (scale, decimals) taken from
# the fleet's arrays (scale SIZE for powers and energies; None decimals: kept as generated).
FIELDS: dict[str, tuple[str, str, dict[str, tuple[float, int | None]]]] = {
    "battery": (
        "bat",
        "Battery",
        {
            "power_mw": (SIZE, 5),
            "energy_mwh": (SIZE, 5),
            "charge_efficiency": (1.0, 4),
            "discharge_efficiency": (1.0, 4),
            "soc_min_fraction": (1.0, 4),
            "soc_max_fraction": (1.0, 4),
            "soc_initial_fraction": (1.0, 4),
            "degradation_cny_per_mwh": (1.0, 2),
        },
    ),
    "ev_fleet": (
        "ev",
        "EV chargers",
        {
            "charge_mw": (SIZE, 5),
            "energy_per_day_mwh": (SIZE, 5),
            "arrival_hour": (1.0, None),
            "departure_hour": (1.0, None),
        },
    ),
    "shiftable_batch": (
        "batch",
        "Shiftable batch",
        {
            "energy_per_day_mwh": (SIZE, 5),
            "power_min_mw": (SIZE, 5),
            "power_max_mw": (SIZE, 5),
            "window_start_hour": (1.0, None),
            "window_end_hour": (1.0, None),
        },
    ),
    "interruptible_load": (
        "il",
        "Interruptible load",
        {
            "max_curtail_mw": (SIZE, 5),
            "max_duration_h": (1.0, None),
            "max_energy_mwh_per_day": (SIZE, 5),
            "cost_cny_per_mwh": (1.0, None),
        },
    ),
}
FIXED = {"ev_fleet": {"vehicles": 1}, "interruptible_load": {"notice_minutes": 0.0}}


def _value(raw: float, scale: float, decimals: int | None) -> float:
    value = float(raw) * scale
    return value if decimals is None else round(value, decimals)


def _devices(devices: int, seed: int, enterprises: list[str]) -> list[dict[str, Any]]:
    """Scenario asset specs of the heterogeneous generator's devices, sizes scaled by ``SIZE``."""
    flat = np.ones(T)
    portfolio, profiles = generate_portfolio(
        devices, flat, np.zeros(T), _Carbon(), seed=seed, heterogeneous=True
    )
    gen = np.random.default_rng(seed + 1)
    out: list[dict[str, Any]] = []
    for fleet in portfolio.fleets:
        if fleet.kind not in FIELDS:
            continue  # the generator's own site load and PV: the park has its own
        prefix, name, fields = FIELDS[fleet.kind]
        for i in range(fleet.n):
            owner = enterprises[int(gen.integers(0, len(enterprises)))]
            spec = _common(prefix, i, owner, name) | {"type": fleet.kind} | FIXED.get(fleet.kind, {})
            spec |= {f: _value(getattr(fleet, f)[i], *rule) for f, rule in fields.items()}
            if fleet.kind == "interruptible_load":  # its baseline is a profile, not a parameter
                spec["baseline_mw"] = round(float(np.max(profiles[fleet.series[i]])) * SIZE, 5)
            out.append(spec)
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

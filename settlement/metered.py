"""Heat and fuel meters: read from the time-series store like electricity meters, into the ledger.

Meter readings come in as any series do (``parkvpp ingest meters FILE.csv``, the telemetry
worker): ``<owner>.<quantity>`` where the owner is an enterprise (``cathode_plant``) or an asset
(equipment, ``gas_boiler_1`` owned by an enterprise) and the quantity one of

| quantity | unit | ledger |
|---|---|---|
| ``heat_fossil_gj`` | GJ per interval | ``heat_use``: energy ``heat.fossil``, scope 2 ``E_heat = GJ x carbon.fossil_heat_ef_tco2_per_gj`` |
| ``heat_non_fossil_gj`` | GJ per interval | ``heat_use``: energy ``heat.non_fossil`` (clean), no emission |
| ``natural_gas_m3`` | m3 per interval | ``fuel_use``: scope 1 ``E_fuel = m3 x NCV x EF x oxidation`` (``carbon.fuels.natural_gas``) |
| ``diesel_kg`` | kg per interval | ``fuel_use`` with ``carbon.fuels.diesel`` |

Each settled day gets one entry per meter (key ``metered:<quantity>``) with the day's total and
the per-interval emissions in the day record, so the ledger is complete without manual posts.
Readings are summed onto the settlement grid; a gap counts as zero and is noted. The day records
when it read the store (``metered_as_of``) so a replay reads the same versions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Connection

from infra.scenario.model import Scenario
from infra.timeseries import catalogue, read

HEAT_QUANTITIES = {"heat_fossil_gj": "fossil", "heat_non_fossil_gj": "non_fossil"}
FUEL_QUANTITIES = {"natural_gas_m3": ("natural_gas", "m3"), "diesel_kg": ("diesel", "kg")}


@dataclass(frozen=True)
class Meter:
    series: str
    holder: str  # <enterprise> or <enterprise>/<asset>
    enterprise: str
    quantity: str
    values: np.ndarray  # per settlement interval, in the quantity's unit


@dataclass(frozen=True)
class MeteredEnergy:
    meters: tuple[Meter, ...]
    notes: tuple[str, ...] = ()
    as_of: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _holder(scenario: Scenario, owner: str) -> tuple[str, str] | None:
    for e in scenario.park.enterprises:
        if e.id == owner:
            return e.id, e.id
    try:
        a = scenario.asset(owner)
    except KeyError:
        return None
    return f"{a.enterprise}/{a.id}", a.enterprise


def _on_grid(values: np.ndarray, native: int, minutes: int, n: int) -> np.ndarray:
    v = np.where(np.isnan(values), 0.0, values)
    if native == minutes:
        out = v
    elif minutes % native == 0:
        out = v.reshape(-1, minutes // native).sum(axis=1)
    else:
        out = np.repeat(v, native // minutes) / (native // minutes)
    return out[:n]


def read_metered(
    conn: Connection, scenario: Scenario, day: date, minutes: int, n: int, as_of: datetime | None = None
) -> MeteredEnergy | None:
    """The day's heat and fuel meters of the park (None when it has none)."""
    wanted = {**HEAT_QUANTITIES, **FUEL_QUANTITIES}
    series = [s for s in catalogue(conn, scenario.id) if s.name.split(".", 1)[1] in wanted]
    if not series:
        return None
    meters, notes = [], []
    for s in series:
        owner, quantity = s.name.split(".", 1)
        held = _holder(scenario, owner)
        if held is None:
            notes.append(
                f"meter {s.name}: {owner} is neither an enterprise nor an asset of the park; not settled"
            )
            continue
        if quantity in FUEL_QUANTITIES:
            fuel, unit = FUEL_QUANTITIES[quantity]
            known = scenario.park.carbon.fuels.get(fuel)
            if known is None or known.unit != unit:
                notes.append(f"meter {s.name}: the park has no {fuel} fuel in {unit}; not settled")
                continue
        frame = read(conn, scenario.id, [s.name], day, day + timedelta(days=1), as_of=as_of, missing="nan")
        raw = frame[s.name].to_numpy(dtype=float)
        if np.isnan(raw).all():
            continue
        gaps = int(np.isnan(raw).sum())
        if gaps:
            notes.append(f"meter {s.name}: {gaps} interval(s) without a reading counted as zero")
        meters.append(
            Meter(s.name, held[0], held[1], quantity, _on_grid(raw, s.interval_minutes, minutes, n))
        )
    if not meters and not notes:
        return None
    return MeteredEnergy(tuple(meters), tuple(notes), None if as_of is None else as_of.isoformat())

"""Electrolysers: run between minimum load and capacity within ramp limits, fill the day's hydrogen demand.

Stacks run continuously (alkaline stacks restart slowly), so the minimum load always holds.
Hydrogen is drawn evenly over the day; the store (a :mod:`~aggregator.devices.stock` without
losses) buffers production against it and must end the day at least as full as it began.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import cvxpy as cp
import numpy as np

from aggregator.devices.base import (
    CHECK_TOLERANCE,
    Build,
    Fleet,
    FleetSolution,
    Part,
    Profiles,
    Soft,
    hour_of_day,
    param,
    problem,
)
from aggregator.devices.stock import add_stock, free_start, restore_start, start_state, stock_feasible

STATE_KEY = "h2_start_kg"


@dataclass(frozen=True, eq=False, kw_only=True)
class ElectrolyserFleet(Fleet):
    kind = "electrolyser"
    asset_types = ("electrolyser",)

    capacity_mw: np.ndarray = field(metadata=param())
    min_load_fraction: np.ndarray = field(metadata=param())
    ramp_fraction_per_h: np.ndarray = field(metadata=param())
    kwh_per_kg_h2: np.ndarray = field(metadata=param())
    h2_demand_kg_per_day: np.ndarray = field(metadata=param())
    h2_storage_kg: np.ndarray = field(metadata=param())

    @property
    def min_load(self) -> np.ndarray:
        return self.min_load_fraction * self.capacity_mw

    @property
    def ramp(self) -> np.ndarray:
        return self.ramp_fraction_per_h * self.capacity_mw

    @property
    def kg_per_mwh(self) -> np.ndarray:
        return 1000.0 / self.kwh_per_kg_h2

    def build(self, b: Build) -> Part:
        part = Part(self, b)
        R, dt = part.rows, b.dt_h
        p = part.bounded("p", "load limits")
        unmet = cp.Variable((R, b.T), nonneg=True, name="h2_unmet")
        draw = b.column(self.h2_demand_kg_per_day / b.T)
        part.constraints.append(cp.abs(p[:, 1:] - p[:, :-1]) <= b.column(self.ramp * dt))
        inflow = cp.multiply(b.column(self.kg_per_mwh * dt), p) - draw + unmet
        add_stock(part, "stock", b.column(self.h2_storage_kg), inflow)
        part.softs = [Soft("hydrogen demand not met", unmet, "kg")]
        part.power = -p
        part.up = p - part.params["p_lo"]
        part.down = part.params["p_hi"] - p
        return part

    def load(self, part: Part, profiles: Profiles) -> None:
        b = part.b
        part.set("p_lo", b.rows(np.repeat(self.min_load[:, None], b.T, axis=1)))
        part.set("p_hi", b.rows(np.repeat(self.capacity_mw[:, None], b.T, axis=1)))
        free_start(part, "stock", self.h2_storage_kg)

    def freeze(self, part: Part, previous: np.ndarray, mask: np.ndarray) -> None:
        part.pin(("p_lo", "p_hi"), part.b.rows(-previous), mask)

    def state(self, solution: FleetSolution) -> dict[str, float]:
        return start_state(solution, "stock", STATE_KEY)

    def restore(self, part: Part, state: Mapping[str, float]) -> None:
        restore_start(part, "stock", STATE_KEY, self.ids, state)

    def check(self, setpoints: np.ndarray, profiles: Profiles, dt_h: float) -> list[str]:
        p = -setpoints
        T = p.shape[1]
        hours = hour_of_day(T, dt_h)
        tol = CHECK_TOLERANCE
        out = []
        for i, a in enumerate(self.ids):
            bad = (p[i] < self.min_load[i] - tol) | (p[i] > self.capacity_mw[i] + tol)
            if np.any(bad):
                out.append(
                    f"{a}: "
                    + problem("load outside [minimum, capacity]", bad, hours, np.abs(p[i]).max(), "MW")
                )
            ramp = np.abs(np.diff(p[i])) - self.ramp[i] * dt_h
            if np.any(ramp > tol):
                out.append(
                    f"{a}: " + problem("ramps faster than allowed", ramp > tol, hours[1:], ramp.max(), "MW")
                )
            demand = self.h2_demand_kg_per_day[i]
            inflow = self.kg_per_mwh[i] * p[i] * dt_h - demand / T
            if not stock_feasible(1.0, inflow, self.h2_storage_kg[i], tol * max(1.0, demand)):
                out.append(f"{a}: production cannot meet the hydrogen demand within the store's limits")
        return out

    def unmanaged_setpoints(self, profiles: Profiles, T: int, dt_h: float) -> np.ndarray:
        """Without a VPP the stacks run flat at the day's demand (within their limits)."""
        flat = self.h2_demand_kg_per_day / self.kg_per_mwh / (T * dt_h)
        return -np.repeat(np.clip(flat, self.min_load, self.capacity_mw)[:, None], T, axis=1)
